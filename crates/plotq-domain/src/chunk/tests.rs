//! The chunk codecs' tests: sizes at the rates plotq is built for, exact round trips of
//! any samples in both versions, and decoding that refuses or survives any bytes.

use super::*;
use proptest::prelude::*;

fn sample(service: &str, t: i64, v: f64) -> Sample {
    Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: MetricName::parse("latency_ms").unwrap(),
        value: v,
        timestamp_ms: t,
        labels: Labels::none(),
    }
}

/// Latencies as a busy service sends them: lognormal, two decimals, 200,000 a minute
/// (a sample every 0.3 ms), one minute of them.
fn busy_minute() -> Chunk {
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let latency = LogNormal::new(40f64.ln(), 0.45).unwrap();
    Chunk::from_pairs(
        (0..200_000)
            .map(|i| {
                let v: f64 = latency.sample(&mut rng);
                (1_700_000_040_000 + i * 3 / 10, (v * 100.0).round() / 100.0)
            })
            .collect(),
    )
}

#[test]
fn busy_latencies_cost_at_most_three_bytes_a_sample() {
    let chunk = busy_minute();
    let v2 = chunk.encode();
    let v1 = chunk.encode_v1();
    let per_sample = |b: &[u8]| b.len() as f64 / chunk.len() as f64;
    assert!(per_sample(&v2) <= 3.0, "{} bytes a sample", per_sample(&v2));
    assert!(per_sample(&v1) > 9.0, "{} bytes a sample", per_sample(&v1));
    assert_eq!(Chunk::decode(&v2).unwrap(), chunk);
    assert_eq!(Chunk::decode(&v1).unwrap(), chunk);
}

#[test]
fn regular_scrapes_and_steady_gauges_cost_bits() {
    // A gauge scraped every 15 s exactly, moving by a unit or two.
    let chunk = Chunk::from_pairs(
        (0..1_000)
            .map(|i| (i * 15_000, 512.0 + (i % 3) as f64))
            .collect(),
    );
    let bytes = chunk.encode();
    assert!(bytes.len() < 1_000 / 2, "{} bytes", bytes.len());
    assert_eq!(Chunk::decode(&bytes).unwrap(), chunk);
}

#[test]
fn values_that_are_no_short_decimal_round_trip_bit_for_bit() {
    let values = [
        -0.0,
        0.1 + 0.2,
        std::f64::consts::PI,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -1e300,
        1e16 + 2.0,
    ];
    let chunk = Chunk::from_pairs(
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64, v))
            .collect(),
    );
    let decoded = Chunk::decode(&chunk.encode()).unwrap();
    let bits = |c: &Chunk| c.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&decoded), bits(&chunk));
    assert_eq!(decoded.timestamps_ms, chunk.timestamps_ms);
}

#[test]
fn batches_split_by_series_and_bucket() {
    let samples = [
        sample("a", 59_999, 1.0),
        sample("a", 60_000, 2.0),
        sample("b", 60_001, 3.0),
        sample("a", 1_000, 4.0),
    ];
    let chunks = into_chunks(&samples);
    let shape: Vec<(&str, i64, Vec<i64>)> = chunks
        .iter()
        .map(|c| {
            (
                c.service.as_str(),
                c.bucket_ms,
                c.chunk.timestamps_ms.clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("a", 0, vec![1_000, 59_999]),
            ("a", 60_000, vec![60_000]),
            ("b", 60_000, vec![60_001]),
        ]
    );
}

#[test]
fn decode_refuses_what_encode_never_writes() {
    assert_eq!(Chunk::decode(&[]), Err(ChunkError::Empty));
    assert_eq!(Chunk::decode(&[9]), Err(ChunkError::Version(9)));
    for good in [
        Chunk::from_pairs(vec![(1_000, 1.0), (2_000, 2.0)]).encode(),
        Chunk::from_pairs(vec![(1_000, 1.0), (2_000, 2.0)]).encode_v1(),
        Chunk::from_pairs(vec![(1_000, 1.0 / 3.0), (2_000, 2.0)]).encode(),
    ] {
        assert!(Chunk::decode(&good).is_ok());
        for cut in 1..good.len() {
            assert!(
                Chunk::decode(&good[..cut]).is_err(),
                "{good:?} cut at {cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Chunk::decode(&trailing), Err(ChunkError::Trailing(1)));
        // A count of 2^40 samples in a 12-byte input: refused before any allocation.
        let mut huge = vec![good[0]];
        put_varint(&mut huge, 1 << 40);
        assert_eq!(Chunk::decode(&huge), Err(ChunkError::TooMany(1 << 40)));
        let mut lying = vec![good[0]];
        put_varint(&mut lying, 1_000);
        lying.extend_from_slice(&[0; 20]);
        assert!(Chunk::decode(&lying).is_err());
    }
    let mut nan = Chunk::from_pairs(vec![(1_000, 1.0), (2_000, 2.0)]).encode_v1();
    let n = nan.len();
    nan[n - 8..].copy_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(Chunk::decode(&nan), Err(ChunkError::Value));
    // Version 2: an unknown value mode (a set padding bit: bits::tests).
    let good = Chunk::from_pairs(vec![(1_000, 1.0), (2_000, 2.0)]).encode();
    let mut mode = good.clone();
    // [2][n][t0 + 2^62: 9 bytes][time mode][k][value mode]…
    mode[2 + 9 + 2] = 7;
    assert!(matches!(
        Chunk::decode(&mode),
        Err(ChunkError::Malformed(_))
    ));
}

/// Any finite `f64`, with short decimals, repeats and the edges often.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        (any::<i32>(), 0i32..7).prop_map(|(m, d)| f64::from(m) / 10f64.powi(d)),
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(5e-324),
    ]
}

/// Timestamps: anywhere in the range, or bursts and regular steps from one start.
fn times(n: usize) -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        proptest::collection::vec(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS, n),
        (
            1_600_000_000_000i64..1_800_000_000_000,
            0i64..20_000,
            0i64..3
        )
            .prop_map(move |(t0, step, jitter)| (0..n as i64)
                .map(|i| t0 + i * step + (i * 7919) % (jitter + 1))
                .collect()),
    ]
}

