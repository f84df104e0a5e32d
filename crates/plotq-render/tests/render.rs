//! Renderer tests: decodable PNGs of the requested size, determinism, degenerate data,
//! and a golden image of the seed-000 histogram.
//!
//! Set `PLOTQ_UPDATE_GOLDEN=1` to rewrite the golden files after a deliberate change
//! (commit them with it), and `PLOTQ_DUMP_DIR=dir` to keep every rendered PNG for a look.

use plotq_domain::{PlotKind, PlotSpec, ServiceName};
use plotq_render::{RenderError, Series, render};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use std::path::PathBuf;

fn spec(width: u32, height: u32) -> PlotSpec {
    let mut spec = PlotSpec::new(
        PlotKind::Histogram,
        ServiceName::parse("payment-service").unwrap(),
    );
    spec.width = width;
    spec.height = height;
    spec
}

fn lognormal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dist = LogNormal::new(3.0, 0.5).unwrap();
    (0..n).map(|_| dist.sample(&mut rng)).collect()
}

fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn dump(name: &str, png_bytes: &[u8]) {
    if let Ok(dir) = std::env::var("PLOTQ_DUMP_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(name), png_bytes).unwrap();
    }
}

#[test]
fn renders_requested_sizes() {
    for (w, h) in [(1000, 600), (400, 250), (3000, 1500), (200, 150)] {
        let mut series = Series {
            values: lognormal(10_000, 1),
        };
        let out = render(&spec(w, h), &mut series).unwrap();
        let (dw, dh, _) = decode(&out.png);
        assert_eq!((dw, dh), (w, h));
        assert_eq!(out.n_samples, 10_000);
        dump(&format!("histogram_{w}x{h}.png"), &out.png);
    }
}

#[test]
fn identical_input_gives_identical_bytes() {
    let a = render(
        &spec(1000, 600),
        &mut Series {
            values: lognormal(5000, 3),
        },
    )
    .unwrap();
    let b = render(
        &spec(1000, 600),
        &mut Series {
            values: lognormal(5000, 3),
        },
    )
    .unwrap();
    assert_eq!(a.png, b.png);
}

#[test]
fn degenerate_data_renders() {
    let cases: [(&str, Vec<f64>); 4] = [
        ("one", vec![42.0]),
        ("equal", vec![7.0; 1000]),
        ("outlier", {
            let mut v = lognormal(10_000, 5);
            v.push(1e9);
            v
        }),
        ("negative", vec![-5.0, 0.0, 3.0, -1.0]),
    ];
    for (name, values) in cases {
        let out = render(&spec(1000, 600), &mut Series { values }).unwrap();
        let (w, h, _) = decode(&out.png);
        assert_eq!((w, h), (1000, 600), "{name}");
        dump(&format!("degenerate_{name}.png"), &out.png);
    }
}

#[test]
fn empty_data_is_a_precise_error() {
    let err = render(&spec(1000, 600), &mut Series::default()).unwrap_err();
    assert!(matches!(err, RenderError::NoData));
}

/// The seed-000 histogram of fixed data, compared pixel by pixel with the checked-in
/// reference (a small tolerance absorbs nothing today: rendering is deterministic).
#[test]
fn golden_histogram() {
    let out = render(
        &spec(1000, 600),
        &mut Series {
            values: lognormal(100_000, 1),
        },
    )
    .unwrap();
    dump("golden_histogram.png", &out.png);
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/histogram_1000x600.png");
    if std::env::var("PLOTQ_UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &out.png).unwrap();
    }
    let want = std::fs::read(&path).expect("golden file exists (PLOTQ_UPDATE_GOLDEN=1 writes it)");
    let (_, _, got_px) = decode(&out.png);
    let (_, _, want_px) = decode(&want);
    assert_eq!(got_px.len(), want_px.len());
    let differing = got_px.iter().zip(&want_px).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 0,
        "{differing} pixel bytes differ from the golden image"
    );
}
