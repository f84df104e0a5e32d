//! What the commands besides the roles do, one file (or folder) each: `loadgen`
//! (generated samples to an api), `tail` (a Caddy access log to an api), `bench`
//! (render, store and fairness benchmarks), `dlq` (the dead-letter queue), `token` (new
//! API tokens); and `generator`, the samples `loadgen`, `bench store` and the standalone
//! demo share. Their arguments are `crate::config::tools` and `crate::config::tail`. No
//! tool serves HTTP.

pub mod bench;
pub mod dlq;
pub mod generator;
pub mod loadgen;
pub mod tail;
pub mod token;
