//! Exact statistics and binning over latency samples.
//!
//! Percentiles use linear interpolation between closest ranks (numpy's default, so
//! plotq's p95 equals the prototype's `np.percentile(values, 95)`), found by selection
//! over fine bins (three linear passes) rather than a full sort.
//!
//! Every finite `f64` is valid input, from `-f64::MAX` to `f64::MAX` through subnormals:
//! spans like `max - min` that overflow are never formed (values are mapped onto bins
//! through [`Affine`], which halves or scales by a power of two first), means and
//! interpolations fall back to overflow-free forms, and every statistic whose true value
//! is finite comes out finite. Allocation depends only on the number of values and the
//! number of bins asked for (at most [`MAX_BINS`]), never on their magnitudes.

/// Summary statistics of one set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Summary {
    /// The summary of `values`, given their `extent` and their p50, p95 and p99.
    fn of(values: &[f64], (min, max, sum): (f64, f64, f64), [p50, p95, p99]: [f64; 3]) -> Self {
        Summary {
            n: values.len(),
            min,
            max,
            mean: mean(values, min, max, sum),
            p50,
            p95,
            p99,
        }
    }
}

/// Minimum, maximum and sum in one pass (four independent lanes, so the loop
/// vectorises; the sum is therefore pairwise-ish, like numpy's, not strictly sequential).
pub fn extent(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut min = [f64::INFINITY; 4];
    let mut max = [f64::NEG_INFINITY; 4];
    let mut sum = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..4 {
            min[k] = if c[k] < min[k] { c[k] } else { min[k] };
            max[k] = if c[k] > max[k] { c[k] } else { max[k] };
            sum[k] += c[k];
        }
    }
    for &v in rest {
        min[0] = min[0].min(v);
        max[0] = max[0].max(v);
        sum[0] += v;
    }
    let min = min.iter().copied().fold(f64::INFINITY, f64::min);
    let max = max.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((min, max, (sum[0] + sum[1]) + (sum[2] + sum[3])))
}

/// The mean of `values`, given their `min`, `max` and `sum` (as [`extent`] returns
/// them): `sum / n` when the sum is finite, else (the sum overflowed, e.g. two values of
/// 1e308) the sum of the values scaled by 2^-64, divided, and scaled back. Always within
/// `[min, max]`, so finite for finite values.
pub fn mean(values: &[f64], min: f64, max: f64, sum: f64) -> f64 {
    let n = values.len() as f64;
    let mean = if sum.is_finite() {
        sum / n
    } else {
        // n < 2^64, so the scaled sum cannot overflow; the scaling is exact for every
        // value that matters next to an overflowing sum.
        const DOWN: f64 = 1.0 / 18_446_744_073_709_551_616.0; // 2^-64
        const UP: f64 = 18_446_744_073_709_551_616.0; // 2^64
        let scaled: f64 = values.iter().map(|v| v * DOWN).sum();
        scaled / n * UP
    };
    // max/min rather than clamp: never a panic, whatever the caller passes.
    mean.max(min).min(max)
}

/// Computes the summary; `None` when there are no values. Values must be finite
/// (ingest guarantees it).
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let (min, max, sum) = extent(values)?;
    let quantiles = percentiles(values, min, max, [0.50, 0.95, 0.99]);
    Some(Summary::of(values, (min, max, sum), quantiles))
}

/// Exact percentiles (`qs` in `[0, 1]`) with linear interpolation between closest ranks,
/// given the values' `min` and `max`. Panics on an empty slice.
///
/// Three linear passes instead of a sort: count values into fine equal-width bins, find
/// the bin holding each needed rank, then select within just those bins' values.
pub fn percentiles<const K: usize>(values: &[f64], min: f64, max: f64, qs: [f64; K]) -> [f64; K] {
    assert!(!values.is_empty(), "percentiles of nothing");
    if min >= max {
        return [min; K];
    }
    let fine = FineBins::count(values, min, max, fine_bins_for(values.len()));
    fine.percentiles(values, qs)
}

/// How many fine bins percentile search uses for `n` values.
fn fine_bins_for(n: usize) -> usize {
    (n / 8).clamp(64, 1 << 16)
}

