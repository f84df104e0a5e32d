//! Command line and environment: one typed struct per role, every setting also an env var.
//!
//! Settings come in small groups (`HttpSettings`, `AuthSettings`, `BrokerSettings`, …),
//! each flattened only into the subcommands that read it, so `plotq <role> --help` lists
//! exactly what that role uses. Plain `plotq` is standalone: the standalone settings are
//! flattened at the top level too, so they (and their env vars) apply without a
//! subcommand. Booleans accept 1/0, true/false, yes/no, on/off.
//!
//! Validation happens here, at start, with messages naming the setting; the listen
//! address is resolved when an HTTP role binds (`HttpSettings::addr`). Secrets inside
//! URLs are never logged (`redact`).

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "plotq",
    version,
    about = "High-frequency metrics in, live plots out.",
    after_help = "Without a command plotq runs standalone, with the options above; \
                  `plotq <command> --help` lists the options of each role.",
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
    Standalone(Box<StandaloneArgs>),
    /// The HTTP API (ingest, plot requests, states, PNGs) against RabbitMQ, MongoDB, Redis.
    Api(Box<ApiArgs>),
    /// A rendering worker consuming plot jobs from RabbitMQ.
    Worker(Box<WorkerArgs>),
    /// The SSE notifier (GET /api/v1/events), fed from Redis.
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
    Tail(crate::tail::TailArgs),
}

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
    /// How long to send in live mode (`<n>s|m|h|d`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Instead of live mode: write this much history (`24h`), as fast as accepted.
    #[arg(long, value_parser = parse_duration)]
    pub backfill: Option<Duration>,
    /// Seed of the generated values.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// No progress bar (the summary line is still printed).
    #[arg(long)]
    pub quiet: bool,
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
}

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
    /// Seconds of the quiet tenant alone (its baseline).
    #[arg(long, default_value_t = 10)]
    pub alone_secs: u64,
    /// Seconds of both tenants together.
    #[arg(long, default_value_t = 30)]
    pub together_secs: u64,
    /// Samples ingested into the bench's service (the last 10 minutes) before it starts:
    /// what each render reads.
    #[arg(long, default_value_t = 300_000)]
    pub samples: u32,
    /// The plot kind both tenants ask for.
    #[arg(long, default_value = "histogram")]
    pub kind: String,
}

#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Hours of history to backfill.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Samples per minute of the one series.
    #[arg(long, default_value_t = 200_000)]
    pub per_minute: usize,
    /// Plot windows to time (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "24h,1h,10m")]
    pub windows: Vec<String>,
    /// Timed plots per window and kind.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// The store's byte bound.
    #[arg(long, default_value_t = 16 << 30)]
    pub max_bytes: u64,
}

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

// ---- The roles: which settings each one reads. ----

/// `plotq standalone` (and plain `plotq`): every role in one process, in-memory ports.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// Rendering workers in the process.
    #[arg(long, env = "PLOTQ_STANDALONE_WORKERS", default_value_t = 2)]
    pub workers: u16,
    /// Do not run the built-in demo producer (1/0, true/false, yes/no, on/off).
    #[arg(long, env = "PLOTQ_NO_DEMO", value_parser = BoolishValueParser::new())]
    pub no_demo: bool,
    /// Bytes of memory the in-memory store may hold, counted as they are allocated
    /// (~10 a sample in a long series, ~1 KiB a new series); past it, ingest is refused
    /// with `507 store_full` (nothing is dropped to make room).
    #[arg(long, env = "PLOTQ_MEMORY_STORE_MAX_BYTES", default_value_t = 2 << 30)]
    pub memory_store_max_bytes: u64,
    /// Series (service, metric) the in-memory store may hold; a batch adding more is
    /// refused with `507 store_full`.
    #[arg(
        long,
        env = "PLOTQ_MEMORY_STORE_MAX_SERIES",
        default_value_t = 1_000_000
    )]
    pub memory_store_max_series: usize,
    #[command(flatten)]
    pub retention: RetentionSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub api: ApiSettings,
    #[command(flatten)]
    pub budget: PlotBudgetSettings,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub queue: QueueSettings,
    #[command(flatten)]
    pub bus: EventBusSettings,
    #[command(flatten)]
    pub series: SeriesSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

impl StandaloneArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(
            self.memory_store_max_series as u64,
            1,
            "PLOTQ_MEMORY_STORE_MAX_SERIES",
        )?;
        self.http.validate()?;
        self.auth.validate()?;
        self.api.validate()?;
        self.budget.validate()?;
        self.events.validate()?;
        self.worker.validate()?;
        self.cache.validate()?;
        self.queue.validate()?;
        self.log.validate()
    }
}

/// `plotq api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub api: ApiSettings,
    #[command(flatten)]
    pub budget: PlotBudgetSettings,
    /// The image lifetime bounds how long identical requests share a render.
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub series: SeriesSettings,
    #[command(flatten, next_help_heading = "Statistics")]
    pub sources: SourceSettings,
    #[command(flatten)]
    pub rabbit: BrokerAccess,
    #[command(flatten)]
    pub mongo: MongoSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

impl ApiArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.http.validate()?;
        self.auth.validate()?;
        self.api.validate()?;
        self.budget.validate()?;
        self.cache.validate()?;
        self.rabbit.validate()?;
        self.redis.validate()?;
        self.log.validate()
    }
}

/// `plotq worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// How long a job waits for its store or cache to come back (`<n>s|m|h`) before it
    /// is dead-lettered as `dependency_unavailable` (`plotq dlq retry` replays it). Only
    /// for `plotq worker`: standalone's in-memory ports never go down.
    #[arg(long, env = "PLOTQ_OUTAGE_BUDGET", default_value = "2m", value_parser = parse_duration,
          help_heading = "Rendering")]
    pub outage_budget: Duration,
    /// `/healthz`, `/readyz` and `/metrics` (PLOTQ_HTTP_ADDR, default 127.0.0.1:8082).
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub bus: EventBusSettings,
    #[command(flatten)]
    pub rabbit: BrokerAccess,
    #[command(flatten)]
    pub mongo: MongoSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

impl WorkerArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.http.validate()?;
        self.auth.validate()?;
        self.worker.validate()?;
        self.cache.validate()?;
        self.rabbit.validate()?;
        self.redis.validate()?;
        self.log.validate()
    }
}

/// `plotq notifier` (SSE, and the refresher that queues re-renders of watched views).
#[derive(Debug, Args)]
pub struct NotifierArgs {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub budget: PlotBudgetSettings,
    #[command(flatten)]
    pub cache: CacheSettings,
    #[command(flatten)]
    pub bus: EventBusSettings,
    #[command(flatten)]
    pub series: SeriesSettings,
    #[command(flatten)]
    pub rabbit: BrokerAccess,
    #[command(flatten)]
    pub redis: RedisSettings,
    #[command(flatten)]
    pub log: LogSettings,
}

