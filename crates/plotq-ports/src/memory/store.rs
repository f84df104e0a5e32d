//! `MemoryStore`, the in-process `MetricStore`: the same model as MongoDB — per series,
//! one-minute buckets of encoded chunks (`plotq_domain::chunk`, ~9–10 bytes a sample)
//! and one-minute rollups (`plotq_domain::rollup`) — with the configured raw and rollup
//! retentions and a byte bound. Data leaves only through retention; an insert that would
//! pass the bound is refused whole (`PortError::Full`), never half-written and never made
//! room for by dropping data.
//! Part of the embedded standalone implementation, and a unit-test double.

use crate::clock::{Clock, SystemClock};
use crate::{MetricStore, Points, PortError, PortResult, Rollups, SeriesQuery, StoreUsage};
use async_trait::async_trait;
use plotq_domain::Sample;
use plotq_domain::chunk::{BUCKET_MS, BatchId, Chunk, bucket_of, into_chunks};
use plotq_domain::rollup::Rollup;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A bucket with more chunks than this has its small chunks merged into one.
const MAX_CHUNKS_PER_BUCKET: usize = 16;
/// Chunks at least this big (encoded) are left as they are.
const BIG_CHUNK_BYTES: usize = 64 * 1024;

/// Retention and size bound of the in-memory store.
#[derive(Debug, Clone, Copy)]
pub struct MemoryStoreConfig {
    /// Samples older than this (by the clock) are dropped.
    pub retention: Duration,
    /// Rollups older than this are dropped.
    pub rollup_retention: Duration,
    /// Encoded bytes the store may hold.
    pub max_bytes: u64,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(48 * 3600),
            rollup_retention: Duration::from_secs(90 * 86_400),
            max_bytes: 2 << 30,
        }
    }
}

type SeriesKey = (String, String);

#[derive(Debug, Default)]
struct Bucket {
    chunks: Vec<Vec<u8>>,
    bytes: u64,
    samples: u64,
}

#[derive(Debug, Default)]
struct Series {
    raw: BTreeMap<i64, Bucket>,
    rollups: BTreeMap<i64, Rollup>,
}

#[derive(Debug, Default)]
struct Inner {
    series: HashMap<SeriesKey, Series>,
    bytes: u64,
    samples: u64,
    /// Idempotent batches stored (remembered for `BATCH_MEMORY_MS`), and the same ids in
    /// the order they expire.
    batches: HashSet<BatchId>,
    batch_expiry: VecDeque<(i64, BatchId)>,
}

/// How long a stored batch id is remembered (a retry within it is not stored again).
const BATCH_MEMORY_MS: i64 = 24 * 3600 * 1000;