proptest! {
    #[test]
    fn chunks_round_trip_exactly_in_both_versions(
        (timestamps, values) in (1usize..300).prop_flat_map(|n| (
            times(n),
            prop_oneof![
                proptest::collection::vec(value(), n),
                // A repeated value, or one of few.
                (value(), value()).prop_map(move |(a, b)| (0..n).map(|i| if i % 5 == 0 { b } else { a }).collect()),
            ],
        ))
    ) {
        let chunk = Chunk::from_pairs(timestamps.into_iter().zip(values).collect());
        let bits = |c: &Chunk| c.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for bytes in [chunk.encode(), chunk.encode_v1()] {
            let decoded = Chunk::decode(&bytes).expect("what encode writes decodes");
            prop_assert_eq!(&decoded.timestamps_ms, &chunk.timestamps_ms);
            prop_assert_eq!(bits(&decoded), bits(&chunk));
        }
    }

    #[test]
    fn decode_never_panics_and_allocates_within_the_input(
        version in prop_oneof![Just(1u8), Just(2u8), any::<u8>()],
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        let bytes: Vec<u8> = std::iter::once(version).chain(bytes).collect();
        if let Ok(chunk) = Chunk::decode(&bytes) {
            prop_assert!(chunk.len() <= 4 * bytes.len());
            prop_assert!(chunk.timestamps_ms.is_sorted());
            prop_assert!(chunk.values.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn corrupted_chunks_fail_cleanly_or_decode_valid_samples(
        n in 1usize..200,
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..4),
    ) {
        let chunk = Chunk::from_pairs((0..n as i64).map(|i| (1_700_000_000_000 + i * 3, (i % 17) as f64 / 4.0)).collect());
        let mut bytes = chunk.encode();
        for (at, bit) in flips {
            let len = bytes.len();
            bytes[at % len] ^= 1 << bit;
        }
        if let Ok(decoded) = Chunk::decode(&bytes) {
            prop_assert!(decoded.timestamps_ms.is_sorted());
            prop_assert!(decoded.values.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn grouping_keeps_every_sample_once(
        raw in proptest::collection::vec((0u8..3, 0i64..400_000, 0.0f64..1e6), 0..200)
    ) {
        let samples: Vec<Sample> = raw
            .iter()
            .map(|&(s, t, v)| sample(["a", "b", "c"][s as usize], t, v))
            .collect();
        let chunks = into_chunks(&samples);
        let mut got = Vec::new();
        for c in &chunks {
            let (lo, hi) = c.chunk.span().expect("no empty chunk");
            prop_assert_eq!((bucket_of(lo), bucket_of(hi)), (c.bucket_ms, c.bucket_ms));
            for (&t, v) in c.chunk.timestamps_ms.iter().zip(&c.chunk.values) {
                got.push((c.service.to_string(), t, v.to_bits()));
            }
        }
        let mut want: Vec<(String, i64, u64)> = samples
            .iter()
            .map(|s| (s.service.to_string(), s.timestamp_ms, s.value.to_bits()))
            .collect();
        got.sort();
        want.sort();
        prop_assert_eq!(got, want);
    }
}
