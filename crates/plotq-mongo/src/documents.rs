//! What `MongoStore` stores and asks, as BSON, with no I/O: the chunk documents, the
//! rollup update documents and how a stored rollup is read back, the order-preserving
//! integer encoding of the extremes, the window filters, and the index specs and
//! commands. Sending them is `store.rs`'s.
//!
//! `<db>.chunks` holds one document per series, one-minute bucket and write —
//! `{s, m, l, lb, b, lo, hi, n, d}`: service, metric, the label set (its canonical text
//! `l` and its pairs `lb`, both absent when it has none), bucket start, first and last
//! sample time (BSON dates), count, and the samples as one encoded chunk
//! (`plotq_domain::chunk`, ~2 bytes a sample of latencies with two decimals, BSON binary). A batch of 1,000 samples of one series is one
//! document, not 1,000. Index `(s, m, lo)` serves window reads; a TTL index on `hi`
//! is the raw retention.
//!
//! `<db>.rollups` holds one document per series (label set included) and minute —
//! `{s, m, l, lb, t, v, n, sum, lo, hi, z, p, q, c, u, e}` (`u` and `e`, the summarized
//! values and their error in parts per billion, only where summaries merged; `l` null for no labels, so the
//! documents written before labels existed are the unlabelled series'), the extremes `lo` and `hi` as
//! order-preserving integers — merged in place by atomic updates (`$inc` of the counts,
//! the sum and each histogram bucket `p.<index>`, `$min`/`$max` of the extremes), so
//! concurrent apis merge without reading. Each key takes an upsert that creates the
//! document with empty `p`, `q`, `c` and `a` maps, then the increments (nx-27017 writes
//! a dotted `$inc` path as a literal key when its parent is missing; MongoDB does not
//! mind either way). A batch with an id marks each rollup part it merged
//! (`a.<batch>_<part>`) and merges only where the mark is missing. Unique index
//! `(s, m, t, l)`; a TTL index on `t` is the rollup retention.
//!
//! `<db>.rollups_hourly` holds the same documents per series and hour (`t` the hour's
//! start), merged by the same updates in a second command of the same write: an hour's
//! document is the merge of its minutes'. Same unique index; its TTL index keeps an
//! hour an hour past its start's retention, until its last minute's expires. A batch's
//! marks there accumulate over the hour (one per batch with an id and part).
//!
//! `<db>.annotations` holds one document per annotation and service it names —
//! `{_id: "<id>:<service>", a, s, t, x, ss, v}`: the annotation's id, the service, its
//! time (a BSON date), its text and all its services — so a plot's read is an equality
//! on `s` and a range on `t` (index `(s, t)`; a TTL index on `t` is the rollup
//! retention). Storing an annotation again (a retry) finds its documents there and
//! keeps them.
//!
//! A query's label selection is part of its filter (`lb.<name>` equal to, or none of,
//! the values), so MongoDB reads only the selected sets; a window's rollups of several
//! sets are merged per minute by the reader.

use mongodb::IndexModel;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use mongodb::options::IndexOptions;
use plotq_domain::chunk::{BatchId, BucketChunk};
use plotq_domain::rollup::{Rollup, SeriesRollup};
use plotq_domain::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
use plotq_domain::{Annotation, Labels, ServiceName};
use plotq_ports::{Resolution, SeriesQuery, Split};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The collection of raw chunks.
pub(crate) const CHUNKS: &str = "chunks";
/// The collection of minute rollups.
pub(crate) const ROLLUPS: &str = "rollups";
/// The collection of annotations.
pub(crate) const ANNOTATIONS: &str = "annotations";
/// The version of the annotation documents.
const ANNOTATION_VERSION: i32 = 1;

/// The documents that store `a`: one per service it names, `_id` `<id>:<service>`.
pub(crate) fn annotation_docs(a: &Annotation) -> Vec<Document> {
    let services: Vec<&str> = a.services.iter().map(|s| s.as_str()).collect();
    services
        .iter()
        .map(|service| {
            doc! {
                "_id": format!("{}:{service}", a.id),
                "v": ANNOTATION_VERSION, "a": &a.id, "s": *service,
                "t": DateTime::from_millis(a.time_ms), "x": &a.text, "ss": &services,
            }
        })
        .collect()
}

