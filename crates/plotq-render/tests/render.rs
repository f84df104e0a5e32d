//! Renderer tests: every kind renders a decodable image of the requested size and scale
//! in both themes and formats; output is deterministic; degenerate data renders or fails
//! precisely; golden images pin the look of each kind at 1000×600, and of histogram and
//! throughput on the smallest and largest screens; text measured in the pixels scales
//! with `scale` and stays legible; the reported time axis is the picture's; a partial
//! last time bucket draws no dip.
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
        check_golden(&s, n, &format!("{}_1000x600.png", kind.as_str()));
    }
}

/// Renders `spec` over `n` samples and compares it with `tests/golden/{name}` (which
/// `PLOTQ_UPDATE_GOLDEN=1` rewrites), naming the box of the differing pixels.
fn check_golden(spec: &PlotSpec, n: usize, name: &str) {
    let out = render(spec, &data_for(spec, n)).unwrap();
    dump(name, &out.bytes);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("PLOTQ_UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &out.bytes).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|_| {
        panic!(
            "{} exists (PLOTQ_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    let (w, h, got_px) = decode(&out.bytes);
    let (ww, wh, want_px) = decode(&want);
    assert_eq!((w, h), (ww, wh), "{name}");
    let channels = got_px.len() / (w * h) as usize;
    let differing: Vec<(usize, usize)> = got_px
        .chunks(channels)
        .zip(want_px.chunks(channels))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| (i % w as usize, i / w as usize))
        .collect();
    if let (Some(x0), Some(x1), Some(y0), Some(y1)) = (
        differing.iter().map(|p| p.0).min(),
        differing.iter().map(|p| p.0).max(),
        differing.iter().map(|p| p.1).min(),
        differing.iter().map(|p| p.1).max(),
    ) {
        panic!(
            "{name}: {} pixels differ from {}, within x {x0}..={x1}, y {y0}..={y1}",
            differing.len(),
            path.display()
        );
    }
}

/// The smallest and largest screens: a 320×180 panel at scale 1, a phone's 400×225
/// panel at devicePixelRatio 3 (a 1200×675 image at scale 3) and a 4K image at scale 1.
const SCREENS: [(u32, u32, u32); 3] = [(320, 180, 1), (1200, 675, 3), (3840, 2160, 1)];

/// Histogram and throughput on the smallest and largest screens, pinned like the
/// 1000×600 ones: the look of type, margins and lines at both ends of the size range.
#[test]
fn golden_images_at_the_smallest_and_largest_sizes() {
    for (w, h, scale) in SCREENS {
        for kind in [PlotKind::Histogram, PlotKind::Throughput] {
            let mut s = spec(kind, w, h);
            s.scale = scale;
            if kind == PlotKind::Throughput {
                s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
            }
            let at = if scale == 1 {
                String::new()
            } else {
                format!("_scale{scale}")
            };
            check_golden(&s, 20_000, &format!("{}_{w}x{h}{at}.png", kind.as_str()));
        }
    }
}

/// Bands of rows (first, last) with ink in columns `xs` of an RGB image `w` wide: pixels
/// darker than the grid and the translucent fills (every channel below 200), which on
/// the light theme is text, axes and strokes.
fn ink_bands(rgb: &[u8], w: u32, xs: std::ops::Range<u32>) -> Vec<(u32, u32)> {
    let h = rgb.len() as u32 / 3 / w;
    let inked = |y: u32| {
        xs.clone().any(|x| {
            let at = ((y * w + x) * 3) as usize;
            rgb[at..at + 3].iter().all(|c| *c < 200)
        })
    };
    let mut bands: Vec<(u32, u32)> = Vec::new();
    for y in 0..h {
        if inked(y) {
            match bands.last_mut() {
                Some(last) if last.1 + 1 == y => last.1 = y,
                _ => bands.push((y, y)),
            }
        }
    }
    bands
}

/// Ink heights in image pixels of the title (the top band) and of the x tick labels
/// (the band above the axis description, the bottom band), measured in the middle
/// columns of a throughput plot, where nothing else is drawn above the title or below
/// the axis.
fn text_heights(w: u32, h: u32, scale: u32) -> (u32, u32) {
    let mut s = spec(PlotKind::Throughput, w, h);
    s.scale = scale;
    s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
    let out = render(&s, &data_for(&s, 5_000)).unwrap();
    let (_, _, rgb) = decode(&out.bytes);
    let bands = ink_bands(&rgb, w, w / 4..w * 3 / 4);
    assert!(bands.len() >= 4, "{w}x{h}@{scale}: {bands:?}");
    let height = |b: (u32, u32)| b.1 - b.0 + 1;
    (height(bands[0]), height(bands[bands.len() - 2]))
}

/// Text measured in the pixels: at the same layout, scale 3 draws it three times as
/// tall as scale 1; tick labels (digits, about 0.73 of the type size) stay at least 7
/// layout pixels tall on the smallest layouts, and grow, capped, on a 4K image.
#[test]
fn text_scales_with_the_scale_and_stays_legible() {
    for (w, h) in [(400, 225), (320, 180), (200, 150)] {
        let (title_1, tick_1) = text_heights(w, h, 1);
        let (title_3, tick_3) = text_heights(w * 3, h * 3, 3);
        for (one, three) in [(title_1, title_3), (tick_1, tick_3)] {
            let ratio = three as f64 / one as f64;
            assert!(
                (2.6..=3.4).contains(&ratio),
                "{w}x{h}: {one} px at scale 1, {three} px at scale 3"
            );
        }
        assert!(tick_1 >= 7, "{w}x{h}: tick labels {tick_1} layout px tall");
        // (At 200 wide a title shrinks to fit, to the axis descriptions' size at least.)
        assert!(title_1 >= 9, "{w}x{h}: title {title_1} layout px tall");
        assert!(tick_3 >= 20, "{w}x{h}@3: tick labels {tick_3} px tall");
    }
    let (_, tick_1000) = text_heights(1000, 600, 1);
    let (title_4k, tick_4k) = text_heights(3840, 2160, 1);
    assert!(
        tick_4k > tick_1000 * 3 / 2 && tick_4k <= tick_1000 * 2 + 1,
        "4K tick labels {tick_4k} px vs {tick_1000} at 1000x600"
    );
    assert!(title_4k <= 60, "4K title {title_4k} px");
}

/// The time axis a time plot reports is the picture's: the y axis line runs down
/// the column just left of `left_px` (the plot area's first column), and the tick marks of the window's first and last minute (09:00
/// and 10:00, both ticks) hang below the x axis at `left_px` and `right_px`.
#[test]
fn the_time_axis_is_where_the_picture_has_it() {
    let muted = [90u8, 90, 90];
    for kind in [
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
        PlotKind::ErrorRate,
        PlotKind::Heatmap,
    ] {
        for (w, h, scale) in [(1000, 600, 1), (1200, 675, 3), (800, 600, 4)] {
            let mut s = spec(kind, w, h);
            s.scale = scale;
            s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
            let data = data_for(&s, 5_000);
            let out = render(&s, &data).unwrap();
            let axis = out.time_axis.expect("a time plot has a time axis");
            assert_eq!((axis.from_ms, axis.until_ms), (data.from_ms, data.until_ms));
            let (_, _, rgb) = decode(&out.bytes);
            let px = |x: u32, y: u32| {
                let at = ((y * w + x) * 3) as usize;
                [rgb[at], rgb[at + 1], rgb[at + 2]]
            };
            // The x axis: the row with the longest run of the axis colour.
            let axis_y = (0..h)
                .max_by_key(|&y| (0..w).filter(|&x| px(x, y) == muted).count())
                .unwrap();
            let column = |x: u32| (0..axis_y).filter(|&y| px(x, y) == muted).count();
            let what = format!("{kind:?} {w}x{h}@{scale}: {axis:?}, x axis at row {axis_y}");
            // The y axis hugs the plot area: a stroke `scale` wide centred on the column
            // just left of left_px, and nothing of it right of that stroke.
            let axis_line = |x: u32| column(x) as u32 > axis_y / 2;
            assert!(
                axis_line(axis.left_px - 1),
                "no y axis at left_px - 1; {what}"
            );
            assert!(
                !axis_line(axis.left_px + scale),
                "the y axis is right of left_px; {what}"
            );

            // Tick marks are `scale` pixels wide around their column, 5 layout px long.
            let below = axis_y + scale + 2;
            for x in [axis.left_px, axis.right_px] {
                let near: Vec<u32> = (x.saturating_sub(scale)..=x + scale)
                    .filter(|&c| c < w && px(c, below) == muted)
                    .collect();
                assert!(near.contains(&x), "no tick mark at {x} ({near:?}); {what}");
            }
            // Nothing of the axis colour right of right_px on the axis row but a stroke's
            // width.
            assert!(
                (axis.right_px + scale + 1..w).all(|x| px(x, axis_y) != muted),
                "the x axis runs past right_px; {what}"
            );
        }
    }
    let hist = spec(PlotKind::Histogram, 1000, 600);
    assert_eq!(
        render(&hist, &data_for(&hist, 100)).unwrap().time_axis,
        None
    );
}

/// A window that ends inside a bucket, with the last seconds not ingested yet, draws
/// no dip at the right edge: at a steady 10 samples a second every point of the line is
/// on one row (before, the partial last bucket was drawn at two thirds of the rate).
#[test]
fn a_partial_last_bucket_draws_no_dip() {
    let until = UNTIL + 30_000;
    let from = until - 3_600_000;
    // Every 100 ms until 10 s before the end (ingest lag).
    let timestamps_ms: Vec<i64> = (from..until - 10_000).step_by(100).collect();
    for kind in [PlotKind::Throughput, PlotKind::ErrorRate] {
        let s = spec(kind, 1000, 600);
        let values = timestamps_ms
            .iter()
            .enumerate()
            .map(|(i, _)| if i % 10 == 0 { 503.0 } else { 200.0 })
            .collect();
        let data = PlotData {
            from_ms: from,
            until_ms: until,
            series: vec![SeriesData {
                service: "x".into(),
                timestamps_ms: timestamps_ms.clone(),
                values,
                weight: 1.0,
            }],
            note: None,
        };
        let out = render(&s, &data).unwrap();
        dump(&format!("partial_{}.png", kind.as_str()), &out.bytes);
        let axis = out.time_axis.unwrap();
        let (w, h, rgb) = decode(&out.bytes);
        // The line's colour: tab10 blue for throughput, the mean's red for errors.
        let line = if kind == PlotKind::Throughput {
            [31u8, 119, 180]
        } else {
            [214u8, 39, 40]
        };
        let rows: Vec<u32> = (0..h)
            .filter(|&y| {
                (axis.left_px..=axis.right_px.min(w - 1)).any(|x| {
                    let at = ((y * w + x) * 3) as usize;
                    rgb[at..at + 3] == line
                })
            })
            .collect();
        // The line's rows, and the legend's marker above it: no row far below the line.
        let lowest = *rows.last().unwrap();
        let line_rows: Vec<&u32> = rows.iter().filter(|&&y| y + 8 >= lowest).collect();
        assert!(
            line_rows.len() <= 4,
            "{kind:?}: the line spans rows {rows:?}"
        );
    }
}
