//! Packed rollups.
//!
//! A `Rollup` holds three `BTreeMap`s: one histogram bucket costs ~25 bytes of nodes
//! when the map is large, and a map of one entry a whole node (~150 bytes). The store
//! keeps each minute as one byte string instead, and unpacks it when read or merged:
//! `[count][sum, min, max: f64 LE][zeros][positive][negative][codes]`, each list
//! `[n]` then `n` × `[key − previous key][count]`, counts and key steps as LEB128 varints,
//! the first step from the lowest key (`-MAX_INDEX`, or 0 for codes). A merge of two
//! packed rollups is at most as long as both together: every key's step only shrinks
//! when keys join it, and a summed count's varint is no longer than the two. A minute
//! with summarized values (`Rollup::summarized`) ends with `[summarized][summary_error:
//! f64 LE]`; one without ends after the codes (most minutes: nothing added).

use plotq_domain::rollup::{MAX_INDEX, Rollup};
use std::collections::BTreeMap;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().expect("a rollup this store packed");
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

fn put_list(out: &mut Vec<u8>, lowest: i64, entries: impl ExactSizeIterator<Item = (i64, u64)>) {
    put_varint(out, entries.len() as u64);
    let mut previous = lowest;
    for (key, n) in entries {
        debug_assert!(key >= previous, "keys ascend from {lowest}");
        put_varint(out, (key - previous) as u64);
        put_varint(out, n);
        previous = key;
    }
}

fn take_list(bytes: &mut &[u8], lowest: i64) -> Vec<(i64, u64)> {
    let n = take_varint(bytes);
    let mut previous = lowest;
    (0..n)
        .map(|_| {
            previous += take_varint(bytes) as i64;
            (previous, take_varint(bytes))
        })
        .collect()
}

fn take_f64(bytes: &mut &[u8]) -> f64 {
    let (value, rest) = bytes.split_at(8);
    *bytes = rest;
    f64::from_le_bytes(value.try_into().expect("8 bytes"))
}

/// A rollup as the store keeps it (its bucket indexes within `±MAX_INDEX`, as
/// `Rollup::add` makes them).
pub(super) fn pack(r: &Rollup) -> Box<[u8]> {
    let entries = r.positive.len() + r.negative.len() + r.codes.len();
    let mut out = Vec::with_capacity(48 + 4 * entries);
    put_varint(&mut out, r.count);
    for x in [r.sum, r.min, r.max] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    put_varint(&mut out, r.zeros);
    let lowest = -i64::from(MAX_INDEX);
    for map in [&r.positive, &r.negative] {
        put_list(
            &mut out,
            lowest,
            map.iter().map(|(&i, &n)| (i64::from(i), n)),
        );
    }
    put_list(
        &mut out,
        0,
        r.codes.iter().map(|(&c, &n)| (i64::from(c), n)),
    );
    put_summarized(&mut out, r.summarized, r.summary_error);
    // A copy at the exact length: shrinking in place could leave it in a larger block.
    out.as_slice().into()
}

/// The rollup `pack` packed.
pub(super) fn unpack(mut bytes: &[u8]) -> Rollup {
    let bytes = &mut bytes;
    let count = take_varint(bytes);
    let (sum, min, max) = (take_f64(bytes), take_f64(bytes), take_f64(bytes));
    let zeros = take_varint(bytes);
    let lowest = -i64::from(MAX_INDEX);
    let index_list = |bytes: &mut &[u8]| -> BTreeMap<i32, u64> {
        take_list(bytes, lowest)
            .into_iter()
            .map(|(i, n)| (i as i32, n))
            .collect()
    };
    let positive = index_list(bytes);
    let negative = index_list(bytes);
    let codes = take_list(bytes, 0)
        .into_iter()
        .map(|(c, n)| (c as u16, n))
        .collect();
    let (summarized, summary_error) = take_summarized(bytes);
    debug_assert!(bytes.is_empty(), "a whole packed rollup");
    Rollup {
        count,
        sum,
        min,
        max,
        positive,
        negative,
        zeros,
        codes,
        summarized,
        summary_error,
    }
}

