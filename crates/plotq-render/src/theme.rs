//! Colours and type sizes shared by every plot kind, for the light and dark themes; type
//! sizes come from the layout size (the image size over the spec's `scale`).

use plotq_domain::Theme as ThemeName;
use plotters::style::RGBColor;

/// The palette a plot is drawn with.
#[derive(Debug, Clone)]
pub struct Theme {
    pub background: RGBColor,
    pub foreground: RGBColor,
    pub muted: RGBColor,
    pub grid: RGBColor,
    pub legend_background: RGBColor,
    /// Series colours, in order (first service, second service, …).
    pub series: [RGBColor; 8],
    pub mean: RGBColor,
    pub p95: RGBColor,
    pub p99: RGBColor,
    pub p999: RGBColor,
    /// HTTP status classes 1xx..5xx and "other".
    pub status: [RGBColor; 6],
    /// Heatmap colour ramp from few to many samples.
    pub ramp: [RGBColor; 5],
    pub dark: bool,
}

// The two palettes side by side: each colour as `0xRRGGBB`, `[light, dark]`.
const BACKGROUND: [u32; 2] = [0xffffff, 0x181a1f];
const FOREGROUND: [u32; 2] = [0x222222, 0xe0e2e6];
const MUTED: [u32; 2] = [0x5a5a5a, 0xa0a4ac];
const GRID: [u32; 2] = [0xe1e1e1, 0x343840];
const LEGEND_BACKGROUND: [u32; 2] = [0xffffff, 0x20232a];
const MEAN: [u32; 2] = [0xd62728, 0xf05454];
const P95: [u32; 2] = [0xff8c00, 0xffaa28];
const P99: [u32; 2] = [0x800080, 0xc882ff];
const P999: [u32; 2] = [0x282828, 0xe6e6e6];
/// Series colours: matplotlib's tab10, which users of the prototype know, and its
/// brighter counterpart on dark.
const SERIES: [[u32; 8]; 2] = [
    [
        0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f,
    ],
    [
        0x56a6e6, 0xff9830, 0x60c860, 0xf05454, 0xb88ce6, 0xc88c78, 0xf096d2, 0xaaaaaa,
    ],
];
/// HTTP status classes 1xx..5xx and "other".
const STATUS: [[u32; 6]; 2] = [
    [0x7f7f7f, 0x2ca02c, 0x1f77b4, 0xff7f0e, 0xd62728, 0xa0a0a0],
    [0x969696, 0x60c860, 0x56a6e6, 0xff9830, 0xf05454, 0x787878],
];
/// The heatmap ramp from few to many samples.
const RAMP: [[u32; 5]; 2] = [
    [0xf7fbff, 0x9ecae1, 0x4292c6, 0x08519c, 0x08306b],
    [0x1e2128, 0x214b6e, 0x2882aa, 0x78c8be, 0xfafab4],
];

/// `0xRRGGBB` as a colour.
fn rgb(hex: u32) -> RGBColor {
    let [_, r, g, b] = hex.to_be_bytes();
    RGBColor(r, g, b)
}

impl Theme {
    pub fn named(name: ThemeName) -> Self {
        match name {
            ThemeName::Light => Self::light(),
            ThemeName::Dark => Self::dark(),
        }
    }

    pub fn light() -> Self {
        Self::of(false)
    }

    pub fn dark() -> Self {
        Self::of(true)
    }

    /// The palette's light (`dark == false`) or dark colours.
    fn of(dark: bool) -> Self {
        let i = usize::from(dark);
        Self {
            background: rgb(BACKGROUND[i]),
            foreground: rgb(FOREGROUND[i]),
            muted: rgb(MUTED[i]),
            grid: rgb(GRID[i]),
            legend_background: rgb(LEGEND_BACKGROUND[i]),
            series: SERIES[i].map(rgb),
            mean: rgb(MEAN[i]),
            p95: rgb(P95[i]),
            p99: rgb(P99[i]),
            p999: rgb(P999[i]),
            status: STATUS[i].map(rgb),
            ramp: RAMP[i].map(rgb),
            dark,
        }
    }

