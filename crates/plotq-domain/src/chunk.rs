//! Chunks: the compact, versioned form samples are stored in. A chunk holds samples of
//! one series (service, metric) within one time bucket, sorted by time: timestamps as
//! varint deltas, values as little-endian `f64`. It crosses the storage boundary
//! (MongoDB documents, the in-memory store), so decoding checks everything encoding
//! guarantees — version, counts, lengths, timestamp range, finite values — and its work
//! is bounded by the input's length.
//!
//! Layout, version 1: `[1][n: varint][t0 + 2^62: varint][n-1 deltas: varint][n × f64 LE]`.
//! A sample costs 8 bytes for its value plus 1–3 bytes for its timestamp at the rates
//! plotq is built for (one sample every few ms to one a minute).

use crate::labels::Labels;
use crate::names::{MetricName, ServiceName};
use crate::rollup::SeriesRollup;
use crate::sample::Sample;
use crate::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use std::collections::BTreeMap;

/// The current chunk format.
pub const CHUNK_VERSION: u8 = 1;
/// Width of a time bucket: a chunk never spans two buckets.
pub const BUCKET_MS: i64 = 60_000;
/// Most samples one chunk holds (bounds what one decode allocates).
pub const MAX_CHUNK_SAMPLES: usize = 1 << 20;
/// Offset that makes every valid timestamp non-negative for the varint.
const T_OFFSET: i64 = 1 << 62;

/// The start of the bucket `timestamp_ms` falls in.
pub fn bucket_of(timestamp_ms: i64) -> i64 {
    timestamp_ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

/// How many distinct one-minute buckets (series × minute) `samples` and `summaries`
/// touch, counting no further than `stop_at` (so a hostile batch costs no more than the
/// bound to check).
pub fn count_buckets(samples: &[Sample], summaries: &[SeriesRollup], stop_at: usize) -> usize {
    let mut seen = std::collections::HashSet::new();
    let keys = samples
        .iter()
        .map(|s| (&s.service, &s.metric, &s.labels, s.timestamp_ms))
        .chain(
            summaries
                .iter()
                .map(|s| (&s.service, &s.metric, &s.labels, s.minute_ms)),
        );
    for (service, metric, labels, t) in keys {
        seen.insert((service.as_str(), metric.as_str(), labels, bucket_of(t)));
        if seen.len() >= stop_at {
            break;
        }
    }
    seen.len()
}

/// The id of an idempotent ingest batch (32 lowercase hex digits): derived from the
/// client's `Idempotency-Key`, its scope and the body, so a retried batch has the same
/// id and a store can write it at most once (deterministic chunk ids, per-rollup
/// markers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchId(String);

impl BatchId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err("a batch id is 32 lowercase hex digits".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why bytes are not a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("empty chunk")]
    Empty,
    #[error("unknown chunk version {0}")]
    Version(u8),
    #[error("chunk truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("chunk of {0} samples is over the limit of {MAX_CHUNK_SAMPLES}")]
    TooMany(u64),
    #[error("chunk timestamp out of range")]
    Timestamp,
    #[error("chunk value is not a finite number")]
    Value,
    #[error("chunk has {0} trailing bytes")]
    Trailing(usize),
}

/// Samples of one series, sorted by time (ties keep their arrival order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
}

impl Chunk {
    /// A chunk of `(timestamp_ms, value)` pairs in any order.
    pub fn from_pairs(mut pairs: Vec<(i64, f64)>) -> Self {
        pairs.sort_by_key(|&(t, _)| t);
        let (timestamps_ms, values) = pairs.into_iter().unzip();
        Self {
            timestamps_ms,
            values,
        }
    }