impl Inner {
    /// Drops the raw buckets that ended before `raw_ms` and the rollups that ended
    /// before `rollup_ms`.
    fn expire(&mut self, raw_ms: i64, rollup_ms: i64) {
        let (mut bytes, mut samples) = (0, 0);
        self.series.retain(|_, series| {
            // Buckets starting at or after the horizon's still hold newer samples.
            let keep = series.raw.split_off(&bucket_of(raw_ms));
            for gone in std::mem::replace(&mut series.raw, keep).into_values() {
                bytes += gone.bytes;
                samples += gone.samples;
            }
            let keep = series.rollups.split_off(&bucket_of(rollup_ms));
            for gone in std::mem::replace(&mut series.rollups, keep).into_values() {
                bytes += gone.size_bytes();
            }
            !(series.raw.is_empty() && series.rollups.is_empty())
        });
        self.bytes -= bytes;
        self.samples -= samples;
    }
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
        let horizon = self.horizon_ms();
        // Encode outside the lock; samples already past retention are not kept.
        let rollup_horizon = self.rollup_horizon_ms();
        let grouped = into_chunks(samples);
        let rollups: Vec<_> = grouped
            .iter()
            .filter(|c| c.bucket_ms + BUCKET_MS > rollup_horizon)
            .map(|c| {
                let key = (c.service.to_string(), c.metric.to_string());
                (key, c.bucket_ms, Rollup::of(&c.chunk.values))
            })
            .collect();
        let chunks: Vec<_> = grouped
            .into_iter()
            .filter(|c| c.bucket_ms + BUCKET_MS > horizon)
            .map(|c| {
                let bytes = c.chunk.encode();
                let n = c.chunk.len() as u64;
                (c, bytes, n)
            })
            .collect();
        let mut inner = self.inner.lock().expect("store lock");
        inner.expire(horizon, rollup_horizon);
        // One lock holds the whole write: a batch is stored entirely or not at all, so
        // remembering its id is enough to store it once.
        let now = self.clock.now_ms();
        while inner
            .batch_expiry
            .front()
            .is_some_and(|(until, _)| *until <= now)
        {
            let (_, gone) = inner.batch_expiry.pop_front().expect("a front entry");
            inner.batches.remove(&gone);
        }
        if batch.is_some_and(|b| inner.batches.contains(b)) {
            return Ok(());
        }
        // Rollups grow by at most their own size when merged into a stored one.
        let adding: u64 = chunks.iter().map(|(_, b, _)| b.len() as u64).sum::<u64>()
            + rollups.iter().map(|(_, _, r)| r.size_bytes()).sum::<u64>();
        if inner.bytes + adding > self.config.max_bytes {
            return Err(PortError::Full {
                dependency: "memory store",
                detail: format!(
                    "holds {} of {} bytes (PLOTQ_MEMORY_STORE_MAX_BYTES); this batch needs {adding} more",
                    inner.bytes, self.config.max_bytes
                ),
            });
        }
        for (c, bytes, n) in chunks {
            let key = (c.service.to_string(), c.metric.to_string());
            let bucket = inner
                .series
                .entry(key)
                .or_default()
                .raw
                .entry(c.bucket_ms)
                .or_default();
            let mut delta = bytes.len() as i64;
            bucket.bytes += bytes.len() as u64;
            bucket.samples += n;
            bucket.chunks.push(bytes);
            if bucket.chunks.len() > MAX_CHUNKS_PER_BUCKET {
                // Merge the small chunks only: each sample is re-encoded about once,
                // however many batches fill the bucket.
                let (small, big): (Vec<Vec<u8>>, Vec<Vec<u8>>) = std::mem::take(&mut bucket.chunks)
                    .into_iter()
                    .partition(|c| c.len() < BIG_CHUNK_BYTES);
                bucket.chunks = big;
                if small.len() > 1 {
                    let decoded: Vec<Chunk> = small
                        .iter()
                        .map(|b| Chunk::decode(b).expect("chunks this store encoded"))
                        .collect();
                    let merged = Chunk::merge(&decoded).encode();
                    let before: usize = small.iter().map(Vec::len).sum();
                    delta += merged.len() as i64 - before as i64;
                    bucket.bytes =
                        (bucket.bytes as i64 + merged.len() as i64 - before as i64) as u64;
                    bucket.chunks.push(merged);
                } else {
                    bucket.chunks.extend(small);
                }
            }
            inner.bytes = (inner.bytes as i64 + delta) as u64;
            inner.samples += n;
        }
        for (key, minute, rollup) in rollups {
            let stored = inner
                .series
                .entry(key)
                .or_default()
                .rollups
                .entry(minute)
                .or_default();
            // A new (empty) entry was not counted yet.
            let before = if stored.count == 0 {
                0
            } else {
                stored.size_bytes()
            };
            stored.merge(&rollup);
            let after = stored.size_bytes();
            inner.bytes = inner.bytes + after - before;
        }
        if let Some(batch) = batch {
            inner.batches.insert(batch.clone());
            inner
                .batch_expiry
                .push_back((now + BATCH_MEMORY_MS, batch.clone()));
        }
        Ok(())
    }

    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<Rollups> {
        let inner = self.inner.lock().expect("store lock");
        let key = (query.service.to_owned(), query.metric.to_owned());
        let from = bucket_of(query.from_ms.max(self.rollup_horizon_ms()));
        let minutes: Vec<(i64, Rollup)> = match inner.series.get(&key) {
            Some(series) if from <= query.until_ms => series
                .rollups
                .range(from..=query.until_ms)
                .map(|(&t, r)| (t, r.clone()))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Rollups {
            docs_read: minutes.len() as u64,
            minutes,
        })
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        // Copy the encoded chunks out, then decode without holding the lock.
        let encoded: Vec<Vec<u8>> = {
            let inner = self.inner.lock().expect("store lock");
            let key = (query.service.to_owned(), query.metric.to_owned());
            let from = bucket_of(query.from_ms.max(self.horizon_ms()));
            match inner.series.get(&key) {
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
            bytes: inner.bytes,
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
}