    /// Colour for a position `t` in `[0, 1]` along the heatmap ramp (quantised to 32
    /// steps so the image keeps a small palette).
    pub fn ramp_at(&self, t: f64) -> RGBColor {
        let t = (t.clamp(0.0, 1.0) * 32.0).round() / 32.0;
        let scaled = t * (self.ramp.len() - 1) as f64;
        let i = (scaled.floor() as usize).min(self.ramp.len() - 2);
        let f = scaled - i as f64;
        let (a, b) = (self.ramp[i], self.ramp[i + 1]);
        let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Colour of an HTTP status code's class.
    pub fn status_color(&self, code: u16) -> RGBColor {
        match code {
            100..=199 => self.status[0],
            200..=299 => self.status[1],
            300..=399 => self.status[2],
            400..=499 => self.status[3],
            500..=599 => self.status[4],
            _ => self.status[5],
        }
    }
}

/// `fg` at opacity `alpha` over `bg`, as one opaque colour.
pub fn blend(fg: RGBColor, bg: RGBColor, alpha: f64) -> RGBColor {
    let mix = |f: u8, b: u8| (f as f64 * alpha + b as f64 * (1.0 - alpha)).round() as u8;
    RGBColor(mix(fg.0, bg.0), mix(fg.1, bg.1), mix(fg.2, bg.2))
}

/// Font sizes in pixels: in layout pixels from [`TypeScale::for_size`], in image pixels
/// once [`TypeScale::scaled`] by the spec's `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeScale {
    pub title: u32,
    pub label: u32,
    pub tick: u32,
    pub legend: u32,
}

impl TypeScale {
    /// Sizes for a layout of `width` × `height` layout pixels, from 20/16/13/14 at
    /// 1000×600. Smaller layouts shrink type less than the image (as `linear^0.6`) down
    /// to floors that stay legible on a phone and on a dashboard that shows the image up
    /// to 7.5 % smaller than its layout (tick and legend text 12 px, so at least 11 CSS
    /// px on screen; labels 13, title 15);
    /// larger ones grow it as the square root of the size, at most twice (a 3840×2160
    /// image at scale 1 gets 38/30/25/27: it grows with the image, and a full-screen
    /// 4K plot does not shout).
    pub fn for_size(width: u32, height: u32) -> Self {
        let linear = (width as f64 / 1000.0).min(height as f64 / 600.0);
        let s = if linear < 1.0 {
            linear.powf(0.6)
        } else {
            linear.sqrt()
        }
        .clamp(0.4, 2.0);
        let px = |base: f64, floor: f64| (base * s).round().max(floor) as u32;
        Self {
            title: px(20.0, 15.0),
            label: px(16.0, 13.0),
            tick: px(13.0, 12.0),
            legend: px(14.0, 12.0),
        }
    }

    /// These sizes times `scale` (device pixels per layout pixel).
    pub fn scaled(self, scale: u32) -> Self {
        Self {
            title: self.title * scale,
            label: self.label * scale,
            tick: self.tick * scale,
            legend: self.legend * scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TypeScale;

    #[test]
    fn type_stays_legible_and_grows_with_the_layout() {
        let at = |w, h| TypeScale::for_size(w, h);
        assert_eq!(
            at(1000, 600),
            TypeScale {
                title: 20,
                label: 16,
                tick: 13,
                legend: 14
            }
        );
        // Phones: 200×150 (the smallest layout) to 400×225 keep 12-pixel tick labels.
        for (w, h) in [(200, 150), (320, 180), (400, 225), (600, 360)] {
            let ts = at(w, h);
            assert!(
                ts.tick >= 12 && ts.legend >= 12 && ts.label >= 13 && ts.title >= 15,
                "{w}x{h}"
            );
            assert!(ts.tick <= 13, "{w}x{h}");
        }
        // Growing with the image, capped at twice the 1000×600 sizes.
        let big = at(3840, 2160);
        assert!(big.tick > 13 && big.tick <= 26, "{big:?}");
        assert_eq!(at(4000, 4000), at(100_000, 100_000));
        assert_eq!(at(400, 225).scaled(3).tick, at(400, 225).tick * 3);
    }
}
