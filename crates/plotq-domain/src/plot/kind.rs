//! The kinds of plot plotq draws (`PlotKind`, with the metric each reads by default),
//! and the two plain choices of every plot: `Theme` and `ImageFormat`.

use serde::{Deserialize, Serialize};

pub const DEFAULT_METRIC: &str = "latency_ms";
pub const DEFAULT_STATUS_METRIC: &str = "status_code";

/// The kinds of plot plotq can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotKind {
    /// Latency distribution with mean/p95/p99 markers (the Python prototype's plot).
    Histogram,
    /// p50/p95/p99 (and optionally max) per time bucket.
    LatencyTimeseries,
    /// Samples (requests) per second per time bucket.
    Throughput,
    /// Count of each HTTP status code, coloured by class.
    StatusCodes,
    /// Share of errors (5xx, or non-zero flags) per time bucket, in percent.
    ErrorRate,
    /// Latency distribution over time (log-spaced latency buckets) with p99 overlaid.
    Heatmap,
    /// Cumulative distribution with p50/p90/p99/p99.9 marked.
    Cdf,
    /// One statistic of a metric against one of another (or the same) metric, a point per
    /// time bucket, with a fitted line and Pearson's and Spearman's coefficients.
    Correlation,
}

impl PlotKind {
    pub const ALL: &'static [PlotKind] = &[
        PlotKind::Histogram,
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
        PlotKind::StatusCodes,
        PlotKind::ErrorRate,
        PlotKind::Heatmap,
        PlotKind::Cdf,
        PlotKind::Correlation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlotKind::Histogram => "histogram",
            PlotKind::LatencyTimeseries => "latency_timeseries",
            PlotKind::Throughput => "throughput",
            PlotKind::StatusCodes => "status_codes",
            PlotKind::ErrorRate => "error_rate",
            PlotKind::Heatmap => "heatmap",
            PlotKind::Cdf => "cdf",
            PlotKind::Correlation => "correlation",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown plot kind {}; known kinds: {}",
                    crate::error::excerpt(raw),
                    known.join(", ")
                )
            })
    }

    /// Kinds that can draw several services (or one service's label values) side by
    /// side.
    pub fn compares(self) -> bool {
        matches!(
            self,
            PlotKind::Histogram
                | PlotKind::LatencyTimeseries
                | PlotKind::Throughput
                | PlotKind::ErrorRate
                | PlotKind::StatusCodes
                | PlotKind::Heatmap
                | PlotKind::Cdf
                | PlotKind::Correlation
        )
    }

    /// Kinds that can draw one series per value of a label (`group_by`): those that
    /// compare, but correlation.
    pub fn groups(self) -> bool {
        self.compares() && self != PlotKind::Correlation
    }

    /// Kinds that need each sample's timestamp, not only its value.
    pub fn needs_timestamps(self) -> bool {
        matches!(
            self,
            PlotKind::LatencyTimeseries
                | PlotKind::Throughput
                | PlotKind::ErrorRate
                | PlotKind::Heatmap
                | PlotKind::Correlation
        )
    }

    /// Kinds whose x axis is time (and whose image reports where it lies).
    pub fn has_time_axis(self) -> bool {
        self.needs_timestamps() && self != PlotKind::Correlation
    }

    pub fn default_metric(self) -> &'static str {
        match self {
            PlotKind::StatusCodes | PlotKind::ErrorRate => DEFAULT_STATUS_METRIC,
            _ => DEFAULT_METRIC,
        }
    }
}

/// Light or dark colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

/// The encoding of the rendered image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    #[default]
    Png,
    Svg,
}

impl ImageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Svg => "image/svg+xml",
        }
    }
}
