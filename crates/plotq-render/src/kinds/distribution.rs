//! `histogram`: the latency distribution as the first design document (the Python
//! prototype plotq grew from) draws it — bins, dashed mean/p95/p99 markers
//! with their values in the legend — on a linear or log axis; with several services,
//! one translucent outlined distribution each on shared bins.
//!
//! Any finite values bin (the bins come from `stats`, overflow-free); the bin count is
//! the spec's, clamped to its bounds.

use super::common::{Area, draw_marks, dropped_note, legend_note, positive_only, weighted};
use crate::axis;
use crate::data::{PlotData, RenderError, drawing_error};
use crate::frame::{self, Axis, Chart, Ctx, draw_legend, stroke};
use plotq_domain::plot::BINS_RANGE;
use plotq_domain::stats::{self, Bins, Summary};
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;
use std::borrow::Cow;

struct Prepared<'d> {
    name: &'d str,
    values: Cow<'d, [f64]>,
    summary: Summary,
    /// Samples per value (`SeriesData::weight`).
    weight: f64,
}

/// The series ready to bin: non-positive values removed on a log axis, summaries taken.
/// A compared service without (positive) data has no curve; only when no service has
/// any is the plot impossible. Returns the series and how many samples were dropped.
fn prepare<'d>(
    ctx: &Ctx<'_>,
    data: &'d PlotData,
) -> Result<(Vec<Prepared<'d>>, usize), RenderError> {
    let mut out = Vec::new();
    let mut dropped_total = 0;
    for s in &data.series {
        let (values, dropped) = if ctx.spec.log_x {
            let (kept, dropped) = positive_only(&s.values);
            (Cow::Owned(kept), dropped)
        } else {
            (Cow::Borrowed(&s.values[..]), 0)
        };
        dropped_total += weighted(dropped as u64, s.weight) as usize;
        let Some(summary) = stats::summarize(&values) else {
            continue;
        };
        out.push(Prepared {
            name: &s.service,
            values,
            summary,
            weight: s.weight,
        });
    }
    if out.is_empty() {
        return Err(if dropped_total > 0 {
            RenderError::Unplottable(format!(
                "a log axis needs positive values; all {dropped_total} samples are ≤ 0"
            ))
        } else {
            RenderError::NoData
        });
    }
    Ok((out, dropped_total))
}

