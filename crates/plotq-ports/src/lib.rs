//! The ports: the small interfaces the api, worker and notifier use to reach the outside
//! world — `MetricStore` (samples), `JobQueue` (work), `PlotCache` (job states, PNGs and
//! single-flight claims), `EventBus` (plot.ready/failed, with a bounded history, each
//! event positioned by an `EventId`) and `ViewRegistry` (live-refresh bookkeeping) — and
//! `PortError`, the failures callers branch on. Also the small shared pieces of every
//! service loop: `clock` (the `Clock` port, `ManualClock` for tests, and the one
//! `now_ms()`), `Backoff` (exponential retry delays with a cap) and `Breaker` (one
//! dependency's health, shared by its callers: fail fast while it is down). And
//! `window`, the one way a plot's window is read from a `MetricStore` (raw samples or
//! rollups, by `SourcePolicy`) with its statistics, for the worker and the api alike;
//! and `split_urls`, where one dependency URL of a comma-separated list ends.
//!
//! Each external technology implements them in its own crate (`plotq-mongo`,
//! `plotq-amqp`, `plotq-redis`); `memory` holds in-process implementations that are the
//! embedded standalone mode and the fast unit-test doubles; `contract` (feature
//! `contract`) holds the behaviour tests every adapter of a port runs, and `faulty`
//! (same feature) the one fault-injecting wrapper tests put around any adapter. This crate knows no client
//! library and no wire protocol.

pub mod backoff;
pub mod breaker;
pub mod clock;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
#[cfg(any(test, feature = "contract"))]
pub mod faulty;
pub mod memory;
pub mod timing;
pub mod urls;
pub mod window;

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerConfig, Ticket};
pub use clock::{Clock, ManualClock, SystemClock};
pub use urls::split_urls;
pub use window::{SourcePolicy, WindowRead, read_window};

use async_trait::async_trait;
use plotq_domain::chunk::BatchId;
use plotq_domain::wire::{EventId, JobMessage, PlotEvent};
use plotq_domain::{JobId, JobState, Sample, ViewState};
use std::time::Duration;

/// Why a port call failed, in the terms a caller branches on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// The dependency cannot be reached or timed out; retrying later may succeed.
    #[error("{dependency} is unavailable: {detail}")]
    Unavailable {
        dependency: &'static str,
        detail: String,
    },
    /// The dependency answered but refused the request (full queue, unroutable message).
    #[error("{dependency} refused the request: {detail}")]
    Refused {
        dependency: &'static str,
        detail: String,
    },
    /// A store is at its configured size bound; nothing was written. Space comes back as
    /// retention drops old data (or when the operator raises the bound).
    #[error("{dependency} is full: {detail}")]
    Full {
        dependency: &'static str,
        detail: String,
    },
}

