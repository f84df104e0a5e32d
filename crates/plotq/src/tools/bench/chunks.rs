//! `plotq bench chunks`: the chunk formats side by side on the same samples — the
//! generator's lognormal latencies of one series, two decimals, `--per-minute` a minute
//! for `--minutes` — cut as stores cut them: chunks of `--batch` samples (one ingest
//! batch's part of a minute, as MongoDB keeps them) and whole minutes (as the in-memory
//! store compacts them). For each format (1: varint deltas and raw `f64`; 2: the
//! current) and each cut: bytes a sample, and the median over `--reps` passes of
//! encode and decode nanoseconds a sample. Every decoded chunk is compared with its
//! samples (a wrong round trip fails the run).

use crate::config::tools::BenchChunksArgs;
use crate::tools::generator::Generator;
use plotq_domain::ServiceName;
use plotq_domain::chunk::{Chunk, bucket_of};
use serde_json::json;
use std::time::Instant;

pub fn run(args: &BenchChunksArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.batch > 0 && args.per_minute > 0 && args.reps > 0,
        "nothing to time"
    );
    let service = ServiceName::parse("bench").expect("valid name");
    let mut generator = Generator::new(&[(service, 40.0)], 7);
    let start = bucket_of(1_700_000_000_000);
    let mut minutes = Vec::new();
    for m in 0..i64::from(args.minutes) {
        let samples = generator.latencies(start + (m + 1) * 60_000 - 1, 60_000, args.per_minute);
        minutes.push(Chunk::from_pairs(
            samples.iter().map(|s| (s.timestamp_ms, s.value)).collect(),
        ));
    }
    let batches: Vec<Chunk> = minutes
        .iter()
        .flat_map(|minute| {
            minute
                .timestamps_ms
                .chunks(args.batch)
                .zip(minute.values.chunks(args.batch))
                .map(|(t, v)| Chunk {
                    timestamps_ms: t.to_vec(),
                    values: v.to_vec(),
                })
        })
        .collect();
    let samples: usize = minutes.iter().map(Chunk::len).sum();
    let mut out = serde_json::Map::new();
    out.insert("samples".into(), json!(samples));
    for (cut, chunks) in [("batch", &batches), ("minute", &minutes)] {
        for (format, encode) in [
            ("v1", Chunk::encode_v1 as fn(&Chunk) -> Vec<u8>),
            ("v2", Chunk::encode as fn(&Chunk) -> Vec<u8>),
        ] {
            let (encoded, encode_ns) = median_ns(args.reps, samples, || {
                chunks.iter().map(encode).collect::<Vec<_>>()
            });
            let (decoded, decode_ns) = median_ns(args.reps, samples, || {
                encoded
                    .iter()
                    .map(|b| Chunk::decode(b).expect("what encode writes decodes"))
                    .collect::<Vec<_>>()
            });
            anyhow::ensure!(
                decoded.iter().zip(chunks.iter()).all(|(d, c)| {
                    d.timestamps_ms == c.timestamps_ms
                        && d.values
                            .iter()
                            .map(|v| v.to_bits())
                            .eq(c.values.iter().map(|v| v.to_bits()))
                }),
                "format {format} did not round-trip"
            );
            let bytes: usize = encoded.iter().map(Vec::len).sum();
            out.insert(
                format!("{cut}_{format}"),
                json!({
                    "chunks": chunks.len(),
                    "bytes_per_sample": round(bytes as f64 / samples as f64, 3),
                    "encode_ns_per_sample": round(encode_ns, 2),
                    "decode_ns_per_sample": round(decode_ns, 2),
                }),
            );
        }
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// What the last of `reps` calls of `f` made, and the median of their times in
/// nanoseconds per sample.
fn median_ns<T>(reps: usize, samples: usize, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let started = Instant::now();
        let made = std::hint::black_box(f());
        times.push(started.elapsed().as_nanos() as f64 / samples as f64);
        last = Some(made);
    }
    times.sort_by(f64::total_cmp);
    (last.expect("reps > 0"), times[times.len() / 2])
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}
