//! Command line and environment: one typed struct, every setting also an env var.
//!
//! Validation happens here, at start, with messages naming the setting. Secrets inside
//! URLs are never logged (`redact`).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "plotq",
    version,
    about = "High-frequency metrics in, live plots out."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process with in-process queue, store and cache, plus a demo
    /// producer (the default).
    Standalone(StandaloneArgs),
    /// The HTTP API (ingest, plot requests, states, PNGs) against RabbitMQ, MongoDB, Redis.
    Api,
    /// A rendering worker consuming plot jobs from RabbitMQ.
    Worker,
    /// The SSE notifier (GET /api/v1/events), fed from Redis.
    Notifier,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Inspect and replay the dead-letter queue (jobs that gave up, poison messages).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Make API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
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
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Re-enqueue one dead job (by id) or all of them.
    Retry {
        /// The job id to replay.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args, Default, Clone)]
pub struct StandaloneArgs {
    /// Rendering workers in the process.
    #[arg(long, env = "PLOTQ_STANDALONE_WORKERS", default_value_t = 2)]
    pub workers: u16,
    /// Do not run the built-in demo producer.
    #[arg(long, env = "PLOTQ_NO_DEMO")]
    pub no_demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Render the seed-000 histogram in-process and print timings as one JSON line.
    Render(BenchRenderArgs),
}

#[derive(Debug, Args)]
pub struct BenchRenderArgs {
    /// Little-endian f64 values (the same file the matplotlib baseline reads).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Without --input: generate this many lognormal samples (fixed seed).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Write the last PNG here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "histogram")]
    pub kind: String,
    #[arg(long, default_value_t = 1000)]
    pub width: u32,
    #[arg(long, default_value_t = 600)]
    pub height: u32,
}

/// Settings shared by every role.
#[derive(Debug, Args)]
pub struct Common {
    /// Listen address of the api, notifier or standalone server
    /// [default: 127.0.0.1:8080 for api and standalone, 127.0.0.1:8081 for notifier].
    #[arg(long, env = "PLOTQ_HTTP_ADDR", global = true)]
    pub http_addr: Option<SocketAddr>,
    #[arg(
        long,
        env = "PLOTQ_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        global = true,
        hide_env_values = true
    )]
    pub amqp_url: String,
    #[arg(
        long,
        env = "PLOTQ_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017",
        global = true,
        hide_env_values = true
    )]
    pub mongodb_url: String,
    #[arg(long, env = "PLOTQ_MONGODB_DB", default_value = "plotq", global = true)]
    pub mongodb_db: String,
    #[arg(
        long,
        env = "PLOTQ_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Prefix for queue, exchange, Redis key and database names, so deployments (or
    /// test runs) can share one broker, Redis and MongoDB.
    #[arg(long, env = "PLOTQ_NAMESPACE", default_value = "", global = true)]
    pub namespace: String,
    /// Unacknowledged jobs per worker (= concurrent renders per worker).
    #[arg(long, env = "PLOTQ_PREFETCH", default_value_t = 2, global = true)]
    pub prefetch: u16,
    /// Seconds a rendered PNG stays in the cache.
    #[arg(long, env = "PLOTQ_PNG_TTL_SECS", default_value_t = 600, global = true)]
    pub png_ttl_secs: u64,
    /// Seconds a job's state stays readable.
    #[arg(
        long,
        env = "PLOTQ_STATE_TTL_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub state_ttl_secs: u64,
    /// Longest a single render may take.
    #[arg(
        long,
        env = "PLOTQ_RENDER_DEADLINE_SECS",
        default_value_t = 30,
        global = true
    )]
    pub render_deadline_secs: u64,
    /// Most jobs waiting in the queue before plot requests are refused.
    #[arg(
        long,
        env = "PLOTQ_MAX_QUEUED_JOBS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_queued_jobs: u32,
    /// Backoff before each retry of a transiently failing job, in seconds (one retry
    /// queue per tier; the last tier repeats).
    #[arg(
        long,
        env = "PLOTQ_RETRY_DELAYS",
        default_value = "1,5,25",
        value_delimiter = ',',
        global = true
    )]
    pub retry_delays: Vec<u64>,
    /// Attempts before a transiently failing job is dead-lettered.
    #[arg(long, env = "PLOTQ_MAX_ATTEMPTS", default_value_t = 5, global = true)]
    pub max_attempts: u32,
    /// Identical plot requests within this many seconds (and with no new samples) share
    /// one job; 0 disables it.
    #[arg(long, env = "PLOTQ_DEDUPE_SECS", default_value_t = 10, global = true)]
    pub dedupe_secs: u64,
    /// Deliveries of one job before the broker gives up on it.
    #[arg(
        long,
        env = "PLOTQ_DELIVERY_LIMIT",
        default_value_t = 20,
        global = true
    )]
    pub delivery_limit: u32,
    /// Events kept for SSE replay.
    #[arg(
        long,
        env = "PLOTQ_EVENT_HISTORY",
        default_value_t = 10_000,
        global = true
    )]
    pub event_history: usize,
    /// Timeout for connecting to and calling each dependency.
    #[arg(
        long,
        env = "PLOTQ_DEPENDENCY_TIMEOUT_SECS",
        default_value_t = 5,
        global = true
    )]
    pub dependency_timeout_secs: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PLOTQ_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Where dashboard pages subscribe to events: `/api/v1/events` when the notifier
    /// shares the page's origin (standalone, or behind one proxy), else its full URL.
    #[arg(
        long,
        env = "PLOTQ_EVENTS_URL",
        default_value = "/api/v1/events",
        global = true
    )]
    pub events_url: String,
    /// Live refresh: at most one re-render of a watched view per this many seconds.
    #[arg(
        long,
        env = "PLOTQ_REFRESH_DEBOUNCE_SECS",
        default_value_t = 3,
        global = true
    )]
    pub refresh_debounce_secs: u64,
    /// `text` or `json` logs.
    #[arg(long, env = "PLOTQ_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// A file of token entries, one a line: `sha256:<hex> scopes=ingest,read
    /// [services=a,b*] [name=x]` (make them with `plotq token new`).
    #[arg(long, env = "PLOTQ_TOKENS_FILE", global = true)]
    pub tokens_file: Option<PathBuf>,
    /// Token entries as in PLOTQ_TOKENS_FILE, separated by `;` or newlines.
    #[arg(long, env = "PLOTQ_TOKENS", global = true, hide_env_values = true)]
    pub tokens: Option<String>,
    /// `on` (default) or `off`. With no tokens, `on` serves only loopback addresses, open;
    /// `off` serves any address with no authentication at all (behind your own gateway).
    #[arg(long, env = "PLOTQ_AUTH", default_value = "on", global = true)]
    pub auth: String,
    /// Key signing browser read tickets; every api and notifier of a deployment must share
    /// it. Required with tokens (at least 32 characters, e.g. `openssl rand -hex 32`).
    #[arg(
        long,
        env = "PLOTQ_TICKET_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub ticket_secret: Option<String>,
    /// How long a browser read ticket is valid.
    #[arg(
        long,
        env = "PLOTQ_TICKET_TTL_SECS",
        default_value_t = 300,
        global = true
    )]
    pub ticket_ttl_secs: u64,
    /// Origins allowed to call plotq from a browser on another origin (comma-separated,
    /// `https://dash.example.com`); none by default.
    #[arg(long, env = "PLOTQ_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    /// Samples per second one caller (token, or client address) may ingest.
    #[arg(
        long,
        env = "PLOTQ_INGEST_SAMPLES_PER_SEC",
        default_value_t = 100_000,
        global = true
    )]
    pub ingest_samples_per_sec: u32,
    /// Samples one caller may send in a burst (at least the largest batch, 50,000).
    #[arg(
        long,
        env = "PLOTQ_INGEST_BURST",
        default_value_t = 200_000,
        global = true
    )]
    pub ingest_burst: u32,
    /// Plot requests per second one caller may make.
    #[arg(
        long,
        env = "PLOTQ_PLOT_REQUESTS_PER_SEC",
        default_value_t = 50,
        global = true
    )]
    pub plot_requests_per_sec: u32,
    /// Plot requests one caller may make in a burst.
    #[arg(long, env = "PLOTQ_PLOT_BURST", default_value_t = 100, global = true)]
    pub plot_burst: u32,
    /// Event streams one caller may hold open.
    #[arg(
        long,
        env = "PLOTQ_SSE_CONNECTIONS_PER_CALLER",
        default_value_t = 32,
        global = true
    )]
    pub sse_connections_per_caller: usize,
    /// Distinct dashboard views one notifier keeps live at once.
    #[arg(
        long,
        env = "PLOTQ_MAX_WATCHED_VIEWS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_watched_views: usize,
    /// Open HTTP connections one process accepts (more wait in the backlog).
    #[arg(
        long,
        env = "PLOTQ_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(
        long,
        env = "PLOTQ_HEADER_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub header_timeout_secs: u64,
    /// Most series (service, metric) remembered for the service list and live refresh;
    /// the least recently touched are forgotten first (entries also expire after 8 days).
    #[arg(
        long,
        env = "PLOTQ_MAX_SERIES",
        default_value_t = 10_000,
        global = true
    )]
    pub max_series: usize,
    /// Seconds a client may take to send a request's body.
    #[arg(
        long,
        env = "PLOTQ_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub body_timeout_secs: u64,
}

