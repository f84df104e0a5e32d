//! What several kinds draw or compute alike: the drawing area (`Area`), the time axis
//! (`time_x_axis`, and `time_axis`, where it ended up in the image), a distribution's
//! dashed mean and percentile marks (`draw_marks`), a legend line of text
//! (`legend_note`, e.g. the `dropped_note` of a log axis), the counts of stand-ins
//! (`weighted`), and `Buckets`, samples grouped by the time buckets a plot draws (a
//! partial last bucket left out, as in `plotq_domain::series`), drawn as `runs`.

use crate::data::RenderError;
use crate::frame::{Axis, Chart, Ctx, stroke};
use plotq_domain::TimeAxis;
use plotters::coord::Shift;
use plotters::prelude::*;

pub(crate) type Area<'a, DB> = DrawingArea<DB, Shift>;

/// Where `chart`'s x range `[from, until]` is in the image.
pub(crate) fn time_axis<DB: DrawingBackend, Y: plotters::coord::ranged1d::Ranged>(
    chart: &ChartContext<'_, DB, Cartesian2d<crate::axis::TickedAxis, Y>>,
    ctx: &Ctx<'_>,
) -> TimeAxis
where
    Y::ValueType: Clone,
{
    let y = chart.y_range().start;
    let column = |ms: i64| -> u32 {
        let (x, _) = chart.backend_coord(&(ms as f64, y.clone()));
        x.max(0) as u32
    };
    TimeAxis {
        left_px: column(ctx.from_ms),
        right_px: column(ctx.until_ms),
        from_ms: ctx.from_ms,
        until_ms: ctx.until_ms,
    }
}

/// The time axis (x) of the time kinds over the window: clock-aligned ticks, as many as
/// fit their labels (which name the day too past a day).
pub(crate) fn time_x_axis(ctx: &Ctx<'_>) -> Axis<'static> {
    let (from, until) = (ctx.from_ms, ctx.until_ms);
    let (ticks, format) = crate::axis::time_ticks(
        from,
        until,
        ctx.max_x_ticks(if crate::axis::span_ms(from, until) > 86_400_000 {
            8
        } else {
            5
        }),
    );
    Axis {
        ticks: crate::axis::TickedAxis::linear(from as f64, until as f64, ticks),
        label: Box::new(move |v: &f64| crate::axis::format_time(*v, format)),
        desc: "Time (UTC)",
    }
}

/// Dashed vertical lines from 0 to `top` at each of `marks` (name, value, colour), each
/// with its value in the legend: a distribution's mean and percentiles.
pub(crate) fn draw_marks<'m, DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    ctx: &Ctx<'_>,
    marks: impl IntoIterator<Item = (&'m str, f64, RGBColor)>,
    top: f64,
) -> Result<(), RenderError> {
    let width = ctx.line_width();
    let marker = ctx.marker();
    let (dash, gap) = (ctx.ts.tick as i32 * 2 / 3, ctx.ts.tick as i32 / 3);
    for (name, value, color) in marks {
        let style = stroke(color, width);
        chart
            .draw_series(DashedLineSeries::new(
                [(value, 0.0), (value, top)],
                dash,
                gap,
                style,
            ))
            .map_err(crate::data::drawing_error)?
            .label(ctx.legend_label(format!(
                "{name}: {}",
                crate::axis::format_value(value, ctx.unit)
            )))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + marker, y)], style));
    }
    Ok(())
}

/// A legend line of text alone, without a marker (a note about the data drawn).
pub(crate) fn legend_note<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    ctx: &Ctx<'_>,
    note: String,
) -> Result<(), RenderError> {
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
        .map_err(crate::data::drawing_error)?
        .label(ctx.legend_label(note))
        .legend(|(x, y)| PathElement::new([(x, y)], TRANSPARENT));
    Ok(())
}

/// Scales counts drawn from a series of stand-ins (`SeriesData::weight`).
pub(crate) fn weighted(count: u64, weight: f64) -> u64 {
    (count as f64 * weight.max(1.0)).round() as u64
}

/// Values of a series that a log axis can show, and how many it cannot (≤ 0).
pub(crate) fn positive_only(values: &[f64]) -> (Vec<f64>, usize) {
    let kept: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    let dropped = values.len() - kept.len();
    (kept, dropped)
}

/// A note for the legend about samples a log axis cannot show.
pub(crate) fn dropped_note(dropped: usize) -> Option<String> {
    (dropped > 0).then(|| format!("{dropped} samples ≤ 0 not shown (log axis)"))
}

/// Samples grouped by time bucket: `values[starts[b]..starts[b + 1]]` are bucket `b`'s.
pub(crate) struct Buckets {
    /// Start of bucket 0 (aligned to the bucket width), epoch ms.
    pub origin_ms: i64,
    pub width_ms: i64,
    pub starts: Vec<usize>,
    pub values: Vec<f64>,
    /// Buckets a plot draws, from the first: all but a partial last one
    /// (`BucketGrid::drawn`); `values` still holds every sample of the window.
    pub drawn: usize,
}

