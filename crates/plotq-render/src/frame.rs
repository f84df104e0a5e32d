//! What every plot kind shares: the render context (spec, theme, type sizes, range,
//! unit, device-pixel scale), tick budgets for the layout size, label-area sizing, line
//! widths, the title (shrunk, then cut short, to fit the width), legend labels cut to
//! fit the plot area, and the chart itself (`chart`: title, margins, label areas and the
//! mesh over two `Axis`) and its legend, styled alike for every kind.
//!
//! Scale: everything is sized for the layout (`PlotSpec::layout_size`, the image size
//! over `scale`) and multiplied by `scale`, so a 1200×675 image at scale 3 is the
//! 400×225 plot with three times the pixels: type, margins, line widths, tick marks,
//! legend boxes, tick budgets and time buckets alike.

use crate::axis;
use crate::data::{PlotData, RenderError, drawing_error};
use crate::font::FONT_FAMILY;
use crate::theme::{Theme, TypeScale};
use plotq_domain::PlotSpec;
use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::prelude::{
    Cartesian2d, DashedLineSeries, DrawingArea, DrawingBackend, EmptyElement, PathElement,
    Rectangle, Text,
};
use plotters::style::colors::TRANSPARENT;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, IntoFont, ShapeStyle, TextStyle};
use std::cell::Cell;

/// Everything a kind needs to know besides its data.
pub struct Ctx<'a> {
    pub spec: &'a PlotSpec,
    pub theme: Theme,
    /// Type sizes in image pixels (the layout's, times `scale`).
    pub ts: TypeScale,
    /// Type sizes in layout pixels.
    pub layout_ts: TypeScale,
    /// Image pixels per layout pixel (at least 1).
    pub scale: u32,
    /// The layout size: the image size over `scale`.
    pub layout: (u32, u32),
    pub from_ms: i64,
    pub until_ms: i64,
    /// Unit of the metric's values (`ms`, or empty).
    pub unit: &'static str,
    /// `Latency (ms)`: the value axis description.
    pub value_desc: String,
    /// The plot area's width in image pixels, once the mesh is drawn (`draw_mesh!`):
    /// what a legend has to fit in.
    pub plot_width: Cell<Option<u32>>,
    /// The data's annotations (time, text), in time order.
    pub annotations: Vec<(i64, String)>,
}

impl<'a> Ctx<'a> {
    pub fn new(spec: &'a PlotSpec, data: &PlotData) -> Self {
        let unit = axis::unit_of(spec.metric.as_str());
        let name = axis::humanize_metric(spec.metric.as_str());
        let value_desc = if unit.is_empty() {
            name
        } else {
            format!("{name} ({unit})")
        };
        let scale = spec.scale.max(1);
        let layout = spec.layout_size();
        let layout = (layout.0.max(1), layout.1.max(1));
        let layout_ts = TypeScale::for_size(layout.0, layout.1);
        Self {
            spec,
            theme: Theme::named(spec.theme),
            ts: layout_ts.scaled(scale),
            layout_ts,
            scale,
            layout,
            from_ms: data.from_ms,
            until_ms: data.until_ms,
            unit,
            value_desc,
            plot_width: Cell::new(None),
            annotations: data
                .annotations
                .iter()
                .map(|a| (a.time_ms, a.text.clone()))
                .collect(),
        }
    }

    /// The corner note's type size, image pixels (9/10 of the tick labels', at least 12
    /// layout pixels, the floor of all text).
    pub fn note_px(&self) -> u32 {
        self.px((self.layout_ts.tick * 9 / 10).max(12))
    }

    /// The smallest type in the image (tick labels, legend, note; the title shrinks to
    /// the label size at most), image pixels.
    pub fn smallest_text_px(&self) -> u32 {
        self.ts
            .tick
            .min(self.ts.legend)
            .min(self.ts.label)
            .min(self.note_px())
    }

    /// `layout_px` layout pixels in image pixels.
    pub fn px(&self, layout_px: u32) -> u32 {
        layout_px.saturating_mul(self.scale)
    }

