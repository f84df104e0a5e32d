//! Rendering settings (`WorkerSettings`: jobs at once, lookahead, render deadline,
//! attempts, where windows are read from, slow-job warnings) and what they become:
//! `plotq_worker::WorkerConfig`; and the distributed worker's `OutageSettings` (how long
//! a job waits for its dependencies), which the worker role adds with its breakers.

use super::cache::CacheSettings;
use super::store::{RetentionSettings, SourceSettings};
use super::values::{self, Validate, at_least, at_least_for};
use clap::Args;
use plotq_worker::WorkerConfig;
use std::time::Duration;

/// Rendering: worker, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rendering")]
pub struct WorkerSettings {
    /// Jobs one worker processes at once (= concurrent renders per worker; size its
    /// CPU from this).
    #[arg(long, env = "PLOTQ_PREFETCH", default_value_t = 2)]
    pub prefetch: u16,
    /// Jobs one worker holds beyond those it processes, so it can serve callers in turn
    /// rather than in arrival order (the broker's prefetch is PLOTQ_PREFETCH +
    /// PLOTQ_LOOKAHEAD); 0 takes jobs in arrival order.
    #[arg(long, env = "PLOTQ_LOOKAHEAD", default_value_t = 14)]
    pub lookahead: u16,
    /// Longest a single render may take.
    #[arg(long = "render-deadline-secs", env = "PLOTQ_RENDER_DEADLINE_SECS", default_value = "30",
          value_name = "DURATION", value_parser = values::secs())]
    pub render_deadline: Duration,
    /// Attempts before a transiently failing job is dead-lettered.
    #[arg(long, env = "PLOTQ_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    #[command(flatten)]
    pub sources: SourceSettings,
    /// A job's store read slower than this is logged as a warning.
    #[arg(long = "slow-query-ms", env = "PLOTQ_SLOW_QUERY_MS", default_value = "1000",
          value_name = "DURATION", value_parser = values::millis())]
    pub slow_query: Duration,
    /// A job's render (drawing plus encoding) slower than this is logged as a warning.
    #[arg(long = "slow-render-ms", env = "PLOTQ_SLOW_RENDER_MS", default_value = "2000",
          value_name = "DURATION", value_parser = values::millis())]
    pub slow_render: Duration,
}

impl Validate for WorkerSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least(self.prefetch, 1, "PLOTQ_PREFETCH")?;
        at_least_for(
            self.render_deadline,
            Duration::from_secs(1),
            "PLOTQ_RENDER_DEADLINE_SECS",
        )?;
        Ok(())
    }
}

impl WorkerSettings {
    /// A worker's configuration: its image and state lifetimes from `cache`, and windows
    /// read as `retention` allows.
    pub fn worker_config(
        &self,
        cache: &CacheSettings,
        retention: &RetentionSettings,
    ) -> WorkerConfig {
        WorkerConfig {
            prefetch: self.prefetch,
            lookahead: self.lookahead,
            png_ttl: cache.png_ttl,
            state_ttl: cache.state.state_ttl,
            render_deadline: self.render_deadline,
            max_attempts: self.max_attempts,
            sources: self.sources.source_policy(retention),
            slow_query: self.slow_query,
            slow_render: self.slow_render,
            ..WorkerConfig::default()
        }
    }
}

/// How long a job waits for its store or cache: `plotq worker` only (standalone's
/// in-memory ports never go down).
#[derive(Debug, Args)]
pub struct OutageSettings {
    /// How long a job waits for its store or cache to come back before it
    /// is dead-lettered as `dependency_unavailable` (`plotq dlq retry` replays it). Only
    /// for `plotq worker`: standalone's in-memory ports never go down.
    #[arg(long, env = "PLOTQ_OUTAGE_BUDGET", default_value = "2m", value_name = "DURATION",
          value_parser = values::with_unit().at_least(Duration::from_secs(1)),
          help_heading = "Rendering")]
    pub outage_budget: Duration,
}

impl Validate for OutageSettings {}
