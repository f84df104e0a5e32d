//! `heatmap`: latency distribution over time. x = time bucket, y = log-spaced latency
//! bucket, colour = sample count (log-scaled along the theme's ramp), with each time
//! bucket's p99 drawn on top — the plot that shows bimodal latency and slow tails.
//!
//! Only samples inside the (inclusive) window count, for the axis as for the cells. The
//! latency axis spans whatever positive values there are (5e-324 to `f64::MAX`): its
//! headroom stops at `f64::MAX` and its ticks thin out over many decades; cells are at
//! most 120 columns × 60 rows (one per 10 × 9 layout pixels). A partial last column (the
//! window ends inside it) is not drawn unless no earlier one has a sample, as in the
//! time-series kinds.

use super::common::{
    Area, Buckets, dropped_note, legend_note, runs, time_axis, time_x_axis, weighted,
};
use crate::axis;
use crate::data::{PlotData, RenderError, drawing_error};
use crate::frame::{self, Axis, Ctx, draw_legend, stroke};
use plotq_domain::TimeAxis;
use plotq_domain::stats;
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;

pub(crate) fn heatmap<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<TimeAxis, RenderError> {
    let s = &data.series[0];
    let weight = s.weight;
    let (from, until) = (ctx.from_ms, ctx.until_ms);
    // Keep only the window's positive values (log axis), with their timestamps.
    let mut timestamps = Vec::with_capacity(s.timestamps_ms.len().min(s.values.len()));
    let mut values = Vec::with_capacity(timestamps.capacity());
    let mut dropped = 0;
    for (&t, &v) in s.timestamps_ms.iter().zip(&s.values) {
        if (from..=until).contains(&t) {
            if v > 0.0 {
                timestamps.push(t);
                values.push(v);
            } else {
                dropped += 1;
            }
        }
    }
    let Some((min, max, _)) = stats::extent(&values) else {
        return Err(if dropped > 0 {
            RenderError::Unplottable(format!(
                "a heatmap's latency axis is logarithmic; all {dropped} samples are ≤ 0"
            ))
        } else {
            RenderError::NoData
        });
    };
    let (y_lo, y_hi) = if min < max {
        (min, max)
    } else {
        stats::widen_log(min)
    };
    let cols = ((ctx.layout.0 as usize) / 10).clamp(10, 120);
    let width_ms = axis::bucket_ms(axis::span_ms(from, until), cols);
    let buckets = Buckets::group(&timestamps, &values, from, until, width_ms);
    let rows = ((ctx.layout.1 as f64 * 0.7 / 9.0) as usize).clamp(8, 60);
    let mut cells: Vec<(usize, usize, u64)> = Vec::new();
    let mut p99: Vec<Option<(f64, f64)>> = Vec::with_capacity(buckets.drawn);
    let mut peak = 1u64;
    for b in 0..buckets.drawn {
        let vs = buckets.bucket(b);
        let bins = stats::bin_log(vs, rows, y_lo, y_hi);
        for (r, &c) in bins.counts.iter().enumerate() {
            if c > 0 {
                peak = peak.max(c);
                cells.push((b, r, c));
            }
        }
        p99.push(stats::extent(vs).map(|(lo, hi, _)| {
            let [q] = stats::percentiles(vs, lo, hi, [0.99]);
            (buckets.center_ms(b, from, until), q)
        }));
    }
    let edges = stats::bin_log(&[], rows, y_lo, y_hi);
    // Headroom in log space keeps the legend above the cells; it stops at f64::MAX (a
    // range of 600 decades times the headroom would overflow to infinity).
    let entries = 2 + usize::from(dropped > 0);
    let y_top = (y_lo.ln() + (y_hi.ln() - y_lo.ln()) * ctx.headroom(entries))
        .exp()
        .clamp(y_hi, f64::MAX);
    let y_ticks = axis::log_ticks(y_lo, y_top, ctx.max_y_ticks());
    let mut chart = frame::chart(
        root,
        ctx,
        time_x_axis(ctx),
        Axis {
            ticks: axis::TickedAxis::log(y_lo, y_top, y_ticks),
            label: Box::new(|v: &f64| axis::format_log_tick(*v)),
            desc: &ctx.value_desc,
        },
    )?;
    let ln_peak = (peak as f64 + 1.0).ln();
    chart
        .draw_series(cells.iter().map(|&(b, r, c)| {
            let (x0, x1) = buckets.covered(b, from, until);
            let t = (c as f64 + 1.0).ln() / ln_peak;
            // Never the background colour itself: an occupied cell must stay visible.
            let color = ctx.theme.ramp_at(0.12 + 0.88 * t);
            Rectangle::new(
                [(x0 as f64, edges.edge(r)), (x1 as f64, edges.edge(r + 1))],
                color.filled(),
            )
        }))
        .map_err(drawing_error)?;
    let style = stroke(ctx.theme.p99, ctx.line_width());
    let marker = ctx.marker();
    let mut labelled = false;
    for run in runs(&p99) {
        let anno = chart
            .draw_series(LineSeries::new(run, style))
            .map_err(drawing_error)?;
        if !labelled {
            anno.label(ctx.legend_label("p99"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
            labelled = true;
        }
    }
    let dense = ctx.theme.ramp_at(1.0);
    chart
        .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
        .map_err(drawing_error)?
        .label(ctx.legend_label(format!(
            "darker = more samples (max {} per cell)",
            weighted(peak, weight)
        )))
        .legend(move |(x, y)| {
            Rectangle::new(
                [(x, y - marker / 4), (x + marker, y + marker / 4)],
                dense.filled(),
            )
        });
    if let Some(note) = dropped_note(weighted(dropped as u64, weight) as usize) {
        legend_note(&mut chart, ctx, note)?;
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(time_axis(&chart, ctx))
}
