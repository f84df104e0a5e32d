//! The end-to-end suite: one test binary (one link, one process per test under
//! nextest), a module per area. Each starts the real roles — in process through
//! `support::app::TestApp`, or as `plotq` processes through `support::Plotq` where the
//! process boundary is the point — against real RabbitMQ, Redis (and a Redis Cluster)
//! and the MongoDB-wire server; none of them skips when a service is missing.
//!
//! - `pipeline`: the flow end to end, over memory and real services, one node and a
//!   Redis Cluster;
//! - `faults`: kill -9, poison, retries and dead letters, floods, SIGTERM;
//! - `restarts`: RabbitMQ, Redis and the MongoDB-wire server stop and come back
//!   (these stop the machine's shared services: run them alone, see `.config/nextest.toml`);
//! - `observe`: every role's `/metrics`, `Server-Timing`, plotq plotting itself;
//! - `otlp`: the OpenTelemetry Python SDK exporting spans and metrics, counted exactly;
//! - `caddy`: the Caddy fixture and `plotq tail` across rotation and a kill;
//! - `contract`: the OpenAPI document against the routes, and schemathesis;
//! - `fuzz`: random requests, every 202 ends once;
//! - `render`: render URLs, 304s, the bounded wait, signed links;
//! - `memory`: standalone's memory bound against its resident memory;
//! - `tidy`: the invariants of ARCHITECTURE.md that code can check.

mod caddy;
mod contract;
mod faults;
mod fuzz;
mod memory;
mod observe;
mod otlp;
mod otlp_rust;
mod pipeline;
mod render;
mod restarts;
mod support;
mod tidy;
