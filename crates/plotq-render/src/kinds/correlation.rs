//! `correlation`: one statistic of a metric (y) against one of another or the same
//! metric (x), a point per whole time bucket where both have a value
//! (`plotq_domain::correlation`, the very points the job's statistics fit), drawn as
//! dots — or, past [`DENSE_POINTS`], as density shading over a grid of cells, so a week
//! of minutes is a shape rather than a blot — with the least-squares line and Pearson's
//! and Spearman's coefficients in the legend.
//!
//! Compared services (a pair of series, y then x, each): one colour each — dots (at
//! most [`DENSE_POINTS`] a service, evenly thinned past it), its trend line, and its
//! coefficients in its legend entry.
//!
//! Any finite points fit the axes (spans are formed in halves; the headroom stops at
//! `f64::MAX`); a single value on an axis gets a widened range. At most
//! [`MAX_POINTS`](plotq_domain::correlation::MAX_POINTS) points and
//! [`MAX_CELLS`] cells are drawn.

use super::common::Area;
use crate::axis;
use crate::data::{PlotData, RenderError, SeriesData, drawing_error};
use crate::frame::{self, Axis, Ctx, draw_legend, stroke};
use plotq_domain::correlation::{self, Buckets, Fit, Point, Samples};
use plotq_domain::stats;
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;

/// Points drawn one dot each, at most; more are shaded by density.
pub(crate) const DENSE_POINTS: usize = 1_500;
/// Most cells of density shading (a 60 × 40 grid).
const MAX_CELLS: usize = 60 * 40;

pub(crate) fn correlation<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    let spec = ctx.spec;
    let Some(c) = &spec.correlation else {
        return Err(RenderError::Unplottable(
            "a correlation needs its x and y statistics".to_owned(),
        ));
    };
    if data.series.len() > 2 {
        return compared(root, ctx, data);
    }
    let empty = SeriesData::default();
    let y = data.series.first().unwrap_or(&empty);
    let x = data.series.get(1).unwrap_or(&empty);
    let buckets = Buckets::new(data.from_ms, data.until_ms, c.bucket.millis());
    let points = pair_points(ctx, (y, x), &buckets);
    if points.is_empty() {
        return Err(RenderError::NoData);
    }
    let fit = Fit::of(&points);
    let extent = |v: Vec<f64>| {
        let (lo, hi, _) = stats::extent(&v).unwrap_or((0.0, 1.0, 0.0));
        if lo < hi { (lo, hi) } else { stats::widen(lo) }
    };
    let (x_data, y_data) = (
        extent(points.iter().map(|p| p.x).collect()),
        extent(points.iter().map(|p| p.y).collect()),
    );
    // A margin of 3 % of the span at both ends, so no dot is cut by an axis.
    let (x_lo, x_hi) = padded(x_data);
    let (y_lo, y_hi) = padded(y_data);
    let dense = points.len() > DENSE_POINTS;
    let entries = 2 + usize::from(dense);
    let half = y_hi * 0.5 - y_lo * 0.5;
    let y_top = (y_lo + half * 2.0 * ctx.headroom(entries)).clamp(y_hi, f64::MAX);
    let x_desc = match &c.x_service {
        Some(service) => format!("{} of {service}", c.x_stat.describe(c.x_metric.as_str())),
        None => c.x_stat.describe(c.x_metric.as_str()),
    };
    let y_desc = c.stat.describe(spec.metric.as_str());
    let mut chart = scatter(root, ctx, ((x_lo, x_hi), &x_desc), ((y_lo, y_top), &y_desc))?;
    let marker = ctx.marker();
    let color = ctx.theme.series[0];
    let buckets_label = format!("{} buckets of {}", points.len(), c.bucket);
    if dense {
        let (cells, peak) = density(&points, x_data, y_data, ctx);
        let ln_peak = (peak as f64 + 1.0).ln();
        chart
            .draw_series(cells.iter().map(|cell| {
                let t = (cell.count as f64 + 1.0).ln() / ln_peak;
                // Never the background colour itself: an occupied cell stays visible.
                Rectangle::new(cell.corners, ctx.theme.ramp_at(0.12 + 0.88 * t).filled())
            }))
            .map_err(drawing_error)?
            .label(ctx.legend_label(format!("{buckets_label} (darker = more)")))
            .legend(move |(x, y)| {
                Rectangle::new(
                    [(x, y - marker / 4), (x + marker, y + marker / 4)],
                    color.filled(),
                )
            });
    } else {
        let radius = (ctx.line_width() as i32 + 1).max(2);
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.y), radius, color.mix(0.75).filled())),
            )
            .map_err(drawing_error)?
            .label(ctx.legend_label(buckets_label))
            .legend(move |(x, y)| Circle::new((x + marker / 2, y), radius, color.filled()));
    }
    let coefficients = match (fit.pearson, fit.spearman) {
        (Some(r), Some(rho)) => format!("Pearson r = {r:.2}, Spearman ρ = {rho:.2}"),
        _ => "no correlation: too few points or no spread".to_owned(),
    };
    if let (Some(slope), Some(intercept)) = (fit.slope, fit.intercept) {
        let style = stroke(ctx.theme.p99, ctx.line_width());
        let line = trend(slope, intercept, (x_lo, x_hi), (y_lo, y_top));
        chart
            .draw_series(LineSeries::new(line, style))
            .map_err(drawing_error)?
            .label(ctx.legend_label(format!("trend · {coefficients}")))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
    } else {
        super::common::legend_note(&mut chart, ctx, coefficients)?;
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// A pair's points (y's statistic against x's, a point per whole bucket where both
/// have one), as the spec's correlation asks.
fn pair_points(ctx: &Ctx<'_>, (y, x): (&SeriesData, &SeriesData), buckets: &Buckets) -> Vec<Point> {
    let spec = ctx.spec;
    let Some(c) = &spec.correlation else {
        return Vec::new();
    };
    correlation::points(
        (
            &Samples::new(spec.metric.as_str(), &y.timestamps_ms, &y.values, y.weight),
            c.stat,
        ),
        (
            &Samples::new(c.x_metric.as_str(), &x.timestamps_ms, &x.values, x.weight),
            c.x_stat,
        ),
        buckets,
    )
}

/// The chart of a correlation: value axes over `x` and `y`, each described.
fn scatter<'a, DB: DrawingBackend>(
    root: &'a Area<'_, DB>,
    ctx: &Ctx<'_>,
    ((x_lo, x_hi), x_desc): ((f64, f64), &str),
    ((y_lo, y_top), y_desc): ((f64, f64), &str),
) -> Result<frame::Chart<'a, DB>, RenderError> {
    let (x_ticks, x_label) = {
        let (probe, step) = axis::linear_ticks(x_lo, x_hi, 10);
        let widest = frame::widest(probe.iter().map(|v| axis::format_tick(*v, step)));
        axis::value_axis(x_lo, x_hi, false, ctx.max_x_ticks(widest.max(4)))
    };
    let (y_ticks, y_label) = axis::value_axis(y_lo, y_top, false, ctx.max_y_ticks());
    frame::chart(
        root,
        ctx,
        Axis {
            ticks: x_ticks,
            label: x_label,
            desc: x_desc,
        },
        Axis {
            ticks: y_ticks,
            label: y_label,
            desc: y_desc,
        },
    )
}

