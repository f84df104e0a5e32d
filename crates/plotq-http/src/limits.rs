//! Rate and connection limits per caller: ingest samples per second, renders per second
//! (the plot budget), requests per second of one render link (token buckets from
//! `governor`), concurrent SSE connections, the distinct views a caller keeps live, and
//! the `GET /api/v1/render` requests a caller has waiting.
//!
//! Limits are counted against `Principal::limit_key` (`token:<name>`, the client's
//! address when anonymous, or `grant:<digest>` for a render link, which has its own
//! budget and never spends its minter's). Everything over a limit is answered `429`
//! with `Retry-After`. The per-key state is bounded: keys idle long enough to be full
//! again are dropped once more than `max_tracked_keys` are held; counted keys (streams,
//! views, waiters) are dropped when their count falls to zero.

use crate::label_sets::LabelSets;
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
    /// Renders per second (sustained) one caller may cause: plot requests that queue a
    /// job, views opened before they were ever rendered.
    pub plot_requests_per_sec: u32,
    pub plot_burst: u32,
    /// Requests per second (sustained) one render link may get, and its burst.
    pub grant_requests_per_sec: u32,
    pub grant_burst: u32,
    /// Open SSE connections per caller.
    pub sse_connections_per_caller: usize,
    /// Distinct views one caller may keep live at once (over all its streams).
    pub views_per_caller: usize,
    /// `GET /api/v1/render` requests one caller may have waiting at once (of the
    /// process's `RenderConfig::waiters`).
    pub render_waiters_per_caller: usize,
    /// Distinct keys tracked before idle ones are dropped.
    pub max_tracked_keys: usize,
    /// Distinct label sets one caller may write for one series (service, metric).
    pub label_sets_per_series: usize,
    /// Annotations one caller may post per minute (sustained; the same again in a burst).
    pub annotations_per_min: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ingest_samples_per_sec: 100_000,
            ingest_burst: 200_000,
            plot_requests_per_sec: 50,
            plot_burst: 100,
            grant_requests_per_sec: 10,
            grant_burst: 40,
            sse_connections_per_caller: 32,
            views_per_caller: 128,
            render_waiters_per_caller: 32,
            max_tracked_keys: 100_000,
            label_sets_per_series: 1_000,
            annotations_per_min: 60,
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
    grants: DefaultKeyedRateLimiter<String>,
    annotations: DefaultKeyedRateLimiter<String>,
    sse: Mutex<HashMap<String, usize>>,
    /// Per caller, the views its streams watch, with how many of its streams watch each.
    views: Mutex<HashMap<String, HashMap<String, usize>>>,
    waiters: Mutex<HashMap<String, usize>>,
    label_sets: LabelSets,
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

/// Series (caller, service, metric) whose label sets are counted at once: with the
/// default cap of 1,000 sets each, tens of MB at most.
const LABEL_SERIES_TRACKED: usize = 4_096;

impl Limits {
    pub fn new(config: LimitsConfig) -> Arc<Self> {
        let ingest = RateLimiter::keyed(
            Quota::per_second(nz(config.ingest_samples_per_sec))
                .allow_burst(nz(config.ingest_burst)),
        );
        let plots = RateLimiter::keyed(
            Quota::per_second(nz(config.plot_requests_per_sec)).allow_burst(nz(config.plot_burst)),
        );
        let grants = RateLimiter::keyed(
            Quota::per_second(nz(config.grant_requests_per_sec))
                .allow_burst(nz(config.grant_burst)),
        );
        let annotations = RateLimiter::keyed(
            Quota::per_minute(nz(config.annotations_per_min))
                .allow_burst(nz(config.annotations_per_min)),
        );
        Arc::new(Self {
            ingest,
            plots,
            grants,
            annotations,
            sse: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            label_sets: LabelSets::new(
                config.label_sets_per_series,
                config.max_tracked_keys.min(LABEL_SERIES_TRACKED),
            ),
            config,
        })
    }

