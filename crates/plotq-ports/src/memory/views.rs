//! `MemoryViews`, the in-process `ViewRegistry`: watched-view leases, the bounded and
//! expiring series list, view states (in their wire form) and refresh claims that lapse
//! by a `Clock`. Part of the embedded standalone implementation, and a unit-test double.

use super::ttl::expiry;
use crate::clock::{Clock, SystemClock};
use crate::error::PortResult;
use crate::views::{HOURS_PER_SERIES, ViewRegistry, hours_of};
use async_trait::async_trait;
use plotq_domain::ViewState;
use plotq_domain::wire::{decode_view_state, encode_view_state};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Series remembered by default (`touch_series`); past it the oldest-touched go.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Series not touched for this long drop out of the service list (it covers a week).
pub const SERIES_RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;

/// Watched views, series watermarks, view states and claims, in memory. The series list
/// is bounded (`max_series`, the most recently touched kept) and forgets series not
/// touched within `SERIES_RETENTION_MS`, like the Redis registry.
#[derive(Debug)]
pub struct MemoryViews {
    inner: Mutex<ViewsInner>,
    max_series: usize,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryViews {
    fn default() -> Self {
        Self::with_max_series(DEFAULT_MAX_SERIES)
    }
}

impl MemoryViews {
    /// A registry remembering at most `max_series` series (at least one).
    pub fn with_max_series(max_series: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_series: max_series.max(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// Refresh claims lapse by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[derive(Debug, Default)]
struct ViewsInner {
    leases: HashMap<String, i64>,
    touched: HashMap<(String, String), i64>,
    /// (service, metric, hour) → when samples timed in it last arrived.
    hours: HashMap<(String, String, i64), i64>,
    /// When the bound last dropped an hour before its time (a touch of every range).
    hours_dropped: Option<i64>,
    /// The latest stamp given to hours (stamps only grow).
    hours_stamp: i64,
    /// View → its state in wire form (`encode_view_state`).
    states: HashMap<String, Vec<u8>>,
    /// View → when its claim lapses, epoch ms.
    claims: HashMap<String, i64>,
}

#[async_trait]
impl ViewRegistry for MemoryViews {
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        for v in views {
            let lease = inner.leases.entry(v.clone()).or_insert(until_ms);
            *lease = (*lease).max(until_ms);
        }
        Ok(())
    }

    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>> {
        let mut inner = self.inner.lock().expect("views lock");
        inner.leases.retain(|_, until| *until > now_ms);
        let mut out: Vec<String> = inner.leases.keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        for s in series {
            inner.touched.insert(s.clone(), now_ms);
        }
        inner
            .touched
            .retain(|_, at| *at >= now_ms - SERIES_RETENTION_MS);
        let excess = inner.touched.len().saturating_sub(self.max_series);
        if excess > 0 {
            // Drop the oldest-touched series (ties broken by name, like a sorted set).
            let mut by_age: Vec<((String, String), i64)> = inner
                .touched
                .iter()
                .map(|(k, at)| (k.clone(), *at))
                .collect();
            by_age.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            for (key, _) in by_age.into_iter().take(excess) {
                inner.touched.remove(&key);
            }
        }
        Ok(())
    }

    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>> {
        let inner = self.inner.lock().expect("views lock");
        Ok(inner
            .touched
            .get(&(service.to_owned(), metric.to_owned()))
            .copied())
    }

    async fn touch_hours(
        &self,
        hours: &[(String, String, i64)],
        now_ms: i64,
        keep: Duration,
    ) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        let stamp = now_ms.max(inner.hours_stamp.saturating_add(1));
        inner.hours_stamp = stamp;
        for h in hours {
            inner.hours.insert(h.clone(), stamp);
        }
        let horizon = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        inner.hours.retain(|_, at| *at >= horizon);
        if inner.hours_dropped.is_some_and(|at| at < horizon) {
            inner.hours_dropped = None;
        }
        let bound = self.max_series.saturating_mul(HOURS_PER_SERIES);
        let excess = inner.hours.len().saturating_sub(bound);
        if excess > 0 {
            let mut by_age: Vec<((String, String, i64), i64)> =
                inner.hours.iter().map(|(k, at)| (k.clone(), *at)).collect();
            by_age.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            for (key, _) in by_age.into_iter().take(excess) {
                inner.hours.remove(&key);
            }
            inner.hours_dropped = Some(stamp);
        }
        Ok(())
    }

    async fn range_touched(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Option<i64>> {
        let Some(hours) = hours_of(from_ms, until_ms) else {
            return self.series_touched(service, metric).await;
        };
        let inner = self.inner.lock().expect("views lock");
        let (service, metric) = (service.to_owned(), metric.to_owned());
        Ok(hours
            .filter_map(|h| {
                inner
                    .hours
                    .get(&(service.clone(), metric.clone(), h))
                    .copied()
            })
            .chain(inner.hours_dropped)
            .max())
    }

    async fn series(&self, since_ms: i64) -> PortResult<Vec<(String, String)>> {
        let inner = self.inner.lock().expect("views lock");
        let mut out: Vec<(String, String)> = inner
            .touched
            .iter()
            .filter(|(_, at)| **at >= since_ms)
            .map(|(series, _)| series.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>> {
        let inner = self.inner.lock().expect("views lock");
        // Unreadable reads as unknown, as in Redis (it cannot happen here: we wrote it).
        Ok(inner
            .states
            .get(view)
            .and_then(|bytes| decode_view_state(bytes).ok()))
    }

    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        inner
            .states
            .insert(view.to_owned(), encode_view_state(state));
        Ok(())
    }

    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool> {
        let now = self.clock.now_ms();
        let mut inner = self.inner.lock().expect("views lock");
        match inner.claims.get(view) {
            Some(until) if *until > now => Ok(false),
            _ => {
                inner.claims.insert(view.to_owned(), expiry(now, ttl));
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::queued_state as state;
    use plotq_domain::wire::{EventKind, PlotEvent};

    #[tokio::test]
    async fn past_ranges_read_their_own_hours() {
        let views = MemoryViews::with_max_series(3);
        crate::contract::past_ranges_read_their_own_hours(&views, 3, "m-").await;
    }

    #[tokio::test]
    async fn series_list_is_bounded_and_forgets_old_series() {
        let views = MemoryViews::with_max_series(3);
        let now = 1_795_000_000_000;
        let series = |s: &str| (s.to_owned(), "latency_ms".to_owned());
        views
            .touch_series(&[series("old")], now - SERIES_RETENTION_MS - 1)
            .await
            .unwrap();
        for (i, s) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            views
                .touch_series(&[series(s)], now + i as i64)
                .await
                .unwrap();
        }
        // Only the three most recently touched remain; the stale one expired.
        assert_eq!(views.services(0).await.unwrap(), vec!["c", "d", "e"]);
        assert_eq!(views.series_touched("a", "latency_ms").await.unwrap(), None);
        assert_eq!(
            views.series_touched("old", "latency_ms").await.unwrap(),
            None
        );
        // Touching again refreshes: "c" is now the newest, so "d" goes next.
        views.touch_series(&[series("c")], now + 10).await.unwrap();
        views.touch_series(&[series("f")], now + 11).await.unwrap();
        assert_eq!(views.services(0).await.unwrap(), vec!["c", "e", "f"]);
        views
            .touch_series(&[("c".into(), "queue.depth".into())], now + 12)
            .await
            .unwrap();
        assert_eq!(
            views.series(now + 11).await.unwrap(),
            [
                ("c".to_owned(), "queue.depth".to_owned()),
                ("f".to_owned(), "latency_ms".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn view_states_round_trip_through_their_wire_form() {
        let views = MemoryViews::default();
        let s = state();
        let vs = ViewState {
            job_id: s.id,
            status: plotq_domain::JobStatus::Done,
            requested_ms: 1_000,
            last_ready: Some(PlotEvent::for_job(&s, EventKind::PlotReady, 2_000)),
            error: None,
        };
        assert_eq!(views.view_state("v").await.unwrap(), None);
        views.set_view_state("v", &vs).await.unwrap();
        assert_eq!(views.view_state("v").await.unwrap(), Some(vs));
    }
}
