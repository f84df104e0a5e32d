//! `TimeRange`: which stretch of time a plot covers — the window ending when it was
//! requested, or absolute timestamps — and its label.

use crate::window::Window;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which stretch of time a plot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeRange {
    /// The window ending when the plot was requested.
    Last(Window),
    /// Absolute `[from, until]` (inclusive), epoch milliseconds; in a validated spec both
    /// lie in the timestamp range and span 10s to 90d.
    Between { from_ms: i64, until_ms: i64 },
}

impl TimeRange {
    /// `[from, until]` (inclusive) for a request made at `requested_ms`. For `Last`, `from`
    /// is up to 7 days before `requested_ms` (before 1970 only for requests in its first
    /// week). Saturating: no input overflows, validated or not.
    pub fn resolve(self, requested_ms: i64) -> (i64, i64) {
        match self {
            TimeRange::Last(w) => (requested_ms.saturating_sub(w.millis()), requested_ms),
            TimeRange::Between { from_ms, until_ms } => (from_ms, until_ms),
        }
    }

    /// `until - from`; 10s to 90d for a validated spec (saturating otherwise).
    pub fn span_ms(self) -> i64 {
        match self {
            TimeRange::Last(w) => w.millis(),
            TimeRange::Between { from_ms, until_ms } => until_ms.saturating_sub(from_ms),
        }
    }

    /// `last 10m` or `2026-11-22 10:00 – 2026-11-22 11:00 UTC`.
    pub fn label(self) -> String {
        match self {
            TimeRange::Last(w) => format!("last {w}"),
            TimeRange::Between { from_ms, until_ms } => {
                let fmt = |ms: i64| {
                    DateTime::<Utc>::from_timestamp_millis(ms)
                        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default()
                };
                format!("{} – {} UTC", fmt(from_ms), fmt(until_ms))
            }
        }
    }
}
