//! What every renderer test shares: the fixed end of every window (`UNTIL`), a spec of
//! a kind and size, generated latencies (or status codes) over a window, reading a PNG
//! back (its size, its pixels), and keeping a rendered image for a look
//! (`PLOTQ_DUMP_DIR=dir`).

use plotq_domain::{PlotKind, PlotSpec, ServiceName};
use plotq_render::{PlotData, SeriesData};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use std::path::PathBuf;

/// 2026-11-22T10:00:00Z: fixed, so renders (golden images among them) do not depend on
/// the clock.
pub const UNTIL: i64 = 1_795_341_600_000;

/// A `width` × `height` spec of `kind` for `payment-service`.
pub fn spec(kind: PlotKind, width: u32, height: u32) -> PlotSpec {
    spec_of("payment-service", kind, width, height)
}

/// A `width` × `height` spec of `kind` for `service`.
pub fn spec_of(service: &str, kind: PlotKind, width: u32, height: u32) -> PlotSpec {
    let mut spec = PlotSpec::new(kind, ServiceName::parse(service).unwrap());
    spec.width = width;
    spec.height = height;
    spec
}

/// Lognormal latencies spread evenly over `span_ms` before `UNTIL`, with a slow mode in
/// the second half (so time plots have a shape); `status` codes instead when asked.
fn generated(name: &str, n: usize, span_ms: i64, seed: u64, status: bool) -> SeriesData {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fast = LogNormal::new(3.0, 0.5).unwrap();
    let slow = LogNormal::new(4.6, 0.3).unwrap();
    let mut timestamps_ms = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let ts = UNTIL - span_ms + (i as i64 * span_ms) / n as i64;
        let late = i > n / 2;
        let v = if status {
            let r: f64 = fast.sample(&mut rng);
            match r as u32 {
                0..=9 => 404.0,
                10..=12 if late => 503.0,
                13 => 500.0,
                14..=16 => 301.0,
                17..=19 => 201.0,
                _ => 200.0,
            }
        } else if late && i % 5 == 0 {
            slow.sample(&mut rng)
        } else {
            fast.sample(&mut rng)
        };
        timestamps_ms.push(ts);
        values.push(v);
    }
    SeriesData {
        service: name.to_owned(),
        timestamps_ms,
        values,
        weight: 1.0,
    }
}

/// About `n` latencies over `span_ms` before `UNTIL` whose load follows a slow wave
/// (more samples a minute at its crests) and whose latency climbs with the load, with
/// noise: what a correlation of p95 against rate should find.
fn loaded(name: &str, n: usize, span_ms: i64) -> SeriesData {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let minutes = (span_ms / 60_000).max(1);
    let per_minute = n as f64 / minutes as f64;
    let mut timestamps_ms = Vec::with_capacity(n * 2);
    let mut values = Vec::with_capacity(n * 2);
    for m in 0..minutes {
        let wave = (m as f64 / 9.0).sin() + 0.35 * (m as f64 / 2.3).sin();
        let load = (1.0 + 0.6 * wave).max(0.1);
        let count = (per_minute * load) as i64;
        let latency = LogNormal::new(2.8 + 0.45 * load, 0.35).unwrap();
        let start = UNTIL - span_ms + m * 60_000;
        for i in 0..count {
            timestamps_ms.push(start + i * 60_000 / count.max(1));
            values.push(latency.sample(&mut rng));
        }
    }
    SeriesData {
        service: name.to_owned(),
        timestamps_ms,
        values,
        weight: 1.0,
    }
}

/// `n` generated samples of `spec`'s first service over its window before `UNTIL`, half
/// as many again for each further one (for a correlation, its y and x series: latencies
/// that climb with the load).
pub fn data_for(spec: &PlotSpec, n: usize) -> PlotData {
    let span = spec.range.span_ms();
    if spec.kind == PlotKind::Correlation {
        // A pair (y, x) a service; compared services differ in volume.
        let series = spec
            .services
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                let s = loaded(s.as_str(), n * (2 + i) / 2, span);
                [s.clone(), s]
            })
            .collect();
        return PlotData {
            from_ms: UNTIL - span,
            until_ms: UNTIL,
            series,
            note: None,
            annotations: Vec::new(),
        };
    }
    let status = matches!(spec.kind, PlotKind::StatusCodes | PlotKind::ErrorRate);
    PlotData {
        from_ms: UNTIL - span,
        until_ms: UNTIL,
        series: spec
            .services
            .iter()
            .enumerate()
            // Compared services differ in volume too (half as many again each).
            .map(|(i, s)| generated(s.as_str(), n * (2 + i) / 2, span, 1 + i as u64, status))
            .collect(),
        note: None,
        annotations: Vec::new(),
    }
}

/// Width, height and RGB pixels (palette expanded, so palette order does not matter).
pub fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Keeps `bytes` as `name` in `PLOTQ_DUMP_DIR`, when set.
pub fn dump(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("PLOTQ_DUMP_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), bytes).unwrap();
    }
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}
