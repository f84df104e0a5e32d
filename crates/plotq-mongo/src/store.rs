//! `MongoStore`, the `MetricStore` on MongoDB (the twin of `plotq_ports::memory::store`):
//! the client and its bounds, the indexes (created at start, the retention TTLs changed
//! in place with `collMod`), acknowledged inserts of chunks then rollups, window and
//! rollup reads, and the breaker every call passes. What the documents, filters and
//! index specs say is `documents.rs`'s.
//!
//! A window `[from, until]` reads the chunks with `from - 1 bucket <= lo <= until`, and
//! the samples are filtered exactly after decoding (so dates compared at whole seconds
//! on the test server do not matter). Inserts are acknowledged writes (`insert_many`,
//! ordered). Uses only operations that behave the same on MongoDB and on the
//! MongoDB-wire test server. Server selection and connect get half the dependency
//! timeout each, so a call (with the driver's one retry) ends within it. Every read and
//! write passes the process's MongoDB `Breaker` (`MongoConfig::breaker`): while MongoDB
//! is believed down they fail in microseconds; `ping` is the probe that marks it down
//! or up.

use crate::config::MongoConfig;
use crate::documents::{
    ANNOTATIONS, CHUNKS, ChunkData, ChunkDoc, HOUR_ROLLUPS, ROLLUP_INDEX_BEFORE_LABELS, ROLLUPS,
    annotation_docs, annotation_filter, annotation_index, chunk_docs, chunk_series_index,
    decode_annotation, decode_rollup, rollup_command, rollup_minute_index, series_filter,
    ttl_change, ttl_index,
};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use plotq_domain::chunk::{BUCKET_MS, BatchId, Chunk, into_chunks};
use plotq_domain::rollup::{Rollup, SeriesRollup};
use plotq_domain::{Annotation, Sample};
use plotq_ports::{
    Breaker, MetricStore, Points, PortError, PortResult, Resolution, Rollups, SeriesQuery, Ticket,
};
use std::time::Duration;

/// The dependency every error of this crate names.
const DEPENDENCY: &str = "mongodb";
/// MongoDB's code for "an index with these keys exists with other options".
const INDEX_OPTIONS_CONFLICT: i32 = 85;
/// MongoDB's duplicate-key error.
const DUPLICATE_KEY: i32 = 11_000;

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// Whether a driver error means MongoDB could not be reached (no server selected, a
/// network failure), rather than MongoDB answering with an error of its own.
fn unreached(e: &mongodb::error::Error) -> bool {
    matches!(
        &*e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Io(_)
    )
}

/// Records a driver result on `ticket` and maps its error.
fn checked<T>(ticket: &Ticket, result: mongodb::error::Result<T>) -> PortResult<T> {
    ticket.reached(!result.as_ref().is_err_and(unreached));
    result.map_err(unavailable)
}

/// Whether an unordered insert failed only on documents that exist already.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|e| e.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

fn is_code(e: &mongodb::error::Error, code: i32) -> bool {
    matches!(&*e.kind, ErrorKind::Command(c) if c.code == code)
}

/// Samples in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    chunks: Collection<ChunkDoc>,
    rollups: Collection<Document>,
    hours: Collection<Document>,
    annotations: Collection<Document>,
    raw_retention: Duration,
    rollup_retention: Duration,
    breaker: Breaker,
}

impl MongoStore {
    /// Prepares the client (connections are made on demand and re-made after failures).
    pub async fn new(config: &MongoConfig) -> PortResult<Self> {
        let mut options = ClientOptions::parse(&config.url)
            .await
            .map_err(|e| unavailable(format!("bad PLOTQ_MONGODB_URL: {e}")))?;
        // A call ends within `timeout`: the driver may retry a read or write once, so
        // each attempt's server selection (and connect) gets half of it.
        let half = (config.timeout / 2).max(Duration::from_millis(50));
        options.server_selection_timeout = Some(half);
        options.connect_timeout = Some(half);
        options.app_name = Some("plotq".to_owned());
        let client = Client::with_options(options).map_err(unavailable)?;
        let db = client.database(&config.database);
        Ok(Self {
            chunks: db.collection(CHUNKS),
            rollups: db.collection(ROLLUPS),
            hours: db.collection(HOUR_ROLLUPS),
            annotations: db.collection(ANNOTATIONS),
            client,
            raw_retention: config.raw_retention,
            rollup_retention: config.rollup_retention,
            breaker: config.breaker.clone(),
        })
    }

