//! A plotters drawing backend that paints palette indices instead of RGB pixels.
//!
//! Plots use a handful of colours, so every pixel is one byte (a third of RGB), a fill is
//! a `memset`, and the framebuffer is already what an indexed PNG stores: no separate
//! quantisation pass. Translucent pixels (anti-aliased text, alpha fills) are blended
//! with the pixel below and the blend is added to the palette; blend weights are rounded
//! to 1/16 so the palette stays small. If 256 colours are ever exceeded the nearest
//! existing colour is used: the image degrades slightly, it never fails.
//!
//! Rasterised strings are cached process-wide (only their covered pixels), bounded both
//! in entries and in pixels held, so the cache stays small whatever the type sizes that
//! layouts and scales ask for.

use plotters_backend::FontTransform;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// What a rasterised string depends on (its colour is applied when drawn).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TextKey {
    text: String,
    family: String,
    size_bits: u64,
    style: String,
    transform: u8,
    anchor: (u8, u8),
}

fn transform_code(t: &FontTransform) -> u8 {
    match t {
        FontTransform::None => 0,
        FontTransform::Rotate90 => 1,
        FontTransform::Rotate180 => 2,
        FontTransform::Rotate270 => 3,
    }
}

fn anchor_code_h(h: HPos) -> u8 {
    match h {
        HPos::Left => 0,
        HPos::Center => 1,
        HPos::Right => 2,
    }
}

fn anchor_code_v(v: VPos) -> u8 {
    match v {
        VPos::Top => 0,
        VPos::Center => 1,
        VPos::Bottom => 2,
    }
}

/// A rasterised string: pixel offsets from the anchor point and their coverage.
type TextRaster = Arc<Vec<(i32, i32, f32)>>;

/// Strings rasterised so far in this process, and the pixels they hold. Plots repeat the
/// same tick labels, axis descriptions and titles render after render, so glyph
/// rasterisation is paid once.
static TEXT_CACHE: LazyLock<Mutex<TextCache>> = LazyLock::new(|| Mutex::new(TextCache::default()));
/// Bound on cached strings; past it the cache starts over.
const TEXT_CACHE_ENTRIES: usize = 8192;
/// Bound on the pixels all cached strings hold together (12 bytes each: about 24 MB),
/// whatever their sizes (type grows with the layout and the scale, to 80-pixel titles);
/// past it the cache starts over. A string larger than a sixteenth of it is not kept.
const TEXT_CACHE_PIXELS: usize = 2 << 20;

#[derive(Default)]
struct TextCache {
    rasters: HashMap<TextKey, TextRaster>,
    pixels: usize,
}

impl TextCache {
    fn insert(&mut self, key: TextKey, raster: TextRaster) {
        if raster.len() > TEXT_CACHE_PIXELS / 16 {
            return;
        }
        if self.rasters.len() >= TEXT_CACHE_ENTRIES
            || self.pixels + raster.len() > TEXT_CACHE_PIXELS
        {
            self.rasters.clear();
            self.pixels = 0;
        }
        self.pixels += raster.len();
        if let Some(old) = self.rasters.insert(key, raster) {
            self.pixels -= old.len();
        }
    }
}

/// Error type of the indexed backend (drawing into memory cannot fail).
#[derive(Debug)]
pub struct NoError;

impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}

impl std::error::Error for NoError {}

/// What a blend depends on: the index below, the colour drawn, its weight in 16ths.
type BlendKey = (u8, (u8, u8, u8), u16);

/// Slots of the colour → index table (open addressing; four times the most colours).
const TABLE_SLOTS: usize = 1024;

/// Up to 256 colours and the index of each.
#[derive(Debug)]
pub struct Palette {
    pub colors: Vec<[u8; 3]>,
    /// `rgb + 1` (0 = empty) and its index, probed linearly from a hash of the colour.
    table: Vec<(u32, u8)>,
    last: Option<([u8; 3], u8)>,
    /// The most recent blend and its result.
    last_blend: Option<(BlendKey, u8)>,
}

impl Default for Palette {
    fn default() -> Self {
        Self {
            colors: Vec::with_capacity(256),
            table: vec![(0, 0); TABLE_SLOTS],
            last: None,
            last_blend: None,
        }
    }
}

impl Palette {
    pub fn index_of(&mut self, rgb: [u8; 3]) -> u8 {
        if let Some((c, i)) = self.last
            && c == rgb
        {
            return i;
        }
        let key = (u32::from(rgb[0]) << 16 | u32::from(rgb[1]) << 8 | u32::from(rgb[2])) + 1;
        let mut slot = (key.wrapping_mul(0x9E37_79B1) >> 22) as usize % TABLE_SLOTS;
        let i = loop {
            match self.table[slot] {
                (0, _) if self.colors.len() < 256 => {
                    let i = self.colors.len() as u8;
                    self.colors.push(rgb);
                    self.table[slot] = (key, i);
                    break i;
                }
                (0, _) => break self.nearest(rgb),
                (k, i) if k == key => break i,
                _ => slot = (slot + 1) % TABLE_SLOTS,
            }
        };
        self.last = Some((rgb, i));
        i
    }

