//! `PlotCache`, `EventBus` and `ViewRegistry` on Redis: the only crate that speaks to
//! Redis. This file only names the parts; each says what it owns.
//!
//! - `config.rs`: `RedisConfig` (settings only).
//! - `topology.rs`: `Topology`, one node or a Redis Cluster and its seed URLs (parsing
//!   only).
//! - `link.rs`: `Link`, the one way commands reach Redis — over a connection manager or
//!   a cluster connection, behind the process's Redis breaker, retried once when they
//!   failed fast to reach it, every call bounded by the dependency timeout — and the
//!   health probe.
//! - `keys.rs`: every key's name under the namespace (hash tags on a cluster).
//! - `cache.rs`: `RedisCache` (`PlotCache`: job states, images, single-flight claims,
//!   idempotency records, lanes, `<ns>:since`; its Lua scripts).
//! - `events.rs`: `RedisEventBus` (`EventBus`: the capped stream; stream ids ↔
//!   `EventId`s).
//! - `views.rs`: `RedisViews` (`ViewRegistry`: leases, series, view states, claims).
//!
//! Every key has a TTL except the capped event stream and `<ns>:since`.

mod cache;
mod config;
mod events;
mod keys;
mod link;
mod topology;
mod views;

pub use cache::RedisCache;
pub use config::RedisConfig;
pub use events::RedisEventBus;
pub use topology::Topology;
pub use views::{DEFAULT_MAX_SERIES, RedisViews};
