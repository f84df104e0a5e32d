//! What every plotq HTTP role (api, notifier, standalone) shares: the one problem type
//! and its codes, authentication (bearer tokens with scopes, signed read tickets for
//! browsers), rate and connection limits, CORS, content-type checks, health routes, and how a role
//! observes itself (Prometheus, request logs and statistics, `Server-Timing`).
//!
//! It knows HTTP and the ports' error type, never a client library or a job's insides.

pub mod auth;
pub mod edge;
mod health;
pub mod label_sets;
pub mod limits;
pub mod observe;
mod openapi;
mod probe;
mod problem;
pub mod server;
pub mod status;

pub use auth::{Auth, AuthConfig, Caller, Principal, Scope};
pub use edge::{Edge, EdgeConfig, harden, read_json, read_json_bytes};
pub use health::{HealthApiDoc, readiness_router};
pub use limits::{Limits, LimitsConfig, ViewsGuard, WaiterGuard};
pub use observe::{ObserveConfig, Observer, ProcessInfo, RequestSnapshot, SelfSamples};
pub use openapi::{
    AuthProblems, FieldErrorDoc, IdempotencyInUse, JobReadProblems, JsonBodyProblems, KindDoc,
    ProblemDoc, RateLimited, SecuritySchemes, SeriesStatsDoc, SourceDoc, StatDoc, StoreFull,
    TimingsDoc, Unavailable,
};
pub use probe::Probe;
pub use problem::{Problem, ProblemCode, ProblemNote};
pub use server::{HttpServer, ServerConfig};
pub use status::health_router;
