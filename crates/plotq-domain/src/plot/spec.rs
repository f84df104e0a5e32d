//! `PlotSpec`, a validated request for one plot: its fields, bounds and defaults, its
//! serialised shape before validation (`RawPlotSpec`), and the title drawn on it.
//!
//! It holds no rules: parsing, deserialising and `validate` are in `rules.rs`.

use super::kind::{ImageFormat, PlotKind, Theme};
use super::range::TimeRange;
use super::stat::Stat;
use super::threshold::Threshold;
use crate::labels::{LabelName, Labels};
use crate::names::{MetricName, ServiceName};
use crate::window::Window;
use serde::{Deserialize, Serialize};

pub const WIDTH_RANGE: (u32, u32) = (200, 4000);
pub const HEIGHT_RANGE: (u32, u32) = (150, 4000);
pub const BINS_RANGE: (u32, u32) = (1, 1000);
pub const DEFAULT_WIDTH: u32 = 1000;
pub const DEFAULT_HEIGHT: u32 = 600;
pub const DEFAULT_BINS: u32 = 50;
/// Device pixels per layout pixel (`devicePixelRatio`, rounded up by the client).
pub const SCALE_RANGE: (u32, u32) = (1, 4);
/// Smallest layout size (image size ÷ `scale`) a plot may have, in layout pixels.
pub const MIN_LAYOUT: (u32, u32) = (200, 150);
/// Most services one comparison plot may draw.
pub const MAX_SERVICES: usize = 8;
pub const MAX_TITLE_CHARS: usize = 120;

/// A validated request for one plot. Deserialising validates (see the `plot` module
/// docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PlotSpec {
    pub kind: PlotKind,
    /// One service, or several for a comparison (`services`); never empty.
    pub services: Vec<ServiceName>,
    pub metric: MetricName,
    pub range: TimeRange,
    pub width: u32,
    pub height: u32,
    pub bins: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub theme: Theme,
    pub format: ImageFormat,
    /// Histogram and CDF: logarithmic latency axis.
    pub log_x: bool,
    /// Latency over time: also draw the per-bucket maximum.
    pub show_max: bool,
    /// Device pixels per layout pixel (1 to 4); see the `plot` module docs. Not serialised
    /// when 1, so specs (and their cache keys) read as before it existed.
    #[serde(skip_serializing_if = "is_one")]
    pub scale: u32,
    /// Only the series whose labels include every pair (exact match); empty: every
    /// series of the metric. Not serialised when empty (cache keys read as before).
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// One line or curve per value of this label (the most frequent values, the rest as
    /// one "other"), in the kinds that compare services, for one service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<LabelName>,
    /// What a correlation plots against what: present for that kind only (its members
    /// are the spec's, flattened; absent otherwise, so other specs read as before).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Correlation>,
    /// Values marked on the value axis with their labels (at most 8). Not serialised
    /// when empty (cache keys read as before).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

/// A correlation plot's axes: y is `stat` of the spec's metric (of its service, with its
/// label filter), x is `x_stat` of `x_metric` of `x_service` (the spec's service when
/// absent; the label filter applies to x too when it is the same service), one point per
/// `bucket` of time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Correlation {
    pub stat: Stat,
    pub x_metric: MetricName,
    pub x_stat: Stat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_service: Option<ServiceName>,
    pub bucket: Window,
}

/// A correlation's defaults: y is p95, x the rate of the same metric, by the minute
/// ("does latency climb with load?").
pub const DEFAULT_STAT: Stat = Stat::P95;
pub const DEFAULT_X_STAT: Stat = Stat::Rate;
pub const DEFAULT_BUCKET_SECS: u64 = 60;

impl Correlation {
    /// The defaults for a correlation of `metric`.
    pub fn of(metric: &MetricName) -> Self {
        Self {
            stat: DEFAULT_STAT,
            x_metric: metric.clone(),
            x_stat: DEFAULT_X_STAT,
            x_service: None,
            bucket: Window::from_secs(DEFAULT_BUCKET_SECS).expect("a minute is a valid bucket"),
        }
    }
}