impl Common {
    /// Checks what clap cannot, naming the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        let ns_ok = self
            .namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        anyhow::ensure!(
            ns_ok && self.namespace.len() <= 40,
            "PLOTQ_NAMESPACE must be at most 40 letters, digits, '-' or '_'"
        );
        anyhow::ensure!(self.prefetch >= 1, "PLOTQ_PREFETCH must be at least 1");
        anyhow::ensure!(
            self.png_ttl_secs >= 1,
            "PLOTQ_PNG_TTL_SECS must be at least 1"
        );
        anyhow::ensure!(
            self.state_ttl_secs >= self.png_ttl_secs,
            "PLOTQ_STATE_TTL_SECS must be at least PLOTQ_PNG_TTL_SECS"
        );
        anyhow::ensure!(
            self.render_deadline_secs >= 1,
            "PLOTQ_RENDER_DEADLINE_SECS must be at least 1"
        );
        anyhow::ensure!(
            self.max_queued_jobs >= 1,
            "PLOTQ_MAX_QUEUED_JOBS must be at least 1"
        );
        anyhow::ensure!(
            self.delivery_limit >= 1,
            "PLOTQ_DELIVERY_LIMIT must be at least 1"
        );
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "PLOTQ_LOG_FORMAT must be text or json"
        );
        anyhow::ensure!(
            self.auth == "on" || self.auth == "off",
            "PLOTQ_AUTH must be on or off"
        );
        anyhow::ensure!(
            self.ingest_burst as usize >= plotq_domain::sample::MAX_BATCH,
            "PLOTQ_INGEST_BURST must be at least the largest batch ({})",
            plotq_domain::sample::MAX_BATCH
        );
        for (value, name) in [
            (self.ingest_samples_per_sec, "PLOTQ_INGEST_SAMPLES_PER_SEC"),
            (self.plot_requests_per_sec, "PLOTQ_PLOT_REQUESTS_PER_SEC"),
            (self.plot_burst, "PLOTQ_PLOT_BURST"),
        ] {
            anyhow::ensure!(value >= 1, "{name} must be at least 1");
        }
        for (value, name) in [
            (
                self.sse_connections_per_caller,
                "PLOTQ_SSE_CONNECTIONS_PER_CALLER",
            ),
            (self.max_watched_views, "PLOTQ_MAX_WATCHED_VIEWS"),
            (self.max_connections, "PLOTQ_MAX_CONNECTIONS"),
        ] {
            anyhow::ensure!(value >= 1, "{name} must be at least 1");
        }
        anyhow::ensure!(
            self.header_timeout_secs >= 1
                && self.body_timeout_secs >= 1
                && self.ticket_ttl_secs >= 10,
            "PLOTQ_HEADER_TIMEOUT_SECS and PLOTQ_BODY_TIMEOUT_SECS must be at least 1, PLOTQ_TICKET_TTL_SECS at least 10"
        );
        for origin in &self.cors_origins {
            plotq_http::edge::validate_origin(origin)
                .map_err(|e| anyhow::anyhow!("PLOTQ_CORS_ORIGINS: {e}"))?;
        }
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

    pub fn database(&self) -> String {
        if self.namespace.is_empty() {
            self.mongodb_db.clone()
        } else {
            format!("{}_{}", self.namespace, self.mongodb_db)
        }
    }

    pub fn dependency_timeout(&self) -> Duration {
        Duration::from_secs(self.dependency_timeout_secs.max(1))
    }
}