/// Most bins any binning function allocates, whatever it is asked for.
pub const MAX_BINS: usize = 1 << 16;

/// A monotone map of `[lo, hi]` (finite, `lo < hi`) onto `[0, n]` that cannot overflow:
/// `(v·pre − lo·pre) · (n / (hi·pre − lo·pre))`.
///
/// `pre` is ½ (so `v − lo` stays finite for any finite pair); 2^-64 when an end exceeds
/// 2^1000 (so `n / span` stays a normal number and keeps its precision); 2^900 when both
/// ends are below 2^-800 (so a subnormal span becomes a normal one). All are exact powers
/// of two, so for ordinary data the result is bit for bit `(v − lo) · (n / (hi − lo))`.
#[derive(Debug, Clone, Copy)]
pub struct Affine {
    pre: f64,
    offset: f64,
    scale: f64,
}

impl Affine {
    pub fn new(lo: f64, hi: f64, n: usize) -> Self {
        /// Powers of two, built from their bits.
        const fn pow2(e: i64) -> f64 {
            f64::from_bits(((1023 + e) as u64) << 52)
        }
        let magnitude = lo.abs().max(hi.abs());
        let pre = if magnitude < pow2(-800) {
            pow2(900)
        } else if magnitude > pow2(1000) {
            pow2(-64)
        } else {
            0.5
        };
        let offset = lo * pre;
        let scale = n as f64 / (hi * pre - offset);
        Self {
            pre,
            offset,
            scale: if scale.is_finite() { scale } else { 0.0 },
        }
    }

    /// Where `v` falls, in bins (not clamped; `NaN`-free for finite `v`).
    #[inline]
    pub fn at(&self, v: f64) -> f64 {
        (v * self.pre - self.offset) * self.scale
    }
}

/// Counts of values in fine equal-width bins over `[min, max]` (`min < max`).
struct FineBins {
    map: Affine,
    counts: Vec<u32>,
}

impl FineBins {
    fn count(values: &[f64], min: f64, max: f64, n_bins: usize) -> Self {
        let mut fine = Self {
            map: Affine::new(min, max, n_bins),
            counts: vec![0u32; n_bins],
        };
        for &v in values {
            let b = fine.bin_of(v);
            fine.counts[b] += 1;
        }
        fine
    }

    /// Monotone in `v` (every step is), which is all the selection below needs to stay
    /// exact: every value of bin `b` is ≤ every value of bin `b + 1`.
    #[inline]
    fn bin_of(&self, v: f64) -> usize {
        (self.map.at(v) as usize).min(self.counts.len() - 1)
    }

    fn percentiles<const K: usize>(&self, values: &[f64], qs: [f64; K]) -> [f64; K] {
        let n = values.len();
        // Every order statistic we need, located as (rank, bin, rank within the bin).
        let mut ranks: Vec<usize> = Vec::with_capacity(2 * K);
        for q in qs {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            ranks.push(lo);
            if lo + 1 < n {
                ranks.push(lo + 1);
            }
        }
        ranks.sort_unstable();
        ranks.dedup();
        let mut located = Vec::with_capacity(ranks.len());
        let (mut bin, mut before) = (0usize, 0usize);
        for &rank in &ranks {
            while before + self.counts[bin] as usize <= rank {
                before += self.counts[bin] as usize;
                bin += 1;
            }
            located.push((rank, bin, rank - before));
        }
        // Gather the values of the bins that hold a needed rank.
        let mut slot_of_bin = vec![u16::MAX; self.counts.len()];
        let mut slots: Vec<Vec<f64>> = Vec::new();
        for &(_, b, _) in &located {
            if slot_of_bin[b] == u16::MAX {
                slot_of_bin[b] = slots.len() as u16;
                slots.push(Vec::with_capacity(self.counts[b] as usize));
            }
        }
        for &v in values {
            let s = slot_of_bin[self.bin_of(v)];
            if s != u16::MAX {
                slots[s as usize].push(v);
            }
        }
        let rank_values: Vec<(usize, f64)> = located
            .iter()
            .map(|&(rank, b, offset)| {
                let slot = &mut slots[slot_of_bin[b] as usize];
                (rank, *slot.select_nth_unstable_by(offset, f64::total_cmp).1)
            })
            .collect();
        let order_stat = |rank: usize| -> f64 {
            rank_values
                .iter()
                .find(|(r, _)| *r == rank)
                .map(|(_, v)| *v)
                .expect("every needed rank was located")
        };
        let mut out = [0.0; K];
        for (i, q) in qs.iter().enumerate() {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let frac = rank - lo as f64;
            let lo_v = order_stat(lo);
            out[i] = if frac > 0.0 && lo + 1 < n {
                interpolate(lo_v, order_stat(lo + 1), frac)
            } else {
                lo_v
            };
        }
        out
    }
}