/// A stored annotation document, checked as the API checks a posted one.
pub(crate) fn decode_annotation(doc: &Document) -> Result<Annotation, String> {
    if doc.get_i32("v").map_err(|e| e.to_string())? != ANNOTATION_VERSION {
        return Err("unknown annotation version".into());
    }
    let services = doc
        .get_array("ss")
        .map_err(|e| e.to_string())?
        .iter()
        .map(|s| {
            s.as_str()
                .ok_or_else(|| "a service is not a string".to_owned())
                .and_then(ServiceName::parse)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let annotation = Annotation {
        id: doc.get_str("a").map_err(|e| e.to_string())?.to_owned(),
        time_ms: doc
            .get_datetime("t")
            .map_err(|e| e.to_string())?
            .timestamp_millis(),
        text: doc.get_str("x").map_err(|e| e.to_string())?.to_owned(),
        services,
    };
    annotation.validate()?;
    Ok(annotation)
}

/// The annotations of `service` timed in `[from_ms, until_ms]`, widened by a second each
/// side (the test server compares dates at whole seconds; the reader filters exactly).
pub(crate) fn annotation_filter(service: &str, from_ms: i64, until_ms: i64) -> Document {
    doc! {
        "s": service,
        "t": {
            "$gte": date(from_ms.saturating_sub(1_000)),
            "$lte": date(until_ms.saturating_add(1_000)),
        },
    }
}

/// The annotations' index for plot reads: `(s, t)`.
pub(crate) fn annotation_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! {"s": 1, "t": 1})
        .options(
            IndexOptions::builder()
                .name("service_time".to_owned())
                .build(),
        )
        .build()
}

/// The collection of hour rollups.
pub(crate) const HOUR_ROLLUPS: &str = "rollups_hourly";

/// The collection of rollups of `resolution`.
pub(crate) fn rollups_of(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::Minute => ROLLUPS,
        Resolution::Hour => HOUR_ROLLUPS,
    }
}
/// The version of the rollup documents.
const ROLLUP_VERSION: i32 = 2;
/// Most histogram and status-code fields one update increments (nx-27017 mis-writes
/// updates with many dotted paths; the bound costs MongoDB nothing).
const FIELDS_PER_UPDATE: usize = 32;

/// One stored chunk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChunkDoc {
    /// `<batch>:<i>` for a batch with an id (so a retry cannot store it twice), else
    /// left to the driver (an ObjectId).
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    s: String,
    m: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    l: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lb: Option<Document>,
    b: DateTime,
    lo: DateTime,
    hi: DateTime,
    n: i64,
    d: Binary,
}

/// What a window read needs of a chunk.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkData {
    pub(crate) d: Binary,
}

/// The documents of a batch's chunks, in order.
pub(crate) fn chunk_docs(chunks: Vec<BucketChunk>, batch: Option<&BatchId>) -> Vec<ChunkDoc> {
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (lo, hi) = c.chunk.span().expect("chunks are never empty");
            ChunkDoc {
                id: batch.map(|b| format!("{}:{i}", b.as_str())),
                s: c.service.to_string(),
                m: c.metric.to_string(),
                l: (!c.labels.is_empty()).then(|| c.labels.key()),
                lb: (!c.labels.is_empty()).then(|| label_doc(&c.labels)),
                b: DateTime::from_millis(c.bucket_ms),
                lo: DateTime::from_millis(lo),
                hi: DateTime::from_millis(hi),
                n: c.chunk.len() as i64,
                d: Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: c.chunk.encode(),
                },
            }
        })
        .collect()
}

