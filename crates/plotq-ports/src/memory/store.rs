//! `MemoryStore`, the in-process `MetricStore`: the same model as MongoDB — per series,
//! one-minute buckets of encoded chunks (`plotq_domain::chunk`, ~9–10 bytes a sample)
//! and one-minute rollups (`plotq_domain::rollup`, kept packed: a few bytes a histogram
//! bucket) — with the configured raw and rollup retentions, a series bound and a byte
//! bound. The bytes counted are the memory the store holds, not just the encoded samples:
//! every series, bucket, rollup and remembered batch id costs its allocations and its
//! share of the maps' nodes and tables (a new series with one sample ~1 KiB), estimated
//! from the std layouts and glibc's allocation sizes (see "What the store's memory
//! costs"), and checked against the process's resident memory by a test. Data leaves only
//! through retention; an insert that would pass a bound is refused whole
//! (`PortError::Full`), never half-written and never made room for by dropping data.
//! Part of the embedded standalone implementation, and a unit-test double.

use crate::clock::{Clock, SystemClock};
use crate::{MetricStore, Points, PortError, PortResult, Rollups, SeriesQuery, StoreUsage};
use async_trait::async_trait;
use plotq_domain::Sample;
use plotq_domain::chunk::{BUCKET_MS, BatchId, Chunk, bucket_of, into_chunks};
use plotq_domain::rollup::{MAX_INDEX, Rollup};
use std::collections::btree_map::Entry as BTreeEntry;
use std::collections::hash_map::Entry as HashEntry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bucket with more chunks than this has its small chunks merged into one.
const MAX_CHUNKS_PER_BUCKET: usize = 16;
/// Chunks at least this big (encoded) are left as they are.
const BIG_CHUNK_BYTES: usize = 64 * 1024;

/// Retention and size bounds of the in-memory store.
#[derive(Debug, Clone, Copy)]
pub struct MemoryStoreConfig {
    /// Samples older than this (by the clock) are dropped.
    pub retention: Duration,
    /// Rollups older than this are dropped.
    pub rollup_retention: Duration,
    /// Bytes of memory the store may hold (`PLOTQ_MEMORY_STORE_MAX_BYTES`), counted as
    /// `usage().bytes`.
    pub max_bytes: u64,
    /// Series (service, metric) the store may hold (`PLOTQ_MEMORY_STORE_MAX_SERIES`).
    /// The byte bound limits series too (each costs at least ~1 KiB); this one bounds the
    /// cardinality on its own, as every TSDB does.
    pub max_series: usize,
}

/// Default of [`MemoryStoreConfig::max_series`]: a million series of one sample each
/// take ~1 GiB, within the default byte bound of 2 GiB.
const DEFAULT_MAX_SERIES: usize = 1_000_000;

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 86_400),
            max_bytes: 2 << 30,
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// A series' key: the service, a NUL and the metric, in one allocation. Names never hold
/// a NUL (`plotq_domain::names`), so no two series share a key, and a query naming
/// anything else matches none.
fn series_key(service: &str, metric: &str) -> String {
    let mut key = String::with_capacity(service.len() + 1 + metric.len());
    key.push_str(service);
    key.push('\0');
    key.push_str(metric);
    key
}

#[derive(Debug, Default)]
struct Bucket {
    /// Encoded chunks, each allocated at its exact length; the vector is kept at its
    /// exact length too (it is short: at most `MAX_CHUNKS_PER_BUCKET` + 1).
    chunks: Vec<Box<[u8]>>,
    samples: u64,
}

#[derive(Debug, Default)]
struct Series {
    raw: BTreeMap<i64, Bucket>,
    /// Minute rollups, packed (`pack`).
    rollups: BTreeMap<i64, Box<[u8]>>,
}

#[derive(Debug)]
struct Inner {
    series: HashMap<Box<str>, Series>,
    /// The memory held by the series (keys, map nodes, buckets, chunks, rollups), kept
    /// up to date by every change; the tables, whose size follows their capacity, are
    /// added by `held_bytes`.
    bytes: u64,
    samples: u64,
    /// Idempotent batches stored (remembered for `BATCH_MEMORY_MS`, as their 128-bit
    /// value), and the same ids in the order they expire.
    batches: HashSet<u128>,
    batch_expiry: VecDeque<(i64, u128)>,
    /// The raw and rollup horizons (bucket starts) of the last expiry: nothing older is
    /// held, and nothing older is written (inserts skip what is past retention), so
    /// expiry has work only once a horizon moved on to a later bucket.
    expired_before: (i64, i64),
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            series: HashMap::new(),
            bytes: 0,
            samples: 0,
            batches: HashSet::new(),
            batch_expiry: VecDeque::new(),
            expired_before: (i64::MIN, i64::MIN),
        }
    }
}

/// How long a stored batch id is remembered (a retry within it is not stored again).
const BATCH_MEMORY_MS: i64 = 24 * 3600 * 1000;

