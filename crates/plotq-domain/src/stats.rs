//! Exact statistics and binning over latency samples.
//!
//! Percentiles use linear interpolation between closest ranks (numpy's default, so
//! plotq's p95 equals the prototype's `np.percentile(values, 95)`), found by selection
//! (`select_nth_unstable`, O(n) expected) rather than a full sort.

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

/// Computes the summary; `None` when there are no values. Reorders `values`.
/// Values must be finite (ingest guarantees it).
pub fn summarize(values: &mut [f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &v in values.iter() {
        min = min.min(v);
        max = max.max(v);
        sum += v;
    }
    let [p50, p95, p99] = percentiles(values, [0.50, 0.95, 0.99]);
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

/// Exact percentiles (`qs` in `[0, 1]`, ascending) with linear interpolation.
/// Reorders `values`; panics on an empty slice.
pub fn percentiles<const K: usize>(values: &mut [f64], qs: [f64; K]) -> [f64; K] {
    assert!(!values.is_empty(), "percentiles of nothing");
    let n = values.len();
    let mut out = [0.0; K];
    // `start` marks the prefix already partitioned below every later rank.
    let mut start = 0usize;
    let mut cached: Option<(usize, f64)> = None;
    let mut order_stat = |k: usize, values: &mut [f64], start: &mut usize| -> f64 {
        if let Some((ck, cv)) = cached
            && ck == k
        {
            return cv;
        }
        let v = if k < *start {
            // Only reachable when qs are not ascending; fall back to a fresh selection.
            *values.select_nth_unstable_by(k, f64::total_cmp).1
        } else {
            let (_, kth, _) = values[*start..].select_nth_unstable_by(k - *start, f64::total_cmp);
            let v = *kth;
            *start = k;
            v
        };
        cached = Some((k, v));
        v
    };
    for (i, &q) in qs.iter().enumerate() {
        let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let lo = rank.floor() as usize;
        let frac = rank - lo as f64;
        let lo_v = order_stat(lo, values, &mut start);
        out[i] = if frac > 0.0 && lo + 1 < n {
            // The next order statistic is the minimum of everything right of `lo`.
            let hi_v = values[lo + 1..]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            lo_v + (hi_v - lo_v) * frac
        } else {
            lo_v
        };
    }
    out
}

/// Equal-width bins over `[lo, hi]` like numpy's `histogram` (last edge inclusive).
/// When `lo == hi` the range is widened to `[lo - 0.5, hi + 0.5]`, as numpy does.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

impl Bins {
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len() as f64
    }

    pub fn max_count(&self) -> u64 {
        self.counts.iter().copied().max().unwrap_or(0)
    }
}

/// Counts `values` into `n_bins` equal-width bins spanning `[min, max]`. O(n).
pub fn bin(values: &[f64], n_bins: usize, min: f64, max: f64) -> Bins {
    let n_bins = n_bins.max(1);
    let (lo, hi) = if min < max {
        (min, max)
    } else {
        (min - 0.5, max + 0.5)
    };
    let mut counts = vec![0u64; n_bins];
    let scale = n_bins as f64 / (hi - lo);
    let last = n_bins - 1;
    for &v in values {
        if v < lo || v > hi {
            continue;
        }
        let idx = ((v - lo) * scale) as usize;
        counts[idx.min(last)] += 1;
    }
    Bins { lo, hi, counts }
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
            let mut values: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let s = summarize(&mut values).unwrap();
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
    fn known_values() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        let s = summarize(&mut v).unwrap();
        assert_eq!(s.mean, 50.5);
        assert!((s.p95 - 95.05).abs() < 1e-12);
        assert!((s.p99 - 99.01).abs() < 1e-12);
        assert!(summarize(&mut []).is_none());
    }

    #[test]
    fn binning_like_numpy() {
        let b = bin(&[0.0, 1.0, 2.0, 3.0, 4.0], 4, 0.0, 4.0);
        assert_eq!(b.counts, vec![1, 1, 1, 2]);
        assert_eq!(b.width(), 1.0);
        let flat = bin(&[5.0, 5.0, 5.0], 10, 5.0, 5.0);
        assert_eq!(flat.counts.iter().sum::<u64>(), 3);
        assert_eq!((flat.lo, flat.hi), (4.5, 5.5));
    }
}
