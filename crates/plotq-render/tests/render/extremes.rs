//! Regression tests for extreme but finite data (the security review's cases): values
//! spanning hundreds of decades, ±1e308 and ±f64::MAX, subnormals, -0.0, identical
//! values, one value, a sample exactly at `until_ms`, and the axis functions over such
//! ranges. Every case must render (or fail precisely), with bounded work and readable
//! labels.

use crate::helpers::{UNTIL, dump, png_size, spec_of};
use plotq_domain::{ImageFormat, PlotKind, PlotSpec, ServiceName};
use plotq_render::axis;
use plotq_render::{PlotData, RenderError, Rendered, SeriesData, render};

/// The default window: ten minutes.
const SPAN: i64 = 600_000;

/// A `width` × `height` spec of `kind` for service `a`.
fn spec(kind: PlotKind, width: u32, height: u32) -> PlotSpec {
    spec_of("a", kind, width, height)
}

/// `values` spread evenly over the window `[UNTIL - SPAN, UNTIL]`, ends included.
fn series(name: &str, values: &[f64]) -> SeriesData {
    let n = values.len() as i64;
    SeriesData {
        service: name.to_owned(),
        timestamps_ms: (0..n)
            .map(|i| UNTIL - SPAN + i * SPAN / (n - 1).max(1))
            .collect(),
        values: values.to_vec(),
        weight: 1.0,
    }
}

fn data(series: Vec<SeriesData>) -> PlotData {
    PlotData {
        from_ms: UNTIL - SPAN,
        until_ms: UNTIL,
        series,
        note: None,
        annotations: Vec::new(),
    }
}

/// Renders as PNG, checks the size, keeps it under `name`.
fn render_png(name: &str, spec: &PlotSpec, data: &PlotData) -> Rendered {
    let out = render(spec, data).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        png_size(&out.bytes),
        Some((spec.width, spec.height)),
        "{name}"
    );
    dump(&format!("{name}.png"), &out.bytes);
    out
}

/// Renders as SVG and returns the document (its text holds every label).
fn render_svg(name: &str, spec: &PlotSpec, data: &PlotData) -> String {
    let mut spec = spec.clone();
    spec.format = ImageFormat::Svg;
    let out = render(&spec, data).unwrap_or_else(|e| panic!("{name} (svg): {e}"));
    let text = String::from_utf8(out.bytes).unwrap();
    dump(&format!("{name}.svg"), text.as_bytes());
    text
}

/// The texts drawn in an SVG document.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

/// No label is absurdly long (a fixed-point 1e308 has 309 digits).
fn assert_labels_short(name: &str, svg: &str) {
    for t in svg_texts(svg) {
        assert!(t.chars().count() <= 60, "{name}: label too long: {t:?}");
        assert!(
            !t.contains("inf") && !t.contains("NaN"),
            "{name}: label {t:?}"
        );
    }
}

#[test]
fn heatmap_over_1_to_1e270_is_bounded() {
    let s = spec(PlotKind::Heatmap, 1000, 600);
    let d = data(vec![series("a", &[1.0, 1e270])]);
    render_png("heatmap_1_to_1e270", &s, &d);
    let svg = render_svg("heatmap_1_to_1e270", &s, &d);
    assert_labels_short("heatmap_1_to_1e270", &svg);
}

#[test]
fn heatmap_over_1e_minus_300_to_1_at_height_150_is_bounded() {
    let s = spec(PlotKind::Heatmap, 1000, 150);
    let d = data(vec![series("a", &[1e-300, 1.0])]);
    render_png("heatmap_1e-300_to_1_h150", &s, &d);
    let svg = render_svg("heatmap_1e-300_to_1_h150", &s, &d);
    assert_labels_short("heatmap_1e-300_to_1_h150", &svg);
}

/// Ordinary latencies with ±1e308 among them.
fn with_huge() -> Vec<f64> {
    let mut v: Vec<f64> = (0..200).map(|i| 10.0 + f64::from(i % 40)).collect();
    v.extend([1e308, -1e308, 1e308]);
    v
}

#[test]
fn histogram_with_plus_minus_1e308_renders() {
    let s = spec(PlotKind::Histogram, 1000, 600);
    let d = data(vec![series("a", &with_huge())]);
    render_png("histogram_pm1e308", &s, &d);
    let svg = render_svg("histogram_pm1e308", &s, &d);
    assert_labels_short("histogram_pm1e308", &svg);
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "1e308"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "-1e308"), "{texts:?}");
}

