//! Time-series kinds on a UTC time axis, bucketed by a calendar-friendly width chosen
//! from the range (one-minute buckets for an hour):
//! `latency_timeseries` (p50/p95/p99, optionally max, per bucket; one service's p50 and
//! p99 each when comparing), `throughput` (samples per second; an area for one series, a line each
//! when comparing) and `error_rate` (share
//! of 5xx status codes, or of non-zero values for a flag metric, in percent).
//! Empty buckets are gaps in a line, never invented zeros — except for throughput, where
//! no samples really is zero per second.
//!
//! The window is inclusive (`[from, until]`); bucket counts are bounded by the layout
//! width (`series::max_time_buckets`). A partial last bucket (the window ends inside it:
//! not all elapsed, and with ingest lag not all arrived) is not drawn — it would read as
//! a drop at the right edge — unless no earlier bucket has a sample; the legends' totals
//! and means still count every sample of the window. Latency's value axis starts at 0, or lower when values are negative, and any
//! finite values fit it (the headroom stops at `f64::MAX`).

use super::common::{Area, Buckets, runs, time_axis, time_x_axis};
use crate::axis;
use crate::data::{PlotData, RenderError, SeriesData, drawing_error};
use crate::frame::{self, Axis, Chart, Ctx, draw_legend, stroke};
use plotq_domain::TimeAxis;
use plotq_domain::{series, stats};
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;

/// Buckets per plot, at most: about 60 (a minute each for an hour), fewer when the
/// layout is narrow.
fn max_buckets(ctx: &Ctx<'_>) -> usize {
    series::max_time_buckets(ctx.layout.0)
}

/// `series` grouped into as many time buckets of the window as the width shows.
fn window_buckets(ctx: &Ctx<'_>, series: &SeriesData) -> Buckets {
    Buckets::group(
        &series.timestamps_ms,
        &series.values,
        ctx.from_ms,
        ctx.until_ms,
        axis::bucket_ms(span(ctx), max_buckets(ctx)),
    )
}

/// The window's span, for choosing bucket widths.
fn span(ctx: &Ctx<'_>) -> i64 {
    axis::span_ms(ctx.from_ms, ctx.until_ms)
}

/// `[bottom, top]` (bottom ≤ 0 ≤ top) stretched upward by `headroom` for the legend,
/// computed in halves so no span overflows; the top stops at `f64::MAX`. With
/// `bottom == 0` this is `[0, top · headroom]`, bit for bit.
fn with_headroom(bottom: f64, top: f64, headroom: f64) -> (f64, f64) {
    let half = top * 0.5 - bottom * 0.5;
    let y_max = (bottom + half * 2.0 * headroom).min(f64::MAX);
    (bottom, if y_max.is_finite() { y_max } else { f64::MAX })
}

/// Builds the chart with a time x axis and a linear y axis `[y_lo, y_max]`, draws the
/// mesh and hands it to `body`; returns where the time axis is.
fn with_time_chart<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    (y_lo, y_max): (f64, f64),
    y_desc: &str,
    y_suffix: &str,
    body: impl FnOnce(&mut Chart<'_, DB>) -> Result<(), RenderError>,
) -> Result<TimeAxis, RenderError> {
    let (y_ticks, y_step) = axis::linear_ticks(y_lo, y_max, ctx.max_y_ticks());
    let mut chart = frame::chart(
        root,
        ctx,
        time_x_axis(ctx),
        Axis {
            ticks: axis::TickedAxis::linear(y_lo, y_max, y_ticks),
            label: Box::new(|v: &f64| format!("{}{y_suffix}", axis::format_tick(*v, y_step))),
            desc: y_desc,
        },
    )?;
    body(&mut chart)?;
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(time_axis(&chart, ctx))
}

fn line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    ctx: &Ctx<'_>,
    points: &[Option<(f64, f64)>],
    style: ShapeStyle,
    dashed: bool,
    label: String,
) -> Result<(), RenderError> {
    let marker = ctx.marker();
    let mut labelled = false;
    for run in runs(points) {
        let anno = if dashed {
            let (dash, gap) = (ctx.ts.tick as i32 * 2 / 3, ctx.ts.tick as i32 / 3);
            chart
                .draw_series(DashedLineSeries::new(run, dash, gap, style))
                .map_err(drawing_error)?
        } else if run.len() == 1 {
            // A lone bucket between gaps would be invisible as a line: draw a dot.
            let r = (style.stroke_width + ctx.thin()) as i32;
            chart
                .draw_series(run.into_iter().map(|p| Circle::new(p, r, style.filled())))
                .map_err(drawing_error)?
        } else {
            chart
                .draw_series(LineSeries::new(run, style))
                .map_err(drawing_error)?
        };
        if !labelled {
            anno.label(ctx.legend_label(label.clone()))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
            labelled = true;
        }
    }
    Ok(())
}