/// The `update` command of `resolution` that merges every summary's rollup into its
/// (series, period) document (never under the batch's marks: summaries come from OTLP,
/// which has no batch ids), then every chunk's (see [`rollup_updates`]), in order. Hours
/// merge the rollups of their minutes first: one update per series and hour. `None`
/// when there is nothing to merge.
pub(crate) fn rollup_command(
    resolution: Resolution,
    chunks: &[BucketChunk],
    summaries: &[SeriesRollup],
    batch: Option<&BatchId>,
) -> Option<Document> {
    type Key<'a> = (&'a str, &'a str, &'a Labels, i64);
    let summarized = summaries.iter().map(|s| {
        let key: Key<'_> = (
            s.service.as_str(),
            s.metric.as_str(),
            &s.labels,
            s.minute_ms,
        );
        (key, s.rollup.clone(), false)
    });
    let sampled = chunks.iter().map(|c| {
        let key: Key<'_> = (
            c.service.as_str(),
            c.metric.as_str(),
            &c.labels,
            c.bucket_ms,
        );
        (key, Rollup::of(&c.chunk.values), true)
    });
    // (series, period) → (its rollup, whether it comes with the batch's marks), in order.
    let mut periods: Vec<(Key<'_>, Rollup, bool)> = Vec::new();
    let mut index: BTreeMap<(Key<'_>, bool), usize> = BTreeMap::new();
    for ((service, metric, labels, t), rollup, marked) in summarized.chain(sampled) {
        let key = (service, metric, labels, resolution.start_of(t));
        let held = match resolution {
            Resolution::Hour => index.get(&(key, marked)).copied(),
            Resolution::Minute => None,
        };
        match held {
            Some(i) => periods[i].1.merge(&rollup),
            None => {
                index.insert((key, marked), periods.len());
                periods.push((key, rollup, marked));
            }
        }
    }
    if periods.is_empty() {
        return None;
    }
    let mut updates = Vec::with_capacity(periods.len() * 2);
    for ((service, metric, labels, start), rollup, marked) in &periods {
        let batch = batch.filter(|_| *marked);
        updates.extend(rollup_updates(
            service, metric, labels, *start, rollup, batch,
        ));
    }
    Some(doc! {"update": rollups_of(resolution), "updates": updates, "ordered": true})
}

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
    labels: &Labels,
    minute_ms: i64,
    rollup: &Rollup,
    batch: Option<&BatchId>,
) -> Vec<Document> {
    let set = if labels.is_empty() {
        Bson::Null
    } else {
        Bson::String(labels.key())
    };
    let key = doc! {"s": service, "m": metric, "t": DateTime::from_millis(minute_ms), "l": set};
    let mut created = doc! {
        "v": ROLLUP_VERSION, "lo": ordered_key(rollup.min), "hi": ordered_key(rollup.max),
        "p": {}, "q": {}, "c": {}, "a": {},
    };
    if !labels.is_empty() {
        created.insert("lb", label_doc(labels));
    }
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
        "u": {"$setOnInsert": created},
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
            let mut max = doc! {"hi": ordered_key(rollup.max)};
            if rollup.summarized > 0 {
                inc.insert("u", rollup.summarized as i64);
                max.insert("e", error_ppb(rollup.summary_error));
            }
            update.insert("$max", max);
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

/// Parts per billion: a summary's error is stored as a whole number of them.
const PPB: f64 = 1e9;

/// A relative error (0 to 1) in parts per billion, rounded up: an integer, kept exactly
/// by `$max` (the MongoDB-wire test server rounds doubles to 15 digits) and never read
/// back smaller than it was.
fn error_ppb(error: f64) -> i64 {
    (error.clamp(0.0, 1.0) * PPB).ceil() as i64
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

/// A stored rollup document (its minute and rollup), checked as `Rollup::validate`
/// checks.
pub(crate) fn decode_rollup(doc: &Document) -> Result<(i64, Rollup), String> {
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
        summarized: count(doc, "u")?,
        summary_error: count(doc, "e")? as f64 / PPB,
    };
    rollup.validate()?;
    let minute = doc.get_datetime("t").map_err(|e| e.to_string())?;
    Ok((minute.timestamp_millis(), rollup))
}

/// The documents of the query's series whose date `field` lies in `[from_ms,
/// until]`, widened by a second each side: the test server compares dates at whole
/// seconds, and the samples are filtered exactly after decoding.
pub(crate) fn series_filter(query: &SeriesQuery<'_>, field: &str, from_ms: i64) -> Document {
    let mut filter = doc! {
        "s": query.service,
        "m": query.metric,
        field: {
            "$gte": date(from_ms.saturating_sub(1_000)),
            "$lte": date(query.until_ms.saturating_add(1_000)),
        },
    };
    // Label names hold no '.' (`plotq_domain::labels`): each is one field of `lb`.
    for (name, value) in query.select.filter.into_iter().flat_map(Labels::iter) {
        filter.insert(format!("lb.{name}"), value);
    }
    match query.select.split {
        None => {}
        Some((name, Split::Is(value))) => {
            filter.insert(format!("lb.{name}"), value);
        }
        Some((name, Split::NoneOf(values))) => {
            filter.insert(format!("lb.{name}"), doc! {"$nin": values});
        }
    }
    filter
}

/// A label set as the document `lb` holds: its pairs, by name.
fn label_doc(labels: &Labels) -> Document {
    labels
        .iter()
        .map(|(n, v)| (n.to_owned(), Bson::from(v)))
        .collect()
}

/// A query bound as a BSON date, within the timestamps plotq accepts (years 1970 to
/// 9999): the margins added to a window must not leave them (drivers and servers that
/// map dates to calendar types refuse year 10000).
fn date(ms: i64) -> DateTime {
    DateTime::from_millis(ms.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS))
}

