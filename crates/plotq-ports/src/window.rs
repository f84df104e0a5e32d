//! Reading a plot's window from the store, for the worker (which draws it) and the api's
//! `GET /api/v1/stats` (which reports its numbers): one path, so a job's statistics and
//! the synchronous ones agree.
//!
//! `SourcePolicy` decides raw samples or minute rollups: windows longer than
//! `rollup_after`, reaching past the raw retention, or holding more than
//! `raw_max_samples` (counted from the rollups, which are read first: one document a
//! minute), and windows holding summarized values (OTLP histogram points, which have no
//! raw samples; the source then states their error) are read from the rollups, each series as at most `rollup_budget` stand-in
//! values (`Rollup::stand_ins`) that each count for `weight` samples. The work of a read
//! is bounded by the policy: at most `raw_max_samples` raw samples, else the window's
//! minutes.
//!
//! `read_window` returns plain data — per series its timestamps, values and weight; the
//! source; the exact sample count; the documents read; and each service's statistics
//! (`SeriesStats`, with the extras of the spec's kind: `series::Extras`) computed from
//! what was read: exact from raw samples, from the merged rollups otherwise (counts,
//! extremes, mean and codes exact, percentiles within the rollups' accuracy), rates over
//! the plot's own time buckets.

use crate::clock::now_ms;
use crate::error::{PortError, PortResult};
use crate::store::{LabelSelect, MetricStore, Rollups, SeriesQuery, Split};
use plotq_domain::correlation::{self, Buckets, Fit, Point, Samples};
use plotq_domain::plot::{Correlation, MAX_SERVICES};
use plotq_domain::rollup::{RELATIVE_ACCURACY, ROLLUP_MS, Rollup};
use plotq_domain::series::{self, Extras};
use plotq_domain::{DataSource, PlotKind, PlotSpec, SeriesStats, ServiceName};
use std::borrow::Cow;
use std::time::Duration;

/// When a window is read from one-minute rollups instead of raw samples: windows longer
/// than `rollup_after`, windows reaching past the raw retention, and windows whose
/// rollups count more than `raw_max_samples` samples (all services together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePolicy {
    pub rollup_after: Duration,
    pub raw_retention: Duration,
    /// How long rollups are kept: nothing older is shown (or accepted by ingest).
    pub rollup_retention: Duration,
    pub raw_max_samples: u64,
    /// Stand-in values per series drawn from rollups (bounds a render's memory).
    pub rollup_budget: usize,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        Self {
            rollup_after: Duration::from_secs(3 * 3600),
            raw_retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 24 * 3600),
            raw_max_samples: 5_000_000,
            rollup_budget: 250_000,
        }
    }
}

/// One service's part of a window (or, with the spec's `group_by`, one label value's).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesWindow {
    pub service: String,
    /// With `group_by`: the label value of this series, or none for the rest (`other`).
    pub group: Option<String>,
    pub other: bool,
    /// Epoch milliseconds parallel to `values`; empty for raw reads of kinds that need
    /// no time.
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    /// Samples each value stands for: 1 for raw samples, more for rollup stand-ins.
    pub weight: f64,
}

/// What a window read found.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRead {
    /// The window, inclusive at both ends.
    pub from_ms: i64,
    pub until_ms: i64,
    /// One per service of the spec, in its order (empty `values` for a service without
    /// samples).
    pub series: Vec<SeriesWindow>,
    pub source: DataSource,
    /// The exact number of samples (rollups count whole minutes at the window's ends).
    pub samples: u64,
    /// Stored documents (chunks and rollups) read.
    pub documents: u64,
    /// Each service's numbers, services without samples left out.
    pub stats: Vec<SeriesStats>,
}

impl SeriesWindow {
    /// The series' name in a legend: its label value, `other`, or its service.
    pub fn name(&self) -> &str {
        match (&self.group, self.other) {
            (Some(group), _) => group,
            (None, true) => OTHER_GROUP,
            (None, false) => &self.service,
        }
    }
}

impl WindowRead {
    /// Whether no service has a sample in the window.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.values.is_empty())
    }
}

