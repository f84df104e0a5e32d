//! Plot specs: what a client may ask to have drawn, with defaults and bounds.
//!
//! `PlotSpec::parse` turns a client's JSON object into a validated spec, naming every
//! bad field. Everything downstream (queue message, renderer, cache key) takes the
//! parsed spec and never re-validates.

use crate::error::{FieldError, FieldErrors};
use crate::names::{MetricName, ServiceName};
use crate::sample::parse_timestamp;
use crate::window::{MAX_WINDOW_SECS, MIN_WINDOW_SECS, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const DEFAULT_METRIC: &str = "latency_ms";
pub const DEFAULT_STATUS_METRIC: &str = "status_code";
pub const WIDTH_RANGE: (u32, u32) = (200, 4000);
pub const HEIGHT_RANGE: (u32, u32) = (150, 4000);
pub const BINS_RANGE: (u32, u32) = (1, 1000);
pub const DEFAULT_WIDTH: u32 = 1000;
pub const DEFAULT_HEIGHT: u32 = 600;
pub const DEFAULT_BINS: u32 = 50;
/// Most services one comparison plot may draw.
pub const MAX_SERVICES: usize = 8;
pub const MAX_TITLE_CHARS: usize = 120;

/// The kinds of plot plotq can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotKind {
    /// Latency distribution with mean/p95/p99 markers (seed 000).
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
                    "unknown plot kind {raw:?}; known kinds: {}",
                    known.join(", ")
                )
            })
    }

    /// Kinds that can draw several services side by side.
    pub fn compares(self) -> bool {
        matches!(
            self,
            PlotKind::Histogram | PlotKind::LatencyTimeseries | PlotKind::Cdf
        )
    }

    /// Kinds that need each sample's timestamp, not only its value.
    pub fn needs_timestamps(self) -> bool {
        matches!(
            self,
            PlotKind::LatencyTimeseries
                | PlotKind::Throughput
                | PlotKind::ErrorRate
                | PlotKind::Heatmap
        )
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

/// Which stretch of time a plot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeRange {
    /// The window ending when the plot was requested.
    Last(Window),
    /// Absolute `[from, until)`, epoch milliseconds.
    Between { from_ms: i64, until_ms: i64 },
}

impl TimeRange {
    /// `[from, until)` for a request made at `requested_ms`.
    pub fn resolve(self, requested_ms: i64) -> (i64, i64) {
        match self {
            TimeRange::Last(w) => (requested_ms - w.millis(), requested_ms),
            TimeRange::Between { from_ms, until_ms } => (from_ms, until_ms),
        }
    }

    pub fn span_ms(self) -> i64 {
        match self {
            TimeRange::Last(w) => w.millis(),
            TimeRange::Between { from_ms, until_ms } => until_ms - from_ms,
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

/// A validated request for one plot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlotSpec {
    pub kind: PlotKind,
    /// One service, or several for a comparison (`services`); never empty.
    pub services: Vec<ServiceName>,
    pub metric: MetricName,
    pub range: TimeRange,
    pub width: u32,
    pub height: u32,
    pub bins: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default)]
    pub format: ImageFormat,
    /// Histogram and CDF: logarithmic latency axis.
    #[serde(default)]
    pub log_x: bool,
    /// Latency over time: also draw the per-bucket maximum.
    #[serde(default)]
    pub show_max: bool,
}

const KNOWN_FIELDS: &[&str] = &[
    "kind", "service", "services", "metric", "window", "from", "until", "width", "height", "bins",
    "title", "theme", "format", "log_x", "show_max",
];

/// Collects field problems while a spec is parsed.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields<'_> {
    fn err(&mut self, field: &str, problem: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("/{field}"), problem));
    }

    fn present(&self, name: &str) -> bool {
        !matches!(self.obj.get(name), None | Some(Value::Null))
    }

    fn string(&mut self, name: &str) -> Option<String> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(name, "must be a string");
                None
            }
        }
    }

    fn bool(&mut self, name: &str) -> bool {
        match self.obj.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.err(name, "must be true or false");
                false
            }
        }
    }

    fn bounded(&mut self, name: &str, (lo, hi): (u32, u32), default: u32) -> Option<u32> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Some(default),
            Some(Value::Number(n))
                if n.as_u64()
                    .is_some_and(|v| (lo as u64..=hi as u64).contains(&v)) =>
            {
                n.as_u64().map(|v| v as u32)
            }
            Some(_) => {
                self.err(name, format!("must be a whole number from {lo} to {hi}"));
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, name: &str, options: &[(&str, T)], default: T) -> T {
        let Some(raw) = self.string(name) else {
            return default;
        };
        match options.iter().find(|(n, _)| *n == raw) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.err(name, format!("must be one of {}", names.join(", ")));
                default
            }
        }
    }
}

impl PlotSpec {
    /// A spec with every optional field at its default.
    pub fn new(kind: PlotKind, service: ServiceName) -> Self {
        Self {
            kind,
            services: vec![service],
            metric: MetricName::parse(kind.default_metric()).expect("default metric name is valid"),
            range: TimeRange::Last(Window::default()),
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            bins: DEFAULT_BINS,
            title: None,
            theme: Theme::Light,
            format: ImageFormat::Png,
            log_x: false,
            show_max: false,
        }
    }

