//! `MetricStore` on MongoDB: the only crate that speaks to MongoDB.
//!
//! Samples are stored in time buckets (MongoDB's bucket pattern, which its time-series
//! collections use inside): `<db>.chunks` holds one document per series, one-minute
//! bucket and write — `{s, m, b, lo, hi, n, d}`: service, metric, bucket start, first
//! and last sample time (BSON dates), count, and the samples as one encoded chunk
//! (`plotq_domain::chunk`, ~9–10 bytes a sample, BSON binary). A batch of 1,000
//! samples of one series is one document, not 1,000.
//!
//! Minute rollups (`plotq_domain::rollup`) live in `<db>.rollups`, one document per
//! series and minute — `{s, m, t, v, n, sum, lo, hi, z, p, q, c}`, the extremes `lo` and
//! `hi` as order-preserving integers — merged in place by
//! atomic updates (`$inc` of the counts, the sum and each histogram bucket `p.<index>`,
//! `$min`/`$max` of the extremes), so concurrent apis merge without reading. Each key
//! takes two updates in one ordered `update` command: an upsert that creates the
//! document with empty `p`, `q`, `c` and `a` maps, then the increments (nx-27017 writes
//! a dotted `$inc` path as a literal key when its parent is missing; MongoDB does not
//! mind either way). A batch with an id marks each rollup it merged into (`a.<batch>`)
//! and merges only where the mark is missing. A TTL index on `t` expires them
//! after `PLOTQ_ROLLUP_RETENTION`.
//!
//! Indexes, created at start: `(s, m, lo)` for window reads — a window `[from, until]`
//! reads the chunks with `from - 1 bucket <= lo <= until`, and the samples are filtered
//! exactly after decoding (so dates compared at whole seconds on the test server do not
//! matter) — and a TTL index on `hi` expiring chunks `PLOTQ_RAW_RETENTION` after their
//! last sample (changed in place when the setting changes). Inserts are acknowledged
//! writes (`insert_many`, ordered). Uses only operations that behave the same on MongoDB
//! and on the MongoDB-wire test server. Every read and write passes the process's
//! MongoDB `Breaker` (`MongoConfig::breaker`): while MongoDB is believed down they fail in
//! microseconds; `ping` is the probe that marks it down or up.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use plotq_domain::Sample;
use plotq_domain::chunk::{BUCKET_MS, BatchId, Chunk, into_chunks};
use plotq_domain::rollup::Rollup;
use plotq_domain::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use plotq_ports::{
    Breaker, MetricStore, Points, PortError, PortResult, Rollups, SeriesQuery, Ticket,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const DEPENDENCY: &str = "mongodb";
const COLLECTION: &str = "chunks";
const ROLLUPS: &str = "rollups";
/// The version of the rollup documents.
const ROLLUP_VERSION: i32 = 2;
/// MongoDB's code for "an index with these keys exists with other options".
const INDEX_OPTIONS_CONFLICT: i32 = 85;

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// Whether a driver error means MongoDB could not be reached (no server selected, a
/// network failure), rather than MongoDB answering with an error of its own.
fn unreached(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
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

/// One stored chunk.
#[derive(Debug, Serialize, Deserialize)]
struct ChunkDoc {
    /// `<batch>:<i>` for a batch with an id (so a retry cannot store it twice), else
    /// left to the driver (an ObjectId).
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<String>,
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
    /// Rollups expire this long after their minute (TTL index).
    pub rollup_retention: Duration,
    /// What this process believes about MongoDB (shared with the process's other users).
    pub breaker: Breaker,
}

/// Samples in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoStore {
    client: Client,
    chunks: Collection<ChunkDoc>,
    rollups: Collection<Document>,
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
            chunks: db.collection(COLLECTION),
            rollups: db.collection(ROLLUPS),
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
        let minutes = IndexModel::builder()
            .keys(doc! {"s": 1, "m": 1, "t": 1})
            .options(
                IndexOptions::builder()
                    .name("series_minute".to_owned())
                    .unique(true)
                    .build(),
            )
            .build();
        self.rollups
            .create_index(minutes)
            .await
            .map_err(unavailable)?;
        ttl_index(&self.chunks, "hi", "raw_retention", self.raw_retention).await?;
        ttl_index(
            &self.rollups,
            "t",
            "rollup_retention",
            self.rollup_retention,
        )
        .await
    }

    /// Each index's key fields and TTL in seconds, of the chunks (`rollups == false`) or
    /// the rollups (for tests and diagnostics).
    pub async fn index_ttls(&self, rollups: bool) -> PortResult<Vec<(Vec<String>, Option<u64>)>> {
        let mut cursor = if rollups {
            self.rollups.list_indexes().await
        } else {
            self.chunks.list_indexes().await
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
async fn ttl_index<T: Send + Sync>(
    collection: &Collection<T>,
    field: &str,
    name: &str,
    expire_after: Duration,
) -> PortResult<()> {
    let index = IndexModel::builder()
        .keys(doc! {field: 1})
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .expire_after(expire_after)
                .build(),
        )
        .build();
    match collection.create_index(index).await {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, INDEX_OPTIONS_CONFLICT) => {
            let secs = expire_after.as_secs() as i64;
            tracing::info!(index = name, secs, "changing a retention TTL index");
            collection
                .client()
                .database(collection.namespace().db.as_str())
                .run_command(doc! {
                    "collMod": collection.name(),
                    "index": {"keyPattern": {field: 1}, "expireAfterSeconds": secs},
                })
                .await
                .map(|_| ())
                .map_err(unavailable)
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Most histogram and status-code fields one update increments (nx-27017 mis-writes
/// updates with many dotted paths; the bound costs MongoDB nothing).
const FIELDS_PER_UPDATE: usize = 32;

/// The updates that merge `rollup` into its (series, minute) document: an upsert that
/// creates it, then the increments in parts of at most [`FIELDS_PER_UPDATE`] fields (the
/// first with the count, sum and extremes).
///
/// With a `batch`, each part applies only to a document that has not seen that part of
/// the batch (`a.<batch>_<part>` absent) and marks it, atomically within the document: a
/// retried batch is counted once, even when its first attempt failed half-way.
fn rollup_updates(
    service: &str,
    metric: &str,
    minute_ms: i64,
    rollup: &Rollup,
    batch: Option<&BatchId>,
) -> Vec<Document> {
    let key = doc! {"s": service, "m": metric, "t": DateTime::from_millis(minute_ms)};
    let mut fields: Vec<(String, i64)> = Vec::new();
    for (prefix, buckets) in [("p", &rollup.positive), ("q", &rollup.negative)] {
        for (index, n) in buckets {
            fields.push((format!("{prefix}.{index}"), *n as i64));
        }
    }
    for (code, n) in &rollup.codes {
        fields.push((format!("c.{code}"), *n as i64));
    }
    let mut updates = vec![doc! {
        "q": key.clone(),
        // Empty parents for the dotted increments (nx-27017 writes `p.5` as a literal key
        // when `p` is missing; MongoDB nests it either way).
        "u": {"$setOnInsert": {
            "v": ROLLUP_VERSION, "lo": ordered_key(rollup.min), "hi": ordered_key(rollup.max),
            "p": {}, "q": {}, "c": {}, "a": {},
        }},
        "upsert": true,
    }];
    let parts: Vec<&[(String, i64)]> = if fields.is_empty() {
        vec![&[]]
    } else {
        fields.chunks(FIELDS_PER_UPDATE).collect()
    };
    for (part, part_fields) in parts.into_iter().enumerate() {
        let mut inc = Document::new();
        let mut update = Document::new();
        if part == 0 {
            inc.insert("n", rollup.count as i64);
            inc.insert("sum", rollup.sum);
            inc.insert("z", rollup.zeros as i64);
            update.insert("$min", doc! {"lo": ordered_key(rollup.min)});
            update.insert("$max", doc! {"hi": ordered_key(rollup.max)});
        }
        for (field, n) in part_fields {
            inc.insert(field.clone(), *n);
        }
        update.insert("$inc", inc);
        let mut q = key.clone();
        if let Some(batch) = batch {
            let marker = format!("a.{}_{part}", batch.as_str());
            q.insert(marker.clone(), doc! {"$exists": false});
            update.insert("$set", doc! {marker: 1});
        }
        updates.push(doc! {"q": q, "u": update});
    }
    updates
}

/// `v` as an `i64` that orders as `v` does (`f64::total_cmp`), so `$min`/`$max` keep the
/// exact extremes as integers. Stored as doubles, extremes near `f64::MAX` broke the
/// MongoDB-wire test server: it keeps documents as SQLite JSON and prints doubles with
/// 15 digits, past `f64::MAX`, after which the document can no longer be updated.
fn ordered_key(v: f64) -> i64 {
    flip_negative(v.to_bits() as i64)
}

fn from_ordered_key(key: i64) -> f64 {
    f64::from_bits(flip_negative(key) as u64)
}

/// Flips every bit but the sign of a negative number (its own inverse), so negative
/// floats' bit patterns order like the floats.
fn flip_negative(bits: i64) -> i64 {
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// MongoDB's duplicate-key error.
const DUPLICATE_KEY: i32 = 11_000;

/// A stored rollup document, checked as `Rollup::validate` checks.
fn decode_rollup(doc: &Document) -> Result<(i64, Rollup), String> {
    if doc.get_i32("v").map_err(|e| e.to_string())? != ROLLUP_VERSION {
        return Err("unknown rollup version".into());
    }
    let count = |d: &Document, key: &str| -> Result<u64, String> {
        let n = match d.get(key) {
            Some(Bson::Int64(n)) => *n,
            Some(Bson::Int32(n)) => i64::from(*n),
            None => 0,
            Some(other) => return Err(format!("{key} is {other:?}")),
        };
        u64::try_from(n).map_err(|_| format!("{key} is negative"))
    };
    let buckets = |key: &str| -> Result<BTreeMap<i32, u64>, String> {
        let mut out = BTreeMap::new();
        if let Ok(d) = doc.get_document(key) {
            for k in d.keys() {
                let index: i32 = k.parse().map_err(|_| format!("bucket {k:?}"))?;
                out.insert(index, count(d, k)?);
            }
        }
        Ok(out)
    };
    let mut codes = BTreeMap::new();
    if let Ok(d) = doc.get_document("c") {
        for k in d.keys() {
            let code: u16 = k.parse().map_err(|_| format!("code {k:?}"))?;
            codes.insert(code, count(d, k)?);
        }
    }
    let float = |key: &str| doc.get_f64(key).map_err(|e| format!("{key}: {e}"));
    let extreme = |key: &str| match doc.get(key) {
        Some(Bson::Int64(k)) => Ok(from_ordered_key(*k)),
        Some(Bson::Int32(k)) => Ok(from_ordered_key(i64::from(*k))),
        other => Err(format!("{key} is {other:?}")),
    };
    let rollup = Rollup {
        count: count(doc, "n")?,
        sum: float("sum")?,
        min: extreme("lo")?,
        max: extreme("hi")?,
        positive: buckets("p")?,
        negative: buckets("q")?,
        zeros: count(doc, "z")?,
        codes,
    };
    rollup.validate()?;
    let minute = doc.get_datetime("t").map_err(|e| e.to_string())?;
    Ok((minute.timestamp_millis(), rollup))
}

/// The documents of the query's series whose date `field` lies in `[from_ms,
/// until]`, widened by a second each side: the test server compares dates at whole
/// seconds, and the samples are filtered exactly after decoding.
fn series_filter(query: &SeriesQuery<'_>, field: &str, from_ms: i64) -> Document {
    doc! {
        "s": query.service,
        "m": query.metric,
        field: {
            "$gte": date(from_ms.saturating_sub(1_000)),
            "$lte": date(query.until_ms.saturating_add(1_000)),
        },
    }
}

/// A query bound as a BSON date, within the timestamps plotq accepts (years 1970 to
/// 9999): the margins added to a window must not leave them (drivers and servers that
/// map dates to calendar types refuse year 10000).
fn date(ms: i64) -> DateTime {
    DateTime::from_millis(ms.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS))
}

/// Whether an unordered insert failed only on documents that exist already.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|e| e.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

fn is_code(e: &mongodb::error::Error, code: i32) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if c.code == code)
}

#[async_trait]
impl MetricStore for MongoStore {
    fn dependency(&self) -> &'static str {
        "mongodb"
    }

    async fn insert(&self, samples: &[Sample], batch: Option<&BatchId>) -> PortResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let chunks = into_chunks(samples);
        let mut updates = Vec::with_capacity(chunks.len() * 2);
        for c in &chunks {
            let rollup = Rollup::of(&c.chunk.values);
            updates.extend(rollup_updates(
                c.service.as_str(),
                c.metric.as_str(),
                c.bucket_ms,
                &rollup,
                batch,
            ));
        }
        let docs = chunks.into_iter().enumerate().map(|(i, c)| {
            let (lo, hi) = c.chunk.span().expect("chunks are never empty");
            ChunkDoc {
                id: batch.map(|b| format!("{}:{i}", b.as_str())),
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
        let ticket = self.breaker.admit()?;
        match self.chunks.insert_many(docs).ordered(batch.is_none()).await {
            Ok(_) => ticket.reached(true),
            // A retried batch: the chunks its earlier attempt wrote are there already.
            Err(e) if batch.is_some() && only_duplicates(&e) => ticket.reached(true),
            Err(e) => return checked(&ticket, Err(e)),
        }
        // Raw first, then the rollups: see "Failure modes" in the README.
        let reply = checked(
            &ticket,
            self.rollups
                .client()
                .database(self.rollups.namespace().db.as_str())
                .run_command(self.with_write_concern(
                    doc! {"update": ROLLUPS, "updates": updates, "ordered": true},
                ))
                .await,
        )?;
        match reply.get_array("writeErrors") {
            Ok(errors) if !errors.is_empty() => Err(unavailable(format!(
                "rollup update failed: {:?}",
                errors.first()
            ))),
            _ => Ok(()),
        }
    }

    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<Rollups> {
        let mut out = Rollups::default();
        if query.from_ms > query.until_ms {
            return Ok(out);
        }
        let filter = series_filter(query, "t", plotq_domain::chunk::bucket_of(query.from_ms));
        let ticket = self.breaker.admit()?;
        let mut cursor = checked(
            &ticket,
            self.rollups
                .find(filter)
                .projection(doc! {"_id": 0, "s": 0, "m": 0})
                .batch_size(512)
                .await,
        )?;
        while let Some(doc) = checked(&ticket, cursor.try_next().await)? {
            out.docs_read += 1;
            match decode_rollup(&doc) {
                Ok((minute, rollup))
                    if minute + BUCKET_MS > query.from_ms && minute <= query.until_ms =>
                {
                    out.minutes.push((minute, rollup));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, service = query.service, "skipping a corrupt rollup")
                }
            }
        }
        out.minutes.sort_by_key(|(t, _)| *t);
        Ok(out)
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

    #[test]
    fn ordered_keys_order_like_the_floats_and_round_trip() {
        let values = [
            -f64::MAX,
            -1e300,
            -1.0,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            1e-300,
            1.0,
            2.5,
            f64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(ordered_key(pair[0]) < ordered_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_ordered_key(ordered_key(v)).to_bits(), v.to_bits());
        }
    }
}
