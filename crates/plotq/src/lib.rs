//! plotq as a library: every role is an [`App`] (`App::api|worker|notifier|standalone`
//! binds and connects, `run_until_stopped` serves), so the binary only parses settings
//! and the tests start the real roles in process.
//!
//! - `config`: the command line and environment (every command's arguments), one
//!   settings group a file, each turning itself into its library's configuration.
//! - `roles`: the `App` of each role and the wiring they share.
//! - `tools`: the other commands (`loadgen`, `tail`, `bench`, `dlq`, `token`).
//! - `run`: how a command runs (logging, runtime, until a signal); `shutdown`: the signal.

pub mod config;
pub mod roles;
pub mod run;
pub mod shutdown;
pub mod tools;

pub use roles::{App, openapi_document};
pub use run::run;

/// The roles under the path they have always had (`plotq::app::App`, `amqp_config`, …).
pub mod app {
    pub use crate::config::queue::amqp_config;
    pub use crate::config::redis::redis_config;
    pub use crate::roles::{App, openapi_document};
    pub use crate::run::run;
}

// The tools under the paths they have always had (`plotq::loadgen::run`, …).
pub use tools::bench::fairness as bench_fairness;
pub use tools::bench::store as bench_store;
pub use tools::{bench, generator, loadgen, tail};
