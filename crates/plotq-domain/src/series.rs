//! What a plot's series say besides their distribution: samples per second over the
//! plot's time buckets, counts per HTTP status code, and the share of errors; and which
//! of these each plot kind's statistics carry ([`Extras`]).
//!
//! One definition for everyone who needs them: the renderer draws throughput from
//! [`bucket_rates`] and error rates with [`is_error`], and the statistics a job state,
//! a `plot.ready` event and `GET /api/v1/stats` report are computed with the same
//! functions over the same data, so the numbers beside a plot are the plot's numbers.
//!
//! Time buckets: the window `[from, until]` (inclusive) is cut at multiples of a
//! calendar-friendly width ([`time_step`]) chosen so that a plot whose *layout* is
//! `width` pixels wide (`PlotSpec::layout_size`: the image width over its `scale`) has
//! at most [`max_time_buckets`] of them (about a minute each for an hour). Bucket counts
//! are bounded ([`MAX_BUCKETS`]) and no arithmetic overflows, for any window.
//!
//! The partial last bucket: when the window ends inside its last bucket (a window that
//! ends "now" nearly always does), that bucket's time has not all elapsed and, with
//! ingest lag, its samples have not all arrived; drawn, it would read as a drop at the
//! right edge. Plots leave it out and so do the rates the statistics report
//! ([`BucketGrid::drawn`], [`bucket_rates`]), as Grafana's "now delay" leaves out the
//! incomplete end of a range — unless no earlier bucket has a sample, when it is all
//! there is to show.

use crate::plot::PlotKind;
use crate::rollup::{Rollup, status_code};
use std::collections::BTreeMap;

/// Candidate time steps in milliseconds (ticks and buckets), all calendar-friendly.
const TIME_STEPS_MS: &[i64] = &[
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// Most buckets any grouping makes (callers ask for at most ~120); a structural bound
/// whatever the window and width.
pub const MAX_BUCKETS: usize = 4096;

/// The smallest calendar-friendly step that cuts `span_ms` into at most `max` pieces
/// (whole days past a day); positive for any input.
pub fn time_step(span_ms: i64, max: usize) -> i64 {
    let span_ms = span_ms.max(0);
    let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
    TIME_STEPS_MS
        .iter()
        .copied()
        .find(|s| span_ms / s <= max)
        .unwrap_or_else(|| {
            let day = 86_400_000;
            (span_ms / max / day + 1).saturating_mul(day)
        })
}

/// Time buckets a plot whose layout is `layout_width_px` wide draws, at most: about 60
/// (a minute each for an hour), fewer when narrow. The layout width, not the image's:
/// a 1200-pixel image at `scale` 3 is a 400-pixel layout and has its buckets.
pub fn max_time_buckets(layout_width_px: u32) -> usize {
    (layout_width_px as usize / 12).clamp(10, 60)
}

/// The bucket width of a time plot whose layout is `layout_width_px` wide over `span_ms`.
pub fn time_bucket_ms(span_ms: i64, layout_width_px: u32) -> i64 {
    time_step(span_ms, max_time_buckets(layout_width_px))
}

/// One time bucket's samples per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateBucket {
    /// The part of the bucket inside the window, epoch ms (the first and last bucket may
    /// be partial).
    pub lo_ms: i64,
    pub hi_ms: i64,
    /// Values of the series in the bucket (each standing for `weight` samples).
    pub values: usize,
    /// Samples per second over the covered part.
    pub per_s: f64,
}

impl RateBucket {
    /// The middle of the covered part, where a plot draws the bucket's point.
    pub fn center_ms(&self) -> f64 {
        (i128::from(self.lo_ms) + i128::from(self.hi_ms)) as f64 / 2.0
    }
}

