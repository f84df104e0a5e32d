//! The store's data: per series, one-minute buckets of encoded chunks and packed minute
//! and hour rollups (an hour's the merge of its minutes', written with them), the batch
//! ids it remembers, and how a write (`Inner::write`, costed first by
//! `Inner::cost_of`), expiry (`Inner::expire`) and the running byte count change them.
//! The costs themselves are `layout.rs`'s; the packing is `packed.rs`'s.

use super::layout::{allocation, btree_bytes, table_buckets, table_bytes, table_growth};
use super::packed::{merge_packed, pack};
use crate::store::Resolution;
use plotq_domain::Sample;
use plotq_domain::chunk::{BUCKET_MS, Chunk, bucket_of, into_chunks};
use plotq_domain::rollup::{Rollup, SeriesRollup};
use plotq_domain::{Annotation, Labels};
use std::collections::btree_map::Entry as BTreeEntry;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::mem::size_of;

/// A bucket with more chunks than this has its small chunks merged into one.
pub(super) const MAX_CHUNKS_PER_BUCKET: usize = 16;
/// Chunks at least this big (encoded) are left as they are (~8,000 samples of latencies
/// with two decimals, as many as 64 KiB held in the format before version 2).
pub(super) const BIG_CHUNK_BYTES: usize = 16 * 1024;

/// The part of a series' key that names its metric: the service, a NUL, the metric and
/// a NUL. Names never hold a NUL (`plotq_domain::names`), so the label sets of one
/// metric are exactly the keys that start with it, next to each other in the series map.
pub(super) fn metric_prefix(service: &str, metric: &str) -> String {
    let mut key = String::with_capacity(service.len() + metric.len() + 2);
    key.push_str(service);
    key.push('\0');
    key.push_str(metric);
    key.push('\0');
    key
}

/// A series' key: its metric's prefix and its label set's canonical text (`Labels::key`,
/// empty for none), in one allocation.
pub(super) fn series_key(service: &str, metric: &str, labels: &Labels) -> String {
    let mut key = metric_prefix(service, metric);
    key.push_str(&labels.key());
    key
}

#[derive(Debug, Default)]
pub(super) struct Bucket {
    /// Encoded chunks, each allocated at its exact length; the vector is kept at its
    /// exact length too (it is short: at most `MAX_CHUNKS_PER_BUCKET` + 2).
    pub(super) chunks: Vec<Box<[u8]>>,
    pub(super) samples: u64,
}

#[derive(Debug, Default)]
pub(super) struct Series {
    pub(super) raw: BTreeMap<i64, Bucket>,
    /// Minute rollups, packed (`pack`).
    pub(super) rollups: BTreeMap<i64, Box<[u8]>>,
    /// Hour rollups, packed: each the merge of the hour's minute rollups.
    pub(super) hours: BTreeMap<i64, Box<[u8]>>,
}

impl Series {
    /// The rollups of `resolution`.
    pub(super) fn periods(&self, resolution: Resolution) -> &BTreeMap<i64, Box<[u8]>> {
        match resolution {
            Resolution::Minute => &self.rollups,
            Resolution::Hour => &self.hours,
        }
    }

    fn periods_mut(&mut self, resolution: Resolution) -> &mut BTreeMap<i64, Box<[u8]>> {
        match resolution {
            Resolution::Minute => &mut self.rollups,
            Resolution::Hour => &mut self.hours,
        }
    }

    /// The nodes of its maps.
    pub(super) fn nodes(&self) -> u64 {
        nodes_bytes(self.raw.len(), self.rollups.len(), self.hours.len())
    }

    fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.rollups.is_empty() && self.hours.is_empty()
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    /// By `series_key`, so a metric's label sets are one range.
    pub(super) series: BTreeMap<Box<str>, Series>,
    /// The memory held by the series (keys, map nodes, buckets, chunks, rollups), kept
    /// up to date by every change; the tables, whose size follows their capacity, are
    /// added by `held_bytes`.
    pub(super) bytes: u64,
    pub(super) samples: u64,
    /// Idempotent batches stored (remembered for `BATCH_MEMORY_MS`, as their 128-bit
    /// value), and the same ids in the order they expire.
    pub(super) batches: HashSet<u128>,
    pub(super) batch_expiry: VecDeque<(i64, u128)>,
    /// The raw and rollup horizons (bucket starts) of the last expiry: nothing older is
    /// held, and nothing older is written (inserts skip what is past retention), so
    /// expiry has work only once a horizon moved on to a later bucket.
    pub(super) expired_before: (i64, i64),
    /// Annotations by (time, id), at most [`MAX_ANNOTATIONS`], and their estimated bytes.
    pub(super) annotations: BTreeMap<(i64, String), Annotation>,
    pub(super) annotation_bytes: u64,
}