impl NotifierArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.http.validate()?;
        self.auth.validate()?;
        self.events.validate()?;
        self.budget.validate()?;
        self.cache.validate()?;
        self.rabbit.validate()?;
        self.redis.validate()?;
        self.log.validate()
    }
}

/// Reaching RabbitMQ: the shared namespace and dependency timeout, the broker and the
/// work queue's limits (api, worker, notifier and `dlq`).
#[derive(Debug, Args)]
pub struct BrokerAccess {
    #[command(flatten)]
    pub deps: DependencySettings,
    #[command(flatten)]
    pub broker: BrokerSettings,
    #[command(flatten)]
    pub queue: QueueSettings,
}

impl BrokerAccess {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.deps.validate()?;
        self.broker.validate()?;
        self.queue.validate()
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

/// `Err("<name> must be at least <min>")` when `value` is below `min`.
fn at_least<T: PartialOrd + std::fmt::Display>(value: T, min: T, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(value >= min, "{name} must be at least {min}");
    Ok(())
}

// ---- The groups of settings. ----

/// Logging: every role that runs.
#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogSettings {
    /// `text` or `json` logs (levels via RUST_LOG).
    #[arg(long, env = "PLOTQ_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl LogSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "PLOTQ_LOG_FORMAT must be text or json"
        );
        Ok(())
    }
}

/// The HTTP server and how it observes itself: every role (a worker serves only
/// `/healthz`, `/readyz`, `/metrics` and `/api/v1/health`).
#[derive(Debug, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpSettings {
    /// Listen address, `host:port` (a name is resolved at start, first address)
    /// [default: 127.0.0.1:8080 for api and standalone, 127.0.0.1:8081 for notifier,
    /// 127.0.0.1:8082 for worker; port 0 picks a free port].
    #[arg(long, env = "PLOTQ_HTTP_ADDR", value_parser = parse_host_port)]
    pub http_addr: Option<String>,
    /// Open HTTP connections one process accepts (more wait in the backlog).
    #[arg(long, env = "PLOTQ_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "PLOTQ_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, env = "PLOTQ_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Origins allowed to call plotq from a browser on another origin (comma-separated,
    /// `https://dash.example.com`); none by default.
    #[arg(long, env = "PLOTQ_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// In open mode on loopback, the host names besides `localhost`, `127.0.0.1` and
    /// `[::1]` that requests may be addressed to (comma-separated, without port); any
    /// other `Host` is refused (`403 host_not_allowed`), which stops DNS rebinding.
    #[arg(long, env = "PLOTQ_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Requests slower than this many milliseconds are logged at WARN.
    #[arg(
        long,
        env = "PLOTQ_SLOW_REQUEST_MS",
        default_value_t = 1000,
        help_heading = "Observability"
    )]
    pub slow_request_ms: u64,
    /// The service plotq stores its own request durations and status codes under
    /// (`http_request_duration_ms`, `status_code`), so it can plot itself; `off` stores
    /// none. Api and standalone (the roles with a metric store).
    #[arg(
        long,
        env = "PLOTQ_SELF_SERVICE",
        default_value = "plotq",
        help_heading = "Observability"
    )]
    pub self_service: String,
    /// Own request samples that may wait to be stored; past that they are dropped (and
    /// counted in `plotq_self_samples_total{outcome="dropped"}`), never slowing requests.
    #[arg(
        long,
        env = "PLOTQ_SELF_SAMPLES_QUEUE",
        default_value_t = 10_000,
        help_heading = "Observability"
    )]
    pub self_samples_queue: usize,
    /// Own samples stored per second at most (two a request); past it they are dropped
    /// (and counted in `plotq_self_samples_total{outcome="over_rate"}`).
    #[arg(
        long,
        env = "PLOTQ_SELF_SAMPLES_PER_SEC",
        default_value_t = 2_000,
        help_heading = "Observability"
    )]
    pub self_samples_per_sec: u32,
    /// Per-request metrics, logs, statistics and `Server-Timing` (1/0, true/false);
    /// off only to measure what they cost.
    #[arg(long, env = "PLOTQ_REQUEST_METRICS", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new(), help_heading = "Observability")]
    pub request_metrics: bool,
}

/// `host:port` with a port number; the host is resolved when the role binds.
fn parse_host_port(raw: &str) -> Result<String, String> {
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(raw.to_owned()),
        _ => Err(format!(
            "PLOTQ_HTTP_ADDR must be host:port (e.g. 127.0.0.1:8080, localhost:8080 or [::1]:8080), not {raw:?}"
        )),
    }
}

impl HttpSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(self.max_connections, 1, "PLOTQ_MAX_CONNECTIONS")?;
        anyhow::ensure!(
            self.header_timeout_secs >= 1 && self.body_timeout_secs >= 1,
            "PLOTQ_HEADER_TIMEOUT_SECS and PLOTQ_BODY_TIMEOUT_SECS must be at least 1"
        );
        at_least(self.self_samples_queue, 1, "PLOTQ_SELF_SAMPLES_QUEUE")?;
        at_least(self.self_samples_per_sec, 1, "PLOTQ_SELF_SAMPLES_PER_SEC")?;
        if !matches!(self.self_service.as_str(), "off" | "") {
            plotq_domain::ServiceName::parse(&self.self_service).map_err(|e| {
                anyhow::anyhow!(
                    "PLOTQ_SELF_SERVICE {:?} is not a service name: {e}",
                    self.self_service
                )
            })?;
        }
        for origin in &self.cors_origins {
            plotq_http::edge::validate_origin(origin)
                .map_err(|e| anyhow::anyhow!("PLOTQ_CORS_ORIGINS: {e}"))?;
        }
        for host in &self.allowed_hosts {
            plotq_http::edge::validate_host(host)
                .map_err(|e| anyhow::anyhow!("PLOTQ_ALLOWED_HOSTS: {e}"))?;
        }
        Ok(())
    }

    /// The address to listen on: PLOTQ_HTTP_ADDR resolved (its first address), or
    /// `default`. Refused, naming the setting, when the name does not resolve.
    pub fn addr(&self, default: &str) -> anyhow::Result<SocketAddr> {
        let Some(raw) = &self.http_addr else {
            return Ok(default.parse().expect("default address parses"));
        };
        raw.to_socket_addrs()
            .map_err(|e| anyhow::anyhow!("PLOTQ_HTTP_ADDR {raw:?} does not resolve: {e}"))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("PLOTQ_HTTP_ADDR {raw:?} resolves to no address"))
    }

    /// How the role observes its requests (`None`: not at all).
    pub fn observe_config(&self) -> Option<plotq_http::ObserveConfig> {
        self.request_metrics.then(|| plotq_http::ObserveConfig {
            slow_request: Duration::from_millis(self.slow_request_ms),
            self_service: match self.self_service.as_str() {
                "off" | "" => None,
                name => plotq_domain::ServiceName::parse(name).ok(),
            },
            self_queue: self.self_samples_queue,
            self_rate: self.self_samples_per_sec,
            ..plotq_http::ObserveConfig::default()
        })
    }

    /// The edge of a role listening on `addr` with authentication `auth`: in open mode
    /// on loopback, requests must be addressed to a loopback name or an allowed host.
    pub fn edge_config(
        &self,
        addr: SocketAddr,
        auth: &plotq_http::AuthConfig,
    ) -> plotq_http::EdgeConfig {
        let allowed_hosts = (auth.is_open() && addr.ip().is_loopback()).then(|| {
            let mut hosts = plotq_http::edge::loopback_hosts();
            hosts.extend(self.allowed_hosts.iter().cloned());
            hosts
        });
        plotq_http::EdgeConfig {
            cors_origins: self.cors_origins.clone(),
            body_read_timeout: Duration::from_secs(self.body_timeout_secs),
            allowed_hosts,
            ..plotq_http::EdgeConfig::default()
        }
    }

    pub fn server_config(&self) -> plotq_http::ServerConfig {
        plotq_http::ServerConfig {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_timeout_secs),
            ..plotq_http::ServerConfig::default()
        }
    }
}