/// The samples per second of each bucket of width `width_ms` over the inclusive window
/// `[from, until]` that a plot draws: a value at `timestamps[i]` stands for `weight`
/// samples (1 for raw samples, more for rollup stand-ins); values outside the window
/// are left out, and so is a partial last bucket ([`BucketGrid::drawn`]). At most
/// [`MAX_BUCKETS`] buckets, at least one.
pub fn bucket_rates(
    timestamps: &[i64],
    weight: f64,
    from_ms: i64,
    until_ms: i64,
    width_ms: i64,
) -> Vec<RateBucket> {
    let grid = BucketGrid::new(from_ms, until_ms, width_ms);
    let BucketGrid {
        origin_ms,
        width_ms,
        n_buckets,
        ..
    } = grid;
    let mut counts = vec![0usize; n_buckets];
    for &ts in timestamps {
        if let Some(b) = grid.index(ts) {
            counts[b] += 1;
        }
    }
    counts.truncate(grid.drawn(&counts));
    counts
        .into_iter()
        .enumerate()
        .map(|(b, values)| {
            let b = i64::try_from(b).unwrap_or(i64::MAX);
            let start = origin_ms.saturating_add(b.saturating_mul(width_ms));
            let (lo_ms, hi_ms) = (
                start.max(from_ms),
                start.saturating_add(width_ms).min(until_ms),
            );
            let secs = (hi_ms.saturating_sub(lo_ms) as f64 / 1000.0).max(1e-3);
            RateBucket {
                lo_ms,
                hi_ms,
                values,
                per_s: values as f64 * weight / secs,
            }
        })
        .collect()
}

/// The time buckets of width `width_ms` over the inclusive window `[from, until]`,
/// aligned to multiples of the width: at most [`MAX_BUCKETS`], at least one, and no
/// arithmetic that can overflow, for any window. The one grid the plots and the
/// statistics bucket time by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketGrid {
    pub origin_ms: i64,
    pub width_ms: i64,
    pub n_buckets: usize,
    from_ms: i64,
    until_ms: i64,
}

impl BucketGrid {
    pub fn new(from_ms: i64, until_ms: i64, width_ms: i64) -> Self {
        let width_ms = width_ms.max(1);
        let origin_ms = from_ms
            .div_euclid(width_ms)
            .checked_mul(width_ms)
            .unwrap_or(from_ms);
        let mut grid = Self {
            origin_ms,
            width_ms,
            n_buckets: 1,
            from_ms,
            until_ms,
        };
        if until_ms >= origin_ms {
            grid.n_buckets = grid
                .offset(until_ms)
                .div_ceil(width_ms as u64)
                .clamp(1, MAX_BUCKETS as u64) as usize;
        }
        grid
    }

    /// `ts - origin`, which for `origin <= ts` always fits a u64 (the difference of two
    /// i64).
    fn offset(&self, ts: i64) -> u64 {
        ts.wrapping_sub(self.origin_ms) as u64
    }

    /// Whether the window ends inside the last bucket, before its end: its time has not
    /// all elapsed (and with ingest lag not all its samples have arrived). The window is
    /// inclusive, so a bucket `[start, start + width)` is whole when `until` reaches
    /// `start + width - 1`. A single bucket is never partial (it is the whole plot).
    pub fn last_is_partial(&self) -> bool {
        if self.n_buckets < 2 || self.until_ms < self.origin_ms {
            return false;
        }
        let end = (self.n_buckets as u64).saturating_mul(self.width_ms as u64);
        self.offset(self.until_ms).saturating_add(1) < end
    }

    /// How many buckets, from the first, a plot draws (and its rates count), given each
    /// bucket's sample count: all but a partial last one ([`Self::last_is_partial`]),
    /// unless no earlier bucket has a sample (then the partial one is all there is).
    pub fn drawn(&self, counts: &[usize]) -> usize {
        let n = self.n_buckets.min(counts.len());
        if n == self.n_buckets && self.last_is_partial() && counts[..n - 1].iter().any(|c| *c > 0) {
            n - 1
        } else {
            n
        }
    }

