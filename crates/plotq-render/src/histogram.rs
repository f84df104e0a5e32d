//! The latency histogram (seed 000): equal-width bins, dashed mean/p95/p99 markers with
//! their values in the legend, title, axis labels and grid.

use crate::theme::{Theme, TypeScale};
use crate::{FONT_FAMILY, RenderError, drawing_error};
use plotq_domain::PlotSpec;
use plotq_domain::stats;
use plotters::prelude::*;

/// Fraction of the y range kept free above the tallest bar, so the legend in the upper
/// right corner never covers data.
const HEADROOM: f64 = 1.35;

/// Draws the histogram into a fresh RGB framebuffer of `spec.width` × `spec.height`.
pub(crate) fn draw(
    spec: &PlotSpec,
    values: &mut [f64],
    theme: &Theme,
) -> Result<Vec<u8>, RenderError> {
    let summary = stats::summarize(values).ok_or(RenderError::NoData)?;
    let bins = stats::bin(values, spec.bins as usize, summary.min, summary.max);
    let (width, height) = (spec.width, spec.height);
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&theme.background).map_err(drawing_error)?;
        let ts = TypeScale::for_size(width, height);
        let font = |size: u32| (FONT_FAMILY, size).into_font().color(&theme.foreground);
        let y_max = (bins.max_count() as f64 * HEADROOM).max(1.0);
        let x_step = nice_step(bins.hi - bins.lo, 10);
        let y_step = nice_step(y_max, 8);
        let mut chart = ChartBuilder::on(&root)
            .caption(spec.title(), font(ts.title))
            .margin(ts.tick)
            .x_label_area_size(ts.label * 3)
            .y_label_area_size(ts.tick * 4 + ts.label * 2)
            .build_cartesian_2d(bins.lo..bins.hi, 0f64..y_max)
            .map_err(drawing_error)?;
        chart
            .configure_mesh()
            .x_desc(format!("{} (ms)", humanize_metric(spec.metric.as_str())))
            .y_desc("Frequency")
            .axis_desc_style(font(ts.label))
            .label_style(font(ts.tick))
            .axis_style(theme.foreground)
            .bold_line_style(theme.grid)
            .light_line_style(TRANSPARENT)
            .x_labels(((bins.hi - bins.lo) / x_step).ceil() as usize + 1)
            .y_labels((y_max / y_step).ceil() as usize + 1)
            .x_label_formatter(&|v| format_tick(*v, x_step))
            .y_label_formatter(&|v| format_tick(*v, y_step))
            .draw()
            .map_err(drawing_error)?;

        // Legend markers scale with the type so labels never run into them.
        let marker = ts.legend as i32 * 3 / 2;
        let bin_width = bins.width();
        let lo = bins.lo;
        chart
            .draw_series(
                bins.counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| {
                        let x0 = lo + i as f64 * bin_width;
                        Rectangle::new(
                            [(x0, 0.0), (x0 + bin_width, c as f64)],
                            theme.bar_fill.filled(),
                        )
                    }),
            )
            .map_err(drawing_error)?
            .label("Latency Distribution")
            .legend({
                let fill = theme.bar_fill;
                move |(x, y)| {
                    Rectangle::new(
                        [(x, y - marker / 4), (x + marker, y + marker / 4)],
                        fill.filled(),
                    )
                }
            });
        // Thin bar outlines keep neighbouring bins apart at any size.
        chart
            .draw_series(
                bins.counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| {
                        let x0 = lo + i as f64 * bin_width;
                        Rectangle::new(
                            [(x0, 0.0), (x0 + bin_width, c as f64)],
                            theme.bar_edge.stroke_width(1),
                        )
                    }),
            )
            .map_err(drawing_error)?;

        let line_width = (ts.tick / 6).max(2);
        for (name, value, color) in [
            ("Mean", summary.mean, theme.mean),
            ("P95", summary.p95, theme.p95),
            ("P99", summary.p99, theme.p99),
        ] {
            let style = color.stroke_width(line_width);
            chart
                .draw_series(DashedLineSeries::new(
                    [(value, 0.0), (value, y_max)],
                    ts.tick as i32 * 2 / 3,
                    ts.tick as i32 / 3,
                    style,
                ))
                .map_err(drawing_error)?
                .label(format!("{name}: {value:.2}ms"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(ts.tick / 2)
            .legend_area_size(marker as u32 + ts.legend / 2)
            .background_style(theme.background)
            .border_style(theme.grid)
            .label_font(font(ts.legend))
            .draw()
            .map_err(drawing_error)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(buf)
}

/// `latency_ms` → `Latency`: the metric's name without its unit suffix, capitalised.
fn humanize_metric(metric: &str) -> String {
    let base = metric
        .strip_suffix("_ms")
        .unwrap_or(metric)
        .replace('_', " ");
    let mut chars = base.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => base,
    }
}

/// A 1/2/5 × 10^k step that cuts `span` into at most `max_ticks` pieces.
pub(crate) fn nice_step(span: f64, max_ticks: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Formats a tick with just enough decimals for `step` (no `22.400000000000002`).
pub(crate) fn format_tick(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let v = if value.abs() < step * 1e-9 {
        0.0
    } else {
        value
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(100.0, 10), 10.0);
        assert_eq!(nice_step(87.0, 10), 10.0);
        assert_eq!(nice_step(0.9, 10), 0.1);
        assert_eq!(nice_step(0.0, 10), 1.0);
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_tick(1500.0, 500.0), "1500");
    }

    #[test]
    fn metric_names_read_well() {
        assert_eq!(humanize_metric("latency_ms"), "Latency");
        assert_eq!(humanize_metric("db_query_time"), "Db query time");
    }
}