/// The token entries of `file` and `inline` (as PLOTQ_TOKENS_FILE and PLOTQ_TOKENS).
pub fn read_token_entries(
    file: Option<&std::path::Path>,
    inline: Option<&str>,
) -> anyhow::Result<Vec<plotq_http::auth::TokenEntry>> {
    let mut text = String::new();
    if let Some(path) = file {
        text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS_FILE {}: {e}", path.display()))?;
        text.push('\n');
    }
    if let Some(inline) = inline {
        text.push_str(inline);
    }
    plotq_http::auth::parse_tokens(&text).map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS(_FILE): {e}"))
}

/// Reading PLOTQ_TOKENS_FILE again while a role runs (`PLOTQ_TOKENS_RELOAD_SECS`).
#[derive(Debug, Clone)]
pub struct TokensReload {
    pub file: PathBuf,
    pub inline: Option<String>,
    pub every: Duration,
}

/// Authentication: api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthSettings {
    /// A file of token entries, one a line: `sha256:<hex> scopes=ingest,read
    /// [services=a,b*] [name=x]` (make them with `plotq token new`).
    #[arg(long, env = "PLOTQ_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Token entries as in PLOTQ_TOKENS_FILE, separated by `;` or newlines.
    #[arg(long, env = "PLOTQ_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// `on` (default) or `off`. With no tokens, `on` serves only loopback addresses, open;
    /// `off` serves any address with no authentication at all (behind your own gateway).
    #[arg(long, env = "PLOTQ_AUTH", default_value = "on")]
    pub auth: String,
    /// Key signing browser read tickets; every api and notifier of a deployment must share
    /// it. Required with tokens (at least 32 characters, e.g. `openssl rand -hex 32`).
    #[arg(long, env = "PLOTQ_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,
    /// How long a browser read ticket is valid (10 to 3600 seconds; an event stream
    /// opened with a ticket ends when it expires, with a final `stream.closed` event).
    #[arg(long, env = "PLOTQ_TICKET_TTL_SECS", default_value_t = 300)]
    pub ticket_ttl_secs: u64,
    /// How often PLOTQ_TOKENS_FILE is read again, in seconds (0: only at start). A token
    /// removed or replaced in the file stops working at the next read, with its tickets,
    /// links and open event streams.
    #[arg(long, env = "PLOTQ_TOKENS_RELOAD_SECS", default_value_t = 10)]
    pub tokens_reload_secs: u64,
    /// Key signing render links (`GET /api/v1/render?…&grant=`); every api of a
    /// deployment must share it, and changing it revokes every link. At least 32
    /// characters; unset, it is derived from PLOTQ_TICKET_SECRET (rotating that one then
    /// revokes links too).
    #[arg(long, env = "PLOTQ_GRANT_SECRET", hide_env_values = true)]
    pub grant_secret: Option<String>,
}

impl AuthSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.auth == "on" || self.auth == "off",
            "PLOTQ_AUTH must be on or off"
        );
        at_least(self.ticket_ttl_secs, 10, "PLOTQ_TICKET_TTL_SECS")?;
        anyhow::ensure!(
            self.ticket_ttl_secs <= plotq_http::auth::MAX_TICKET_TTL.as_secs(),
            "PLOTQ_TICKET_TTL_SECS must be at most {} (a ticket travels in URLs)",
            plotq_http::auth::MAX_TICKET_TTL.as_secs()
        );
        Ok(())
    }

    /// The token entries of PLOTQ_TOKENS_FILE and PLOTQ_TOKENS, as they read now.
    pub fn read_tokens(&self) -> anyhow::Result<Vec<plotq_http::auth::TokenEntry>> {
        read_token_entries(self.tokens_file.as_deref(), self.tokens.as_deref())
    }

    /// What reloading the tokens needs: the file, the inline entries and the interval
    /// (`None` when the tokens are read only at start).
    pub fn tokens_reload(&self) -> Option<TokensReload> {
        let file = self.tokens_file.clone()?;
        (self.tokens_reload_secs > 0).then(|| TokensReload {
            file,
            inline: self.tokens.clone(),
            every: Duration::from_secs(self.tokens_reload_secs),
        })
    }

    /// The authentication of an HTTP role listening on `addr`, checked against the
    /// rules: tokens need a shared ticket secret; no tokens is only for loopback unless
    /// `PLOTQ_AUTH=off` says so.
    pub fn auth_config(&self, addr: SocketAddr) -> anyhow::Result<plotq_http::AuthConfig> {
        let tokens = self.read_tokens()?;
        let mut config = plotq_http::AuthConfig::open();
        config.ticket_ttl = Duration::from_secs(self.ticket_ttl_secs);
        // A configured secret is used in every mode, so an api's tickets open its
        // notifiers' streams in open mode too (the dashboard always uses tickets).
        match &self.ticket_secret {
            Some(secret) if secret.len() >= 32 => config.ticket_secret = secret.as_bytes().to_vec(),
            Some(_) => anyhow::bail!("PLOTQ_TICKET_SECRET must be at least 32 characters"),
            None => {}
        }
        match (&self.grant_secret, &self.ticket_secret) {
            (Some(secret), _) if secret.len() >= 32 => {
                config.grant_secret = secret.as_bytes().to_vec()
            }
            (Some(_), _) => anyhow::bail!("PLOTQ_GRANT_SECRET must be at least 32 characters"),
            (None, Some(ticket)) => {
                config.grant_secret =
                    plotq_http::auth::derive_key(ticket.as_bytes(), "plotq render grants v1")
            }
            (None, None) => {}
        }
        if self.auth == "off" {
            anyhow::ensure!(
                tokens.is_empty(),
                "PLOTQ_AUTH=off, yet tokens are configured: remove them or switch auth on"
            );
            tracing::warn!(%addr, "authentication is off (PLOTQ_AUTH=off): every caller may do everything");
            return Ok(config);
        }
        if tokens.is_empty() {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "refusing to listen on {addr} with no tokens: configure PLOTQ_TOKENS_FILE or PLOTQ_TOKENS \
                 (plotq token new), listen on a loopback address, or set PLOTQ_AUTH=off deliberately"
            );
            return Ok(config);
        }
        // The secret itself was applied above; with tokens it is required.
        anyhow::ensure!(
            self.ticket_secret.is_some(),
            "PLOTQ_TICKET_SECRET is required when tokens are configured (every api and notifier must share it; e.g. openssl rand -hex 32)"
        );
        config.tokens = tokens;
        Ok(config)
    }
}

