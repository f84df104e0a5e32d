//! What every plot kind shares: the render context (spec, theme, type sizes, range,
//! unit), tick budgets for the image size, label-area sizing, and the styling of the
//! mesh and legend (as macros, so each kind keeps plotters' concrete coordinate types).

use crate::axis;
use crate::theme::{Theme, TypeScale};
use crate::{FONT_FAMILY, PlotData};
use plotq_domain::PlotSpec;
use plotters::style::{Color, IntoFont, TextStyle};

/// Everything a kind needs to know besides its data.
pub struct Ctx<'a> {
    pub spec: &'a PlotSpec,
    pub theme: Theme,
    pub ts: TypeScale,
    pub from_ms: i64,
    pub until_ms: i64,
    /// Unit of the metric's values (`ms`, or empty).
    pub unit: &'static str,
    /// `Latency (ms)`: the value axis description.
    pub value_desc: String,
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
        Self {
            spec,
            theme: Theme::named(spec.theme),
            ts: TypeScale::for_size(spec.width, spec.height),
            from_ms: data.from_ms,
            until_ms: data.until_ms,
            unit,
            value_desc,
        }
    }

    pub fn font(&self, size: u32) -> TextStyle<'static> {
        (FONT_FAMILY, size)
            .into_font()
            .color(&self.theme.foreground)
    }

    /// How many value ticks fit along the x axis without labels touching.
    pub fn max_x_ticks(&self, widest_label_chars: usize) -> usize {
        let label_px = (widest_label_chars.max(3) as f64 + 2.0) * self.ts.tick as f64 * 0.62;
        ((self.spec.width as f64 * 0.8 / label_px) as usize).clamp(2, 12)
    }

    /// The value (x) axis of histograms and CDFs: log ticks, or as many linear ticks
    /// as fit their labels (counted at least `min_label_chars` wide).
    pub fn value_x_axis(
        &self,
        lo: f64,
        hi: f64,
        log: bool,
        min_label_chars: usize,
    ) -> (axis::TickedAxis, axis::TickFormatter) {
        let max_ticks = if log {
            self.max_x_ticks(6)
        } else {
            let (probe, step) = axis::linear_ticks(lo, hi, 10);
            let labels = probe.iter().map(|v| axis::format_tick(*v, step));
            self.max_x_ticks(widest(labels).max(min_label_chars))
        };
        axis::value_axis(lo, hi, log, max_ticks)
    }

    /// How many ticks fit along the y axis.
    pub fn max_y_ticks(&self) -> usize {
        ((self.spec.height as f64 * 0.7 / (self.ts.tick as f64 * 2.6)) as usize).clamp(2, 10)
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

    /// Legend marker length (scales with the type so labels never run into it).
    pub fn marker(&self) -> i32 {
        self.ts.legend as i32 * 3 / 2
    }

    /// Headroom factor for the value axis so a legend of `entries` lines in the upper
    /// corner does not cover data.
    pub fn headroom(&self, entries: usize) -> f64 {
        let plot_px = self.spec.height as f64
            - self.ts.title as f64 * 2.0
            - self.x_label_area() as f64
            - self.ts.tick as f64 * 1.5;
        let legend_px = (entries as f64 + 1.0) * self.ts.legend as f64 * 1.5;
        1.0 / (1.0 - (legend_px / plot_px.max(1.0)).min(0.6)) + 0.05
    }

    pub fn title(&self) -> String {
        self.spec.title()
    }
}

/// Characters in the longest of `labels`.
pub fn widest(labels: impl IntoIterator<Item = String>) -> usize {
    labels
        .into_iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
}

/// A chart builder with the title, margins and label areas every kind uses.
macro_rules! chart_builder {
    ($root:expr, $ctx:expr, $y_area:expr) => {{
        let (top, right, bottom, left) = $ctx.margin();
        let mut builder = plotters::chart::ChartBuilder::on($root);
        builder
            .caption($ctx.title(), $ctx.font($ctx.ts.title))
            .margin_top(top)
            .margin_right(right)
            .margin_bottom(bottom)
            .margin_left(left)
            .x_label_area_size($ctx.x_label_area())
            .y_label_area_size($y_area);
        builder
    }};
}

/// The mesh (grid, axes, tick labels, axis descriptions) in the theme's style.
macro_rules! draw_mesh {
    ($chart:expr, $ctx:expr, $x_desc:expr, $y_desc:expr, $x_fmt:expr, $y_fmt:expr, $nx:expr, $ny:expr) => {
        $chart
            .configure_mesh()
            .x_desc($x_desc)
            .y_desc($y_desc)
            .axis_desc_style($ctx.font($ctx.ts.label))
            .label_style($ctx.font($ctx.ts.tick))
            .axis_style($ctx.theme.muted)
            .bold_line_style($ctx.theme.grid)
            .light_line_style(plotters::style::colors::TRANSPARENT)
            .x_labels($nx + 1)
            .y_labels($ny + 1)
            .x_label_formatter($x_fmt)
            .y_label_formatter($y_fmt)
            .draw()
            .map_err($crate::drawing_error)?
    };
}

/// The legend (upper right unless told otherwise), on the theme's background.
macro_rules! draw_legend {
    ($chart:expr, $ctx:expr) => {
        draw_legend!(
            $chart,
            $ctx,
            plotters::chart::SeriesLabelPosition::UpperRight
        )
    };
    ($chart:expr, $ctx:expr, $position:expr) => {
        $chart
            .configure_series_labels()
            .position($position)
            .margin($ctx.ts.legend / 2)
            .legend_area_size($ctx.marker() as u32 + $ctx.ts.legend / 2)
            .background_style($ctx.theme.legend_background)
            .border_style($ctx.theme.grid)
            .label_font($ctx.font($ctx.ts.legend))
            .draw()
            .map_err($crate::drawing_error)?
    };
}

pub(crate) use {chart_builder, draw_legend, draw_mesh};

/// A solid line style in `color` of `width` pixels.
pub fn stroke(color: plotters::style::RGBColor, width: u32) -> plotters::style::ShapeStyle {
    color.stroke_width(width)
}