    /// What this process believes about MongoDB.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// `command` with the connection string's write concern (`w`, `journal`,
    /// `wtimeoutMS`), which the driver adds to its own write helpers but not to a raw
    /// command; without one in the URL, the server's default applies (majority on a
    /// replica set since MongoDB 5.0).
    fn with_write_concern(&self, mut command: Document) -> Document {
        if let Some(concern) = self.rollups.write_concern()
            && let Ok(concern) = mongodb::bson::to_document(concern)
            && !concern.is_empty()
        {
            command.insert("writeConcern", concern);
        }
        command
    }

    /// The collection of the rollups of `resolution`.
    fn rollups_at(&self, resolution: Resolution) -> &Collection<Document> {
        match resolution {
            Resolution::Minute => &self.rollups,
            Resolution::Hour => &self.hours,
        }
    }

    /// Hands `each` every rollup document of `resolution` (with `projection`) of
    /// `query`'s window and selected label sets; how many there were.
    async fn each_rollup(
        &self,
        query: &SeriesQuery<'_>,
        resolution: Resolution,
        projection: Document,
        mut each: impl FnMut(Document),
    ) -> PortResult<u64> {
        if query.from_ms > query.until_ms {
            return Ok(0);
        }
        let filter = series_filter(query, "t", resolution.start_of(query.from_ms));
        let ticket = self.breaker.admit()?;
        let mut cursor = checked(
            &ticket,
            self.rollups_at(resolution)
                .find(filter)
                .projection(projection)
                .batch_size(512)
                .await,
        )?;
        let mut read = 0;
        while let Some(doc) = checked(&ticket, cursor.try_next().await)? {
            read += 1;
            each(doc);
        }
        Ok(read)
    }

    /// Creates the window index and the retention TTL index, or changes the TTL in
    /// place when `PLOTQ_RAW_RETENTION` changed (idempotent). Called by processes at
    /// start.
    pub async fn ensure_indexes(&self) -> PortResult<()> {
        self.chunks
            .create_index(chunk_series_index())
            .await
            .map_err(unavailable)?;
        // The unique index of before labels would refuse a second label set's minute; a
        // database without it (new, or already moved on) answers "index not found".
        if let Err(e) = self.rollups.drop_index(ROLLUP_INDEX_BEFORE_LABELS).await {
            tracing::debug!(error = %e, "no rollup index of before labels to drop");
        }
        for rollups in [&self.rollups, &self.hours] {
            rollups
                .create_index(rollup_minute_index())
                .await
                .map_err(unavailable)?;
        }
        ensure_ttl(&self.chunks, "hi", "raw_retention", self.raw_retention).await?;
        ensure_ttl(
            &self.rollups,
            "t",
            "rollup_retention",
            self.rollup_retention,
        )
        .await?;
        self.annotations
            .create_index(annotation_index())
            .await
            .map_err(unavailable)?;
        ensure_ttl(
            &self.annotations,
            "t",
            "rollup_retention",
            self.rollup_retention,
        )
        .await?;
        // An hour stays until its last minute leaves.
        let hour = Duration::from_millis(Resolution::Hour.millis() as u64);
        ensure_ttl(
            &self.hours,
            "t",
            "rollup_retention",
            self.rollup_retention + hour,
        )
        .await
    }

    /// Each index's key fields and TTL in seconds, of the chunks (`rollups == None`) or
    /// the rollups of a resolution (for tests and diagnostics).
    pub async fn index_ttls(
        &self,
        rollups: Option<Resolution>,
    ) -> PortResult<Vec<(Vec<String>, Option<u64>)>> {
        let mut cursor = match rollups {
            Some(resolution) => self.rollups_at(resolution).list_indexes().await,
            None => self.chunks.list_indexes().await,
        }
        .map_err(unavailable)?;
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

/// Creates a TTL index on `field`, or changes its expiry in place when it exists with
/// another (MongoDB refuses to re-create it with other options).
async fn ensure_ttl<T: Send + Sync>(
    collection: &Collection<T>,
    field: &str,
    name: &str,
    expire_after: Duration,
) -> PortResult<()> {
    match collection
        .create_index(ttl_index(field, name, expire_after))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, INDEX_OPTIONS_CONFLICT) => {
            let secs = expire_after.as_secs();
            tracing::info!(index = name, secs, "changing a retention TTL index");
            collection
                .client()
                .database(collection.namespace().db.as_str())
                .run_command(ttl_change(collection.name(), field, expire_after))
                .await
                .map(|_| ())
                .map_err(unavailable)
        }
        Err(e) => Err(unavailable(e)),
    }
}