/// The chunks' index for window reads: `(s, m, lo)`.
pub(crate) fn chunk_series_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! {"s": 1, "m": 1, "lo": 1})
        .options(IndexOptions::builder().name("series_lo".to_owned()).build())
        .build()
}

/// The rollups' unique index: one document per series (label set included) and minute,
/// `(s, m, t, l)`; window reads use its `(s, m, t)` prefix.
pub(crate) fn rollup_minute_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! {"s": 1, "m": 1, "t": 1, "l": 1})
        .options(
            IndexOptions::builder()
                .name(ROLLUP_INDEX.to_owned())
                .unique(true)
                .build(),
        )
        .build()
}

/// The name of the rollups' unique index.
pub(crate) const ROLLUP_INDEX: &str = "series_minute_labels";
/// The unique index of rollups before labels, `(s, m, t)`: dropped at start, since it
/// would refuse a second label set's minute.
pub(crate) const ROLLUP_INDEX_BEFORE_LABELS: &str = "series_minute";

/// A TTL index `name` on the date `field`, expiring documents `expire_after` past it.
pub(crate) fn ttl_index(field: &str, name: &str, expire_after: Duration) -> IndexModel {
    IndexModel::builder()
        .keys(doc! {field: 1})
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .expire_after(expire_after)
                .build(),
        )
        .build()
}

