//! The `ViewRegistry` port: which dashboard views are watched, which series got new
//! samples, the latest render of each view (`ViewState`) and refresh claims — the shared
//! memory of live refresh. Implemented by `plotq-redis` and `memory::MemoryViews`.

use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::ViewState;
use std::time::Duration;

/// Which dashboard views are watched, which series got new samples, and the latest
/// render of each view: the shared memory of live refresh, for every notifier replica.
#[async_trait]
pub trait ViewRegistry: Send + Sync + 'static {
    /// Marks `views` as watched until `until_ms` (a lease the watcher renews).
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()>;
    /// Views whose lease runs past `now_ms`.
    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>>;
    /// Records that samples of these `(service, metric)` series arrived at `now_ms`. The
    /// list is bounded: implementations keep at most a configured number of series (the
    /// most recently touched) and forget series not touched for 8 days.
    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()>;
    /// When samples of a series last arrived.
    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>>;
    /// The `(service, metric)` series that received samples since `since_ms`, sorted.
    async fn series(&self, since_ms: i64) -> PortResult<Vec<(String, String)>>;
    /// Services that received samples since `since_ms`, sorted (those of [`series`]).
    ///
    /// [`series`]: ViewRegistry::series
    async fn services(&self, since_ms: i64) -> PortResult<Vec<String>> {
        let mut services: Vec<String> = self
            .series(since_ms)
            .await?
            .into_iter()
            .map(|(service, _)| service)
            .collect();
        services.dedup();
        Ok(services)
    }
    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>>;
    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()>;
    /// Claims the right to refresh `view` for `ttl`: true for exactly one caller, across
    /// every replica, until the claim lapses (the refresh debounce).
    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool>;
}
