//! `MetricStore` on MongoDB: the only crate that speaks to MongoDB.
//!
//! One document per sample in `<db>.samples`: `{service, metric, value, ts}` with `ts`
//! a BSON date, indexed by `(service, metric, ts)` so a plot's window query is an index
//! range scan; windows include both ends (`$gte from`, `$lte until`). Inserts are acknowledged writes (`insert_many`, ordered); reads project
//! only what the renderer needs. Uses only operations that behave the same on MongoDB
//! and on the MongoDB-wire test server.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{DateTime, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use plotq_domain::Sample;
use plotq_ports::{MetricStore, Points, PortError, PortResult};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const DEPENDENCY: &str = "mongodb";
const COLLECTION: &str = "samples";

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

#[derive(Debug, Serialize, Deserialize)]
struct SampleDoc {
    service: String,
    metric: String,
    value: f64,
    ts: DateTime,
}

#[derive(Debug, Deserialize)]
struct ValueOnly {
    value: f64,
}

#[derive(Debug, Deserialize)]
struct ValueAt {
    value: f64,
    ts: DateTime,
}

/// Where to find the database.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub url: String,
    pub database: String,
    /// Bound on server selection and connecting.
    pub timeout: Duration,
}

/// Samples in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    samples: Collection<SampleDoc>,
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
        let samples = client.database(&config.database).collection(COLLECTION);
        Ok(Self { client, samples })
    }

    /// Creates the series/time index (idempotent). Called by processes at start.
    pub async fn ensure_indexes(&self) -> PortResult<()> {
        let index = IndexModel::builder()
            .keys(doc! {"service": 1, "metric": 1, "ts": 1})
            .options(IndexOptions::builder().name("series_ts".to_owned()).build())
            .build();
        self.samples
            .create_index(index)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[async_trait]
impl MetricStore for MongoStore {
    async fn insert(&self, samples: &[Sample]) -> PortResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let docs = samples.iter().map(|s| SampleDoc {
            service: s.service.to_string(),
            metric: s.metric.to_string(),
            value: s.value,
            ts: DateTime::from_millis(s.timestamp_ms),
        });
        self.samples
            .insert_many(docs)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn points(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
        with_timestamps: bool,
    ) -> PortResult<Points> {
        let filter = doc! {
            "service": service,
            "metric": metric,
            "ts": {"$gte": DateTime::from_millis(from_ms), "$lte": DateTime::from_millis(until_ms)},
        };
        let mut out = Points::default();
        if with_timestamps {
            let mut cursor = self
                .samples
                .clone_with_type::<ValueAt>()
                .find(filter)
                .projection(doc! {"_id": 0, "value": 1, "ts": 1})
                .batch_size(10_000)
                .await
                .map_err(unavailable)?;
            while let Some(d) = cursor.try_next().await.map_err(unavailable)? {
                out.values.push(d.value);
                out.timestamps_ms.push(d.ts.timestamp_millis());
            }
        } else {
            let mut cursor = self
                .samples
                .clone_with_type::<ValueOnly>()
                .find(filter)
                .projection(doc! {"_id": 0, "value": 1})
                .batch_size(10_000)
                .await
                .map_err(unavailable)?;
            while let Some(d) = cursor.try_next().await.map_err(unavailable)? {
                out.values.push(d.value);
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