/// Ingest and plot requests: api, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "API")]
pub struct ApiSettings {
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PLOTQ_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Where dashboard pages subscribe to events: `/api/v1/events` when the notifier
    /// shares the page's origin (standalone, or behind one proxy), else its full URL.
    #[arg(long, env = "PLOTQ_EVENTS_URL", default_value = "/api/v1/events")]
    pub events_url: String,
    /// Identical plot requests over unchanged data share one job and its image: while it
    /// is cached (PLOTQ_PNG_TTL_SECS) for a past range, and for a window ending now while
    /// the window has moved less than one of the plot's time buckets — but at least this
    /// many seconds. 0 disables sharing.
    #[arg(long, env = "PLOTQ_DEDUPE_SECS", default_value_t = 10)]
    pub dedupe_secs: u64,
    /// Longest `GET /api/v1/render` waits for its image before answering `503` with
    /// `Retry-After`, in milliseconds (at most 60000).
    #[arg(long, env = "PLOTQ_RENDER_WAIT_MS", default_value_t = 10_000)]
    pub render_wait_ms: u64,
    /// `GET /api/v1/render` requests one process lets wait at once (each holds a
    /// connection); more get `503 render_busy` with `Retry-After`.
    #[arg(long, env = "PLOTQ_RENDER_WAITERS", default_value_t = 256)]
    pub render_waiters: usize,
    /// Of those, how many one caller (or one render link) may have waiting; more get
    /// `429 too_many_connections`.
    #[arg(long, env = "PLOTQ_RENDER_WAITERS_PER_CALLER", default_value_t = 32)]
    pub render_waiters_per_caller: usize,
    /// Plot jobs one caller may have queued or rendering at once, counted over every api
    /// replica; more get `429 too_many_jobs`. Workers serve the callers' jobs in turn, so
    /// one caller's backlog never queues another's jobs behind it.
    #[arg(long, env = "PLOTQ_JOBS_IN_FLIGHT_PER_CALLER", default_value_t = 16)]
    pub jobs_in_flight_per_caller: usize,
    /// How long a job counts toward its caller's jobs in flight when its end is never
    /// seen (a lost job), in seconds.
    #[arg(long, env = "PLOTQ_JOB_LEASE_SECS", default_value_t = 120)]
    pub job_lease_secs: u64,
    /// How long a render link (`POST /api/v1/render/grants`) lives when the request
    /// names no `ttl_secs`.
    #[arg(long, env = "PLOTQ_GRANT_TTL_SECS", default_value_t = 7 * 86_400)]
    pub grant_ttl_secs: u64,
    /// The longest life a render link may be given.
    #[arg(long, env = "PLOTQ_GRANT_MAX_TTL_SECS", default_value_t = 90 * 86_400)]
    pub grant_max_ttl_secs: u64,
    /// `GET /api/v1/stats` reads one process runs at once (a window may hold millions
    /// of raw samples); more wait up to 5 s, then get `429`.
    #[arg(long, env = "PLOTQ_STATS_CONCURRENCY", default_value_t = 4)]
    pub stats_concurrency: usize,
    /// Samples per second one caller (token, or client address) may ingest.
    #[arg(long, env = "PLOTQ_INGEST_SAMPLES_PER_SEC", default_value_t = 100_000)]
    pub ingest_samples_per_sec: u32,
    /// Samples one caller may send in a burst (at least the largest batch, 50,000).
    #[arg(long, env = "PLOTQ_INGEST_BURST", default_value_t = 200_000)]
    pub ingest_burst: u32,
    /// Most one-minute buckets (distinct series × minute) one ingest batch may touch
    /// (each is a stored chunk and a rollup update); more get `422 batch_too_spread`.
    #[arg(long, env = "PLOTQ_MAX_BATCH_BUCKETS", default_value_t = plotq_api::DEFAULT_MAX_BATCH_BUCKETS)]
    pub max_batch_buckets: usize,
    /// Requests per second one render link (`GET /api/v1/render?…&grant=`) may get,
    /// whoever holds it: a link's traffic has its own budget, never its minter's.
    #[arg(long, env = "PLOTQ_GRANT_REQUESTS_PER_SEC", default_value_t = 10)]
    pub grant_requests_per_sec: u32,
    /// Requests one render link may get in a burst.
    #[arg(long, env = "PLOTQ_GRANT_BURST", default_value_t = 40)]
    pub grant_burst: u32,
}

/// What rendering costs a caller: api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Plot budget")]
pub struct PlotBudgetSettings {
    /// Renders per second one caller (token, or client address) may cause: plot
    /// requests that queue a job, and dashboard views opened before they were ever
    /// rendered. Answers from a shared or cached render cost nothing.
    #[arg(long, env = "PLOTQ_PLOT_REQUESTS_PER_SEC", default_value_t = 50)]
    pub plot_requests_per_sec: u32,
    /// Renders one caller may cause in a burst.
    #[arg(long, env = "PLOTQ_PLOT_BURST", default_value_t = 100)]
    pub plot_burst: u32,
}