// ---- What the store's memory costs ----
//
// `usage().bytes` estimates the heap the store holds from the layouts of what it keeps
// (sizes from `size_of`, so they follow the compiler) and three rules of the platform,
// all checked against the process's resident memory by
// `counted_bytes_follow_resident_memory` (many one-sample series, and one series of
// many samples):
// - glibc's malloc (x86-64, aarch64) serves a request of n bytes with a chunk of n plus
//   its 8-byte header, rounded up to 16, at least 32 (`allocation`).
// - A std B-tree node has room for 11 keys and values (an internal node also for 12
//   edges) whatever its fill. Keys appended in order — time moving on, the usual case —
//   leave each full leaf with 6 entries and one separator above it, so a map of n > 11
//   entries has ~n/7 leaves and ~1/6 as many internal nodes (`btree_bytes`); random
//   order fills nodes better, so this errs high.
// - A std `HashMap` (hashbrown) has a power-of-two number of buckets, at most 7/8 of them
//   used, and one control byte per bucket plus 16 in one allocation (`table_bytes`);
//   while it grows, the old and the new tables are both held for a moment.
// A series with one sample costs its key (32), its share of the table (~75–150), a raw
// leaf (464) with its chunk list (32) and chunk (32), a rollup leaf (288) and packed
// rollup (48): ~1 KiB. A sample in a long series costs its encoded bytes (~9–10) and,
// per minute, its share of the nodes (~70 + ~40) and the packed rollup.

/// Bytes a malloc of `n` bytes takes (nothing for 0: Rust allocates no zero-sized block).
const fn allocation(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let chunk = (n + 8).next_multiple_of(16);
    (if chunk < 32 { 32 } else { chunk }) as u64
}

/// Keys and values a B-tree node has room for (std's `CAPACITY`, `2 * B - 1`).
const BTREE_NODE_ENTRIES: usize = 11;

/// Bytes of a std B-tree leaf for `K`, `V`: parent pointer, parent index and length
/// (`u16` each), 11 keys and 11 values, padded to the pointer's alignment (the keys and
/// values here are at most 8-aligned).
const fn btree_leaf<K, V>() -> usize {
    (size_of::<usize>()
        + 2 * size_of::<u16>()
        + BTREE_NODE_ENTRIES * (size_of::<K>() + size_of::<V>()))
    .next_multiple_of(size_of::<usize>())
}

/// Bytes of a std B-tree internal node: a leaf and 12 edges.
const fn btree_internal<K, V>() -> usize {
    btree_leaf::<K, V>() + (BTREE_NODE_ENTRIES + 1) * size_of::<usize>()
}

/// The nodes of a `BTreeMap<K, V>` holding `len` entries (see above).
fn btree_bytes<K, V>(len: usize) -> u64 {
    let leaves = match len {
        0 => 0,
        1..=BTREE_NODE_ENTRIES => 1,
        _ => len.div_ceil(7),
    };
    let internals = if leaves > 1 { leaves.div_ceil(6) } else { 0 };
    leaves as u64 * allocation(btree_leaf::<K, V>())
        + internals as u64 * allocation(btree_internal::<K, V>())
}

/// Buckets of a hashbrown table that reports `capacity` (7/8 of its buckets, or one
/// less than its buckets below 8). A table that lost entries may report less (the
/// slots of removed entries are not all reusable), and be counted at half its size.
fn table_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..=6 => (capacity + 1).next_power_of_two(),
        _ => (capacity / 7 * 8).next_power_of_two(),
    }
}

/// Buckets of a hashbrown table that grew to hold `items` (its `capacity_to_buckets`).
fn buckets_for(items: usize) -> usize {
    match items {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        8..=14 => 16,
        _ => (items * 8 / 7).next_power_of_two(),
    }
}

/// Bytes of a hashbrown table of `T` with `buckets` buckets: the entries (padded to the
/// 16-byte group), one control byte each, and one more group.
fn table_bytes<T>(buckets: usize) -> u64 {
    if buckets == 0 {
        return 0;
    }
    allocation((buckets * size_of::<T>()).next_multiple_of(16) + buckets + 16)
}

/// Bytes a table of `T` holding `len` of `capacity` grows by when `adding` more arrive.
fn table_growth<T>(len: usize, capacity: usize, adding: usize) -> u64 {
    if len + adding <= capacity {
        return 0;
    }
    let grown = buckets_for((len + adding).max(capacity + 1));
    table_bytes::<T>(grown).saturating_sub(table_bytes::<T>(table_buckets(capacity)))
}

/// A series entry of the series table.
type SeriesEntry = (Box<str>, Series);
/// A slot of a bucket's chunk list.
const CHUNK_SLOT: usize = size_of::<Box<[u8]>>();

/// The nodes of a series' two maps.
fn nodes_bytes(raw: usize, rollups: usize) -> u64 {
    btree_bytes::<i64, Bucket>(raw) + btree_bytes::<i64, Box<[u8]>>(rollups)
}

