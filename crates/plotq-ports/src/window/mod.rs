//! Reading a plot's window from the store, for the worker (which draws it) and the api's
//! `GET /api/v1/stats` (which reports its numbers): one path, so a job's statistics and
//! the synchronous ones agree.
//!
//! `SourcePolicy` decides raw samples or rollups — hour rollups for windows longer than
//! `hourly_after` (one document an hour: 2,161 for 90 days), minute rollups for
//! `rollup_after`, reaching past the raw retention, or holding more than
//! `raw_max_samples` (counted from the rollups, which are read first: one document a
//! period), and windows holding summarized values (OTLP histogram points, which have no
//! raw samples; the source then states their error) are read from the rollups, each series as at most `rollup_budget` stand-in
//! values (`Rollup::stand_ins`) that each count for `weight` samples. The work of a read
//! is bounded by the policy: at most `raw_max_samples` raw samples, else the window's
//! minutes (at most `hourly_after` of them), else its hours.
//!
//! `read_window` returns plain data — per series its timestamps, values and weight; the
//! source; the exact sample count; the documents read; and each service's statistics
//! (`SeriesStats`, with the extras of the spec's kind: `series::Extras`) computed from
//! what was read: exact from raw samples, from the merged rollups otherwise (counts,
//! extremes, mean and codes exact, percentiles within the rollups' accuracy), rates over
//! the plot's own time buckets.

use crate::clock::now_ms;
use crate::error::{PortError, PortResult};
use crate::store::{LabelSelect, MetricStore, Resolution, Rollups, SeriesQuery, Split};
use plotq_domain::correlation::{self, Buckets, Fit, Point, Samples};
use plotq_domain::plot::MAX_SERVICES;
use plotq_domain::rollup::{RELATIVE_ACCURACY, Rollup};
use plotq_domain::series::{self, Extras};
use plotq_domain::{Annotation, DataSource, PlotKind, PlotSpec, SeriesStats, ServiceName};
use std::borrow::Cow;
use std::time::Duration;

/// When a window is read from rollups instead of raw samples: windows longer than
/// `rollup_after`, windows reaching past the raw retention, and windows whose rollups
/// count more than `raw_max_samples` samples (all services together); from hour
/// rollups rather than minute ones when longer than `hourly_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePolicy {
    pub rollup_after: Duration,
    /// Windows longer than this are read from hour rollups. At least
    /// [`MIN_HOURLY_AFTER`]: past it every time plot's buckets are whole hours, so an
    /// hour's values all fall in one bucket.
    pub hourly_after: Duration,
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
            hourly_after: Duration::from_secs(72 * 3600),
            raw_retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 24 * 3600),
            raw_max_samples: 5_000_000,
            rollup_budget: 250_000,
        }
    }
}

/// The shortest `hourly_after`: a window longer than 60 hours has time buckets of an
/// hour or more at every width — the time kinds' at most 60 buckets
/// (`series::max_time_buckets`), the heatmap's at most 120 columns — so each hour's
/// values fall in one bucket.
pub const MIN_HOURLY_AFTER: Duration = Duration::from_secs(60 * 3600);

