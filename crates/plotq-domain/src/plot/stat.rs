//! `Stat`, a statistic of one time bucket's samples (a correlation's `stat` and
//! `x_stat`), and the bounds on a correlation's buckets. The numbers themselves are
//! computed in `crate::correlation`.

use serde::{Deserialize, Serialize};

/// Most buckets (points) one correlation plot has: a week of minutes.
pub const MAX_POINTS: u64 = 10_080;
/// Fewest buckets a correlation window must hold.
pub const MIN_POINTS: u64 = 3;

/// A statistic of one time bucket's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Samples in the bucket.
    Count,
    /// Samples per second over the bucket.
    Rate,
    Mean,
    Min,
    Max,
    P50,
    P90,
    P95,
    P99,
    /// Errors (as `series::is_error` counts them) as a percentage of the bucket's samples.
    ErrorRate,
}

impl Stat {
    pub const ALL: &'static [Stat] = &[
        Stat::Count,
        Stat::Rate,
        Stat::Mean,
        Stat::Min,
        Stat::Max,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::ErrorRate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Count => "count",
            Stat::Rate => "rate",
            Stat::Mean => "mean",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::ErrorRate => "error_rate",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("must be one of {}", known.join(", "))
            })
    }

    /// What an axis of this statistic of `metric` shows, with its unit where the
    /// statistic sets one: `p95 of latency_ms`, `rate of latency_ms (/s)`.
    pub fn describe(self, metric: &str) -> String {
        match self {
            Stat::Rate => format!("rate of {metric} (/s)"),
            Stat::ErrorRate => format!("error rate of {metric} (%)"),
            Stat::Count => format!("count of {metric}"),
            other => format!("{} of {metric}", other.as_str()),
        }
    }

    /// The quantile of a percentile statistic.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::P50 => Some(0.50),
            Stat::P90 => Some(0.90),
            Stat::P95 => Some(0.95),
            Stat::P99 => Some(0.99),
            _ => None,
        }
    }
}
