//! Rollups: mergeable per-minute summaries of one series — count, sum, min, max, counts
//! per HTTP status code, and a log-bucketed histogram with a relative error of at most
//! [`RELATIVE_ACCURACY`] (the DDSketch mapping: bucket `i` holds the values in
//! `(γ^(i-1), γ^i]`, γ = (1+α)/(1-α), and is represented by `2γ^i/(γ+1)`, within α of
//! every value it holds). Merging is adding counts, so it is associative and commutative
//! and a store can merge with atomic increments.
//!
//! The bucket index is part of the stored format (MongoDB increments `p.<index>`), which
//! is why plotq maps values itself rather than through a sketch crate whose internal
//! layout it could not store and merge in place.
//!
//! Summaries made elsewhere merge in too ([`Rollup::from_buckets`]: an OpenTelemetry
//! histogram point's buckets, each counted at a value standing for it): their values
//! are `summarized` (no raw sample exists for them, so a window holding any is drawn
//! from the rollups) and `summary_error` says how far such a value may be from the
//! values it stands for, the rollup's own accuracy included — what a plot of them
//! states.
//!
//! Long windows are drawn from rollups through [`Rollup::representatives`]: a bounded,
//! evenly-weighted stand-in sample whose distribution follows the rollup's buckets, so
//! every plot kind draws from rollups with the code it draws raw samples with.

use crate::stats::Summary;
use std::collections::BTreeMap;

/// Width of a rollup: one minute.
pub const ROLLUP_MS: i64 = 60_000;
/// Largest relative error of a value read back from a rollup's histogram.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Magnitudes below this count as zero (their own bucket).
pub const MIN_MAGNITUDE: f64 = 1e-300;
/// Bucket indexes lie within `±MAX_INDEX` (|v| from 1e-300 to f64::MAX).
pub const MAX_INDEX: i32 = 36_000;
/// `Rollup::sum` adds values scaled by 2^-64, so no sum of finite values overflows (and
/// a store never has to hold an infinity); the scaling is exact but for magnitudes
/// below ~1e-288.
const SUM_SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// `ln(γ)` for [`RELATIVE_ACCURACY`] = 0.01 (a test checks it against `gamma()`).
const LN_GAMMA: f64 = 0.020000666706669435;

/// The bucket of a magnitude `m >= MIN_MAGNITUDE`.
pub fn bucket_index(m: f64) -> i32 {
    ((m.ln() / LN_GAMMA).ceil() as i32).clamp(-MAX_INDEX, MAX_INDEX)
}

/// The value that stands for bucket `i` (within α of every magnitude in it).
pub fn bucket_value(i: i32) -> f64 {
    (2.0 * (f64::from(i) * LN_GAMMA).exp() / (gamma() + 1.0)).min(f64::MAX)
}

/// A minute of one series, mergeable.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollup {
    pub count: u64,
    /// The sum of the values, each scaled by 2^-64 (never overflows).
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Counts by bucket index of the positive values.
    pub positive: BTreeMap<i32, u64>,
    /// Counts by bucket index of the magnitudes of the negative values.
    pub negative: BTreeMap<i32, u64>,
    /// Values with magnitude below [`MIN_MAGNITUDE`].
    pub zeros: u64,
    /// Counts of the values that are HTTP status codes (whole numbers 100–599).
    pub codes: BTreeMap<u16, u64>,
    /// Values merged from summaries ([`Rollup::from_buckets`]) rather than samples.
    pub summarized: u64,
    /// The largest relative error of a summarized value (0 without any): the distance
    /// from a summary's bucket to the value standing for it, this rollup's accuracy
    /// included.
    pub summary_error: f64,
}

/// A rollup of one series and minute made from a summary (see [`Rollup::from_buckets`]),
/// on its way to a store.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRollup {
    pub service: crate::ServiceName,
    pub metric: crate::MetricName,
    pub labels: crate::Labels,
    /// The start of the minute (a multiple of [`ROLLUP_MS`]).
    pub minute_ms: i64,
    pub rollup: Rollup,
}

