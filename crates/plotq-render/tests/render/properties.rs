//! Property tests: every kind renders any finite data — ordinary latencies mixed with
//! ±f64::MAX, ±1e308, subnormals, ±0 and other extremes, timestamps inside and outside
//! the window, any size, scale (1 to 4, layouts down to 200×150), bin count and option —
//! into an image of the asked size, or fails with exactly the error the data calls for;
//! a time axis is where the scale puts it (the layout's, magnified); the axis functions
//! stay bounded and finite for any input; the statistics stay exact and finite.
//!
//! Render properties run 64 cases by default, axis and statistics properties 256;
//! `PROPTEST_CASES` overrides both. Work is bounded structurally (counts are asserted,
//! never times).

use crate::helpers::{UNTIL, png_size};
use plotq_domain::{ImageFormat, PlotKind, PlotSpec, ServiceName, stats};
use plotq_render::axis;
use plotq_render::{PlotData, RenderError, SeriesData, render};
use proptest::prelude::*;

/// One hour, before `UNTIL` (the end of every window here).
const SPAN: i64 = 3_600_000;
const FROM: i64 = UNTIL - SPAN;

/// `cases` unless `PROPTEST_CASES` says otherwise (proptest reads it itself).
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

const EXTREMES: &[f64] = &[
    f64::MAX,
    -f64::MAX,
    1e308,
    -1e308,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    1e-310,
    2.5e-310,
    0.0,
    -0.0,
    1e-300,
    1e300,
    1e-20,
    1e20,
    1e15,
];

/// Any finite `f64`, of every class and sign.
fn any_finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

/// Mostly lognormal-like latencies, often an extreme, sometimes any finite value or an
/// HTTP status code.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => (-1.0f64..8.0).prop_map(f64::exp),
        2 => proptest::sample::select(EXTREMES),
        1 => any_finite(),
        1 => proptest::sample::select(&[200.0, 201.0, 404.0, 500.0, 503.0, 99.0, 600.0][..]),
    ]
}

/// Mostly inside the window (ends included), sometimes anywhere.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => FROM..=UNTIL,
        1 => Just(UNTIL),
        1 => Just(FROM),
        1 => any::<i64>(),
    ]
}

/// One service's samples: usually a few dozen, now and then a few thousand.
fn samples() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop_oneof![
        8 => proptest::collection::vec((timestamp(), value()), 0..40),
        1 => proptest::collection::vec((timestamp(), value()), 0..3000),
    ]
}

/// Image sizes and scales within the spec bounds (a layout of at least 200×150, the
/// image any size from layout × scale to one pixel short of the next layout pixel),
/// mostly small (debug renders stay fast).
fn size() -> impl Strategy<Value = (u32, u32, u32)> {
    prop_oneof![6 => Just(1u32), 1 => 2u32..=3, 1 => Just(4u32)].prop_flat_map(|scale| {
        (
            prop_oneof![8 => 200u32..=500, 1 => 200u32..=4000 / scale],
            prop_oneof![8 => 150u32..=400, 1 => 150u32..=4000 / scale],
            0..scale,
            Just(scale),
        )
            .prop_map(|(w, h, extra, scale)| {
                (
                    (w * scale + extra).min(4000),
                    (h * scale + extra).min(4000),
                    scale,
                )
            })
    })
}

fn format() -> impl Strategy<Value = ImageFormat> {
    prop_oneof![7 => Just(ImageFormat::Png), 1 => Just(ImageFormat::Svg)]
}