    /// Counts the label sets of `samples` for caller `key` (`422 too_many_label_sets`
    /// past `label_sets_per_series` of one series; see `label_sets`).
    /// Summaries (OTLP histogram points) count as their series' items after the samples.
    pub fn check_label_sets(
        &self,
        key: &str,
        samples: &[plotq_domain::Sample],
        summaries: &[plotq_domain::rollup::SeriesRollup],
    ) -> Result<(), Problem> {
        let items = samples
            .iter()
            .map(|s| (s.service.as_str(), s.metric.as_str(), &s.labels))
            .chain(
                summaries
                    .iter()
                    .map(|s| (s.service.as_str(), s.metric.as_str(), &s.labels)),
            );
        self.label_sets.admit_series(key, items)
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

    /// Takes one render from `key`'s plot budget.
    pub fn check_plot(&self, key: &str) -> Result<(), Problem> {
        self.check_plots(key, 1)
    }

    /// Takes `n` renders from `key`'s plot budget at once (all or none); `n = 0` costs
    /// nothing.
    pub fn check_plots(&self, key: &str, n: usize) -> Result<(), Problem> {
        if n == 0 {
            return Ok(());
        }
        self.bound(&self.plots);
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        match self.plots.check_key_n(&key.to_owned(), nz(n32)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(rate_limited(
                &format!(
                    "{n} more render(s) would take this caller past {} renders/s",
                    self.config.plot_requests_per_sec
                ),
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(Problem::new(
                ProblemCode::RateLimited,
                format!(
                    "{n} renders at once exceed this caller's burst of {}; ask for fewer",
                    self.config.plot_burst
                ),
            )
            .with_retry_after(1)),
        }
    }

    /// Takes one annotation from caller `key`'s budget (`annotations_per_min`).
    pub fn check_annotation(&self, key: &str) -> Result<(), Problem> {
        self.bound(&self.annotations);
        self.annotations
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                rate_limited(
                    &format!(
                        "more than {} annotations a minute",
                        self.config.annotations_per_min
                    ),
                    not_until.wait_time_from(DefaultClock::default().now()),
                )
            })
    }

    /// Takes one request from the budget of the render link `key` (`grant:<digest>`).
    pub fn check_grant(&self, key: &str) -> Result<(), Problem> {
        self.bound(&self.grants);
        self.grants.check_key(&key.to_owned()).map_err(|not_until| {
            rate_limited(
                &format!(
                    "more than {} requests/s for this link",
                    self.config.grant_requests_per_sec
                ),
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    /// Counts `views` as kept live by caller `key` until the guard is dropped; `429` when
    /// they would take it past `views_per_caller` distinct views.
    pub fn watch_views(
        self: &Arc<Self>,
        key: &str,
        views: &[String],
    ) -> Result<ViewsGuard, Problem> {
        let mut all = self.views.lock().expect("views lock");
        let mine = all.entry(key.to_owned()).or_default();
        let new = views.iter().filter(|v| !mine.contains_key(*v)).count();
        if mine.len() + new > self.config.views_per_caller {
            let held = mine.len();
            if held == 0 {
                all.remove(key);
            }
            return Err(Problem::new(
                ProblemCode::TooManyConnections,
                format!(
                    "this caller keeps {held} views live and asks for {new} more; the limit is {} (PLOTQ_VIEWS_PER_CALLER)",
                    self.config.views_per_caller
                ),
            )
            .with_retry_after(5));
        }
        for v in views {
            *mine.entry(v.clone()).or_default() += 1;
        }
        Ok(ViewsGuard {
            limits: self.clone(),
            key: key.to_owned(),
            views: views.to_vec(),
        })
    }

    /// Counts a waiting `GET /api/v1/render` of `key` until the guard is dropped; `429`
    /// past `render_waiters_per_caller`.
    pub fn wait_for_render(self: &Arc<Self>, key: &str) -> Result<WaiterGuard, Problem> {
        let mut waiting = self.waiters.lock().expect("waiters lock");
        let n = waiting.entry(key.to_owned()).or_default();
        if *n >= self.config.render_waiters_per_caller {
            return Err(Problem::new(
                ProblemCode::TooManyConnections,
                format!(
                    "this caller already has {} render requests waiting (PLOTQ_RENDER_WAITERS_PER_CALLER); retry shortly",
                    self.config.render_waiters_per_caller
                ),
            )
            .with_retry_after(1));
        }
        *n += 1;
        Ok(WaiterGuard {
            limits: self.clone(),
            key: key.to_owned(),
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

/// Views counted as kept live by one caller's stream.
#[derive(Debug)]
pub struct ViewsGuard {
    limits: Arc<Limits>,
    key: String,
    views: Vec<String>,
}

impl Drop for ViewsGuard {
    fn drop(&mut self) {
        let mut all = self.limits.views.lock().expect("views lock");
        if let Some(mine) = all.get_mut(&self.key) {
            for v in &self.views {
                if let Some(n) = mine.get_mut(v) {
                    *n -= 1;
                    if *n == 0 {
                        mine.remove(v);
                    }
                }
            }
            if mine.is_empty() {
                all.remove(&self.key);
            }
        }
    }
}

/// One counted waiting render request.
#[derive(Debug)]
pub struct WaiterGuard {
    limits: Arc<Limits>,
    key: String,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        let mut waiting = self.limits.waiters.lock().expect("waiters lock");
        if let Some(n) = waiting.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.key);
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
        assert!(limits.check_plots("b", 0).is_ok(), "nothing costs nothing");
        assert!(limits.check_plots("b", 2).is_ok());
        assert_eq!(limits.check_plots("c", 3).unwrap_err().status, 429);
        assert!(
            limits.check_plots("c", 2).is_ok(),
            "refused whole, nothing taken"
        );
    }

    #[test]
    fn links_have_their_own_budget() {
        let limits = Limits::new(LimitsConfig {
            plot_burst: 1,
            grant_burst: 2,
            ..LimitsConfig::default()
        });
        assert!(limits.check_grant("grant:x").is_ok() && limits.check_grant("grant:x").is_ok());
        assert_eq!(limits.check_grant("grant:x").unwrap_err().status, 429);
        assert!(limits.check_grant("grant:y").is_ok(), "another link");
        assert!(
            limits.check_plot("token:t").is_ok(),
            "the minter's budget is whole"
        );
    }

    #[test]
    fn views_and_waiters_are_counted_per_caller_until_dropped() {
        let limits = Limits::new(LimitsConfig {
            views_per_caller: 3,
            render_waiters_per_caller: 1,
            ..LimitsConfig::default()
        });
        let v = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = limits.watch_views("k", &v(&["a", "b"])).unwrap();
        let b = limits.watch_views("k", &v(&["b", "c"])).unwrap();
        let e = limits.watch_views("k", &v(&["d"])).unwrap_err();
        assert_eq!((e.status, e.code), (429, ProblemCode::TooManyConnections));
        assert!(limits.watch_views("other", &v(&["d", "e", "f"])).is_ok());
        drop(a);
        assert!(
            limits.watch_views("k", &v(&["d"])).is_ok(),
            "a is free again"
        );
        drop(b);
        let w = limits.wait_for_render("k").unwrap();
        assert_eq!(limits.wait_for_render("k").unwrap_err().status, 429);
        assert!(limits.wait_for_render("j").is_ok());
        drop(w);
        assert!(limits.wait_for_render("k").is_ok());
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