/// Several services' correlations on one chart: per pair of series its points, trend and
/// coefficients, in its colour.
fn compared<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    let spec = ctx.spec;
    let Some(c) = &spec.correlation else {
        return Err(RenderError::Unplottable(
            "a correlation needs its x and y statistics".to_owned(),
        ));
    };
    let buckets = Buckets::new(data.from_ms, data.until_ms, c.bucket.millis());
    let pairs: Vec<(&str, Vec<Point>)> = data
        .series
        .chunks_exact(2)
        .map(|pair| {
            let (y, x) = (&pair[0], &pair[1]);
            (y.service.as_str(), pair_points(ctx, (y, x), &buckets))
        })
        .collect();
    let all = || pairs.iter().flat_map(|(_, p)| p.iter());
    if all().next().is_none() {
        return Err(RenderError::NoData);
    }
    let extent = |v: Vec<f64>| {
        let (lo, hi, _) = stats::extent(&v).unwrap_or((0.0, 1.0, 0.0));
        if lo < hi { (lo, hi) } else { stats::widen(lo) }
    };
    let (x_lo, x_hi) = padded(extent(all().map(|p| p.x).collect()));
    let (y_lo, y_hi) = padded(extent(all().map(|p| p.y).collect()));
    let half = y_hi * 0.5 - y_lo * 0.5;
    let y_top = (y_lo + half * 2.0 * ctx.headroom(pairs.len())).clamp(y_hi, f64::MAX);
    let x_desc = c.x_stat.describe(c.x_metric.as_str());
    let y_desc = c.stat.describe(spec.metric.as_str());
    let mut chart = scatter(root, ctx, ((x_lo, x_hi), &x_desc), ((y_lo, y_top), &y_desc))?;
    let marker = ctx.marker();
    let radius = ctx.line_width() as i32;
    for (i, (name, points)) in pairs.iter().enumerate() {
        let color = ctx.theme.series[i % 8];
        // Evenly thinned past DENSE_POINTS: each service's cloud keeps its shape.
        let every = points.len().div_ceil(DENSE_POINTS).max(1);
        chart
            .draw_series(
                points
                    .iter()
                    .step_by(every)
                    .map(|p| Circle::new((p.x, p.y), radius, color.mix(0.6).filled())),
            )
            .map_err(drawing_error)?;
        let fit = Fit::of(points);
        let text = match (fit.pearson, fit.spearman) {
            (Some(r), Some(rho)) => {
                format!("{name}: r = {r:.2}, ρ = {rho:.2} ({} points)", points.len())
            }
            _ => format!("{name}: no correlation ({} points)", points.len()),
        };
        let style = stroke(color, ctx.line_width());
        let line = match (fit.slope, fit.intercept) {
            (Some(slope), Some(intercept)) => trend(slope, intercept, (x_lo, x_hi), (y_lo, y_top)),
            _ => Vec::new(),
        };
        chart
            .draw_series(LineSeries::new(line, style))
            .map_err(drawing_error)?
            .label(ctx.legend_label(text))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// `[lo, hi]` widened by 3 % of its span at each end (computed in halves; the ends stop
/// at `±f64::MAX`).
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let margin = (hi * 0.5 - lo * 0.5) * 0.06;
    ((lo - margin).max(-f64::MAX), (hi + margin).min(f64::MAX))
}

