//! The api's one test binary: the router driven in-process (`oneshot`) over in-memory
//! ports, behind the same edge as in production (`plotq_http::harden`), one module per
//! area. `helpers` has the one way to build the api under test and the one way to call
//! it; faults are injected with `plotq_ports::faulty::Faulty` rules on its ports.

mod access;
mod annotations;
mod caddy;
mod edge;
mod helpers;
mod ingest;
mod labels;
mod limits;
mod otlp;
mod otlp_metrics;
mod plots;
mod render;
mod stats;