impl PortError {
    pub fn unavailable(dependency: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            dependency,
            detail: detail.to_string(),
        }
    }

    pub fn refused(dependency: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Refused {
            dependency,
            detail: detail.to_string(),
        }
    }

    /// Whether this is a breaker's refusal (the dependency is known down and was not
    /// called), rather than a failed call.
    pub fn is_failing_fast(&self) -> bool {
        matches!(self, Self::Unavailable { detail, .. } if detail.contains(breaker::FAILING_FAST))
    }

    pub fn dependency(&self) -> &'static str {
        match self {
            Self::Unavailable { dependency, .. }
            | Self::Refused { dependency, .. }
            | Self::Full { dependency, .. } => dependency,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// One series over an inclusive window: samples with `from_ms <= timestamp <= until_ms`
/// (a sample taken at exactly `until_ms` is drawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesQuery<'a> {
    pub service: &'a str,
    pub metric: &'a str,
    pub from_ms: i64,
    pub until_ms: i64,
    /// Whether to return timestamps (they double what is returned).
    pub with_timestamps: bool,
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
    pub fn extend_from(&mut self, query: &SeriesQuery<'_>, chunk: &plotq_domain::chunk::Chunk) {
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

/// Minute rollups of one series read back from a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    /// `(minute start, rollup)` in time order, only minutes that hold samples.
    pub minutes: Vec<(i64, plotq_domain::rollup::Rollup)>,
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
    async fn insert(&self, samples: &[Sample], batch: Option<&BatchId>) -> PortResult<()>;
    /// The samples `query` asks for, in no particular order.
    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points>;
    /// The minute rollups of the minutes that overlap the query's window (whole minutes:
    /// the first and last may reach outside it).
    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<Rollups>;
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

/// The durable work queue between the api and the workers.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues a job; returns only once the queue has durably accepted it.
    async fn publish(&self, job: &JobMessage) -> PortResult<()>;
    /// Schedules a delivery again after the backoff of retry `attempt` (1-based), durably;
    /// the caller acks the original only after this returned.
    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()>;
    /// Moves a job to the dead-letter queue with the reason it is there.
    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()>;
    /// The dead letters (oldest first, at most `max`), left in place.
    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>>;
    /// Re-enqueues dead letters (all, or the one of job `id`) as fresh jobs; returns how
    /// many were moved.
    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize>;
    /// Starts consuming with at most `prefetch` unacknowledged deliveries.
    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>>;
    /// Readiness probe.
    async fn ping(&self) -> PortResult<()>;
}

/// A stream of deliveries for one worker.
#[async_trait]
pub trait JobConsumer: Send {
    /// The next delivery; `None` when the consumer was closed (connection lost, shutdown).
    async fn next(&mut self) -> Option<Delivery>;
}

/// A job in the dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub reason: String,
    pub attempts: u32,
    /// When it was dead-lettered, epoch ms (0 if unknown).
    pub dead_at_ms: i64,
}

/// One delivered job, to be settled exactly once.
pub struct Delivery {
    pub body: Vec<u8>,
    /// The queue delivered this message before (a worker died or gave it back).
    pub redelivered: bool,
    /// Retries already made (0 on the first attempt).
    pub attempt: u32,
    pub acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("bytes", &self.body.len())
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// Settles one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done with it. `Ok(false)` means the channel was gone: the queue will redeliver it.
    async fn ack(&self) -> PortResult<bool>;
    /// Give it back (`requeue`) or drop it (dead-letter, where configured).
    async fn reject(&self, requeue: bool) -> PortResult<()>;
}

/// Job states and rendered images, each with a time to live.
#[async_trait]
pub trait PlotCache: Send + Sync + 'static {
    /// Since when this cache holds what was written to it (epoch ms): a cache that lost
    /// its data (a Redis that restarted empty) answers the time it was first asked
    /// after the loss. A job issued before that whose state is missing lost its state
    /// (`410 state_lost`) rather than never existing. Caches that cannot lose their
    /// data without the process losing its ids too answer `i64::MIN`.
    async fn data_since(&self, _now_ms: i64) -> PortResult<i64> {
        Ok(i64::MIN)
    }
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()>;
    /// Writes `state` only if the job has none yet (a worker may have written a newer
    /// one first); whether it was written.
    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool>;
    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>>;
    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()>;
    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>>;
    /// Single flight: claims request `key` for job `id` for `ttl`, or returns the job
    /// that already holds it.
    async fn claim_request(&self, key: &str, id: JobId, ttl: Duration)
    -> PortResult<Option<JobId>>;
    /// Points request `key` at job `id` (its previous job failed or expired).
    async fn replace_request(&self, key: &str, id: JobId, ttl: Duration) -> PortResult<()>;
    /// Undoes `claim_request`/`replace_request`: removes the claim on `key` only if job
    /// `id` still holds it (atomically; a claim taken over by another job stays).
    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()>;
    /// Forgets job `id`'s state (e.g. a `queued` state whose job was never published).
    async fn delete_state(&self, id: JobId) -> PortResult<()>;
    /// Starts an idempotent ingest under `key` for a body with `fingerprint`: `Fresh`
    /// (the key is now held as in progress for `pending_ttl`), or what the key already
    /// holds.
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> PortResult<IdempotentStart>;
    /// Records that the ingest under `key` stored `accepted` samples; kept for `ttl`.
    async fn finish_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        accepted: u64,
        ttl: Duration,
    ) -> PortResult<()>;
    /// Forgets an in-progress `key` of `fingerprint` (its ingest failed; a retry may
    /// run), and nothing else.
    async fn abandon_idempotent(&self, key: &str, fingerprint: &str) -> PortResult<()>;
    /// Counts job `id` as in flight in `lane` (a tenant's share of the queue) until
    /// `end_job` or for `lease` at most, if the lane holds fewer than `cap` unexpired jobs
    /// (atomically: every api replica shares the count); whether it was counted. A job
    /// counted already is counted once.
    async fn begin_job(
        &self,
        lane: &str,
        id: JobId,
        cap: usize,
        lease: Duration,
        now_ms: i64,
    ) -> PortResult<bool>;
    /// Job `id` of `lane` ended (done, failed, dead-lettered, or never queued).
    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()>;
    async fn ping(&self) -> PortResult<()>;
}