/// A spec of `kind` and its data: up to 8 services for the kinds that compare, `log_x`
/// and `show_max` where the kind has them, any bins in 1..=1000.
fn case(kind: PlotKind) -> impl Strategy<Value = (PlotSpec, PlotData)> {
    // A correlation reads two series (y, x) of its one service.
    let (min_series, max_series) = match kind {
        PlotKind::Correlation => (2, 2),
        k if k.compares() => (1, 8),
        _ => (1, 1),
    };
    (
        proptest::collection::vec(samples(), min_series..=max_series),
        size(),
        format(),
        1u32..=1000,
        any::<bool>(),
        any::<bool>(),
        // Annotations anywhere in time (inside, at and beyond the window), any text.
        proptest::collection::vec(
            (FROM - 1_000..=UNTIL + 1_000, "\\PC{1,200}"),
            0..=plotq_domain::annotation::MAX_DRAWN,
        ),
    )
        .prop_map(
            move |(all, (width, height, scale), format, bins, log_x, show_max, notes)| {
                let mut spec = PlotSpec::new(kind, ServiceName::parse("a").unwrap());
                spec.services = (0..all.len())
                    .map(|i| ServiceName::parse(&format!("s{i}")).unwrap())
                    .take(if kind == PlotKind::Correlation { 1 } else { 8 })
                    .collect();
                spec.width = width;
                spec.height = height;
                spec.scale = scale;
                spec.format = format;
                spec.bins = bins;
                spec.log_x = log_x && matches!(kind, PlotKind::Histogram | PlotKind::Cdf);
                spec.show_max = show_max && kind == PlotKind::LatencyTimeseries;
                let series = all
                    .into_iter()
                    .enumerate()
                    .map(|(i, pairs)| SeriesData {
                        service: format!("s{i}"),
                        timestamps_ms: pairs.iter().map(|p| p.0).collect(),
                        values: pairs.iter().map(|p| p.1).collect(),
                        weight: 1.0,
                    })
                    .collect();
                let data = PlotData {
                    from_ms: FROM,
                    until_ms: UNTIL,
                    series,
                    note: None,
                    annotations: notes
                        .into_iter()
                        .enumerate()
                        .map(|(i, (time_ms, text))| plotq_domain::Annotation {
                            id: i.to_string(),
                            time_ms,
                            text,
                            services: vec![ServiceName::parse("a").unwrap()],
                        })
                        .collect(),
                };
                (spec, data)
            },
        )
}

/// What the data calls for: `Ok(())` for an image, or the one error it must be.
enum Expected {
    Image,
    NoData,
    Unplottable,
}

fn expected(spec: &PlotSpec, data: &PlotData) -> Expected {
    let n: usize = data.series.iter().map(|s| s.values.len()).sum();
    if n == 0 {
        return Expected::NoData;
    }
    let in_window = |s: &SeriesData| -> Vec<f64> {
        s.timestamps_ms
            .iter()
            .zip(&s.values)
            .filter(|(t, _)| (FROM..=UNTIL).contains(*t))
            .map(|(_, v)| *v)
            .collect()
    };
    match spec.kind {
        PlotKind::Histogram | PlotKind::Cdf if spec.log_x => {
            let positive = data.series.iter().flat_map(|s| &s.values).any(|v| *v > 0.0);
            if positive {
                Expected::Image
            } else {
                Expected::Unplottable
            }
        }
        PlotKind::Histogram | PlotKind::Cdf | PlotKind::StatusCodes => Expected::Image,
        PlotKind::LatencyTimeseries => {
            if data.series.iter().all(|s| in_window(s).is_empty()) {
                Expected::NoData
            } else {
                Expected::Image
            }
        }
        PlotKind::Throughput | PlotKind::ErrorRate => {
            if data.series.iter().all(|s| in_window(s).is_empty()) {
                Expected::NoData
            } else {
                Expected::Image
            }
        }
        // An image when some whole bucket has both statistics (y's p95 needs a sample;
        // x's rate is 0 without one).
        PlotKind::Correlation => {
            let c = spec.correlation.as_ref().expect("a correlation spec");
            let minute = c.bucket.millis();
            let whole = |t: &i64| {
                let first = FROM.div_euclid(minute) * minute
                    + if FROM.rem_euclid(minute) == 0 {
                        0
                    } else {
                        minute
                    };
                *t >= first && *t < first + (UNTIL + 1 - first) / minute * minute
            };
            if data.series[0].timestamps_ms.iter().any(whole) {
                Expected::Image
            } else {
                Expected::NoData
            }
        }
        // Several series: panels of those that can be drawn (or, too small for panels,
        // the first that can); an error only when none can.
        PlotKind::Heatmap => {
            let values: Vec<f64> = data.series.iter().flat_map(in_window).collect();
            if values.is_empty() {
                Expected::NoData
            } else if values.iter().any(|v| *v > 0.0) {
                Expected::Image
            } else {
                Expected::Unplottable
            }
        }
    }
}