/// The trailing summarized part, present only when there are summarized values.
fn put_summarized(out: &mut Vec<u8>, summarized: u64, error: f64) {
    if summarized > 0 {
        put_varint(out, summarized);
        out.extend_from_slice(&error.to_le_bytes());
    }
}

fn take_summarized(bytes: &mut &[u8]) -> (u64, f64) {
    if bytes.is_empty() {
        return (0, 0.0);
    }
    (take_varint(bytes), take_f64(bytes))
}

/// `held` (packed) merged with `other`, packed: `Rollup::merge` without unpacking into
/// maps (each list is merged in one pass).
pub(super) fn merge_packed(held: &[u8], other: &Rollup) -> Box<[u8]> {
    if other.count == 0 {
        return held.into();
    }
    let bytes = &mut &held[..];
    let count = take_varint(bytes) + other.count;
    let sum = take_f64(bytes) + other.sum;
    let min = take_f64(bytes).min(other.min);
    let max = take_f64(bytes).max(other.max);
    let zeros = take_varint(bytes) + other.zeros;
    let mut out = Vec::with_capacity(held.len() + 4 * (other.positive.len() + other.codes.len()));
    put_varint(&mut out, count);
    for x in [sum, min, max] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    put_varint(&mut out, zeros);
    let lowest = -i64::from(MAX_INDEX);
    let index = |map: &BTreeMap<i32, u64>| -> Vec<(i64, u64)> {
        map.iter().map(|(&i, &n)| (i64::from(i), n)).collect()
    };
    let codes: Vec<(i64, u64)> = other
        .codes
        .iter()
        .map(|(&c, &n)| (i64::from(c), n))
        .collect();
    for (lowest, theirs) in [
        (lowest, index(&other.positive)),
        (lowest, index(&other.negative)),
        (0, codes),
    ] {
        let ours = take_list(bytes, lowest);
        let mut merged = Vec::with_capacity(ours.len() + theirs.len());
        let (mut a, mut b) = (ours.into_iter().peekable(), theirs.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&(i, m)), Some(&(j, n))) if i == j => {
                    a.next();
                    b.next();
                    (i, m + n)
                }
                (Some(&(i, _)), Some(&(j, _))) if i < j => a.next().expect("peeked"),
                (_, Some(_)) => b.next().expect("peeked"),
                (Some(_), None) => a.next().expect("peeked"),
                (None, None) => break,
            };
            merged.push(next);
        }
        put_list(&mut out, lowest, merged.into_iter());
    }
    let (summarized, error) = take_summarized(bytes);
    put_summarized(
        &mut out,
        summarized + other.summarized,
        error.max(other.summary_error),
    );
    debug_assert!(bytes.is_empty(), "a whole packed rollup");
    out.as_slice().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rollups_read_back_exactly_and_merge_within_both_lengths() {
        let cases: Vec<Vec<f64>> = vec![
            vec![1.0],
            vec![0.0, -0.0, 1e-310],
            vec![200.0, 200.0, 503.0, 599.0, 100.0, 42.5],
            vec![f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 5e-324, -1e-300],
            (0..5_000).map(|i| (i as f64 * 0.37).sin() * 1e4).collect(),
            (0..200).map(f64::from).collect(),
        ];
        let mut rollups: Vec<Rollup> = cases.iter().map(|v| Rollup::of(v)).collect();
        let bucket = |lower, upper, count| plotq_domain::rollup::SummaryBucket {
            lower,
            upper,
            count,
            open: false,
        };
        let summary = [bucket(5.0, 10.0, 3), bucket(100.0, 250.0, 2)];
        rollups.push(Rollup::from_buckets(&summary, Some(420.0), None, None).unwrap());
        for (i, a) in rollups.iter().enumerate() {
            assert_eq!(&unpack(&pack(a)), a, "case {i}");
            for b in &rollups {
                let merged = Rollup::merged([a, b]);
                let packed = merge_packed(&pack(a), b);
                assert_eq!(packed, pack(&merged));
                assert_eq!(unpack(&packed), merged);
                assert!(packed.len() <= pack(a).len() + pack(b).len());
            }
        }
        // A one-sample minute packs into one small allocation.
        assert!(pack(&Rollup::of(&[12.5])).len() <= 40);
    }
}
