//! One module per plot kind; `draw` dispatches on the spec's kind and returns where the
//! time axis is for the kinds that have one, then writes the data's note in the corner.
//! Every kind draws on any plotters backend (indexed PNG or SVG), on the frame in
//! `frame.rs`, with what several kinds draw alike in `common.rs`.

mod cdf;
mod common;
mod correlation;
mod distribution;
mod heatmap;
mod status;
mod timeseries;

use crate::data::{PlotData, RenderError};
use crate::frame::Ctx;
use common::Area;
use plotq_domain::PlotKind;
use plotq_domain::TimeAxis;
use plotters::prelude::*;

pub(crate) fn draw<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<Option<TimeAxis>, RenderError> {
    let time_axis = match ctx.spec.kind {
        PlotKind::Histogram => distribution::histogram(root, ctx, data).map(|()| None),
        PlotKind::Cdf => cdf::cdf(root, ctx, data).map(|()| None),
        PlotKind::LatencyTimeseries => timeseries::latency(root, ctx, data).map(Some),
        PlotKind::Throughput => timeseries::throughput(root, ctx, data).map(Some),
        PlotKind::ErrorRate => timeseries::error_rate(root, ctx, data).map(Some),
        PlotKind::StatusCodes => status::status_codes(root, ctx, data).map(|()| None),
        PlotKind::Heatmap => heatmap::heatmap(root, ctx, data).map(Some),
        PlotKind::Correlation => correlation::correlation(root, ctx, data).map(|()| None),
    }?;
    if let Some(note) = &data.note {
        draw_note(root, ctx, note)?;
    }
    Ok(time_axis)
}

/// What the plot was drawn from, small in the bottom-right corner.
fn draw_note<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    note: &str,
) -> Result<(), RenderError> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let (w, h) = root.dim_in_pixel();
    let size = ctx.note_px();
    let style = (crate::font::FONT_FAMILY, size)
        .into_font()
        .color(&ctx.theme.muted)
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    let text: String = note.chars().take(120).collect();
    let (dx, dy) = (ctx.px(6) as i32, ctx.px(3) as i32);
    root.draw(&Text::new(text, (w as i32 - dx, h as i32 - dy), style))
        .map_err(crate::data::drawing_error)
}