    /// The width of data lines (a sixth of the tick type, at least 2 layout pixels).
    pub fn line_width(&self) -> u32 {
        self.px((self.layout_ts.tick / 6).max(2))
    }

    /// A hairline: one layout pixel (edges, secondary lines, grid, axes).
    pub fn thin(&self) -> u32 {
        self.scale
    }

    /// `color` as a hairline.
    pub fn hairline(&self, color: plotters::style::RGBColor) -> ShapeStyle {
        color.stroke_width(self.thin())
    }

    pub fn font(&self, size: u32) -> TextStyle<'static> {
        (FONT_FAMILY, size)
            .into_font()
            .color(&self.theme.foreground)
    }

    /// How many value ticks fit along the x axis without labels touching (in layout
    /// pixels, so the budget does not depend on `scale`).
    pub fn max_x_ticks(&self, widest_label_chars: usize) -> usize {
        let label_px = (widest_label_chars.max(3) as f64 + 2.0) * self.layout_ts.tick as f64 * 0.62;
        ((self.layout.0 as f64 * 0.8 / label_px) as usize).clamp(2, 12)
    }

    /// The value (x) axis of histograms and CDFs: log ticks, or as many linear ticks
    /// as fit their labels (counted at least `min_label_chars` wide).
    pub fn value_x_axis(&self, lo: f64, hi: f64, log: bool, min_label_chars: usize) -> Axis<'_> {
        let max_ticks = if log {
            self.max_x_ticks(6)
        } else {
            let (probe, step) = axis::linear_ticks(lo, hi, 10);
            let labels = probe.iter().map(|v| axis::format_tick(*v, step));
            self.max_x_ticks(widest(labels).max(min_label_chars))
        };
        let (ticks, label) = axis::value_axis(lo, hi, log, max_ticks);
        Axis {
            ticks,
            label,
            desc: &self.value_desc,
        }
    }

    /// How many ticks fit along the y axis (in layout pixels).
    pub fn max_y_ticks(&self) -> usize {
        ((self.layout.1 as f64 * 0.7 / (self.layout_ts.tick as f64 * 2.6)) as usize).clamp(2, 10)
    }

    /// Width of the y label area for labels up to `widest_label_chars` characters.
    pub fn y_label_area(&self, widest_label_chars: usize) -> u32 {
        let labels = widest_label_chars.max(1) as f64 * self.ts.tick as f64 * 0.62;
        (labels + self.ts.label as f64 * 1.5 + self.ts.tick as f64) as u32
    }

    pub fn x_label_area(&self) -> u32 {
        self.ts.tick + self.ts.label * 2 + self.ts.tick / 2
    }

    /// Space around the chart; more on the right so the last tick label is not clipped.
    pub fn margin(&self) -> (u32, u32, u32, u32) {
        let m = self.ts.tick;
        (m / 2, m * 2, m, m)
    }

    /// A legend entry's text, cut short to fit the legend inside the plot area (plotters
    /// puts it 5 pixels from the area's edge, the legend box adds the marker and its
    /// margins; 3 layout pixels more keep it off the axis line).
    pub fn legend_label(&self, text: impl Into<String>) -> String {
        let plot_width = self
            .plot_width
            .get()
            .unwrap_or((self.spec.width as f64 * 0.74) as u32);
        let extras = self.marker() as u32 + self.ts.legend * 3 / 2 + 5 + self.px(3);
        fit(
            &text.into(),
            self.ts.legend,
            plot_width.saturating_sub(extras),
        )
    }

    /// Legend marker length (scales with the type so labels never run into it).
    pub fn marker(&self) -> i32 {
        self.ts.legend as i32 * 3 / 2
    }

    /// Headroom factor for the value axis so a legend of `entries` lines in the upper
    /// corner does not cover data.
    pub fn headroom(&self, entries: usize) -> f64 {
        let ts = &self.layout_ts;
        let plot_px = self.layout.1 as f64
            - ts.title as f64 * 2.0
            - (ts.tick + ts.label * 2 + ts.tick / 2) as f64
            - ts.tick as f64 * 1.5;
        // Each threshold adds a legend line too.
        let entries = entries + self.spec.thresholds.len();
        let legend_px = (entries as f64 + 1.0) * ts.legend as f64 * 1.5;
        1.0 / (1.0 - (legend_px / plot_px.max(1.0)).min(0.6)) + 0.05
    }

    pub fn title(&self) -> String {
        self.spec.title()
    }

    /// Draws the title centred at the top of `root` inside the margins and returns the
    /// height it takes: plotters' caption, with its padding (up to 5 pixels) in layout
    /// pixels.
    pub fn draw_title<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<u32, RenderError> {
        let (w, _) = root.dim_in_pixel();
        let (top, right, _, left) = self.margin();
        let room = w.saturating_sub(left + right);
        // A title wider than the image shrinks (to the label size at least), then is cut.
        let mut size = self.ts.title;
        let wide = text_width(&self.title(), size);
        if wide > room {
            size = ((size as u64 * room as u64 / wide.max(1) as u64) as u32).max(self.ts.label);
        }
        let title = fit(&self.title(), size, room);
        let font = self.font(size);
        let (_, text_h) = root
            .estimate_text_size(&title, &font)
            .map_err(drawing_error)?;
        let pad = (text_h / 2).min(self.px(5));
        let x = left + room / 2;
        let style = font.pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(title, (x as i32, (top + pad) as i32), style))
            .map_err(drawing_error)?;
        Ok(text_h + pad * 2)
    }
}

