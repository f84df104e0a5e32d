//! `MetricStore` on MongoDB: the only crate that speaks to MongoDB.
//!
//! Samples are stored in time buckets (MongoDB's bucket pattern, which its time-series
//! collections use inside): `<db>.chunks` holds one document per series, one-minute
//! bucket and write — `{s, m, b, lo, hi, n, d}`: service, metric, bucket start, first
//! and last sample time (BSON dates), count, and the samples as one encoded chunk
//! (`plotq_domain::chunk`, ~9–10 bytes a sample, BSON binary). A batch of 1,000
//! samples of one series is one document, not 1,000.
//!
//! Indexes, created at start: `(s, m, lo)` for window reads — a window `[from, until]`
//! reads the chunks with `from - 1 bucket <= lo <= until`, and the samples are filtered
//! exactly after decoding (so dates compared at whole seconds on the test server do not
//! matter) — and a TTL index on `hi` expiring chunks `PLOTQ_RAW_RETENTION` after their
//! last sample (changed in place when the setting changes). Inserts are acknowledged
//! writes (`insert_many`, ordered). Uses only operations that behave the same on MongoDB
//! and on the MongoDB-wire test server.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, DateTime, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use plotq_domain::Sample;
use plotq_domain::chunk::{BUCKET_MS, Chunk, into_chunks};
use plotq_ports::{MetricStore, Points, PortError, PortResult, SeriesQuery};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const DEPENDENCY: &str = "mongodb";
const COLLECTION: &str = "chunks";
/// MongoDB's code for "an index with these keys exists with other options".
const INDEX_OPTIONS_CONFLICT: i32 = 85;

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// One stored chunk.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkDoc {
    s: String,
    m: String,
    b: DateTime,
    lo: DateTime,
    hi: DateTime,
    n: i64,
    d: Binary,
}

/// What a window read needs of a chunk.
#[derive(Debug, Deserialize)]
struct ChunkData {
    d: Binary,
}

/// Where to find the database, and how long raw samples are kept.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub url: String,
    pub database: String,
    /// Bound on server selection and connecting.
    pub timeout: Duration,
    /// Chunks expire this long after their last sample (TTL index).
    pub raw_retention: Duration,
}

/// Samples in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    chunks: Collection<ChunkDoc>,
    raw_retention: Duration,
}

impl MongoStore {
    /// Prepares the client (connections are made on demand and re-made after failures).
    pub async fn new(config: &MongoConfig) -> PortResult<Self> {
        let mut options = ClientOptions::parse(&config.url)
            .await
            .map_err(|e| unavailable(format!("bad PLOTQ_MONGODB_URL: {e}")))?;
        options.server_selection_timeout = Some(config.timeout);
        options.connect_timeout = Some(config.timeout);
        options.app_name = Some("plotq".to_owned());
        let client = Client::with_options(options).map_err(unavailable)?;
        let chunks = client.database(&config.database).collection(COLLECTION);
        Ok(Self {
            client,
            chunks,
            raw_retention: config.raw_retention,
        })
    }

    /// Creates the window index and the retention TTL index, or changes the TTL in
    /// place when `PLOTQ_RAW_RETENTION` changed (idempotent). Called by processes at
    /// start.
    pub async fn ensure_indexes(&self) -> PortResult<()> {
        let series = IndexModel::builder()
            .keys(doc! {"s": 1, "m": 1, "lo": 1})
            .options(IndexOptions::builder().name("series_lo".to_owned()).build())
            .build();
        self.chunks
            .create_index(series)
            .await
            .map_err(unavailable)?;
        let retention = IndexModel::builder()
            .keys(doc! {"hi": 1})
            .options(
                IndexOptions::builder()
                    .name("raw_retention".to_owned())
                    .expire_after(self.raw_retention)
                    .build(),
            )
            .build();
        match self.chunks.create_index(retention).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, INDEX_OPTIONS_CONFLICT) => {
                let secs = self.raw_retention.as_secs() as i64;
                tracing::info!(secs, "changing the raw retention TTL index");
                self.chunks
                    .client()
                    .database(self.chunks.namespace().db.as_str())
                    .run_command(doc! {
                        "collMod": COLLECTION,
                        "index": {"keyPattern": {"hi": 1}, "expireAfterSeconds": secs},
                    })
                    .await
                    .map(|_| ())
                    .map_err(unavailable)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Each index's key fields and TTL in seconds (for tests and diagnostics).
    pub async fn index_ttls(&self) -> PortResult<Vec<(Vec<String>, Option<u64>)>> {
        let mut cursor = self.chunks.list_indexes().await.map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(index) = cursor.try_next().await.map_err(unavailable)? {
            let keys = index.keys.keys().cloned().collect();
            let ttl = index
                .options
                .and_then(|o| o.expire_after)
                .map(|d| d.as_secs());
            out.push((keys, ttl));
        }
        Ok(out)
    }
}

fn is_code(e: &mongodb::error::Error, code: i32) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if c.code == code)
}

#[async_trait]
impl MetricStore for MongoStore {
    async fn insert(&self, samples: &[Sample]) -> PortResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let docs = into_chunks(samples).into_iter().map(|c| {
            let (lo, hi) = c.chunk.span().expect("chunks are never empty");
            ChunkDoc {
                s: c.service.to_string(),
                m: c.metric.to_string(),
                b: DateTime::from_millis(c.bucket_ms),
                lo: DateTime::from_millis(lo),
                hi: DateTime::from_millis(hi),
                n: c.chunk.len() as i64,
                d: Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: c.chunk.encode(),
                },
            }
        });
        self.chunks
            .insert_many(docs)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        let mut out = Points::default();
        if query.from_ms > query.until_ms {
            return Ok(out);
        }
        // A chunk holds one bucket: one that starts a bucket before `from` may still
        // reach into the window. Whole-second margins keep the test server's date
        // comparisons (whole seconds) from losing an edge chunk.
        let filter = doc! {
            "s": query.service,
            "m": query.metric,
            "lo": {
                "$gte": DateTime::from_millis(query.from_ms.saturating_sub(BUCKET_MS + 1_000)),
                "$lte": DateTime::from_millis(query.until_ms.saturating_add(1_000)),
            },
        };
        let mut cursor = self
            .chunks
            .clone_with_type::<ChunkData>()
            .find(filter)
            .projection(doc! {"_id": 0, "d": 1})
            .batch_size(256)
            .await
            .map_err(unavailable)?;
        while let Some(doc) = cursor.try_next().await.map_err(unavailable)? {
            // Stored data is decoded with the rules it was written by; a chunk that
            // fails them is skipped and logged, never drawn.
            match Chunk::decode(&doc.d.bytes) {
                Ok(chunk) => out.extend_from(query, &chunk),
                Err(e) => {
                    tracing::warn!(error = %e, service = query.service, "skipping a corrupt chunk")
                }
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> PortResult<()> {
        self.client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
