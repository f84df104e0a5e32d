//! The correlation kind's numbers: one statistic ([`Stat`]) of each of two series per
//! time bucket, the buckets where both have one as points `(x, y)`, and what the points
//! say together ([`Fit`]: Pearson's and Spearman's coefficients and the least-squares
//! line). One definition for the worker's statistics, `GET /api/v1/stats` and the
//! renderer, which all call [`points`] and [`Fit::of`] on the same data.
//!
//! Buckets are the whole buckets of `bucket_ms` inside the window, aligned to multiples
//! of it (a bucket the window cuts at either end would read as a drop in count and
//! rate), at most [`MAX_POINTS`]. A bucket without samples has a count and a rate of 0
//! (no traffic is a point on a load axis) and no other statistic.
//!
//! Bounded and total: work is linear in the samples plus the buckets, every input of
//! finite values gives finite numbers or none (coefficients of fewer than three points,
//! or of points without spread, are none), and nothing overflows: values are scaled into
//! `[-1, 1]` before products are formed.

use crate::series::is_error;
use serde::{Deserialize, Serialize};

pub use crate::plot::{MAX_POINTS, MIN_POINTS, Stat};

/// `stat` of one bucket's `values` (each standing for `weight` samples) over
/// `secs` seconds; none for an empty bucket, except count and rate (0).
fn stat_of(stat: Stat, metric: &str, values: &[f64], weight: f64, secs: f64) -> Option<f64> {
    let samples = values.len() as f64 * weight;
    match stat {
        Stat::Count => return Some(samples),
        Stat::Rate => return Some(samples / secs.max(1e-3)),
        _ => {}
    }
    let (min, max, sum) = crate::stats::extent(values)?;
    Some(match stat {
        Stat::Mean => crate::stats::mean(values, min, max, sum),
        Stat::Min => min,
        Stat::Max => max,
        Stat::ErrorRate => {
            let errors = values.iter().filter(|v| is_error(metric, **v)).count();
            errors as f64 * 100.0 / values.len() as f64
        }
        _ => {
            let q = stat.quantile().unwrap_or(0.5);
            crate::stats::percentiles(values, min, max, [q])[0]
        }
    })
}

/// One series' samples as a correlation reads them: times and values in parallel, each
/// value standing for `weight` samples.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    pub metric: &'a str,
    pub timestamps_ms: &'a [i64],
    pub values: &'a [f64],
    pub weight: f64,
}

impl<'a> Samples<'a> {
    /// `metric`'s values at `timestamps_ms`, each standing for `weight` samples.
    pub fn new(metric: &'a str, timestamps_ms: &'a [i64], values: &'a [f64], weight: f64) -> Self {
        Self {
            metric,
            timestamps_ms,
            values,
            weight,
        }
    }
}

/// The whole buckets of `bucket_ms` in the inclusive window `[from_ms, until_ms]`: the
/// first starts at the first multiple of `bucket_ms` at or after `from_ms`, the last ends
/// at or before `until_ms + 1`; at most [`MAX_POINTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub first_ms: i64,
    pub bucket_ms: i64,
    pub n: usize,
}

impl Buckets {
    pub fn new(from_ms: i64, until_ms: i64, bucket_ms: i64) -> Self {
        let bucket_ms = bucket_ms.max(1);
        let first_ms = from_ms
            .div_euclid(bucket_ms)
            .saturating_add(i64::from(from_ms.rem_euclid(bucket_ms) != 0))
            .saturating_mul(bucket_ms);
        let end = i128::from(until_ms) + 1;
        let n = ((end - i128::from(first_ms)).max(0) / i128::from(bucket_ms))
            .min(i128::from(MAX_POINTS)) as usize;
        Self {
            first_ms,
            bucket_ms,
            n,
        }
    }

    /// The bucket of a time, if it falls in one.
    pub fn index(&self, ts: i64) -> Option<usize> {
        let offset = i128::from(ts) - i128::from(self.first_ms);
        if offset < 0 {
            return None;
        }
        let b = offset / i128::from(self.bucket_ms);
        (b < self.n as i128).then_some(b as usize)
    }