impl PlotBudgetSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (value, name) in [
            (self.plot_requests_per_sec, "PLOTQ_PLOT_REQUESTS_PER_SEC"),
            (self.plot_burst, "PLOTQ_PLOT_BURST"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

impl ApiSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=60_000).contains(&self.render_wait_ms),
            "PLOTQ_RENDER_WAIT_MS must be 1 to 60000"
        );
        at_least(self.render_waiters as u64, 1, "PLOTQ_RENDER_WAITERS")?;
        at_least(
            self.render_waiters_per_caller as u64,
            1,
            "PLOTQ_RENDER_WAITERS_PER_CALLER",
        )?;
        at_least(
            self.jobs_in_flight_per_caller as u64,
            1,
            "PLOTQ_JOBS_IN_FLIGHT_PER_CALLER",
        )?;
        at_least(self.job_lease_secs, 10, "PLOTQ_JOB_LEASE_SECS")?;
        at_least(self.grant_ttl_secs, 60, "PLOTQ_GRANT_TTL_SECS")?;
        anyhow::ensure!(
            self.grant_max_ttl_secs >= self.grant_ttl_secs,
            "PLOTQ_GRANT_MAX_TTL_SECS must be at least PLOTQ_GRANT_TTL_SECS"
        );
        anyhow::ensure!(
            self.ingest_burst as usize >= plotq_domain::sample::MAX_BATCH,
            "PLOTQ_INGEST_BURST must be at least the largest batch ({})",
            plotq_domain::sample::MAX_BATCH
        );
        at_least(self.max_batch_buckets as u64, 1, "PLOTQ_MAX_BATCH_BUCKETS")?;
        for (value, name) in [
            (self.ingest_samples_per_sec, "PLOTQ_INGEST_SAMPLES_PER_SEC"),
            (self.grant_requests_per_sec, "PLOTQ_GRANT_REQUESTS_PER_SEC"),
            (self.grant_burst, "PLOTQ_GRANT_BURST"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

/// Event streams and live refresh: notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct EventSettings {
    /// Event streams one caller may hold open.
    #[arg(long, env = "PLOTQ_SSE_CONNECTIONS_PER_CALLER", default_value_t = 32)]
    pub sse_connections_per_caller: usize,
    /// Distinct dashboard views one notifier keeps live at once.
    #[arg(long, env = "PLOTQ_MAX_WATCHED_VIEWS", default_value_t = 10_000)]
    pub max_watched_views: usize,
    /// Distinct dashboard views one caller may keep live at once on one notifier (over
    /// all its streams); more get `429 too_many_connections`.
    #[arg(long, env = "PLOTQ_VIEWS_PER_CALLER", default_value_t = 128)]
    pub views_per_caller: usize,
    /// Live refresh: at most one re-render of a watched view per this many seconds.
    #[arg(long, env = "PLOTQ_REFRESH_DEBOUNCE_SECS", default_value_t = 3)]
    pub refresh_debounce_secs: u64,
}

impl EventSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (value, name) in [
            (
                self.sse_connections_per_caller,
                "PLOTQ_SSE_CONNECTIONS_PER_CALLER",
            ),
            (self.max_watched_views, "PLOTQ_MAX_WATCHED_VIEWS"),
            (self.views_per_caller, "PLOTQ_VIEWS_PER_CALLER"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

/// The per-caller limits of an HTTP role: the ingest and plot limits where it serves the
/// API, the stream limit where it serves events (the others keep their defaults, unused).
pub fn limits_config(
    budget: Option<&PlotBudgetSettings>,
    api: Option<&ApiSettings>,
    events: Option<&EventSettings>,
) -> plotq_http::LimitsConfig {
    let mut config = plotq_http::LimitsConfig::default();
    if let Some(budget) = budget {
        config.plot_requests_per_sec = budget.plot_requests_per_sec;
        config.plot_burst = budget.plot_burst;
    }
    if let Some(api) = api {
        config.ingest_samples_per_sec = api.ingest_samples_per_sec;
        config.ingest_burst = api.ingest_burst;
        config.grant_requests_per_sec = api.grant_requests_per_sec;
        config.grant_burst = api.grant_burst;
        config.render_waiters_per_caller = api.render_waiters_per_caller;
    }
    if let Some(events) = events {
        config.sse_connections_per_caller = events.sse_connections_per_caller;
        config.views_per_caller = events.views_per_caller;
    }
    config
}

/// Rendering: worker, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rendering")]
pub struct WorkerSettings {
    /// Jobs one worker processes at once (= concurrent renders per worker; size its
    /// CPU from this).
    #[arg(long, env = "PLOTQ_PREFETCH", default_value_t = 2)]
    pub prefetch: u16,
    /// Jobs one worker holds beyond those it processes, so it can serve callers in turn
    /// rather than in arrival order (the broker's prefetch is PLOTQ_PREFETCH +
    /// PLOTQ_LOOKAHEAD); 0 takes jobs in arrival order.
    #[arg(long, env = "PLOTQ_LOOKAHEAD", default_value_t = 14)]
    pub lookahead: u16,
    /// Longest a single render may take, in seconds.
    #[arg(long, env = "PLOTQ_RENDER_DEADLINE_SECS", default_value_t = 30)]
    pub render_deadline_secs: u64,
    /// Attempts before a transiently failing job is dead-lettered.
    #[arg(long, env = "PLOTQ_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    #[command(flatten)]
    pub sources: SourceSettings,
    /// A job's store read slower than this many milliseconds is logged as a warning.
    #[arg(long, env = "PLOTQ_SLOW_QUERY_MS", default_value_t = 1_000)]
    pub slow_query_ms: u64,
    /// A job's render (drawing plus encoding) slower than this many milliseconds is
    /// logged as a warning.
    #[arg(long, env = "PLOTQ_SLOW_RENDER_MS", default_value_t = 2_000)]
    pub slow_render_ms: u64,
}

impl WorkerSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(self.prefetch, 1, "PLOTQ_PREFETCH")?;
        at_least(self.render_deadline_secs, 1, "PLOTQ_RENDER_DEADLINE_SECS")?;
        Ok(())
    }
}

/// What a window is read from (raw samples or rollups): the workers, and the api for
/// `GET /api/v1/stats`, which must read as the workers do.
#[derive(Debug, Args)]
pub struct SourceSettings {
    /// Windows longer than this (`<n>s|m|h|d`) are drawn from one-minute rollups (so are
    /// windows reaching past the raw retention).
    #[arg(long, env = "PLOTQ_ROLLUP_AFTER", default_value = "3h", value_parser = parse_duration)]
    pub rollup_after: Duration,
    /// Windows holding more samples than this (all services together) are drawn from
    /// rollups.
    #[arg(long, env = "PLOTQ_RAW_MAX_SAMPLES", default_value_t = 5_000_000)]
    pub raw_max_samples: u64,
}

/// How long job states stay readable: every role that writes them.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct StateSettings {
    /// Seconds a job's state stays readable.
    #[arg(long, env = "PLOTQ_STATE_TTL_SECS", default_value_t = 3600)]
    pub state_ttl_secs: u64,
}

/// Cache lifetimes of images and states: worker, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheSettings {
    /// Seconds a rendered PNG stays in the cache (the notifier re-renders watched views
    /// before it expires).
    #[arg(long, env = "PLOTQ_PNG_TTL_SECS", default_value_t = 600)]
    pub png_ttl_secs: u64,
    #[command(flatten)]
    pub state: StateSettings,
}

impl CacheSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(self.png_ttl_secs, 1, "PLOTQ_PNG_TTL_SECS")?;
        anyhow::ensure!(
            self.state.state_ttl_secs >= self.png_ttl_secs,
            "PLOTQ_STATE_TTL_SECS must be at least PLOTQ_PNG_TTL_SECS"
        );
        Ok(())
    }
}

