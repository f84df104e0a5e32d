//! Rate and connection limits per caller: ingest samples per second, plot requests per
//! second (token buckets from `governor`), concurrent SSE connections and leased views.
//!
//! Limits are counted against `Principal::limit_key` (the token's name, or the client's
//! address when anonymous). Everything over a limit is answered `429` with
//! `Retry-After`. The per-key state is bounded: keys idle long enough to be full again
//! are dropped once more than `max_tracked_keys` are held.

use crate::problem::{Problem, ProblemCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

/// The limits of one role (each caller gets its own budget).
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Samples per second one caller may ingest (sustained).
    pub ingest_samples_per_sec: u32,
    /// Samples one caller may send in a burst (at least the largest batch).
    pub ingest_burst: u32,
    /// Plot requests per second (sustained) per caller.
    pub plot_requests_per_sec: u32,
    pub plot_burst: u32,
    /// Open SSE connections per caller.
    pub sse_connections_per_caller: usize,
    /// Distinct keys tracked before idle ones are dropped.
    pub max_tracked_keys: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ingest_samples_per_sec: 100_000,
            ingest_burst: 200_000,
            plot_requests_per_sec: 50,
            plot_burst: 100,
            sse_connections_per_caller: 32,
            max_tracked_keys: 100_000,
        }
    }
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v.max(1)).expect("at least 1")
}

/// The shared limiters of one process.
pub struct Limits {
    config: LimitsConfig,
    ingest: DefaultKeyedRateLimiter<String>,
    plots: DefaultKeyedRateLimiter<String>,
    sse: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .finish()
    }
}

fn rate_limited(what: &str, wait: std::time::Duration) -> Problem {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    Problem::new(
        ProblemCode::RateLimited,
        format!("{what}; retry in {secs}s"),
    )
    .with_retry_after(secs)
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Arc<Self> {
        let ingest = RateLimiter::keyed(
            Quota::per_second(nz(config.ingest_samples_per_sec))
                .allow_burst(nz(config.ingest_burst)),
        );
        let plots = RateLimiter::keyed(
            Quota::per_second(nz(config.plot_requests_per_sec)).allow_burst(nz(config.plot_burst)),
        );
        Arc::new(Self {
            config,
            ingest,
            plots,
            sse: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    fn bound(&self, limiter: &DefaultKeyedRateLimiter<String>) {
        if limiter.len() > self.config.max_tracked_keys {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Takes `n` samples from `key`'s ingest budget.
    pub fn check_ingest(&self, key: &str, n: usize) -> Result<(), Problem> {
        self.bound(&self.ingest);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match self.ingest.check_key_n(&key.to_owned(), nz(n)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(rate_limited(
                &format!(
                    "more than {} samples/s from this caller",
                    self.config.ingest_samples_per_sec
                ),
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(Problem::new(
                ProblemCode::RateLimited,
                format!(
                    "a batch of {n} samples exceeds this caller's burst of {}; send smaller batches",
                    self.config.ingest_burst
                ),
            )
            .with_retry_after(1)),
        }
    }

    /// Takes one plot request from `key`'s budget.
    pub fn check_plot(&self, key: &str) -> Result<(), Problem> {
        self.bound(&self.plots);
        self.plots.check_key(&key.to_owned()).map_err(|not_until| {
            rate_limited(
                &format!(
                    "more than {} plot requests/s from this caller",
                    self.config.plot_requests_per_sec
                ),
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Counts an SSE connection of `key` until the guard is dropped.
    pub fn open_connection(self: &Arc<Self>, key: &str) -> Result<ConnectionGuard, Problem> {
        let mut open = self.sse.lock().expect("sse lock");
        let n = open.entry(key.to_owned()).or_default();
        if *n >= self.config.sse_connections_per_caller {
            return Err(Problem::new(
                ProblemCode::TooManyConnections,
                format!(
                    "this caller already holds {} event streams (the limit)",
                    self.config.sse_connections_per_caller
                ),
            )
            .with_retry_after(5));
        }
        *n += 1;
        Ok(ConnectionGuard {
            limits: self.clone(),
            key: key.to_owned(),
        })
    }

    /// Open SSE connections of `key` right now.
    pub fn connections(&self, key: &str) -> usize {
        self.sse
            .lock()
            .expect("sse lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// One counted SSE connection.
#[derive(Debug)]
pub struct ConnectionGuard {
    limits: Arc<Limits>,
    key: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.limits.sse.lock().expect("sse lock");
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_per_caller_and_answer_429_with_retry_after() {
        let limits = Limits::new(LimitsConfig {
            ingest_samples_per_sec: 10,
            ingest_burst: 100,
            plot_requests_per_sec: 1,
            plot_burst: 2,
            ..LimitsConfig::default()
        });
        assert!(limits.check_ingest("a", 100).is_ok());
        let e = limits.check_ingest("a", 50).unwrap_err();
        assert_eq!((e.status, e.code), (429, ProblemCode::RateLimited));
        assert!(e.retry_after_secs.unwrap() >= 1);
        assert!(
            limits.check_ingest("b", 100).is_ok(),
            "another caller has its own budget"
        );
        assert!(
            limits.check_ingest("c", 101).is_err(),
            "larger than the burst"
        );
        assert!(limits.check_plot("a").is_ok() && limits.check_plot("a").is_ok());
        assert_eq!(limits.check_plot("a").unwrap_err().status, 429);
    }

    #[test]
    fn connections_are_counted_until_dropped() {
        let limits = Limits::new(LimitsConfig {
            sse_connections_per_caller: 2,
            ..LimitsConfig::default()
        });
        let a = limits.open_connection("k").unwrap();
        let _b = limits.open_connection("k").unwrap();
        assert_eq!(limits.open_connection("k").unwrap_err().status, 429);
        drop(a);
        assert_eq!(limits.connections("k"), 1);
        assert!(limits.open_connection("k").is_ok());
    }
}
