//! Every kind renders a decodable image of the requested size and scale in both themes
//! and formats, also when comparing services and with its options; output is
//! deterministic, and drawing then encoding is rendering; degenerate data renders or
//! fails precisely; stand-ins count for their weight.

use crate::helpers::{UNTIL, data_for, decode, dump, spec};
use plotq_domain::{ImageFormat, PlotKind, ServiceName, Theme};
use plotq_render::{PlotData, RenderError, SeriesData, render};

#[test]
fn every_kind_renders_at_every_size_and_theme() {
    for &kind in PlotKind::ALL {
        for (w, h, scale) in [
            (1000, 600, 1),
            (400, 250, 1),
            (200, 150, 1),
            (1200, 675, 3),
            (800, 600, 4),
            (3840, 2160, 1),
        ] {
            for theme in [Theme::Light, Theme::Dark] {
                let mut s = spec(kind, w, h);
                s.theme = theme;
                s.scale = scale;
                if kind != PlotKind::Histogram && kind != PlotKind::Cdf {
                    s.range =
                        plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
                }
                let out = render(&s, &data_for(&s, 20_000))
                    .unwrap_or_else(|e| panic!("{kind:?} {w}x{h}: {e}"));
                let (dw, dh, _) = decode(&out.bytes);
                assert_eq!((dw, dh), (w, h), "{kind:?}");
                dump(
                    &format!("{}_{w}x{h}_{scale}_{theme:?}.png", kind.as_str()),
                    &out.bytes,
                );
            }
        }
    }
}

#[test]
fn comparisons_and_options() {
    for kind in [
        PlotKind::Histogram,
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
        PlotKind::ErrorRate,
        PlotKind::Cdf,
    ] {
        let mut s = spec(kind, 1000, 600);
        if kind.needs_timestamps() {
            s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
        }
        s.services = ["checkout", "payments", "search"]
            .iter()
            .map(|n| ServiceName::parse(n).unwrap())
            .collect();
        let out = render(&s, &data_for(&s, 10_000)).unwrap();
        assert_eq!(decode(&out.bytes).0, 1000);
        dump(&format!("compare_{}.png", kind.as_str()), &out.bytes);
    }
    let mut log = spec(PlotKind::Histogram, 1000, 600);
    log.log_x = true;
    dump(
        "histogram_log.png",
        &render(&log, &data_for(&log, 50_000)).unwrap().bytes,
    );
    let mut max = spec(PlotKind::LatencyTimeseries, 1000, 600);
    max.show_max = true;
    dump(
        "latency_max.png",
        &render(&max, &data_for(&max, 50_000)).unwrap().bytes,
    );
    let mut week = spec(PlotKind::Throughput, 1000, 600);
    week.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("7d").unwrap());
    dump(
        "throughput_7d.png",
        &render(&week, &data_for(&week, 50_000)).unwrap().bytes,
    );
}

/// Thresholds on every kind: a threshold inside the value axis is a line across the plot
/// in the text's colour (many more such pixels than the same threshold beyond the axis,
/// which is only named in the legend, with a longer text).
#[test]
fn thresholds_are_drawn_on_every_kind() {
    use plotq_domain::plot::Threshold;
    let ink = plotq_render::Theme::light().foreground;
    let ink = [ink.0, ink.1, ink.2];
    for &kind in PlotKind::ALL {
        let mut s = spec(kind, 1000, 600);
        if kind != PlotKind::Histogram && kind != PlotKind::Cdf {
            s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
        }
        let data = data_for(&s, 20_000);
        let mut inked = |value: f64| {
            s.thresholds = vec![Threshold {
                value,
                label: "SLO".into(),
            }];
            let bytes = render(&s, &data).unwrap().bytes;
            let (_, _, rgb) = decode(&bytes);
            (rgb.chunks(3).filter(|p| *p == ink).count(), bytes)
        };
        // A value inside every kind's value axis: 20 ms, 5/s, 3 %, 100 samples, p95 40.
        let inside = match kind {
            PlotKind::Throughput => 5.0,
            PlotKind::ErrorRate => 3.0,
            PlotKind::StatusCodes => 100.0,
            PlotKind::Correlation => 40.0,
            _ => 20.0,
        };
        let (beyond, _) = inked(1e12);
        let (drawn, bytes) = inked(inside);
        assert!(drawn > beyond + 300, "{kind:?}: {beyond} → {drawn} pixels");
        dump(&format!("thresholds_{}.png", kind.as_str()), &bytes);
    }
}

#[test]
fn svg_is_well_formed_text() {
    let mut s = spec(PlotKind::Histogram, 800, 500);
    s.format = ImageFormat::Svg;
    let out = render(&s, &data_for(&s, 5_000)).unwrap();
    assert_eq!(out.content_type, "image/svg+xml");
    let text = String::from_utf8(out.bytes).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..40]);
    assert!(text.trim_end().ends_with("</svg>"));
    assert!(text.contains("Latency Distribution"));
    dump("histogram.svg", text.as_bytes());
}