/// What a summary's bucket holds: `count` values within `[lower, upper]` (finite, with
/// `lower <= upper`); an `open` bucket reaches past one of its bounds to an unknown end
/// (an OpenTelemetry histogram's first and last buckets without the point's min or max):
/// its values count at its bounds, and its error is the whole value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryBucket {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub open: bool,
}

/// The relative error of a value standing for a bucket with bounds `lower` and `upper`
/// (see [`stand_in`]): `(b - a) / (b + a)` for magnitudes `a <= b` of one sign, and 1
/// (the whole value) for a bucket that spans zero.
pub fn bucket_error(lower: f64, upper: f64) -> f64 {
    if lower == upper {
        return 0.0;
    }
    if lower < 0.0 && upper > 0.0 || lower == 0.0 || upper == 0.0 {
        return 1.0;
    }
    let (a, b) = (lower.abs().min(upper.abs()), lower.abs().max(upper.abs()));
    ((b - a) / (b + a)).min(1.0)
}

/// The value standing for a bucket with bounds `lower <= upper`: for one sign the one
/// within the same relative distance of both ends, `2ab / (a + b)` of the magnitudes
/// (as the rollup's own buckets do); the midpoint for a bucket that spans zero.
pub fn stand_in(lower: f64, upper: f64) -> f64 {
    if lower == upper {
        return lower;
    }
    if lower < 0.0 && upper > 0.0 || lower == 0.0 || upper == 0.0 {
        return lower / 2.0 + upper / 2.0;
    }
    let (a, b) = (lower.abs(), upper.abs());
    let m = 2.0 * (a / (a + b)) * b;
    if lower < 0.0 { -m } else { m }
}

/// Adds to `counts` how many times each key occurs in `keys` (one map update per
/// distinct key).
fn count_runs<K: Ord + Copy>(counts: &mut BTreeMap<K, u64>, mut keys: Vec<K>) {
    keys.sort_unstable();
    for run in keys.chunk_by(|a, b| a == b) {
        *counts.entry(run[0]).or_default() += run.len() as u64;
    }
}

/// The HTTP status code `v` stands for, if it is one.
pub fn status_code(v: f64) -> Option<u16> {
    (v.fract() == 0.0 && (100.0..=599.0).contains(&v)).then_some(v as u16)
}

impl Rollup {
    /// The rollup of `values`: what `add` makes of each in turn (the same sum, bit for
    /// bit), with each bucket's and code's count looked up once per distinct index
    /// rather than once a value — a batch of a thousand latencies touches a few hundred
    /// buckets.
    pub fn of(values: &[f64]) -> Self {
        let mut r = Self::default();
        let (Some(&first), n) = (values.first(), values.len()) else {
            return r;
        };
        (r.min, r.max) = (first, first);
        let mut positive = Vec::with_capacity(n);
        let mut negative = Vec::new();
        let mut codes = Vec::new();
        for &v in values {
            r.min = r.min.min(v);
            r.max = r.max.max(v);
            r.sum += v * SUM_SCALE;
            let m = v.abs();
            if m < MIN_MAGNITUDE {
                r.zeros += 1;
            } else if v > 0.0 {
                positive.push(bucket_index(m));
            } else {
                negative.push(bucket_index(m));
            }
            if let Some(code) = status_code(v) {
                codes.push(code);
            }
        }
        r.count = n as u64;
        count_runs(&mut r.positive, positive);
        count_runs(&mut r.negative, negative);
        count_runs(&mut r.codes, codes);
        r
    }