/// numpy's `lo + (hi - lo) * frac`, or, when `hi - lo` overflows (e.g. -1e308 to
/// 1e308), the overflow-free `lo * (1 - frac) + hi * frac`; always within `[lo, hi]`.
fn interpolate(lo: f64, hi: f64, frac: f64) -> f64 {
    let span = hi - lo;
    let v = if span.is_finite() {
        lo + span * frac
    } else {
        lo * (1.0 - frac) + hi * frac
    };
    v.clamp(lo, hi)
}

/// The latency histogram's numbers in one go: the summary (exact mean/p50/p95/p99) and
/// `n_bins` equal-width bins over `[min, max]`, sharing one counting pass (the display
/// bins are groups of the fine bins the percentile search counts anyway).
pub fn summarize_binned(values: &[f64], n_bins: usize) -> Option<(Summary, Bins)> {
    let (min, max, sum) = extent(values)?;
    if min >= max {
        let summary = Summary::of(values, (min, max, sum), [min; 3]);
        return Some((summary, bin(values, n_bins, min, max)));
    }
    let n_bins = resolvable_bins(n_bins, min, max, false);
    // n_bins · per_bin < n_bins + 2^16: bounded whatever the data.
    let per_bin = fine_bins_for(values.len()).div_ceil(n_bins).max(1);
    let fine = FineBins::count(values, min, max, n_bins * per_bin);
    let quantiles = fine.percentiles(values, [0.50, 0.95, 0.99]);
    let counts = fine
        .counts
        .chunks_exact(per_bin)
        .map(|c| c.iter().map(|&x| x as u64).sum())
        .collect();
    let summary = Summary::of(values, (min, max, sum), quantiles);
    Some((
        summary,
        Bins {
            lo: min,
            hi: max,
            log: false,
            counts,
        },
    ))
}

/// Histogram bins over `[lo, hi]`: equal-width (like numpy's `histogram`, last edge
/// inclusive) or, on a log axis, equal-ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub counts: Vec<u64>,
}

impl Bins {
    /// Left edge of bin `i` (`i == len` gives the right edge of the last bin); always
    /// finite and within `[lo, hi]`, even when `hi - lo` or `hi / lo` overflows.
    pub fn edge(&self, i: usize) -> f64 {
        let t = i as f64 / self.counts.len() as f64;
        if i == 0 || i >= self.counts.len() {
            return if i == 0 { self.lo } else { self.hi };
        }
        let edge = if self.log {
            let ratio = self.hi / self.lo;
            if ratio.is_finite() {
                self.lo * ratio.powf(t)
            } else {
                (self.lo.ln() + (self.hi.ln() - self.lo.ln()) * t).exp()
            }
        } else {
            let span = self.hi - self.lo;
            if span.is_finite() {
                self.lo + span * t
            } else {
                self.lo * (1.0 - t) + self.hi * t
            }
        };
        // max/min rather than clamp: never a panic, even for hand-built bins.
        edge.max(self.lo).min(self.hi)
    }

    pub fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }
}

/// The gap between `|v|` and the next float towards zero (the smallest subnormal at 0).
fn ulp(v: f64) -> f64 {
    let a = v.abs();
    if a == 0.0 {
        f64::from_bits(1)
    } else {
        a - f64::from_bits(a.to_bits() - 1)
    }
}

