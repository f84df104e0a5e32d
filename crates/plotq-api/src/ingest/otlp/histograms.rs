//! OTLP histogram points into rollups. A Histogram point (explicit bounds) or an
//! ExponentialHistogram point holds counts per bucket, not values: plotq merges it into
//! its series' minute rollup (`Rollup::from_buckets`), each bucket's count at a value
//! standing for it, so every plot kind and `GET /api/v1/stats` count it exactly (count,
//! sum and so mean, min and max when the point has them) and read its percentiles
//! within the stated error — the widest non-empty bucket's relative width, which a plot
//! of it shows ("percentiles ±N%"): an exponential histogram at scale 3 is within
//! ~4.3 %, the SDKs' default latency bounds (0, 5, 10, 25, …) within ~43 %.
//!
//! Checked on decode, each failure refusing the point with the reason: explicit bounds
//! finite and strictly increasing, one more bucket count than bounds (or none, with a
//! sum: the count is then at the mean, its error the whole value), the
//! bucket counts adding up to the count; exponential scales within −10..=20, at most
//! [`MAX_BUCKETS`] buckets a side, every bucket's bounds finite.

use crate::streams::{Buckets, Cumulative, Exponential};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets as ExpBuckets;
use opentelemetry_proto::tonic::metrics::v1::{ExponentialHistogramDataPoint, HistogramDataPoint};
use plotq_domain::rollup::{Rollup, SummaryBucket};
use std::collections::BTreeMap;

/// Most buckets a histogram point may have (a side, for exponential ones).
pub(crate) const MAX_BUCKETS: usize = 16_384;

/// An explicit-bounds point's counts (checked).
pub(crate) fn explicit(point: &HistogramDataPoint) -> Result<Cumulative, &'static str> {
    let bounds = &point.explicit_bounds;
    if bounds.len() >= MAX_BUCKETS {
        return Err("histogram points with more than 16,384 buckets");
    }
    if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("histogram points whose bounds are not finite and increasing");
    }
    let counts = &point.bucket_counts;
    if counts.is_empty() && point.count > 0 && !point.sum.is_some_and(f64::is_finite) {
        return Err("histogram points with neither bucket counts nor a sum");
    }
    if !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Err("histogram points without one more bucket count than bounds");
    }
    if !counts.is_empty()
        && counts.iter().try_fold(0u64, |a, n| a.checked_add(*n)) != Some(point.count)
    {
        return Err("histogram points whose bucket counts do not add up to their count");
    }
    Ok(Cumulative::Buckets(Buckets {
        key: bounds.iter().map(|b| b.to_bits()).collect(),
        counts: counts.clone(),
        count: point.count,
        sum: point.sum.filter(|s| s.is_finite()),
    }))
}

/// An exponential point's counts (checked).
pub(crate) fn exponential(
    point: &ExponentialHistogramDataPoint,
) -> Result<Cumulative, &'static str> {
    if !(-10..=20).contains(&point.scale) {
        return Err("exponential histogram points with a scale outside -10..=20");
    }
    let side = |buckets: Option<&ExpBuckets>| -> Result<BTreeMap<i32, u64>, &'static str> {
        let Some(b) = buckets else {
            return Ok(BTreeMap::new());
        };
        if b.bucket_counts.len() > MAX_BUCKETS {
            return Err("exponential histogram points with more than 16,384 buckets a side");
        }
        let mut out = BTreeMap::new();
        for (k, &n) in b.bucket_counts.iter().enumerate() {
            if n > 0 {
                let index = b
                    .offset
                    .checked_add(k as i32)
                    .ok_or("exponential histogram points with bucket indexes out of range")?;
                bounds_of(point.scale, index)?;
                out.insert(index, n);
            }
        }
        Ok(out)
    };
    let positive = side(point.positive.as_ref())?;
    let negative = side(point.negative.as_ref())?;
    let total = positive
        .values()
        .chain(negative.values())
        .try_fold(point.zero_count, |a, n| a.checked_add(*n));
    if total != Some(point.count) {
        return Err(
            "exponential histogram points whose bucket counts do not add up to their count",
        );
    }
    Ok(Cumulative::Exponential(Exponential {
        scale: point.scale,
        zero: point.zero_count,
        positive,
        negative,
        count: point.count,
        sum: point.sum.filter(|s| s.is_finite()),
    }))
}