/// A bucket's chunk list and chunks.
fn bucket_bytes(bucket: &Bucket) -> u64 {
    allocation(bucket.chunks.capacity() * CHUNK_SLOT)
        + bucket
            .chunks
            .iter()
            .map(|c| allocation(c.len()))
            .sum::<u64>()
}

// ---- Packed rollups ----
//
// A `Rollup` holds three `BTreeMap`s: one histogram bucket costs ~25 bytes of nodes
// when the map is large, and a map of one entry a whole node (~150 bytes). The store
// keeps each minute as one byte string instead, and unpacks it when read or merged:
// `[count][sum, min, max: f64 LE][zeros][positive][negative][codes]`, each list
// `[n]` then `n` × `[key − previous key][count]`, counts and key steps as LEB128 varints,
// the first step from the lowest key (`-MAX_INDEX`, or 0 for codes). A merge of two
// packed rollups is at most as long as both together: every key's step only shrinks
// when keys join it, and a summed count's varint is no longer than the two.

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
fn pack(r: &Rollup) -> Box<[u8]> {
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
    // A copy at the exact length: shrinking in place could leave it in a larger block.
    out.as_slice().into()
}

/// The rollup `pack` packed.
fn unpack(mut bytes: &[u8]) -> Rollup {
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
    }
}

/// `held` (packed) merged with `other`, packed: `Rollup::merge` without unpacking into
/// maps (each list is merged in one pass).
fn merge_packed(held: &[u8], other: &Rollup) -> Box<[u8]> {
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
    debug_assert!(bytes.is_empty(), "a whole packed rollup");
    out.as_slice().into()
}

/// One series' minute of a batch, prepared outside the lock.
struct Minute {
    /// `series_key(service, metric)`.
    key: String,
    bucket_ms: i64,
    /// Encoded chunks (more than one only past `MAX_CHUNK_SAMPLES`) and their samples;
    /// none when the minute is past the raw retention.
    chunks: Vec<(Box<[u8]>, u64)>,
    /// The minute's rollup, and packed; none past the rollup retention.
    rollup: Option<(Rollup, Box<[u8]>)>,
}

/// `samples` as minutes of series (in series order), without what is past retention:
/// raw buckets ending at or before `horizon`, rollups at or before `rollup_horizon`.
fn prepare(samples: &[Sample], horizon: i64, rollup_horizon: i64) -> Vec<Minute> {
    let mut out: Vec<Minute> = Vec::new();
    for c in into_chunks(samples) {
        let raw = c.bucket_ms + BUCKET_MS > horizon;
        let rollup = c.bucket_ms + BUCKET_MS > rollup_horizon;
        if !(raw || rollup) {
            continue;
        }
        let key = series_key(c.service.as_str(), c.metric.as_str());
        if !out
            .last()
            .is_some_and(|m| m.key == key && m.bucket_ms == c.bucket_ms)
        {
            out.push(Minute {
                key,
                bucket_ms: c.bucket_ms,
                chunks: Vec::new(),
                rollup: None,
            });
        }
        let minute = out.last_mut().expect("a minute was pushed");
        if raw {
            let encoded = c.chunk.encode().into_boxed_slice();
            minute.chunks.push((encoded, c.chunk.len() as u64));
        }
        if rollup {
            let of = Rollup::of(&c.chunk.values);
            match &mut minute.rollup {
                None => minute.rollup = Some((of, Box::default())),
                Some((held, _)) => held.merge(&of),
            }
        }
    }
    // Packed once each minute's rollup is whole.
    for minute in &mut out {
        if let Some((rollup, packed)) = &mut minute.rollup {
            *packed = pack(rollup);
        }
    }
    out
}

/// What a batch would add: bytes (an upper bound) and new series.
#[derive(Debug, Default)]
struct Cost {
    bytes: u64,
    new_series: usize,
}

impl Inner {
    /// The memory held: the series' and the tables'.
    fn held_bytes(&self) -> u64 {
        self.bytes
            + table_bytes::<SeriesEntry>(table_buckets(self.series.capacity()))
            + table_bytes::<u128>(table_buckets(self.batches.capacity()))
            + allocation(self.batch_expiry.capacity() * size_of::<(i64, u128)>())
    }

