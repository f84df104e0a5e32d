//! The `ViewRegistry` port: which dashboard views are watched, which series got new
//! samples, the latest render of each view (`ViewState`) and refresh claims — the shared
//! memory of live refresh. Implemented by `plotq-redis` and `memory::MemoryViews`.

use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::ViewState;
use std::time::Duration;

/// The time unit of a range's data watermark ([`ViewRegistry::touch_hours`]).
pub const HOUR_MS: i64 = 3_600_000;
/// The series name under which a service's annotations move its plots' watermarks
/// (`touch_hours`, `touch_series`): not a valid metric name, so no metric shares it.
pub const ANNOTATIONS_SERIES: &str = "@annotations";
/// Most hours one [`ViewRegistry::range_touched`] reads (100 days).
pub const MAX_RANGE_HOURS: i64 = 2_400;
/// Hours remembered per series of the registry's series bound, at most.
pub const HOURS_PER_SERIES: usize = 8;

/// The `(service, metric, hour)` hours that `samples` and `summaries` (OTLP histogram
/// points, by their minute) fall in, sorted and distinct: what
/// [`ViewRegistry::touch_hours`] records once they are stored. Deduplicated on borrowed
/// names first, so a batch allocates one pair of names per hour, not per sample.
pub fn hours_touched(
    samples: &[plotq_domain::Sample],
    summaries: &[plotq_domain::rollup::SeriesRollup],
) -> Vec<(String, String, i64)> {
    let hour = |ms: i64| ms.div_euclid(HOUR_MS) * HOUR_MS;
    let keys: std::collections::BTreeSet<(&str, &str, i64)> = samples
        .iter()
        .map(|s| (s.service.as_str(), s.metric.as_str(), hour(s.timestamp_ms)))
        .chain(
            summaries
                .iter()
                .map(|s| (s.service.as_str(), s.metric.as_str(), hour(s.minute_ms))),
        )
        .collect();
    keys.into_iter()
        .map(|(service, metric, hour)| (service.to_owned(), metric.to_owned(), hour))
        .collect()
}

/// The `(service, metric)` series of [`hours_touched`]'s hours, sorted and distinct:
/// what [`ViewRegistry::touch_series`] records.
pub fn series_of(hours: &[(String, String, i64)]) -> Vec<(String, String)> {
    let mut series: Vec<(String, String)> = hours
        .iter()
        .map(|(service, metric, _)| (service.clone(), metric.clone()))
        .collect();
    series.dedup();
    series
}

/// The hours `[from_ms, until_ms]` spans (their starts), or none past
/// [`MAX_RANGE_HOURS`] or for an empty range.
pub fn hours_of(from_ms: i64, until_ms: i64) -> Option<impl Iterator<Item = i64>> {
    let (first, last) = (from_ms.div_euclid(HOUR_MS), until_ms.div_euclid(HOUR_MS));
    (first <= last && last - first < MAX_RANGE_HOURS).then(|| (first..=last).map(|h| h * HOUR_MS))
}

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
    /// Records that samples timed in these hours (`(service, metric, hour)`, `hour` a
    /// multiple of [`HOUR_MS`]) arrived at `now_ms`: the data watermarks of past ranges.
    /// Called once the samples are stored. Each touch stamps its hours with `now_ms`
    /// raised above every stamp already given, so a touch always moves the watermark of
    /// its hours, whatever the callers' clocks or the order their writes finish in.
    /// An hour is remembered for `keep` after its last touch (longer than any reuse of a
    /// render lasts), at most [`HOURS_PER_SERIES`] × the series bound of them; when that
    /// bound drops an hour sooner, every range reads as touched at that moment, so a
    /// forgotten change never passes for no change.
    async fn touch_hours(
        &self,
        hours: &[(String, String, i64)],
        now_ms: i64,
        keep: Duration,
    ) -> PortResult<()>;
    /// When samples timed in `[from_ms, until_ms]` of a series last arrived, by the hour
    /// (an early drop by the bound counts as a touch of every range): none when none did
    /// within the `keep` of [`touch_hours`]. A range of more than [`MAX_RANGE_HOURS`]
    /// reads as touched whenever its series was ([`series_touched`]).
    ///
    /// [`touch_hours`]: ViewRegistry::touch_hours
    /// [`series_touched`]: ViewRegistry::series_touched
    async fn range_touched(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Option<i64>>;
    /// The `(service, metric)` series that received samples since `since_ms`, sorted
    /// (and `(service, ANNOTATIONS_SERIES)` for services annotated since).
    async fn series(&self, since_ms: i64) -> PortResult<Vec<(String, String)>>;
    /// Services that received samples since `since_ms`, sorted (those of [`series`]).
    ///
    /// [`series`]: ViewRegistry::series
    async fn services(&self, since_ms: i64) -> PortResult<Vec<String>> {
        let mut services: Vec<String> = self
            .series(since_ms)
            .await?
            .into_iter()
            .filter(|(_, metric)| metric != ANNOTATIONS_SERIES)
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