pub(crate) fn histogram<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    let n_bins = (ctx.spec.bins as usize).clamp(1, BINS_RANGE.1 as usize);
    let (series, bins, dropped) = match (&data.series[..], ctx.spec.log_x) {
        // One service on a linear axis (the prototype's plot), the hot path: statistics
        // and bins share their passes.
        ([only], false) => {
            let (summary, bins) =
                stats::summarize_binned(&only.values, n_bins).ok_or(RenderError::NoData)?;
            let series = vec![Prepared {
                name: &only.service,
                values: Cow::Borrowed(&only.values[..]),
                summary,
                weight: only.weight,
            }];
            (series, vec![bins], 0)
        }
        _ => {
            let (series, dropped) = prepare(ctx, data)?;
            let lo = series
                .iter()
                .map(|s| s.summary.min)
                .fold(f64::INFINITY, f64::min);
            let hi = series
                .iter()
                .map(|s| s.summary.max)
                .fold(f64::NEG_INFINITY, f64::max);
            let bins = series
                .iter()
                .map(|s| {
                    if ctx.spec.log_x {
                        stats::bin_log(&s.values, n_bins, lo, hi)
                    } else {
                        stats::bin(&s.values, n_bins, lo, hi)
                    }
                })
                .collect();
            (series, bins, dropped)
        }
    };
    // Stand-ins of rollups count for `weight` samples each.
    let mut bins = bins;
    for (b, s) in bins.iter_mut().zip(&series) {
        if s.weight > 1.0 {
            b.counts
                .iter_mut()
                .for_each(|c| *c = weighted(*c, s.weight));
        }
    }
    let single = series.len() == 1;
    let entries = if single { 4 } else { series.len() } + usize::from(dropped > 0);
    let peak = bins.iter().map(Bins::max_count).max().unwrap_or(1).max(1) as f64;
    let y_max = peak * ctx.headroom(entries);
    let (y_ticks, y_step) = axis::linear_ticks(0.0, y_max, ctx.max_y_ticks());
    let (x_lo, x_hi) = (bins[0].lo, bins[0].hi);

    // Log and linear axes are one type; only their ticks and labels differ.
    let mut chart = frame::chart(
        root,
        ctx,
        ctx.value_x_axis(x_lo, x_hi, ctx.spec.log_x, 0),
        Axis {
            ticks: axis::TickedAxis::linear(0f64, y_max, y_ticks),
            label: Box::new(move |v: &f64| axis::format_tick(*v, y_step)),
            desc: "Frequency",
        },
    )?;
    if single {
        let summary = &series[0].summary;
        draw_bars(&mut chart, ctx, &bins[0])?;
        draw_marks(
            &mut chart,
            ctx,
            [
                ("Mean", summary.mean, ctx.theme.mean),
                ("P95", summary.p95, ctx.theme.p95),
                ("P99", summary.p99, ctx.theme.p99),
            ],
            y_max,
        )?;
    } else {
        for (i, (s, b)) in series.iter().zip(&bins).enumerate() {
            draw_outline(&mut chart, ctx, b, i, s)?;
        }
    }
    if let Some(note) = dropped_note(dropped) {
        legend_note(&mut chart, ctx, note)?;
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

fn draw_bars<DB>(chart: &mut Chart<'_, DB>, ctx: &Ctx<'_>, bins: &Bins) -> Result<(), RenderError>
where
    DB: DrawingBackend,
{
    // matplotlib's `alpha=0.7` bars, blended over the background once, not per pixel.
    let fill = crate::theme::blend(ctx.theme.series[0], ctx.theme.background, 0.7).filled();
    let edge = ctx.hairline(ctx.theme.series[0]);
    let bars = || {
        bins.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| [(bins.edge(i), 0.0), (bins.edge(i + 1), c as f64)])
    };
    let marker = ctx.marker();
    chart
        .draw_series(bars().map(|r| Rectangle::new(r, fill)))
        .map_err(drawing_error)?
        .label(ctx.legend_label("Latency Distribution"))
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - marker / 4), (x + marker, y + marker / 4)], fill)
        });
    chart
        .draw_series(bars().map(|r| Rectangle::new(r, edge)))
        .map_err(drawing_error)?;
    Ok(())
}

fn draw_outline<DB>(
    chart: &mut Chart<'_, DB>,
    ctx: &Ctx<'_>,
    bins: &Bins,
    index: usize,
    series: &Prepared<'_>,
) -> Result<(), RenderError>
where
    DB: DrawingBackend,
{
    let color = ctx.theme.series[index % ctx.theme.series.len()];
    let fill = color.mix(0.18).filled();
    let line = stroke(color, ctx.line_width());
    chart
        .draw_series(
            bins.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    Rectangle::new([(bins.edge(i), 0.0), (bins.edge(i + 1), c as f64)], fill)
                }),
        )
        .map_err(drawing_error)?;
    let mut step = Vec::with_capacity(bins.counts.len() * 2 + 2);
    step.push((bins.edge(0), 0.0));
    for (i, &c) in bins.counts.iter().enumerate() {
        step.push((bins.edge(i), c as f64));
        step.push((bins.edge(i + 1), c as f64));
    }
    step.push((bins.edge(bins.counts.len()), 0.0));
    let marker = ctx.marker();
    chart
        .draw_series(LineSeries::new(step, line))
        .map_err(drawing_error)?
        .label(ctx.legend_label(format!(
            "{}  p50 {}  p99 {}",
            series.name,
            axis::format_value(series.summary.p50, ctx.unit),
            axis::format_value(series.summary.p99, ctx.unit)
        )))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], line));
    Ok(())
}
