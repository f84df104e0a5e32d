//! The renderer: a plot spec plus its data becomes PNG bytes.
//!
//! Synchronous, deterministic and self-contained: fonts are embedded in the binary (DejaVu
//! Sans), so identical input gives byte-identical output on every machine. It does no I/O
//! and knows nothing about queues, stores or HTTP; callers run it off their async reactor.

mod encode;
mod histogram;
mod theme;

use plotq_domain::{PlotKind, PlotSpec};
use std::sync::Once;

pub use encode::encode_png;
pub use theme::Theme;

/// The embedded font, registered with plotters under `FONT_FAMILY`.
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
pub(crate) const FONT_FAMILY: &str = "plotq-sans";

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT_FAMILY, plotters::style::FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("embedded font is a valid TrueType file"));
    });
}

/// The data one plot is drawn from.
#[derive(Debug, Default, Clone)]
pub struct Series {
    /// Sample values; reordered by rendering (statistics use selection in place).
    pub values: Vec<f64>,
}

/// A finished plot.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub png: Vec<u8>,
    pub n_samples: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// There is nothing to draw; permanent for this job.
    #[error("no data to plot")]
    NoData,
    /// plotters failed to draw (a bug, or an impossible size); permanent for this job.
    #[error("drawing failed: {0}")]
    Drawing(String),
}

/// Renders `spec` over `series` into a PNG of `spec.width` × `spec.height` pixels.
pub fn render(spec: &PlotSpec, series: &mut Series) -> Result<Rendered, RenderError> {
    register_fonts();
    if series.values.is_empty() {
        return Err(RenderError::NoData);
    }
    let theme = Theme::light();
    let rgb = match spec.kind {
        PlotKind::Histogram => histogram::draw(spec, &mut series.values, &theme)?,
    };
    let png = encode_png(&rgb, spec.width, spec.height);
    Ok(Rendered {
        png,
        n_samples: series.values.len(),
    })
}

pub(crate) fn drawing_error<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError::Drawing(format!("{e:?}"))
}