/// The job queue's bounds and retry tiers: every role that declares the queues (they
/// must agree), and standalone's in-process queue.
#[derive(Debug, Args)]
#[command(next_help_heading = "Queue")]
pub struct QueueSettings {
    /// Most jobs waiting in the queue before plot requests are refused.
    #[arg(long, env = "PLOTQ_MAX_QUEUED_JOBS", default_value_t = 10_000)]
    pub max_queued_jobs: u32,
    /// Backoff before each retry of a transiently failing job, in seconds (one retry
    /// queue per tier; the last tier repeats).
    #[arg(
        long,
        env = "PLOTQ_RETRY_DELAYS",
        default_value = "1,5,25",
        value_delimiter = ','
    )]
    pub retry_delays: Vec<u64>,
}

impl QueueSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(self.max_queued_jobs, 1, "PLOTQ_MAX_QUEUED_JOBS")?;
        Ok(())
    }

    pub fn retry_delays(&self) -> Vec<Duration> {
        self.retry_delays
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect()
    }
}

/// The event stream's replay history: worker, notifier (writers), standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct EventBusSettings {
    /// Events kept for SSE replay.
    #[arg(long, env = "PLOTQ_EVENT_HISTORY", default_value_t = 10_000)]
    pub event_history: usize,
}

/// The series list (service picker, live refresh): api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct SeriesSettings {
    /// Most series (service, metric) remembered for the service list and live refresh;
    /// the least recently touched are forgotten first (entries also expire after 8 days).
    #[arg(long, env = "PLOTQ_MAX_SERIES", default_value_t = 10_000)]
    pub max_series: usize,
}

/// What every role with external dependencies shares: api, worker, notifier, dlq.
#[derive(Debug, Args)]
#[command(next_help_heading = "Dependencies")]
pub struct DependencySettings {
    /// Prefix for queue, exchange, Redis key and database names, so deployments (or
    /// test runs) can share one broker, Redis and MongoDB.
    #[arg(long, env = "PLOTQ_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Timeout for connecting to and calling each dependency, in seconds.
    #[arg(long, env = "PLOTQ_DEPENDENCY_TIMEOUT_SECS", default_value_t = 5)]
    pub dependency_timeout_secs: u64,
    /// Consecutive calls to a dependency that fail to reach it before this process
    /// believes it down and answers requests needing it with 503 at once (a failed
    /// health probe counts as enough on its own); 0 turns failing fast off.
    #[arg(long, env = "PLOTQ_BREAKER_FAILURES", default_value_t = 3)]
    pub breaker_failures: u32,
    /// While a dependency is believed down, how often a probe (the background one, or a
    /// readiness check) checks whether it is back, in milliseconds; requests meanwhile
    /// get 503 at once.
    #[arg(long, env = "PLOTQ_BREAKER_COOLDOWN_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub breaker_cooldown_ms: u64,
}

impl DependencySettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        let ns_ok = self
            .namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        anyhow::ensure!(
            ns_ok && self.namespace.len() <= 40,
            "PLOTQ_NAMESPACE must be at most 40 letters, digits, '-' or '_'"
        );
        Ok(())
    }

    /// `plotq`, or `<ns>` + separator + `plotq` when a namespace is set.
    pub fn scoped(&self, separator: &str) -> String {
        if self.namespace.is_empty() {
            "plotq".to_owned()
        } else {
            format!("{}{separator}plotq", self.namespace)
        }
    }

    pub fn dependency_timeout(&self) -> Duration {
        Duration::from_secs(self.dependency_timeout_secs.max(1))
    }

    /// A new breaker for `dependency`; a role builds one per dependency and shares it
    /// with every adapter of that dependency.
    pub fn breaker(&self, dependency: &'static str) -> plotq_ports::Breaker {
        plotq_ports::Breaker::system(
            dependency,
            plotq_ports::BreakerConfig {
                failures_to_open: self.breaker_failures,
                cooldown: Duration::from_millis(self.breaker_cooldown_ms),
            },
        )
    }
}

/// RabbitMQ: api, worker, notifier, dlq.
#[derive(Debug, Args)]
#[command(next_help_heading = "RabbitMQ")]
pub struct BrokerSettings {
    /// RabbitMQ URL (credentials included; never logged), or the nodes of a RabbitMQ
    /// cluster as several URLs separated by commas, tried in turn.
    #[arg(
        long,
        env = "PLOTQ_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// Deliveries of one job before the broker gives up on it.
    #[arg(long, env = "PLOTQ_DELIVERY_LIMIT", default_value_t = 20)]
    pub delivery_limit: u32,
}

impl BrokerSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        at_least(self.delivery_limit, 1, "PLOTQ_DELIVERY_LIMIT")?;
        plotq_amqp::check_url(&self.amqp_url)
            .map_err(|e| anyhow::anyhow!("PLOTQ_AMQP_URL: {e}"))?;
        Ok(())
    }
}

/// MongoDB: api, worker.
#[derive(Debug, Args)]
#[command(next_help_heading = "MongoDB")]
pub struct MongoSettings {
    /// MongoDB URL (credentials included; never logged).
    #[arg(
        long,
        env = "PLOTQ_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017",
        hide_env_values = true
    )]
    pub mongodb_url: String,
    /// Database name (prefixed with `<namespace>_` when a namespace is set).
    #[arg(long, env = "PLOTQ_MONGODB_DB", default_value = "plotq")]
    pub mongodb_db: String,
    #[command(flatten)]
    pub retention: RetentionSettings,
}

/// How long samples are kept: the MongoDB store (api, worker) and standalone's store.
#[derive(Debug, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionSettings {
    /// How long raw samples are kept (`<n>s|m|h|d`); older ones are deleted (a TTL index
    /// in MongoDB, changed in place when this changes).
    #[arg(long, env = "PLOTQ_RAW_RETENTION", default_value = "48h", value_parser = parse_duration)]
    pub raw_retention: Duration,
    /// How long the one-minute rollups are kept (`<n>s|m|h|d`); plots of windows past
    /// the raw retention are drawn from them.
    #[arg(long, env = "PLOTQ_ROLLUP_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub rollup_retention: Duration,
}

/// `<n>s`, `<n>m`, `<n>h` or `<n>d`, at least one second.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let unit = raw.chars().last().unwrap_or(' ');
    let secs_per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    match raw[..raw.len() - unit.len_utf8().min(raw.len())].parse::<u64>() {
        Ok(n) if secs_per > 0 && n > 0 && n.checked_mul(secs_per).is_some() => {
            Ok(Duration::from_secs(n * secs_per))
        }
        _ => Err(format!(
            "expected a duration like 90s, 30m, 48h or 90d, not {raw:?}"
        )),
    }
}

