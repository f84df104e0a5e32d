//! plotq as a library: every role is an [`app::App`] (`App::api|worker|notifier|standalone`
//! binds and connects, `run_until_stopped` serves), so the binary only parses settings
//! and the tests start the real roles in process.

pub mod app;
pub mod bench;
pub mod bench_fairness;
pub mod bench_store;
pub mod config;
pub mod demo;
pub mod generator;
pub mod loadgen;
pub mod shutdown;
pub mod tail;

pub use app::{App, openapi_document, run};