#[test]
fn cdf_with_plus_minus_1e308_renders() {
    let s = spec(PlotKind::Cdf, 1000, 600);
    let d = data(vec![series("a", &with_huge())]);
    render_png("cdf_pm1e308", &s, &d);
    assert_labels_short("cdf_pm1e308", &render_svg("cdf_pm1e308", &s, &d));
}

#[test]
fn latency_timeseries_with_plus_minus_1e308_renders() {
    let mut s = spec(PlotKind::LatencyTimeseries, 1000, 600);
    let d = data(vec![series("a", &with_huge())]);
    render_png("latency_pm1e308", &s, &d);
    s.show_max = true;
    render_png("latency_pm1e308_max", &s, &d);
    assert_labels_short("latency_pm1e308", &render_svg("latency_pm1e308", &s, &d));
}

#[test]
fn histogram_with_subnormals_renders() {
    let s = spec(PlotKind::Histogram, 1000, 600);
    for (name, values) in [
        ("histogram_subnormal_pair", vec![5e-324, 1e-310]),
        (
            "histogram_subnormal_mix",
            vec![5e-324, 1e-310, 0.0, -0.0, 2.5e-310],
        ),
        ("histogram_one_subnormal_ulp", vec![0.0, 5e-324]),
    ] {
        let d = data(vec![series("a", &values)]);
        render_png(name, &s, &d);
        let svg = render_svg(name, &s, &d);
        assert_labels_short(name, &svg);
    }
}

#[test]
fn cdf_with_subnormals_renders() {
    let s = spec(PlotKind::Cdf, 1000, 600);
    for (name, values) in [
        ("cdf_subnormal_pair", vec![5e-324, 1e-310]),
        ("cdf_one_subnormal_ulp", vec![0.0, 5e-324]),
    ] {
        let d = data(vec![series("a", &values)]);
        render_png(name, &s, &d);
        assert_labels_short(name, &render_svg(name, &s, &d));
    }
}

#[test]
fn extreme_labels_are_scientific() {
    let s = spec(PlotKind::Histogram, 1000, 600);
    let svg = render_svg(
        "histogram_1e308_pair",
        &s,
        &data(vec![series("a", &[1e308, 1e308])]),
    );
    let texts = svg_texts(&svg);
    // The mean of two 1e308 is 1e308, not inf.
    assert!(texts.iter().any(|t| t == "Mean: 1e308ms"), "{texts:?}");
    let svg = render_svg(
        "histogram_subnormal_labels",
        &s,
        &data(vec![series("a", &[5e-324, 1e-310, 2.5e-310])]),
    );
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t.ends_with("e-310")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("P99: ") && t.contains("e-310"))
    );
}

