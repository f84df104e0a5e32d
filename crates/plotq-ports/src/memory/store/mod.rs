//! `MemoryStore`, the in-process `MetricStore`: the same model as MongoDB — per series,
//! one-minute buckets of encoded chunks (`plotq_domain::chunk`, ~2 bytes a sample with few decimals)
//! and minute and hour rollups (`plotq_domain::rollup`, kept packed: a few bytes a
//! histogram bucket) — with the configured raw and rollup retentions, a series bound and a byte
//! bound. The bytes counted are the memory the store holds, not just the encoded samples:
//! every series, bucket, rollup and remembered batch id costs its allocations and its
//! share of the maps' nodes and tables (a new series with one sample ~1 KiB), estimated
//! from the std layouts and glibc's allocation sizes (see `layout.rs`), and checked
//! against the process's resident memory by a test. Data leaves only through retention;
//! an insert that would pass a bound is refused whole (`PortError::Full`), never
//! half-written and never made room for by dropping data. Part of the embedded
//! standalone implementation, and a unit-test double.
//!
//! Files: `series.rs` (the series, their buckets and rollups, and how a write, expiry and
//! the byte count change them), `layout.rs` (what the store's memory costs: allocation,
//! B-tree and hash-table sizes), `packed.rs` (rollups packed into byte strings).

mod layout;
mod packed;
mod series;

