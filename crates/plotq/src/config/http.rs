//! The HTTP server's settings and how a role observes its requests (`HttpSettings`), and
//! what they become: the listen address, `plotq_http::ServerConfig`, `EdgeConfig` and
//! `ObserveConfig`. Binding and serving are the roles'.

use super::values::{self, Validate, at_least, at_least_for};
use clap::Args;
use clap::builder::BoolishValueParser;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

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
    /// How long a client may take to send a request's headers.
    #[arg(long = "header-timeout-secs", env = "PLOTQ_HEADER_TIMEOUT_SECS", default_value = "10",
          value_name = "DURATION", value_parser = values::secs())]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    #[arg(long = "body-timeout-secs", env = "PLOTQ_BODY_TIMEOUT_SECS", default_value = "30",
          value_name = "DURATION", value_parser = values::secs())]
    pub body_timeout: Duration,
    /// Origins allowed to call plotq from a browser on another origin (comma-separated,
    /// `https://dash.example.com`); none by default.
    #[arg(long, env = "PLOTQ_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// In open mode on loopback, the host names besides `localhost`, `127.0.0.1` and
    /// `[::1]` that requests may be addressed to (comma-separated, without port); any
    /// other `Host` is refused (`403 host_not_allowed`), which stops DNS rebinding.
    #[arg(long, env = "PLOTQ_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Requests slower than this are logged at WARN.
    #[arg(long = "slow-request-ms", env = "PLOTQ_SLOW_REQUEST_MS", default_value = "1000",
          value_name = "DURATION", value_parser = values::millis(),
          help_heading = "Observability")]
    pub slow_request: Duration,
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

impl Validate for HttpSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least(self.max_connections, 1, "PLOTQ_MAX_CONNECTIONS")?;
        let second = Duration::from_secs(1);
        at_least_for(self.header_timeout, second, "PLOTQ_HEADER_TIMEOUT_SECS")?;
        at_least_for(self.body_timeout, second, "PLOTQ_BODY_TIMEOUT_SECS")?;
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
}

impl HttpSettings {
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
            slow_request: self.slow_request,
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
            body_read_timeout: self.body_timeout,
            allowed_hosts,
            ..plotq_http::EdgeConfig::default()
        }
    }

    pub fn server_config(&self) -> plotq_http::ServerConfig {
        plotq_http::ServerConfig {
            max_connections: self.max_connections,
            header_read_timeout: self.header_timeout,
            ..plotq_http::ServerConfig::default()
        }
    }
}
