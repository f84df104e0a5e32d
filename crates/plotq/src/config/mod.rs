//! Command line and environment: one typed struct per role, every setting also an env var.
//!
//! Settings come in small groups, one file each (`http`, `auth`, `api`, `budget`,
//! `events`, `worker`, `cache`, `queue`, `store`, `redis`, `deps`, `log`), each
//! flattened only into the roles that read it (`cli`; the other commands' arguments
//! are `tools` and `tail`), so `plotq <role> --help` lists exactly what that role
//! uses; and each group turns itself into its library's configuration (`WorkerSettings::worker_config`, `ApiSettings::api_config`,
//! `HttpSettings::edge_config`, …). Plain `plotq` is standalone: the standalone
//! settings are flattened at the top level too, so they (and their env vars) apply
//! without a subcommand. Booleans accept 1/0, true/false, yes/no, on/off; every duration
//! takes one syntax (`values`).
//!
//! Validation happens here, at start, with messages naming the setting; the listen
//! address is resolved when an HTTP role binds (`HttpSettings::addr`). Secrets inside
//! URLs are never logged (`redact`). Nothing here runs a command (`crate::run`,
//! `crate::roles`, `crate::tools` do), and nothing here uses them. This module only
//! re-exports: the files below use each other directly, never through it.

pub mod api;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod deps;
pub mod events;
pub mod http;
pub mod log;
pub mod queue;
pub mod redis;
pub mod store;
pub mod tail;
pub mod tools;
pub mod values;
pub mod worker;

#[cfg(test)]
mod tests;

pub use api::ApiSettings;
pub use auth::{AuthSettings, TokensReload, read_token_entries};
pub use budget::{PlotBudgetSettings, limits_config};
pub use cache::{CacheSettings, StateSettings};
pub use cli::{
    ApiArgs, Cli, Command, NotifierArgs, StandaloneArgs, StandaloneSettings, WorkerArgs,
};
pub use deps::{DependencySettings, redact};
pub use events::{EventBusSettings, EventSettings, SeriesSettings};
pub use http::HttpSettings;
pub use log::LogSettings;
pub use queue::{BrokerAccess, BrokerSettings, QueueSettings, amqp_config};
pub use redis::{RedisSettings, redis_config};
pub use store::{MemoryStoreSettings, MongoSettings, RetentionSettings, SourceSettings};
pub use tail::TailArgs;
pub use tools::{
    BenchCommand, BenchFairnessArgs, BenchRenderArgs, BenchStoreArgs, DlqArgs, DlqCommand,
    LoadgenArgs, TokenCommand,
};
pub use values::{DurationParser, Validate};
pub use worker::{OutageSettings, WorkerSettings};
