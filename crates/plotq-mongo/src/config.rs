//! `MongoConfig`: where the database is, the bound on every call, how long raw samples
//! and rollups are kept, and the process's MongoDB breaker. Settings only.

use plotq_ports::Breaker;
use std::time::Duration;

/// Where to find the database, and how long raw samples are kept.
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub url: String,
    pub database: String,
    /// Bound on server selection and connecting.
    pub timeout: Duration,
    /// Chunks expire this long after their last sample (TTL index).
    pub raw_retention: Duration,
    /// Rollups expire this long after their minute (TTL index).
    pub rollup_retention: Duration,
    /// What this process believes about MongoDB (shared with the process's other users).
    pub breaker: Breaker,
}
