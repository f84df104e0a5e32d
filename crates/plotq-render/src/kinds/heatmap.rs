//! `heatmap`: latency distribution over time. x = time bucket, y = log-spaced latency
//! bucket, colour = sample count (log-scaled along the theme's ramp, read off the colour
//! scale at the right: samples per cell, from 1 to the fullest cell), with each time
//! bucket's p99 drawn on top — the plot that shows bimodal latency and slow tails.
//!
//! Only samples inside the (inclusive) window count, for the axis as for the cells. The
//! latency axis spans whatever positive values there are (5e-324 to `f64::MAX`): its
//! headroom stops at `f64::MAX` and its ticks thin out over many decades; cells are at
//! most 120 columns × 60 rows (one per 10 × 9 layout pixels). A partial last column (the
//! window ends inside it) is not drawn unless no earlier one has a sample, as in the
//! time-series kinds.
//!
//! Several services (or `group_by` values): small multiples — the plot's title, then one
//! heatmap per series in a grid (one column up to three, two past), each titled with
//! its series and read off its own colour scale (volumes differ; shapes compare), on
//! one time axis span.

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
    if data.series.len() > 1 {
        return multiples(root, ctx, data);
    }
    panel(root, ctx, data)
}

/// One heatmap per series under the plot's title; the first drawn panel's time axis.
fn multiples<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<TimeAxis, RenderError> {
    let n = data.series.len();
    let (rows, cols) = if n <= 3 { (n, 1) } else { (n.div_ceil(2), 2) };
    // Panels too small to carry their axes: the first series alone, saying so.
    let (w, h) = root.dim_in_pixel();
    // (The title takes about twice its type size.)
    let below_title = (h / ctx.scale).saturating_sub(ctx.layout_ts.title * 2);
    let panel_layout = (w / ctx.scale / cols as u32, below_title / rows as u32);
    if panel_layout.0 < MIN_PANEL.0 || panel_layout.1 < MIN_PANEL.1 {
        // The first series that can be drawn (a panel fails before it draws anything).
        let mut unplottable = None;
        for series in &data.series {
            let mut spec = ctx.spec.clone();
            spec.title = Some(format!(
                "{} (1 of {n}: larger images show each)",
                series.service
            ));
            let one = PlotData {
                series: vec![series.clone()],
                ..data.clone()
            };
            match panel(root, &Ctx::new(&spec, &one), &one) {
                Err(RenderError::NoData) => {}
                Err(RenderError::Unplottable(why)) => {
                    unplottable.get_or_insert(why);
                }
                done => return done,
            }
        }
        return Err(unplottable.map_or(RenderError::NoData, RenderError::Unplottable));
    }
    let title_h = ctx.draw_title(root)?;
    let (_, below) = root.split_vertically(title_h as i32);
    let panels = below.split_evenly((rows, cols));
    let named_any = data
        .annotations
        .iter()
        .any(|a| data.series.iter().any(|s| a.concerns(&s.service)));
    let mut first: Option<TimeAxis> = None;
    // Unplottable panels say why; with none drawn, the plot fails as one series would:
    // unplottable when any was, else without data.
    let mut unplottable: Option<String> = None;
    for (series, area) in data.series.iter().zip(&panels) {
        let (w, h) = area.dim_in_pixel();
        let mut spec = ctx.spec.clone();
        spec.title = Some(series.service.clone());
        spec.width = w.max(1);
        spec.height = h.max(1);
        let one = PlotData {
            from_ms: data.from_ms,
            until_ms: data.until_ms,
            series: vec![series.clone()],
            note: None,
            annotations: data
                .annotations
                .iter()
                .filter(|a| !named_any || a.concerns(&series.service))
                .cloned()
                .collect(),
        };
        let panel_ctx = Ctx::new(&spec, &one);
        match panel(area, &panel_ctx, &one) {
            Ok(axis) => {
                // (Columns in the whole image: backend coordinates.)
                first.get_or_insert(axis);
            }
            // A series without samples in the window (or none a log axis can show) says
            // so in its panel; the others are drawn.
            Err(e @ (RenderError::NoData | RenderError::Unplottable(_))) => {
                let why = match e {
                    RenderError::Unplottable(why) => {
                        unplottable.get_or_insert_with(|| why.clone());
                        why
                    }
                    _ => "no data in the window".to_owned(),
                };
                area.draw(&Text::new(
                    format!("{}: {why}", series.service),
                    (panel_ctx.ts.tick as i32, panel_ctx.ts.tick as i32),
                    panel_ctx.font(panel_ctx.ts.legend),
                ))
                .map_err(drawing_error)?;
            }
            Err(e) => return Err(e),
        }
    }
    first.ok_or_else(|| unplottable.map_or(RenderError::NoData, RenderError::Unplottable))
}

/// The smallest panel of small multiples, layout pixels (below, one series is drawn).
const MIN_PANEL: (u32, u32) = (240, 140);

