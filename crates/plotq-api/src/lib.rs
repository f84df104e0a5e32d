//! The thin HTTP API: ingest samples, accept plot requests as queued jobs, serve job
//! states and images, list services, answer a window's statistics (`stats.rs`, read
//! through the workers' `plotq_ports::window`), issue browser read tickets, serve the
//! live dashboard page and the OpenAPI document.
//!
//! It never renders and never waits for a render: a plot request is answered `202` as
//! soon as the job is durably queued. Authentication, limits, problem+json and health
//! come from `plotq-http`, shared with the notifier. The router is a plain function of
//! its state so tests can drive it in-process and binaries can merge it with others.

mod caddy;
mod dashboard;
mod ingest;
pub mod openapi;
mod routes;
mod stats;

pub use dashboard::dashboard_router;
pub use ingest::store_samples;
pub use openapi::{ApiDoc, openapi_router};
pub use routes::{ApiConfig, ApiState, StatsSlots, router};
