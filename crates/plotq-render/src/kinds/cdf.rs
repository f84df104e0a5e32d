//! `cdf`: the cumulative distribution of latency, with p50/p90/p99/p99.9 marked for one
//! service, or one curve per service (with its p99 in the legend) for a comparison.
//!
//! The curve is drawn from fine bins (finer than the pixels it spans); the marked
//! percentiles are exact. Any finite values work: bins and percentiles come from
//! `stats` (overflow-free), a single value gets a widened axis.

use super::common::{Area, draw_marks, dropped_note, legend_note, positive_only, weighted};
use crate::axis;
use crate::data::{PlotData, RenderError, drawing_error};
use crate::frame::{self, Axis, Ctx, draw_legend, stroke};
use plotq_domain::stats;
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;

/// Curve resolution: points per curve.
const CURVE_BINS: usize = 1024;

struct Curve<'d> {
    name: &'d str,
    points: Vec<(f64, f64)>,
    marks: [f64; 4],
}

pub(crate) fn cdf<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    let log = ctx.spec.log_x;
    let mut curves = Vec::new();
    let mut dropped = 0;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut kept_all = Vec::new();
    for s in &data.series {
        let (values, d) = if log {
            positive_only(&s.values)
        } else {
            (s.values.clone(), 0)
        };
        // Stand-ins of rollups count for `weight` samples each.
        dropped += weighted(d as u64, s.weight) as usize;
        if let Some((min, max, _)) = stats::extent(&values) {
            lo = lo.min(min);
            hi = hi.max(max);
        }
        kept_all.push((s.service.as_str(), values));
    }
    if !lo.is_finite() {
        return Err(if dropped > 0 {
            RenderError::Unplottable(format!(
                "a log axis needs positive values; all {dropped} samples are ≤ 0"
            ))
        } else {
            RenderError::NoData
        });
    }
    for (name, values) in &kept_all {
        let Some((min, max, _)) = stats::extent(values) else {
            continue;
        };
        let bins = if log {
            stats::bin_log(values, CURVE_BINS, lo, hi)
        } else {
            stats::bin(values, CURVE_BINS, lo, hi)
        };
        let n = values.len() as f64;
        let mut cumulative = 0u64;
        let mut points = Vec::with_capacity(CURVE_BINS + 2);
        points.push((min, 0.0));
        for (i, &c) in bins.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            cumulative += c;
            points.push((bins.edge(i + 1).min(max), cumulative as f64 / n * 100.0));
        }
        let marks = stats::percentiles(values, min, max, [0.5, 0.9, 0.99, 0.999]);
        curves.push(Curve {
            name,
            points,
            marks,
        });
    }
    let (x_lo, x_hi) = if lo < hi {
        (lo, hi)
    } else if log {
        stats::widen_log(lo)
    } else {
        stats::widen(lo)
    };
    let single = curves.len() == 1;
    // The curve hugs the top right, so the legend goes bottom right and needs no headroom.
    let y_max = 102.0;
    let y_ticks: Vec<f64> = [0.0, 25.0, 50.0, 75.0, 90.0, 100.0].to_vec();
    let y_fmt = |v: &f64| {
        if *v > 100.0 {
            String::new()
        } else {
            format!("{v}%")
        }
    };

    // Log and linear axes are one type; only their ticks and labels differ. Linear
    // labels get at least five characters' room.
    let mut chart = frame::chart(
        root,
        ctx,
        ctx.value_x_axis(x_lo, x_hi, log, 5),
        Axis {
            ticks: axis::TickedAxis::linear(0f64, y_max, y_ticks),
            label: Box::new(y_fmt),
            desc: "Share of samples",
        },
    )?;
    let marker = ctx.marker();
    let width = ctx.line_width();
    for (i, c) in curves.iter().enumerate() {
        let color = if single {
            ctx.theme.series[0]
        } else {
            ctx.theme.series[i % 8]
        };
        let style = stroke(color, width);
        let label = if single {
            format!("{} CDF", c.name)
        } else {
            format!(
                "{}  p99 {}",
                c.name,
                axis::format_value(c.marks[2], ctx.unit)
            )
        };
        chart
            .draw_series(LineSeries::new(c.points.iter().copied(), style))
            .map_err(drawing_error)?
            .label(ctx.legend_label(label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
    }
    if single {
        let marks = curves[0].marks;
        draw_marks(
            &mut chart,
            ctx,
            [
                ("P50", marks[0], ctx.theme.series[2]),
                ("P90", marks[1], ctx.theme.p95),
                ("P99", marks[2], ctx.theme.p99),
                ("P99.9", marks[3], ctx.theme.p999),
            ],
            100.0,
        )?;
    }
    if let Some(note) = dropped_note(dropped) {
        legend_note(&mut chart, ctx, note)?;
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::LowerRight)?;
    Ok(())
}