/// Every kind (with its options) over each extreme data set renders a PNG of the asked
/// size, or fails precisely where a log axis has nothing positive to show.
#[test]
fn every_kind_renders_every_extreme() {
    let sets: Vec<(&str, Vec<f64>)> = vec![
        ("max", vec![f64::MAX, -f64::MAX, 1.0]),
        ("only_max", vec![f64::MAX, f64::MAX]),
        ("only_min", vec![-f64::MAX; 3]),
        ("pm1e308", with_huge()),
        (
            "subnormals",
            vec![5e-324, -5e-324, 1e-310, f64::MIN_POSITIVE],
        ),
        ("zeros", vec![0.0, -0.0, 0.0]),
        ("one", vec![1e-300]),
        ("identical_huge", vec![1e300; 50]),
        ("identical_1e15", vec![1e15; 50]),
        ("span_1e270", vec![1.0, 1e270]),
        ("span_600_decades", vec![1e-300, 1e300]),
        (
            "everything",
            vec![f64::MAX, -f64::MAX, 5e-324, -0.0, 0.0, 1e-310, 42.0, 1e308],
        ),
    ];
    for (set, values) in &sets {
        for &kind in PlotKind::ALL {
            let mut variants = vec![spec(kind, 1000, 600), spec(kind, 200, 150)];
            if matches!(kind, PlotKind::Histogram | PlotKind::Cdf) {
                let mut log = spec(kind, 1000, 600);
                log.log_x = true;
                variants.push(log);
            }
            if kind == PlotKind::LatencyTimeseries {
                let mut max = spec(kind, 1000, 600);
                max.show_max = true;
                variants.push(max);
            }
            if kind.compares() {
                for log_x in [false, true] {
                    let mut cmp = spec(kind, 1000, 600);
                    cmp.services = (0..8)
                        .map(|i| ServiceName::parse(&format!("s{i}")).unwrap())
                        .collect();
                    cmp.log_x = log_x && kind != PlotKind::LatencyTimeseries;
                    variants.push(cmp);
                }
            }
            for (i, s) in variants.iter().enumerate() {
                let name = format!("all_{}_{set}_{i}", kind.as_str());
                let d = data(
                    s.services
                        .iter()
                        .enumerate()
                        // Each compared service gets a different slice of the set.
                        .map(|(k, n)| {
                            let mut v = values.clone();
                            let len = v.len();
                            v.rotate_left(k % len);
                            v.truncate(len - (k % len) / 2);
                            series(n.as_str(), &v)
                        })
                        .collect(),
                );
                let log_axis = s.log_x || kind == PlotKind::Heatmap;
                match render(s, &d) {
                    Ok(out) => {
                        assert_eq!(png_size(&out.bytes), Some((s.width, s.height)), "{name}");
                        if i == 0 {
                            dump(&format!("{name}.png"), &out.bytes);
                        }
                    }
                    Err(RenderError::Unplottable(why)) => {
                        let any_positive =
                            d.series.iter().flat_map(|s| &s.values).any(|v| *v > 0.0);
                        assert!(
                            log_axis && !any_positive && why.contains("≤ 0"),
                            "{name}: {why}"
                        );
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }
    }
}

/// The data window is inclusive: a sample exactly at `until_ms` is drawn.
#[test]
fn a_sample_at_until_is_drawn() {
    for kind in [
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
        PlotKind::ErrorRate,
        PlotKind::Heatmap,
    ] {
        let s = spec(kind, 1000, 600);
        let d = PlotData {
            from_ms: UNTIL - SPAN,
            until_ms: UNTIL,
            series: vec![SeriesData {
                service: "a".into(),
                timestamps_ms: vec![UNTIL],
                values: vec![503.0],
                weight: 1.0,
            }],
            note: None,
            annotations: Vec::new(),
        };
        let out = render(&s, &d).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(png_size(&out.bytes), Some((1000, 600)));
        dump(&format!("at_until_{}.png", kind.as_str()), &out.bytes);
        // One millisecond later is outside the window.
        let late = PlotData {
            series: vec![SeriesData {
                timestamps_ms: vec![UNTIL + 1],
                ..d.series[0].clone()
            }],
            ..d
        };
        assert!(
            matches!(render(&s, &late), Err(RenderError::NoData)),
            "{kind:?}"
        );
    }
}

/// Windows at the ends of i64, reversed or empty, never overflow.
#[test]
fn extreme_windows_are_bounded() {
    for (from, until) in [
        (i64::MIN, i64::MAX),
        (i64::MAX - 10, i64::MAX),
        (i64::MIN, i64::MIN + 10_000),
        (UNTIL, UNTIL),
        (UNTIL, UNTIL - SPAN),
    ] {
        for &kind in PlotKind::ALL {
            let s = spec(kind, 400, 300);
            let d = PlotData {
                from_ms: from,
                until_ms: until,
                series: vec![SeriesData {
                    service: "a".into(),
                    timestamps_ms: vec![from, until, from / 2 + until / 2],
                    values: vec![1.0, 500.0, 30.0],
                    weight: 1.0,
                }],
                note: None,
                annotations: Vec::new(),
            };
            match render(&s, &d) {
                Ok(out) => assert_eq!(png_size(&out.bytes), Some((400, 300))),
                Err(RenderError::Unplottable(why)) => {
                    assert!(until <= from, "{kind:?} [{from}, {until}]: {why}")
                }
                // A correlation draws whole buckets (a minute): these windows at the
                // ends of time hold none, or none with a sample.
                Err(RenderError::NoData) if kind == PlotKind::Correlation => {}
                Err(e) => panic!("{kind:?} [{from}, {until}]: {e}"),
            }
        }
    }
}

#[test]
fn log_ticks_over_600_decades_are_thinned() {
    for max in [1, 2, 5, 10, 12] {
        let ticks = axis::log_ticks(1e-300, 1e300, max);
        assert!(ticks.len() <= max + 2, "{max}: {ticks:?}");
        assert!(ticks.len() >= 2.min(max), "{max}: {ticks:?}");
        assert!(ticks.iter().all(|t| t.is_finite() && *t > 0.0));
    }
    // The heatmap's runaway: the headroom took the top to infinity.
    let ticks = axis::log_ticks(1.0, f64::INFINITY, 10);
    assert!(ticks.len() <= 12, "{ticks:?}");
    let ticks = axis::log_ticks(5e-324, f64::MAX, 10);
    assert!((2..=12).contains(&ticks.len()), "{ticks:?}");
    // 10^309 is past f64::MAX: no infinite tick at the top end.
    assert_eq!(axis::log_ticks(f64::MAX, f64::MAX, 1), Vec::<f64>::new());
    assert_eq!(axis::log_ticks(1e308, f64::MAX, 1), vec![1e308]);
}

#[test]
fn linear_ticks_are_bounded_when_spans_overflow() {
    for (lo, hi) in [
        (-1e308, 1e308),
        (-f64::MAX, f64::MAX),
        (1e300, 1e300),
        (1e30, 1e30 + 1e15),
        (5e-324, 1e-310),
        (0.0, 5e-324),
        (-5e-324, 5e-324),
        (9.2e18, 9.3e18),
        (f64::MAX, f64::MAX),
    ] {
        for max in [1, 2, 5, 10] {
            let (ticks, step) = axis::linear_ticks(lo, hi, max);
            assert!(step.is_finite() && step > 0.0, "[{lo}, {hi}] {max}: {step}");
            assert!(ticks.len() <= max + 2, "[{lo}, {hi}] {max}: {ticks:?}");
            assert!(ticks.iter().all(|t| t.is_finite()), "{ticks:?}");
            for t in &ticks {
                let label = axis::format_tick(*t, step);
                assert!(label.len() <= 24, "[{lo}, {hi}]: {label}");
            }
        }
    }
    assert_eq!(
        axis::linear_ticks(-1e308, 1e308, 2).0,
        vec![-1e308, 0.0, 1e308]
    );
}

#[test]
fn nice_step_of_a_subnormal_span_is_positive() {
    for span in [5e-324, 1e-320, 1e-310, 2.2e-308, f64::MAX] {
        let step = axis::nice_step(span, 10);
        assert!(step.is_finite() && step > 0.0, "{span}: {step}");
        // The label of a tick at that step is short, whatever its magnitude.
        assert!(axis::format_tick(step * 3.0, step).len() <= 24);
    }
}

#[test]
fn extreme_tick_labels_are_readable() {
    assert_eq!(axis::format_tick(1e308, 5e307), "1e308");
    assert_eq!(axis::format_tick(-1.5e308, 5e307), "-1.5e308");
    assert_eq!(axis::format_tick(2.5e-310, 5e-311), "2.5e-310");
    assert_eq!(axis::format_tick(-0.0, 5e-324), "0");
    assert_eq!(axis::format_log_tick(1e270), "1e270");
    assert_eq!(axis::format_log_tick(1e-300), "1e-300");
    assert_eq!(axis::format_log_tick(2e-5), "2e-5");
    assert_eq!(axis::format_value(1e308, "ms"), "1e308ms");
    assert_eq!(axis::format_value(-0.0, "ms"), "0.00ms");
    assert_eq!(axis::format_value(2.5e-310, "ms"), "2.5e-310ms");
    // Ordinary ranges keep their formats.
    assert_eq!(axis::format_log_tick(20_000.0), "20k");
    assert_eq!(axis::format_log_tick(0.005), "0.005");
    assert_eq!(axis::format_value(64.123, "ms"), "64.12ms");
    assert_eq!(axis::format_value(1234.4, "ms"), "1234ms");
}

#[test]
fn time_axes_are_bounded_at_the_ends_of_time() {
    for (from, until) in [
        (i64::MIN, i64::MAX),
        (0, i64::MAX),
        (i64::MAX - 1, i64::MAX),
        (i64::MIN, i64::MIN + 1),
        (10, 0),
    ] {
        for max in [1, 2, 8, 60] {
            let (ticks, _) = axis::time_ticks(from, until, max);
            assert!(
                ticks.len() <= max.max(2) + 2,
                "[{from}, {until}] {max}: {}",
                ticks.len()
            );
            let step = axis::bucket_ms(until.saturating_sub(from), max);
            assert!(step > 0);
        }
    }
}
