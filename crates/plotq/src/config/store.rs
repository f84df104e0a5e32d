//! Where samples are kept and read from: `MongoSettings` (api, worker), the in-memory
//! store's bounds (`MemoryStoreSettings`, standalone), `RetentionSettings` (both) and
//! `SourceSettings` (raw samples or rollups, for the workers and `GET /api/v1/stats`),
//! with what they become: `MongoConfig`, `MemoryStoreConfig` and `SourcePolicy`.
//! Connecting is the roles'.

use super::deps::DependencySettings;
use super::values::{self, Validate, at_least};
use clap::Args;
use plotq_mongo::MongoConfig;
use plotq_ports::memory::MemoryStoreConfig;
use plotq_worker::SourcePolicy;
use std::time::Duration;

/// At least a second: what the retention and source windows have always required.
const SECOND: Duration = Duration::from_secs(1);

/// MongoDB: api, worker.
#[derive(Debug, Args)]
#[command(next_help_heading = "MongoDB")]
pub struct MongoSettings {
    /// MongoDB URL (credentials included; never logged).
    #[arg(
        long,
        env = "PLOTQ_MONGODB_URL",
        default_value = "mongodb://127.0.0.1:27017",
        hide_env_values = true
    )]
    pub mongodb_url: String,
    /// Database name (prefixed with `<namespace>_` when a namespace is set).
    #[arg(long, env = "PLOTQ_MONGODB_DB", default_value = "plotq")]
    pub mongodb_db: String,
    #[command(flatten)]
    pub retention: RetentionSettings,
}

impl MongoSettings {
    /// The database name, scoped by the namespace.
    pub fn database(&self, deps: &DependencySettings) -> String {
        if deps.namespace.is_empty() {
            self.mongodb_db.clone()
        } else {
            format!("{}_{}", deps.namespace, self.mongodb_db)
        }
    }

    /// The store's configuration, with a new MongoDB breaker.
    pub fn mongo_config(&self, deps: &DependencySettings) -> MongoConfig {
        MongoConfig {
            url: self.mongodb_url.clone(),
            database: self.database(deps),
            timeout: deps.dependency_timeout(),
            raw_retention: self.retention.raw_retention,
            rollup_retention: self.retention.rollup_retention,
            breaker: deps.breaker("mongodb"),
        }
    }
}

/// The in-memory store's bounds: standalone.
#[derive(Debug, Args)]
pub struct MemoryStoreSettings {
    /// Bytes of memory the in-memory store may hold, counted as they are allocated
    /// (~2–3 a sample of values with few decimals in a long series, ~10 of others, ~1 KiB a new series); past it, ingest is refused
    /// with `507 store_full` (nothing is dropped to make room).
    #[arg(long, env = "PLOTQ_MEMORY_STORE_MAX_BYTES", default_value_t = 2 << 30)]
    pub memory_store_max_bytes: u64,
    /// Series (service, metric) the in-memory store may hold; a batch adding more is
    /// refused with `507 store_full`.
    #[arg(
        long,
        env = "PLOTQ_MEMORY_STORE_MAX_SERIES",
        default_value_t = 1_000_000
    )]
    pub memory_store_max_series: usize,
}

impl Validate for MemoryStoreSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least(
            self.memory_store_max_series,
            1,
            "PLOTQ_MEMORY_STORE_MAX_SERIES",
        )
    }
}

impl MemoryStoreSettings {
    /// The store's configuration, keeping samples as `retention` says.
    pub fn memory_store_config(&self, retention: &RetentionSettings) -> MemoryStoreConfig {
        MemoryStoreConfig {
            retention: retention.raw_retention,
            rollup_retention: retention.rollup_retention,
            max_bytes: self.memory_store_max_bytes,
            max_series: self.memory_store_max_series,
        }
    }
}

/// How long samples are kept: the MongoDB store (api, worker) and standalone's store.
#[derive(Debug, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionSettings {
    /// How long raw samples are kept; older ones are deleted (a TTL index
    /// in MongoDB, changed in place when this changes).
    #[arg(long, env = "PLOTQ_RAW_RETENTION", default_value = "48h", value_name = "DURATION",
          value_parser = values::with_unit().at_least(SECOND))]
    pub raw_retention: Duration,
    /// How long the minute and hour rollups are kept; plots of windows
    /// past the raw retention are drawn from them (and no window is longer than 90d).
    #[arg(long, env = "PLOTQ_ROLLUP_RETENTION", default_value = "90d", value_name = "DURATION",
          value_parser = values::with_unit().at_least(SECOND))]
    pub rollup_retention: Duration,
}

/// What a window is read from (raw samples or rollups): the workers, and the api for
/// `GET /api/v1/stats`, which must read as the workers do.
#[derive(Debug, Args)]
pub struct SourceSettings {
    /// Windows longer than this are drawn from one-minute rollups (so are
    /// windows reaching past the raw retention).
    #[arg(long, env = "PLOTQ_ROLLUP_AFTER", default_value = "3h", value_name = "DURATION",
          value_parser = values::with_unit().at_least(SECOND))]
    pub rollup_after: Duration,
    /// Windows longer than this are drawn from hour rollups rather than
    /// minute ones (one document an hour: a 90-day window reads ~2,160). At least 60h:
    /// past it every time plot's buckets are whole hours.
    #[arg(long, env = "PLOTQ_HOURLY_AFTER", default_value = "72h", value_name = "DURATION",
          value_parser = values::with_unit().at_least(Duration::from_secs(60 * 3600)))]
    pub hourly_after: Duration,
    /// Windows holding more samples than this (all services together) are drawn from
    /// rollups.
    #[arg(long, env = "PLOTQ_RAW_MAX_SAMPLES", default_value_t = 5_000_000)]
    pub raw_max_samples: u64,
}

impl SourceSettings {
    /// Raw samples or rollups: the same policy for the workers and `GET /api/v1/stats`.
    pub fn source_policy(&self, retention: &RetentionSettings) -> SourcePolicy {
        SourcePolicy {
            rollup_after: self.rollup_after,
            hourly_after: self.hourly_after,
            raw_retention: retention.raw_retention,
            rollup_retention: retention.rollup_retention,
            raw_max_samples: self.raw_max_samples,
            ..SourcePolicy::default()
        }
    }
}

impl Validate for MongoSettings {}
impl Validate for RetentionSettings {}
impl Validate for SourceSettings {}