/// `n_bins` clamped to `1..=MAX_BINS` and to the number of float steps `[lo, hi]`
/// holds, so that no bin is narrower than the floats themselves: bins of the 1-ulp range
/// `[0, 5e-324]` would all have the same edges. Never bites on ordinary data.
pub fn resolvable_bins(n_bins: usize, lo: f64, hi: f64, log: bool) -> usize {
    let n_bins = n_bins.clamp(1, MAX_BINS);
    let steps = if log {
        (hi.ln() - lo.ln()) / (ulp(lo) / lo).ln_1p()
    } else {
        // An overflowing span (infinite steps) has room for any count.
        (hi - lo) / ulp(lo).max(ulp(hi))
    };
    if steps >= n_bins as f64 {
        n_bins
    } else {
        (steps as usize).clamp(1, n_bins)
    }
}

/// A range around the single value `v` for a linear axis: `[v - 0.5, v + 0.5]` as
/// numpy does, or, where ±0.5 is lost to rounding or labels would need more than six
/// digits (|v| ≥ 1e6), ±5 % of `v`; clamped to the finite range. Always `lo < hi`.
pub fn widen(v: f64) -> (f64, f64) {
    let d = if v.abs() < 1e6 { 0.5 } else { v.abs() * 0.05 };
    let (lo, hi) = ((v - d).max(-f64::MAX), (v + d).min(f64::MAX));
    debug_assert!(lo < hi, "{v}");
    (lo, hi)
}

/// A range around the single positive value `v` for a log axis: a factor of 1.5 each
/// way, clamped to the positive finite range. Always `0 < lo < hi`.
pub fn widen_log(v: f64) -> (f64, f64) {
    let lo = (v / 1.5).max(f64::from_bits(1));
    let hi = (v * 1.5).min(f64::MAX);
    // Only the smallest subnormals (where v / 1.5 rounds back to v) need the nudge.
    let hi = if hi > lo {
        hi
    } else {
        f64::from_bits(lo.to_bits() + 2)
    };
    (lo, hi)
}

/// Counts `values` into `n_bins` (at most [`MAX_BINS`], fewer over a range only a few
/// floats wide: [`resolvable_bins`]) equal-width bins spanning
/// `[min, max]`. O(n). When `min == max` the range is [`widen`]ed (`[min - 0.5, max +
/// 0.5]` as numpy does, for ordinary values).
pub fn bin(values: &[f64], n_bins: usize, min: f64, max: f64) -> Bins {
    let (lo, hi) = if min < max { (min, max) } else { widen(min) };
    count_into(values, n_bins, lo, hi, false)
}

/// Counts positive `values` into `n_bins` (at most [`MAX_BINS`], see
/// [`resolvable_bins`]) equal-ratio bins
/// spanning `[min, max]` (`min > 0`); values outside are ignored. When `min == max` the
/// range is widened by a factor of 1.5 each way ([`widen_log`]).
pub fn bin_log(values: &[f64], n_bins: usize, min: f64, max: f64) -> Bins {
    let (lo, hi) = if min < max {
        (min, max)
    } else {
        widen_log(min)
    };
    count_into(values, n_bins, lo, hi, true)
}

