//! Logging settings, read by every role that runs (`PLOTQ_LOG_FORMAT`). Setting up the
//! subscriber is `crate::run`'s.

use super::values::Validate;
use clap::Args;

/// Logging: every role that runs.
#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogSettings {
    /// `text` or `json` logs (levels via RUST_LOG).
    #[arg(long, env = "PLOTQ_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Validate for LogSettings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.log_format == "text" || self.log_format == "json",
            "PLOTQ_LOG_FORMAT must be text or json"
        );
        Ok(())
    }
}
