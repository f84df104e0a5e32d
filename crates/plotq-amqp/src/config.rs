//! `AmqpConfig`: where the broker is, the names of the exchange and queues derived from
//! the namespace, and the retry tiers (which delay each retry attempt waits, and the one
//! delay queue per distinct delay).

use std::time::Duration;

/// The delay used when no retry delays are configured.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where and how to reach the broker, and the queue's limits. Its `Debug` shows the URL
/// without its password.
#[derive(Clone)]
pub struct AmqpConfig {
    /// One AMQP URL, or several separated by commas: the nodes of a RabbitMQ cluster,
    /// tried in turn.
    pub url: String,
    /// Prefix of the exchange and queue names, so deployments can share a broker.
    pub namespace: String,
    /// The work queue's `x-max-length`; past it publishes are refused (503 upstream).
    /// Concurrent publishes can overshoot it by a bounded amount: see
    /// [`crate::PUBLISH_CHANNELS`].
    pub max_queued_jobs: u32,
    /// Deliveries of one message before the broker dead-letters it (crash-loop guard).
    pub delivery_limit: u32,
    /// Bound on connecting and on publishing (waiting for a free publishing channel,
    /// the publish and its confirm).
    pub timeout: Duration,
    /// Backoff before each retry; retry k (1-based) waits `retry_delays[k - 1]`, the last
    /// repeats for later attempts. Empty means one second for every retry.
    pub retry_delays: Vec<Duration>,
    /// What this process believes about the broker: publishes (jobs, retries, dead
    /// letters) fail fast while it is believed down; `ping` is the probe.
    pub breaker: plotq_ports::Breaker,
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &crate::redact::redact_urls(&self.url))
            .field("namespace", &self.namespace)
            .field("max_queued_jobs", &self.max_queued_jobs)
            .field("delivery_limit", &self.delivery_limit)
            .field("timeout", &self.timeout)
            .field("retry_delays", &self.retry_delays)
            .finish()
    }
}

/// Whether `url` is one AMQP URL or several separated by commas; the error names a bad
/// address by position, never by content (URLs carry passwords).
pub fn check_url(url: &str) -> Result<(), String> {
    let nodes = plotq_ports::split_urls(url);
    for (i, node) in nodes.iter().enumerate() {
        if node.parse::<lapin::uri::AMQPUri>().is_err() {
            return Err(format!(
                "address {} of {} is not an AMQP URL (amqp://user:password@host:port/vhost)",
                i + 1,
                nodes.len()
            ));
        }
    }
    Ok(())
}

impl AmqpConfig {
    /// The broker addresses `url` lists, in order (at least one).
    pub fn addresses(&self) -> Vec<&str> {
        plotq_ports::split_urls(&self.url)
    }

    pub fn exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    pub fn queue(&self) -> String {
        format!("{}.plot.jobs", self.namespace)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.plot.dead", self.namespace)
    }

    /// How long retry `attempt` (1-based; 0 is treated as 1) waits: `retry_delays[k-1]`,
    /// the last delay for every attempt past the list.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let tiers = &self.retry_delays;
        match tiers.len() {
            0 => DEFAULT_RETRY_DELAY,
            n => tiers[(attempt.max(1) as usize - 1).min(n - 1)],
        }
    }

    /// The delay queue retry `attempt` (1-based) is published to.
    pub fn retry_queue(&self, attempt: u32) -> String {
        self.retry_queue_for(self.retry_delay(attempt))
    }

    /// The distinct retry delays (at millisecond precision, ascending): one delay queue
    /// each. `[1s, 1s, 5s]` has two tiers, 1 s (attempts 1 and 2) and 5 s (attempt 3 on).
    pub fn retry_tiers(&self) -> Vec<Duration> {
        let mut tiers: Vec<Duration> = if self.retry_delays.is_empty() {
            vec![DEFAULT_RETRY_DELAY]
        } else {
            self.retry_delays
                .iter()
                .map(|d| Duration::from_millis(ttl_ms(*d).into()))
                .collect()
        };
        tiers.sort();
        tiers.dedup();
        tiers
    }

    /// Every delay queue, one per tier (what the topology declares).
    pub fn retry_queues(&self) -> Vec<String> {
        self.retry_tiers()
            .into_iter()
            .map(|d| self.retry_queue_for(d))
            .collect()
    }

    pub(crate) fn retry_queue_for(&self, delay: Duration) -> String {
        format!("{}.plot.retry.{}ms", self.namespace, ttl_ms(delay))
    }
}

/// A delay as the `x-message-ttl` of its queue: whole milliseconds, capped at the
/// largest value the 32-bit argument holds (about 49 days).
pub(crate) fn ttl_ms(delay: Duration) -> u32 {
    u32::try_from(delay.as_millis()).unwrap_or(u32::MAX)
}

/// A config for unit tests: namespace `ns`, at most 10 jobs, 5 deliveries, retrying
/// after `delays` seconds.
#[cfg(test)]
pub(crate) fn example(delays: &[u64]) -> AmqpConfig {
    AmqpConfig {
        url: "amqp://127.0.0.1".into(),
        namespace: "ns".into(),
        max_queued_jobs: 10,
        delivery_limit: 5,
        timeout: Duration::from_secs(1),
        retry_delays: delays.iter().map(|s| Duration::from_secs(*s)).collect(),
        breaker: plotq_ports::Breaker::system("rabbitmq", Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::example as config;
    use super::*;

    #[test]
    fn attempt_k_waits_the_kth_delay_and_the_last_repeats() {
        let c = config(&[1, 1, 5]);
        let waits: Vec<u64> = (1..=5).map(|k| c.retry_delay(k).as_secs()).collect();
        assert_eq!(waits, [1, 1, 5, 5, 5]);
        assert_eq!(c.retry_delay(0), Duration::from_secs(1), "0 is read as 1");
        assert_eq!(c.retry_queue(3), "ns.plot.retry.5000ms");
        assert_eq!(c.retry_queue(2), "ns.plot.retry.1000ms");
    }

    #[test]
    fn one_tier_per_distinct_delay_whatever_the_order() {
        assert_eq!(
            config(&[1, 1, 5]).retry_queues(),
            ["ns.plot.retry.1000ms", "ns.plot.retry.5000ms"]
        );
        let c = config(&[5, 1, 5, 25]);
        assert_eq!(
            c.retry_tiers(),
            [1, 5, 25].map(Duration::from_secs).to_vec(),
            "non-adjacent repeats are one tier too"
        );
        for k in 1..=6 {
            assert!(c.retry_queues().contains(&c.retry_queue(k)), "attempt {k}");
        }
        assert_eq!(config(&[]).retry_queues(), ["ns.plot.retry.1000ms"]);
    }

    #[test]
    fn debug_hides_the_password() {
        let mut c = config(&[1]);
        c.url = "amqp://plotq:hunter22@rabbitmq:5672/%2f".into();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("amqp://plotq:***@rabbitmq:5672/%2f"),
            "{shown}"
        );
        assert!(!shown.contains("hunter22"), "{shown}");
    }
}
