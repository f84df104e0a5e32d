//! Chunks: the compact, versioned form samples are stored in. A chunk holds samples of
//! one series (service, metric) within one time bucket, sorted by time. It crosses the
//! storage boundary (MongoDB documents, the in-memory store), so decoding checks
//! everything encoding guarantees — version, counts, lengths, timestamp range, finite
//! values — and its work is bounded by the input's length.
//!
//! Every chunk starts `[version][n: varint][t0 + 2^62: varint]`. Version 2 ([`v2`], written
//! since stop 33) codes timestamps as deltas or deltas of deltas and values as scaled
//! decimal integers or XORs of their bits, in Exp-Golomb codes ([`bits`]), choosing per
//! chunk what is shortest: about 2 bytes a sample for latencies sent with two decimals
//! at 200,000 a minute. Version 1 ([`v1`]: varint deltas and raw `f64`s, ~9 bytes a
//! sample) is still read.

mod bits;
mod v1;
mod v2;

use crate::labels::Labels;
use crate::names::{MetricName, ServiceName};
use crate::rollup::SeriesRollup;
use crate::sample::Sample;
use crate::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use std::collections::BTreeMap;

/// The current chunk format.
pub const CHUNK_VERSION: u8 = v2::VERSION;
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

    /// The chunk cut into chunks of at most [`MAX_CHUNK_SAMPLES`], in order (itself when
    /// it is within the limit): what may be encoded.
    pub fn parts(self) -> Vec<Chunk> {
        if self.len() <= MAX_CHUNK_SAMPLES {
            return vec![self];
        }
        self.timestamps_ms
            .chunks(MAX_CHUNK_SAMPLES)
            .zip(self.values.chunks(MAX_CHUNK_SAMPLES))
            .map(|(t, v)| Chunk {
                timestamps_ms: t.to_vec(),
                values: v.to_vec(),
            })
            .collect()
    }

    /// The first and last timestamps (`None` when empty).
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((*self.timestamps_ms.first()?, *self.timestamps_ms.last()?))
    }

    /// The encoded form (version [`CHUNK_VERSION`]). The chunk must be sorted, within
    /// [`MAX_CHUNK_SAMPLES`], with timestamps in the valid range and finite values — as
    /// every chunk built from parsed samples is.
    ///
    /// # Panics
    ///
    /// On an empty chunk or one over [`MAX_CHUNK_SAMPLES`] ([`Chunk::parts`] cuts one):
    /// never a chunk that decoding would refuse.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            !self.is_empty() && self.len() <= MAX_CHUNK_SAMPLES,
            "a chunk of {} samples cannot be encoded",
            self.len()
        );
        debug_assert!(self.timestamps_ms.is_sorted());
        v2::encode(self)
    }

    /// The encoded form in version 1, the format before [`CHUNK_VERSION`] (for the
    /// benchmark's baseline and the tests of reading old chunks).
    pub fn encode_v1(&self) -> Vec<u8> {
        v1::encode(self)
    }

    /// Decodes and checks a chunk of any version; never panics, and allocates at most
    /// what `bytes` can hold.
    pub fn decode(bytes: &[u8]) -> Result<Self, ChunkError> {
        let (&version, mut rest) = bytes.split_first().ok_or(ChunkError::Empty)?;
        if version != v1::VERSION && version != v2::VERSION {
            return Err(ChunkError::Version(version));
        }
        let at = |rest: &[u8]| bytes.len() - rest.len();
        let n = take_varint(&mut rest).ok_or(ChunkError::Malformed(at(rest)))?;
        if n > MAX_CHUNK_SAMPLES as u64 {
            return Err(ChunkError::TooMany(n));
        }
        if n == 0 {
            return Err(ChunkError::Malformed(at(rest)));
        }
        if version == v1::VERSION {
            v1::decode(bytes, n as usize, rest)
        } else {
            v2::decode(bytes, n as usize, rest)
        }
    }
}

/// `t` if it is a valid timestamp.
fn check_time(t: i64) -> Result<i64, ChunkError> {
    if (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&t) {
        Ok(t)
    } else {
        Err(ChunkError::Timestamp)
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
        for chunk in Chunk::from_pairs(pairs).parts() {
            out.push(BucketChunk {
                service: sample.service.clone(),
                metric: sample.metric.clone(),
                labels: sample.labels.clone(),
                bucket_ms,
                chunk,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
