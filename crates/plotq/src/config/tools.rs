//! The arguments of the commands besides the roles (`plotq loadgen`, `bench`, `dlq`,
//! `token`; `tail`'s are in `tail`), as `Command` names them. What each command does is
//! `crate::tools`'.

use super::log::LogSettings;
use super::queue::BrokerAccess;
use super::values::{self, Validate};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `plotq loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The api's base URL.
    #[arg(
        long,
        env = "PLOTQ_LOADGEN_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// A token with the `ingest` scope, when the api requires one.
    #[arg(long, env = "PLOTQ_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How many services to generate (named `<prefix><i>`).
    #[arg(long, default_value_t = 1)]
    pub services: usize,
    /// The services' name prefix.
    #[arg(long, default_value = "load-")]
    pub service_prefix: String,
    /// Samples per second (live mode; in a backfill, the density of the history).
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Samples per request (half latencies, half status codes).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long to send in live mode (`<n>ms|s|m|h|d`).
    #[arg(long, default_value = "60s", value_name = "DURATION",
          value_parser = values::with_unit().at_least(Duration::from_secs(1)))]
    pub duration: Duration,
    /// Instead of live mode: write this much history (`24h`), as fast as accepted.
    #[arg(long, value_name = "DURATION",
          value_parser = values::with_unit().at_least(Duration::from_secs(1)))]
    pub backfill: Option<Duration>,
    /// Seed of the generated values.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// No progress bar (the summary line is still printed).
    #[arg(long)]
    pub quiet: bool,
    /// Send the requests as OpenTelemetry spans (OTLP/HTTP protobuf to `/v1/traces`, one
    /// SERVER span per request with its status) instead of JSON samples.
    #[arg(long)]
    pub otlp: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Render the benchmark histogram (the mean/p95/p99 latency histogram, as the
    /// matplotlib baseline draws it) in-process and print timings as one JSON line.
    Render(BenchRenderArgs),
    /// Backfill one series into the in-memory store, then time plots of several windows
    /// from request to plot.ready through a worker; one JSON line.
    Store(BenchStoreArgs),
    /// Two tenants against a running api: one asks for distinct renders at its full
    /// plot rate, the other fetches a cached image and a fresh render every second;
    /// the quiet tenant's latencies alone, then beside the busy one; one JSON line.
    Fairness(BenchFairnessArgs),
    /// Ingest cost by format: the same requests as JSON samples and as OTLP spans sent
    /// to a standalone plotq this starts, side by side; samples stored per api
    /// core-second of each; one JSON line.
    Ingest(BenchIngestArgs),
    /// Worker scaling in standalone: a pre-filled queue of distinct renders over the
    /// in-memory store drained by each count of workers in turn; one JSON line.
    Workers(BenchWorkersArgs),
    /// The chunk formats side by side: bytes a sample, encode and decode ns a sample of
    /// the generator's latencies in the previous format (1) and the current (2); one
    /// JSON line.
    Chunks(BenchChunksArgs),
    /// SSE fan-out: a standalone plotq this starts holds `--clients` SSE streams (a
    /// Rust client in this process); its memory per client, and how long after the first
    /// client the others get each plot.ready event; one JSON line.
    Sse(BenchSseArgs),
}

/// `plotq bench sse`.
#[derive(Debug, Args)]
pub struct BenchSseArgs {
    /// SSE clients (the open files limit must allow twice as many: `ulimit -n`).
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// plot.ready events timed, one plot each.
    #[arg(long, default_value_t = 5)]
    pub events: usize,
    /// The port the standalone plotq listens on (loopback).
    #[arg(long, default_value_t = 18_330)]
    pub port: u16,
}

/// `plotq bench chunks`.
#[derive(Debug, Args)]
pub struct BenchChunksArgs {
    /// Samples a minute of the one series (the generator's lognormal latencies, sent
    /// with two decimals).
    #[arg(long, default_value_t = 200_000)]
    pub per_minute: usize,
    /// Minutes of samples.
    #[arg(long, default_value_t = 10)]
    pub minutes: u32,
    /// Samples per chunk as a batch writes them (a whole minute is timed too).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Timed passes over all chunks of each format (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
}

/// `plotq bench workers`.
#[derive(Debug, Args)]
pub struct BenchWorkersArgs {
    /// Worker counts to time, in turn (comma-separated); speedups are over the first.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Distinct renders queued before each count's workers start.
    #[arg(long, default_value_t = 400)]
    pub jobs: usize,
    /// Services in the store (the generator's latencies and status codes).
    #[arg(long, default_value_t = 8)]
    pub services: usize,
    /// Minutes of samples each service has.
    #[arg(long, default_value_t = 15)]
    pub minutes: u32,
    /// Requests a minute of each service (two samples each).
    #[arg(long, default_value_t = 6_000)]
    pub per_minute: usize,
    /// The window every render draws.
    #[arg(long, default_value = "15m")]
    pub window: String,
    /// Jobs each worker renders at once (its prefetch).
    #[arg(long, default_value_t = 1)]
    pub prefetch: u16,
}

/// `plotq bench ingest`.
#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Seconds of load per format and round.
    #[arg(long, default_value_t = 5)]
    pub secs: u64,
    /// Rounds (each sends JSON then OTLP, so drift hits both alike).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests per body (two samples each: a latency and a status).
    #[arg(long, default_value_t = 500)]
    pub requests: usize,
}

/// `plotq bench render`.
#[derive(Debug, Args)]
pub struct BenchRenderArgs {
    /// Little-endian f64 values (the same file the matplotlib baseline reads).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Without --input: generate this many lognormal samples (fixed seed).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Timed renders (after one untimed warm-up).
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Write the last PNG here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The plot kind to render (histogram, cdf, heatmap, …).
    #[arg(long, default_value = "histogram")]
    pub kind: String,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1000)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 600)]
    pub height: u32,
    /// Device pixels per layout pixel (1 to 4), as a dashboard on a DPR-3 phone asks.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
}

/// `plotq bench store`.
#[derive(Debug, Clone, Args)]
pub struct BenchStoreArgs {
    /// Hours of raw history to backfill (every sample).
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Days of history in all: the time before the raw hours is backfilled as minute
    /// rollups only (as a store holds samples past the raw retention), each minute's the
    /// rollup of as many of the generator's samples.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Samples per minute of the one series.
    #[arg(long, default_value_t = 200_000)]
    pub per_minute: usize,
    /// Plot windows to time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "90d,30d,24h,1h,10m")]
    pub windows: Vec<String>,
    /// Timed plots per window and kind.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// The store's byte bound.
    #[arg(long, default_value_t = 16 << 30)]
    pub max_bytes: u64,
}

/// `plotq bench fairness`.
#[derive(Debug, Args)]
pub struct BenchFairnessArgs {
    /// The api (or standalone) to load, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub url: String,
    /// The busy tenant's token (scopes ingest,read).
    #[arg(long, env = "PLOTQ_BENCH_BUSY_TOKEN", hide_env_values = true)]
    pub busy_token: String,
    /// The quiet tenant's token (scope read).
    #[arg(long, env = "PLOTQ_BENCH_QUIET_TOKEN", hide_env_values = true)]
    pub quiet_token: String,
    /// Renders per second the busy tenant asks for (its plot budget).
    #[arg(long, default_value_t = 50)]
    pub busy_rate: u32,
    /// How long the quiet tenant runs alone (its baseline), in whole seconds.
    #[arg(long = "alone-secs", default_value = "10", value_name = "DURATION",
          value_parser = values::secs())]
    pub alone: Duration,
    /// How long both tenants run together, in whole seconds.
    #[arg(long = "together-secs", default_value = "30", value_name = "DURATION",
          value_parser = values::secs())]
    pub together: Duration,
    /// Samples ingested into the bench's service (the last 10 minutes) before it starts:
    /// what each render reads.
    #[arg(long, default_value_t = 300_000)]
    pub samples: u32,
    /// The plot kind both tenants ask for.
    #[arg(long, default_value = "histogram")]
    pub kind: String,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print the dead letters, one JSON object per line (they stay in the queue).
    List {
        /// Most dead letters to print.
        #[arg(long, default_value_t = 100)]
        max: usize,
        #[command(flatten)]
        broker: DlqArgs,
    },
    /// Re-enqueue one dead job (by id) or all of them.
    Retry {
        /// The job id to replay.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        broker: DlqArgs,
    },
}

impl DlqCommand {
    /// The broker settings either subcommand reads (the roles validate their own in `App`).
    pub fn args(&self) -> &DlqArgs {
        match self {
            DlqCommand::List { broker, .. } | DlqCommand::Retry { broker, .. } => broker,
        }
    }
}

/// `plotq dlq list|retry`: what reaching the broker's queues takes.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub rabbit: BrokerAccess,
    #[command(flatten)]
    pub log: LogSettings,
}

impl DlqArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.rabbit.validate()?;
        self.log.validate()
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token (give it to the client) and the line to add to
    /// PLOTQ_TOKENS_FILE or PLOTQ_TOKENS (plotq stores only its hash).
    New {
        /// Comma-separated scopes: ingest, read, admin.
        #[arg(long, default_value = "ingest,read")]
        scopes: String,
        /// Limit the token to these services (names or `prefix*`, comma-separated).
        #[arg(long)]
        services: Option<String>,
        /// A name for logs and rate limits.
        #[arg(long)]
        name: Option<String>,
    },
}