/// One bucket's point: its x (ms) and [p50, p95, p99, max]; `None` when empty.
type BucketStats = Option<(f64, [f64; 4])>;

pub(crate) fn latency<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<TimeAxis, RenderError> {
    let width_ms = axis::bucket_ms(span(ctx), max_buckets(ctx));
    let single = data.series.len() == 1;
    // Per series: per bucket (x, [p50, p95, p99, max]).
    let mut all: Vec<(&str, Vec<BucketStats>)> = Vec::new();
    let mut peak: f64 = 0.0;
    // The lowest line drawn is p50; below zero only for negative values.
    let mut low: f64 = 0.0;
    for s in &data.series {
        let buckets = Buckets::group(
            &s.timestamps_ms,
            &s.values,
            ctx.from_ms,
            ctx.until_ms,
            width_ms,
        );
        let per: Vec<BucketStats> = (0..buckets.drawn)
            .map(|b| {
                let values = buckets.bucket(b);
                let (min, max, _) = stats::extent(values)?;
                let [p50, p95, p99] = stats::percentiles(values, min, max, [0.5, 0.95, 0.99]);
                Some((
                    buckets.center_ms(b, ctx.from_ms, ctx.until_ms),
                    [p50, p95, p99, max],
                ))
            })
            .collect();
        for (_, q) in per.iter().flatten() {
            peak = peak.max(if ctx.spec.show_max { q[3] } else { q[2] });
            low = low.min(q[0]);
        }
        all.push((&s.service, per));
    }
    if all.iter().all(|(_, per)| per.iter().all(Option::is_none)) {
        return Err(RenderError::NoData);
    }
    let entries = if single {
        3 + usize::from(ctx.spec.show_max)
    } else {
        (2 + usize::from(ctx.spec.show_max)) * all.len()
    };
    let (y_lo, y_max) = with_headroom(low, peak, ctx.headroom(entries));
    let y_range = (y_lo, y_max.max(y_lo + 1e-9));
    let width = ctx.line_width();
    let y_desc = ctx.value_desc.clone();
    with_time_chart(root, ctx, y_range, &y_desc, "", |chart| {
        let pick = |per: &[BucketStats], k: usize| -> Vec<Option<(f64, f64)>> {
            per.iter().map(|p| p.map(|(x, q)| (x, q[k]))).collect()
        };
        if single {
            let per = &all[0].1;
            let quantiles = [
                (0, ctx.theme.series[0], "p50"),
                (1, ctx.theme.p95, "p95"),
                (2, ctx.theme.p99, "p99"),
            ];
            for (k, color, label) in quantiles {
                line(
                    chart,
                    ctx,
                    &pick(per, k),
                    stroke(color, width),
                    false,
                    label.into(),
                )?;
            }
            if ctx.spec.show_max {
                line(
                    chart,
                    ctx,
                    &pick(per, 3),
                    stroke(ctx.theme.muted, ctx.thin()),
                    true,
                    "max".into(),
                )?;
            }
        } else {
            for (i, (name, per)) in all.iter().enumerate() {
                let color = ctx.theme.series[i % 8];
                line(
                    chart,
                    ctx,
                    &pick(per, 2),
                    stroke(color, width),
                    false,
                    format!("{name} p99"),
                )?;
                line(
                    chart,
                    ctx,
                    &pick(per, 0),
                    stroke(color, ctx.thin()),
                    true,
                    format!("{name} p50"),
                )?;
                // `show_max`: each service's max, thin and solid in its colour (the
                // axis already reaches it).
                if ctx.spec.show_max {
                    line(
                        chart,
                        ctx,
                        &pick(per, 3),
                        stroke(color, ctx.thin()),
                        false,
                        format!("{name} max"),
                    )?;
                }
            }
        }
        Ok(())
    })
}

/// One series' samples per second over the plot's buckets, its count in the window and
/// its mean rate.
struct Rates<'d> {
    name: &'d str,
    points: Vec<(f64, f64)>,
    total: usize,
    mean: f64,
    peak: f64,
}

