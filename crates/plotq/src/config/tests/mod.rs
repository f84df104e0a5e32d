//! The settings as the command line and environment give them: parsed through `Cli`, as
//! the binary parses them (one file per area), with the helpers they share.

mod auth;
mod cli;
mod deps;
mod durations;

use super::cli::{ApiArgs, Cli, Command, WorkerArgs};
use clap::{CommandFactory, Parser};

/// `plotq <argv…>` as the binary reads it.
fn parse(argv: &[&str]) -> Command {
    Cli::parse_from(std::iter::once("plotq").chain(argv.iter().copied())).into_command()
}

fn api(args: &[&str]) -> ApiArgs {
    match parse(&[&["api"], args].concat()) {
        Command::Api(args) => *args,
        other => panic!("parsed as {other:?}"),
    }
}

fn worker(args: &[&str]) -> WorkerArgs {
    match parse(&[&["worker"], args].concat()) {
        Command::Worker(args) => *args,
        other => panic!("parsed as {other:?}"),
    }
}

/// `plotq <role> --help`.
fn help(role: &str) -> String {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand_mut(role)
        .unwrap_or_else(|| panic!("no subcommand {role}"))
        .render_help()
        .to_string()
}

/// Runs the test `name` (a path below `module`, the caller's `module_path!()`) again in
/// a child process with `env` set: a test cannot set variables in its own process
/// (`set_var` is unsafe, and unsafe code is forbidden). Returns true in the child, where
/// the body runs; in the parent it fails unless the child ran that one test and it passed.
fn in_child_with_env(module: &str, name: &str, env: &[(&str, &str)]) -> bool {
    const CHILD: &str = "PLOTQ_CONFIG_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let module = module.split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::{name}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} with {env:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