/// The `collMod` that changes the expiry of `collection`'s TTL index on `field` in
/// place (MongoDB refuses to re-create an index with other options).
pub(crate) fn ttl_change(collection: &str, field: &str, expire_after: Duration) -> Document {
    doc! {
        "collMod": collection,
        "index": {"keyPattern": {field: 1}, "expireAfterSeconds": expire_after.as_secs() as i64},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A rollup with more bucket and code fields than one update takes.
    fn wide_rollup() -> Rollup {
        let values: Vec<f64> = (0..60)
            .map(|i| 1.5f64.powi(i))
            .chain([-3.0, 0.0, 200.0, 503.0])
            .collect();
        Rollup::of(&values)
    }

    #[test]
    fn a_rollup_merges_as_an_upsert_then_parts_of_at_most_32_fields() {
        let rollup = wide_rollup();
        let fields = rollup.positive.len() + rollup.negative.len() + rollup.codes.len();
        assert!(fields > FIELDS_PER_UPDATE, "{fields} fields");
        let updates = rollup_updates("svc", "latency_ms", &Labels::none(), 60_000, &rollup, None);
        assert_eq!(updates.len(), 1 + fields.div_ceil(FIELDS_PER_UPDATE));
        let upsert = &updates[0];
        assert!(upsert.get_bool("upsert").unwrap());
        let created = upsert
            .get_document("u")
            .unwrap()
            .get_document("$setOnInsert")
            .unwrap();
        assert_eq!(created.get_i32("v"), Ok(ROLLUP_VERSION));
        let mut incremented = 0;
        for (part, update) in updates[1..].iter().enumerate() {
            let u = update.get_document("u").unwrap();
            let inc = u.get_document("$inc").unwrap();
            let totals = ["n", "sum", "z"]
                .iter()
                .filter(|k| inc.contains_key(k))
                .count();
            assert_eq!(totals, if part == 0 { 3 } else { 0 }, "part {part}");
            assert_eq!(u.contains_key("$min"), part == 0);
            let dotted = inc.keys().filter(|k| k.contains('.')).count();
            assert!(dotted <= FIELDS_PER_UPDATE);
            incremented += dotted;
            assert!(!update.get_document("q").unwrap().contains_key("a"));
        }
        assert_eq!(incremented, fields, "every bucket and code once");
    }

    #[test]
    fn a_batch_marks_each_part_and_merges_only_where_unmarked() {
        let batch = BatchId::parse(&"ab".repeat(16)).unwrap();
        let updates = rollup_updates(
            "svc",
            "latency_ms",
            &Labels::none(),
            0,
            &wide_rollup(),
            Some(&batch),
        );
        for (part, update) in updates[1..].iter().enumerate() {
            let marker = format!("a.{}_{part}", batch.as_str());
            let q = update.get_document("q").unwrap();
            assert_eq!(q.get_document(&marker), Ok(&doc! {"$exists": false}));
            let set = update.get_document("u").unwrap().get_document("$set");
            assert_eq!(set, Ok(&doc! {marker: 1}));
        }
    }

    #[test]
    fn stored_rollups_read_back_and_are_checked() {
        let rollup = wide_rollup();
        let inner = |map: &BTreeMap<i32, u64>| -> Document {
            map.iter()
                .map(|(k, n)| (k.to_string(), Bson::Int64(*n as i64)))
                .collect()
        };
        let codes: Document = rollup
            .codes
            .iter()
            .map(|(k, n)| (k.to_string(), Bson::Int64(*n as i64)))
            .collect();
        let stored = doc! {
            "v": ROLLUP_VERSION, "t": DateTime::from_millis(120_000),
            "n": rollup.count as i64, "sum": rollup.sum, "z": rollup.zeros as i64,
            "lo": ordered_key(rollup.min), "hi": ordered_key(rollup.max),
            "p": inner(&rollup.positive), "q": inner(&rollup.negative), "c": codes, "a": {},
        };
        assert_eq!(decode_rollup(&stored), Ok((120_000, rollup)));
        let mut other = stored.clone();
        other.insert("v", 1);
        assert!(decode_rollup(&other).is_err(), "another version");
        let mut negative = stored;
        negative.insert("n", -1i64);
        assert!(decode_rollup(&negative).is_err(), "a negative count");
    }

    #[test]
    fn window_filters_stay_within_the_accepted_years() {
        let query = SeriesQuery {
            service: "svc",
            metric: "latency_ms",
            from_ms: MAX_TIMESTAMP_MS - 10,
            until_ms: MAX_TIMESTAMP_MS,
            with_timestamps: false,
            select: plotq_ports::LabelSelect::ALL,
        };
        let filter = series_filter(&query, "lo", query.from_ms);
        let bounds = filter.get_document("lo").unwrap();
        assert_eq!(
            bounds.get_datetime("$gte"),
            Ok(&DateTime::from_millis(MAX_TIMESTAMP_MS - 1_010))
        );
        assert_eq!(
            bounds.get_datetime("$lte"),
            Ok(&DateTime::from_millis(MAX_TIMESTAMP_MS)),
            "clamped to the end of 9999"
        );
        let start = series_filter(&query, "t", MIN_TIMESTAMP_MS);
        let bounds = start.get_document("t").unwrap();
        assert_eq!(
            bounds.get_datetime("$gte"),
            Ok(&DateTime::from_millis(MIN_TIMESTAMP_MS))
        );
    }
}
