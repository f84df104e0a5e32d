//! The renderer: a plot spec plus its data becomes image bytes (PNG or SVG).
//!
//! In two steps a caller can time apart, `draw` (the plot into a frame: an indexed
//! framebuffer, or SVG text) and `Drawn::encode` (the frame into image bytes); `render`
//! does both.
//!
//! Synchronous, deterministic and self-contained: the font (DejaVu Sans) is embedded and
//! registered with plotters (`font.rs`), PNGs are drawn into an indexed framebuffer
//! (`backend.rs`) and encoded straight from it (`encode.rs`), so identical input gives
//! byte-identical output on every machine. Each plot kind lives in `kinds/`; shared
//! axis, tick and frame logic in `axis.rs` and `frame.rs`; the types a render takes and
//! gives in `data.rs`. It does no I/O and knows nothing about queues, stores or HTTP;
//! callers run it off their async reactor.
//!
//! Any finite value renders (±`f64::MAX`, subnormals, -0.0, spans of hundreds of
//! decades), and the work of a render is bounded by construction: by the image size
//! (checked against the spec bounds), the number of samples, and constants — never by
//! the magnitudes in the data.
//!
//! The image is `spec.width` × `spec.height` pixels laid out at `spec.scale` image
//! pixels per layout pixel (`frame.rs`). Time-axis kinds also say where their time axis
//! is in the image ([`TimeAxis`]), so a dashboard can map a pixel column to a time.

/// Tick positions, labels and time buckets; public (but not part of the API) so the
/// property tests can check their bounds directly.
#[doc(hidden)]
pub mod axis;
pub mod backend;
mod data;
mod encode;
mod font;
mod frame;
mod kinds;
mod theme;

use plotq_domain::plot::{HEIGHT_RANGE, MAX_SERVICES, MIN_LAYOUT, SCALE_RANGE, WIDTH_RANGE};
use plotq_domain::{ImageFormat, PlotSpec};
use plotters::prelude::*;

pub use data::{PlotData, RenderError, Rendered, SeriesData};
pub use encode::encode_indexed;
pub use theme::Theme;

use data::drawing_error;
use font::register_fonts;

/// Where a time-axis plot's (latency_timeseries, throughput, error_rate, heatmap) x range
/// is in the image: the image pixel columns (`scale` applied) of the plot area's first
/// (`from_ms`) and last (`until_ms`) columns. Column `x` stands for
/// `from_ms + (x - left_px) / (right_px - left_px) * (until_ms - from_ms)`. The job state
/// and `plot.ready` carry it as it is (`plotq_domain::TimeAxis`).
pub use plotq_domain::TimeAxis;

/// Renders `spec` over `data` into an image of `spec.width` × `spec.height` pixels:
/// [`draw`], then [`Drawn::encode`].
///
/// `Unplottable` for a size outside the spec bounds, more series than a plot compares,
/// a time plot whose window does not end after it starts, or a log axis with nothing
/// positive to show; `NoData` when there are no samples (in the window, for time kinds).
pub fn render(spec: &PlotSpec, data: &PlotData) -> Result<Rendered, RenderError> {
    draw(spec, data).map(Drawn::encode)
}

/// A drawn plot, not yet encoded: what [`draw`] returns and [`Drawn::encode`] turns into
/// image bytes.
#[derive(Debug)]
pub struct Drawn {
    frame: Frame,
    content_type: &'static str,
    n_samples: usize,
    time_axis: Option<TimeAxis>,
    text_px: u32,
}

#[derive(Debug)]
enum Frame {
    /// The indexed framebuffer of a PNG.
    Png(backend::IndexedImage),
    /// The document of an SVG.
    Svg(String),
}

impl Drawn {
    /// Where the time axis is, for the kinds that have one.
    pub fn time_axis(&self) -> Option<TimeAxis> {
        self.time_axis
    }

