//! `plotq bench render`: the in-process render benchmark, comparable line for line with
//! `bench/matplotlib_histogram.py`, the matplotlib baseline (same input file format, same
//! JSON output).
//! Times statistics + drawing + PNG encoding; not process start or data loading.

use crate::config::tools::BenchRenderArgs;
use anyhow::Context;
use plotq_domain::{PlotKind, PlotSpec, ServiceName};
use plotq_render::{PlotData, SeriesData};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use std::time::Instant;

fn load(args: &BenchRenderArgs) -> anyhow::Result<Vec<f64>> {
    match &args.input {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            anyhow::ensure!(
                bytes.len() % 8 == 0,
                "{} is not a whole number of f64 values",
                path.display()
            );
            Ok(bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect())
        }
        None => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let dist = LogNormal::new(3.0, 0.5).expect("valid lognormal");
            Ok((0..args.n).map(|_| dist.sample(&mut rng)).collect())
        }
    }
}

pub fn run(args: &BenchRenderArgs) -> anyhow::Result<()> {
    let kind = PlotKind::parse(&args.kind).map_err(anyhow::Error::msg)?;
    let values = load(args)?;
    anyhow::ensure!(
        values.iter().all(|v| v.is_finite()),
        "the input holds NaN or infinite values"
    );
    let mut spec = PlotSpec::new(
        kind,
        ServiceName::parse("payment-service").expect("valid name"),
    );
    spec.width = args.width;
    spec.height = args.height;
    spec.scale = args.scale;
    spec.validate()
        .map_err(|e| anyhow::anyhow!("invalid plot: {e:?}"))?;
    // Samples spread evenly over the plot's window, ending at a fixed instant.
    let until_ms = 1_795_341_600_000;
    let span = spec.range.span_ms();
    let n = values.len().max(1) as i64;
    let timestamps_ms = if kind.needs_timestamps() {
        (0..n).map(|i| until_ms - span + i * span / n).collect()
    } else {
        Vec::new()
    };
    let data = PlotData {
        from_ms: until_ms - span,
        until_ms,
        series: vec![SeriesData {
            service: "payment-service".to_owned(),
            timestamps_ms,
            values,
            weight: 1.0,
        }],
        note: None,
        annotations: Vec::new(),
    };
    let reps = args.reps.max(1);
    // Warm-up (font registration, allocator), like the baseline's.
    plotq_render::render(&spec, &data)?;
    let mut times = Vec::with_capacity(reps);
    let mut image = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let rendered = plotq_render::render(&spec, &data)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        image = rendered.bytes;
    }
    times.sort_by(f64::total_cmp);
    if let Some(out) = &args.out {
        std::fs::write(out, &image).with_context(|| format!("writing {}", out.display()))?;
    }
    let round = |v: f64| (v * 100.0).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "renderer": "plotq", "kind": kind.as_str(), "n": data.series[0].values.len(), "png_bytes": image.len(),
            "min_ms": round(times[0]), "median_ms": round(times[times.len() / 2]),
            "max_ms": round(times[times.len() - 1]),
        })
    );
    Ok(())
}