fn count_into(values: &[f64], n_bins: usize, lo: f64, hi: f64, log: bool) -> Bins {
    let n_bins = resolvable_bins(n_bins, lo, hi, log);
    let mut counts = vec![0u64; n_bins];
    let last = n_bins - 1;
    if log {
        // ln of a positive finite value is finite (-744.4 to 709.8): no overflow here.
        let (llo, scale) = (lo.ln(), n_bins as f64 / (hi.ln() - lo.ln()));
        let scale = if scale.is_finite() { scale } else { 0.0 };
        for &v in values {
            if v >= lo && v <= hi {
                counts[(((v.ln() - llo) * scale) as usize).min(last)] += 1;
            }
        }
    } else {
        let map = Affine::new(lo, hi, n_bins);
        for &v in values {
            if v >= lo && v <= hi {
                counts[(map.at(v) as usize).min(last)] += 1;
            }
        }
    }
    Bins {
        lo,
        hi,
        log,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};

    fn numpy_percentile(sorted: &[f64], q: f64) -> f64 {
        let rank = q * (sorted.len() - 1) as f64;
        let lo = rank.floor() as usize;
        let hi = (lo + 1).min(sorted.len() - 1);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
    }

    #[test]
    fn matches_sort_based_percentiles() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dist = LogNormal::new(3.0, 0.5).unwrap();
        for n in [1usize, 2, 3, 10, 101, 1000, 12_345] {
            let values: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let s = summarize(&values).unwrap();
            assert_eq!(s.n, n);
            assert_eq!(s.min, sorted[0]);
            assert_eq!(s.max, sorted[n - 1]);
            for (got, q) in [(s.p50, 0.5), (s.p95, 0.95), (s.p99, 0.99)] {
                let want = numpy_percentile(&sorted, q);
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs(),
                    "n={n} q={q}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn binned_summary_matches_separate_passes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let dist = LogNormal::new(3.0, 0.5).unwrap();
        let values: Vec<f64> = (0..100_000).map(|_| dist.sample(&mut rng)).collect();
        let (s, b) = summarize_binned(&values, 50).unwrap();
        assert_eq!(s, summarize(&values).unwrap());
        let separate = bin(&values, 50, s.min, s.max);
        let total: u64 = b.counts.iter().sum();
        assert_eq!(total, 100_000);
        // Equal except where a value sits within rounding of a bin edge.
        let moved: u64 = b
            .counts
            .iter()
            .zip(&separate.counts)
            .map(|(a, c)| a.abs_diff(*c))
            .sum();
        assert!(moved <= 2, "{moved} values binned differently");
    }

    #[test]
    fn known_values() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        let s = summarize(&v).unwrap();
        assert_eq!(s.mean, 50.5);
        assert!((s.p95 - 95.05).abs() < 1e-12);
        assert!((s.p99 - 99.01).abs() < 1e-12);
        assert!(summarize(&[]).is_none());
        let flat = summarize(&[3.0; 10]).unwrap();
        assert_eq!((flat.p50, flat.p99), (3.0, 3.0));
        // One huge outlier puts nearly everything in the first fine bin; still exact.
        let mut skewed: Vec<f64> = (0..10_000).map(f64::from).collect();
        skewed.push(1e12);
        let s = summarize(&skewed).unwrap();
        assert!((s.p50 - 5000.0).abs() < 1e-9, "{}", s.p50);
    }

    #[test]
    fn binning_like_numpy() {
        let b = bin(&[0.0, 1.0, 2.0, 3.0, 4.0], 4, 0.0, 4.0);
        assert_eq!(b.counts, vec![1, 1, 1, 2]);
        assert_eq!((b.edge(0), b.edge(4)), (0.0, 4.0));
        let lb = bin_log(&[1.0, 10.0, 100.0, 1000.0], 3, 1.0, 1000.0);
        assert_eq!(lb.counts, vec![1, 1, 2]);
        assert!((lb.edge(1) - 10.0).abs() < 1e-9);
        let flat = bin(&[5.0, 5.0, 5.0], 10, 5.0, 5.0);
        assert_eq!(flat.counts.iter().sum::<u64>(), 3);
        assert_eq!((flat.lo, flat.hi), (4.5, 5.5));
    }

    #[test]
    fn huge_values_keep_finite_exact_statistics() {
        let s = summarize(&[1e308, 1e308]).unwrap();
        assert_eq!((s.mean, s.p50, s.p99), (1e308, 1e308, 1e308));
        let s = summarize(&[f64::MAX, f64::MAX, f64::MAX]).unwrap();
        assert_eq!(s.mean, f64::MAX);
        // max - min overflows: binning and interpolation must not.
        let v = [-1e308, 1e308];
        let s = summarize(&v).unwrap();
        assert_eq!((s.min, s.max, s.mean), (-1e308, 1e308, 0.0));
        assert_eq!(s.p50, 0.0);
        assert!((s.p95 - 0.9e308).abs() <= 1e293, "{}", s.p95);
        let (bs, b) = summarize_binned(&v, 4).unwrap();
        assert_eq!(bs, s);
        assert_eq!(b.counts, vec![1, 0, 0, 1]);
        assert_eq!((b.edge(0), b.edge(2), b.edge(4)), (-1e308, 0.0, 1e308));
        // 0 is the edge between the two bins, so it counts in the second.
        let b = bin(&[-f64::MAX, 0.0, f64::MAX], 2, -f64::MAX, f64::MAX);
        assert_eq!(b.counts, vec![1, 2]);
        // Exact percentiles among extremes, against a sort.
        let mut mixed = vec![-f64::MAX, f64::MAX, 5e-324, -0.0, 0.0, 1e-310, 42.0, 1e308];
        mixed.extend((0..100).map(f64::from));
        let s = summarize(&mixed).unwrap();
        let mut sorted = mixed.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(s.p50, numpy_percentile(&sorted, 0.5));
        assert!(s.mean.is_finite());
        assert!(s.p99.is_finite() && s.p95.is_finite());
    }

    #[test]
    fn subnormal_values_bin_and_rank() {
        let v = [5e-324, 1e-310, 2.5e-310, 0.0];
        let s = summarize(&v).unwrap();
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        for (got, q) in [(s.p50, 0.5), (s.p95, 0.95), (s.p99, 0.99)] {
            let want = numpy_percentile(&sorted, q);
            assert!((got - want).abs() <= 1e-320, "q={q}: {got} vs {want}");
        }
        let b = bin(&v, 5, 0.0, 2.5e-310);
        assert_eq!(b.counts, vec![2, 1, 0, 0, 1]);
        // One float step wide: one bin, whatever was asked.
        let (_, b) = summarize_binned(&[0.0, 5e-324], 2).unwrap();
        assert_eq!(b.counts, vec![2]);
        let b = bin_log(&[5e-324, 1e308], 10, 5e-324, 1e308);
        assert_eq!(b.counts.iter().sum::<u64>(), 2);
        assert!((0..=10).all(|i| b.edge(i).is_finite() && b.edge(i) > 0.0));
        assert_eq!((b.edge(0), b.edge(10)), (5e-324, 1e308));
    }

    #[test]
    fn identical_values_widen_to_a_real_range() {
        assert_eq!(widen(5.0), (4.5, 5.5));
        for v in [0.0, -0.0, 5e-324, 1e15, -1e300, f64::MAX, -f64::MAX] {
            let (lo, hi) = widen(v);
            assert!(
                lo < hi && lo <= v && v <= hi && lo.is_finite() && hi.is_finite(),
                "{v}"
            );
            let b = bin(&[v, v], 3, v, v);
            assert_eq!(b.counts.iter().sum::<u64>(), 2, "{v}");
        }
        for v in [5e-324, 1e-310, 1.0, f64::MAX] {
            let (lo, hi) = widen_log(v);
            assert!(
                0.0 < lo && lo <= v && v <= hi && lo < hi && hi.is_finite(),
                "{v}"
            );
            assert_eq!(bin_log(&[v], 3, v, v).counts.iter().sum::<u64>(), 1, "{v}");
        }
        assert_eq!(bin(&[1.0], usize::MAX, 1.0, 1.0).counts.len(), MAX_BINS);
        let (_, b) = summarize_binned(&[1e300; 5], 50).unwrap();
        assert_eq!(b.counts.len(), 50);
        assert_eq!(
            b.counts[24] + b.counts[25],
            5,
            "the middle bin: {:?}",
            b.counts
        );
    }

    #[test]
    fn bins_are_never_narrower_than_the_floats() {
        let (_, b) = summarize_binned(&[0.0, 5e-324], 50).unwrap();
        assert_eq!(b.counts, vec![2]);
        let b = bin(&[5e-324, 2.5e-323], 50, 5e-324, 2.5e-323);
        assert_eq!(b.counts.len(), 4);
        let edges: Vec<f64> = (0..=4).map(|i| b.edge(i)).collect();
        assert!(edges.windows(2).all(|w| w[0] < w[1]), "{edges:?}");
        let b = bin_log(&[5e-324, 1e-323], 60, 5e-324, 1e-323);
        assert_eq!(b.counts, vec![2]);
        // Ordinary ranges keep every bin asked for.
        assert_eq!(resolvable_bins(1000, 1.0, 1.0 + 1e-9, false), 1000);
        assert_eq!(resolvable_bins(1000, 1e-300, 1e300, true), 1000);
        assert_eq!(resolvable_bins(50, -f64::MAX, f64::MAX, false), 50);
    }
}