    /// The image bytes: the framebuffer as an indexed PNG, or the SVG text.
    pub fn encode(self) -> Rendered {
        let bytes = match self.frame {
            Frame::Png(image) => encode_indexed(
                &image.pixels,
                &image.palette.to_plte(),
                image.width,
                image.height,
            ),
            Frame::Svg(svg) => svg.into_bytes(),
        };
        Rendered {
            bytes,
            content_type: self.content_type,
            n_samples: self.n_samples,
            time_axis: self.time_axis,
            text_px: self.text_px,
        }
    }
}

/// Draws `spec` over `data` into a frame of `spec.width` × `spec.height` pixels, with
/// the errors of [`render`]; [`Drawn::encode`] makes the image of it.
pub fn draw(spec: &PlotSpec, data: &PlotData) -> Result<Drawn, RenderError> {
    register_fonts();
    check_bounds(spec, data)?;
    let n_samples = data.series.iter().map(SeriesData::samples).sum();
    if data.series.iter().all(|s| s.values.is_empty()) {
        return Err(RenderError::NoData);
    }
    if spec.kind.needs_timestamps() && data.until_ms <= data.from_ms {
        return Err(RenderError::Unplottable(format!(
            "a time axis needs a window that ends after it starts; got [{}, {}]",
            data.from_ms, data.until_ms
        )));
    }
    let ctx = frame::Ctx::new(spec, data);
    let (width, height) = (spec.width, spec.height);
    let (frame, time_axis) = match spec.format {
        ImageFormat::Png => {
            let bg = ctx.theme.background;
            let mut image = backend::IndexedImage::new(width, height, (bg.0, bg.1, bg.2));
            let time_axis = {
                let root = image.backend().into_drawing_area();
                kinds::draw(&root, &ctx, data)?
            };
            (Frame::Png(image), time_axis)
        }
        ImageFormat::Svg => {
            let mut svg = String::new();
            let time_axis = {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                root.fill(&ctx.theme.background).map_err(drawing_error)?;
                let time_axis = kinds::draw(&root, &ctx, data)?;
                root.present().map_err(drawing_error)?;
                time_axis
            };
            (Frame::Svg(svg), time_axis)
        }
    };
    Ok(Drawn {
        frame,
        content_type: spec.format.content_type(),
        n_samples,
        time_axis,
        text_px: ctx.smallest_text_px(),
    })
}

/// What keeps a render's memory bounded whatever the caller built: the image size (the
/// framebuffer is width × height bytes), the scale and layout size (type sizes, hence
/// the text cache's rasters), and the number of series (legend entries).
fn check_bounds(spec: &PlotSpec, data: &PlotData) -> Result<(), RenderError> {
    let ((w_lo, w_hi), (h_lo, h_hi)) = (WIDTH_RANGE, HEIGHT_RANGE);
    if !(w_lo..=w_hi).contains(&spec.width) || !(h_lo..=h_hi).contains(&spec.height) {
        return Err(RenderError::Unplottable(format!(
            "image size {}x{} is outside {w_lo}..={w_hi} x {h_lo}..={h_hi} pixels",
            spec.width, spec.height
        )));
    }
    let (s_lo, s_hi) = SCALE_RANGE;
    let (lw, lh) = spec.layout_size();
    if !(s_lo..=s_hi).contains(&spec.scale) || lw < MIN_LAYOUT.0 || lh < MIN_LAYOUT.1 {
        return Err(RenderError::Unplottable(format!(
            "scale {} (layout {lw}x{lh}) is outside {s_lo}..={s_hi} or under a {}x{} layout",
            spec.scale, MIN_LAYOUT.0, MIN_LAYOUT.1
        )));
    }
    if data.series.len() > MAX_SERVICES {
        return Err(RenderError::Unplottable(format!(
            "a plot draws at most {MAX_SERVICES} services; got {}",
            data.series.len()
        )));
    }
    Ok(())
}