    /// The first (for single-service plots, the only) service.
    pub fn service(&self) -> &ServiceName {
        &self.services[0]
    }

    /// Parses a client's JSON object, reporting every bad or unknown field. `now_ms`
    /// bounds absolute ranges.
    pub fn parse(body: &Value, now_ms: i64) -> Result<Self, FieldErrors> {
        let Value::Object(obj) = body else {
            return Err(FieldErrors::one("", "expected a JSON object"));
        };
        let mut f = Fields {
            obj,
            errors: Vec::new(),
        };
        for key in obj.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                f.err(
                    key,
                    format!("unknown field; known fields: {}", KNOWN_FIELDS.join(", ")),
                );
            }
        }
        let kind = match f.string("kind") {
            None => {
                f.err("kind", "is required");
                None
            }
            Some(k) => PlotKind::parse(&k).map_err(|p| f.err("kind", p)).ok(),
        };
        let services = parse_services(&mut f, kind);
        let metric = match f.string("metric") {
            None => MetricName::parse(kind.map_or(DEFAULT_METRIC, |k| k.default_metric())).ok(),
            Some(m) => MetricName::parse(&m).map_err(|p| f.err("metric", p)).ok(),
        };
        let range = parse_range(&mut f, now_ms);
        let width = f.bounded("width", WIDTH_RANGE, DEFAULT_WIDTH);
        let height = f.bounded("height", HEIGHT_RANGE, DEFAULT_HEIGHT);
        let bins = f.bounded("bins", BINS_RANGE, DEFAULT_BINS);
        let title = f.string("title").and_then(|t| {
            if t.chars().count() > MAX_TITLE_CHARS {
                f.err(
                    "title",
                    format!("must be at most {MAX_TITLE_CHARS} characters"),
                );
                None
            } else if t.chars().any(char::is_control) {
                f.err("title", "must not contain control characters");
                None
            } else {
                Some(t)
            }
        });
        let theme = f.choice(
            "theme",
            &[("light", Theme::Light), ("dark", Theme::Dark)],
            Theme::Light,
        );
        let format = f.choice(
            "format",
            &[("png", ImageFormat::Png), ("svg", ImageFormat::Svg)],
            ImageFormat::Png,
        );
        let log_x = f.bool("log_x");
        let show_max = f.bool("show_max");
        if let Some(kind) = kind {
            if log_x && !matches!(kind, PlotKind::Histogram | PlotKind::Cdf) {
                f.err("log_x", "applies to histogram and cdf only");
            }
            if show_max && kind != PlotKind::LatencyTimeseries {
                f.err("show_max", "applies to latency_timeseries only");
            }
        }
        match (kind, services, metric, range, width, height, bins) {
            (
                Some(kind),
                Some(services),
                Some(metric),
                Some(range),
                Some(width),
                Some(height),
                Some(bins),
            ) if f.errors.is_empty() => Ok(Self {
                kind,
                services,
                metric,
                range,
                width,
                height,
                bins,
                title,
                theme,
                format,
                log_x,
                show_max,
            }),
            _ => Err(FieldErrors(f.errors)),
        }
    }

    /// The title drawn on the plot: the client's override, or e.g.
    /// `Latency Distribution for "checkout" (Last 10m)`.
    pub fn title(&self) -> String {
        if let Some(t) = &self.title {
            return t.clone();
        }
        let what = match self.kind {
            PlotKind::Histogram => "Latency Distribution",
            PlotKind::LatencyTimeseries => "Latency over Time",
            PlotKind::Throughput => "Throughput",
            PlotKind::StatusCodes => "Status Codes",
            PlotKind::ErrorRate => "Error Rate",
            PlotKind::Heatmap => "Latency Heatmap",
            PlotKind::Cdf => "Latency CDF",
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
        format!("{what} {who} ({range})")
    }
}

fn parse_services(f: &mut Fields<'_>, kind: Option<PlotKind>) -> Option<Vec<ServiceName>> {
    match (f.present("service"), f.present("services")) {
        (true, true) => {
            f.err("services", "give either service or services, not both");
            None
        }
        (false, false) => {
            f.err("service", "is required");
            None
        }
        (true, false) => {
            let raw = f.string("service")?;
            ServiceName::parse(&raw)
                .map_err(|p| f.err("service", p))
                .ok()
                .map(|s| vec![s])
        }
        (false, true) => {
            if kind.is_some_and(|k| !k.compares()) {
                f.err(
                    "services",
                    "only histogram, latency_timeseries and cdf compare services; use service",
                );
                return None;
            }
            let Some(Value::Array(items)) = f.obj.get("services") else {
                f.err("services", "must be an array of service names");
                return None;
            };
            if items.is_empty() || items.len() > MAX_SERVICES {
                f.err(
                    "services",
                    format!("must list 1 to {MAX_SERVICES} services"),
                );
                return None;
            }
            let mut out: Vec<ServiceName> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(ServiceName::parse) {
                    Some(Ok(s)) if out.contains(&s) => {
                        f.err(&format!("services/{i}"), "is listed twice")
                    }
                    Some(Ok(s)) => out.push(s),
                    Some(Err(p)) => f.err(&format!("services/{i}"), p),
                    None => f.err(&format!("services/{i}"), "must be a string"),
                }
            }
            (out.len() == items.len()).then_some(out)
        }
    }
}