pub(crate) fn throughput<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<TimeAxis, RenderError> {
    let window = ctx.from_ms..=ctx.until_ms;
    let all: Vec<Rates<'_>> = data
        .series
        .iter()
        .map(|s| {
            // The rates the statistics report as `peak_rate_per_s`
            // (`plotq_domain::series`), without a partial last bucket.
            let buckets = series::bucket_rates(
                &s.timestamps_ms,
                s.weight,
                ctx.from_ms,
                ctx.until_ms,
                axis::bucket_ms(span(ctx), max_buckets(ctx)),
            );
            let points: Vec<(f64, f64)> =
                buckets.iter().map(|b| (b.center_ms(), b.per_s)).collect();
            let total = s
                .timestamps_ms
                .iter()
                .filter(|t| window.contains(t))
                .count();
            // The window is inclusive and non-empty (`render` checks `from < until`).
            let mean = total as f64 * s.weight / (span(ctx) as f64 / 1000.0);
            let peak = points.iter().map(|r| r.1).fold(0.0, f64::max);
            Rates {
                name: s.service.as_str(),
                points,
                total,
                mean,
                peak,
            }
        })
        .collect();
    if all.iter().all(|r| r.total == 0) {
        return Err(RenderError::NoData);
    }
    let peak = all.iter().map(|r| r.peak).fold(0.0, f64::max);
    // Low rates keep their own scale (0.08 req/s is not drawn against an axis to 1).
    let y_max = if peak > 0.0 {
        peak * ctx.headroom(all.len())
    } else {
        1.0
    };
    let single = all.len() == 1;
    let width = ctx.line_width();
    let marker = ctx.marker();
    with_time_chart(
        root,
        ctx,
        (0.0, y_max),
        "Requests per second",
        "",
        |chart| {
            for (i, r) in all.iter().enumerate() {
                let color = ctx.theme.series[i % 8];
                // One series is an area; several are lines, so none hides another.
                let fill = if single {
                    color.mix(0.25)
                } else {
                    color.mix(0.0)
                };
                chart
                    .draw_series(
                        AreaSeries::new(r.points.iter().copied(), 0.0, fill)
                            .border_style(stroke(color, width)),
                    )
                    .map_err(drawing_error)?
                    .label(ctx.legend_label(format!(
                        "{} req/s (mean {:.1}, peak {:.1})",
                        r.name, r.mean, r.peak
                    )))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + marker, y)], stroke(color, width))
                    });
            }
            Ok(())
        },
    )
}

/// One series' error shares per bucket (gaps where a bucket is empty), its errors and
/// its samples in the window.
type ErrorShares<'d> = (&'d str, Vec<Option<(f64, f64)>>, usize, usize);

pub(crate) fn error_rate<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<TimeAxis, RenderError> {
    let metric = ctx.spec.metric.as_str();
    // Per series: its points, its errors and samples over the whole window (the
    // statistics' error ratio counts every sample).
    let all: Vec<ErrorShares<'_>> = data
        .series
        .iter()
        .map(|s| {
            let buckets = window_buckets(ctx, s);
            let errors = series::error_count(metric, &buckets.values) as usize;
            let points = (0..buckets.drawn)
                .map(|b| {
                    let values = buckets.bucket(b);
                    if values.is_empty() {
                        return None;
                    }
                    let errors = series::error_count(metric, values);
                    Some((
                        buckets.center_ms(b, ctx.from_ms, ctx.until_ms),
                        errors as f64 / values.len() as f64 * 100.0,
                    ))
                })
                .collect();
            (s.service.as_str(), points, errors, buckets.values.len())
        })
        .collect();
    if all.iter().all(|(_, _, _, total)| *total == 0) {
        return Err(RenderError::NoData);
    }
    let peak = all
        .iter()
        .flat_map(|(_, points, _, _)| points.iter().flatten())
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let headroom = ctx.headroom(all.len());
    // Small rates stay readable: never squash the axis below 1 %.
    let y_max = (peak * headroom).clamp(1.0, 100.0 * headroom);
    let single = all.len() == 1;
    let width = ctx.line_width();
    with_time_chart(root, ctx, (0.0, y_max), "Errors (%)", "%", |chart| {
        for (i, (name, points, errors, total)) in all.iter().enumerate() {
            if *total == 0 {
                continue;
            }
            let color = if single {
                ctx.theme.mean
            } else {
                ctx.theme.series[i % 8]
            };
            let overall = *errors as f64 / *total as f64 * 100.0;
            let label = format!("{name} errors: {overall:.2}% of {total} samples");
            line(chart, ctx, points, stroke(color, width), false, label)?;
        }
        Ok(())
    })
}