/// `PlotSpec`'s serialised shape, before validation.
#[derive(Deserialize)]
pub(crate) struct RawPlotSpec {
    pub(super) kind: String,
    pub(super) services: Vec<String>,
    pub(super) metric: String,
    pub(super) range: TimeRange,
    pub(super) width: u64,
    pub(super) height: u64,
    pub(super) bins: u64,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) theme: Theme,
    #[serde(default)]
    pub(super) format: ImageFormat,
    #[serde(default)]
    pub(super) log_x: bool,
    #[serde(default)]
    pub(super) show_max: bool,
    #[serde(default = "one")]
    pub(super) scale: u64,
    #[serde(default)]
    pub(super) labels: Labels,
    #[serde(default)]
    pub(super) group_by: Option<String>,
    #[serde(default)]
    pub(super) stat: Option<String>,
    #[serde(default)]
    pub(super) x_metric: Option<String>,
    #[serde(default)]
    pub(super) x_stat: Option<String>,
    #[serde(default)]
    pub(super) x_service: Option<String>,
    #[serde(default)]
    pub(super) bucket: Option<String>,
    #[serde(default)]
    pub(super) thresholds: Vec<Threshold>,
}

fn one() -> u64 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

impl PlotSpec {
    /// A spec with every optional field at its default.
    pub fn new(kind: PlotKind, service: ServiceName) -> Self {
        let metric =
            MetricName::parse(kind.default_metric()).expect("default metric name is valid");
        Self {
            kind,
            services: vec![service],
            correlation: (kind == PlotKind::Correlation).then(|| Correlation::of(&metric)),
            thresholds: Vec::new(),
            metric,
            range: TimeRange::Last(Window::default()),
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            bins: DEFAULT_BINS,
            title: None,
            theme: Theme::Light,
            format: ImageFormat::Png,
            log_x: false,
            show_max: false,
            scale: 1,
            labels: Labels::none(),
            group_by: None,
        }
    }

    /// The layout size in layout pixels: the image size divided by `scale`.
    pub fn layout_size(&self) -> (u32, u32) {
        let s = self.scale.max(1);
        (self.width / s, self.height / s)
    }

    /// The first (for single-service plots, the only) service.
    pub fn service(&self) -> &ServiceName {
        &self.services[0]
    }

    /// The title drawn on the plot: the client's override, or e.g.
    /// `Latency Distribution for "checkout" (Last 10m)`.
    pub fn title(&self) -> String {
        if let Some(t) = &self.title {
            return t.clone();
        }
        // The value kinds name their metric when it is not the latency they default to.
        let metric = self.metric.as_str();
        let latency = metric == self.kind.default_metric();
        let what = match self.kind {
            PlotKind::Histogram if latency => "Latency Distribution".to_owned(),
            PlotKind::Histogram => format!("Distribution of {metric}"),
            PlotKind::LatencyTimeseries if latency => "Latency over Time".to_owned(),
            PlotKind::LatencyTimeseries => format!("{metric} over Time"),
            PlotKind::Throughput => "Throughput".to_owned(),
            PlotKind::StatusCodes => "Status Codes".to_owned(),
            PlotKind::ErrorRate => "Error Rate".to_owned(),
            PlotKind::Heatmap if latency => "Latency Heatmap".to_owned(),
            PlotKind::Heatmap => format!("{metric} Heatmap"),
            PlotKind::Cdf if latency => "Latency CDF".to_owned(),
            PlotKind::Cdf => format!("{metric} CDF"),
            PlotKind::Correlation => match &self.correlation {
                Some(c) => {
                    let x = c.x_stat.describe(c.x_metric.as_str());
                    let x = match &c.x_service {
                        Some(service) => format!("{x} of \"{service}\""),
                        None => x,
                    };
                    format!("{} vs {x}", c.stat.describe(metric))
                }
                None => "Correlation".to_owned(),
            },
        };
        let joiner = match self.kind {
            PlotKind::Throughput | PlotKind::StatusCodes | PlotKind::ErrorRate => "of",
            _ => "for",
        };
        let who = if self.services.len() == 1 {
            format!("{joiner} \"{}\"", self.services[0])
        } else {
            let names: Vec<&str> = self.services.iter().map(|s| s.as_str()).collect();
            format!("{joiner} {}", names.join(" vs "))
        };
        let mut range = self.range.label();
        if let Some(first) = range.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let mut who = who;
        if !self.labels.is_empty() {
            who.push_str(&format!(" [{}]", self.labels.describe()));
        }
        if let Some(group) = &self.group_by {
            who.push_str(&format!(" by {group}"));
        }
        format!("{what} {who} ({range})")
    }
}
