//! The `plotq` binary: parses the command line and hands over to a role.
//!
//! Roles are `plotq::App` values (`app.rs`); settings in `config.rs`. With no subcommand
//! it runs standalone (everything in one process, no external services), with the same
//! settings and env vars as `plotq standalone`.

use clap::Parser;
use plotq::config::{self, Cli, Command};
use plotq::{bench, run};

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().into_command();
    match &command {
        Command::Bench(_) => return bench::run(&command),
        Command::Token(config::TokenCommand::New {
            scopes,
            services,
            name,
        }) => return token_new(scopes, services.as_deref(), name.as_deref()),
        _ => {}
    }
    init_tracing(command.log_format());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(command));
    // Every task was told to stop and awaited; a render thread that is still running
    // (renders are bounded, but a deadline may have fired) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// `plotq token new`: a token for the client, and the entry plotq stores.
fn token_new(scopes: &str, services: Option<&str>, name: Option<&str>) -> anyhow::Result<()> {
    let token = plotq_http::auth::new_token();
    let mut line = format!("{} scopes={scopes}", plotq_http::auth::hash_token(&token));
    if let Some(services) = services {
        line.push_str(&format!(" services={services}"));
    }
    if let Some(name) = name {
        line.push_str(&format!(" name={name}"));
    }
    // Check the entry the way the server will read it.
    plotq_http::auth::parse_tokens(&line).map_err(|e| anyhow::anyhow!(e))?;
    println!("token (give this to the client; it is not stored anywhere): {token}");
    println!("entry (add this line to PLOTQ_TOKENS_FILE or PLOTQ_TOKENS): {line}");
    Ok(())
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