/// Most annotations the store holds.
pub(super) const MAX_ANNOTATIONS: usize = 10_000;

/// The memory an annotation takes (its strings, its services, its map entry), estimated.
pub(super) fn annotation_bytes(a: &Annotation) -> u64 {
    let services: u64 = a
        .services
        .iter()
        .map(|s| 24 + allocation(s.as_str().len()))
        .sum();
    // The key's time and id, the value's fields, a B-tree slot each.
    2 * allocation(a.id.len()) + allocation(a.text.len()) + services + 160
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            series: BTreeMap::new(),
            bytes: 0,
            samples: 0,
            batches: HashSet::new(),
            batch_expiry: VecDeque::new(),
            expired_before: (i64::MIN, i64::MIN),
            annotations: BTreeMap::new(),
            annotation_bytes: 0,
        }
    }
}

/// How long a stored batch id is remembered (a retry within it is not stored again).
pub(super) const BATCH_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// A slot of a bucket's chunk list.
pub(super) const CHUNK_SLOT: usize = size_of::<Box<[u8]>>();

/// The nodes of a series' three maps.
pub(super) fn nodes_bytes(raw: usize, rollups: usize, hours: usize) -> u64 {
    btree_bytes::<i64, Bucket>(raw)
        + btree_bytes::<i64, Box<[u8]>>(rollups)
        + btree_bytes::<i64, Box<[u8]>>(hours)
}

/// A bucket's chunk list and chunks.
pub(super) fn bucket_bytes(bucket: &Bucket) -> u64 {
    allocation(bucket.chunks.capacity() * CHUNK_SLOT)
        + bucket
            .chunks
            .iter()
            .map(|c| allocation(c.len()))
            .sum::<u64>()
}

/// One series' minute (or, with `resolution` an hour, its hour) of a batch, prepared
/// outside the lock.
pub(super) struct Minute {
    /// `series_key(service, metric, labels)`.
    key: String,
    resolution: Resolution,
    bucket_ms: i64,
    /// Encoded chunks (more than one only past `MAX_CHUNK_SAMPLES`) and their samples;
    /// none when the minute is past the raw retention, and none for an hour.
    chunks: Vec<(Box<[u8]>, u64)>,
    /// The period's rollup, and packed; none past the rollup retention.
    rollup: Option<(Rollup, Box<[u8]>)>,
}

