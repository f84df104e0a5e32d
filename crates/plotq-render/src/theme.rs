//! Colours and type sizes shared by every plot kind.

use plotters::style::RGBColor;

/// The palette a plot is drawn with.
#[derive(Debug, Clone)]
pub struct Theme {
    pub background: RGBColor,
    pub foreground: RGBColor,
    pub grid: RGBColor,
    pub bar_fill: RGBColor,
    pub bar_edge: RGBColor,
    pub mean: RGBColor,
    pub p95: RGBColor,
    pub p99: RGBColor,
}

impl Theme {
    /// Light theme; series colours follow matplotlib's, which users of the prototype know.
    pub fn light() -> Self {
        Self {
            background: RGBColor(255, 255, 255),
            foreground: RGBColor(34, 34, 34),
            grid: RGBColor(221, 221, 221),
            // matplotlib's C0 (#1f77b4) at alpha 0.7 over white, pre-blended.
            bar_fill: RGBColor(98, 160, 203),
            bar_edge: RGBColor(31, 119, 180),
            mean: RGBColor(214, 39, 40),
            p95: RGBColor(255, 140, 0),
            p99: RGBColor(128, 0, 128),
        }
    }
}

/// Font sizes in pixels for an image of `width` × `height`, scaled from 1000×600.
#[derive(Debug, Clone, Copy)]
pub struct TypeScale {
    pub title: u32,
    pub label: u32,
    pub tick: u32,
    pub legend: u32,
}

impl TypeScale {
    pub fn for_size(width: u32, height: u32) -> Self {
        let s = (width as f64 / 1000.0)
            .min(height as f64 / 600.0)
            .clamp(0.6, 3.0);
        let px = |base: f64| (base * s).round().max(9.0) as u32;
        Self {
            title: px(20.0),
            label: px(16.0),
            tick: px(13.0),
            legend: px(14.0),
        }
    }
}