fn check(spec: &PlotSpec, data: &PlotData) -> Result<(), TestCaseError> {
    let result = render(spec, data);
    match (expected(spec, data), result) {
        (Expected::Image, Ok(out)) => match spec.format {
            ImageFormat::Png => {
                prop_assert_eq!(png_size(&out.bytes), Some((spec.width, spec.height)));
                prop_assert_eq!(out.time_axis.is_some(), spec.kind.has_time_axis());
                if let Some(t) = out.time_axis {
                    prop_assert!(t.left_px < t.right_px && t.right_px < spec.width);
                    prop_assert_eq!((t.from_ms, t.until_ms), (data.from_ms, data.until_ms));
                }
            }
            ImageFormat::Svg => {
                prop_assert!(out.bytes.starts_with(b"<svg"));
                prop_assert!(out.bytes.len() > 100);
            }
        },
        (Expected::NoData, Err(RenderError::NoData)) => {}
        (Expected::Unplottable, Err(RenderError::Unplottable(why))) => {
            prop_assert!(why.contains("≤ 0"), "{}", why);
        }
        (_, Ok(_)) => prop_assert!(false, "rendered, but the data calls for an error"),
        (_, Err(e)) => prop_assert!(false, "{}", e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn histogram_renders_any_finite_data((spec, data) in case(PlotKind::Histogram)) {
        check(&spec, &data)?;
    }

    #[test]
    fn cdf_renders_any_finite_data((spec, data) in case(PlotKind::Cdf)) {
        check(&spec, &data)?;
    }

    #[test]
    fn latency_timeseries_renders_any_finite_data(
        (spec, data) in case(PlotKind::LatencyTimeseries)
    ) {
        check(&spec, &data)?;
    }

    #[test]
    fn throughput_renders_any_finite_data((spec, data) in case(PlotKind::Throughput)) {
        check(&spec, &data)?;
    }

    #[test]
    fn status_codes_renders_any_finite_data((spec, data) in case(PlotKind::StatusCodes)) {
        check(&spec, &data)?;
    }

    #[test]
    fn error_rate_renders_any_finite_data((spec, data) in case(PlotKind::ErrorRate)) {
        check(&spec, &data)?;
    }

    #[test]
    fn heatmap_renders_any_finite_data((spec, data) in case(PlotKind::Heatmap)) {
        check(&spec, &data)?;
    }

    #[test]
    fn correlation_renders_any_finite_data((spec, data) in case(PlotKind::Correlation)) {
        check(&spec, &data)?;
    }
}

/// A time plot at `scale` is the layout's plot magnified: its time axis starts and ends
/// at the layout's columns times the scale (within a layout pixel's rounding).
fn check_magnified(spec: &PlotSpec, data: &PlotData, scale: u32) -> Result<(), TestCaseError> {
    let mut big = spec.clone();
    big.scale = scale;
    big.width = spec.width * scale;
    big.height = spec.height * scale;
    if let (Ok(small), Ok(magnified)) = (render(spec, data), render(&big, data)) {
        let (a, b) = (small.time_axis.unwrap(), magnified.time_axis.unwrap());
        for (one, many) in [(a.left_px, b.left_px), (a.right_px, b.right_px)] {
            prop_assert!(
                (i64::from(one * scale) - i64::from(many)).abs() <= i64::from(scale),
                "{:?} at scale {} vs {:?}",
                a,
                scale,
                b
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn scale_magnifies_the_layout(
        w in 200u32..=600,
        h in 150u32..=400,
        scale in 2u32..=4,
        kind in proptest::sample::select(&[
            PlotKind::LatencyTimeseries, PlotKind::Throughput, PlotKind::ErrorRate,
            PlotKind::Heatmap,
        ][..]),
    ) {
        let mut spec = PlotSpec::new(kind, ServiceName::parse("a").unwrap());
        (spec.width, spec.height) = (w, h);
        let n = 600;
        let data = PlotData {
            from_ms: FROM,
            until_ms: UNTIL,
            series: vec![SeriesData {
                service: "a".into(),
                timestamps_ms: (0..n).map(|i| FROM + i * SPAN / n).collect(),
                values: (0..n).map(|i| 200.0 + (i % 7) as f64 * 40.0).collect(),
                weight: 1.0,
            }],
            note: None,
            annotations: Vec::new(),
        };
        check_magnified(&spec, &data, scale)?;
    }
}

/// Any finite value, extremes weighted up.
fn axis_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => any_finite(),
        1 => proptest::sample::select(EXTREMES),
        1 => -1e6f64..1e6,
    ]
}

/// Any positive finite value, extremes weighted up.
fn positive() -> impl Strategy<Value = f64> {
    axis_value()
        .prop_map(f64::abs)
        .prop_filter("positive", |v| *v > 0.0)
}

fn short(label: &str) -> bool {
    label.chars().count() <= 24 && !label.contains("inf") && !label.contains("NaN")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn linear_ticks_are_bounded_and_finite(
        a in axis_value(), b in axis_value(), max in 1usize..=20
    ) {
        let (lo, hi) = (a.min(b), a.max(b));
        let (ticks, step) = axis::linear_ticks(lo, hi, max);
        prop_assert!(step.is_finite() && step > 0.0, "step {}", step);
        prop_assert!(ticks.len() <= max + 2, "{} ticks for {}", ticks.len(), max);
        prop_assert!(ticks.iter().all(|t| t.is_finite()));
        prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{:?}", ticks);
        for t in &ticks {
            let label = axis::format_tick(*t, step);
            prop_assert!(short(&label), "{}", label);
        }
    }

    #[test]
    fn log_ticks_are_bounded_and_finite(
        a in positive(), b in positive(), max in 1usize..=20
    ) {
        let (lo, hi) = (a.min(b), a.max(b));
        let ticks = axis::log_ticks(lo, hi, max);
        prop_assert!(ticks.len() <= max + 2, "{} ticks for {}", ticks.len(), max);
        for t in &ticks {
            prop_assert!(t.is_finite() && *t > 0.0);
            prop_assert!(*t >= lo * (1.0 - 1e-6) && *t <= hi * (1.0 + 1e-6), "{} of [{}, {}]", t, lo, hi);
            let label = axis::format_log_tick(*t);
            prop_assert!(short(&label), "{}", label);
        }
    }

    #[test]
    fn nice_steps_are_positive_and_cut_the_span(span in positive(), max in 1usize..=20) {
        let step = axis::nice_step(span, max);
        prop_assert!(step.is_finite() && step > 0.0);
        prop_assert!(span / step <= max as f64 + 1.0, "{} / {} over {}", span, step, max);
    }

    #[test]
    fn time_ticks_and_buckets_are_bounded(
        from in any::<i64>(), until in any::<i64>(), max in 1usize..=120
    ) {
        let (ticks, format) = axis::time_ticks(from, until, max);
        prop_assert!(ticks.len() <= max.max(2) + 2);
        prop_assert!(!format.is_empty());
        prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(ticks.iter().all(|t| *t >= from as f64 && *t <= until as f64));
        let span = axis::span_ms(from, until);
        let width = axis::bucket_ms(span, max);
        prop_assert!(width > 0);
        prop_assert!(span / width <= max as i64 + 1, "{} / {} over {}", span, width, max);
    }

    #[test]
    fn statistics_are_exact_and_finite(
        values in proptest::collection::vec(axis_value(), 1..200), bins in 1usize..=1000
    ) {
        let s = stats::summarize(&values).unwrap();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        prop_assert_eq!((s.min, s.max), (sorted[0], sorted[sorted.len() - 1]));
        for (got, q) in [(s.p50, 0.5), (s.p95, 0.95), (s.p99, 0.99)] {
            // Exact order statistics, interpolated as numpy does (or overflow-free).
            let rank = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (sorted[rank.floor() as usize], sorted[rank.ceil() as usize]);
            prop_assert!(got.is_finite() && got >= lo && got <= hi, "q{}: {} not in [{}, {}]", q, got, lo, hi);
        }
        prop_assert!(s.mean.is_finite() && s.mean >= s.min && s.mean <= s.max);
        let (binned, b) = stats::summarize_binned(&values, bins).unwrap();
        prop_assert_eq!(binned, s);
        prop_assert!(b.counts.len() <= bins);
        prop_assert_eq!(b.counts.iter().sum::<u64>(), values.len() as u64);
        let edges: Vec<f64> = (0..=b.counts.len()).map(|i| b.edge(i)).collect();
        prop_assert!(edges.iter().all(|e| e.is_finite()));
        prop_assert!(edges.windows(2).all(|w| w[0] <= w[1]));
    }
}