#[test]
fn show_max_draws_a_max_line_per_service() {
    let mut s = spec(PlotKind::LatencyTimeseries, 1000, 600);
    s.services
        .push(plotq_domain::ServiceName::parse("search").unwrap());
    s.format = ImageFormat::Svg;
    s.show_max = true;
    let text = String::from_utf8(render(&s, &data_for(&s, 5_000)).unwrap().bytes).unwrap();
    for service in &s.services {
        for line in ["p99", "p50", "max"] {
            assert!(
                text.contains(&format!("{service} {line}")),
                "{service} {line}"
            );
        }
    }
    s.show_max = false;
    let text = String::from_utf8(render(&s, &data_for(&s, 5_000)).unwrap().bytes).unwrap();
    assert!(!text.contains(" max<"), "no max line without show_max");
    s.format = ImageFormat::Png;
    s.show_max = true;
    dump(
        "latency_max_services.png",
        &render(&s, &data_for(&s, 5_000)).unwrap().bytes,
    );
}

#[test]
fn identical_input_gives_identical_bytes() {
    for &kind in PlotKind::ALL {
        let s = spec(kind, 1000, 600);
        let a = render(&s, &data_for(&s, 5_000)).unwrap();
        let b = render(&s, &data_for(&s, 5_000)).unwrap();
        assert_eq!(a.bytes, b.bytes, "{kind:?}");
    }
}

/// Drawing and encoding apart (as the worker times them) makes the bytes `render` makes.
#[test]
fn drawing_then_encoding_is_rendering() {
    for &kind in PlotKind::ALL {
        for format in [ImageFormat::Png, ImageFormat::Svg] {
            let mut s = spec(kind, 800, 450);
            s.format = format;
            let data = data_for(&s, 2_000);
            let whole = render(&s, &data).unwrap();
            let staged = plotq_render::draw(&s, &data).unwrap().encode();
            assert_eq!(whole.bytes, staged.bytes, "{kind:?} {format:?}");
            assert_eq!(
                (whole.content_type, whole.n_samples),
                (staged.content_type, staged.n_samples)
            );
        }
    }
    let s = spec(PlotKind::Histogram, 800, 450);
    let empty = PlotData {
        series: Vec::new(),
        ..data_for(&s, 0)
    };
    assert!(matches!(
        plotq_render::draw(&s, &empty),
        Err(RenderError::NoData)
    ));
}

#[test]
fn degenerate_data_renders_or_fails_precisely() {
    let mut outlier: Vec<f64> = (0..10_000).map(|i| 10.0 + (i % 50) as f64).collect();
    outlier.push(1e9);
    let cases: [(&str, Vec<f64>); 5] = [
        ("one", vec![42.0]),
        ("equal", vec![7.0; 1000]),
        ("outlier", outlier),
        ("negative", vec![-5.0, 0.0, 3.0, -1.0]),
        ("zeros", vec![0.0; 100]),
    ];
    for &kind in PlotKind::ALL {
        for log_x in [false, true] {
            if log_x && !matches!(kind, PlotKind::Histogram | PlotKind::Cdf) {
                continue;
            }
            for (name, values) in &cases {
                let mut s = spec(kind, 1000, 600);
                s.log_x = log_x;
                let n = values.len() as i64;
                let data = PlotData {
                    from_ms: UNTIL - 600_000,
                    until_ms: UNTIL,
                    series: vec![SeriesData {
                        service: "x".into(),
                        timestamps_ms: (0..n).map(|i| UNTIL - 600_000 + i * 600_000 / n).collect(),
                        values: values.clone(),
                        weight: 1.0,
                    }],
                    note: None,
                    annotations: Vec::new(),
                };
                match render(&s, &data) {
                    Ok(out) => {
                        assert_eq!(decode(&out.bytes).0, 1000);
                        dump(
                            &format!("degenerate_{}_{name}_{log_x}.png", kind.as_str()),
                            &out.bytes,
                        );
                    }
                    Err(RenderError::Unplottable(why)) => {
                        let log_axis = log_x || kind == PlotKind::Heatmap;
                        assert!(log_axis && why.contains("≤ 0"), "{kind:?}/{name}: {why}");
                    }
                    Err(e) => panic!("{kind:?}/{name}/log={log_x}: {e}"),
                }
            }
        }
    }
}

/// Stand-ins of rollups (`weight` > 1) count for their weight: in the samples a render
/// reports for every kind, and they draw like the same values at weight 1 otherwise.
#[test]
fn weighted_stand_ins_count_for_their_weight() {
    for kind in PlotKind::ALL {
        let s = spec(*kind, 800, 500);
        let mut data = data_for(&s, 2_000);
        let plain = render(&s, &data).unwrap();
        for series in &mut data.series {
            series.weight = 250.0;
        }
        let weighted = render(&s, &data).unwrap();
        assert_eq!(weighted.n_samples, plain.n_samples * 250, "{kind:?}");
    }
}

#[test]
fn empty_data_is_a_precise_error() {
    let s = spec(PlotKind::Histogram, 1000, 600);
    let data = PlotData {
        from_ms: 0,
        until_ms: 1,
        series: vec![SeriesData::default()],
        note: None,
        annotations: Vec::new(),
    };
    assert!(matches!(render(&s, &data), Err(RenderError::NoData)));
}
