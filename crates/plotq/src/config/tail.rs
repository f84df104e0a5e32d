//! `plotq tail`'s arguments (`TailArgs`) and what is checked of them before anything
//! is read or sent: the batch bounds the api allows, and the `--service`/`--map` rules,
//! with the api's own rules for Caddy logs (the one place plotq's binary names them).
//! Its intervals are Go durations (`500ms`, `1m30s`), as Caddy writes them. Following
//! the file is `crate::tools::tail`'s.

use clap::Args;
use plotq_api::caddy::{MAX_LINE_BYTES, ServiceMap, parse_go_duration};
use plotq_domain::ServiceName;
use std::path::PathBuf;
use std::time::Duration;

/// `plotq tail`.
#[derive(Args)]
pub struct TailArgs {
    /// The Caddy access log to follow (JSON format, as the `log` directive writes it).
    pub file: PathBuf,
    /// The api's base URL.
    #[arg(long, env = "PLOTQ_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A token with the `ingest` scope, when the api requires one.
    #[arg(long, env = "PLOTQ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The service of hosts no `--map` names (without it, their lines are malformed).
    #[arg(long)]
    pub service: Option<String>,
    /// `HOST=SERVICE` or `*.SUFFIX=SERVICE` (repeatable): the service of a host.
    #[arg(long = "map", value_name = "HOST=SERVICE")]
    pub map: Vec<String>,
    /// Per-method duration metrics (`http_request_duration_ms.get`).
    #[arg(long)]
    pub metric_per_method: bool,
    /// Without a state file: send the file's existing lines too (default: only new ones).
    #[arg(long)]
    pub from_start: bool,
    /// Where the position is kept, so a restart resumes where it stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Most lines per request (at most 25000).
    #[arg(long, default_value_t = 1000)]
    pub batch_lines: usize,
    /// Most bytes per request (keep it under the api's body limit).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_bytes: usize,
    /// Longest a complete line waits before its batch is sent (`500ms`, `2s`).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// How often the file is checked for new lines and rotation.
    #[arg(long, default_value = "250ms", value_parser = parse_interval)]
    pub poll: Duration,
    /// Shortest time between two summary lines.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub summary_every: Duration,
}

/// The token stays out of every `Debug` (and so out of every log line).
impl std::fmt::Debug for TailArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailArgs")
            .field("file", &self.file)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("service", &self.service)
            .field("map", &self.map)
            .field("metric_per_method", &self.metric_per_method)
            .field("from_start", &self.from_start)
            .field("state", &self.state)
            .field("batch_lines", &self.batch_lines)
            .field("batch_bytes", &self.batch_bytes)
            .field("interval", &self.interval)
            .field("poll", &self.poll)
            .field("summary_every", &self.summary_every)
            .finish()
    }
}

/// A Go-style duration (`250ms`, `1s`, `1m30s`), more than zero.
fn parse_interval(raw: &str) -> Result<Duration, String> {
    match parse_go_duration(raw) {
        Ok(ms) if ms > 0.0 && ms <= 86_400_000.0 => Ok(Duration::from_secs_f64(ms / 1000.0)),
        Ok(_) => Err(format!("{raw:?}: from 1ms to 24h")),
        Err(e) => Err(e),
    }
}

/// Largest batch: the api reads at most 25,000 lines per request.
const MAX_BATCH_LINES: usize = plotq_api::caddy::MAX_LINES;
/// Smallest `--batch-bytes`: one line of the longest length the api accepts.
pub const MIN_BATCH_BYTES: usize = MAX_LINE_BYTES + 1;
/// The longest line the api accepts; longer ones are skipped here.
pub const LONGEST_LINE: usize = MAX_LINE_BYTES;

impl TailArgs {
    /// Refuses, before anything is read or sent, what the api would refuse of every
    /// batch: a `--service` or `--map` its rules reject, batches it cannot take.
    pub fn check(&self) -> anyhow::Result<()> {
        let default = self
            .service
            .as_deref()
            .map(ServiceName::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--service: {e}"))?;
        let mut map = ServiceMap::new(default);
        for rule in &self.map {
            anyhow::ensure!(!rule.contains(','), "--map {rule:?}: one rule per --map");
            map.add_rule(rule)
                .map_err(|e| anyhow::anyhow!("--map: {e}"))?;
        }
        anyhow::ensure!(
            (1..=MAX_BATCH_LINES).contains(&self.batch_lines),
            "--batch-lines must be from 1 to {MAX_BATCH_LINES}"
        );
        anyhow::ensure!(
            self.batch_bytes >= MIN_BATCH_BYTES,
            "--batch-bytes must be at least {MIN_BATCH_BYTES} (one line of the longest length the api accepts)"
        );
        Ok(())
    }

    /// Where the position is kept: `--state`, or `<FILE>.plotq-tail`.
    pub fn state_path(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| {
            let mut name = self.file.as_os_str().to_owned();
            name.push(".plotq-tail");
            PathBuf::from(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_go_durations() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("48h").is_err());
    }
}