impl MongoSettings {
    /// The database name, scoped by the namespace.
    pub fn database(&self, deps: &DependencySettings) -> String {
        if deps.namespace.is_empty() {
            self.mongodb_db.clone()
        } else {
            format!("{}_{}", deps.namespace, self.mongodb_db)
        }
    }
}

/// Redis: api, worker, notifier.
#[derive(Debug, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisSettings {
    /// Redis URL (credentials included; never logged), or a Redis Cluster's seed nodes
    /// as several URLs separated by commas
    /// (`redis://:pw@10.0.0.1:6379,redis://:pw@10.0.0.2:6379`).
    #[arg(
        long,
        env = "PLOTQ_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Talk to a Redis Cluster (slot routing, MOVED/ASK) even when PLOTQ_REDIS_URL
    /// names one seed node, e.g. a cluster's single DNS name; several URLs always mean
    /// a cluster.
    #[arg(long, env = "PLOTQ_REDIS_CLUSTER", default_value_t = false,
          action = clap::ArgAction::Set, value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub redis_cluster: bool,
}

impl RedisSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.topology()?;
        Ok(())
    }

    /// One node or a cluster, as `PLOTQ_REDIS_URL` and `PLOTQ_REDIS_CLUSTER` say.
    pub fn topology(&self) -> anyhow::Result<plotq_redis::Topology> {
        plotq_redis::Topology::parse(&self.redis_url, self.redis_cluster)
            .map_err(|e| anyhow::anyhow!("PLOTQ_REDIS_URL: {e}"))
    }
}