/// Reads `spec`'s services over `[from_ms, until_ms]` (raw or rollups, by `policy`) and
/// computes their statistics.
pub async fn read_window(
    store: &dyn MetricStore,
    policy: &SourcePolicy,
    spec: &PlotSpec,
    from_ms: i64,
    until_ms: i64,
) -> PortResult<WindowRead> {
    fn base<'a>(
        spec: &'a PlotSpec,
        service: &'a ServiceName,
        window: (i64, i64),
        select: LabelSelect<'a>,
    ) -> SeriesQuery<'a> {
        SeriesQuery {
            service: service.as_str(),
            metric: spec.metric.as_str(),
            from_ms: window.0,
            until_ms: window.1,
            with_timestamps: spec.kind.needs_timestamps(),
            select,
        }
    }
    let window = (from_ms, until_ms);
    let filtered = LabelSelect::filtered(&spec.labels);
    // With `group_by`, the most frequent values of the label (by the rollups' counts),
    // then the rest as one series.
    let (tops, others) = match &spec.group_by {
        None => (Vec::new(), false),
        Some(group) => {
            let counts = store
                .label_counts(
                    &base(spec, spec.service(), window, filtered),
                    group.as_str(),
                )
                .await?;
            top_values(counts, MAX_SERVICES)
        }
    };
    let named = |group: Option<&String>, other| Naming {
        service: spec.service().to_string(),
        group: group.cloned(),
        other,
    };
    let named_x = |c: &Correlation| Naming {
        service: c.x_service.as_ref().unwrap_or(spec.service()).to_string(),
        group: None,
        other: false,
    };
    let queries: Vec<(Naming, SeriesQuery<'_>)> = match (&spec.group_by, &spec.correlation) {
        // A correlation reads y (the spec's series) and x (its own metric, of its own
        // service, filtered alike when it is the same service).
        (None, Some(c)) => {
            let y = base(spec, spec.service(), window, filtered);
            let x = SeriesQuery {
                service: c.x_service.as_ref().unwrap_or(spec.service()).as_str(),
                metric: c.x_metric.as_str(),
                select: if c.x_service.is_some() {
                    LabelSelect::ALL
                } else {
                    filtered
                },
                ..y
            };
            vec![(named(None, false), y), (named_x(c), x)]
        }
        (None, None) => spec
            .services
            .iter()
            .map(|service| {
                let naming = Naming {
                    service: service.to_string(),
                    group: None,
                    other: false,
                };
                (naming, base(spec, service, window, filtered))
            })
            .collect(),
        (Some(group), _) => {
            let split = |split| LabelSelect {
                split: Some((group.as_str(), split)),
                ..filtered
            };
            let mut queries: Vec<_> = tops
                .iter()
                .map(|v| {
                    let query = base(spec, spec.service(), window, split(Split::Is(v)));
                    (named(Some(v), false), query)
                })
                .collect();
            if others {
                let rest = base(spec, spec.service(), window, split(Split::NoneOf(&tops)));
                queries.push((named(None, true), rest));
            }
            queries
        }
    };
    let window_ms = until_ms.saturating_sub(from_ms);
    let raw_horizon = now_ms().saturating_sub(policy.raw_retention.as_millis() as i64);
    // The rollups also count the window's samples cheaply (one document a minute).
    let mut rollups = Vec::with_capacity(queries.len());
    for (_, q) in &queries {
        rollups.push(store.rollups(q).await?);
    }
    let estimated: u64 = rollups
        .iter()
        .flat_map(|r| r.minutes.iter().map(|(_, m)| m.count))
        .sum();
    let mut documents: u64 = rollups.iter().map(|r| r.docs_read).sum();
    // Summarized values (OTLP histograms) have no raw samples: only rollups hold them.
    let summarized = rollups
        .iter()
        .flat_map(|r| &r.minutes)
        .any(|(_, m)| m.summarized > 0);
    let by_rollups = window_ms > policy.rollup_after.as_millis() as i64
        || from_ms < raw_horizon
        || estimated > policy.raw_max_samples
        || summarized;
    let stats_of = Stats {
        kind: spec.kind,
        metric: spec.metric.as_str().to_owned(),
        width: spec.layout_size().0,
        from_ms,
        until_ms,
    };
    let mut series = Vec::with_capacity(queries.len());
    let mut total = 0u64;
    if by_rollups {
        let mut stats = Vec::new();
        let mut relative_error = RELATIVE_ACCURACY;
        for ((naming, _), read) in queries.iter().zip(&rollups) {
            let (stand_in, samples) = stand_ins(naming, read, policy.rollup_budget);
            total += samples;
            let merged = Rollup::merged(read.minutes.iter().map(|(_, r)| r));
            relative_error = relative_error.max(merged.relative_error());
            stats.extend(stats_of.rollups(&merged, &stand_in));
            series.push(stand_in);
        }
        return Ok(correlate(
            spec,
            WindowRead {
                from_ms,
                until_ms,
                series,
                source: DataSource::Rollups {
                    resolution_secs: (ROLLUP_MS / 1000) as u32,
                    relative_error,
                },
                samples: total,
                documents,
                stats,
            },
        ));
    }
    for (naming, q) in &queries {
        let points = store.points(q).await?;
        documents += points.chunks_read;
        total += points.values.len() as u64;
        let raw = SeriesWindow {
            service: naming.service.clone(),
            group: naming.group.clone(),
            other: naming.other,
            timestamps_ms: points.timestamps_ms,
            values: points.values,
            weight: 1.0,
        };
        series.push(raw);
    }
    let stats = if total > STATS_ON_THE_REACTOR {
        // Linear passes over millions of values: off the reactor, as renders are.
        let (back, stats) = match tokio::task::spawn_blocking(move || {
            let stats = series.iter().filter_map(|s| stats_of.raw(s)).collect();
            (series, stats)
        })
        .await
        {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down: the job is tried again elsewhere.
            Err(_) => {
                return Err(PortError::unavailable(
                    "store",
                    "reading the window was cancelled (shutting down)",
                ));
            }
        };
        series = back;
        stats
    } else {
        series.iter().filter_map(|s| stats_of.raw(s)).collect()
    };
    Ok(correlate(
        spec,
        WindowRead {
            from_ms,
            until_ms,
            series,
            source: DataSource::Exact,
            samples: total,
            documents,
            stats,
        },
    ))
}

