//! The embedded font (DejaVu Sans, `fonts/`), registered with plotters once per
//! process under the family name every kind draws text in.

use plotters::style::FontStyle;
use std::sync::Once;

/// The embedded font, registered with plotters as the `sans-serif` family (so SVG
/// output names a family every browser has).
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Registers the font with plotters (once per process).
pub(crate) fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("embedded font is a valid TrueType file"));
    });
}