/// A URL (or a comma-separated list of URLs, or a MongoDB URL with several hosts) with
/// every password replaced, for logs (`plotq_ports::split_urls` says where each URL
/// ends).
pub fn redact(url: &str) -> String {
    plotq_ports::split_urls(url)
        .into_iter()
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn api(args: &[&str]) -> ApiArgs {
        let mut all = vec!["plotq", "api"];
        all.extend_from_slice(args);
        match Cli::parse_from(all).into_command() {
            Command::Api(args) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn worker(args: &[&str]) -> WorkerArgs {
        let mut all = vec!["plotq", "worker"];
        all.extend_from_slice(args);
        match Cli::parse_from(all).into_command() {
            Command::Worker(args) => *args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://:a@h1:7000,redis://u:b@h2:7000"),
            "redis://:***@h1:7000,redis://u:***@h2:7000"
        );
        assert_eq!(
            redact("mongodb://u:p@h1:27017,h2:27017/?replicaSet=rs0"),
            "mongodb://u:***@h1:27017,h2:27017/?replicaSet=rs0"
        );
        // A comma inside a password does not split the URL.
        assert_eq!(
            redact("mongodb://u:pa,ss@h1,h2/?w=1"),
            "mongodb://u:***@h1,h2/?w=1"
        );
        assert_eq!(
            redact("amqp://u:a,b@h1/%2f, amqp://u:c@h2/%2f"),
            "amqp://u:***@h1/%2f,amqp://u:***@h2/%2f"
        );
    }

    #[test]
    fn broker_lists_are_checked_address_by_address() {
        let nodes = api(&["--amqp-url", "amqp://a:5672/%2f, amqps://u:p@b:5671/prod"]);
        assert!(nodes.validate().is_ok());
        let bad = api(&["--amqp-url", "amqp://a/%2f,redis://:hunter2@b"]);
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("address 2 of 2"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn redis_clusters_are_named_by_their_seed_nodes() {
        let one = api(&[]);
        assert!(!one.redis.topology().unwrap().is_cluster());
        let forced = api(&["--redis-cluster", "yes"]);
        assert!(forced.redis.topology().unwrap().is_cluster());
        let seeds = api(&["--redis-url", "redis://a:7000, redis://b:7000"]);
        assert_eq!(
            seeds.redis.topology().unwrap(),
            plotq_redis::Topology::Cluster(vec![
                "redis://a:7000".to_owned(),
                "redis://b:7000".to_owned()
            ])
        );
        for (url, says) in [
            (
                "redis://a:7000,http://:hunter2@b",
                "address 2 of 2 is not a Redis URL",
            ),
            (
                "redis://:hunter2@a:7000/3,redis://b:7000",
                "only database 0",
            ),
            ("redis://a:7000,redis+unix:///tmp/hunter2.sock", "over TCP"),
            ("rediss://:hunter2@a:7000", "TLS"),
        ] {
            let err = api(&["--redis-url", url])
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        // One node may be a unix socket and any database.
        assert!(api(&["--redis-url", "redis://a:6379/3"]).validate().is_ok());
    }

    #[test]
    fn namespaces_scope_names() {
        let args = api(&["--namespace", "t1"]);
        assert_eq!(args.rabbit.deps.scoped("."), "t1.plotq");
        assert_eq!(args.mongo.database(&args.rabbit.deps), "t1_plotq");
        let args = worker(&[]);
        assert_eq!(args.rabbit.deps.scoped(":"), "plotq");
        assert_eq!(args.mongo.database(&args.rabbit.deps), "plotq");
        assert!(worker(&["--namespace", "a b"]).validate().is_err());
        let err = Cli::parse_from(["plotq", "dlq", "list", "--namespace", "a b"])
            .into_command()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("PLOTQ_NAMESPACE"), "{err}");
    }

    #[test]
    fn validation_names_the_setting() {
        let cases: [(&[&str], &str); 4] = [
            (&["worker", "--prefetch", "0"], "PLOTQ_PREFETCH"),
            (
                &["worker", "--png-ttl-secs", "60", "--state-ttl-secs", "30"],
                "PLOTQ_STATE_TTL_SECS",
            ),
            (&["api", "--ingest-burst", "10"], "PLOTQ_INGEST_BURST"),
            (&["notifier", "--log-format", "xml"], "PLOTQ_LOG_FORMAT"),
        ];
        for (args, setting) in cases {
            let command = Cli::parse_from(std::iter::once("plotq").chain(args.iter().copied()))
                .into_command();
            let err = command.validate().unwrap_err().to_string();
            assert!(err.contains(setting), "{args:?}: {err}");
        }
    }

    /// Without a subcommand plotq runs standalone, and flags given then are standalone's.
    #[test]
    fn plain_plotq_is_standalone_with_its_flags() {
        let Command::Standalone(args) =
            Cli::parse_from(["plotq", "--no-demo", "--workers", "3"]).into_command()
        else {
            panic!("plain plotq runs standalone");
        };
        assert!(args.no_demo);
        assert_eq!(args.workers, 3);
        // Role options belong after the role.
        assert!(Cli::try_parse_from(["plotq", "--no-demo", "api"]).is_err());
        assert!(Cli::try_parse_from(["plotq", "worker", "--no-demo"]).is_err());
    }

    /// Runs the test `name` (a path below this module) again in a child process with
    /// `env` set: a test cannot set variables in its own process (`set_var` is unsafe, and
    /// unsafe code is forbidden). Returns true in the child, where the body runs; in the
    /// parent it fails unless the child ran that one test and it passed.
    fn in_child_with_env(name: &str, env: &[(&str, &str)]) -> bool {
        const CHILD: &str = "PLOTQ_CONFIG_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
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

    #[test]
    fn plain_plotq_honours_the_standalone_env() {
        let env = [("PLOTQ_NO_DEMO", "1"), ("PLOTQ_STANDALONE_WORKERS", "5")];
        if !in_child_with_env("plain_plotq_honours_the_standalone_env", &env) {
            return;
        }
        for argv in [&["plotq"][..], &["plotq", "standalone"]] {
            let cli = Cli::try_parse_from(argv).unwrap();
            let Command::Standalone(args) = cli.into_command() else {
                panic!("{argv:?} runs standalone");
            };
            assert!(args.no_demo, "{argv:?}: PLOTQ_NO_DEMO=1 is honoured");
            assert_eq!(args.workers, 5, "{argv:?}: PLOTQ_STANDALONE_WORKERS");
        }
    }

    /// Boolean settings read from the environment accept the usual spellings: the
    /// value parser of `--no-demo` (the one PLOTQ_NO_DEMO goes through), given values.
    #[test]
    fn booleans_accept_the_usual_spellings() {
        let cli = Cli::command();
        let flag = cli
            .get_arguments()
            .find(|a| a.get_id() == "no_demo")
            .expect("the top level has --no-demo")
            .clone()
            .action(clap::ArgAction::Set);
        let parse = |value: &str| {
            clap::Command::new("t")
                .arg(flag.clone())
                .try_get_matches_from(["t", "--no-demo", value])
                .map(|m| m.get_one::<bool>("no_demo").copied())
        };
        for (value, expected) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("off", false),
        ] {
            let parsed = parse(value).unwrap_or_else(|e| panic!("PLOTQ_NO_DEMO={value}: {e}"));
            assert_eq!(parsed, Some(expected), "{value}");
        }
        assert!(parse("maybe").is_err());
    }

    #[test]
    fn http_addr_takes_host_and_port() {
        let args = api(&["--http-addr", "localhost:0"]);
        let addr = args.http.addr("127.0.0.1:8080").unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 0);
        assert_eq!(
            api(&["--http-addr", "[::1]:9000"])
                .http
                .addr("127.0.0.1:8080")
                .unwrap(),
            "[::1]:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            api(&[]).http.addr("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        // No port, or not a number: refused while parsing, naming the setting.
        for bad in ["localhost", "localhost:http", ":8080", "127.0.0.1:70000"] {
            let err = Cli::try_parse_from(["plotq", "api", "--http-addr", bad]).unwrap_err();
            assert!(err.to_string().contains("PLOTQ_HTTP_ADDR"), "{bad}: {err}");
        }
        // A name that does not resolve: refused at start, naming the setting.
        let err = api(&["--http-addr", "no-such-host.invalid:8080"])
            .http
            .addr("127.0.0.1:8080")
            .unwrap_err()
            .to_string();
        assert!(err.contains("PLOTQ_HTTP_ADDR"), "{err}");
    }

    fn help(role: &str) -> String {
        let mut cli = Cli::command();
        cli.build();
        cli.find_subcommand_mut(role)
            .unwrap_or_else(|| panic!("no subcommand {role}"))
            .render_help()
            .to_string()
    }

    #[test]
    fn each_role_lists_only_its_settings() {
        let worker = help("worker");
        for absent in ["PLOTQ_NO_DEMO", "PLOTQ_MAX_BODY_BYTES", "PLOTQ_EVENTS_URL"] {
            assert!(!worker.contains(absent), "worker help lists {absent}");
        }
        // A worker serves health, readiness and metrics (tokens guard `/metrics`).
        for present in [
            "PLOTQ_PREFETCH",
            "PLOTQ_AMQP_URL",
            "PLOTQ_MONGODB_URL",
            "PLOTQ_REDIS_URL",
            "PLOTQ_HTTP_ADDR",
            "PLOTQ_TOKENS",
        ] {
            assert!(worker.contains(present), "worker help lacks {present}");
        }
        let api = help("api");
        for present in ["PLOTQ_TOKENS", "PLOTQ_HTTP_ADDR", "PLOTQ_MONGODB_URL"] {
            assert!(api.contains(present), "api help lacks {present}");
        }
        assert!(
            !api.contains("PLOTQ_PREFETCH"),
            "api help lists PLOTQ_PREFETCH"
        );
        let notifier = help("notifier");
        assert!(notifier.contains("PLOTQ_HTTP_ADDR"));
        assert!(!notifier.contains("PLOTQ_MONGODB_URL"));
        let standalone = help("standalone");
        assert!(standalone.contains("PLOTQ_NO_DEMO"));
        assert!(!standalone.contains("PLOTQ_AMQP_URL"));
    }

    /// Every option of every (sub)command says what it is for.
    #[test]
    fn every_option_has_a_description() {
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{path} {id} has no description"
                );
            }
            for sub in cmd.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        let mut cli = Cli::command();
        cli.build();
        check(&cli, "plotq");
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;

    fn auth(args: &[&str]) -> AuthSettings {
        let mut all = vec!["plotq", "api"];
        all.extend_from_slice(args);
        match Cli::parse_from(all).into_command() {
            Command::Api(args) => args.auth,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn no_tokens_only_on_loopback_unless_switched_off() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(auth(&[]).auth_config(local).unwrap().is_open());
        let err = auth(&[]).auth_config(public).unwrap_err().to_string();
        assert!(err.contains("refusing to listen on 0.0.0.0:8080"), "{err}");
        assert!(
            auth(&["--auth", "off"])
                .auth_config(public)
                .unwrap()
                .is_open()
        );
        // A configured ticket secret is used in open mode too (api and notifier share it).
        let secret = "s".repeat(32);
        let open = auth(&["--ticket-secret", &secret])
            .auth_config(local)
            .unwrap();
        assert_eq!(open.ticket_secret, secret.as_bytes());
    }

    #[test]
    fn tokens_need_a_shared_ticket_secret() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let line = format!("{} scopes=read", plotq_http::auth::hash_token("t"));
        let err = auth(&["--tokens", &line]).auth_config(public).unwrap_err();
        assert!(err.to_string().contains("PLOTQ_TICKET_SECRET"));
        let secret = "x".repeat(32);
        let config = auth(&["--tokens", &line, "--ticket-secret", &secret])
            .auth_config(public)
            .unwrap();
        assert_eq!(config.tokens.len(), 1);
        assert!(
            auth(&["--tokens", "sha256:zz scopes=read"])
                .auth_config(public)
                .is_err()
        );
    }
}
