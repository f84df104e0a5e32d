//! The command line: `Cli` and `Command` (the roles and the tools), and one settings
//! struct per role (`StandaloneArgs`, `ApiArgs`, `WorkerArgs`, `NotifierArgs`), each a
//! list of the settings groups that role reads (the other commands' arguments are in
//! `tools` and `tail`). What a command does is `crate::run`'s.

use super::api::ApiSettings;
use super::auth::AuthSettings;
use super::budget::PlotBudgetSettings;
use super::cache::CacheSettings;
use super::events::{EventBusSettings, EventSettings, SeriesSettings};
use super::http::HttpSettings;
use super::log::LogSettings;
use super::queue::{BrokerAccess, QueueSettings};
use super::redis::RedisSettings;
use super::store::{MemoryStoreSettings, MongoSettings, RetentionSettings, SourceSettings};
use super::tail::TailArgs;
use super::tools::{BenchCommand, DlqCommand, LoadgenArgs, TokenCommand};
use super::values::{DURATIONS_HELP, Validate};
use super::worker::{OutageSettings, WorkerSettings};
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "plotq",
    version,
    about = "High-frequency metrics in, live plots out.",
    after_help = format!(
        "Without a command plotq runs standalone, with the options above; \
         `plotq <command> --help` lists the options of each role.\n\n{DURATIONS_HELP}"
    ),
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The settings of plain `plotq`, which runs standalone.
    #[command(flatten)]
    pub standalone: StandaloneArgs,
}

impl Cli {
    /// The role to run: the subcommand, or standalone with the top-level settings.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or(Command::Standalone(Box::new(self.standalone)))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process with in-process queue, store and cache, plus a demo
    /// producer (the default).
    #[command(after_help = DURATIONS_HELP)]
    Standalone(Box<StandaloneArgs>),
    /// The HTTP API (ingest, plot requests, states, PNGs) against RabbitMQ, MongoDB, Redis.
    #[command(after_help = DURATIONS_HELP)]
    Api(Box<ApiArgs>),
    /// A rendering worker consuming plot jobs from RabbitMQ.
    #[command(after_help = DURATIONS_HELP)]
    Worker(Box<WorkerArgs>),
    /// The SSE notifier (GET /api/v1/events), fed from Redis.
    #[command(after_help = DURATIONS_HELP)]
    Notifier(Box<NotifierArgs>),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Inspect and replay the dead-letter queue (jobs that gave up, poison messages).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Make API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Send generated samples to a plotq api over HTTP (live at a rate, or a backfill).
    Loadgen(LoadgenArgs),
    /// Follow a Caddy access log and send its lines to a plotq api
    /// (`POST /api/v1/ingest/caddy`), rotation-safe, resuming where it stopped.
    Tail(TailArgs),
}

impl Command {
    /// The log format of a role that runs (bench and token print only their result).
    pub fn log_format(&self) -> &str {
        let log = match self {
            Command::Standalone(args) => &args.log,
            Command::Api(args) => &args.log,
            Command::Worker(args) => &args.log,
            Command::Notifier(args) => &args.log,
            Command::Dlq(dlq) => &dlq.args().log,
            Command::Bench(_) | Command::Token(_) | Command::Loadgen(_) | Command::Tail(_) => {
                return "text";
            }
        };
        &log.log_format
    }

    /// Checks what clap cannot, naming the setting (each role's `App` constructor and
    /// `dlq` call their part of it).
    pub fn validate(&self) -> anyhow::Result<()> {
        match self {
            Command::Standalone(args) => args.validate(),
            Command::Api(args) => args.validate(),
            Command::Worker(args) => args.validate(),
            Command::Notifier(args) => args.validate(),
            Command::Dlq(dlq) => dlq.args().validate(),
            Command::Bench(_) | Command::Token(_) | Command::Loadgen(_) | Command::Tail(_) => {
                Ok(())
            }
        }
    }
}

/// Declares the settings of a role: a struct flattening each group in the order given
/// (`--help` lists their headings in that order), and `validate`, which checks every
/// group in turn, so no group a role reads goes unchecked.
macro_rules! role_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $group:ty, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Args)]
        pub struct $name {
            $(
                #[command(flatten)]
                $(#[$field_meta])*
                pub $field: $group,
            )+
        }

        impl $name {
            /// Checks every group of settings in turn; the first refusal names its setting.
            pub fn validate(&self) -> anyhow::Result<()> {
                $( Validate::validate(&self.$field)?; )+
                Ok(())
            }
        }
    };
}

/// What only standalone has: its workers and the demo producer.
#[derive(Debug, Args)]
pub struct StandaloneSettings {
    /// Rendering workers in the process.
    #[arg(long, env = "PLOTQ_STANDALONE_WORKERS", default_value_t = 2)]
    pub workers: u16,
    /// Do not run the built-in demo producer (1/0, true/false, yes/no, on/off).
    #[arg(long, env = "PLOTQ_NO_DEMO", value_parser = BoolishValueParser::new())]
    pub no_demo: bool,
}

impl Validate for StandaloneSettings {}

role_settings! {
    /// `plotq standalone` (and plain `plotq`): every role in one process, in-memory ports.
    pub struct StandaloneArgs {
        standalone: StandaloneSettings,
        memory: MemoryStoreSettings,
        retention: RetentionSettings,
        http: HttpSettings,
        auth: AuthSettings,
        api: ApiSettings,
        budget: PlotBudgetSettings,
        events: EventSettings,
        worker: WorkerSettings,
        cache: CacheSettings,
        queue: QueueSettings,
        bus: EventBusSettings,
        series: SeriesSettings,
        log: LogSettings,
    }
}

role_settings! {
    /// `plotq api`.
    pub struct ApiArgs {
        http: HttpSettings,
        auth: AuthSettings,
        api: ApiSettings,
        budget: PlotBudgetSettings,
        // The image lifetime bounds how long identical requests share a render.
        cache: CacheSettings,
        series: SeriesSettings,
        #[command(next_help_heading = "Statistics")]
        sources: SourceSettings,
        rabbit: BrokerAccess,
        mongo: MongoSettings,
        redis: RedisSettings,
        log: LogSettings,
    }
}

role_settings! {
    /// `plotq worker`.
    pub struct WorkerArgs {
        worker: WorkerSettings,
        outage: OutageSettings,
        // `/healthz`, `/readyz` and `/metrics` (PLOTQ_HTTP_ADDR, default 127.0.0.1:8082).
        http: HttpSettings,
        auth: AuthSettings,
        cache: CacheSettings,
        bus: EventBusSettings,
        rabbit: BrokerAccess,
        mongo: MongoSettings,
        redis: RedisSettings,
        log: LogSettings,
    }
}

role_settings! {
    /// `plotq notifier` (SSE, and the refresher that queues re-renders of watched views).
    pub struct NotifierArgs {
        http: HttpSettings,
        auth: AuthSettings,
        events: EventSettings,
        budget: PlotBudgetSettings,
        cache: CacheSettings,
        bus: EventBusSettings,
        series: SeriesSettings,
        rabbit: BrokerAccess,
        redis: RedisSettings,
        log: LogSettings,
    }
}