    /// The middle of bucket `b`, epoch ms.
    pub fn center_ms(&self, b: usize) -> i64 {
        let start = i128::from(self.first_ms) + b as i128 * i128::from(self.bucket_ms);
        (start + i128::from(self.bucket_ms) / 2).clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }
}

/// `stat` of each bucket of `series` (none where the statistic has no value).
pub fn per_bucket(series: &Samples<'_>, buckets: &Buckets, stat: Stat) -> Vec<Option<f64>> {
    // A counting sort of the values into their buckets: linear, one copy of the values.
    let index: Vec<Option<usize>> = series
        .timestamps_ms
        .iter()
        .take(series.values.len())
        .map(|ts| buckets.index(*ts))
        .collect();
    let mut starts = vec![0usize; buckets.n + 1];
    for b in index.iter().flatten() {
        starts[b + 1] += 1;
    }
    for b in 0..buckets.n {
        starts[b + 1] += starts[b];
    }
    let mut sorted = vec![0.0f64; starts[buckets.n]];
    let mut next = starts.clone();
    for (b, v) in index.iter().zip(series.values) {
        if let Some(b) = b {
            sorted[next[*b]] = *v;
            next[*b] += 1;
        }
    }
    let secs = buckets.bucket_ms as f64 / 1000.0;
    (0..buckets.n)
        .map(|b| {
            let values = &sorted[starts[b]..starts[b + 1]];
            stat_of(stat, series.metric, values, series.weight, secs)
        })
        .collect()
}

/// One point of a correlation plot: a bucket where both statistics have a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub center_ms: i64,
    pub x: f64,
    pub y: f64,
}