impl Buckets {
    /// Groups the samples of the inclusive window `[from, until]` by counting sort: two
    /// passes, no per-bucket allocation. A sample at `until` falls in the last bucket;
    /// samples outside the window are ignored; `drawn` says which buckets to draw. At most [`MAX_BUCKETS`](plotq_domain::series::MAX_BUCKETS) buckets, and no
    /// arithmetic that can overflow, for any window.
    pub fn group(
        timestamps: &[i64],
        values: &[f64],
        from_ms: i64,
        until_ms: i64,
        width_ms: i64,
    ) -> Self {
        let grid = plotq_domain::series::BucketGrid::new(from_ms, until_ms, width_ms);
        let (origin_ms, width_ms, n_buckets) = (grid.origin_ms, grid.width_ms, grid.n_buckets);
        let index = |ts: i64| grid.index(ts);
        let samples = || timestamps.iter().zip(values);
        let mut counts = vec![0usize; n_buckets + 1];
        for (&ts, _) in samples() {
            if let Some(b) = index(ts) {
                counts[b + 1] += 1;
            }
        }
        let drawn = grid.drawn(&counts[1..]);
        for b in 0..n_buckets {
            counts[b + 1] += counts[b];
        }
        let starts = counts;
        let mut fill = starts.clone();
        let mut grouped = vec![0.0; starts[n_buckets]];
        for (&ts, &v) in samples() {
            if let Some(b) = index(ts) {
                grouped[fill[b]] = v;
                fill[b] += 1;
            }
        }
        Self {
            origin_ms,
            width_ms,
            starts,
            values: grouped,
            drawn,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn bucket(&self, b: usize) -> &[f64] {
        &self.values[self.starts[b]..self.starts[b + 1]]
    }

    pub fn start_ms(&self, b: usize) -> i64 {
        let b = i64::try_from(b).unwrap_or(i64::MAX);
        self.origin_ms
            .saturating_add(b.saturating_mul(self.width_ms))
    }

    /// The middle of bucket `b`'s covered part of `[from, until]`, where its point is drawn.
    pub fn center_ms(&self, b: usize, from_ms: i64, until_ms: i64) -> f64 {
        let (lo, hi) = self.covered(b, from_ms, until_ms);
        (i128::from(lo) + i128::from(hi)) as f64 / 2.0
    }

    /// The part of bucket `b` inside `[from, until]` (the first and last may be partial).
    pub fn covered(&self, b: usize, from_ms: i64, until_ms: i64) -> (i64, i64) {
        let start = self.start_ms(b);
        (
            start.max(from_ms),
            start.saturating_add(self.width_ms).min(until_ms),
        )
    }
}

/// Splits `points` (with `None` for empty buckets) into runs drawn as separate lines,
/// so a gap in the data is a gap in the line.
pub(crate) fn runs(points: &[Option<(f64, f64)>]) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for p in points {
        match p {
            Some(p) => current.push(*p),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_group_by_time() {
        let ts = [1_000, 61_000, 61_500, 119_999, 120_000, 500];
        let vs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = Buckets::group(&ts, &vs, 1_000, 120_000, 60_000);
        assert_eq!(b.len(), 2);
        assert_eq!(b.bucket(0), &[1.0]);
        // The window is inclusive: the sample at `until` is in the last bucket.
        assert_eq!(b.bucket(1), &[2.0, 3.0, 4.0, 5.0]);
        assert_eq!(b.covered(0, 1_000, 120_000), (1_000, 60_000));
        assert_eq!(b.drawn, 2);
        // Ending 30 s into a third bucket: it is partial, grouped but not drawn.
        let b = Buckets::group(&ts, &vs, 1_000, 150_000, 60_000);
        assert_eq!((b.len(), b.drawn), (3, 2));
        assert_eq!(b.bucket(2), &[5.0]);
    }

    #[test]
    fn buckets_are_bounded_at_the_ends_of_time() {
        let ts = [i64::MIN, -1, 0, i64::MAX];
        let vs = [1.0, 2.0, 3.0, 4.0];
        for (from, until, width) in [
            (i64::MIN, i64::MAX, 1),
            (i64::MIN, i64::MAX, i64::MAX),
            (i64::MIN + 1, i64::MAX, 86_400_000),
            (i64::MAX, i64::MIN, 1_000),
            (0, 0, 0),
        ] {
            let b = Buckets::group(&ts, &vs, from, until, width);
            assert!(
                (1..=plotq_domain::series::MAX_BUCKETS).contains(&b.len()),
                "{from} {until} {width}"
            );
            let inside = ts.iter().filter(|t| (from..=until).contains(*t)).count();
            assert_eq!(b.values.len(), inside, "{from} {until} {width}");
            for i in 0..b.len() {
                let (lo, hi) = b.covered(i, from, until);
                assert!(b.center_ms(i, from, until).is_finite() && lo <= hi.max(lo));
            }
        }
    }

    #[test]
    fn gaps_split_lines() {
        let pts = [Some((0.0, 1.0)), None, Some((2.0, 1.0)), Some((3.0, 1.0))];
        assert_eq!(runs(&pts).len(), 2);
    }
}
