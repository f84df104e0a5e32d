//! The thin HTTP API: ingest samples, accept plot requests as queued jobs, serve job
//! states and images, list services, serve the live dashboard page, and report health.
//!
//! It never renders and never waits for a render: a plot request is answered `202` as
//! soon as the job is durably queued. Every error is RFC 9457 problem+json naming the
//! field and the problem (`problem.rs`). The router is a plain function of its state so
//! tests can drive it in-process and binaries can merge it with other routers.

mod dashboard;
mod health;
mod problem;
mod routes;

pub use dashboard::dashboard_router;
pub use health::{Probe, readiness_router};
pub use problem::Problem;
pub use routes::{ApiConfig, ApiState, router};
