//! Version 1 of the chunk format, which every chunk stored before version 2 has:
//! `[1][n: varint][t0 + 2^62: varint][n-1 deltas: varint][n × f64 LE]` — about 9 bytes a
//! sample at high rates. Still decoded (MongoDB keeps chunks for their retention) and
//! still written by [`Chunk::encode_v1`], the baseline `plotq bench chunks` measures
//! version 2 against.

use super::{Chunk, ChunkError, T_OFFSET, check_time, put_varint, take_varint};

pub(super) const VERSION: u8 = 1;

pub(super) fn encode(chunk: &Chunk) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 10 + chunk.len() * 10);
    out.push(VERSION);
    put_varint(&mut out, chunk.len() as u64);
    let mut previous = None;
    for &t in &chunk.timestamps_ms {
        match previous {
            None => put_varint(&mut out, (t + T_OFFSET) as u64),
            Some(p) => put_varint(&mut out, (t - p) as u64),
        }
        previous = Some(t);
    }
    for v in &chunk.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decodes what follows the version byte (`bytes` is the whole chunk).
pub(super) fn decode(bytes: &[u8], n: usize, mut rest: &[u8]) -> Result<Chunk, ChunkError> {
    let at = |rest: &[u8]| bytes.len() - rest.len();
    // Every sample takes at least 9 bytes: refuse before allocating for it.
    if rest.len() < n * 9 {
        return Err(ChunkError::Malformed(at(rest)));
    }
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
        timestamps_ms.push(check_time(t)?);
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
    Ok(Chunk {
        timestamps_ms,
        values,
    })
}
