//! `status_codes`: one bar per HTTP status code seen, coloured by class (1xx grey, 2xx
//! green, 3xx blue, 4xx orange, 5xx red), labelled with its share; the legend sums the
//! classes. Values that are not codes (outside 100–599) are counted as "other".
//!
//! At most 501 bars (500 codes and "other"), whatever the values; when they are too many
//! for the width, only every k-th bar is labelled.
//!
//! Several services (or `group_by` values): grouped bars, one per series in each code's
//! slot, in the series' colours, as shares of each series' responses (so a small service
//! compares with a big one); the legend gives each series' responses and 5xx share.

use super::common::{Area, weighted};
use crate::axis;
use crate::data::{PlotData, RenderError, drawing_error};
use crate::font::FONT_FAMILY;
use crate::frame::{self, Axis, Ctx, draw_legend};
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;

pub(crate) fn status_codes<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    if data.series.len() > 1 {
        return grouped(root, ctx, data);
    }
    let counts = code_counts(&data.series[0]);
    let total: u64 = counts.values().sum();
    if total == 0 {
        return Err(RenderError::NoData);
    }
    let bars: Vec<(u16, u64)> = counts.into_iter().collect();
    let mut classes: BTreeMap<u16, u64> = BTreeMap::new();
    for (code, c) in &bars {
        *classes.entry(code / 100).or_default() += c;
    }
    let peak = bars.iter().map(|b| b.1).max().unwrap_or(1) as f64;
    let y_max = peak * ctx.headroom(classes.len()).max(1.15);
    let (y_ticks, y_step) = axis::linear_ticks(0.0, y_max, ctx.max_y_ticks());
    let n = bars.len();
    let codes: Vec<u16> = bars.iter().map(|(code, _)| *code).collect();
    let mut chart = codes_chart(root, ctx, &codes, (y_max, &y_ticks, y_step), "Responses")?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (code, c))| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.36, 0.0), (x + 0.36, *c as f64)],
                ctx.theme.status_color(*code).filled(),
            )
        }))
        .map_err(drawing_error)?;
    // Share above each bar, when the bars are wide enough to carry it.
    let bar_px = ctx.spec.width as f64 * 0.8 / n as f64;
    let share_font = (FONT_FAMILY, ctx.ts.tick)
        .into_font()
        .color(&ctx.theme.foreground)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    if bar_px >= ctx.ts.tick as f64 * 3.2 {
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, c))| {
                let share = *c as f64 / total as f64 * 100.0;
                Text::new(
                    format!("{share:.1}%"),
                    (i as f64, *c as f64),
                    share_font.clone(),
                )
            }))
            .map_err(drawing_error)?;
    }
    let marker = ctx.marker();
    for (class, c) in &classes {
        let color = ctx
            .theme
            .status_color(if *class == 0 { 0 } else { class * 100 });
        let name = if *class == 0 {
            "other".to_owned()
        } else {
            format!("{class}xx")
        };
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(drawing_error)?
            .label(ctx.legend_label(format!(
                "{name}: {:.1}% ({c})",
                *c as f64 / total as f64 * 100.0
            )))
            .legend(move |(x, y)| {
                Rectangle::new(
                    [(x, y - marker / 4), (x + marker, y + marker / 4)],
                    color.filled(),
                )
            });
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// A series' responses per code (0 for "other"), stand-ins counted at their weight.
fn code_counts(series: &crate::data::SeriesData) -> BTreeMap<u16, u64> {
    let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
    for &v in &series.values {
        let code = if (100.0..600.0).contains(&v) && v.fract() == 0.0 {
            v as u16
        } else {
            0
        };
        *counts.entry(code).or_default() += 1;
    }
    // Stand-ins of rollups count for `weight` samples each.
    counts
        .values_mut()
        .for_each(|c| *c = weighted(*c, series.weight));
    counts
}

/// Several series: grouped bars of each code's share of each series' responses.
fn grouped<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    ctx: &Ctx<'_>,
    data: &PlotData,
) -> Result<(), RenderError> {
    let per_series: Vec<BTreeMap<u16, u64>> = data.series.iter().map(code_counts).collect();
    let totals: Vec<u64> = per_series.iter().map(|c| c.values().sum()).collect();
    if totals.iter().all(|t| *t == 0) {
        return Err(RenderError::NoData);
    }
    let codes: Vec<u16> = per_series
        .iter()
        .flat_map(|c| c.keys().copied())
        .collect::<std::collections::BTreeSet<u16>>()
        .into_iter()
        .collect();
    let share = |i: usize, code: u16| -> f64 {
        let n = per_series[i].get(&code).copied().unwrap_or(0);
        if totals[i] == 0 {
            0.0
        } else {
            n as f64 / totals[i] as f64 * 100.0
        }
    };
    let peak = (0..per_series.len())
        .flat_map(|i| codes.iter().map(move |&c| (i, c)))
        .map(|(i, c)| share(i, c))
        .fold(0.0, f64::max)
        .max(1.0);
    let y_max = (peak * ctx.headroom(per_series.len())).min(100.0 * 1.3);
    let (y_ticks, y_step) = axis::linear_ticks(0.0, y_max, ctx.max_y_ticks());
    let mut chart = codes_chart(
        root,
        ctx,
        &codes,
        (y_max, &y_ticks, y_step),
        "Share of responses (%)",
    )?;
    let k = per_series.len() as f64;
    let slot = 0.76 / k;
    let marker = ctx.marker();
    for (i, series) in data.series.iter().enumerate() {
        let color = ctx.theme.series[i % 8];
        let left = -0.38 + i as f64 * slot;
        let errors: u64 = per_series[i]
            .iter()
            .filter(|(code, _)| (500..600).contains(*code))
            .map(|(_, n)| n)
            .sum();
        let error_share = if totals[i] == 0 {
            0.0
        } else {
            errors as f64 / totals[i] as f64 * 100.0
        };
        chart
            .draw_series(codes.iter().enumerate().map(|(x, &code)| {
                let x = x as f64 + left;
                Rectangle::new([(x, 0.0), (x + slot * 0.9, share(i, code))], color.filled())
            }))
            .map_err(drawing_error)?
            .label(ctx.legend_label(format!(
                "{}: {} responses, 5xx {error_share:.1}%",
                series.service,
                plotq_domain::job::thousands(totals[i])
            )))
            .legend(move |(x, y)| {
                Rectangle::new(
                    [(x, y - marker / 4), (x + marker, y + marker / 4)],
                    color.filled(),
                )
            });
    }
    draw_legend(&mut chart, ctx, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// The chart of a status-code plot: a slot per code along x (labelled with it, or
/// "other", every k-th when they are too many for the width), `y_desc` up to `y_max`.
fn codes_chart<'a, DB: DrawingBackend>(
    root: &'a Area<'_, DB>,
    ctx: &Ctx<'_>,
    codes: &[u16],
    (y_max, y_ticks, y_step): (f64, &[f64], f64),
    y_desc: &str,
) -> Result<frame::Chart<'a, DB>, RenderError> {
    let n = codes.len();
    // Label every bar when the labels fit (they do for the usual handful), else every k-th.
    let every = n.div_ceil(ctx.max_x_ticks(5)).max(1);
    let x_ticks: Vec<f64> = (0..n).step_by(every).map(|i| i as f64).collect();
    let label_of = |i: f64| -> String {
        match codes.get(i.round() as usize) {
            Some(0) => "other".to_owned(),
            Some(code) => code.to_string(),
            None => String::new(),
        }
    };
    frame::chart(
        root,
        ctx,
        Axis {
            ticks: axis::TickedAxis::linear(-0.6, n as f64 - 0.4, x_ticks),
            label: Box::new(|v: &f64| label_of(*v)),
            desc: "Status code",
        },
        Axis {
            ticks: axis::TickedAxis::linear(0f64, y_max, y_ticks.to_vec()),
            label: Box::new(move |v: &f64| axis::format_tick(*v, y_step)),
            desc: y_desc,
        },
    )
}
