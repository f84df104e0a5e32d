//! The `MetricStore` port, where samples live, and what it reads back: `SeriesQuery`
//! (one metric of one service over an inclusive window, the label sets it reads chosen
//! by `LabelSelect`), `Points` (raw samples), `Rollups` (rollups of one `Resolution`:
//! every store keeps minute and hour rollups of every series, both written with the
//! samples), and `StoreUsage` (how full a bounded store is). Stores keep annotations
//! too (marked moments, drawn on time plots). Implemented by `plotq-mongo` and
//! `memory::MemoryStore`.
//!
//! A series is a service, a metric and a label set (`plotq_domain::Labels`); a query
//! reads every set of its metric that its `LabelSelect` selects, as one.

use crate::error::PortResult;
use crate::views::HOUR_MS;
use async_trait::async_trait;
use plotq_domain::chunk::{BatchId, Chunk};
use plotq_domain::rollup::{ROLLUP_MS, Rollup, SeriesRollup};
use plotq_domain::{Annotation, Labels, Sample};

/// One metric of one service over an inclusive window: samples with `from_ms <=
/// timestamp <= until_ms` (a sample taken at exactly `until_ms` is drawn), of the label
/// sets `select` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesQuery<'a> {
    pub service: &'a str,
    pub metric: &'a str,
    pub from_ms: i64,
    pub until_ms: i64,
    /// Whether to return timestamps (they double what is returned).
    pub with_timestamps: bool,
    pub select: LabelSelect<'a>,
}

/// Which label sets of a metric a query reads: those that include every pair of
/// `filter` and, with `split`, whose value of one label is the one given (`Is`) or none
/// of those given (`NoneOf`: a set without the label is one of these). Every set by
/// default ([`LabelSelect::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelSelect<'a> {
    pub filter: Option<&'a Labels>,
    pub split: Option<(&'a str, Split<'a>)>,
}

/// One side of a `group_by`: a value's group, or everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split<'a> {
    Is(&'a str),
    NoneOf(&'a [String]),
}

impl<'a> LabelSelect<'a> {
    /// Every label set.
    pub const ALL: LabelSelect<'static> = LabelSelect {
        filter: None,
        split: None,
    };

    /// The sets that include every pair of `filter` (every set when it is empty).
    pub fn filtered(filter: &'a Labels) -> Self {
        Self {
            filter: (!filter.is_empty()).then_some(filter),
            split: None,
        }
    }

    /// Whether set `labels` is read.
    pub fn selects(&self, labels: &Labels) -> bool {
        if self.filter.is_some_and(|f| !labels.matches(f)) {
            return false;
        }
        match self.split {
            None => true,
            Some((name, Split::Is(value))) => labels.get(name) == Some(value),
            Some((name, Split::NoneOf(values))) => labels
                .get(name)
                .is_none_or(|v| !values.iter().any(|x| x == v)),
        }
    }

    /// Whether every set is read.
    pub fn is_all(&self) -> bool {
        self.filter.is_none() && self.split.is_none()
    }
}

impl SeriesQuery<'_> {
    pub fn contains(&self, timestamp_ms: i64) -> bool {
        (self.from_ms..=self.until_ms).contains(&timestamp_ms)
    }
}

/// Samples read back from a store: values, and their timestamps when requested.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// Epoch milliseconds parallel to `values`, or empty when not requested.
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    /// Stored chunks (documents) read to answer, the measure of a read's cost.
    pub chunks_read: u64,
}

impl Points {
    /// Adds the samples of `chunk` that `query` wants.
    pub fn extend_from(&mut self, query: &SeriesQuery<'_>, chunk: &Chunk) {
        self.chunks_read += 1;
        for (&t, &v) in chunk.timestamps_ms.iter().zip(&chunk.values) {
            if query.contains(t) {
                self.values.push(v);
                if query.with_timestamps {
                    self.timestamps_ms.push(t);
                }
            }
        }
    }
}