/// `samples` and `summaries` as minutes of series (in series order), without what is
/// past retention: raw buckets ending at or before `horizon`, rollups at or before
/// `rollup_horizon`.
pub(super) fn prepare(
    samples: &[Sample],
    summaries: &[SeriesRollup],
    horizon: i64,
    rollup_horizon: i64,
) -> Vec<Minute> {
    let mut out: Vec<Minute> = Vec::new();
    for c in into_chunks(samples) {
        let raw = c.bucket_ms + BUCKET_MS > horizon;
        let rollup = c.bucket_ms + BUCKET_MS > rollup_horizon;
        if !(raw || rollup) {
            continue;
        }
        let key = series_key(c.service.as_str(), c.metric.as_str(), &c.labels);
        if !out
            .last()
            .is_some_and(|m| m.key == key && m.bucket_ms == c.bucket_ms)
        {
            out.push(Minute {
                key,
                resolution: Resolution::Minute,
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
    if !summaries.is_empty() {
        out = with_summaries(out, summaries, rollup_horizon);
    }
    out = with_hours(out);
    // Packed once each period's rollup is whole.
    for minute in &mut out {
        if let Some((rollup, packed)) = &mut minute.rollup {
            *packed = pack(rollup);
        }
    }
    out
}

/// `minutes` with `summaries` merged into their series' minutes (a minute of its own
/// when the batch has no sample there), in series and minute order.
fn with_summaries(
    mut minutes: Vec<Minute>,
    summaries: &[SeriesRollup],
    rollup_horizon: i64,
) -> Vec<Minute> {
    for s in summaries {
        if s.minute_ms + BUCKET_MS <= rollup_horizon {
            continue;
        }
        minutes.push(Minute {
            key: series_key(s.service.as_str(), s.metric.as_str(), &s.labels),
            resolution: Resolution::Minute,
            bucket_ms: s.minute_ms,
            chunks: Vec::new(),
            rollup: Some((s.rollup.clone(), Box::default())),
        });
    }
    minutes.sort_by(|a, b| (&a.key, a.bucket_ms).cmp(&(&b.key, b.bucket_ms)));
    let mut out: Vec<Minute> = Vec::with_capacity(minutes.len());
    for minute in minutes {
        match out.last_mut() {
            Some(held) if held.key == minute.key && held.bucket_ms == minute.bucket_ms => {
                held.chunks.extend(minute.chunks);
                if let Some((more, _)) = minute.rollup {
                    match &mut held.rollup {
                        Some((rollup, _)) => rollup.merge(&more),
                        none => *none = Some((more, Box::default())),
                    }
                }
            }
            _ => out.push(minute),
        }
    }
    out
}

/// `minutes` (one series' minutes next to each other, in minute order) and, after each
/// series' minutes, the hours they fall in with the merge of their rollups: one series'
/// parts stay next to each other, as `Inner::cost_of` needs.
fn with_hours(minutes: Vec<Minute>) -> Vec<Minute> {
    let mut out: Vec<Minute> = Vec::with_capacity(minutes.len() + minutes.len() / 8 + 1);
    let mut hours: Vec<Minute> = Vec::new();
    for minute in minutes {
        if out.last().is_some_and(|m| m.key != minute.key) {
            out.append(&mut hours);
        }
        if let Some((rollup, _)) = &minute.rollup {
            let hour = Resolution::Hour.start_of(minute.bucket_ms);
            match hours.last_mut() {
                Some(held) if held.bucket_ms == hour => {
                    if let Some((merged, _)) = &mut held.rollup {
                        merged.merge(rollup);
                    }
                }
                _ => hours.push(Minute {
                    key: minute.key.clone(),
                    resolution: Resolution::Hour,
                    bucket_ms: hour,
                    chunks: Vec::new(),
                    rollup: Some((rollup.clone(), Box::default())),
                }),
            }
        }
        out.push(minute);
    }
    out.append(&mut hours);
    out
}

/// What a batch would add: bytes (an upper bound) and new series.
#[derive(Debug, Default)]
pub(super) struct Cost {
    pub(super) bytes: u64,
    pub(super) new_series: usize,
}

impl Inner {
    /// The memory held: the series' and the tables'.
    pub(super) fn held_bytes(&self) -> u64 {
        self.bytes
            + self.annotation_bytes
            + btree_bytes::<Box<str>, Series>(self.series.len())
            + table_bytes::<u128>(table_buckets(self.batches.capacity()))
            + allocation(self.batch_expiry.capacity() * size_of::<(i64, u128)>())
    }

    /// What writing `minutes` (and remembering a batch id, with `remembers_batch`) would
    /// add, before anything of it is written. Merging chunks or rollups only takes less.
    pub(super) fn cost_of(&self, minutes: &[Minute], remembers_batch: bool) -> Cost {
        let mut cost = Cost::default();
        for group in minutes.chunk_by(|a, b| a.key == b.key) {
            let series = self.series.get(group[0].key.as_str());
            if series.is_none() {
                cost.new_series += 1;
                cost.bytes += allocation(group[0].key.len());
            }
            let (raw, rollups, hours) =
                series.map_or((0, 0, 0), |s| (s.raw.len(), s.rollups.len(), s.hours.len()));
            let (mut new_raw, mut new_rollups, mut new_hours) = (0, 0, 0);
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
                    let held =
                        series.and_then(|s| s.periods(minute.resolution).get(&minute.bucket_ms));
                    match held {
                        None => {
                            match minute.resolution {
                                Resolution::Minute => new_rollups += 1,
                                Resolution::Hour => new_hours += 1,
                            }
                            cost.bytes += allocation(packed.len());
                        }
                        Some(held) => {
                            cost.bytes +=
                                allocation(held.len() + packed.len()) - allocation(held.len());
                        }
                    }
                }
            }
            cost.bytes += nodes_bytes(raw + new_raw, rollups + new_rollups, hours + new_hours)
                - nodes_bytes(raw, rollups, hours);
        }
        let series = self.series.len();
        cost.bytes += btree_bytes::<Box<str>, Series>(series + cost.new_series)
            - btree_bytes::<Box<str>, Series>(series);
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
    pub(super) fn write(&mut self, minutes: Vec<Minute>) {
        for Minute {
            key,
            resolution,
            bucket_ms,
            chunks,
            rollup,
        } in minutes
        {
            let key = key.into_boxed_str();
            let key_bytes = allocation(key.len());
            let series = match self.series.entry(key) {
                BTreeEntry::Occupied(held) => held.into_mut(),
                BTreeEntry::Vacant(new) => {
                    self.bytes += key_bytes;
                    new.insert(Series::default())
                }
            };
            let nodes_before = series.nodes();
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
                match series.periods_mut(resolution).entry(bucket_ms) {
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
            self.bytes = self.bytes - nodes_before + series.nodes();
        }
    }

    /// Drops the raw buckets that ended before `raw_ms`, the rollups (minutes and hours)
    /// that ended before `rollup_ms` and the annotations timed before it, and the series
    /// left with none.
    pub(super) fn expire(&mut self, raw_ms: i64, rollup_ms: i64) {
        while let Some(entry) = self.annotations.first_entry() {
            if entry.key().0 >= rollup_ms {
                break;
            }
            self.annotation_bytes -= annotation_bytes(&entry.remove());
        }
        // Buckets starting at or after the horizon's still hold newer samples.
        let (raw_from, rollup_from) = (bucket_of(raw_ms), bucket_of(rollup_ms));
        if raw_from <= self.expired_before.0 && rollup_from <= self.expired_before.1 {
            return;
        }
        self.expired_before = (raw_from, rollup_from);
        let (mut bytes, mut samples) = (0, 0);
        self.series.retain(|key, series| {
            let nodes_before = series.nodes();
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
            // An hour is kept while any of its minutes is.
            let hour_from = Resolution::Hour.start_of(rollup_from);
            for (resolution, from) in [
                (Resolution::Minute, rollup_from),
                (Resolution::Hour, hour_from),
            ] {
                let periods = series.periods_mut(resolution);
                if periods.first_key_value().is_some_and(|(&t, _)| t < from) {
                    let keep = periods.split_off(&from);
                    for gone in std::mem::replace(periods, keep).into_values() {
                        bytes += allocation(gone.len());
                    }
                    if periods.is_empty() {
                        *periods = BTreeMap::new();
                    }
                }
            }
            bytes += nodes_before - series.nodes();
            let kept = !series.is_empty();
            if !kept {
                bytes += allocation(key.len());
            }
            kept
        });
        self.bytes -= bytes;
        self.samples -= samples;
    }

    /// Forgets the batch ids remembered until `now` or before.
    pub(super) fn forget_batches(&mut self, now: i64) {
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
pub(super) fn merge_small_chunks(bucket: &mut Bucket) {
    let (small, big): (Vec<_>, Vec<_>) = std::mem::take(&mut bucket.chunks)
        .into_iter()
        .partition(|c| c.len() < BIG_CHUNK_BYTES);
    let merged: Vec<Box<[u8]>> = if small.len() > 1 {
        let decoded: Vec<Chunk> = small
            .iter()
            .map(|b| Chunk::decode(b).expect("chunks this store encoded"))
            .collect();
        // Split past the chunk limit: small chunks of format 2 may hold ~65,000 samples
        // each (two bits a sample), so sixteen of them can be over it.
        Chunk::merge(&decoded)
            .parts()
            .iter()
            .map(|c| c.encode().into_boxed_slice())
            .collect()
    } else {
        small
    };
    let mut chunks = Vec::with_capacity(big.len() + merged.len());
    chunks.extend(big);
    chunks.extend(merged);
    bucket.chunks = chunks;
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::chunk::MAX_CHUNK_SAMPLES;

    #[test]
    fn merges_stay_within_the_chunk_limit() {
        // One value at one millisecond costs format 2 two bits a sample: seventeen small
        // chunks of 65,000 such samples are over the limit together.
        let small = Chunk {
            timestamps_ms: vec![1_700_000_000_000; 65_000],
            values: vec![1.5; 65_000],
        }
        .encode();
        assert!(small.len() < BIG_CHUNK_BYTES, "{} bytes", small.len());
        let mut bucket = Bucket {
            chunks: (0..17).map(|_| small.clone().into_boxed_slice()).collect(),
            samples: 17 * 65_000,
        };
        merge_small_chunks(&mut bucket);
        let decoded: Vec<Chunk> = bucket
            .chunks
            .iter()
            .map(|b| Chunk::decode(b).expect("a chunk the store can read"))
            .collect();
        assert_eq!(decoded.len(), 2);
        assert!(decoded.iter().all(|c| c.len() <= MAX_CHUNK_SAMPLES));
        assert_eq!(decoded.iter().map(Chunk::len).sum::<usize>(), 17 * 65_000);
        assert_eq!(bucket.chunks.capacity(), bucket.chunks.len());
    }
}
