//! Golden images: each kind at 1000×600 (and a week's dense correlation), and histogram and throughput on the smallest
//! and largest screens, compared pixel by pixel with the references in `tests/golden/`
//! (rendering is deterministic, so the tolerance is zero). `PLOTQ_UPDATE_GOLDEN=1`
//! rewrites them after a deliberate change (commit them with it).

use crate::helpers::{data_for, decode, dump, spec};
use plotq_domain::{PlotKind, PlotSpec};
use plotq_render::render;
use std::path::PathBuf;

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

/// A correlation of a week by the minute: 10,080 points, drawn as density shading.
#[test]
fn golden_dense_correlation() {
    let mut s = spec(PlotKind::Correlation, 1000, 600);
    s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("7d").unwrap());
    check_golden(&s, 400_000, "correlation_7d_1000x600.png");
}

/// Status codes of three services side by side: grouped bars of shares.
#[test]
fn golden_compared_status_codes() {
    let mut s = spec(PlotKind::StatusCodes, 1000, 600);
    s.services = ["checkout", "payments", "search"]
        .iter()
        .map(|n| plotq_domain::ServiceName::parse(n).unwrap())
        .collect();
    check_golden(&s, 20_000, "status_codes_compared_1000x600.png");
}

/// Heatmaps of three services as small multiples, each on its own colour scale.
#[test]
fn golden_compared_heatmaps() {
    let mut s = spec(PlotKind::Heatmap, 1000, 900);
    s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
    s.services = ["checkout", "payments", "search"]
        .iter()
        .map(|n| plotq_domain::ServiceName::parse(n).unwrap())
        .collect();
    check_golden(&s, 20_000, "heatmap_compared_1000x900.png");
}

/// Correlations of three services on one chart: a colour, a trend and coefficients each.
#[test]
fn golden_compared_correlations() {
    let mut s = spec(PlotKind::Correlation, 1000, 600);
    s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
    s.services = ["checkout", "payments", "search"]
        .iter()
        .map(|n| plotq_domain::ServiceName::parse(n).unwrap())
        .collect();
    check_golden(&s, 20_000, "correlation_compared_1000x600.png");
}

/// Annotations on a time axis: a deploy, a rollback four minutes later (its text in the
/// second row), one too long for its row (cut short), one near the right edge (its
/// text left of its line), one before the window (not drawn); throughput and the
/// heatmap, whose legends count them.
#[test]
fn golden_annotations() {
    for kind in [PlotKind::LatencyTimeseries, PlotKind::Heatmap] {
        let mut s = spec(kind, 1000, 600);
        s.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse("1h").unwrap());
        let mut data = data_for(&s, 20_000);
        let at = |minutes: i64, text: &str| plotq_domain::Annotation {
            id: format!("{minutes}"),
            time_ms: data.from_ms + minutes * 60_000,
            text: text.to_owned(),
            services: vec![plotq_domain::ServiceName::parse("checkout").unwrap()],
        };
        data.annotations = vec![
            at(-5, "before the window"),
            at(12, "deploy v42"),
            at(16, "rollback to v41"),
            at(
                31,
                "feature flag new-checkout-flow enabled for 50% of traffic",
            ),
            at(59, "incident #118"),
        ];
        check_data(
            &s,
            data,
            &format!("annotations_{}_1000x600.png", kind.as_str()),
        );
    }
}

/// Renders `spec` over `n` samples and compares it with `tests/golden/{name}` (which
/// `PLOTQ_UPDATE_GOLDEN=1` rewrites), naming the box of the differing pixels.
fn check_golden(spec: &PlotSpec, n: usize, name: &str) {
    check_data(spec, data_for(spec, n), name);
}

/// Renders `spec` over `data` and compares it with `tests/golden/{name}`.
fn check_data(spec: &PlotSpec, data: plotq_render::PlotData, name: &str) {
    let out = render(spec, &data).unwrap();
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