    /// Adds one value (as `Rollup::of` counts it).
    pub fn add(&mut self, v: f64) {
        self.merge(&Self::of(&[v]));
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Rollup) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            (self.min, self.max) = (other.min, other.max);
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.zeros += other.zeros;
        for (map, from) in [
            (&mut self.positive, &other.positive),
            (&mut self.negative, &other.negative),
        ] {
            for (&i, &n) in from {
                *map.entry(i).or_default() += n;
            }
        }
        for (&code, &n) in &other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.summarized += other.summarized;
        self.summary_error = self.summary_error.max(other.summary_error);
    }

    /// The rollup of a summary's `buckets` (empty ones left out): each bucket's count at
    /// the value standing for it ([`stand_in`]), all summarized, with the largest error of
    /// a non-empty bucket ([`bucket_error`], composed with this rollup's accuracy). The
    /// summary's own `sum`, `min` and `max`, when it has them (finite), replace what the
    /// buckets would give; a `min` or `max` that contradicts the buckets is ignored.
    /// `None` when no bucket holds a value. Status codes are not counted (the values are
    /// not individual samples).
    pub fn from_buckets(
        buckets: &[SummaryBucket],
        sum: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
    ) -> Option<Rollup> {
        let mut r = Rollup::default();
        let mut error: f64 = 0.0;
        for b in buckets.iter().filter(|b| b.count > 0) {
            debug_assert!(b.lower <= b.upper && b.lower.is_finite() && b.upper.is_finite());
            let v = stand_in(b.lower, b.upper);
            error = error.max(if b.open {
                1.0
            } else {
                bucket_error(b.lower, b.upper)
            });
            if r.count == 0 {
                (r.min, r.max) = (v, v);
            } else {
                r.min = r.min.min(v);
                r.max = r.max.max(v);
            }
            r.count += b.count;
            r.sum += v * SUM_SCALE * b.count as f64;
            let m = v.abs();
            if m < MIN_MAGNITUDE {
                r.zeros += b.count;
            } else if v > 0.0 {
                *r.positive.entry(bucket_index(m)).or_default() += b.count;
            } else {
                *r.negative.entry(bucket_index(m)).or_default() += b.count;
            }
        }
        if r.count == 0 {
            return None;
        }
        if let Some(sum) = sum.filter(|s| s.is_finite()) {
            r.sum = sum * SUM_SCALE;
        }
        let first = buckets.iter().find(|b| b.count > 0)?;
        let last = buckets.iter().rev().find(|b| b.count > 0)?;
        let extremes = (
            min.filter(|m| first.open || (first.lower..=first.upper).contains(m)),
            max.filter(|m| last.open || (last.lower..=last.upper).contains(m)),
        );
        if let (Some(min), Some(max)) = extremes
            && min > max
        {
            // Contradicting extremes: the buckets' are kept.
        } else {
            r.min = extremes.0.filter(|m| m.is_finite()).unwrap_or(r.min);
            r.max = extremes.1.filter(|m| m.is_finite()).unwrap_or(r.max);
        }
        if r.min > r.max {
            (r.min, r.max) = (r.max, r.min);
        }
        r.summarized = r.count;
        r.summary_error = (error + RELATIVE_ACCURACY + error * RELATIVE_ACCURACY).min(1.0);
        Some(r)
    }

    /// The relative error of percentiles read from this rollup: its accuracy, or its
    /// summarized values' when larger.
    pub fn relative_error(&self) -> f64 {
        RELATIVE_ACCURACY.max(self.summary_error)
    }

    /// The merge of `rollups`.
    pub fn merged<'a>(rollups: impl IntoIterator<Item = &'a Rollup>) -> Rollup {
        let mut out = Rollup::default();
        for r in rollups {
            out.merge(r);
        }
        out
    }

    /// Checks what `add` and `merge` guarantee, for a rollup read back from storage:
    /// counts add up, indexes and codes are in range, the extremes are ordered and finite.
    pub fn validate(&self) -> Result<(), String> {
        let bucketed: u64 = self
            .positive
            .values()
            .chain(self.negative.values())
            .sum::<u64>()
            + self.zeros;
        if self.count == 0 {
            return Err("empty rollup".into());
        }
        if bucketed != self.count {
            return Err(format!("buckets hold {bucketed} of {} samples", self.count));
        }
        if self.codes.values().sum::<u64>() > self.count {
            return Err("more status codes than samples".into());
        }
        if self
            .positive
            .keys()
            .chain(self.negative.keys())
            .any(|i| i.abs() > MAX_INDEX)
        {
            return Err("bucket index out of range".into());
        }
        if self.codes.keys().any(|c| !(100..=599).contains(c)) {
            return Err("status code out of range".into());
        }
        if self.summarized > self.count {
            return Err("more summarized values than values".into());
        }
        if !(0.0..=1.0).contains(&self.summary_error) {
            return Err("summary error out of range".into());
        }
        let ordered = self.min.is_finite() && self.max.is_finite() && self.min <= self.max;
        if !(ordered && self.sum.is_finite()) {
            return Err("min, max or sum invalid".into());
        }
        Ok(())
    }

    /// A lower bound of the bytes this rollup takes in memory: 64, and 16 a map entry.
    /// The struct is larger, and its `BTreeMap`s' nodes take more — a whole node (~150
    /// bytes) for a map of one entry, ~25 bytes an entry in a large map — which is why the
    /// in-memory store keeps rollups packed and counts what it holds itself.
    pub fn size_bytes(&self) -> u64 {
        64 + 16 * (self.positive.len() + self.negative.len() + self.codes.len()) as u64
    }

    /// `(value, count)` of every bucket, in ascending value order.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let negative = self
            .negative
            .iter()
            .rev()
            .map(|(&i, &n)| (-bucket_value(i), n));
        let zeros = (self.zeros > 0).then_some((0.0, self.zeros));
        let positive = self.positive.iter().map(|(&i, &n)| (bucket_value(i), n));
        negative.chain(zeros).chain(positive)
    }

    /// The value at quantile `q` (the element of rank `⌊q·(n−1)⌋`), within
    /// [`RELATIVE_ACCURACY`] of the exact one; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (value, n) in self.buckets() {
            seen += n;
            if seen > rank {
                return Some(value.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// The mean, from the exact (scaled) sum.
    pub fn mean(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let mean = self.sum / self.count as f64 / SUM_SCALE;
        Some(mean.clamp(self.min, self.max))
    }

    /// The summary a plot shows: count, min, max and mean exact (mean from the exact
    /// sum), percentiles within [`RELATIVE_ACCURACY`].
    pub fn summary(&self) -> Option<Summary> {
        Some(Summary {
            n: self.count as usize,
            min: self.min,
            max: self.max,
            mean: self.mean()?,
            p50: self.quantile(0.50)?,
            p95: self.quantile(0.95)?,
            p99: self.quantile(0.99)?,
        })
    }

    /// At most `budget` values standing for this rollup's samples, and how many
    /// samples each stands for (≥ 1): see [`Rollup::stand_ins`].
    pub fn representatives(&self, budget: usize) -> (Vec<f64>, f64) {
        let weight = (self.count as f64 / budget.max(1) as f64).max(1.0);
        (self.stand_ins(weight), weight)
    }

    /// About `count / weight` values standing for this rollup's samples, in ascending
    /// order: bucket values repeated in proportion to their counts (cumulative rounding
    /// keeps every rank within one stand-in of the exact one), with the exact min and max
    /// at the ends. A status-code series stands in with its exact codes.
    pub fn stand_ins(&self, weight: f64) -> Vec<f64> {
        let weight = weight.max(1.0);
        let mut out = Vec::with_capacity((self.count as f64 / weight).ceil() as usize + 2);
        let emit = |out: &mut Vec<f64>, items: &mut dyn Iterator<Item = (f64, u64)>| {
            let (mut cumulative, mut emitted) = (0u64, 0u64);
            for (value, n) in items {
                cumulative += n;
                let due = (cumulative as f64 / weight).round() as u64;
                for _ in emitted..due {
                    out.push(value.clamp(self.min, self.max));
                }
                emitted = emitted.max(due);
            }
        };
        if self.count > 0 && self.codes.values().sum::<u64>() == self.count {
            emit(
                &mut out,
                &mut self.codes.iter().map(|(&c, &n)| (f64::from(c), n)),
            );
        } else {
            emit(&mut out, &mut self.buckets());
            if let Some(first) = out.first_mut() {
                *first = self.min;
            }
            if let Some(last) = out.last_mut() {
                *last = self.max;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn bucket(lower: f64, upper: f64, count: u64) -> SummaryBucket {
        SummaryBucket {
            lower,
            upper,
            count,
            open: false,
        }
    }

    #[test]
    fn summaries_count_exactly_and_state_their_error() {
        // An OpenTelemetry-style latency histogram: (0, 5] is empty, 3 in (5, 10],
        // 5 in (10, 25], 2 in (100, 250].
        let buckets = [
            bucket(0.0, 5.0, 0),
            bucket(5.0, 10.0, 3),
            bucket(10.0, 25.0, 5),
            bucket(25.0, 100.0, 0),
            bucket(100.0, 250.0, 2),
        ];
        let r = Rollup::from_buckets(&buckets, Some(400.0), Some(6.0), Some(240.0)).unwrap();
        r.validate().unwrap();
        assert_eq!((r.count, r.summarized), (10, 10));
        assert_eq!((r.min, r.max), (6.0, 240.0));
        assert!((r.mean().unwrap() - 40.0).abs() < 1e-9);
        assert!(r.codes.is_empty());
        // The widest non-empty bucket is (10, 25] and (100, 250]: 15/35.
        let error = 15.0 / 35.0;
        assert!((r.summary_error - (error + 0.01 + error * 0.01)).abs() < 1e-12);
        assert_eq!(r.relative_error(), r.summary_error);
        // The median is in (10, 25] and read within the stated error of both ends.
        let p50 = r.quantile(0.5).unwrap();
        for end in [10.0, 25.0] {
            assert!((p50 - end).abs() <= r.summary_error * end, "{p50} vs {end}");
        }
        // Merging keeps the count of summarized values and the largest error.
        let mut merged = Rollup::of(&[1.0, 2.0]);
        merged.merge(&r);
        assert_eq!((merged.count, merged.summarized), (12, 10));
        assert_eq!(merged.summary_error, r.summary_error);
        assert!(Rollup::from_buckets(&[bucket(1.0, 2.0, 0)], None, None, None).is_none());
        // Extremes outside the buckets are ignored; an open bucket's error is whole.
        let open = SummaryBucket {
            open: true,
            ..bucket(250.0, 250.0, 1)
        };
        let r = Rollup::from_buckets(&[bucket(1.0, 2.0, 1), open], None, Some(0.5), Some(900.0))
            .unwrap();
        assert_eq!((r.min, r.max), (stand_in(1.0, 2.0), 900.0));
        assert_eq!(r.summary_error, 1.0);
    }

    #[test]
    fn ln_gamma_is_the_accuracy_s() {
        assert_eq!(LN_GAMMA, gamma().ln());
    }

    #[test]
    fn status_codes_are_counted_exactly() {
        let r = Rollup::of(&[200.0, 200.0, 503.0, 200.5, 42.0]);
        assert_eq!(r.codes, BTreeMap::from([(200, 2), (503, 1)]));
        assert_eq!(r.count, 5);
    }

    #[test]
    fn representatives_of_codes_keep_the_mix() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| if i % 10 == 0 { 500.0 } else { 200.0 })
            .collect();
        let (stand_ins, weight) = Rollup::of(&values).representatives(1_000);
        assert_eq!(weight, 10.0);
        assert_eq!(stand_ins.len(), 1_000);
        assert_eq!(stand_ins.iter().filter(|&&v| v == 500.0).count(), 100);
    }

    proptest! {
        #[test]
        fn percentiles_are_within_one_percent(
            values in proptest::collection::vec(
                prop_oneof![1e-6f64..1e9, -1e6f64..-1e-3, Just(0.0)], 1..2_000)
        ) {
            let r = Rollup::of(&values);
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
                let exact = exact_quantile(&sorted, q);
                let got = r.quantile(q).unwrap();
                prop_assert!(
                    (got - exact).abs() <= RELATIVE_ACCURACY * exact.abs() * (1.0 + 1e-9),
                    "q{q}: {got} vs exact {exact}"
                );
            }
            let s = r.summary().unwrap();
            prop_assert_eq!((s.n, s.min, s.max), (values.len(), sorted[0], sorted[sorted.len() - 1]));
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            prop_assert!((s.mean - mean).abs() <= 1e-9 * mean.abs().max(1e-6), "{} vs {mean}", s.mean);
        }

        #[test]
        fn a_rollup_of_values_is_each_value_added_in_turn(
            values in proptest::collection::vec(
                prop_oneof![-1e6f64..1e6, 1e-3f64..1e4, Just(0.0), Just(200.0), Just(503.0), -1e-12f64..1e-12],
                0..2_000,
            ),
        ) {
            let mut added = Rollup::default();
            for &v in &values {
                added.add(v);
            }
            let of = Rollup::of(&values);
            prop_assert_eq!(&of, &added);
            prop_assert_eq!(of.sum.to_bits(), added.sum.to_bits());
        }

        #[test]
        fn merging_is_associative_and_commutative(
            a in proptest::collection::vec(-1e6f64..1e6, 0..200),
            b in proptest::collection::vec(-1e6f64..1e6, 0..200),
            c in proptest::collection::vec(prop_oneof![200.0f64..201.0, Just(503.0)], 0..200),
        ) {
            let (ra, rb, rc) = (Rollup::of(&a), Rollup::of(&b), Rollup::of(&c));
            let mut left = ra.clone();
            left.merge(&Rollup::merged([&rb, &rc]));
            let mut right = Rollup::merged([&ra, &rb]);
            right.merge(&rc);
            let swapped = Rollup::merged([&rc, &ra, &rb]);
            let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
            let direct = Rollup::of(&all);
            for other in [&right, &swapped, &direct] {
                // Everything but the float sum is equal exactly; the sum to rounding.
                prop_assert_eq!(
                    (left.count, left.min, left.max, &left.positive, &left.negative, left.zeros, &left.codes),
                    (other.count, other.min, other.max, &other.positive, &other.negative, other.zeros, &other.codes)
                );
                prop_assert!((left.sum - other.sum).abs() <= 1e-9 * left.sum.abs().max(1e-12));
            }
        }

        #[test]
        fn representatives_are_bounded_and_follow_the_ranks(
            values in proptest::collection::vec(1e-3f64..1e6, 1..5_000),
            budget in 1usize..2_000,
        ) {
            let r = Rollup::of(&values);
            let (stand_ins, weight) = r.representatives(budget);
            prop_assert!(stand_ins.len() <= budget + 1);
            prop_assert!(weight >= 1.0);
            prop_assert!((stand_ins.len() as f64 * weight - values.len() as f64).abs() <= weight);
            prop_assert!(stand_ins.windows(2).all(|w| w[0] <= w[1]));
        }

        #[test]
        fn summaries_never_panic_and_count_exactly(
            bounds in proptest::collection::vec(-1e300f64..1e300, 1..20),
            counts in proptest::collection::vec(0u64..1_000_000, 1..20),
            sum in proptest::option::of(proptest::num::f64::ANY),
            min in proptest::option::of(proptest::num::f64::ANY),
            max in proptest::option::of(proptest::num::f64::ANY),
        ) {
            let mut bounds = bounds;
            bounds.sort_by(f64::total_cmp);
            let buckets: Vec<SummaryBucket> = bounds
                .windows(2)
                .zip(&counts)
                .map(|(w, &count)| bucket(w[0], w[1], count))
                .collect();
            let expected: u64 = buckets.iter().map(|b| b.count).sum();
            match Rollup::from_buckets(&buckets, sum, min, max) {
                None => prop_assert_eq!(expected, 0),
                Some(r) => {
                    prop_assert_eq!(r.count, expected);
                    prop_assert_eq!(r.summarized, expected);
                    prop_assert!(r.validate().is_ok(), "{:?}", r.validate());
                    prop_assert!(r.quantile(0.99).unwrap().is_finite());
                }
            }
        }

        #[test]
        fn extremes_never_panic(values in proptest::collection::vec(
            prop_oneof![Just(f64::MAX), Just(-f64::MAX), Just(f64::MIN_POSITIVE), Just(5e-324), any::<f64>().prop_filter("finite", |v| v.is_finite())],
            1..50,
        )) {
            let r = Rollup::of(&values);
            let s = r.summary().unwrap();
            prop_assert!(s.mean.is_finite() && s.p99.is_finite());
            let (stand_ins, _) = r.representatives(10);
            prop_assert!(stand_ins.iter().all(|v| v.is_finite()));
        }
    }
}
