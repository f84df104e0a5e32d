//! Cache lifetimes: `CacheSettings` (how long rendered images stay) and `StateSettings`
//! (how long job states stay readable). The configs that use them are built by the
//! groups of the libraries that cache (`api`, `worker`, `events`).

use super::values::{self, Validate, at_least_for};
use clap::Args;
use std::time::Duration;

/// How long job states stay readable: every role that writes them.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct StateSettings {
    /// How long a job's state stays readable.
    #[arg(long = "state-ttl-secs", env = "PLOTQ_STATE_TTL_SECS", default_value = "3600",
          value_name = "DURATION", value_parser = values::secs())]
    pub state_ttl: Duration,
}

/// Cache lifetimes of images and states: worker, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cache")]
pub struct CacheSettings {
    /// How long a rendered PNG stays in the cache (the notifier re-renders watched views
    /// before it expires).
    #[arg(long = "png-ttl-secs", env = "PLOTQ_PNG_TTL_SECS", default_value = "600",
          value_name = "DURATION", value_parser = values::secs())]
    pub png_ttl: Duration,
    #[command(flatten)]
    pub state: StateSettings,
}

impl Validate for CacheSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least_for(self.png_ttl, Duration::from_secs(1), "PLOTQ_PNG_TTL_SECS")?;
        anyhow::ensure!(
            self.state.state_ttl >= self.png_ttl,
            "PLOTQ_STATE_TTL_SECS must be at least PLOTQ_PNG_TTL_SECS"
        );
        Ok(())
    }
}

impl Validate for StateSettings {}
