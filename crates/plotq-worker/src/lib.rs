//! The rendering worker: consumes plot jobs and turns each into a cached PNG and a
//! `plot.ready` (or `plot.failed`) event.
//!
//! Order of effects for one job, which is what makes a crash at any point safe:
//! state `rendering` → query samples → render (on a render thread, under a deadline) →
//! PNG into the cache with a TTL → state `done` → event published → **ack**. A job is
//! acked only after all of that succeeded; a crash before the ack means redelivery, and
//! re-running a job is harmless (same key, same data window, same bytes).
//!
//! Failures are sorted once, in `process`: permanent ones (no data, invalid spec, a
//! render past its deadline) end the job `failed` at once; transient ones (a dependency
//! down) are retried through the queue's backoff tiers, and after `max_attempts` the job
//! ends `failed` with the last error and its message goes to the dead-letter queue.
//! Messages `JobMessage::decode` refuses (poison) go straight to the dead-letter queue.
//! A panic while processing a delivery is caught and logged; the job ends `failed`
//! ("internal error while rendering: …") and its delivery is still settled exactly once.
//!
//! While a dependency a job needs (the store, the cache) is known to be down — its
//! `Breaker` is open — the job is held, not failed: it waits for the dependency and runs
//! again (its attempts unspent), so a short outage ends with every job done, announced
//! once. Past `outage_budget` it is dead-lettered as `dependency_unavailable`, for
//! `plotq dlq retry` once the dependency is back.
//!
//! **Fair turns.** A worker holds up to `prefetch + lookahead` deliveries and processes
//! `prefetch` at once, taking the next from the held jobs' lanes in turn
//! (`wire::Lane`: one per tenant, one for the refresher's view re-renders): a tenant
//! with a backlog of its full share of the queue delays another tenant's job by at most
//! the renders already running, not by its backlog. While several lanes are active
//! here, no lane holds every slot (each runs at most `prefetch - 1` jobs at once), so a
//! job of another lane starts at once on the slot left; alone, a lane uses them all.
//! When a job ends (done, failed or
//! dead-lettered, not when it is retried later) its place in its lane's in-flight count
//! is given back (`PlotCache::end_job`). On shutdown or a lost connection, held jobs
//! not yet started are given back to the queue at once.
//!
//! Renders run on the worker's own render threads (`RenderSlots`: `prefetch` of them,
//! started with the worker), never on the async runtime's, and cannot be cancelled: a
//! render past its deadline fails its job but its thread runs on. Each worker therefore
//! has `prefetch` render permits, each held by a render until it really returns, so a
//! worker never runs more than `prefetch` renders at once; a job that finds no free
//! permit within its deadline fails with a message saying so.
//!
//! Observability: every job runs inside one `job` span (`id`, `kind`), so each of its
//! log lines carries its id; a query slower than `slow_query` or a render (drawing plus
//! encoding) slower than `slow_render` is a WARN line. Each done job records where its
//! time went (`StageTimings`: queue wait, query, render, encode, store, total) in its
//! state, its `plot.ready` event, one "plot ready" line (INFO for API jobs, DEBUG for
//! dashboard refreshes, which would otherwise flood the log) and the metrics below,
//! written through the `metrics` facade (the binary installs the Prometheus recorder):
//!
//! - `plotq_jobs_total{kind, outcome}`: outcome `done`, `failed`, `retried`,
//!   `dead_lettered` (`kind` is the plot kind, `unknown` for an undecodable message);
//! - `plotq_job_stage_seconds{stage}`: histogram of the stages of done jobs;
//! - `plotq_job_retries_total`; `plotq_job_dead_letters_total{reason}` (`poison`,
//!   `exhausted`, `dependency_unavailable`, `unrecordable`, `settle_panicked`);
//! - `plotq_worker_jobs_held`: jobs held while a dependency is down;
//! - `plotq_store_documents_read_total`: stored documents (chunks, rollups) read.
//!
//! The window is read by `plotq_ports::window` (raw samples or rollups, by
//! `SourcePolicy`, with the statistics), the same path `GET /api/v1/stats` takes.
//!
//! This crate knows ports, not technologies.
//!
//! Modules, in the order a job meets them: `run` (the consuming loop) holds deliveries
//! in `lanes` and hands each to `process` (hold, classify, settle), which runs an
//! `attempt` (state, window, render under `slots`, store, announce) and ends the
//! delivery through `settle`; `config` is what a worker is given, `timing` and
//! `telemetry` measure and record, `panic` catches what would otherwise be lost.

mod attempt;
mod config;
mod lanes;
mod panic;
mod process;
mod run;
mod settle;
mod slots;
mod telemetry;
mod timing;

pub use config::{RenderTimes, Renderer, WorkerConfig, WorkerPorts};
pub use plotq_ports::window::SourcePolicy;
pub use process::process;
pub use run::run_until_stopped;
pub use slots::RenderSlots;
