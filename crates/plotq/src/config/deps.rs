//! What every role with external dependencies shares (`DependencySettings`: the
//! namespace that scopes every name, the dependency timeout and the breakers' settings)
//! and `redact`, the form of a dependency URL that may be logged.

use super::values::{self, Validate};
use clap::Args;
use std::time::Duration;

/// What every role with external dependencies shares: api, worker, notifier, dlq.
#[derive(Debug, Args)]
#[command(next_help_heading = "Dependencies")]
pub struct DependencySettings {
    /// Prefix for queue, exchange, Redis key and database names, so deployments (or
    /// test runs) can share one broker, Redis and MongoDB.
    #[arg(long, env = "PLOTQ_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Timeout for connecting to and calling each dependency (at least a second).
    #[arg(long = "dependency-timeout-secs", env = "PLOTQ_DEPENDENCY_TIMEOUT_SECS",
          default_value = "5", value_name = "DURATION", value_parser = values::secs())]
    pub dependency_timeout: Duration,
    /// Consecutive calls to a dependency that fail to reach it before this process
    /// believes it down and answers requests needing it with 503 at once (a failed
    /// health probe counts as enough on its own); 0 turns failing fast off.
    #[arg(long, env = "PLOTQ_BREAKER_FAILURES", default_value_t = 3)]
    pub breaker_failures: u32,
    /// While a dependency is believed down, how often a probe (the background one, or a
    /// readiness check) checks whether it is back (10 ms to 10 minutes); requests
    /// meanwhile get 503 at once.
    #[arg(long = "breaker-cooldown-ms", env = "PLOTQ_BREAKER_COOLDOWN_MS", default_value = "1000",
          value_name = "DURATION",
          value_parser = values::millis()
              .at_least(Duration::from_millis(10))
              .at_most(Duration::from_secs(600)))]
    pub breaker_cooldown: Duration,
}

impl Validate for DependencySettings {
    fn validate(&self) -> anyhow::Result<()> {
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
}

impl DependencySettings {
    /// `plotq`, or `<ns>` + separator + `plotq` when a namespace is set.
    pub fn scoped(&self, separator: &str) -> String {
        if self.namespace.is_empty() {
            "plotq".to_owned()
        } else {
            format!("{}{separator}plotq", self.namespace)
        }
    }

    /// The dependency timeout, at least a second.
    pub fn dependency_timeout(&self) -> Duration {
        self.dependency_timeout.max(Duration::from_secs(1))
    }

    /// A new breaker for `dependency`; a role builds one per dependency and shares it
    /// with every adapter of that dependency.
    pub fn breaker(&self, dependency: &'static str) -> plotq_ports::Breaker {
        plotq_ports::Breaker::system(
            dependency,
            plotq_ports::BreakerConfig {
                failures_to_open: self.breaker_failures,
                cooldown: self.breaker_cooldown,
            },
        )
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
    use super::redact;

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
}