/// What an idempotency key holds when an ingest starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotentStart {
    /// Nobody used the key: go on (it is now held as in progress).
    Fresh,
    /// The same body was stored: answer as before, with this many samples accepted.
    Done(u64),
    /// The same body is being stored by another request.
    Pending,
    /// The key was used for another body.
    Conflict,
}

impl IdempotentStart {
    /// The value a store keeps for a key: `p:<fp>` in progress, `d:<fp>:<n>` done.
    pub fn encode_pending(fingerprint: &str) -> String {
        format!("p:{fingerprint}")
    }

    pub fn encode_done(fingerprint: &str, accepted: u64) -> String {
        format!("d:{fingerprint}:{accepted}")
    }

    /// What a stored value means for a request with `fingerprint` (`Pending` for a value
    /// that is not one of the two forms, so a corrupt entry delays rather than admits).
    pub fn of_stored(stored: &str, fingerprint: &str) -> Self {
        let (state, rest) = stored.split_at(stored.len().min(2));
        let (fp, accepted) = rest.split_once(':').unwrap_or((rest, ""));
        if fp != fingerprint {
            return Self::Conflict;
        }
        match (state, accepted.parse::<u64>()) {
            ("d:", Ok(n)) => Self::Done(n),
            _ => Self::Pending,
        }
    }
}

/// Which dashboard views are watched, which series got new samples, and the latest
/// render of each view: the shared memory of live refresh, for every notifier replica.
#[async_trait]
pub trait ViewRegistry: Send + Sync + 'static {
    /// Marks `views` as watched until `until_ms` (a lease the watcher renews).
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()>;
    /// Views whose lease runs past `now_ms`.
    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>>;
    /// Records that samples of these `(service, metric)` series arrived at `now_ms`. The
    /// list is bounded: implementations keep at most a configured number of series (the
    /// most recently touched) and forget series not touched for 8 days.
    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()>;
    /// When samples of a series last arrived.
    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>>;
    /// Services that received samples since `since_ms`, sorted.
    async fn services(&self, since_ms: i64) -> PortResult<Vec<String>>;
    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>>;
    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()>;
    /// Claims the right to refresh `view` for `ttl`: true for exactly one caller, across
    /// every replica, until the claim lapses (the refresh debounce).
    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool>;
}

/// An event as stored on the bus: its position (unique, increasing in publish order)
/// and body.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: EventId,
    pub event: PlotEvent,
}

/// The fan-out of plot events to every notifier, with a bounded shared history. Events
/// are positioned by `EventId`s, ordered as they were published; what they look like on
/// the bus itself is the adapter's business.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Appends an event; returns its id.
    async fn publish(&self, event: &PlotEvent) -> PortResult<EventId>;
    /// Events after `after` (exclusive; `None` = only events published from now on),
    /// waiting up to `block` for the first one. At most `max` events.
    async fn read_after(
        &self,
        after: Option<EventId>,
        block: Duration,
        max: usize,
    ) -> PortResult<Vec<StoredEvent>>;
    /// The id of the newest event, if any: where a fresh reader starts.
    async fn last_id(&self) -> PortResult<Option<EventId>>;
    /// History after `after` (exclusive; `EventId::ZERO` = all of it), oldest first, at
    /// most `max`, without waiting.
    async fn history_after(&self, after: EventId, max: usize) -> PortResult<Vec<StoredEvent>>;
    async fn ping(&self) -> PortResult<()>;
}