/// One series' heatmap filling `root`.
fn panel<DB: DrawingBackend>(
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
    let entries = 1 + usize::from(dropped > 0) + usize::from(ctx.layout.0 < COLOUR_SCALE_MIN_WIDTH);
    let y_top = (y_lo.ln() + (y_hi.ln() - y_lo.ln()) * ctx.headroom(entries))
        .exp()
        .clamp(y_hi, f64::MAX);
    let y_ticks = axis::log_ticks(y_lo, y_top, ctx.max_y_ticks());
    // A colour scale beside the plot where there is room for one; on a narrow layout the
    // legend says what the colour means instead.
    let scale = (ctx.layout.0 >= COLOUR_SCALE_MIN_WIDTH).then(|| ColourScale::new(weight, peak));
    let mut chart = frame::chart_beside(
        root,
        ctx,
        time_x_axis(ctx),
        Axis {
            ticks: axis::TickedAxis::log(y_lo, y_top, y_ticks),
            label: Box::new(|v: &f64| axis::format_log_tick(*v)),
            desc: &ctx.value_desc,
        },
        scale.as_ref().map_or(0, |s| s.room(ctx)),
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
    if let Some(scale) = &scale {
        // The plot's pixels in the image; the scale draws in `root`'s own (a panel of
        // small multiples is not at the image's origin).
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let (bx, by) = root.get_base_pixel();
        scale.draw(root, ctx, (xs.end - bx, ys.start - by..ys.end - by))?;
    } else {
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
    }
    if let Some(note) = dropped_note(weighted(dropped as u64, weight) as usize) {
        legend_note(&mut chart, ctx, note)?;
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(time_axis(&chart, ctx))
}

/// Narrowest layout (layout pixels) with a colour scale beside the plot.
const COLOUR_SCALE_MIN_WIDTH: u32 = 400;

/// The heatmap's colour scale: a bar beside the plot from 1 sample per cell (bottom) to
/// the fullest cell (top), coloured as the cells are, with ticks at powers of ten and the
/// maximum, and "samples per cell" along it.
struct ColourScale {
    /// Samples each stand-in counts for.
    weight: f64,
    /// The fullest cell, in stand-ins.
    peak: u64,
    labels: Vec<(f64, String)>,
}

impl ColourScale {
    fn new(weight: f64, peak: u64) -> Self {
        let weight = weight.max(1.0);
        let top = peak as f64 * weight;
        // Powers of ten from 1 up to the peak, then the peak itself unless it is one.
        let mut labels: Vec<(f64, String)> =
            std::iter::successors(Some(1.0f64), |v| Some(v * 10.0).filter(|n| *n < top * 0.8))
                .take(20)
                .map(|v| (v, axis::format_log_tick(v)))
                .collect();
        if labels.last().is_none_or(|(v, _)| *v < top) {
            labels.push((top, axis::format_log_tick(weighted(peak, weight) as f64)));
        }
        Self {
            weight,
            peak,
            labels,
        }
    }

    /// The colour of `samples` per cell, as a cell with that many is drawn.
    fn position(&self, samples: f64) -> f64 {
        let stand_ins = samples / self.weight;
        ((stand_ins + 1.0).ln() / (self.peak as f64 + 1.0).ln()).clamp(0.0, 1.0)
    }

    /// Image pixels the scale takes right of the plot: gap, bar, ticks, labels, caption.
    fn room(&self, ctx: &Ctx<'_>) -> u32 {
        let label_chars = frame::widest(self.labels.iter().map(|(_, l)| l.clone()));
        let labels = (label_chars as f64 * ctx.ts.tick as f64 * 0.62) as u32;
        ctx.px(10) + ctx.px(12) + ctx.px(8) + labels + ctx.px(6) + ctx.ts.label * 3 / 2
    }

    /// Draws the bar right of `x0` over the plot's rows `ys` (image pixels).
    fn draw<DB: DrawingBackend>(
        &self,
        root: &Area<'_, DB>,
        ctx: &Ctx<'_>,
        (x0, ys): (i32, std::ops::Range<i32>),
    ) -> Result<(), RenderError> {
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let bar = (x0 + ctx.px(10) as i32, x0 + ctx.px(22) as i32);
        let (top, bottom) = (ys.start, ys.end);
        let height = (bottom - top).max(1);
        // One band per ramp step: the ramp has 32 distinct colours.
        let steps = 32;
        for i in 0..steps {
            let t = (i as f64 + 0.5) / steps as f64;
            let y1 = bottom - height * i / steps;
            let y0 = bottom - height * (i + 1) / steps;
            let color = ctx.theme.ramp_at(0.12 + 0.88 * t);
            root.draw(&Rectangle::new([(bar.0, y0), (bar.1, y1)], color.filled()))
                .map_err(drawing_error)?;
        }
        // Outlined in the grid's colour: the axes' colour marks only the axes.
        root.draw(&Rectangle::new(
            [(bar.0, top), (bar.1, bottom)],
            ctx.hairline(ctx.theme.grid),
        ))
        .map_err(drawing_error)?;
        let font = ctx.font(ctx.ts.tick);
        let mut last_y = i32::MAX;
        for (value, label) in self.labels.iter().rev() {
            let y = bottom - (height as f64 * self.position(*value)).round() as i32;
            // Labels closer than a line of text to the one above are left out.
            if (last_y - y).abs() < ctx.ts.tick as i32 && last_y != i32::MAX {
                continue;
            }
            last_y = y;
            root.draw(&PathElement::new(
                [(bar.1, y), (bar.1 + ctx.px(4) as i32, y)],
                ctx.hairline(ctx.theme.muted),
            ))
            .map_err(drawing_error)?;
            root.draw(&Text::new(
                label.clone(),
                (bar.1 + ctx.px(8) as i32, y),
                font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(drawing_error)?;
        }
        let (w, _) = root.dim_in_pixel();
        let caption = ctx
            .font(ctx.ts.label)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            "samples per cell",
            (w as i32 - ctx.ts.label as i32 * 3 / 2, top + height / 2),
            caption,
        ))
        .map_err(drawing_error)
    }
}
