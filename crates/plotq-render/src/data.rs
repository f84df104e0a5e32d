//! What a render takes and gives: `PlotData` (one `SeriesData` per service, the window,
//! a note), `Rendered` (the image bytes and where the time axis is) and `RenderError`
//! (with `drawing_error`, plotters' failures as one). Plain types; no drawing.

use plotq_domain::TimeAxis;

/// The samples of one service in the plot's range.
#[derive(Debug, Clone)]
pub struct SeriesData {
    pub service: String,
    /// Epoch milliseconds, parallel to `values`; may be empty for kinds that do not
    /// need time (histogram, cdf, status codes).
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    /// How many samples each value stands for: 1 for raw samples, more for the
    /// stand-ins of a rollup (`Rollup::representatives`); counts and rates drawn are
    /// multiplied by it.
    pub weight: f64,
}

impl Default for SeriesData {
    fn default() -> Self {
        Self {
            service: String::new(),
            timestamps_ms: Vec::new(),
            values: Vec::new(),
            weight: 1.0,
        }
    }
}

impl SeriesData {
    /// The samples this series stands for.
    pub fn samples(&self) -> usize {
        (self.values.len() as f64 * self.weight.max(1.0)).round() as usize
    }
}

/// Everything a render needs besides the spec.
#[derive(Debug, Clone)]
pub struct PlotData {
    /// The data window `[from_ms, until_ms]`, epoch milliseconds, both ends inclusive: a
    /// sample whose timestamp equals `until_ms` is drawn. Time kinds ignore samples
    /// outside it (and need `from_ms < until_ms`); value kinds ignore timestamps.
    pub from_ms: i64,
    /// The inclusive end of the data window, epoch milliseconds.
    pub until_ms: i64,
    /// One entry per service of the spec, in the spec's order (at most
    /// [`MAX_SERVICES`](plotq_domain::plot::MAX_SERVICES)).
    pub series: Vec<SeriesData>,
    /// What the plot was drawn from, written small in the image's bottom-right corner
    /// (e.g. "from 1-min rollups, percentiles ±1%").
    pub note: Option<String>,
    /// Moments to mark on a time axis (a deploy, an incident), in time order: drawn as
    /// dotted vertical lines with their text by the kinds that have one; ignored by the
    /// rest, and outside the window.
    pub annotations: Vec<plotq_domain::Annotation>,
}

/// A finished plot.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub n_samples: usize,
    /// Where the time axis is, for the kinds that have one.
    pub time_axis: Option<TimeAxis>,
    /// The size of the image's smallest text (tick labels, legend, note), image pixels:
    /// shown at `layout` size it is that many CSS pixels over `scale`.
    pub text_px: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// There is nothing to draw; permanent for this job.
    #[error("no data to plot")]
    NoData,
    /// The data cannot be drawn as asked (e.g. only non-positive values on a log axis).
    #[error("{0}")]
    Unplottable(String),
    /// plotters failed to draw (a bug, or an impossible size); permanent for this job.
    #[error("drawing failed: {0}")]
    Drawing(String),
}

/// A plotters failure as a `RenderError`.
pub(crate) fn drawing_error<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError::Drawing(format!("{e:?}"))
}
