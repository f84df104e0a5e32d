//! Renderer tests: every kind renders a decodable image of the requested size in both
//! themes and formats; output is deterministic; degenerate data renders or fails
//! precisely; golden images pin the look of each kind.
//!
//! `PLOTQ_UPDATE_GOLDEN=1` rewrites the golden files after a deliberate change (commit
//! them with it); `PLOTQ_DUMP_DIR=dir` keeps every rendered image for a look.

use plotq_domain::{ImageFormat, PlotKind, PlotSpec, ServiceName, Theme};
use plotq_render::{PlotData, RenderError, SeriesData, render};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use std::path::PathBuf;

/// 2026-11-22T10:00:00Z: fixed, so golden images do not depend on the clock.
const UNTIL: i64 = 1_795_341_600_000;

fn spec(kind: PlotKind, width: u32, height: u32) -> PlotSpec {
    let mut spec = PlotSpec::new(kind, ServiceName::parse("payment-service").unwrap());
    spec.width = width;
    spec.height = height;
    spec
}

/// Lognormal latencies spread evenly over `span_ms` before `UNTIL`, with a slow mode in
/// the second half (so time plots have a shape); `status` codes instead when asked.
fn series(name: &str, n: usize, span_ms: i64, seed: u64, status: bool) -> SeriesData {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fast = LogNormal::new(3.0, 0.5).unwrap();
    let slow = LogNormal::new(4.6, 0.3).unwrap();
    let mut timestamps_ms = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let ts = UNTIL - span_ms + (i as i64 * span_ms) / n as i64;
        let late = i > n / 2;
        let v = if status {
            let r: f64 = fast.sample(&mut rng);
            match r as u32 {
                0..=9 => 404.0,
                10..=12 if late => 503.0,
                13 => 500.0,
                14..=16 => 301.0,
                17..=19 => 201.0,
                _ => 200.0,
            }
        } else if late && i % 5 == 0 {
            slow.sample(&mut rng)
        } else {
            fast.sample(&mut rng)
        };
        timestamps_ms.push(ts);
        values.push(v);
    }
    SeriesData {
        service: name.to_owned(),
        timestamps_ms,
        values,
        weight: 1.0,
    }
}

fn data_for(spec: &PlotSpec, n: usize) -> PlotData {
    let span = spec.range.span_ms();
    let status = matches!(spec.kind, PlotKind::StatusCodes | PlotKind::ErrorRate);
    PlotData {
        from_ms: UNTIL - span,
        until_ms: UNTIL,
        series: spec
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| series(s.as_str(), n, span, 1 + i as u64, status))
            .collect(),
        note: None,
    }
}

/// Width, height and RGB pixels (palette expanded, so palette order does not matter).
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn dump(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("PLOTQ_DUMP_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), bytes).unwrap();
    }
}

#[test]
fn every_kind_renders_at_every_size_and_theme() {
    for &kind in PlotKind::ALL {
        for (w, h) in [(1000, 600), (400, 250), (3000, 1500)] {
            for theme in [Theme::Light, Theme::Dark] {
                let mut s = spec(kind, w, h);
                s.theme = theme;
                if kind != PlotKind::Histogram && kind != PlotKind::Cdf {
                    s.range =
                        plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
                }
                let out = render(&s, &data_for(&s, 20_000))
                    .unwrap_or_else(|e| panic!("{kind:?} {w}x{h}: {e}"));
                let (dw, dh, _) = decode(&out.bytes);
                assert_eq!((dw, dh), (w, h), "{kind:?}");
                dump(
                    &format!("{}_{w}x{h}_{theme:?}.png", kind.as_str()),
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
        PlotKind::Cdf,
    ] {
        let mut s = spec(kind, 1000, 600);
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
    };
    assert!(matches!(render(&s, &data), Err(RenderError::NoData)));
}

/// Each kind at 1000×600 from fixed data, compared pixel by pixel with the checked-in
/// reference. Rendering is deterministic, so the tolerance is zero.
#[test]
fn golden_images() {
    for &kind in PlotKind::ALL {
        let mut s = spec(kind, 1000, 600);
        if kind != PlotKind::Histogram && kind != PlotKind::Cdf {
            s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
        }
        let n = if kind == PlotKind::Histogram {
            100_000
        } else {
            20_000
        };
        let out = render(&s, &data_for(&s, n)).unwrap();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/{}_1000x600.png", kind.as_str()));
        if std::env::var("PLOTQ_UPDATE_GOLDEN").is_ok() {
            std::fs::write(&path, &out.bytes).unwrap();
        }
        let want = std::fs::read(&path).unwrap_or_else(|_| {
            panic!(
                "{} exists (PLOTQ_UPDATE_GOLDEN=1 writes it)",
                path.display()
            )
        });
        let (_, _, got_px) = decode(&out.bytes);
        let (_, _, want_px) = decode(&want);
        assert_eq!(got_px.len(), want_px.len(), "{kind:?}");
        let differing = got_px.iter().zip(&want_px).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{kind:?}: {differing} pixel bytes differ from {}",
            path.display()
        );
    }
}
