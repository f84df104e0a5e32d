//! Exact statistics and binning over latency samples.
//!
//! Percentiles use linear interpolation between closest ranks (numpy's default, so
//! plotq's p95 equals the prototype's `np.percentile(values, 95)`), found by selection
//! over fine bins (three linear passes) rather than a full sort.

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

/// Computes the summary; `None` when there are no values. Values must be finite
/// (ingest guarantees it).
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let (min, max, sum) = extent(values)?;
    let [p50, p95, p99] = percentiles(values, min, max, [0.50, 0.95, 0.99]);
    Some(Summary {
        n: values.len(),
        min,
        max,
        mean: sum / values.len() as f64,
        p50,
        p95,
        p99,
    })
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

/// Counts of values in fine equal-width bins over `[min, max]` (`min < max`).
struct FineBins {
    min: f64,
    scale: f64,
    counts: Vec<u32>,
}

impl FineBins {
    fn count(values: &[f64], min: f64, max: f64, n_bins: usize) -> Self {
        let mut fine = Self {
            min,
            scale: n_bins as f64 / (max - min),
            counts: vec![0u32; n_bins],
        };
        for &v in values {
            let b = fine.bin_of(v);
            fine.counts[b] += 1;
        }
        fine
    }

    #[inline]
    fn bin_of(&self, v: f64) -> usize {
        (((v - self.min) * self.scale) as usize).min(self.counts.len() - 1)
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
                lo_v + (order_stat(lo + 1) - lo_v) * frac
            } else {
                lo_v
            };
        }
        out
    }
}

/// The seed-000 histogram's numbers in one go: the summary (exact mean/p50/p95/p99) and
/// `n_bins` equal-width bins over `[min, max]`, sharing one counting pass (the display
/// bins are groups of the fine bins the percentile search counts anyway).
pub fn summarize_binned(values: &[f64], n_bins: usize) -> Option<(Summary, Bins)> {
    let (min, max, sum) = extent(values)?;
    let n_bins = n_bins.max(1);
    if min >= max {
        let summary = Summary {
            n: values.len(),
            min,
            max,
            mean: min,
            p50: min,
            p95: min,
            p99: min,
        };
        return Some((summary, bin(values, n_bins, min, max)));
    }
    let per_bin = fine_bins_for(values.len()).div_ceil(n_bins).max(1);
    let fine = FineBins::count(values, min, max, n_bins * per_bin);
    let [p50, p95, p99] = fine.percentiles(values, [0.50, 0.95, 0.99]);
    let counts = fine
        .counts
        .chunks_exact(per_bin)
        .map(|c| c.iter().map(|&x| x as u64).sum())
        .collect();
    let summary = Summary {
        n: values.len(),
        min,
        max,
        mean: sum / values.len() as f64,
        p50,
        p95,
        p99,
    };
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
    /// Left edge of bin `i` (`i == len` gives the right edge of the last bin).
    pub fn edge(&self, i: usize) -> f64 {
        let t = i as f64 / self.counts.len() as f64;
        if self.log {
            self.lo * (self.hi / self.lo).powf(t)
        } else {
            self.lo + (self.hi - self.lo) * t
        }
    }

    pub fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }
}

/// Counts `values` into `n_bins` equal-width bins spanning `[min, max]`. O(n).
/// When `min == max` the range is widened to `[min - 0.5, max + 0.5]`, as numpy does.
pub fn bin(values: &[f64], n_bins: usize, min: f64, max: f64) -> Bins {
    let (lo, hi) = if min < max {
        (min, max)
    } else {
        (min - 0.5, max + 0.5)
    };
    count_into(values, n_bins, lo, hi, false)
}

/// Counts positive `values` into `n_bins` equal-ratio bins spanning `[min, max]`
/// (`min > 0`); values outside are ignored. When `min == max` the range is widened by
/// a factor of 1.5 each way.
pub fn bin_log(values: &[f64], n_bins: usize, min: f64, max: f64) -> Bins {
    let (lo, hi) = if min < max {
        (min, max)
    } else {
        (min / 1.5, max * 1.5)
    };
    count_into(values, n_bins, lo, hi, true)
}

fn count_into(values: &[f64], n_bins: usize, lo: f64, hi: f64, log: bool) -> Bins {
    let n_bins = n_bins.max(1);
    let mut counts = vec![0u64; n_bins];
    let last = n_bins - 1;
    if log {
        let (llo, scale) = (lo.ln(), n_bins as f64 / (hi.ln() - lo.ln()));
        for &v in values {
            if v >= lo && v <= hi {
                counts[(((v.ln() - llo) * scale) as usize).min(last)] += 1;
            }
        }
    } else {
        let scale = n_bins as f64 / (hi - lo);
        for &v in values {
            if v >= lo && v <= hi {
                counts[(((v - lo) * scale) as usize).min(last)] += 1;
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
}