    /// The bucket of a time in the window (a time at `until` falls in the last bucket);
    /// `None` outside it.
    pub fn index(&self, ts: i64) -> Option<usize> {
        (ts >= self.from_ms && ts <= self.until_ms).then(|| {
            (self.offset(ts) / self.width_ms as u64).min(self.n_buckets as u64 - 1) as usize
        })
    }
}

/// `count` samples over the window `[from, until]`, per second (0 for an empty window).
pub fn mean_rate(count: u64, from_ms: i64, until_ms: i64) -> f64 {
    let secs = until_ms.saturating_sub(from_ms).max(0) as f64 / 1000.0;
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Whether one sample counts as an error: a 5xx status code for status metrics (the
/// metric's name contains `status`), any non-zero value for flag metrics.
pub fn is_error(metric: &str, value: f64) -> bool {
    if is_status_metric(metric) {
        (500.0..600.0).contains(&value)
    } else {
        value != 0.0
    }
}

fn is_status_metric(metric: &str) -> bool {
    metric.contains("status")
}

/// Counts of the values that are HTTP status codes (whole numbers 100–599).
pub fn code_counts(values: &[f64]) -> BTreeMap<u16, u64> {
    let mut codes = BTreeMap::new();
    for &v in values {
        if let Some(code) = status_code(v) {
            *codes.entry(code).or_default() += 1;
        }
    }
    codes
}

/// How many of `values` are errors ([`is_error`]).
pub fn error_count(metric: &str, values: &[f64]) -> u64 {
    values.iter().filter(|v| is_error(metric, **v)).count() as u64
}

/// How many of a rollup's samples are errors: its 5xx codes for status metrics, its
/// non-zero values for flag metrics (both exact).
pub fn rollup_error_count(metric: &str, rollup: &Rollup) -> u64 {
    if is_status_metric(metric) {
        rollup.codes.range(500..=599).map(|(_, n)| n).sum()
    } else {
        rollup.count - rollup.zeros
    }
}

/// The numbers a kind's statistics carry besides count, mean, extremes and percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extras {
    /// Latency kinds: nothing more.
    None,
    /// Throughput: the mean and peak samples per second.
    Rates,
    /// Status codes and error rate: counts per code and the error share.
    Codes,
}

impl Extras {
    pub fn of(kind: PlotKind) -> Self {
        match kind {
            PlotKind::Throughput => Extras::Rates,
            PlotKind::StatusCodes | PlotKind::ErrorRate => Extras::Codes,
            PlotKind::Histogram
            | PlotKind::LatencyTimeseries
            | PlotKind::Heatmap
            | PlotKind::Cdf
            | PlotKind::Correlation => Extras::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_covered_second_and_weighted() {
        // A minute's window in 10 s buckets: 20 samples in the first, 5 in the last.
        let mut ts: Vec<i64> = (0..20).map(|i| 60_000 + i * 100).collect();
        ts.extend((0..5).map(|i| 115_000 + i * 1_000));
        ts.push(59_999); // before the window: left out
        let buckets = bucket_rates(&ts, 1.0, 60_000, 120_000, 10_000);
        assert_eq!(buckets.len(), 6);
        assert_eq!(buckets[0].values, 20);
        assert_eq!(buckets[0].per_s, 2.0);
        // The sample at `until` belongs to the last bucket (the window is inclusive).
        assert_eq!(buckets[5].values, 5);
        assert_eq!((buckets[5].lo_ms, buckets[5].hi_ms), (110_000, 120_000));
        let weighted = bucket_rates(&ts, 10.0, 60_000, 120_000, 10_000);
        assert_eq!(weighted[0].per_s, 20.0);
        assert_eq!(mean_rate(25, 60_000, 120_000), 25.0 / 60.0);
        assert_eq!(mean_rate(25, 60_000, 60_000), 0.0);
    }

    #[test]
    fn rate_buckets_are_bounded_at_the_ends_of_time() {
        for (from, until, width) in [
            (i64::MIN, i64::MAX, 1),
            (i64::MIN, i64::MAX, i64::MAX),
            (i64::MAX, i64::MIN, 1_000),
            (0, 0, 0),
        ] {
            let b = bucket_rates(&[i64::MIN, 0, i64::MAX], 1.0, from, until, width);
            assert!((1..=MAX_BUCKETS).contains(&b.len()));
            assert!(b.iter().all(|b| b.per_s.is_finite() && b.per_s >= 0.0));
        }
    }

    #[test]
    fn a_partial_last_bucket_is_left_out() {
        // 10 s buckets over [60 s, 125 s]: the window ends 5 s into its seventh bucket.
        // Steady 2/s, but ingest lags: the last 3 s have not arrived yet.
        let ts: Vec<i64> = (0..((122_000 - 60_000) / 500))
            .map(|i| 60_000 + i * 500)
            .collect();
        let grid = BucketGrid::new(60_000, 125_000, 10_000);
        assert_eq!(grid.n_buckets, 7);
        assert!(grid.last_is_partial());
        let buckets = bucket_rates(&ts, 1.0, 60_000, 125_000, 10_000);
        // Before, the seventh bucket was drawn at 4 samples / 5 s = 0.8/s: a false dip,
        // and the statistics' peak could be taken from it when nothing else covered more.
        assert_eq!(buckets.len(), 6, "{buckets:?}");
        assert!(buckets.iter().all(|b| b.per_s == 2.0), "{buckets:?}");
        assert_eq!(buckets[5].hi_ms, 120_000);
        // A window ending on a bucket's last millisecond (or at its end: the sample at
        // `until` joins the last bucket) has no partial bucket.
        for until in [119_999, 120_000] {
            let grid = BucketGrid::new(60_000, until, 10_000);
            assert!(!grid.last_is_partial(), "{until}");
            assert_eq!(bucket_rates(&ts, 1.0, 60_000, until, 10_000).len(), 6);
        }
        // Only the partial bucket has samples: it is drawn (better than nothing).
        let fresh = [121_000, 123_000];
        let only = bucket_rates(&fresh, 1.0, 60_000, 125_000, 10_000);
        assert_eq!(only.len(), 7);
        assert_eq!(only[6].values, 2);
        // One bucket is never partial.
        assert!(!BucketGrid::new(60_000, 65_000, 10_000).last_is_partial());
        assert_eq!(BucketGrid::new(0, 5, 10).drawn(&[0]), 1);
        assert_eq!(grid.drawn(&[]), 0);
    }

    #[test]
    fn bucket_widths_follow_the_plot_width() {
        assert_eq!(max_time_buckets(1000), 60);
        assert_eq!(max_time_buckets(200), 16);
        assert_eq!(time_bucket_ms(3_600_000, 1000), 60_000);
        assert_eq!(time_bucket_ms(600_000, 1000), 10_000);
        assert_eq!(time_step(-5, 0), 1_000);
    }

    #[test]
    fn codes_and_errors() {
        let values = [200.0, 200.0, 503.0, 500.0, 404.0, 200.5, 42.0];
        assert_eq!(
            code_counts(&values),
            BTreeMap::from([(200, 2), (404, 1), (500, 1), (503, 1)])
        );
        assert_eq!(error_count("status_code", &values), 2);
        assert_eq!(error_count("failed", &[0.0, 1.0, 0.0, 2.0]), 2);
        let rollup = Rollup::of(&values);
        assert_eq!(rollup_error_count("status_code", &rollup), 2);
        assert_eq!(
            rollup_error_count("failed", &Rollup::of(&[0.0, 1.0, 0.0])),
            1
        );
    }

    #[test]
    fn extras_by_kind() {
        assert_eq!(Extras::of(PlotKind::Throughput), Extras::Rates);
        assert_eq!(Extras::of(PlotKind::ErrorRate), Extras::Codes);
        assert_eq!(Extras::of(PlotKind::StatusCodes), Extras::Codes);
        assert_eq!(Extras::of(PlotKind::Histogram), Extras::None);
    }
}
