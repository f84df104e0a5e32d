//! `Threshold`: a value a plot marks on its value axis with a label (an SLO of 250 ms, a
//! rate limit of 500/s), and the rules of a spec's list of them: at most
//! [`MAX_THRESHOLDS`], each a finite `value` and a `label` of 1 to
//! [`MAX_THRESHOLD_LABEL_CHARS`] characters without control characters (default
//! `threshold`), no other member.

use crate::error::{Collector, FieldErrors, excerpt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::hash::{Hash, Hasher};

/// Most thresholds one plot draws.
pub const MAX_THRESHOLDS: usize = 8;
/// Longest threshold label, in characters.
pub const MAX_THRESHOLD_LABEL_CHARS: usize = 40;
/// The label of a threshold given without one.
pub const DEFAULT_THRESHOLD_LABEL: &str = "threshold";

/// A marked value, in the units of the plot's value axis (the metric's for the
/// distribution and latency kinds, samples per second for throughput, percent for error
/// rate, samples for status codes, y's statistic for a correlation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub value: f64,
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_label() -> String {
    DEFAULT_THRESHOLD_LABEL.to_owned()
}

// Values are finite (the rules see to it), so equality by value is an equivalence; -0.0
// hashes as 0.0, as it compares.
impl Eq for Threshold {}

impl Hash for Threshold {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let v = if self.value == 0.0 { 0.0 } else { self.value };
        v.to_bits().hash(state);
        self.label.hash(state);
    }
}

impl Threshold {
    /// `Err(problem)` unless the value is finite and the label fits.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.value.is_finite() {
            return Err(("value", "must be a finite number".to_owned()));
        }
        check_label(&self.label).map_err(|p| ("label", p))
    }

    /// A client's `thresholds` array, every bad entry named under `path`.
    pub fn parse_list(value: &Value, path: &str) -> Result<Vec<Self>, FieldErrors> {
        let Value::Array(items) = value else {
            return Err(FieldErrors::one(
                path,
                "must be an array of {\"value\": number, \"label\": string} objects",
            ));
        };
        if items.len() > MAX_THRESHOLDS {
            return Err(FieldErrors::one(
                path,
                format!(
                    "has {} thresholds; the limit is {MAX_THRESHOLDS}",
                    items.len()
                ),
            ));
        }
        let mut errors = Collector::new();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}/{i}");
            let Value::Object(obj) = item else {
                errors.err(&at, "must be an object with a value and a label");
                continue;
            };
            for key in obj
                .keys()
                .filter(|k| !matches!(k.as_str(), "value" | "label"))
            {
                errors.err(
                    format!("{at}/{}", crate::error::pointer_segment(key)),
                    "unknown member; a threshold has value and label",
                );
            }
            let value = match obj.get("value") {
                Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
                _ => None,
            };
            if value.is_none() {
                errors.err(format!("{at}/value"), "is required: a finite number");
            }
            let label = match obj.get("label") {
                None | Some(Value::Null) => Some(default_label()),
                Some(Value::String(s)) => match check_label(s) {
                    Ok(()) => Some(s.clone()),
                    Err(p) => {
                        errors.err(format!("{at}/label"), p);
                        None
                    }
                },
                Some(_) => {
                    errors.err(format!("{at}/label"), "must be a string");
                    None
                }
            };
            if let (Some(value), Some(label)) = (value, label) {
                out.push(Threshold { value, label });
            }
        }
        errors.finish().map(|()| out)
    }
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.chars().nth(MAX_THRESHOLD_LABEL_CHARS).is_some() {
        Err(format!(
            "must be 1 to {MAX_THRESHOLD_LABEL_CHARS} characters, not {}",
            excerpt(label)
        ))
    } else if label.chars().any(char::is_control) {
        Err("must not contain control characters".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_parse_with_every_problem_named() {
        let ok = Threshold::parse_list(
            &json!([{"value": 250, "label": "SLO"}, {"value": -1.5}]),
            "/thresholds",
        )
        .unwrap();
        assert_eq!(ok[0].label, "SLO");
        assert_eq!((ok[1].value, ok[1].label.as_str()), (-1.5, "threshold"));
        let err = Threshold::parse_list(
            &json!([{"value": "250"}, {"value": 1, "label": ""}, 3, {"value": 1, "colour": "red"}]),
            "/thresholds",
        )
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/thresholds/0/value",
                "/thresholds/1/label",
                "/thresholds/2",
                "/thresholds/3/colour"
            ]
        );
        let nine: Vec<Value> = (0..9).map(|v| json!({"value": v})).collect();
        let err = Threshold::parse_list(&Value::Array(nine), "/thresholds").unwrap_err();
        assert!(err.0[0].problem.contains("limit is 8"), "{err:?}");
        assert!(Threshold::parse_list(&json!({"value": 1}), "/thresholds").is_err());
    }
}