/// The bounds of positive bucket `index` at `scale`: `(2^(i·2^-s), 2^((i+1)·2^-s)]`.
fn bounds_of(scale: i32, index: i32) -> Result<(f64, f64), &'static str> {
    let width = (-f64::from(scale)).exp2();
    let (lower, upper) = (
        (f64::from(index) * width).exp2(),
        ((f64::from(index) + 1.0) * width).exp2(),
    );
    if upper.is_finite() && lower > 0.0 {
        Ok((lower, upper))
    } else {
        Err("exponential histogram points with buckets past the range of numbers")
    }
}

/// The rollup of a point's counts (a delta), with the point's `min` and `max` when they
/// describe the same interval; `None` when it counts nothing.
pub(crate) fn rollup_of(counts: &Cumulative, min: Option<f64>, max: Option<f64>) -> Option<Rollup> {
    match counts {
        Cumulative::Sum(_) => None,
        Cumulative::Buckets(b) => {
            let bounds: Vec<f64> = b.key.iter().map(|&bits| f64::from_bits(bits)).collect();
            let buckets: Vec<SummaryBucket> = if b.counts.is_empty() {
                // No buckets: the count at the mean, as wide as the whole value.
                let mean = b.sum.map(|s| s / b.count.max(1) as f64)?;
                vec![SummaryBucket {
                    lower: mean,
                    upper: mean,
                    count: b.count,
                    open: true,
                }]
            } else {
                b.counts
                    .iter()
                    .enumerate()
                    .map(|(i, &count)| {
                        let (lower, upper) = (bounds.get(i.wrapping_sub(1)), bounds.get(i));
                        match (lower, upper) {
                            (Some(&l), Some(&u)) => SummaryBucket {
                                lower: l,
                                upper: u,
                                count,
                                open: false,
                            },
                            // The first bucket reaches down to the min, the last up to the max.
                            (None, Some(&u)) => match min.filter(|m| m.is_finite() && *m <= u) {
                                Some(m) => SummaryBucket {
                                    lower: m,
                                    upper: u,
                                    count,
                                    open: false,
                                },
                                None => SummaryBucket {
                                    lower: u,
                                    upper: u,
                                    count,
                                    open: true,
                                },
                            },
                            (Some(&l), None) => match max.filter(|m| m.is_finite() && *m >= l) {
                                Some(m) => SummaryBucket {
                                    lower: l,
                                    upper: m,
                                    count,
                                    open: false,
                                },
                                None => SummaryBucket {
                                    lower: l,
                                    upper: l,
                                    count,
                                    open: true,
                                },
                            },
                            // No bounds: one bucket of everything.
                            (None, None) => {
                                let mean = b.sum.map_or(0.0, |s| s / b.count.max(1) as f64);
                                match (min, max) {
                                    (Some(lo), Some(hi))
                                        if lo.is_finite() && hi.is_finite() && lo <= hi =>
                                    {
                                        SummaryBucket {
                                            lower: lo,
                                            upper: hi,
                                            count,
                                            open: false,
                                        }
                                    }
                                    _ => SummaryBucket {
                                        lower: mean,
                                        upper: mean,
                                        count,
                                        open: true,
                                    },
                                }
                            }
                        }
                    })
                    .collect()
            };
            Rollup::from_buckets(&buckets, b.sum, min, max)
        }
        Cumulative::Exponential(e) => {
            let mut buckets = Vec::with_capacity(e.positive.len() + e.negative.len() + 1);
            for (&i, &count) in e.negative.iter().rev() {
                let (lower, upper) = bounds_of(e.scale, i).ok()?;
                buckets.push(SummaryBucket {
                    lower: -upper,
                    upper: -lower,
                    count,
                    open: false,
                });
            }
            buckets.push(SummaryBucket {
                lower: 0.0,
                upper: 0.0,
                count: e.zero,
                open: false,
            });
            for (&i, &count) in &e.positive {
                let (lower, upper) = bounds_of(e.scale, i).ok()?;
                buckets.push(SummaryBucket {
                    lower,
                    upper,
                    count,
                    open: false,
                });
            }
            Rollup::from_buckets(&buckets, e.sum, min, max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;

    fn point(bounds: &[f64], counts: &[u64]) -> HistogramDataPoint {
        HistogramDataPoint {
            count: counts.iter().sum(),
            sum: Some(100.0),
            bucket_counts: counts.to_vec(),
            explicit_bounds: bounds.to_vec(),
            min: Some(1.0),
            max: Some(60.0),
            ..Default::default()
        }
    }

    #[test]
    fn explicit_points_are_checked_and_counted() {
        let ok = explicit(&point(&[5.0, 10.0, 50.0], &[1, 2, 3, 4])).unwrap();
        let r = rollup_of(&ok, Some(1.0), Some(60.0)).unwrap();
        assert_eq!((r.count, r.summarized, r.min, r.max), (10, 10, 1.0, 60.0));
        assert!((r.mean().unwrap() - 10.0).abs() < 1e-9);
        for (bounds, counts) in [
            (&[5.0, 5.0][..], &[1, 1, 1][..]),
            (&[f64::NAN][..], &[1, 1][..]),
            (&[5.0][..], &[1, 1, 1][..]),
        ] {
            assert!(
                explicit(&point(bounds, counts)).is_err(),
                "{bounds:?} {counts:?}"
            );
        }
        let mut wrong_count = point(&[5.0], &[1, 1]);
        wrong_count.count = 3;
        assert!(explicit(&wrong_count).is_err());
    }

    #[test]
    fn exponential_points_are_checked_and_counted() {
        let p = ExponentialHistogramDataPoint {
            count: 6,
            sum: Some(30.0),
            scale: 3,
            zero_count: 1,
            positive: Some(Buckets {
                offset: 18,
                bucket_counts: vec![2, 0, 3],
            }),
            ..Default::default()
        };
        let counts = exponential(&p).unwrap();
        let r = rollup_of(&counts, None, None).unwrap();
        assert_eq!((r.count, r.zeros, r.summarized), (6, 1, 6));
        // Scale 3: buckets 2^(1/8) wide, (2^(1/8)-1)/(2^(1/8)+1) ≈ 4.3 %.
        assert!(
            r.summary_error < 0.06 && r.summary_error > 0.04,
            "{}",
            r.summary_error
        );
        for bad in [
            ExponentialHistogramDataPoint {
                scale: 21,
                ..p.clone()
            },
            ExponentialHistogramDataPoint {
                count: 7,
                ..p.clone()
            },
            ExponentialHistogramDataPoint {
                positive: Some(Buckets {
                    offset: i32::MAX,
                    bucket_counts: vec![0, 1],
                }),
                count: 2,
                ..p.clone()
            },
        ] {
            assert!(exponential(&bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any point: refused with a reason, or its count merged exactly, with an error
        /// within [0, 1], never a panic.
        #[test]
        fn any_point_is_refused_or_counted_exactly(
            bounds in proptest::collection::vec(proptest::num::f64::ANY, 0..12),
            counts in proptest::collection::vec(0u64..1_000, 0..14),
            scale in -12i32..24,
            offset in proptest::num::i32::ANY,
            zero in 0u64..5,
            sum in proptest::option::of(proptest::num::f64::ANY),
            extremes in proptest::option::of((proptest::num::f64::ANY, proptest::num::f64::ANY)),
        ) {
            let count: u64 = counts.iter().sum();
            let (min, max) = extremes.unzip();
            let explicit_point = HistogramDataPoint {
                count,
                sum,
                bucket_counts: counts.clone(),
                explicit_bounds: bounds,
                min,
                max,
                ..Default::default()
            };
            let exponential_point = ExponentialHistogramDataPoint {
                count: count + zero,
                sum,
                scale,
                zero_count: zero,
                positive: Some(Buckets { offset, bucket_counts: counts.clone() }),
                negative: Some(Buckets { offset: offset / 2, bucket_counts: vec![] }),
                min,
                max,
                ..Default::default()
            };
            let read = [
                explicit(&explicit_point).map(|c| (c, count)),
                exponential(&exponential_point).map(|c| (c, count + zero)),
            ];
            for (counts, expected) in read.into_iter().flatten() {
                match rollup_of(&counts, min, max) {
                    Some(r) => {
                        proptest::prop_assert_eq!(r.count, expected);
                        proptest::prop_assert!(r.validate().is_ok(), "{:?}", r.validate());
                    }
                    None => proptest::prop_assert!(expected == 0 || sum.is_none_or(|s| !s.is_finite())),
                }
            }
        }
    }
}
