//! What the pixels say: text measured in the image scales with `scale` and stays
//! legible; the time axis a time plot reports is where the picture has it; a partial
//! last time bucket draws no dip.

use crate::helpers::{UNTIL, data_for, decode, dump, spec};
use plotq_domain::PlotKind;
use plotq_render::{PlotData, SeriesData, render};

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
            annotations: Vec::new(),
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
