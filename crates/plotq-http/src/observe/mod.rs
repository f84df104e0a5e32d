//! How every HTTP role observes itself: the `observe` middleware (one Prometheus
//! counter and duration histogram per route template, method and status; one log line
//! per request; slow-request warnings; the `Server-Timing` header; the request
//! statistics `GET /api/v1/health` shows; plotq's own request durations as samples),
//! the process-wide Prometheus recorder and `/metrics`, and process figures (memory,
//! threads, open files) from `sysinfo`.
//!
//! Labels are bounded: the route is the matched template (`/api/v1/plots/{id}`, or
//! `unmatched`), the method one of the few plotq serves (or `other`), the status a
//! number. Probes and scrapes (`/healthz`, `/readyz`, `/metrics`, `/api/v1/health`) are
//! counted in Prometheus only: they are logged at debug and are neither request
//! statistics nor samples, so a load balancer or a health page left open does not
//! drown what users did.
//!
//! Files: `observer.rs` (`Observer`, `ObserveConfig` and the middleware with its
//! `Server-Timing`), `stats.rs` (the request statistics), `samples.rs` (plotq's own
//! request samples and their writer, `SelfSamples`), `prometheus.rs` (the recorder and
//! `/metrics`), `process.rs` (`ProcessInfo`).

mod observer;
mod process;
pub(crate) mod prometheus;
mod samples;
mod stats;

pub use observer::{ObserveConfig, Observer};
pub use process::{ProcessInfo, process_started};
pub use prometheus::{metrics_router, prometheus, scrape, upkeep};
pub use samples::{SELF_DURATION_METRIC, SELF_STATUS_METRIC, SelfSamples};
pub use stats::{ErrorNote, RequestSnapshot, RouteCount};
