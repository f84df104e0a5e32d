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
//!
//! One file per port trait (`store.rs`, `queue.rs`, `cache.rs`, `events.rs`,
//! `views.rs`), mirroring their in-memory twins in `memory/`; `error.rs` is `PortError`.
//! This file only declares the modules and re-exports their items, so every
//! `plotq_ports::X` path names what it always did.

pub mod backoff;
pub mod breaker;
pub mod cache;
pub mod clock;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "contract"))]
pub mod faulty;
pub mod memory;
pub mod queue;
pub mod store;
pub mod timing;
pub mod urls;
pub mod views;
pub mod window;

pub use backoff::Backoff;
pub use breaker::{Breaker, BreakerConfig, Ticket};
pub use cache::{Idempotency, IdempotentStart, LaneSlot, PlotCache, RequestClaim};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{PortError, PortResult};
pub use events::{EventBus, READ_BATCH, StoredEvent};
pub use queue::{Acker, DeadLetter, Delivery, JobConsumer, JobQueue};
pub use store::{
    LabelSelect, MetricStore, Points, Resolution, Rollups, SeriesQuery, Split, StoreUsage,
};
pub use urls::split_urls;
pub use views::{HOUR_MS, ViewRegistry};
pub use window::{SourcePolicy, WindowRead, read_window};