/// The points of `y`'s `y_stat` against `x`'s `x_stat`, bucket by bucket.
pub fn points(
    (y, y_stat): (&Samples<'_>, Stat),
    (x, x_stat): (&Samples<'_>, Stat),
    buckets: &Buckets,
) -> Vec<Point> {
    let ys = per_bucket(y, buckets, y_stat);
    let xs = per_bucket(x, buckets, x_stat);
    ys.iter()
        .zip(&xs)
        .enumerate()
        .filter_map(|(b, (y, x))| {
            Some(Point {
                center_ms: buckets.center_ms(b),
                x: (*x)?,
                y: (*y)?,
            })
        })
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect()
}

/// What a correlation's points say together. Coefficients need at least three points
/// and spread on both axes; the line needs spread on x.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Buckets where both statistics have a value.
    pub points: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pearson: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spearman: Option<f64>,
    /// The least-squares line `y = slope·x + intercept`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intercept: Option<f64>,
}

impl Fit {
    pub fn of(points: &[Point]) -> Self {
        let xs: Vec<f64> = points.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = points.iter().map(|p| p.y).collect();
        let line = least_squares(&xs, &ys);
        let enough = points.len() >= MIN_POINTS as usize;
        Fit {
            points: points.len() as u64,
            pearson: enough.then(|| pearson(&xs, &ys)).flatten(),
            spearman: enough.then(|| pearson(&ranks(&xs), &ranks(&ys))).flatten(),
            slope: line.map(|l| l.0),
            intercept: line.map(|l| l.1),
        }
    }

    /// `Err(problem)` unless the coefficients lie in `[-1, 1]` and the line is finite
    /// (what a decoded state or event is checked for).
    pub fn check(&self) -> Result<(), String> {
        let unit = |c: Option<f64>| c.is_none_or(|c| (-1.0..=1.0).contains(&c));
        if !unit(self.pearson) || !unit(self.spearman) {
            return Err("pearson and spearman must lie in [-1, 1]".to_owned());
        }
        if self.slope.is_some_and(|s| !s.is_finite())
            || self.intercept.is_some_and(|i| !i.is_finite())
        {
            return Err("slope and intercept must be finite".to_owned());
        }
        Ok(())
    }
}

/// `values` scaled into `[-1, 1]` (by their largest magnitude, a power of two so the
/// scaling is exact), and the scale; none when all are zero.
fn scaled(values: &[f64]) -> (Vec<f64>, f64) {
    let top = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if top == 0.0 || !top.is_finite() {
        return (values.to_vec(), 1.0);
    }
    let scale = 2f64.powi(top.log2().ceil() as i32);
    (values.iter().map(|v| v / scale).collect(), scale)
}

/// Means and centred sums of squares and products of two equally long series scaled
/// into `[-1, 1]`: `(mean_x, mean_y, sxx, syy, sxy)`.
fn moments(xs: &[f64], ys: &[f64]) -> (f64, f64, f64, f64, f64) {
    let n = xs.len().max(1) as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        let (dx, dy) = (x - mx, y - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    (mx, my, sxx, syy, sxy)
}

/// Pearson's correlation coefficient; none without spread on either side.
fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let (xs, _) = scaled(xs);
    let (ys, _) = scaled(ys);
    let (_, _, sxx, syy, sxy) = moments(&xs, &ys);
    // Relative to the scale (values within [-1, 1]): spread below this is rounding.
    let tiny = 1e-24 * xs.len() as f64;
    if sxx <= tiny || syy <= tiny {
        return None;
    }
    let r = sxy / (sxx.sqrt() * syy.sqrt());
    r.is_finite().then(|| r.clamp(-1.0, 1.0))
}

/// The least-squares line through the points: `(slope, intercept)`; none without spread
/// in x or when either is not finite.
fn least_squares(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    if xs.len() < 2 {
        return None;
    }
    let (sx_v, sx) = scaled(xs);
    let (sy_v, sy) = scaled(ys);
    let (mx, my, sxx, _, sxy) = moments(&sx_v, &sy_v);
    if sxx <= 1e-24 * xs.len() as f64 {
        return None;
    }
    let slope_scaled = sxy / sxx;
    let slope = slope_scaled * (sy / sx);
    let intercept = (my - slope_scaled * mx) * sy;
    (slope.is_finite() && intercept.is_finite()).then_some((slope, intercept))
}

/// Each value's rank from 1, ties given the mean of their ranks (as scipy's `rankdata`).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            ranks[*k] = rank;
        }
        i = j + 1;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pts(xy: &[(f64, f64)]) -> Vec<Point> {
        xy.iter()
            .map(|&(x, y)| Point { center_ms: 0, x, y })
            .collect()
    }

    #[test]
    fn coefficients_match_scipy() {
        // scipy.stats.pearsonr / spearmanr of x = [1, 2, 3, 4, 5], y = [2, 4, 5, 4, 5]:
        // 0.7745966692414834 and 0.7378647873726218; np.polyfit: 0.6, 2.2.
        let fit = Fit::of(&pts(&[(1., 2.), (2., 4.), (3., 5.), (4., 4.), (5., 5.)]));
        assert_eq!(fit.points, 5);
        assert!((fit.pearson.unwrap() - 0.7745966692414834).abs() < 1e-12);
        assert!((fit.spearman.unwrap() - 0.7378647873726218).abs() < 1e-12);
        assert!((fit.slope.unwrap() - 0.6).abs() < 1e-12);
        assert!((fit.intercept.unwrap() - 2.2).abs() < 1e-12);
        // Monotone but not linear: Spearman 1, Pearson less.
        let fit = Fit::of(&pts(&[
            (1., 1.),
            (2., 8.),
            (3., 27.),
            (4., 64.),
            (5., 125.),
        ]));
        assert!((fit.spearman.unwrap() - 1.0).abs() < 1e-12);
        assert!(fit.pearson.unwrap() < 0.99);
        // Opposite directions.
        let fit = Fit::of(&pts(&[(1., 3.), (2., 2.), (3., 1.)]));
        assert!((fit.pearson.unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn too_few_points_or_no_spread_have_no_coefficients() {
        let two = Fit::of(&pts(&[(1., 2.), (2., 3.)]));
        assert_eq!((two.pearson, two.spearman), (None, None));
        assert_eq!(two.slope, Some(1.0));
        let flat = Fit::of(&pts(&[(1., 5.), (2., 5.), (3., 5.)]));
        assert_eq!((flat.pearson, flat.spearman), (None, None));
        assert_eq!(flat.slope, Some(0.0));
        let vertical = Fit::of(&pts(&[(1., 5.), (1., 6.), (1., 7.)]));
        assert_eq!((vertical.pearson, vertical.slope), (None, None));
        assert_eq!(Fit::of(&[]).points, 0);
    }

    #[test]
    fn buckets_are_whole_and_aligned() {
        // 10:00:30 to 10:05:00 in minutes: 10:01, 10:02, 10:03, 10:04 (10:05 would need
        // the window to reach 10:05:59.999).
        let b = Buckets::new(30_000, 300_000, 60_000);
        assert_eq!((b.first_ms, b.n), (60_000, 4));
        assert_eq!(b.index(59_999), None);
        assert_eq!(b.index(60_000), Some(0));
        assert_eq!(b.index(299_999), Some(3));
        assert_eq!(b.index(300_000), None);
        assert_eq!(Buckets::new(0, 299_999, 60_000).n, 5);
        assert_eq!(Buckets::new(0, i64::MAX, 1).n as u64, MAX_POINTS);
        assert_eq!(Buckets::new(i64::MIN, i64::MAX, i64::MAX).n, 2);
    }

    #[test]
    fn bucket_statistics() {
        let ts = [0, 1_000, 2_000, 3_000, 60_000, 61_000, 180_000];
        let values = [10.0, 20.0, 30.0, 40.0, 503.0, 200.0, 7.0];
        let s = Samples {
            metric: "status_code",
            timestamps_ms: &ts,
            values: &values,
            weight: 1.0,
        };
        let b = Buckets::new(0, 239_999, 60_000);
        assert_eq!(
            per_bucket(&s, &b, Stat::Count),
            [Some(4.0), Some(2.0), Some(0.0), Some(1.0)]
        );
        assert_eq!(per_bucket(&s, &b, Stat::Rate)[0], Some(4.0 / 60.0));
        assert_eq!(
            per_bucket(&s, &b, Stat::Mean),
            [Some(25.0), Some(351.5), None, Some(7.0)]
        );
        // numpy.percentile([10, 20, 30, 40], 90) = 37.0
        assert_eq!(per_bucket(&s, &b, Stat::P90)[0], Some(37.0));
        assert_eq!(per_bucket(&s, &b, Stat::ErrorRate)[1], Some(50.0));
        let weighted = Samples { weight: 2.5, ..s };
        assert_eq!(per_bucket(&weighted, &b, Stat::Count)[1], Some(5.0));
        // Points where both have a value: the empty bucket has a count, not a mean.
        let p = points((&s, Stat::Mean), (&s, Stat::Count), &b);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].x, p[0].y, p[0].center_ms), (4.0, 25.0, 30_000));
    }

    #[test]
    fn stats_parse_and_describe() {
        for s in Stat::ALL {
            assert_eq!(Stat::parse(s.as_str()), Ok(*s));
        }
        assert!(Stat::parse("p42").unwrap_err().contains("p95"));
        assert_eq!(Stat::Rate.describe("latency_ms"), "rate of latency_ms (/s)");
        assert_eq!(Stat::P95.describe("latency_ms"), "p95 of latency_ms");
    }

    proptest! {
        /// Any finite points: coefficients in [-1, 1], a finite line or none, and the
        /// fit's own check passes.
        #[test]
        fn fits_are_bounded_for_any_finite_points(
            xy in prop::collection::vec(
                (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
                 prop::num::f64::NORMAL | prop::num::f64::ZERO),
                0..64,
            )
        ) {
            let fit = Fit::of(&pts(&xy));
            prop_assert_eq!(fit.points as usize, xy.len());
            prop_assert!(fit.check().is_ok(), "{:?}", fit);
        }

        /// Any samples, any window, any bucket: at most MAX_POINTS buckets, and every
        /// statistic finite.
        #[test]
        fn bucket_statistics_are_bounded(
            samples in prop::collection::vec((any::<i64>(), -1e300f64..1e300), 0..200),
            from in any::<i64>(),
            span in 0i64..1_000_000_000,
            bucket in 1i64..100_000_000,
            stat in prop::sample::select(Stat::ALL),
        ) {
            let (ts, values): (Vec<i64>, Vec<f64>) = samples.into_iter().unzip();
            let s = Samples { metric: "latency_ms", timestamps_ms: &ts, values: &values, weight: 1.0 };
            let b = Buckets::new(from, from.saturating_add(span), bucket);
            let got = per_bucket(&s, &b, stat);
            prop_assert!(got.len() as u64 <= MAX_POINTS);
            prop_assert!(got.iter().flatten().all(|v| v.is_finite()));
        }
    }
}
