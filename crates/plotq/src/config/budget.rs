//! What rendering costs a caller (`PlotBudgetSettings`: renders per second and burst),
//! and `limits_config`, the per-caller limits of an HTTP role put together from the
//! groups it reads (each group sets its own part).

use super::api::ApiSettings;
use super::events::EventSettings;
use super::values::Validate;
use super::values::at_least;
use clap::Args;

/// What rendering costs a caller: api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Plot budget")]
pub struct PlotBudgetSettings {
    /// Renders per second one caller (token, or client address) may cause: plot
    /// requests that queue a job, and dashboard views opened before they were ever
    /// rendered. Answers from a shared or cached render cost nothing.
    #[arg(long, env = "PLOTQ_PLOT_REQUESTS_PER_SEC", default_value_t = 50)]
    pub plot_requests_per_sec: u32,
    /// Renders one caller may cause in a burst.
    #[arg(long, env = "PLOTQ_PLOT_BURST", default_value_t = 100)]
    pub plot_burst: u32,
}

impl Validate for PlotBudgetSettings {
    fn validate(&self) -> anyhow::Result<()> {
        for (value, name) in [
            (self.plot_requests_per_sec, "PLOTQ_PLOT_REQUESTS_PER_SEC"),
            (self.plot_burst, "PLOTQ_PLOT_BURST"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

impl PlotBudgetSettings {
    /// The plot budget's per-caller limits.
    pub fn limit(&self, limits: &mut plotq_http::LimitsConfig) {
        limits.plot_requests_per_sec = self.plot_requests_per_sec;
        limits.plot_burst = self.plot_burst;
    }
}

/// The per-caller limits of an HTTP role: the ingest and plot limits where it serves the
/// API, the stream limit where it serves events (the others keep their defaults, unused).
pub fn limits_config(
    budget: Option<&PlotBudgetSettings>,
    api: Option<&ApiSettings>,
    events: Option<&EventSettings>,
) -> plotq_http::LimitsConfig {
    let mut config = plotq_http::LimitsConfig::default();
    if let Some(budget) = budget {
        budget.limit(&mut config);
    }
    if let Some(api) = api {
        api.limit(&mut config);
    }
    if let Some(events) = events {
        events.limit(&mut config);
    }
    config
}