/// The width in pixels of `text` in the plot font at `size` pixels (0 if it cannot be
/// measured).
fn text_width(text: &str, size: u32) -> u32 {
    (FONT_FAMILY, size)
        .into_font()
        .box_size(text)
        .map_or(0, |(w, _)| w)
}

/// `text`, cut short with "…" so that at `size` pixels it is at most `room` pixels wide
/// (a binary search over its length: a handful of measurements).
pub fn fit(text: &str, size: u32, room: u32) -> String {
    if text_width(text, size) <= room {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |n: usize| -> String {
        let mut s: String = chars[..n].iter().collect::<String>().trim_end().to_owned();
        s.push('…');
        s
    };
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if text_width(&cut(mid), size) <= room {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    cut(lo)
}

/// Characters in the longest of `labels`.
pub fn widest(labels: impl IntoIterator<Item = String>) -> usize {
    labels
        .into_iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
}

/// Every kind's chart: our own ticked axes on both sides.
pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<axis::TickedAxis, axis::TickedAxis>>;

/// One axis of a chart: its ticks, how a tick is labelled, what the axis shows.
pub struct Axis<'f> {
    pub ticks: axis::TickedAxis,
    pub label: Box<dyn Fn(&f64) -> String + 'f>,
    pub desc: &'f str,
}

/// Draws the title, then the chart over `x` and `y` with the margins and label areas
/// every kind uses (the y label area as wide as the widest y tick label), and its mesh
/// (grid, axes, tick labels, axis descriptions) in the theme's style.
pub fn chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    ctx: &Ctx<'_>,
    x: Axis<'_>,
    y: Axis<'_>,
) -> Result<Chart<'a, DB>, RenderError> {
    chart_beside(root, ctx, x, y, 0)
}