    /// What writing `minutes` (and remembering a batch id, with `remembers_batch`) would
    /// add, before anything of it is written. Merging chunks or rollups only takes less.
    fn cost_of(&self, minutes: &[Minute], remembers_batch: bool) -> Cost {
        let mut cost = Cost::default();
        for group in minutes.chunk_by(|a, b| a.key == b.key) {
            let series = self.series.get(group[0].key.as_str());
            if series.is_none() {
                cost.new_series += 1;
                cost.bytes += allocation(group[0].key.len());
            }
            let (raw, rollups) = series.map_or((0, 0), |s| (s.raw.len(), s.rollups.len()));
            let (mut new_raw, mut new_rollups) = (0, 0);
            for minute in group {
                if !minute.chunks.is_empty() {
                    let held = series
                        .and_then(|s| s.raw.get(&minute.bucket_ms))
                        .map_or(0, |b| b.chunks.len());
                    new_raw += usize::from(held == 0);
                    cost.bytes += allocation((held + minute.chunks.len()) * CHUNK_SLOT)
                        - allocation(held * CHUNK_SLOT)
                        + minute
                            .chunks
                            .iter()
                            .map(|(c, _)| allocation(c.len()))
                            .sum::<u64>();
                }
                if let Some((_, packed)) = &minute.rollup {
                    match series.and_then(|s| s.rollups.get(&minute.bucket_ms)) {
                        None => {
                            new_rollups += 1;
                            cost.bytes += allocation(packed.len());
                        }
                        Some(held) => {
                            cost.bytes +=
                                allocation(held.len() + packed.len()) - allocation(held.len());
                        }
                    }
                }
            }
            cost.bytes +=
                nodes_bytes(raw + new_raw, rollups + new_rollups) - nodes_bytes(raw, rollups);
        }
        cost.bytes +=
            table_growth::<SeriesEntry>(self.series.len(), self.series.capacity(), cost.new_series);
        if remembers_batch {
            cost.bytes += table_growth::<u128>(self.batches.len(), self.batches.capacity(), 1);
            let (len, capacity) = (self.batch_expiry.len(), self.batch_expiry.capacity());
            if len == capacity {
                let grown = (capacity * 2).max(4);
                cost.bytes += allocation(grown * size_of::<(i64, u128)>())
                    - allocation(capacity * size_of::<(i64, u128)>());
            }
        }
        cost
    }

    /// Writes `minutes` (already admitted by `cost_of`), counting what each change costs.
    fn write(&mut self, minutes: Vec<Minute>) {
        for Minute {
            key,
            bucket_ms,
            chunks,
            rollup,
        } in minutes
        {
            let key = key.into_boxed_str();
            let key_bytes = allocation(key.len());
            let series = match self.series.entry(key) {
                HashEntry::Occupied(held) => held.into_mut(),
                HashEntry::Vacant(new) => {
                    self.bytes += key_bytes;
                    new.insert(Series::default())
                }
            };
            let nodes_before = nodes_bytes(series.raw.len(), series.rollups.len());
            if !chunks.is_empty() {
                let bucket = series.raw.entry(bucket_ms).or_default();
                let before = bucket_bytes(bucket);
                bucket.chunks.reserve_exact(chunks.len());
                for (chunk, n) in chunks {
                    bucket.chunks.push(chunk);
                    bucket.samples += n;
                    self.samples += n;
                }
                if bucket.chunks.len() > MAX_CHUNKS_PER_BUCKET {
                    merge_small_chunks(bucket);
                }
                self.bytes = self.bytes - before + bucket_bytes(bucket);
            }
            if let Some((rollup, packed)) = rollup {
                match series.rollups.entry(bucket_ms) {
                    BTreeEntry::Vacant(new) => {
                        self.bytes += allocation(packed.len());
                        new.insert(packed);
                    }
                    BTreeEntry::Occupied(mut held) => {
                        let merged = merge_packed(held.get(), &rollup);
                        debug_assert!(merged.len() <= held.get().len() + packed.len());
                        self.bytes =
                            self.bytes - allocation(held.get().len()) + allocation(merged.len());
                        held.insert(merged);
                    }
                }
            }
            self.bytes =
                self.bytes - nodes_before + nodes_bytes(series.raw.len(), series.rollups.len());
        }
    }

    /// Drops the raw buckets that ended before `raw_ms` and the rollups that ended
    /// before `rollup_ms`, and the series left with neither.
    fn expire(&mut self, raw_ms: i64, rollup_ms: i64) {
        // Buckets starting at or after the horizon's still hold newer samples.
        let (raw_from, rollup_from) = (bucket_of(raw_ms), bucket_of(rollup_ms));
        if raw_from <= self.expired_before.0 && rollup_from <= self.expired_before.1 {
            return;
        }
        self.expired_before = (raw_from, rollup_from);
        let (mut bytes, mut samples) = (0, 0);
        self.series.retain(|key, series| {
            let nodes_before = nodes_bytes(series.raw.len(), series.rollups.len());
            if series
                .raw
                .first_key_value()
                .is_some_and(|(&t, _)| t < raw_from)
            {
                let keep = series.raw.split_off(&raw_from);
                for gone in std::mem::replace(&mut series.raw, keep).into_values() {
                    bytes += bucket_bytes(&gone);
                    samples += gone.samples;
                }
                if series.raw.is_empty() {
                    // (`split_off` may leave an empty map holding a node.)
                    series.raw = BTreeMap::new();
                }
            }
            if series
                .rollups
                .first_key_value()
                .is_some_and(|(&t, _)| t < rollup_from)
            {
                let keep = series.rollups.split_off(&rollup_from);
                for gone in std::mem::replace(&mut series.rollups, keep).into_values() {
                    bytes += allocation(gone.len());
                }
                if series.rollups.is_empty() {
                    series.rollups = BTreeMap::new();
                }
            }
            bytes += nodes_before - nodes_bytes(series.raw.len(), series.rollups.len());
            let kept = !(series.raw.is_empty() && series.rollups.is_empty());
            if !kept {
                bytes += allocation(key.len());
            }
            kept
        });
        self.bytes -= bytes;
        self.samples -= samples;
    }