use self::packed::unpack;
use self::series::{
    BATCH_MEMORY_MS, Inner, MAX_ANNOTATIONS, Series, annotation_bytes, metric_prefix, prepare,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{PortError, PortResult};
use crate::store::{MetricStore, Points, Resolution, Rollups, SeriesQuery, StoreUsage};
use async_trait::async_trait;
use plotq_domain::chunk::{BatchId, Chunk, bucket_of};
use plotq_domain::rollup::{Rollup, SeriesRollup};
use plotq_domain::{Annotation, Labels, Sample};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
    /// Series (service, metric, label set) the store may hold (`PLOTQ_MEMORY_STORE_MAX_SERIES`).
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

/// Samples in memory, bucketed per series like the MongoDB store.
pub struct MemoryStore {
    /// Reads share it (plots of every worker at once); a write holds it alone.
    inner: RwLock<Inner>,
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
            inner: RwLock::new(Inner::default()),
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

impl MemoryStore {
    /// The packed rollups of `resolution` from period `from` to the end of `query`'s
    /// window of every set it selects, with each one's label set.
    fn rollups_of(
        &self,
        query: &SeriesQuery<'_>,
        from: i64,
        resolution: Resolution,
    ) -> Vec<(Labels, i64, Box<[u8]>)> {
        if from > query.until_ms {
            return Vec::new();
        }
        let inner = self.inner.read().expect("store lock");
        selected(&inner, query)
            .into_iter()
            .flat_map(|(labels, series)| {
                series
                    .periods(resolution)
                    .range(from..=query.until_ms)
                    .map(move |(&t, r)| (labels.clone(), t, r.clone()))
            })
            .collect()
    }
}

/// The series of `query`'s metric whose label sets it selects, with their sets: one range
/// of the series map (see `metric_prefix`).
fn selected<'a>(inner: &'a Inner, query: &SeriesQuery<'_>) -> Vec<(Labels, &'a Series)> {
    let prefix = metric_prefix(query.service, query.metric);
    inner
        .series
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(|(key, _)| key.starts_with(prefix.as_str()))
        .filter_map(|(key, series)| {
            // Keys are written from valid sets only.
            let labels = Labels::from_key(&key[prefix.len()..]).ok()?;
            query.select.selects(&labels).then_some((labels, series))
        })
        .collect()
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn write(
        &self,
        samples: &[Sample],
        summaries: &[SeriesRollup],
        batch: Option<&BatchId>,
    ) -> PortResult<()> {
        // Encode outside the lock; samples already past retention are not kept.
        let (horizon, rollup_horizon) = (self.horizon_ms(), self.rollup_horizon_ms());
        let minutes = prepare(samples, summaries, horizon, rollup_horizon);
        let batch = batch.map(|b| u128::from_str_radix(b.as_str(), 16).expect("32 hex digits"));
        let mut inner = self.inner.write().expect("store lock");
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

    async fn rollups_at(
        &self,
        query: &SeriesQuery<'_>,
        resolution: Resolution,
    ) -> PortResult<Rollups> {
        // Copy the packed periods out, then unpack and merge without holding the lock.
        let from = resolution.start_of(query.from_ms.max(self.rollup_horizon_ms()));
        let packed = self.rollups_of(query, from, resolution);
        let mut minutes: BTreeMap<i64, Rollup> = BTreeMap::new();
        for (_, t, r) in &packed {
            let rollup = unpack(r);
            match minutes.entry(*t) {
                std::collections::btree_map::Entry::Vacant(new) => {
                    new.insert(rollup);
                }
                std::collections::btree_map::Entry::Occupied(mut held) => {
                    held.get_mut().merge(&rollup);
                }
            }
        }
        Ok(Rollups {
            docs_read: packed.len() as u64,
            minutes: minutes.into_iter().collect(),
        })
    }

    async fn label_counts(
        &self,
        query: &SeriesQuery<'_>,
        name: &str,
        resolution: Resolution,
    ) -> PortResult<Vec<(Option<String>, u64)>> {
        let from = resolution.start_of(query.from_ms.max(self.rollup_horizon_ms()));
        let mut counts: BTreeMap<Option<String>, u64> = BTreeMap::new();
        for (labels, _, r) in self.rollups_of(query, from, resolution) {
            let value = labels.get(name).map(str::to_owned);
            *counts.entry(value).or_default() += unpack(&r).count;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(counts)
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        // Copy the encoded chunks out, then decode without holding the lock.
        let encoded: Vec<Box<[u8]>> = {
            let inner = self.inner.read().expect("store lock");
            let from = bucket_of(query.from_ms.max(self.horizon_ms()));
            if from > query.until_ms {
                Vec::new()
            } else {
                selected(&inner, query)
                    .into_iter()
                    .flat_map(|(_, series)| series.raw.range(from..=query.until_ms))
                    .flat_map(|(_, b)| b.chunks.iter().cloned())
                    .collect()
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

    async fn annotate(&self, annotation: &Annotation) -> PortResult<()> {
        let mut inner = self.inner.write().expect("store lock");
        let inner = &mut *inner;
        inner.expire(self.horizon_ms(), self.rollup_horizon_ms());
        if annotation.time_ms < self.rollup_horizon_ms() {
            return Ok(()); // past retention: gone at once, as in MongoDB
        }
        if inner
            .annotations
            .values()
            .any(|held| held.id == annotation.id)
        {
            return Ok(()); // stored by an earlier attempt
        }
        if inner.annotations.len() >= MAX_ANNOTATIONS {
            return Err(PortError::Full {
                dependency: "memory store",
                detail: format!("holds {MAX_ANNOTATIONS} annotations, the most it keeps"),
            });
        }
        let bytes = annotation_bytes(annotation);
        let held = inner.held_bytes();
        if held + bytes > self.config.max_bytes {
            return Err(PortError::Full {
                dependency: "memory store",
                detail: format!(
                    "holds {held} of {} bytes (PLOTQ_MEMORY_STORE_MAX_BYTES)",
                    self.config.max_bytes
                ),
            });
        }
        inner.annotation_bytes += bytes;
        inner.annotations.insert(
            (annotation.time_ms, annotation.id.clone()),
            annotation.clone(),
        );
        Ok(())
    }

    async fn annotations(
        &self,
        services: &[&str],
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Vec<Annotation>> {
        // Nothing past the rollup retention, as in MongoDB (whose TTL removes them).
        let from_ms = from_ms.max(self.rollup_horizon_ms());
        if from_ms > until_ms {
            return Ok(Vec::new());
        }
        let inner = self.inner.read().expect("store lock");
        let found = inner
            .annotations
            .range((from_ms, String::new())..)
            .take_while(|((t, _), _)| *t <= until_ms)
            .filter(|(_, a)| services.iter().any(|s| a.concerns(s)))
            .map(|(_, a)| a.clone())
            .collect();
        Ok(plotq_domain::annotation::latest(found))
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }

    fn usage(&self) -> Option<StoreUsage> {
        let inner = self.inner.read().expect("store lock");
        Some(StoreUsage {
            bytes: inner.held_bytes(),
            max_bytes: self.config.max_bytes,
            samples: inner.samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::layout::allocation;
    use super::series::{bucket_bytes, nodes_bytes};
    use super::*;
    use crate::clock::ManualClock;
    use plotq_domain::ServiceName;
    use plotq_domain::rollup::Rollup;

    const NOW: i64 = 1_800_000_000_000;

    fn sample(value: f64, timestamp_ms: i64) -> Sample {
        Sample {
            service: ServiceName::parse("svc").unwrap(),
            metric: plotq_domain::MetricName::parse("latency_ms").unwrap(),
            value,
            timestamp_ms,
            labels: plotq_domain::Labels::none(),
        }
    }

    fn query(from_ms: i64, until_ms: i64) -> SeriesQuery<'static> {
        SeriesQuery {
            service: "svc",
            metric: "latency_ms",
            from_ms,
            until_ms,
            with_timestamps: true,
            select: crate::store::LabelSelect::ALL,
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
    async fn annotations_are_kept_by_service_and_time() {
        crate::contract::annotations_are_kept_by_service_and_time(&MemoryStore::default(), "svc")
            .await;
    }

    #[tokio::test]
    async fn hours_are_the_merge_of_their_minutes() {
        crate::contract::hours_are_the_merge_of_their_minutes(&MemoryStore::default(), "svc").await;
    }

    #[tokio::test]
    async fn summaries_merge_into_the_rollups() {
        crate::contract::summaries_merge_into_the_rollups(&MemoryStore::default(), "svc").await;
    }

    #[tokio::test]
    async fn label_sets_are_selected_counted_and_merged() {
        crate::contract::label_sets_are_selected_counted_and_merged(&MemoryStore::default(), "svc")
            .await;
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
                    + nodes_bytes(s.raw.len(), s.rollups.len(), s.hours.len())
                    + s.raw.values().map(bucket_bytes).sum::<u64>()
                    + s.rollups
                        .values()
                        .chain(s.hours.values())
                        .map(|r| allocation(r.len()))
                        .sum::<u64>()
            })
            .sum()
    }

    #[tokio::test]
    async fn the_count_follows_every_write_merge_and_expiry() {
        let (store, clock) = store(3600, 1 << 30);
        let check = |store: &MemoryStore| {
            let inner = store.inner.read().unwrap();
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
        let inner = store.inner.read().unwrap();
        assert_eq!(inner.series.len(), 1, "only the late series is left");
        assert_eq!(inner.samples, 2, "its two samples");
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
        // ~1 KiB a one-sample series (see `layout.rs`), so a 1 MiB bound holds about a
        // thousand, not the ~20,000 their encoded samples would fit.
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
    /// of `layout.rs`; `--nocapture` prints the numbers.
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