/// A URL with any password replaced, for logs.
pub fn redact(url: &str) -> String {
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

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn namespaces_scope_names() {
        let cli = Cli::parse_from(["plotq", "api", "--namespace", "t1"]);
        assert_eq!(cli.common.scoped("."), "t1.plotq");
        assert_eq!(cli.common.database(), "t1_plotq");
        let cli = Cli::parse_from(["plotq"]);
        assert_eq!(cli.common.scoped(":"), "plotq");
        assert!(
            Cli::parse_from(["plotq", "--namespace", "a b"])
                .common
                .validate()
                .is_err()
        );
    }
}

impl Common {
    /// The authentication of an HTTP role listening on `addr`, checked against the
    /// rules: tokens need a shared ticket secret; no tokens is only for loopback unless
    /// `PLOTQ_AUTH=off` says so.
    pub fn auth_config(&self, addr: SocketAddr) -> anyhow::Result<plotq_http::AuthConfig> {
        let mut text = String::new();
        if let Some(path) = &self.tokens_file {
            text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS_FILE {}: {e}", path.display()))?;
            text.push('\n');
        }
        if let Some(inline) = &self.tokens {
            text.push_str(inline);
        }
        let tokens = plotq_http::auth::parse_tokens(&text)
            .map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS(_FILE): {e}"))?;
        let mut config = plotq_http::AuthConfig::open();
        config.ticket_ttl = Duration::from_secs(self.ticket_ttl_secs);
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
        match &self.ticket_secret {
            Some(secret) if secret.len() >= 32 => config.ticket_secret = secret.as_bytes().to_vec(),
            Some(_) => anyhow::bail!("PLOTQ_TICKET_SECRET must be at least 32 characters"),
            None => anyhow::bail!(
                "PLOTQ_TICKET_SECRET is required when tokens are configured (every api and notifier must share it; e.g. openssl rand -hex 32)"
            ),
        }
        config.tokens = tokens;
        Ok(config)
    }

