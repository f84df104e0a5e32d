//! `MetricStore` on MongoDB: the only crate that speaks to MongoDB. This file only
//! names the parts; each says what it owns.
//!
//! - `config.rs`: `MongoConfig` (settings only).
//! - `documents.rs`: what is stored and asked, as BSON, with no I/O — samples in time
//!   buckets (MongoDB's bucket pattern, which its time-series collections use inside:
//!   `<db>.chunks`, one document per series, one-minute bucket and write), minute
//!   rollups merged in place by atomic updates (`<db>.rollups`), the order-preserving
//!   integer encoding of their extremes, window filters, index specs.
//! - `store.rs`: `MongoStore`, the I/O — the client and its bounds, indexes and the
//!   retention TTLs (`PLOTQ_RAW_RETENTION`, `PLOTQ_ROLLUP_RETENTION`, changed in place
//!   with `collMod`), inserts, reads, the breaker.

mod config;
mod documents;
mod store;

pub use config::MongoConfig;
pub use store::MongoStore;
