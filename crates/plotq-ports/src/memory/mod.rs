//! In-process implementations of every port: the embedded standalone mode (`plotq`
//! with no external services) and fast doubles for unit tests.
//!
//! They keep the same promises as the real adapters where it matters to callers —
//! bounded memory (retention, queue bound, TTLs, history length, series-list bound),
//! inclusive data windows, retry tiers taken in order, redelivery of rejected jobs,
//! single-flight claims released only by their holder, exclusive event ids — but nothing
//! survives the process. Job and view states are kept in their wire form
//! (`wire::encode_state`, `wire::encode_view_state`), so they go through the same
//! versioning and validation as in Redis.
//!
//! Expiry (cache TTLs, view claims) and event ids follow a `Clock` (the system clock
//! unless `with_clock` gives a `ManualClock`), so tests move time instead of sleeping.
//! Event ids are made as Redis makes stream ids: `<clock ms>-<seq>`, the sequence
//! counting events within one millisecond, and never going backwards when the clock does.
//!
//! One file per port: `store.rs` (`MemoryStore`), `queue.rs` (`MemoryQueue`, its consumer
//! and acker), `cache.rs` (`MemoryCache`), `events.rs` (`MemoryEventBus`), `views.rs`
//! (`MemoryViews`); `ttl.rs` is the expiry they share.

mod cache;
mod events;
mod queue;
mod store;
mod ttl;
mod views;

pub use cache::MemoryCache;
pub use events::MemoryEventBus;
pub use queue::MemoryQueue;
pub use store::{MemoryStore, MemoryStoreConfig};
pub use views::{DEFAULT_MAX_SERIES, MemoryViews, SERIES_RETENTION_MS};

/// A queued job's state, for the tests of every port.
#[cfg(test)]
use crate::contract::queued_state as test_state;