/// The periods rollups summarize: a store keeps both, each written with the samples
/// (an hour's rollup is the merge of its minutes'), so a long window reads one document
/// an hour rather than sixty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resolution {
    #[default]
    Minute,
    Hour,
}

impl Resolution {
    /// The period's length: a minute ([`ROLLUP_MS`]) or an hour.
    pub const fn millis(self) -> i64 {
        match self {
            Self::Minute => ROLLUP_MS,
            Self::Hour => HOUR_MS,
        }
    }

    /// The start of the period that holds `t_ms` (floor division: right before 1970 too).
    pub const fn start_of(self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.millis()) * self.millis()
    }
}

/// Rollups of one series read back from a store, at one resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    /// `(period start, rollup)` in time order, only periods that hold samples: minutes
    /// or hours, as read.
    pub minutes: Vec<(i64, Rollup)>,
    /// Stored documents read to answer.
    pub docs_read: u64,
}

/// How full a bounded store is (shown by `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreUsage {
    /// Bytes the store holds (for the in-memory store: samples, rollups and each series'
    /// bookkeeping, as counted from its data structures).
    pub bytes: u64,
    /// The configured bound; inserts past it are refused with `PortError::Full`.
    pub max_bytes: u64,
    pub samples: u64,
}

/// Where samples live.
#[async_trait]
pub trait MetricStore: Send + Sync + 'static {
    /// Stores every sample; returns only once the store acknowledged the write. With a
    /// `batch`, a batch already stored under that id is not stored (or counted) again,
    /// whatever part of it a failed earlier attempt wrote.
    async fn insert(&self, samples: &[Sample], batch: Option<&BatchId>) -> PortResult<()> {
        self.write(samples, &[], batch).await
    }
    /// [`MetricStore::insert`] of `samples`, and `summaries` merged into their series'
    /// minute rollups (values with no raw samples: `Rollup::from_buckets`), as one write:
    /// refused whole when the store is full, acknowledged when both are stored.
    async fn write(
        &self,
        samples: &[Sample],
        summaries: &[SeriesRollup],
        batch: Option<&BatchId>,
    ) -> PortResult<()>;
    /// The samples `query` asks for, in no particular order.
    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points>;
    /// The minute rollups of the minutes that overlap the query's window (whole minutes:
    /// the first and last may reach outside it), the selected sets' merged per minute.
    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<Rollups> {
        self.rollups_at(query, Resolution::Minute).await
    }
    /// The rollups of `resolution` of the periods that overlap the query's window (whole
    /// periods: the first and last may reach outside it), the selected sets' merged per
    /// period. An hour's rollup equals the merge of its minutes'.
    async fn rollups_at(
        &self,
        query: &SeriesQuery<'_>,
        resolution: Resolution,
    ) -> PortResult<Rollups>;
    /// How many samples of the selected sets each value of label `name` has in the
    /// query's window (whole periods of `resolution`, from the rollups), most first;
    /// `None` counts the sets without the label.
    async fn label_counts(
        &self,
        query: &SeriesQuery<'_>,
        name: &str,
        resolution: Resolution,
    ) -> PortResult<Vec<(Option<String>, u64)>>;
    /// Stores an annotation (kept for the rollup retention past its time); one with the
    /// id of one stored already (a retry) is not stored again.
    async fn annotate(&self, annotation: &Annotation) -> PortResult<()>;
    /// The annotations of any of `services` timed within `[from_ms, until_ms]`: the
    /// latest [`MAX_DRAWN`](plotq_domain::annotation::MAX_DRAWN), in time order.
    async fn annotations(
        &self,
        services: &[&str],
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Vec<Annotation>>;
    /// Readiness probe.
    async fn ping(&self) -> PortResult<()>;
    /// The dependency this store is, as errors name it (`mongodb`, `memory store`).
    fn dependency(&self) -> &'static str {
        "store"
    }
    /// How full the store is, when it has a size bound of its own.
    fn usage(&self) -> Option<StoreUsage> {
        None
    }
}