/// The spec a read is drawn by: a correlation read from rollups, which hold whole
/// minutes (their stand-ins spread over each minute in no order of time), cuts buckets of
/// at least a minute — a finer bucket would split a minute's values arbitrarily — and
/// says so in its legend; any other spec as asked.
pub fn as_read<'s>(spec: &'s PlotSpec, source: &DataSource) -> Cow<'s, PlotSpec> {
    match (&spec.correlation, source) {
        (Some(c), DataSource::Rollups { .. }) if c.bucket.millis() < ROLLUP_MS => {
            let mut coarse = spec.clone();
            if let Some(c) = coarse.correlation.as_mut() {
                c.bucket = plotq_domain::Window::from_secs((ROLLUP_MS / 1000) as u64)
                    .expect("a minute is a valid bucket");
            }
            Cow::Owned(coarse)
        }
        _ => Cow::Borrowed(spec),
    }
}

/// A correlation's read with its statistics marked by metric, and y's carrying the fit
/// of the points the plot draws ([`correlation_points`]); any other read as it is.
fn correlate(spec: &PlotSpec, mut read: WindowRead) -> WindowRead {
    if spec.correlation.is_none() {
        return read;
    }
    let drawn = as_read(spec, &read.source);
    let Some(c) = &drawn.correlation else {
        return read;
    };
    let fit = Fit::of(&correlation_points(&drawn, &read));
    let metrics = [spec.metric.as_str(), c.x_metric.as_str()];
    // Statistics leave out the series without samples; the rest are in series order.
    let mut stats = std::mem::take(&mut read.stats).into_iter();
    for (i, s) in read.series.iter().enumerate() {
        if s.values.is_empty() {
            continue;
        }
        if let Some(st) = stats.next() {
            let metric = metrics.get(i).copied().unwrap_or_default();
            read.stats
                .push(st.in_correlation(metric, (i == 0).then_some(fit)));
        }
    }
    read
}

/// A correlation's points, from its read's two series (y, then x): one per whole bucket
/// where both statistics have a value. Empty for any other spec. `spec` as the read is
/// drawn ([`as_read`]).
pub fn correlation_points(spec: &PlotSpec, read: &WindowRead) -> Vec<Point> {
    let (Some(c), [y, x, ..]) = (&spec.correlation, read.series.as_slice()) else {
        return Vec::new();
    };
    let buckets = Buckets::new(read.from_ms, read.until_ms, c.bucket.millis());
    correlation::points(
        (
            &Samples::new(spec.metric.as_str(), &y.timestamps_ms, &y.values, y.weight),
            c.stat,
        ),
        (
            &Samples::new(c.x_metric.as_str(), &x.timestamps_ms, &x.values, x.weight),
            c.x_stat,
        ),
        &buckets,
    )
}

