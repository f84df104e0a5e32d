//! PNG encoding of an RGB framebuffer.
//!
//! Plots use few distinct colours, so when the image has at most 256 of them it is
//! written as an indexed (palette) PNG: a third of the raw bytes of RGB and far better
//! compression. Otherwise it falls back to 8-bit RGB.

use std::collections::HashMap;

/// Encodes `rgb` (row-major, 3 bytes per pixel) as a PNG.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), width as usize * height as usize * 3);
    let mut out = Vec::with_capacity(rgb.len() / 16);
    match palettize(rgb) {
        Some((palette, indices)) => {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_palette(palette);
            enc.set_compression(png::Compression::Balanced);
            enc.set_filter(png::Filter::NoFilter);
            let mut writer = enc.write_header().expect("PNG header to memory");
            writer
                .write_image_data(&indices)
                .expect("PNG data to memory");
        }
        None => {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Balanced);
            enc.set_filter(png::Filter::Sub);
            let mut writer = enc.write_header().expect("PNG header to memory");
            writer.write_image_data(rgb).expect("PNG data to memory");
        }
    }
    out
}

/// Palette and per-pixel indices when the image has at most 256 colours.
fn palettize(rgb: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut lookup: HashMap<[u8; 3], u8> = HashMap::with_capacity(256);
    let mut palette = Vec::with_capacity(256 * 3);
    let mut indices = Vec::with_capacity(rgb.len() / 3);
    let mut last: Option<([u8; 3], u8)> = None;
    for px in rgb.chunks_exact(3) {
        let key = [px[0], px[1], px[2]];
        // Runs of one colour are the common case (background, bars): skip the hash.
        if let Some((k, i)) = last
            && k == key
        {
            indices.push(i);
            continue;
        }
        let idx = match lookup.get(&key) {
            Some(&i) => i,
            None => {
                if lookup.len() == 256 {
                    return None;
                }
                let i = lookup.len() as u8;
                lookup.insert(key, i);
                palette.extend_from_slice(&key);
                i
            }
        };
        last = Some((key, idx));
        indices.push(idx);
    }
    Some((palette, indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info, buf)
    }

    #[test]
    fn few_colours_become_a_palette() {
        let rgb: Vec<u8> = (0..20 * 10).flat_map(|i| [(i % 7) as u8, 0, 255]).collect();
        let png_bytes = encode_png(&rgb, 20, 10);
        let (info, _) = decode(&png_bytes);
        assert_eq!(info.color_type, png::ColorType::Indexed);
        assert_eq!((info.width, info.height), (20, 10));
    }

    #[test]
    fn many_colours_stay_rgb_and_round_trip() {
        let rgb: Vec<u8> = (0..64 * 64u32)
            .flat_map(|i| [(i % 256) as u8, (i / 256) as u8, 7])
            .collect();
        let png_bytes = encode_png(&rgb, 64, 64);
        let (info, data) = decode(&png_bytes);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(data, rgb);
    }
}
