//! The thin HTTP API: ingest samples, accept plot requests as queued jobs, serve job
//! states and images, list services, answer a window's statistics (`stats.rs`, read
//! through the workers' `plotq_ports::window`), issue browser read tickets, serve the
//! live dashboard page and the OpenAPI document, and serve plots by URL (`render.rs`:
//! `GET /api/v1/render` and its signed links).
//!
//! It never renders: a plot request is answered `202` as soon as the job is durably
//! queued, and only `GET /api/v1/render` waits for the workers, for a bounded time and
//! a bounded number of requests at once. Authentication, limits, problem+json and health
//! come from `plotq-http`, shared with the notifier. The router is a plain function of
//! its state so tests can drive it in-process and binaries can merge it with others.

mod caddy;
mod dashboard;
mod ingest;
pub mod openapi;
mod render;
mod routes;
mod stats;

pub use dashboard::dashboard_router;
pub use ingest::store_samples;
pub use openapi::{ApiDoc, openapi_router};
pub use render::RenderConfig;
pub use routes::{ApiConfig, ApiState, DEFAULT_MAX_BATCH_BUCKETS, StatsSlots, reuse_for, router};
