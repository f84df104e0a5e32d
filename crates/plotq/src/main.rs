//! The `plotq` binary: parses the command line and hands over. With no subcommand it
//! runs standalone (see `plotq::config::Cli`); `bench` and `token` run without a runtime.

use clap::Parser;
use plotq::config::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().into_command() {
        Command::Bench(bench) => plotq::tools::bench::run(&bench),
        Command::Token(token) => plotq::tools::token::run(&token),
        command => plotq::run::blocking(command),
    }
}