    /// Forgets the batch ids remembered until `now` or before.
    fn forget_batches(&mut self, now: i64) {
        while let Some(&(until, gone)) = self.batch_expiry.front() {
            if until > now {
                break;
            }
            self.batch_expiry.pop_front();
            self.batches.remove(&gone);
        }
    }
}

/// Merges a bucket's small chunks into one (the big ones are left as they are), so each
/// sample is re-encoded about once however many batches fill the bucket.
fn merge_small_chunks(bucket: &mut Bucket) {
    let (small, big): (Vec<_>, Vec<_>) = std::mem::take(&mut bucket.chunks)
        .into_iter()
        .partition(|c| c.len() < BIG_CHUNK_BYTES);
    let mut chunks = Vec::with_capacity(big.len() + small.len().min(1));
    chunks.extend(big);
    if small.len() > 1 {
        let decoded: Vec<Chunk> = small
            .iter()
            .map(|b| Chunk::decode(b).expect("chunks this store encoded"))
            .collect();
        chunks.push(Chunk::merge(&decoded).encode().into_boxed_slice());
    } else {
        chunks.extend(small);
    }
    bucket.chunks = chunks;
}

/// Samples in memory, bucketed per series like the MongoDB store.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    config: MemoryStoreConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(MemoryStoreConfig::default())
    }
}