    /// All samples of `chunks`, as one chunk.
    pub fn merge<'a>(chunks: impl IntoIterator<Item = &'a Chunk>) -> Self {
        let pairs = chunks
            .into_iter()
            .flat_map(|c| {
                c.timestamps_ms
                    .iter()
                    .copied()
                    .zip(c.values.iter().copied())
            })
            .collect();
        Self::from_pairs(pairs)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The first and last timestamps (`None` when empty).
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((*self.timestamps_ms.first()?, *self.timestamps_ms.last()?))
    }

    /// The encoded form (version [`CHUNK_VERSION`]). The chunk must be sorted, within
    /// [`MAX_CHUNK_SAMPLES`], with timestamps in the valid range and finite values — as
    /// every chunk built from parsed samples is.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.timestamps_ms.is_sorted());
        let mut out = Vec::with_capacity(1 + 10 + self.len() * 10);
        out.push(CHUNK_VERSION);
        put_varint(&mut out, self.len() as u64);
        let mut previous = None;
        for &t in &self.timestamps_ms {
            match previous {
                None => put_varint(&mut out, (t + T_OFFSET) as u64),
                Some(p) => put_varint(&mut out, (t - p) as u64),
            }
            previous = Some(t);
        }
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Decodes and checks a chunk; never panics, and allocates at most what `bytes`
    /// can hold.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChunkError> {
        let (&version, mut rest) = bytes.split_first().ok_or(ChunkError::Empty)?;
        if version != CHUNK_VERSION {
            return Err(ChunkError::Version(version));
        }
        let at = |rest: &[u8]| bytes.len() - rest.len();
        let n = take_varint(&mut rest).ok_or(ChunkError::Malformed(at(rest)))?;
        if n > MAX_CHUNK_SAMPLES as u64 {
            return Err(ChunkError::TooMany(n));
        }
        // Every sample takes at least 9 bytes: refuse before allocating for it.
        if n == 0 || (rest.len() as u64) < n * 9 {
            return Err(ChunkError::Malformed(at(rest)));
        }
        let n = n as usize;
        let mut timestamps_ms = Vec::with_capacity(n);
        let mut previous: Option<i64> = None;
        for _ in 0..n {
            let raw = take_varint(&mut rest).ok_or(ChunkError::Malformed(at(rest)))?;
            let t = match previous {
                None => i64::try_from(raw).map_err(|_| ChunkError::Timestamp)? - T_OFFSET,
                Some(p) => i64::try_from(raw)
                    .ok()
                    .and_then(|d| p.checked_add(d))
                    .ok_or(ChunkError::Timestamp)?,
            };
            if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&t) {
                return Err(ChunkError::Timestamp);
            }
            timestamps_ms.push(t);
            previous = Some(t);
        }
        if rest.len() < n * 8 {
            return Err(ChunkError::Malformed(at(rest)));
        }
        let (values_bytes, trailing) = rest.split_at(n * 8);
        if !trailing.is_empty() {
            return Err(ChunkError::Trailing(trailing.len()));
        }
        let values = values_bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect::<Vec<_>>();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ChunkError::Value);
        }
        Ok(Self {
            timestamps_ms,
            values,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return None;
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The samples of one series in one bucket, as a chunk to store.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketChunk {
    pub service: ServiceName,
    pub metric: MetricName,
    pub labels: Labels,
    /// Start of the bucket ([`bucket_of`] every sample's timestamp).
    pub bucket_ms: i64,
    pub chunk: Chunk,
}

/// Groups a batch into one chunk per (series, bucket), split further so that no chunk
/// holds more than [`MAX_CHUNK_SAMPLES`]. Every sample lands in exactly one chunk.
pub fn into_chunks(samples: &[Sample]) -> Vec<BucketChunk> {
    // (service, metric, labels, bucket) -> (index of its first sample, its (timestamp,
    // value)s)
    type Group = (usize, Vec<(i64, f64)>);
    let mut groups: BTreeMap<(&str, &str, &Labels, i64), Group> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        groups
            .entry((
                s.service.as_str(),
                s.metric.as_str(),
                &s.labels,
                bucket_of(s.timestamp_ms),
            ))
            .or_insert_with(|| (i, Vec::new()))
            .1
            .push((s.timestamp_ms, s.value));
    }
    let mut out = Vec::with_capacity(groups.len());
    for ((_, _, _, bucket_ms), (first, pairs)) in groups {
        let sample = &samples[first];
        let chunk = Chunk::from_pairs(pairs);
        for part in 0..chunk.len().div_ceil(MAX_CHUNK_SAMPLES) {
            let range = part * MAX_CHUNK_SAMPLES..((part + 1) * MAX_CHUNK_SAMPLES).min(chunk.len());
            out.push(BucketChunk {
                service: sample.service.clone(),
                metric: sample.metric.clone(),
                labels: sample.labels.clone(),
                bucket_ms,
                chunk: Chunk {
                    timestamps_ms: chunk.timestamps_ms[range.clone()].to_vec(),
                    values: chunk.values[range].to_vec(),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_sample_costs_about_ten_bytes_at_high_rates() {
        // 200k samples a minute: a sample every 0.3 ms.
        let pairs: Vec<(i64, f64)> = (0..10_000)
            .map(|i| (1_700_000_000_000 + i * 3 / 10, 12.5 + i as f64))
            .collect();
        let bytes = Chunk::from_pairs(pairs).encode();
        let per_sample = bytes.len() as f64 / 10_000.0;
        assert!(per_sample <= 9.1, "{per_sample} bytes per sample");
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
        let good = Chunk::from_pairs(vec![(1_000, 1.0), (2_000, 2.0)]).encode();
        assert_eq!(Chunk::decode(&[]), Err(ChunkError::Empty));
        assert_eq!(Chunk::decode(&[9]), Err(ChunkError::Version(9)));
        assert!(Chunk::decode(&good[..good.len() - 1]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Chunk::decode(&trailing), Err(ChunkError::Trailing(1)));
        let mut nan = good.clone();
        let n = nan.len();
        nan[n - 8..].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(Chunk::decode(&nan), Err(ChunkError::Value));
        // A count of 2^40 samples in a 12-byte input: refused before any allocation.
        let mut huge = vec![CHUNK_VERSION];
        put_varint(&mut huge, 1 << 40);
        assert_eq!(Chunk::decode(&huge), Err(ChunkError::TooMany(1 << 40)));
        let mut lying = vec![CHUNK_VERSION];
        put_varint(&mut lying, 1_000);
        lying.extend_from_slice(&[0; 20]);
        assert!(matches!(
            Chunk::decode(&lying),
            Err(ChunkError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn chunks_round_trip(
            pairs in proptest::collection::vec(
                (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS, -1e308f64..1e308),
                1..300,
            )
        ) {
            let chunk = Chunk::from_pairs(pairs);
            prop_assert_eq!(Chunk::decode(&chunk.encode()), Ok(chunk));
        }

        #[test]
        fn decode_never_panics_and_allocates_within_the_input(
            bytes in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            if let Ok(chunk) = Chunk::decode(&bytes) {
                prop_assert!(chunk.len() * 9 <= bytes.len());
                prop_assert!(chunk.timestamps_ms.is_sorted());
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
}