    fn nearest(&self, rgb: [u8; 3]) -> u8 {
        let dist =
            |c: &[u8; 3]| -> i32 { (0..3).map(|k| (c[k] as i32 - rgb[k] as i32).pow(2)).sum() };
        self.colors
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| dist(c))
            .map(|(i, _)| i as u8)
            .unwrap_or(0)
    }

    /// Flat `RGBRGB…` bytes for the PNG `PLTE` chunk.
    pub fn to_plte(&self) -> Vec<u8> {
        self.colors.iter().flatten().copied().collect()
    }
}

/// An indexed image: palette plus one index per pixel.
#[derive(Debug)]
pub struct IndexedImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub palette: Palette,
}

impl IndexedImage {
    /// A `width` × `height` image filled with `background`.
    pub fn new(width: u32, height: u32, background: (u8, u8, u8)) -> Self {
        let mut palette = Palette::default();
        let bg = palette.index_of([background.0, background.1, background.2]);
        Self {
            width,
            height,
            pixels: vec![bg; width as usize * height as usize],
            palette,
        }
    }

    /// A plotters backend drawing into this image.
    pub fn backend(&mut self) -> IndexedBackend<'_> {
        IndexedBackend {
            width: self.width,
            height: self.height,
            pixels: &mut self.pixels,
            palette: &mut self.palette,
        }
    }
}

/// The plotters backend over an `IndexedImage`.
#[derive(Debug)]
pub struct IndexedBackend<'a> {
    width: u32,
    height: u32,
    pixels: &'a mut [u8],
    palette: &'a mut Palette,
}

impl IndexedBackend<'_> {
    #[inline]
    fn offset(&self, (x, y): BackendCoord) -> Option<usize> {
        (x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height)
            .then(|| y as usize * self.width as usize + x as usize)
    }

    fn blend(&mut self, at: usize, color: BackendColor) -> u8 {
        // Round the weight to 1/16 so repeated blends reuse palette entries; integer
        // arithmetic, and the last blend remembered (neighbouring pixels repeat it).
        let a = (color.alpha.clamp(0.0, 1.0) * 16.0 + 0.5) as u16;
        let under_index = self.pixels[at];
        let key = (under_index, color.rgb, a);
        if let Some((k, result)) = self.palette.last_blend
            && k == key
        {
            return result;
        }
        let under = self.palette.colors[under_index as usize];
        let mix = |fg: u8, bg: u8| ((fg as u16 * a + bg as u16 * (16 - a) + 8) / 16) as u8;
        let (r, g, b) = color.rgb;
        let result = self
            .palette
            .index_of([mix(r, under[0]), mix(g, under[1]), mix(b, under[2])]);
        self.palette.last_blend = Some((key, result));
        result
    }
}

