//! Version 2 of the chunk format: after the common header
//! `[2][n: varint][t0 + 2^62: varint]`,
//!
//! - timestamps: `[mode][k]`, then `n − 1` Exp-Golomb codes of order `k` in the bit
//!   stream — mode 0 the deltas `t[i] − t[i−1]`, mode 1 the zig-zagged deltas of deltas
//!   (regular arrivals: a fixed scrape interval codes in one bit a sample);
//! - values: `[mode]` and its parameters, then the values' codes —
//!   - mode 0, decimal offsets: `[scale][min: zig-zag varint][k]`, every value is
//!     `m / 10^scale` for an integer `m` (|m| ≤ 2^53), coded as `m − min`;
//!   - mode 1, decimal deltas: `[scale][m0: zig-zag varint][k]`, `n − 1` codes of
//!     zig-zagged `m[i] − m[i−1]` (slowly moving gauges);
//!   - mode 2, XOR (values that are no short decimal): the first value's 64 bits, then
//!     Gorilla's XOR with the previous value (`0`: the same; `10` + bits inside the
//!     previous window; `11` + 6 bits of leading zeros + 6 bits of length − 1 + bits).
//!
//! The encoder picks each mode and order `k` to make the chunk shortest. A decimal is
//! lossless by construction: `m as f64 / 10^scale` is one correctly rounded division of
//! two exact numbers, which is the `f64` a client's `12.34` parses to; the encoder checks
//! every value's bits round-trip before choosing a decimal mode, so `-0.0` and values
//! with more digits than 15 decimals fall back to XOR. The bit stream ends at a byte
//! boundary with zero padding; anything after it is an error.

use super::bits::{BitReader, BitWriter, Lengths, MAX_ORDER, unzigzag, zigzag};
use super::{Chunk, ChunkError, T_OFFSET, check_time, put_varint, take_varint};

pub(super) const VERSION: u8 = 2;

const TIME_DELTA: u8 = 0;
const TIME_DELTA_OF_DELTA: u8 = 1;
const VALUE_OFFSET: u8 = 0;
const VALUE_DELTA: u8 = 1;
const VALUE_XOR: u8 = 2;
/// Most decimals a value may have to be coded as a decimal.
const MAX_SCALE: usize = 15;
const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Largest |m| of a decimal (every integer up to it is an exact `f64`).
const MAX_MANTISSA: u64 = 1 << 53;

pub(super) fn encode(chunk: &Chunk) -> Vec<u8> {
    let n = chunk.len();
    let mut out = Vec::with_capacity(24 + n * 2 + n / 2);
    out.push(VERSION);
    put_varint(&mut out, n as u64);
    let ts = &chunk.timestamps_ms;
    put_varint(&mut out, (ts[0] + T_OFFSET) as u64);

    // The deltas, and their zig-zagged deltas: one pass for both lengths' counts.
    let mut deltas = Lengths::default();
    let mut seconds = Lengths::default();
    let mut previous = 0i64;
    for w in ts.windows(2) {
        let d = w[1] - w[0];
        deltas.add(d as u64);
        seconds.add(zigzag(d - previous));
        previous = d;
    }
    let (delta_k, delta_bits) = deltas.best_order();
    let (second_k, second_bits) = seconds.best_order();
    let second_order = second_bits < delta_bits;
    let time_k = if second_order { second_k } else { delta_k };
    out.extend([
        if second_order {
            TIME_DELTA_OF_DELTA
        } else {
            TIME_DELTA
        },
        time_k as u8,
    ]);
    let mut w = BitWriter::with_capacity(n * 2 + n / 2);
    let mut previous = 0i64;
    for pair in ts.windows(2) {
        let d = pair[1] - pair[0];
        if second_order {
            w.put_code(zigzag(d - previous), time_k);
            previous = d;
        } else {
            w.put_code(d as u64, time_k);
        }
    }

    match decimal(&chunk.values) {
        Some((scale, ms)) => {
            let min = *ms.iter().min().expect("a chunk is never empty");
            let mut offsets = Lengths::default();
            let mut steps = Lengths::default();
            offsets.add((ms[0] - min) as u64);
            for pair in ms.windows(2) {
                offsets.add((pair[1] - min) as u64);
                steps.add(zigzag(pair[1] - pair[0]));
            }
            let (offset_k, offset_bits) = offsets.best_order();
            let (step_k, step_bits) = steps.best_order();
            if step_bits < offset_bits {
                out.extend([VALUE_DELTA, scale as u8]);
                put_varint(&mut out, zigzag(ms[0]));
                out.push(step_k as u8);
                for pair in ms.windows(2) {
                    w.put_code(zigzag(pair[1] - pair[0]), step_k);
                }
            } else {
                out.extend([VALUE_OFFSET, scale as u8]);
                put_varint(&mut out, zigzag(min));
                out.push(offset_k as u8);
                for &m in &ms {
                    w.put_code((m - min) as u64, offset_k);
                }
            }
        }
        None => {
            out.push(VALUE_XOR);
            put_xor(&mut w, &chunk.values);
        }
    }
    out.extend(w.finish());
    out
}