/// [`chart`], leaving `room` image pixels free on the right of the plot area (for a
/// colour scale).
pub fn chart_beside<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    ctx: &Ctx<'_>,
    x: Axis<'_>,
    y: Axis<'_>,
    room: u32,
) -> Result<Chart<'a, DB>, RenderError> {
    let y_area = ctx.y_label_area(widest(y.ticks.ticks().iter().map(|v| (y.label)(v))));
    let (n_x, n_y) = (x.ticks.tick_count(), y.ticks.tick_count());
    let (top, right, bottom, left) = ctx.margin();
    let right = right + room;
    let title_h = ctx.draw_title(root)?;
    let mut chart = ChartBuilder::on(root)
        .margin_top(top + title_h)
        .margin_right(right)
        .margin_bottom(bottom)
        .margin_left(left)
        .x_label_area_size(ctx.x_label_area())
        .y_label_area_size(y_area)
        .build_cartesian_2d(x.ticks, y.ticks)
        .map_err(drawing_error)?;
    ctx.plot_width
        .set(Some(chart.plotting_area().dim_in_pixel().0));
    chart
        .configure_mesh()
        .x_desc(x.desc)
        .y_desc(y.desc)
        .axis_desc_style(ctx.font(ctx.ts.label))
        .label_style(ctx.font(ctx.ts.tick))
        .axis_style(ctx.hairline(ctx.theme.muted))
        .bold_line_style(ctx.hairline(ctx.theme.grid))
        .set_all_tick_mark_size(ctx.px(5))
        .light_line_style(TRANSPARENT)
        .x_labels(n_x + 1)
        .y_labels(n_y + 1)
        .x_label_formatter(&x.label)
        .y_label_formatter(&y.label)
        .draw()
        .map_err(drawing_error)?;
    Ok(chart)
}

/// The spec's thresholds (every kind draws them here, last before its legend), then the
/// legend at `position`, on the theme's background.
pub fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    ctx: &Ctx<'_>,
    position: SeriesLabelPosition,
) -> Result<(), RenderError> {
    draw_thresholds(chart, ctx)?;
    if ctx.spec.kind.has_time_axis() {
        draw_annotations(chart, ctx)?;
    }
    chart
        .configure_series_labels()
        .position(position)
        .margin(ctx.ts.legend / 2)
        .legend_area_size(ctx.marker() as u32 + ctx.ts.legend / 2)
        .background_style(ctx.theme.legend_background)
        .border_style(ctx.hairline(ctx.theme.grid))
        .label_font(ctx.font(ctx.ts.legend))
        .draw()
        .map_err(drawing_error)
}

/// A solid line style in `color` of `width` pixels.
pub fn stroke(color: plotters::style::RGBColor, width: u32) -> plotters::style::ShapeStyle {
    color.stroke_width(width)
}

/// The spec's thresholds on the value axis — vertical lines for the kinds whose x axis is
/// the value (histogram, cdf), horizontal for the rest — long dashes in the text's colour
/// (no series or mark has it), each named in the legend with its value; a threshold
/// outside the axis is named in the legend with where it lies ("above the plot"), not
/// drawn.
fn draw_thresholds<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    ctx: &Ctx<'_>,
) -> Result<(), RenderError> {
    use plotq_domain::PlotKind;
    let spec = ctx.spec;
    if spec.thresholds.is_empty() {
        return Ok(());
    }
    let on_x = matches!(spec.kind, PlotKind::Histogram | PlotKind::Cdf);
    let unit = match (spec.kind, &spec.correlation) {
        (PlotKind::Throughput, _) => "/s",
        (PlotKind::ErrorRate, _) => "%",
        (PlotKind::StatusCodes, _) => "",
        (PlotKind::Correlation, Some(c)) => match c.stat {
            plotq_domain::plot::Stat::Rate => "/s",
            plotq_domain::plot::Stat::ErrorRate => "%",
            plotq_domain::plot::Stat::Count => "",
            _ => ctx.unit,
        },
        _ => ctx.unit,
    };
    let (x, y) = (chart.x_range(), chart.y_range());
    let style = stroke(ctx.theme.foreground, ctx.line_width());
    let marker = ctx.marker();
    let (dash, gap) = (ctx.ts.tick as i32 * 3 / 2, ctx.ts.tick as i32 / 2);
    for t in &spec.thresholds {
        let text = format!("{}: {}", t.label, axis::format_value(t.value, unit));
        let along = if on_x { &x } else { &y };
        if (along.start..=along.end).contains(&t.value) {
            let ends = if on_x {
                [(t.value, y.start), (t.value, y.end)]
            } else {
                [(x.start, t.value), (x.end, t.value)]
            };
            chart
                .draw_series(DashedLineSeries::new(ends, dash, gap, style))
                .map_err(drawing_error)?
                .label(ctx.legend_label(text))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
        } else {
            let side = match (on_x, t.value > along.end) {
                (true, true) => "right of the plot",
                (true, false) => "left of the plot",
                (false, true) => "above the plot",
                (false, false) => "below the plot",
            };
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(drawing_error)?
                .label(ctx.legend_label(format!("{text} ({side})")))
                .legend(|(x, y)| PathElement::new([(x, y)], TRANSPARENT));
        }
    }
    Ok(())
}