/// The fitted line across the x range, cut to the y range (so it never leaves the plot):
/// at most two points, none when it misses the range.
fn trend(
    slope: f64,
    intercept: f64,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
) -> Vec<(f64, f64)> {
    let at = |x: f64| slope * x + intercept;
    let x_at = |y: f64| (y - intercept) / slope;
    let mut ends = Vec::with_capacity(2);
    for x in [x_lo, x_hi] {
        let y = at(x);
        if y.is_finite() && (y_lo..=y_hi).contains(&y) {
            ends.push((x, y));
        } else if slope != 0.0 {
            let y = if y < y_lo { y_lo } else { y_hi };
            let xc = x_at(y);
            if xc.is_finite() && (x_lo..=x_hi).contains(&xc) {
                ends.push((xc, y));
            }
        }
    }
    if ends.len() == 2 { ends } else { Vec::new() }
}

/// One shaded cell of a dense correlation: its corners and the points in it.
struct Cell {
    corners: [(f64, f64); 2],
    count: u64,
}

/// The points counted into a grid of at most [`MAX_CELLS`] cells (about 16 × 12 layout
/// pixels each), the occupied ones, and the highest count.
fn density(points: &[Point], x: (f64, f64), y: (f64, f64), ctx: &Ctx<'_>) -> (Vec<Cell>, u64) {
    let cols = ((ctx.layout.0 / 16) as usize).clamp(8, 60);
    let rows = ((ctx.layout.1 / 12) as usize).clamp(6, 40);
    debug_assert!(cols * rows <= MAX_CELLS);
    let xs = stats::Affine::new(x.0, x.1, cols);
    let ys = stats::Affine::new(y.0, y.1, rows);
    let mut counts = vec![0u64; cols * rows];
    for p in points {
        let c = (xs.at(p.x) as usize).min(cols - 1);
        let r = (ys.at(p.y) as usize).min(rows - 1);
        counts[r * cols + c] += 1;
    }
    let edge = |(lo, hi): (f64, f64), n: usize, i: usize| {
        // A weighted mean of the ends: no span is formed, so nothing overflows.
        let t = i as f64 / n as f64;
        lo * (1.0 - t) + hi * t
    };
    let peak = counts.iter().copied().max().unwrap_or(1).max(1);
    let cells = counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| {
            let (r, c) = (i / cols, i % cols);
            Cell {
                corners: [
                    (edge(x, cols, c), edge(y, rows, r)),
                    (edge(x, cols, c + 1), edge(y, rows, r + 1)),
                ],
                count: *n,
            }
        })
        .collect();
    (cells, peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_stays_inside_the_plot() {
        // Inside: end to end.
        assert_eq!(
            trend(1.0, 0.0, (0.0, 10.0), (0.0, 10.0)),
            [(0.0, 0.0), (10.0, 10.0)]
        );
        // Steep: cut where it meets the top.
        assert_eq!(
            trend(2.0, 0.0, (0.0, 10.0), (0.0, 10.0)),
            [(0.0, 0.0), (5.0, 10.0)]
        );
        // Outside the range altogether: nothing.
        assert!(trend(0.0, 50.0, (0.0, 10.0), (0.0, 10.0)).is_empty());
        // Huge numbers stay finite.
        for (x, y) in trend(
            f64::MAX,
            -f64::MAX,
            (-f64::MAX, f64::MAX),
            (-f64::MAX, f64::MAX),
        ) {
            assert!(x.is_finite() && y.is_finite());
        }
    }
}