/// The name of a `group_by` plot's series of every value but the most frequent.
pub const OTHER_GROUP: &str = "other";

/// Whose a series of a window is: its service and, with `group_by`, its part.
struct Naming {
    service: String,
    group: Option<String>,
    other: bool,
}

/// The values to draw apart, most frequent first, and whether any sample is left for an
/// "other" series: all values (with a value) when they fit in `lines`, else the first
/// `lines - 1`. Sets without the label, and values with no sample, fall to "other".
fn top_values(counts: Vec<(Option<String>, u64)>, lines: usize) -> (Vec<String>, bool) {
    let valued: Vec<(String, u64)> = counts
        .iter()
        .filter_map(|(v, n)| Some((v.clone()?, *n)).filter(|(_, n)| *n > 0))
        .collect();
    let unvalued: u64 = counts
        .iter()
        .filter(|(v, _)| v.is_none())
        .map(|(_, n)| n)
        .sum();
    let fit = if valued.len() <= lines && unvalued == 0 {
        lines
    } else {
        lines.saturating_sub(1)
    };
    let rest: u64 = valued.iter().skip(fit).map(|(_, n)| n).sum::<u64>() + unvalued;
    let tops = valued.into_iter().take(fit).map(|(v, _)| v).collect();
    (tops, rest > 0)
}

/// Why a window with no samples has no plot (and no statistics), e.g. `no data for
/// checkout/latency_ms in the last 10m`: the worker's failure and the api's `404` alike.
pub fn no_data(spec: &PlotSpec) -> String {
    let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
    format!(
        "no data for {}/{} in the {}",
        services.join(","),
        spec.metric,
        spec.range.label()
    )
}

/// Raw samples (all series together) up to which statistics are computed on the async
/// task that read them; above, on the blocking pool.
const STATS_ON_THE_REACTOR: u64 = 100_000;

/// The statistics of one spec's series over its window: what of the spec they need.
struct Stats {
    kind: PlotKind,
    metric: String,
    /// The plot's layout width (image width ÷ scale), which sets its time buckets.
    width: u32,
    from_ms: i64,
    until_ms: i64,
}

impl Stats {
    /// Of raw samples: every number exact.
    fn raw(&self, s: &SeriesWindow) -> Option<SeriesStats> {
        let summary = plotq_domain::stats::summarize(&s.values)?;
        let base = SeriesStats::of(&s.service, &summary).in_group(s.group.clone(), s.other);
        Some(match Extras::of(self.kind) {
            Extras::None => base,
            Extras::Rates => self.with_rates(base, s),
            Extras::Codes => base.with_codes(
                series::code_counts(&s.values),
                series::error_count(&self.metric, &s.values),
            ),
        })
    }

    /// Of rollups: from their merge, and the peak rate from the stand-ins drawn.
    fn rollups(&self, merged: &Rollup, drawn: &SeriesWindow) -> Option<SeriesStats> {
        let base = SeriesStats::of(&drawn.service, &merged.summary()?)
            .in_group(drawn.group.clone(), drawn.other);
        Some(match Extras::of(self.kind) {
            Extras::None => base,
            Extras::Rates => self.with_rates(base, drawn),
            Extras::Codes => base.with_codes(
                merged.codes.clone(),
                series::rollup_error_count(&self.metric, merged),
            ),
        })
    }

    /// Samples per second over the window, and the peak over the plot's time buckets
    /// (those a throughput plot of the spec's width draws).
    fn with_rates(&self, base: SeriesStats, s: &SeriesWindow) -> SeriesStats {
        let span = self.until_ms.saturating_sub(self.from_ms).max(0);
        let width = series::time_bucket_ms(span, self.width);
        let buckets = series::bucket_rates(
            &s.timestamps_ms,
            s.weight,
            self.from_ms,
            self.until_ms,
            width,
        );
        // A partial bucket at either end (the window need not start or end on a bucket
        // boundary) covering under half a bucket says little: a single sample in a
        // sliver of a bucket would read as a burst. The peak counts it only when no
        // bucket covers more.
        let rate = |b: &series::RateBucket| b.per_s;
        let covered = |b: &&series::RateBucket| b.hi_ms.saturating_sub(b.lo_ms) * 2 >= width;
        let peak = buckets
            .iter()
            .filter(covered)
            .map(rate)
            .reduce(f64::max)
            .unwrap_or_else(|| buckets.iter().map(rate).fold(0.0, f64::max));
        let mean = series::mean_rate(base.count, self.from_ms, self.until_ms);
        base.with_rates(mean, peak)
    }
}