fn parse_range(f: &mut Fields<'_>, now_ms: i64) -> Option<TimeRange> {
    let window = f.string("window");
    let (from, until) = (f.obj.get("from").cloned(), f.obj.get("until").cloned());
    match (window, from, until) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            f.err("window", "give either window or from/until, not both");
            None
        }
        (Some(w), None, None) => Window::parse(&w)
            .map_err(|p| f.err("window", p))
            .ok()
            .map(TimeRange::Last),
        (None, None, None) => Some(TimeRange::Last(Window::default())),
        (None, from, until) => {
            let from = match from {
                None => {
                    f.err("from", "is required with until");
                    None
                }
                Some(v) => parse_timestamp(&v).map_err(|p| f.err("from", p)).ok(),
            };
            let until = match until {
                None => Some(now_ms),
                Some(v) => parse_timestamp(&v).map_err(|p| f.err("until", p)).ok(),
            };
            let (from_ms, until_ms) = (from?, until?);
            let span = until_ms - from_ms;
            if span < MIN_WINDOW_SECS as i64 * 1000 || span > MAX_WINDOW_SECS as i64 * 1000 {
                f.err(
                    "until",
                    "from/until must span between 10s and 7d, with from before until",
                );
                return None;
            }
            Some(TimeRange::Between { from_ms, until_ms })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_796_000_000_000;

    #[test]
    fn defaults_fill_in() {
        let spec =
            PlotSpec::parse(&json!({"kind": "histogram", "service": "checkout"}), NOW).unwrap();
        assert_eq!(
            spec,
            PlotSpec::new(PlotKind::Histogram, ServiceName::parse("checkout").unwrap())
        );
        assert_eq!(
            spec.title(),
            "Latency Distribution for \"checkout\" (Last 10m)"
        );
        let status = PlotSpec::parse(&json!({"kind": "error_rate", "service": "a"}), NOW).unwrap();
        assert_eq!(status.metric.as_str(), "status_code");
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = PlotSpec::parse(
            &json!({
                "kind": "pie", "service": "", "window": "1y", "width": 10, "height": 600.5,
                "bins": 0, "colour": "red", "theme": "neon", "format": "gif"
            }),
            NOW,
        )
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/colour", "/kind", "/service", "/window", "/width", "/height", "/bins", "/theme",
                "/format"
            ]
        );
        assert!(err.0[1].problem.contains("histogram"));
    }

    #[test]
    fn missing_required_fields() {
        let err = PlotSpec::parse(&json!({}), NOW).unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(PlotSpec::parse(&json!([]), NOW).is_err());
    }

    #[test]
    fn comparisons_and_their_limits() {
        let spec = PlotSpec::parse(&json!({"kind": "cdf", "services": ["a", "b"]}), NOW).unwrap();
        assert_eq!(spec.services.len(), 2);
        assert_eq!(spec.title(), "Latency CDF for a vs b (Last 10m)");
        let err = PlotSpec::parse(&json!({"kind": "throughput", "services": ["a", "b"]}), NOW)
            .unwrap_err();
        assert_eq!(err.0[0].field, "/services");
        let err =
            PlotSpec::parse(&json!({"kind": "cdf", "services": ["a", "a"]}), NOW).unwrap_err();
        assert_eq!(err.0[0].field, "/services/1");
        let err = PlotSpec::parse(
            &json!({"kind": "cdf", "service": "a", "services": ["b"]}),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "/services");
    }

    #[test]
    fn absolute_ranges() {
        let spec = PlotSpec::parse(
            &json!({"kind": "throughput", "service": "a", "from": "2026-11-22T10:00:00Z", "until": "2026-11-22T11:00:00Z"}),
            NOW,
        )
        .unwrap();
        assert_eq!(spec.range.span_ms(), 3_600_000);
        assert_eq!(
            spec.title(),
            "Throughput of \"a\" (2026-11-22 10:00 – 2026-11-22 11:00 UTC)"
        );
        let err = PlotSpec::parse(
            &json!({"kind": "throughput", "service": "a", "from": 5, "until": 4}),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "/until");
        let err = PlotSpec::parse(
            &json!({"kind": "throughput", "service": "a", "window": "1h", "from": 5}),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "/window");
    }

    #[test]
    fn options_apply_to_their_kinds() {
        let err = PlotSpec::parse(
            &json!({"kind": "throughput", "service": "a", "log_x": true}),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "/log_x");
        let ok = PlotSpec::parse(
            &json!({"kind": "histogram", "service": "a", "log_x": true, "theme": "dark", "format": "svg", "title": "Mine"}),
            NOW,
        )
        .unwrap();
        assert!(ok.log_x);
        assert_eq!((ok.theme, ok.format), (Theme::Dark, ImageFormat::Svg));
        assert_eq!(ok.title(), "Mine");
    }
}