#[async_trait]
impl MetricStore for MongoStore {
    fn dependency(&self) -> &'static str {
        DEPENDENCY
    }

    async fn write(
        &self,
        samples: &[Sample],
        summaries: &[SeriesRollup],
        batch: Option<&BatchId>,
    ) -> PortResult<()> {
        if samples.is_empty() && summaries.is_empty() {
            return Ok(());
        }
        let chunks = into_chunks(samples);
        let commands: Vec<Document> = [Resolution::Minute, Resolution::Hour]
            .into_iter()
            .filter_map(|r| rollup_command(r, &chunks, summaries, batch))
            .map(|c| self.with_write_concern(c))
            .collect();
        let docs = chunk_docs(chunks, batch);
        let ticket = self.breaker.admit()?;
        if !docs.is_empty() {
            match self.chunks.insert_many(docs).ordered(batch.is_none()).await {
                Ok(_) => ticket.reached(true),
                // A retried batch: the chunks its earlier attempt wrote are there already.
                Err(e) if batch.is_some() && only_duplicates(&e) => ticket.reached(true),
                Err(e) => return checked(&ticket, Err(e)),
            }
        }
        // Raw first, then the minutes, then the hours: see "Failure modes" in the
        // README. A retried batch with an id merges only the parts not marked yet.
        let db = self
            .rollups
            .client()
            .database(self.rollups.namespace().db.as_str());
        for command in commands {
            let reply = checked(&ticket, db.run_command(command).await)?;
            if let Ok(errors) = reply.get_array("writeErrors")
                && !errors.is_empty()
            {
                return Err(unavailable(format!(
                    "rollup update failed: {:?}",
                    errors.first()
                )));
            }
        }
        Ok(())
    }

    async fn rollups_at(
        &self,
        query: &SeriesQuery<'_>,
        resolution: Resolution,
    ) -> PortResult<Rollups> {
        let mut out = Rollups::default();
        // The selected label sets' documents of one period merge into one.
        let mut minutes: std::collections::BTreeMap<i64, Rollup> = Default::default();
        let projection = doc! {"_id": 0, "s": 0, "m": 0, "a": 0};
        let period = resolution.millis();
        out.docs_read = self
            .each_rollup(query, resolution, projection, |doc| match decode_rollup(&doc) {
                Ok((minute, rollup))
                    if minute + period > query.from_ms && minute <= query.until_ms =>
                {
                    minutes
                        .entry(minute)
                        .and_modify(|held| held.merge(&rollup))
                        .or_insert(rollup);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, service = query.service, "skipping a corrupt rollup")
                }
            })
            .await?;
        out.minutes = minutes.into_iter().collect();
        Ok(out)
    }

    async fn label_counts(
        &self,
        query: &SeriesQuery<'_>,
        name: &str,
        resolution: Resolution,
    ) -> PortResult<Vec<(Option<String>, u64)>> {
        // Read and counted here rather than by an aggregation: the MongoDB-wire test
        // server matches no date range in `$match` (nx-27017 0.8.1); the documents are
        // the ones a rollup read of the window reads anyway.
        let mut by_value: std::collections::BTreeMap<Option<String>, u64> = Default::default();
        let projection = doc! {"_id": 0, "n": 1, "lb": 1};
        self.each_rollup(query, resolution, projection, |doc| {
            let value = doc
                .get_document("lb")
                .ok()
                .and_then(|lb| lb.get_str(name).ok())
                .map(str::to_owned);
            let n = match doc.get("n") {
                Some(mongodb::bson::Bson::Int64(n)) => *n,
                Some(mongodb::bson::Bson::Int32(n)) => i64::from(*n),
                _ => 0,
            };
            *by_value.entry(value).or_default() += u64::try_from(n).unwrap_or(0);
        })
        .await?;
        let mut counts: Vec<_> = by_value.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(counts)
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        let mut out = Points::default();
        if query.from_ms > query.until_ms {
            return Ok(out);
        }
        // A chunk holds one bucket: one that starts a bucket before `from` may still
        // reach into the window.
        let filter = series_filter(query, "lo", query.from_ms.saturating_sub(BUCKET_MS));
        let ticket = self.breaker.admit()?;
        let mut cursor = checked(
            &ticket,
            self.chunks
                .clone_with_type::<ChunkData>()
                .find(filter)
                .projection(doc! {"_id": 0, "d": 1})
                .batch_size(256)
                .await,
        )?;
        while let Some(doc) = checked(&ticket, cursor.try_next().await)? {
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

    async fn annotate(&self, annotation: &Annotation) -> PortResult<()> {
        let ticket = self.breaker.admit()?;
        let docs = annotation_docs(annotation);
        match self.annotations.insert_many(docs).ordered(false).await {
            Ok(_) => checked(&ticket, Ok(())),
            // Stored by an earlier attempt: its ids are the annotation's.
            Err(e) if only_duplicates(&e) => checked(&ticket, Ok(())),
            Err(e) => checked(&ticket, Err(e)),
        }
    }

    async fn annotations(
        &self,
        services: &[&str],
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Vec<Annotation>> {
        let mut found = Vec::new();
        if from_ms > until_ms {
            return Ok(found);
        }
        for service in services {
            let ticket = self.breaker.admit()?;
            let mut cursor = checked(
                &ticket,
                self.annotations
                    .find(annotation_filter(service, from_ms, until_ms))
                    .sort(doc! {"t": -1})
                    .limit(plotq_domain::annotation::MAX_DRAWN as i64 + 2)
                    .await,
            )?;
            while let Some(doc) = checked(&ticket, cursor.try_next().await)? {
                match decode_annotation(&doc) {
                    Ok(a) if (from_ms..=until_ms).contains(&a.time_ms) => found.push(a),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, service, "skipping a corrupt annotation"),
                }
            }
        }
        Ok(plotq_domain::annotation::latest(found))
    }

    async fn ping(&self) -> PortResult<()> {
        let ticket = self.breaker.admit_probe()?;
        let reply = self
            .client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await;
        checked(&ticket, reply).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica set's connection string (three members, the set's name) is accepted and
    /// keeps what it says about where reads go and how reads and writes are acknowledged,
    /// past the timeouts plotq sets itself (no connection is made: the client connects
    /// on first use).
    #[tokio::test]
    async fn replica_set_options_are_honoured() {
        use mongodb::options::{Acknowledgment, ReadPreference, SelectionCriteria};
        let store = MongoStore::new(&MongoConfig {
            url: "mongodb://u:p@db-0.example:27017,db-1.example:27017,db-2.example:27017/\
                  ?replicaSet=rs0&readPreference=secondaryPreferred&maxStalenessSeconds=90\
                  &w=majority&readConcernLevel=majority&authSource=admin"
                .to_owned(),
            database: "plotq".to_owned(),
            timeout: Duration::from_secs(4),
            raw_retention: Duration::from_secs(3600),
            rollup_retention: Duration::from_secs(7200),
            breaker: Breaker::system("mongodb", Default::default()),
        })
        .await
        .unwrap();
        match store.chunks.selection_criteria() {
            Some(SelectionCriteria::ReadPreference(ReadPreference::SecondaryPreferred {
                options: Some(o),
            })) => assert_eq!(o.max_staleness, Some(Duration::from_secs(90))),
            other => panic!("read preference {other:?}"),
        }
        assert_eq!(
            store.rollups.write_concern().and_then(|w| w.w.clone()),
            Some(Acknowledgment::Majority)
        );
        assert!(store.chunks.read_concern().is_some());
        let command = store.with_write_concern(doc! {"update": ROLLUPS});
        assert_eq!(
            command.get_document("writeConcern").unwrap(),
            &doc! {"w": "majority"}
        );
    }
}