impl MemoryStore {
    pub fn new(config: MemoryStoreConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: MemoryStoreConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            config,
            clock,
        }
    }

    fn horizon_ms(&self) -> i64 {
        self.clock.now_ms() - self.config.retention.as_millis() as i64
    }

    fn rollup_horizon_ms(&self) -> i64 {
        self.clock.now_ms() - self.config.rollup_retention.as_millis() as i64
    }
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert(&self, samples: &[Sample], batch: Option<&BatchId>) -> PortResult<()> {
        // Encode outside the lock; samples already past retention are not kept.
        let (horizon, rollup_horizon) = (self.horizon_ms(), self.rollup_horizon_ms());
        let minutes = prepare(samples, horizon, rollup_horizon);
        let batch = batch.map(|b| u128::from_str_radix(b.as_str(), 16).expect("32 hex digits"));
        let mut inner = self.inner.lock().expect("store lock");
        let inner = &mut *inner;
        inner.expire(horizon, rollup_horizon);
        // One lock holds the whole write: a batch is stored entirely or not at all, so
        // remembering its id is enough to store it once.
        let now = self.clock.now_ms();
        inner.forget_batches(now);
        if batch.is_some_and(|b| inner.batches.contains(&b)) {
            return Ok(());
        }
        let cost = inner.cost_of(&minutes, batch.is_some());
        let series = inner.series.len();
        if series + cost.new_series > self.config.max_series {
            return Err(PortError::Full {
                dependency: "memory store",
                detail: format!(
                    "holds {series} of {} series (PLOTQ_MEMORY_STORE_MAX_SERIES); this batch adds {} more",
                    self.config.max_series, cost.new_series
                ),
            });
        }
        let held = inner.held_bytes();
        if held + cost.bytes > self.config.max_bytes {
            return Err(PortError::Full {
                dependency: "memory store",
                detail: format!(
                    "holds {held} of {} bytes (PLOTQ_MEMORY_STORE_MAX_BYTES); this batch needs {} more",
                    self.config.max_bytes, cost.bytes
                ),
            });
        }
        inner.write(minutes);
        if let Some(batch) = batch {
            inner.batches.insert(batch);
            inner.batch_expiry.push_back((now + BATCH_MEMORY_MS, batch));
        }
        Ok(())
    }

    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<Rollups> {
        // Copy the packed minutes out, then unpack without holding the lock.
        let packed: Vec<(i64, Box<[u8]>)> = {
            let inner = self.inner.lock().expect("store lock");
            let key = series_key(query.service, query.metric);
            let from = bucket_of(query.from_ms.max(self.rollup_horizon_ms()));
            match inner.series.get(key.as_str()) {
                Some(series) if from <= query.until_ms => series
                    .rollups
                    .range(from..=query.until_ms)
                    .map(|(&t, r)| (t, r.clone()))
                    .collect(),
                _ => Vec::new(),
            }
        };
        Ok(Rollups {
            docs_read: packed.len() as u64,
            minutes: packed.iter().map(|(t, r)| (*t, unpack(r))).collect(),
        })
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        // Copy the encoded chunks out, then decode without holding the lock.
        let encoded: Vec<Box<[u8]>> = {
            let inner = self.inner.lock().expect("store lock");
            let key = series_key(query.service, query.metric);
            let from = bucket_of(query.from_ms.max(self.horizon_ms()));
            match inner.series.get(key.as_str()) {
                Some(series) if from <= query.until_ms => series
                    .raw
                    .range(from..=query.until_ms)
                    .flat_map(|(_, b)| b.chunks.iter().cloned())
                    .collect(),
                _ => Vec::new(),
            }
        };
        let horizon = self.horizon_ms();
        let query = SeriesQuery {
            from_ms: query.from_ms.max(horizon),
            ..*query
        };
        let mut out = Points::default();
        for bytes in &encoded {
            let chunk = Chunk::decode(bytes).expect("chunks this store encoded");
            out.extend_from(&query, &chunk);
        }
        Ok(out)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }

    fn usage(&self) -> Option<StoreUsage> {
        let inner = self.inner.lock().expect("store lock");
        Some(StoreUsage {
            bytes: inner.held_bytes(),
            max_bytes: self.config.max_bytes,
            samples: inner.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use plotq_domain::ServiceName;

    const NOW: i64 = 1_800_000_000_000;

    fn sample(value: f64, timestamp_ms: i64) -> Sample {
        Sample {
            service: ServiceName::parse("svc").unwrap(),
            metric: plotq_domain::MetricName::parse("latency_ms").unwrap(),
            value,
            timestamp_ms,
        }
    }

    fn query(from_ms: i64, until_ms: i64) -> SeriesQuery<'static> {
        SeriesQuery {
            service: "svc",
            metric: "latency_ms",
            from_ms,
            until_ms,
            with_timestamps: true,
        }
    }

    fn store(retention_secs: u64, max_bytes: u64) -> (MemoryStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        let config = MemoryStoreConfig {
            retention: Duration::from_secs(retention_secs),
            rollup_retention: Duration::from_secs(retention_secs * 4),
            max_bytes,
            ..MemoryStoreConfig::default()
        };
        (MemoryStore::with_clock(config, clock.clone()), clock)
    }

    #[tokio::test]
    async fn points_include_both_ends_of_the_window() {
        let (store, _) = store(3600, 1 << 20);
        let samples: Vec<Sample> = (0..10)
            .map(|i| sample(i as f64, NOW - 10_000 + 1_000 * i))
            .collect();
        store.insert(&samples, None).await.unwrap();
        let got = store
            .points(&query(NOW - 8_000, NOW - 5_000))
            .await
            .unwrap();
        // A sample at exactly `until` is drawn, as one at exactly `from` is.
        assert_eq!(got.values, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            got.timestamps_ms,
            vec![NOW - 8_000, NOW - 7_000, NOW - 6_000, NOW - 5_000]
        );
    }

    #[tokio::test]
    async fn a_window_reads_one_chunk_per_bucket_however_many_batches_wrote_it() {
        let (store, _) = store(3600, 1 << 30);
        let start = bucket_of(NOW - 600_000);
        // Ten minutes, 1,000 batches of 100 samples: 100 batches per bucket.
        for batch in 0..1_000i64 {
            let samples: Vec<Sample> = (0..100)
                .map(|i| sample(i as f64, start + batch * 600 + i * 6))
                .collect();
            store.insert(&samples, None).await.unwrap();
        }
        let got = store.points(&query(start, start + 599_999)).await.unwrap();
        assert_eq!(got.values.len(), 100_000);
        assert!(got.chunks_read <= 10 * 16, "{} chunks", got.chunks_read);
        let usage = store.usage().unwrap();
        assert_eq!(usage.samples, 100_000);
        assert!(
            usage.bytes <= 100_000 * 10,
            "{} bytes for 100k samples",
            usage.bytes
        );
        let rollups = store.rollups(&query(start, start + 599_999)).await.unwrap();
        assert_eq!(rollups.docs_read, 10);
        let merged = Rollup::merged(rollups.minutes.iter().map(|(_, r)| r));
        assert_eq!((merged.count, merged.min, merged.max), (100_000, 0.0, 99.0));
    }

    #[tokio::test]
    async fn samples_leave_only_through_retention() {
        let (store, clock) = store(3600, 1 << 20);
        store
            .insert(
                &[sample(1.0, NOW - 3_000_000), sample(2.0, NOW - 10_000)],
                None,
            )
            .await
            .unwrap();
        assert_eq!(store.points(&query(0, NOW)).await.unwrap().values.len(), 2);
        // 40 minutes on, the first sample is past the hour of retention.
        clock.advance(Duration::from_secs(2_400));
        let got = store.points(&query(0, NOW + 2_400_000)).await.unwrap();
        assert_eq!(got.values, vec![2.0]);
        // Its bucket's bytes are released at the next write; its rollup stays.
        store.insert(&[sample(3.0, NOW)], None).await.unwrap();
        assert_eq!(store.usage().unwrap().samples, 2);
        let rollups = store.rollups(&query(0, NOW + 2_400_000)).await.unwrap();
        let counts: Vec<u64> = rollups.minutes.iter().map(|(_, r)| r.count).collect();
        assert_eq!(counts, [1, 1, 1]);
        // Past the rollup retention (4 h here), the rollup goes too.
        clock.advance(Duration::from_secs(4 * 3600));
        store
            .insert(&[sample(4.0, NOW + 4 * 3_600_000 + 2_400_000)], None)
            .await
            .unwrap();
        let rollups = store.rollups(&query(0, NOW)).await.unwrap();
        assert!(rollups.minutes.is_empty());
    }

    #[tokio::test]
    async fn a_batch_with_an_id_is_stored_once() {
        let (store, _) = store(3600, 1 << 20);
        let batch = BatchId::parse(&"ab".repeat(16)).unwrap();
        let samples: Vec<Sample> = (0..10).map(|i| sample(i as f64, NOW - i)).collect();
        for _ in 0..3 {
            store.insert(&samples, Some(&batch)).await.unwrap();
        }
        assert_eq!(store.points(&query(0, NOW)).await.unwrap().values.len(), 10);
        let rollups = store.rollups(&query(0, NOW)).await.unwrap();
        assert_eq!(
            Rollup::merged(rollups.minutes.iter().map(|(_, r)| r)).count,
            10
        );
        // Without an id, a batch is stored each time.
        store.insert(&samples, None).await.unwrap();
        assert_eq!(store.points(&query(0, NOW)).await.unwrap().values.len(), 20);
    }

    #[tokio::test]
    async fn a_batch_past_the_bound_is_refused_whole_and_nothing_is_lost() {
        let (store, _) = store(3600, 4_000);
        let first: Vec<Sample> = (0..100).map(|i| sample(i as f64, NOW - i)).collect();
        store.insert(&first, None).await.unwrap();
        let before = store.usage().unwrap();
        let second: Vec<Sample> = (0..200).map(|i| sample(i as f64, NOW - i)).collect();
        let err = store.insert(&second, None).await.unwrap_err();
        assert!(matches!(err, PortError::Full { .. }), "{err}");
        assert_eq!(
            store.usage().unwrap(),
            before,
            "nothing of the batch was kept"
        );
        let got = store.points(&query(0, NOW)).await.unwrap();
        assert_eq!(got.values.len(), 100, "what was accepted is still there");
    }

    fn named(service: &str, value: f64, timestamp_ms: i64) -> Sample {
        Sample {
            service: ServiceName::parse(service).unwrap(),
            ..sample(value, timestamp_ms)
        }
    }

    /// The series' memory counted from scratch, as `write` and `expire` keep it.
    fn recount(inner: &Inner) -> u64 {
        inner
            .series
            .iter()
            .map(|(key, s)| {
                allocation(key.len())
                    + nodes_bytes(s.raw.len(), s.rollups.len())
                    + s.raw.values().map(bucket_bytes).sum::<u64>()
                    + s.rollups.values().map(|r| allocation(r.len())).sum::<u64>()
            })
            .sum()
    }

    #[tokio::test]
    async fn the_count_follows_every_write_merge_and_expiry() {
        let (store, clock) = store(3600, 1 << 30);
        let check = |store: &MemoryStore| {
            let inner = store.inner.lock().unwrap();
            assert_eq!(inner.bytes, recount(&inner));
            let samples: u64 = inner
                .series
                .values()
                .flat_map(|s| s.raw.values())
                .map(|b| b.samples)
                .sum();
            assert_eq!(inner.samples, samples);
        };
        // Many series, several minutes, more than 16 batches a bucket (merges), ids.
        for round in 0..40i64 {
            let samples: Vec<Sample> = (0..300i64)
                .map(|i| {
                    let value = [0.0, -3.5, 200.0, 1e9, (i * round) as f64][i as usize % 5];
                    named(
                        &format!("s{}", i % 37),
                        value,
                        NOW - 3_000_000 + round * 60_000 + i,
                    )
                })
                .collect();
            let id = BatchId::parse(&format!("{round:032x}")).unwrap();
            store.insert(&samples, Some(&id)).await.unwrap();
            check(&store);
        }
        // Past the raw retention, then past the rollup retention: everything goes.
        for hours in [1, 4] {
            clock.advance(Duration::from_secs(hours * 3600));
            store
                .insert(&[named("late", 1.0, NOW + 5 * 3_600_000)], None)
                .await
                .unwrap();
            check(&store);
        }
        let inner = store.inner.lock().unwrap();
        assert_eq!(inner.series.len(), 1, "only the late series is left");
        assert_eq!(inner.samples, 2, "its two samples");
    }

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
        let rollups: Vec<Rollup> = cases.iter().map(|v| Rollup::of(v)).collect();
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

    #[tokio::test]
    async fn a_batch_past_the_series_bound_is_refused_whole() {
        let clock = Arc::new(ManualClock::new(NOW));
        let config = MemoryStoreConfig {
            max_series: 3,
            ..MemoryStoreConfig::default()
        };
        let store = MemoryStore::with_clock(config, clock);
        store
            .insert(&[named("a", 1.0, NOW), named("b", 1.0, NOW)], None)
            .await
            .unwrap();
        let before = store.usage().unwrap();
        let two_new = [
            named("a", 2.0, NOW),
            named("c", 1.0, NOW),
            named("d", 1.0, NOW),
        ];
        let err = store.insert(&two_new, None).await.unwrap_err();
        assert!(
            matches!(&err, PortError::Full { detail, .. } if detail.contains("PLOTQ_MEMORY_STORE_MAX_SERIES")),
            "{err}"
        );
        assert_eq!(
            store.usage().unwrap(),
            before,
            "nothing of the batch was kept"
        );
        // Samples of the series held, and one more series, still fit.
        let fits = [
            named("a", 2.0, NOW),
            named("b", 2.0, NOW),
            named("c", 1.0, NOW),
        ];
        store.insert(&fits, None).await.unwrap();
        assert_eq!(store.usage().unwrap().samples, 5);
    }

    #[tokio::test]
    async fn new_series_are_counted_at_what_they_cost() {
        // ~1 KiB a one-sample series (see "What the store's memory costs"), so a 1 MiB
        // bound holds about a thousand, not the ~20,000 their encoded samples would fit.
        let (store, _) = store(3600, 1 << 20);
        let mut accepted = 0;
        for batch in 0..100 {
            let samples: Vec<Sample> = (0..100)
                .map(|i| named(&format!("s{}", batch * 100 + i), 1.0, NOW))
                .collect();
            match store.insert(&samples, None).await {
                Ok(()) => accepted += samples.len(),
                Err(PortError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            (700..=1_400).contains(&accepted),
            "{accepted} series in 1 MiB"
        );
        let usage = store.usage().unwrap();
        assert!(usage.bytes <= usage.max_bytes, "{usage:?}");
    }

    /// Anonymous resident memory of this process (`RssAnon` in /proc/self/status), in
    /// bytes: the heap's touched pages, without the executable's pages that running new
    /// code maps in.
    fn resident_anon() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("RssAnon in /proc/self/status");
        kib * 1024
    }

    /// Inserts the batches `make(0..batches)` into a fresh store; returns the store (kept,
    /// so the next measurement does not reuse its memory), the bytes it counts and the
    /// resident memory the process grew by meanwhile (other tests running at the same
    /// time add a few MB to it).
    async fn counted_and_resident(
        batches: usize,
        make: impl Fn(usize) -> Vec<Sample>,
    ) -> (MemoryStore, u64, u64) {
        let store = MemoryStore::new(MemoryStoreConfig {
            max_bytes: u64::MAX,
            ..MemoryStoreConfig::default()
        });
        let before = resident_anon();
        for b in 0..batches {
            store.insert(&make(b), None).await.unwrap();
        }
        let grown = resident_anon().saturating_sub(before);
        let counted = store.usage().unwrap().bytes;
        (store, counted, grown)
    }

    /// The byte bound is a memory bound: what the store counts stays within 2x of the
    /// resident memory it takes, for the costliest shape per sample (every sample a new
    /// series) and the cheapest (one series of many samples). Calibrates the estimates
    /// of "What the store's memory costs"; `--nocapture` prints the numbers.
    #[tokio::test]
    async fn counted_bytes_follow_resident_memory() {
        let now = crate::clock::now_ms();
        let (_tiny_store, tiny_counted, tiny_grown) = counted_and_resident(100, |b| {
            (0..1_000)
                .map(|i| named(&format!("series{}", b * 1_000 + i), 1.0, now))
                .collect()
        })
        .await;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let values: Vec<f64> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Latency-like: 1 ms to ~1 s, with status-code-like whole numbers too.
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                if x.is_multiple_of(10) {
                    200.0
                } else {
                    (u * 7.0).exp()
                }
            })
            .collect();
        let (_long_store, long_counted, long_grown) = counted_and_resident(200, |b| {
            // 2M samples 10 ms apart: 333 minutes, within the 48 h raw retention.
            (0..10_000)
                .map(|i| {
                    let t = now - 20_000_000 + (b * 10_000 + i) as i64 * 10;
                    sample(values[i], t)
                })
                .collect()
        })
        .await;
        for (shape, (counted, grown), n) in [
            (
                "100,000 one-sample series",
                (tiny_counted, tiny_grown),
                100_000u64,
            ),
            (
                "one series of 2,000,000 samples",
                (long_counted, long_grown),
                2_000_000,
            ),
        ] {
            eprintln!(
                "{shape}: counted {counted} bytes ({} a sample), resident grew {grown} ({} a sample), ratio {:.2}",
                counted / n,
                grown / n,
                counted as f64 / grown as f64
            );
            assert!(
                counted * 2 >= grown && counted <= grown * 2,
                "{shape}: counted {counted} bytes, resident memory grew {grown}"
            );
        }
    }
}