impl SourcePolicy {
    /// The rollups a window of `window_ms` reads when drawn from rollups.
    pub fn resolution(&self, window_ms: i64) -> Resolution {
        let hourly_after =
            i64::try_from(self.hourly_after.max(MIN_HOURLY_AFTER).as_millis()).unwrap_or(i64::MAX);
        if window_ms > hourly_after {
            Resolution::Hour
        } else {
            Resolution::Minute
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
    /// The exact number of samples (rollups count whole periods, minutes or hours, at the
    /// window's ends).
    pub samples: u64,
    /// Stored documents (chunks and rollups) read.
    pub documents: u64,
    /// Each service's numbers, services without samples left out.
    pub stats: Vec<SeriesStats>,
    /// For kinds with a time axis: the annotations of the spec's services in the window
    /// (the latest `MAX_DRAWN`, in time order), drawn on it and listed by the job.
    pub annotations: Vec<Annotation>,
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
    let resolution = policy.resolution(until_ms.saturating_sub(from_ms));
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
                    resolution,
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
    let queries: Vec<(Naming, SeriesQuery<'_>)> = match (&spec.group_by, &spec.correlation) {
        // A correlation reads y (the spec's series) and x (its own metric, of its own
        // service, filtered alike when it is the same service), a pair per service.
        // Compared services: a pair each, y then x, x of its own service.
        (None, Some(c)) => spec
            .services
            .iter()
            .flat_map(|service| {
                let y = base(spec, service, window, filtered);
                let x = SeriesQuery {
                    service: c.x_service.as_ref().unwrap_or(service).as_str(),
                    metric: c.x_metric.as_str(),
                    select: if c.x_service.is_some() {
                        LabelSelect::ALL
                    } else {
                        filtered
                    },
                    ..y
                };
                let naming = |s: &ServiceName| Naming {
                    service: s.to_string(),
                    group: None,
                    other: false,
                };
                [
                    (naming(service), y),
                    (naming(c.x_service.as_ref().unwrap_or(service)), x),
                ]
            })
            .collect(),
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
    let annotations = if spec.kind.has_time_axis() {
        let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
        let mut found = store.annotations(&services, from_ms, until_ms).await?;
        // Each names only the plot's services: a plot shows its own, no one else's.
        for a in &mut found {
            a.services.retain(|s| spec.services.contains(s));
        }
        found
    } else {
        Vec::new()
    };
    let window_ms = until_ms.saturating_sub(from_ms);
    let raw_horizon = now_ms().saturating_sub(policy.raw_retention.as_millis() as i64);
    // The rollups also count the window's samples cheaply (one document a period).
    let mut rollups = Vec::with_capacity(queries.len());
    for (_, q) in &queries {
        rollups.push(store.rollups_at(q, resolution).await?);
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
    let by_rollups = resolution == Resolution::Hour
        || window_ms > policy.rollup_after.as_millis() as i64
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
            let (stand_in, samples) = stand_ins(naming, read, resolution, policy.rollup_budget);
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
                    resolution_secs: (resolution.millis() / 1000) as u32,
                    relative_error,
                },
                samples: total,
                documents,
                stats,
                annotations,
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
            annotations,
        },
    ))
}

/// The spec a read is drawn by: a correlation read from rollups, which hold whole
/// periods (their stand-ins spread over each period in no order of time), cuts buckets
/// of whole periods — a bucket that splits a minute (or an hour) would split its values
/// arbitrarily — rounded up, and says so in its legend; any other spec as asked.
pub fn as_read<'s>(spec: &'s PlotSpec, source: &DataSource) -> Cow<'s, PlotSpec> {
    match (&spec.correlation, source) {
        (
            Some(c),
            DataSource::Rollups {
                resolution_secs, ..
            },
        ) if resolution_secs > &0
            && !c.bucket.secs().is_multiple_of(u64::from(*resolution_secs)) =>
        {
            let period = u64::from(*resolution_secs);
            let mut coarse = spec.clone();
            if let Some(c) = coarse.correlation.as_mut()
                && let Ok(bucket) =
                    plotq_domain::Window::from_secs(c.bucket.secs().div_ceil(period) * period)
            {
                c.bucket = bucket;
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
    let fits: Vec<Fit> = correlation_pairs(&drawn, &read)
        .iter()
        .map(|points| Fit::of(points))
        .collect();
    let metrics = [spec.metric.as_str(), c.x_metric.as_str()];
    // Statistics leave out the series without samples; the rest are in series order,
    // a pair (y, then x) a service.
    let mut stats = std::mem::take(&mut read.stats).into_iter();
    for (i, s) in read.series.iter().enumerate() {
        if s.values.is_empty() {
            continue;
        }
        if let Some(st) = stats.next() {
            let fit = (i % 2 == 0).then(|| fits.get(i / 2).copied()).flatten();
            read.stats.push(st.in_correlation(metrics[i % 2], fit));
        }
    }
    read
}

/// A correlation's points per compared service, from its read's pairs of series (y, then
/// x): one per whole bucket where both statistics have a value. Empty for any other
/// spec. `spec` as the read is drawn ([`as_read`]).
pub fn correlation_pairs(spec: &PlotSpec, read: &WindowRead) -> Vec<Vec<Point>> {
    let Some(c) = &spec.correlation else {
        return Vec::new();
    };
    let buckets = Buckets::new(read.from_ms, read.until_ms, c.bucket.millis());
    read.series
        .chunks_exact(2)
        .map(|pair| {
            let (y, x) = (&pair[0], &pair[1]);
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
        })
        .collect()
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

/// At most about `budget` stand-in values for the periods' samples, each period's
/// spread over its period (in an order that does not follow their values), all of one
/// weight; and the exact number of samples they stand for.
fn stand_ins(
    naming: &Naming,
    read: &Rollups,
    resolution: Resolution,
    budget: usize,
) -> (SeriesWindow, u64) {
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
            data.timestamps_ms
                .push(minute + slot * resolution.millis() / k);
            data.values.push(v);
        }
    }
    (data, total)
}

#[cfg(test)]
mod tests;
