//! How a command runs: `blocking` sets up logging and the runtime for every command that
//! needs one (the roles and the tools that talk to services) and `run` runs it until
//! SIGTERM/Ctrl-C or until it fails. `bench` and `token` need neither and run straight
//! from `main`.

use crate::config::cli::Command;
use crate::roles::App;
use crate::shutdown;
use crate::tools::{dlq, loadgen, tail};

/// Runs `command` (a role or a tool that talks to services) until SIGTERM/Ctrl-C, or
/// until one of its tasks fails (then every task is stopped and the reason returned).
pub async fn run(command: Command) -> anyhow::Result<()> {
    let app = match command {
        Command::Standalone(args) => App::standalone(*args).await?,
        Command::Api(args) => App::api(*args).await?,
        Command::Worker(args) => App::worker(*args).await?,
        Command::Notifier(args) => App::notifier(*args).await?,
        Command::Bench(_) | Command::Token(_) => {
            anyhow::bail!("plotq bench and plotq token run without a runtime (see main)")
        }
        Command::Dlq(command) => return dlq::run(command).await,
        Command::Loadgen(args) => {
            println!("{}", loadgen::run(args).await?);
            return Ok(());
        }
        Command::Tail(args) => return tail::run(args, shutdown::on_signal()).await,
    };
    app.run_until_stopped(shutdown::on_signal()).await
}

/// `run` on a new multi-threaded runtime, with logs set up as the command's settings say.
pub fn blocking(command: Command) -> anyhow::Result<()> {
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