    pub fn limits_config(&self) -> plotq_http::LimitsConfig {
        plotq_http::LimitsConfig {
            ingest_samples_per_sec: self.ingest_samples_per_sec,
            ingest_burst: self.ingest_burst,
            plot_requests_per_sec: self.plot_requests_per_sec,
            plot_burst: self.plot_burst,
            sse_connections_per_caller: self.sse_connections_per_caller,
            ..plotq_http::LimitsConfig::default()
        }
    }

    pub fn edge_config(&self) -> plotq_http::EdgeConfig {
        plotq_http::EdgeConfig {
            cors_origins: self.cors_origins.clone(),
            body_read_timeout: Duration::from_secs(self.body_timeout_secs),
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

#[cfg(test)]
mod auth_tests {
    use super::*;

    fn common(args: &[&str]) -> Common {
        let mut all = vec!["plotq", "api"];
        all.extend_from_slice(args);
        Cli::parse_from(all).common
    }

    #[test]
    fn no_tokens_only_on_loopback_unless_switched_off() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(common(&[]).auth_config(local).unwrap().is_open());
        let err = common(&[]).auth_config(public).unwrap_err().to_string();
        assert!(err.contains("refusing to listen on 0.0.0.0:8080"), "{err}");
        assert!(
            common(&["--auth", "off"])
                .auth_config(public)
                .unwrap()
                .is_open()
        );
    }

    #[test]
    fn tokens_need_a_shared_ticket_secret() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let line = format!("{} scopes=read", plotq_http::auth::hash_token("t"));
        let err = common(&["--tokens", &line])
            .auth_config(public)
            .unwrap_err();
        assert!(err.to_string().contains("PLOTQ_TICKET_SECRET"));
        let secret = "x".repeat(32);
        let config = common(&["--tokens", &line, "--ticket-secret", &secret])
            .auth_config(public)
            .unwrap();
        assert_eq!(config.tokens.len(), 1);
        assert!(
            common(&["--tokens", "sha256:zz scopes=read"])
                .auth_config(public)
                .is_err()
        );
    }
}
