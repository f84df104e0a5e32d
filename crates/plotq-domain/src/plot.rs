//! Plot specs: what a client may ask to have drawn, with defaults and bounds.
//!
//! `PlotSpec::parse` turns a client's JSON object into a validated spec, naming every
//! bad field. Everything downstream (queue message, renderer, cache key) takes the
//! parsed spec and never re-validates.

use crate::error::{FieldError, FieldErrors};
use crate::names::{MetricName, ServiceName};
use crate::window::Window;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const DEFAULT_METRIC: &str = "latency_ms";
pub const WIDTH_RANGE: (u32, u32) = (200, 4000);
pub const HEIGHT_RANGE: (u32, u32) = (150, 4000);
pub const BINS_RANGE: (u32, u32) = (1, 1000);
pub const DEFAULT_WIDTH: u32 = 1000;
pub const DEFAULT_HEIGHT: u32 = 600;
pub const DEFAULT_BINS: u32 = 50;

/// The kinds of plot plotq can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotKind {
    /// Latency distribution with mean/p95/p99 markers (seed 000).
    Histogram,
}

impl PlotKind {
    pub const ALL: &'static [PlotKind] = &[PlotKind::Histogram];

    pub fn as_str(self) -> &'static str {
        match self {
            PlotKind::Histogram => "histogram",
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
}

/// A validated request for one plot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlotSpec {
    pub kind: PlotKind,
    pub service: ServiceName,
    pub metric: MetricName,
    pub window: Window,
    pub width: u32,
    pub height: u32,
    pub bins: u32,
}

const KNOWN_FIELDS: &[&str] = &[
    "kind", "service", "metric", "window", "width", "height", "bins",
];

impl PlotSpec {
    /// A spec with every optional field at its default.
    pub fn new(kind: PlotKind, service: ServiceName) -> Self {
        Self {
            kind,
            service,
            metric: MetricName::parse(DEFAULT_METRIC).expect("default metric name is valid"),
            window: Window::default(),
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            bins: DEFAULT_BINS,
        }
    }

    /// Parses a client's JSON object, reporting every bad or unknown field.
    pub fn parse(body: &Value) -> Result<Self, FieldErrors> {
        let Value::Object(obj) = body else {
            return Err(FieldErrors::one("", "expected a JSON object"));
        };
        let mut errors = Vec::new();
        for key in obj.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("/{key}"),
                    format!("unknown field; known fields: {}", KNOWN_FIELDS.join(", ")),
                ));
            }
        }
        let mut string_field = |name: &str, required: bool| -> Option<String> {
            match obj.get(name) {
                None | Some(Value::Null) if required => {
                    errors.push(FieldError::new(format!("/{name}"), "is required"));
                    None
                }
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errors.push(FieldError::new(format!("/{name}"), "must be a string"));
                    None
                }
            }
        };
        let kind = string_field("kind", true);
        let service = string_field("service", true);
        let metric = string_field("metric", false);
        let window = string_field("window", false);
        let kind = kind.and_then(|k| {
            PlotKind::parse(&k)
                .map_err(|p| errors.push(FieldError::new("/kind", p)))
                .ok()
        });
        let service = service.and_then(|s| {
            ServiceName::parse(&s)
                .map_err(|p| errors.push(FieldError::new("/service", p)))
                .ok()
        });
        let metric = match metric {
            None => MetricName::parse(DEFAULT_METRIC).ok(),
            Some(m) => MetricName::parse(&m)
                .map_err(|p| errors.push(FieldError::new("/metric", p)))
                .ok(),
        };
        let window = match window {
            None => Some(Window::default()),
            Some(w) => Window::parse(&w)
                .map_err(|p| errors.push(FieldError::new("/window", p)))
                .ok(),
        };
        let mut bounded = |name: &str, (lo, hi): (u32, u32), default: u32| -> Option<u32> {
            match obj.get(name) {
                None | Some(Value::Null) => Some(default),
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(v) if (lo as u64..=hi as u64).contains(&v) => Some(v as u32),
                    _ => {
                        errors.push(FieldError::new(
                            format!("/{name}"),
                            format!("must be a whole number from {lo} to {hi}"),
                        ));
                        None
                    }
                },
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("/{name}"),
                        format!("must be a whole number from {lo} to {hi}"),
                    ));
                    None
                }
            }
        };
        let width = bounded("width", WIDTH_RANGE, DEFAULT_WIDTH);
        let height = bounded("height", HEIGHT_RANGE, DEFAULT_HEIGHT);
        let bins = bounded("bins", BINS_RANGE, DEFAULT_BINS);
        match (kind, service, metric, window, width, height, bins) {
            (
                Some(kind),
                Some(service),
                Some(metric),
                Some(window),
                Some(width),
                Some(height),
                Some(bins),
            ) if errors.is_empty() => Ok(Self {
                kind,
                service,
                metric,
                window,
                width,
                height,
                bins,
            }),
            _ => Err(FieldErrors(errors)),
        }
    }

    /// The human title, e.g. `Latency Distribution for "checkout" (Last 10m)`.
    pub fn title(&self) -> String {
        match self.kind {
            PlotKind::Histogram => format!(
                "Latency Distribution for \"{}\" (Last {})",
                self.service, self.window
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_in() {
        let spec = PlotSpec::parse(&json!({"kind": "histogram", "service": "checkout"})).unwrap();
        assert_eq!(
            spec,
            PlotSpec::new(PlotKind::Histogram, ServiceName::parse("checkout").unwrap())
        );
        assert_eq!(
            spec.title(),
            "Latency Distribution for \"checkout\" (Last 10m)"
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = PlotSpec::parse(&json!({
            "kind": "pie", "service": "", "window": "1y", "width": 10, "height": 600.5,
            "bins": 0, "colour": "red"
        }))
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/colour", "/kind", "/service", "/window", "/width", "/height", "/bins"
            ]
        );
        assert!(err.0[1].problem.contains("histogram"));
    }

    #[test]
    fn missing_required_fields() {
        let err = PlotSpec::parse(&json!({})).unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(PlotSpec::parse(&json!([])).is_err());
    }
}
