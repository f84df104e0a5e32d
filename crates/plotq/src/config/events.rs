//! Event streams and live refresh: `EventSettings` (streams and views per caller, watched
//! views, the refresh debounce) with what they become (`plotq_notifier::NotifierConfig`,
//! `RefreshConfig` and the streams' per-caller limits), `EventBusSettings` (the event
//! stream's replay history) and `SeriesSettings` (the remembered series list).

use super::cache::CacheSettings;
use super::values::{self, Validate, at_least};
use clap::Args;
use plotq_notifier::NotifierConfig;
use plotq_notifier::refresh::RefreshConfig;
use std::time::Duration;

/// Event streams and live refresh: notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct EventSettings {
    /// Event streams one caller may hold open.
    #[arg(long, env = "PLOTQ_SSE_CONNECTIONS_PER_CALLER", default_value_t = 32)]
    pub sse_connections_per_caller: usize,
    /// Distinct dashboard views one notifier keeps live at once.
    #[arg(long, env = "PLOTQ_MAX_WATCHED_VIEWS", default_value_t = 10_000)]
    pub max_watched_views: usize,
    /// Distinct dashboard views one caller may keep live at once on one notifier (over
    /// all its streams); more get `429 too_many_connections`.
    #[arg(long, env = "PLOTQ_VIEWS_PER_CALLER", default_value_t = 128)]
    pub views_per_caller: usize,
    /// Live refresh: at most one re-render of a watched view per this long.
    #[arg(long = "refresh-debounce-secs", env = "PLOTQ_REFRESH_DEBOUNCE_SECS", default_value = "3",
          value_name = "DURATION", value_parser = values::secs())]
    pub refresh_debounce: Duration,
}

impl Validate for EventSettings {
    fn validate(&self) -> anyhow::Result<()> {
        for (value, name) in [
            (
                self.sse_connections_per_caller,
                "PLOTQ_SSE_CONNECTIONS_PER_CALLER",
            ),
            (self.max_watched_views, "PLOTQ_MAX_WATCHED_VIEWS"),
            (self.views_per_caller, "PLOTQ_VIEWS_PER_CALLER"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

impl EventSettings {
    /// The notifier's hub.
    pub fn notifier_config(&self) -> NotifierConfig {
        NotifierConfig {
            max_watched_views: self.max_watched_views,
            ..NotifierConfig::default()
        }
    }

    /// The refresher of watched views, which re-renders them before their image expires
    /// from the cache.
    pub fn refresh_config(&self, cache: &CacheSettings) -> RefreshConfig {
        RefreshConfig {
            debounce: self.refresh_debounce,
            max_age: cache.png_ttl * 4 / 5,
            state_ttl: cache.state.state_ttl,
            ..RefreshConfig::default()
        }
    }

    /// The event streams' per-caller limits.
    pub fn limit(&self, limits: &mut plotq_http::LimitsConfig) {
        limits.sse_connections_per_caller = self.sse_connections_per_caller;
        limits.views_per_caller = self.views_per_caller;
    }
}

/// The event stream's replay history: worker, notifier (writers), standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct EventBusSettings {
    /// Events kept for SSE replay.
    #[arg(long, env = "PLOTQ_EVENT_HISTORY", default_value_t = 10_000)]
    pub event_history: usize,
}

/// The series list (service picker, live refresh): api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Events and live refresh")]
pub struct SeriesSettings {
    /// Most series (service, metric) remembered for the service list and live refresh;
    /// the least recently touched are forgotten first (entries also expire after 8 days).
    #[arg(long, env = "PLOTQ_MAX_SERIES", default_value_t = 10_000)]
    pub max_series: usize,
}

impl Validate for EventBusSettings {}
impl Validate for SeriesSettings {}