/// At most about `budget` stand-in values for the minutes' samples, each minute's
/// spread over its minute (in an order that does not follow their values), all of one
/// weight; and the exact number of samples they stand for.
fn stand_ins(naming: &Naming, read: &Rollups, budget: usize) -> (SeriesWindow, u64) {
    let total: u64 = read.minutes.iter().map(|(_, r)| r.count).sum();
    let weight = (total as f64 / budget.max(1) as f64).max(1.0);
    let mut data = SeriesWindow {
        service: naming.service.clone(),
        group: naming.group.clone(),
        other: naming.other,
        timestamps_ms: Vec::new(),
        values: Vec::new(),
        weight,
    };
    for (minute, rollup) in &read.minutes {
        let values = rollup.stand_ins(weight);
        let k = values.len().max(1) as i64;
        for (j, v) in values.into_iter().enumerate() {
            // A stride coprime with most k scatters the sorted values over the minute.
            let slot = (j as i64 * 7_919) % k;
            data.timestamps_ms.push(minute + slot * ROLLUP_MS / k);
            data.values.push(v);
        }
    }
    (data, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use plotq_domain::{MetricName, PlotKind, Sample, ServiceName, TimeRange, Window};

    fn spec(kind: PlotKind, service: &str, window: &str) -> PlotSpec {
        let mut spec = PlotSpec::new(kind, ServiceName::parse(service).unwrap());
        spec.range = TimeRange::Last(Window::parse(window).unwrap());
        spec
    }

    async fn store_with(metric: &str, values: &[(i64, f64)]) -> MemoryStore {
        let store = MemoryStore::default();
        let samples: Vec<Sample> = values
            .iter()
            .map(|&(timestamp_ms, value)| Sample {
                service: ServiceName::parse("checkout").unwrap(),
                metric: MetricName::parse(metric).unwrap(),
                value,
                timestamp_ms,
                labels: plotq_domain::Labels::none(),
            })
            .collect();
        store.insert(&samples, None).await.unwrap();
        store
    }

    #[test]
    fn correlations_from_rollups_are_drawn_in_whole_minutes() {
        let mut fine = spec(PlotKind::Correlation, "checkout", "1h");
        fine.correlation.as_mut().unwrap().bucket = Window::parse("10s").unwrap();
        let rollups = DataSource::minute_rollups();
        let drawn = as_read(&fine, &rollups);
        assert_eq!(drawn.correlation.as_ref().unwrap().bucket.secs(), 60);
        // Raw samples keep the bucket asked for, and so do coarser buckets.
        assert_eq!(as_read(&fine, &DataSource::Exact).as_ref(), &fine);
        let coarse = spec(PlotKind::Correlation, "checkout", "1h");
        assert!(matches!(as_read(&coarse, &rollups), Cow::Borrowed(_)));
    }

    #[tokio::test]
    async fn raw_windows_give_exact_numbers_per_kind() {
        let now = now_ms();
        // 600 latencies over the last minute: 1..=600 ms.
        let latencies: Vec<(i64, f64)> = (0..600)
            .map(|i| (now - 60_000 + i * 100, (i + 1) as f64))
            .collect();
        let store = store_with("latency_ms", &latencies).await;
        let policy = SourcePolicy::default();
        let s = spec(PlotKind::Histogram, "checkout", "10m");
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &policy, &s, from, until).await.unwrap();
        assert_eq!((read.source, read.samples), (DataSource::Exact, 600));
        assert_eq!(
            read.series[0].timestamps_ms.len(),
            0,
            "a histogram needs no time"
        );
        let st = &read.stats[0];
        assert_eq!(
            (st.count, st.min, st.max, st.mean),
            (600, 1.0, 600.0, 300.5)
        );
        assert_eq!((st.rate_per_s, st.codes.as_ref()), (None, None));
        // Throughput: 600 samples over a 10-minute window is 1/s on average; the
        // minute's 10 s buckets hold 100 samples each: 10/s.
        let t = spec(PlotKind::Throughput, "checkout", "10m");
        let read = read_window(&store, &policy, &t, from, until).await.unwrap();
        let st = &read.stats[0];
        assert_eq!(st.rate_per_s, Some(1.0));
        assert!((st.peak_rate_per_s.unwrap() - 10.0).abs() < 1e-9, "{st:?}");
        assert_eq!(read.series[0].timestamps_ms.len(), 600);
    }

    #[tokio::test]
    async fn large_windows_give_the_same_numbers_off_the_reactor() {
        let now = now_ms();
        let n = STATS_ON_THE_REACTOR as i64 + 20_000;
        let latencies: Vec<(i64, f64)> = (0..n)
            .map(|i| (now - 500_000 + i * 4, (i % 1_000) as f64))
            .collect();
        let store = store_with("latency_ms", &latencies).await;
        let s = spec(PlotKind::Histogram, "checkout", "10m");
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &SourcePolicy::default(), &s, from, until)
            .await
            .unwrap();
        assert_eq!((read.source, read.samples), (DataSource::Exact, n as u64));
        assert_eq!(
            read.series[0].values.len(),
            n as usize,
            "the series come back"
        );
        let st = &read.stats[0];
        assert_eq!((st.count, st.min, st.max), (n as u64, 0.0, 999.0));
    }

    #[tokio::test]
    async fn status_kinds_count_codes_and_errors() {
        let now = now_ms();
        let codes: Vec<(i64, f64)> = (0..100)
            .map(|i| {
                let code = match i % 10 {
                    0 => 503.0,
                    1 => 404.0,
                    _ => 200.0,
                };
                (now - 30_000 + i * 100, code)
            })
            .collect();
        let store = store_with("status_code", &codes).await;
        let policy = SourcePolicy::default();
        for kind in [PlotKind::StatusCodes, PlotKind::ErrorRate] {
            let s = spec(kind, "checkout", "10m");
            let (from, until) = s.range.resolve(now);
            let read = read_window(&store, &policy, &s, from, until).await.unwrap();
            let st = &read.stats[0];
            assert_eq!(
                st.codes.as_ref().unwrap(),
                &std::collections::BTreeMap::from([(200, 80), (404, 10), (503, 10)])
            );
            assert_eq!(st.error_ratio, Some(0.1), "{kind:?}");
            assert_eq!(st.rate_per_s, None);
        }
        // From rollups (a window over the rollup threshold): the same counts, exactly.
        let policy = SourcePolicy {
            rollup_after: Duration::from_secs(60),
            ..SourcePolicy::default()
        };
        let s = spec(PlotKind::StatusCodes, "checkout", "10m");
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &policy, &s, from, until).await.unwrap();
        assert_eq!(read.source, DataSource::minute_rollups());
        let st = &read.stats[0];
        assert_eq!(st.count, 100);
        assert_eq!(st.codes.as_ref().unwrap()[&200], 80);
        assert_eq!(st.error_ratio, Some(0.1));
    }

    #[tokio::test]
    async fn rollup_windows_keep_exact_counts_and_extremes() {
        let now = now_ms();
        let latencies: Vec<(i64, f64)> = (0..1_000)
            .map(|i| (now - 120_000 + i * 100, 1.0 + (i % 100) as f64))
            .collect();
        let store = store_with("latency_ms", &latencies).await;
        let policy = SourcePolicy {
            rollup_after: Duration::from_secs(60),
            rollup_budget: 100,
            ..SourcePolicy::default()
        };
        let s = spec(PlotKind::Throughput, "checkout", "10m");
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &policy, &s, from, until).await.unwrap();
        assert_eq!(read.source, DataSource::minute_rollups());
        assert_eq!(read.samples, 1_000);
        let st = &read.stats[0];
        assert_eq!((st.count, st.min, st.max), (1_000, 1.0, 100.0));
        assert!((st.mean - 50.5).abs() < 1e-9);
        // At most about the budget of stand-ins, each standing for ten samples.
        assert!(read.series[0].values.len() <= 110);
        assert_eq!(read.series[0].weight, 10.0);
        assert!(st.rate_per_s.unwrap() > 0.0 && st.peak_rate_per_s.unwrap() > 0.0);
        // A service without samples has no stats, and the read says it is empty.
        let ghost = spec(PlotKind::Histogram, "ghost", "10m");
        let read = read_window(&store, &policy, &ghost, from, until)
            .await
            .unwrap();
        assert!(read.is_empty() && read.stats.is_empty());
    }
}