/// The smallest scale at which every value is a decimal `m / 10^scale`, and the `m`s;
/// `None` when there is none (up to [`MAX_SCALE`]).
fn decimal(values: &[f64]) -> Option<(usize, Vec<i64>)> {
    // `m` if `v` is `m / 10^scale` exactly.
    let at = |v: f64, scale: usize| {
        let m = mantissa(v, POW10[scale])?;
        ((m as f64 / POW10[scale]).to_bits() == v.to_bits()).then_some(m)
    };
    // The scale the first values need, then every value at it (a pass of products and
    // a pass of exact checks, each without a dependency from one value to the next);
    // a value that needs more raises the scale and the passes run again.
    let mut scale = 0;
    for &v in values.iter().take(8) {
        scale = (scale..=MAX_SCALE).find(|&d| at(v, d).is_some())?;
    }
    let mut ms = Vec::with_capacity(values.len());
    loop {
        let s = POW10[scale];
        ms.clear();
        ms.extend(values.iter().map(|&v| mantissa(v, s).unwrap_or(i64::MAX)));
        let inexact = ms
            .iter()
            .zip(values)
            .position(|(&m, &v)| m == i64::MAX || (m as f64 / s).to_bits() != v.to_bits());
        let Some(i) = inexact else {
            return Some((scale, ms));
        };
        scale = (scale + 1..=MAX_SCALE).find(|&d| at(values[i], d).is_some())?;
    }
}

/// The integer nearest `v · s` (halves away from zero), if its size allows a decimal:
/// the candidate `m` of `v = m / s`, still to be checked exactly. Without a call to
/// libm's `round`: the truncation and the fraction left are exact at this size.
fn mantissa(v: f64, s: f64) -> Option<i64> {
    let x = v * s;
    (x.abs() <= MAX_MANTISSA as f64).then(|| {
        let t = x as i64;
        let fraction = x - t as f64;
        t + i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5)
    })
}

