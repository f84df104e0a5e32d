//! The `plotq` binary: parses the command line and hands over to a role.
//!
//! Roles live in `roles.rs`; settings in `config.rs`. With no subcommand it runs
//! standalone (everything in one process, no external services).

mod bench;
mod config;
mod demo;
mod roles;
mod shutdown;

use clap::Parser;
use config::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Bench(_)) = &cli.command {
        return bench::run(cli.command.as_ref().expect("checked above"));
    }
    init_tracing(&cli.common.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(roles::run(cli))
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=warn"));
    // Logs go to stderr; stdout carries only what a role prints for its user.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