impl DrawingBackend for IndexedBackend<'_> {
    type ErrorType = NoError;

    fn get_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<NoError>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<NoError>> {
        Ok(())
    }

    #[inline]
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<NoError>> {
        let Some(at) = self.offset(point) else {
            return Ok(());
        };
        if color.alpha >= 0.97 {
            let (r, g, b) = color.rgb;
            self.pixels[at] = self.palette.index_of([r, g, b]);
        } else if color.alpha > 0.03 {
            self.pixels[at] = self.blend(at, color);
        }
        Ok(())
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<NoError>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        let key = TextKey {
            text: text.to_owned(),
            family: style.family().as_str().to_owned(),
            size_bits: style.size().to_bits(),
            style: style.style().as_str().to_owned(),
            transform: transform_code(&style.transform()),
            anchor: (anchor_code_h(anchor.h_pos), anchor_code_v(anchor.v_pos)),
        };
        let cached = TEXT_CACHE
            .lock()
            .expect("text cache lock")
            .rasters
            .get(&key)
            .cloned();
        let raster = match cached {
            Some(r) => r,
            None => {
                let r = Arc::new(rasterize(text, style)?);
                TEXT_CACHE
                    .lock()
                    .expect("text cache lock")
                    .insert(key, r.clone());
                r
            }
        };
        for &(dx, dy, coverage) in raster.iter() {
            self.draw_pixel(
                (pos.0 + dx, pos.1 + dy),
                BackendColor {
                    alpha: color.alpha * coverage as f64,
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<NoError>> {
        // Grid lines, axes and dash segments are 1-pixel horizontal or vertical lines:
        // fill them as rectangles instead of walking them pixel by pixel.
        if style.stroke_width() == 1
            && style.color().alpha >= 0.97
            && (from.0 == to.0 || from.1 == to.1)
        {
            return self.draw_rect(from, to, style, true);
        }
        plotters_backend::rasterizer::draw_line(self, from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<NoError>> {
        let color = style.color();
        if !fill || color.alpha < 0.97 {
            return plotters_backend::rasterizer::draw_rect(
                self,
                upper_left,
                bottom_right,
                style,
                fill,
            );
        }
        let (x0, x1) = (
            upper_left.0.min(bottom_right.0),
            upper_left.0.max(bottom_right.0),
        );
        let (y0, y1) = (
            upper_left.1.min(bottom_right.1),
            upper_left.1.max(bottom_right.1),
        );
        let x0 = x0.clamp(0, self.width as i32 - 1) as usize;
        let x1 = x1.clamp(0, self.width as i32 - 1) as usize;
        let y0 = y0.clamp(0, self.height as i32 - 1) as usize;
        let y1 = y1.clamp(0, self.height as i32 - 1) as usize;
        if upper_left.0.max(bottom_right.0) < 0 || upper_left.1.max(bottom_right.1) < 0 {
            return Ok(());
        }
        let (r, g, b) = color.rgb;
        let idx = self.palette.index_of([r, g, b]);
        let w = self.width as usize;
        for y in y0..=y1 {
            self.pixels[y * w + x0..=y * w + x1].fill(idx);
        }
        Ok(())
    }
}

/// Rasterises `text` as plotters' default `draw_text` would, relative to its anchor.
fn rasterize<TStyle: BackendTextStyle>(
    text: &str,
    style: &TStyle,
) -> Result<Vec<(i32, i32, f32)>, DrawingErrorKind<NoError>> {
    let base_alpha = style.color().alpha.max(f64::MIN_POSITIVE);
    let ((min_x, min_y), (max_x, max_y)) = style
        .layout_box(text)
        .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
    let (width, height) = (max_x - min_x, max_y - min_y);
    let dx = match style.anchor().h_pos {
        HPos::Left => 0,
        HPos::Right => -width,
        HPos::Center => -width / 2,
    };
    let dy = match style.anchor().v_pos {
        VPos::Top => 0,
        VPos::Center => -height / 2,
        VPos::Bottom => -height,
    };
    let transform = style.transform();
    let mut pixels = Vec::new();
    let drawn = style.draw(text, (0, 0), |x, y, color| {
        // Only covered pixels are kept (the glyph boxes are mostly empty).
        if color.alpha > 0.0 {
            let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
            pixels.push((x, y, (color.alpha / base_alpha) as f32));
        }
        Ok::<(), NoError>(())
    });
    match drawn {
        Ok(Ok(())) => Ok(pixels),
        Ok(Err(e)) => Err(DrawingErrorKind::DrawingError(e)),
        Err(e) => Err(DrawingErrorKind::FontError(Box::new(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_cache_is_bounded_in_pixels() {
        let mut cache = TextCache::default();
        let key = |i: usize| TextKey {
            text: i.to_string(),
            family: String::new(),
            size_bits: 0,
            style: String::new(),
            transform: 0,
            anchor: (0, 0),
        };
        let raster = Arc::new(vec![(0, 0, 1.0f32); TEXT_CACHE_PIXELS / 20]);
        for i in 0..100 {
            cache.insert(key(i), raster.clone());
            assert!(cache.pixels <= TEXT_CACHE_PIXELS);
            assert_eq!(cache.pixels, cache.rasters.len() * raster.len());
        }
        // A string too large to keep is drawn, not cached.
        cache.insert(key(1000), Arc::new(vec![(0, 0, 1.0); TEXT_CACHE_PIXELS]));
        assert!(!cache.rasters.contains_key(&key(1000)));
    }

    #[test]
    fn fills_and_blends_into_a_small_palette() {
        let mut image = IndexedImage::new(10, 10, (255, 255, 255));
        let red = BackendColor {
            alpha: 1.0,
            rgb: (255, 0, 0),
        };
        let half_black = BackendColor {
            alpha: 0.5,
            rgb: (0, 0, 0),
        };
        {
            let mut b = image.backend();
            b.draw_rect((2, 2), (4, 4), &red, true).unwrap();
            b.draw_pixel((0, 0), half_black).unwrap();
            // Off-canvas drawing is ignored, not a panic.
            b.draw_pixel((-1, 50), red).unwrap();
            b.draw_rect((-5, -5), (-1, -1), &red, true).unwrap();
        }
        assert_eq!(image.pixels[3 * 10 + 3], 1);
        assert_eq!(image.palette.colors[1], [255, 0, 0]);
        assert_eq!(
            image.palette.colors[image.pixels[0] as usize],
            [128, 128, 128]
        );
    }

    #[test]
    fn palette_never_exceeds_256() {
        let mut p = Palette::default();
        for i in 0..1000u32 {
            p.index_of([(i % 256) as u8, (i / 256) as u8, 0]);
        }
        assert_eq!(p.colors.len(), 256);
        assert_eq!(p.index_of([3, 3, 0]), p.index_of([3, 3, 0]));
    }
}