fn put_xor(w: &mut BitWriter, values: &[f64]) {
    let mut previous = values[0].to_bits();
    w.put(previous, 64);
    let mut window: Option<(u32, u32)> = None;
    for v in &values[1..] {
        let bits = v.to_bits();
        let x = bits ^ previous;
        previous = bits;
        if x == 0 {
            w.put(0, 1);
            continue;
        }
        let (lead, trail) = (x.leading_zeros(), x.trailing_zeros());
        match window {
            Some((l, t)) if lead >= l && trail >= t => {
                w.put(0b10, 2);
                w.put(x >> t, 64 - l - t);
            }
            _ => {
                let len = 64 - lead - trail;
                w.put(0b11, 2);
                w.put(u64::from(lead), 6);
                w.put(u64::from(len - 1), 6);
                w.put(x >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
}

/// The XOR-coded values; `None` if the stream is malformed.
fn take_xor(r: &mut BitReader, n: usize, values: &mut Vec<f64>) -> Option<()> {
    let mut bits = r.take_long(64)?;
    values.push(f64::from_bits(bits));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.take(1)? == 1 {
            let x = if r.take(1)? == 0 {
                let (lead, trail) = window?;
                r.take_long(64 - lead - trail)? << trail
            } else {
                let lead = r.take(6)? as u32;
                let len = r.take(6)? as u32 + 1;
                if lead + len > 64 {
                    return None;
                }
                let trail = 64 - lead - len;
                window = Some((lead, trail));
                r.take_long(len)? << trail
            };
            bits ^= x;
        }
        values.push(f64::from_bits(bits));
    }
    Some(())
}

/// Divides every mantissa (an exact `f64`, |m| ≤ 2^53) by `10^scale`: one correctly
/// rounded division each, in a loop of its own so they run side by side (vectorized),
/// not one after each code's read.
fn scale_down(values: &mut [f64], scale: f64) {
    for v in values {
        *v /= scale;
    }
}

/// Decodes what follows the sample count (`bytes` is the whole chunk, `n` ≥ 1 and
/// within the limit).
pub(super) fn decode(bytes: &[u8], n: usize, mut rest: &[u8]) -> Result<Chunk, ChunkError> {
    let at = |rest: &[u8]| bytes.len() - rest.len();
    let t0 = take_varint(&mut rest).ok_or(ChunkError::Malformed(at(rest)))?;
    let t0 = check_time(i64::try_from(t0).map_err(|_| ChunkError::Timestamp)? - T_OFFSET)?;
    let byte = |rest: &mut &[u8]| {
        let (&b, tail) = rest.split_first().ok_or(ChunkError::Malformed(at(rest)))?;
        *rest = tail;
        Ok::<_, ChunkError>(b)
    };
    let order = |k: u8, rest: &[u8]| {
        (u32::from(k) <= MAX_ORDER)
            .then_some(u32::from(k))
            .ok_or(ChunkError::Malformed(at(rest)))
    };
    let time_mode = byte(&mut rest)?;
    if time_mode > TIME_DELTA_OF_DELTA {
        return Err(ChunkError::Malformed(at(rest)));
    }
    let time_k = order(byte(&mut rest)?, rest)?;
    let value_mode = byte(&mut rest)?;
    // (scale, base, k) of the decimal modes.
    let decimal = match value_mode {
        VALUE_OFFSET | VALUE_DELTA => {
            let scale = byte(&mut rest)? as usize;
            let base = take_varint(&mut rest).map(unzigzag);
            let base = base
                .filter(|b| b.unsigned_abs() <= MAX_MANTISSA)
                .ok_or(ChunkError::Malformed(at(rest)))?;
            let k = order(byte(&mut rest)?, rest)?;
            if scale > MAX_SCALE {
                return Err(ChunkError::Malformed(at(rest)));
            }
            Some((POW10[scale], base, k))
        }
        VALUE_XOR => None,
        _ => return Err(ChunkError::Malformed(at(rest))),
    };
    // Every sample after the first takes at least two bits: refuse before allocating.
    if n - 1 > rest.len() * 4 {
        return Err(ChunkError::Malformed(at(rest)));
    }
    let stream_at = at(rest);
    let mut r = BitReader::new(rest);
    let malformed = |r: &BitReader| ChunkError::Malformed(stream_at + r.byte_pos());

    let mut timestamps_ms = Vec::with_capacity(n);
    timestamps_ms.push(t0);
    let mut t = t0;
    if time_mode == TIME_DELTA {
        for _ in 1..n {
            let delta = r.take_code(time_k).ok_or_else(|| malformed(&r))? as i64;
            t = check_time(t + delta)?;
            timestamps_ms.push(t);
        }
    } else {
        let mut delta = 0i64;
        for _ in 1..n {
            let step = r.take_code(time_k).ok_or_else(|| malformed(&r))?;
            delta += unzigzag(step);
            if delta < 0 {
                return Err(malformed(&r));
            }
            t = check_time(t + delta)?;
            timestamps_ms.push(t);
        }
    }

    let mut values = Vec::with_capacity(n);
    let in_range = |m: i64| {
        (m.unsigned_abs() <= MAX_MANTISSA)
            .then_some(m)
            .ok_or(ChunkError::Value)
    };
    match decimal {
        Some((scale, base, k)) if value_mode == VALUE_DELTA => {
            let mut m = base;
            values.push(m as f64);
            for _ in 1..n {
                let step = r.take_code(k).ok_or_else(|| malformed(&r))?;
                m = in_range(m + unzigzag(step))?;
                values.push(m as f64);
            }
            scale_down(&mut values, scale);
        }
        Some((scale, base, k)) => {
            for _ in 0..n {
                let offset = r.take_code(k).ok_or_else(|| malformed(&r))?;
                let m = in_range(base + offset as i64)?;
                values.push(m as f64);
            }
            scale_down(&mut values, scale);
        }
        None => {
            take_xor(&mut r, n, &mut values).ok_or_else(|| malformed(&r))?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(ChunkError::Value);
            }
        }
    }
    match r.finish() {
        Ok(0) => Ok(Chunk {
            timestamps_ms,
            values,
        }),
        Ok(left) => Err(ChunkError::Trailing(left)),
        Err(()) => Err(malformed(&r)),
    }
}