/// Most characters of an annotation's text written on the plot.
const ANNOTATION_CHARS: usize = 32;
/// Rows of annotation texts above the plot's bottom edge.
const ANNOTATION_ROWS: usize = 3;

/// The annotations within the time axis: dotted vertical lines in the text's colour,
/// each with its text (cut to [`ANNOTATION_CHARS`]) on the legend's background above the
/// plot's bottom edge (the legend keeps the top corners), in the first of
/// [`ANNOTATION_ROWS`] rows up where it overlaps no earlier text (a text that fits none
/// is left out; its line stays); one legend entry counts them.
fn draw_annotations<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    ctx: &Ctx<'_>,
) -> Result<(), RenderError> {
    let (x, y) = (chart.x_range(), chart.y_range());
    let shown: Vec<&(i64, String)> = ctx
        .annotations
        .iter()
        .filter(|(t, _)| (x.start..=x.end).contains(&(*t as f64)))
        .collect();
    if shown.is_empty() {
        return Ok(());
    }
    let style = stroke(ctx.theme.foreground, ctx.thin().max(ctx.line_width() / 2));
    let (dot, gap) = (ctx.px(2) as i32, ctx.px(3) as i32);
    let font = ctx.font(ctx.ts.legend);
    let size = ctx.ts.legend as i32;
    let pad = ctx.px(3) as i32;
    let mut rows_end = [i32::MIN; ANNOTATION_ROWS];
    for (t, text) in &shown {
        let t = *t as f64;
        chart
            .draw_series(DashedLineSeries::new(
                [(t, y.start), (t, y.end)],
                dot,
                gap,
                style,
            ))
            .map_err(drawing_error)?;
        let label: String = if text.chars().count() > ANNOTATION_CHARS {
            let cut: String = text.chars().take(ANNOTATION_CHARS - 1).collect();
            format!("{}…", cut.trim_end())
        } else {
            text.clone()
        };
        let (px, _) = chart.backend_coord(&(t, y.start));
        // An estimate of the text's width: DejaVu Sans averages ~0.6 em a character.
        let width = (label.chars().count() as f64 * f64::from(size) * 0.6) as i32;
        let plot_right = chart.backend_coord(&(x.end, y.start)).0;
        // Right of the line, or left of it near the right edge.
        let left = if px + pad + width <= plot_right {
            px + pad
        } else {
            px - pad - width
        };
        let Some(row) = rows_end.iter().position(|end| left > *end + pad) else {
            continue;
        };
        rows_end[row] = left + width;
        // Rows from the bottom edge up, each text on the legend's background.
        let top = -(pad + (row as i32 + 1) * (size + pad));
        let (dx, half) = (left - px, pad / 2);
        let backdrop = Rectangle::new(
            [
                (dx - half, top - half),
                (dx + width + half, top + size + half),
            ],
            ctx.theme.legend_background.filled(),
        );
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((t, y.start))
                    + backdrop
                    + Text::new(label, (dx, top), font.clone()),
            ))
            .map_err(drawing_error)?;
    }
    let n = shown.len();
    let marker = ctx.marker();
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
        .map_err(drawing_error)?
        .label(ctx.legend_label(if n == 1 {
            "1 annotation".to_owned()
        } else {
            format!("{n} annotations")
        }))
        .legend(move |(x, y)| {
            PathElement::new(
                [
                    (x + marker / 2, y - marker / 3),
                    (x + marker / 2, y + marker / 3),
                ],
                style,
            )
        });
    Ok(())
}
