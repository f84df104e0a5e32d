//! Labels: the dimensions of a sample (`route`, `method`, `status`, …), parsed once at the
//! edge and part of its series' identity.
//!
//! A label set is at most [`MAX_LABELS`] pairs; a name is 1–[`MAX_LABEL_NAME_LEN`]
//! characters of `[A-Za-z0-9_]` starting with a letter or `_` (Prometheus' rule: names
//! are field paths in MongoDB, so no `.`; OpenTelemetry's dotted attribute names are
//! mapped, `http.route` → `http_route`), a value 1–
//! [`MAX_LABEL_VALUE_LEN`] characters with no control character. A set is kept sorted by
//! name, so equal sets compare, hash and encode equal; [`Labels::key`] is its canonical
//! text (a JSON object, `""` for no labels), which stores key series by and decode with
//! the same rules ([`Labels::from_key`]). Clones share one allocation: a batch's samples
//! usually carry the same few sets.
//!
//! The same type is a plot's label *filter* (`{"route": "/pay"}`: the series whose labels
//! include every pair, [`Labels::matches`]); [`LabelName`] is a plot's `group_by`.

use crate::error::{Collector, FieldError, FieldErrors, pointer_segment};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Most labels on one sample (and in one filter).
pub const MAX_LABELS: usize = 8;
/// Longest label name, in characters.
pub const MAX_LABEL_NAME_LEN: usize = 64;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE_LEN: usize = 128;

/// Why `raw`, a label `what` (name or value), is not 1 to `max` characters long.
fn check_len(what: &str, raw: &str, max: usize) -> Result<(), String> {
    match raw.chars().count() {
        0 => Err(format!("label {what} must not be empty")),
        len if len > max => Err(format!(
            "label {what} is {len} characters long; the limit is {max}"
        )),
        _ => Ok(()),
    }
}

/// Why `raw` is not a label name, if it is not.
pub fn check_label_name(raw: &str) -> Result<(), String> {
    check_len("name", raw, MAX_LABEL_NAME_LEN)?;
    if !raw.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err(format!(
            "label name {:?} must start with a letter or '_'",
            crate::error::excerpt(raw)
        ));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "label name contains {bad:?}; allowed are letters, digits and '_'"
        ));
    }
    Ok(())
}

/// Why `raw` is not a label value, if it is not.
pub fn check_label_value(raw: &str) -> Result<(), String> {
    check_len("value", raw, MAX_LABEL_VALUE_LEN)?;
    if let Some(bad) = raw.chars().find(|c| c.is_control()) {
        return Err(format!(
            "label value contains the control character {bad:?}"
        ));
    }
    Ok(())
}

/// A validated label name (a plot's `group_by`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelName(String);

impl LabelName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_label_name(raw).map(|()| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LabelName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        check_label_name(&raw).map(|()| Self(raw))
    }
}

impl From<LabelName> for String {
    fn from(name: LabelName) -> String {
        name.0
    }
}

impl fmt::Display for LabelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated label set, sorted by name (see the module docs).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Arc<[(String, String)]>);

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Labels {
    /// No labels.
    pub fn none() -> Self {
        Self::default()
    }

    /// A set from name/value pairs, every pair checked; a name given twice is an error.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, String>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            let (name, value) = (name.into(), value.into());
            check_label_name(&name)?;
            check_label_value(&value).map_err(|p| format!("{name}: {p}"))?;
            if map.insert(name.clone(), value).is_some() {
                return Err(format!("label {name:?} is given twice"));
            }
            if map.len() > MAX_LABELS {
                return Err(format!(
                    "more than {MAX_LABELS} labels; the limit is {MAX_LABELS}"
                ));
            }
        }
        Ok(Self(map.into_iter().collect()))
    }

    /// The `labels` member of a request: an object of string values. Every problem is
    /// named under `path` (e.g. `/3/labels/route`).
    pub fn parse(value: &Value, path: &str) -> Result<Self, FieldErrors> {
        let Value::Object(obj) = value else {
            return Err(FieldErrors::one(
                path,
                "must be an object of label names to string values",
            ));
        };
        Self::parse_object(obj, path)
    }

    fn parse_object(obj: &Map<String, Value>, path: &str) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        if obj.len() > MAX_LABELS {
            errors.push(FieldError::new(
                path,
                format!(
                    "has {} labels; the limit is {MAX_LABELS} per sample",
                    obj.len()
                ),
            ));
            return errors.finish().map(|()| Self::none());
        }
        let mut pairs = Vec::with_capacity(obj.len());
        for (name, value) in obj {
            let at = format!("{path}/{}", pointer_segment(name));
            if let Err(p) = check_label_name(name) {
                errors.push(FieldError::new(&at, p));
                continue;
            }
            match value {
                Value::String(v) => match check_label_value(v) {
                    Ok(()) => pairs.push((name.clone(), v.clone())),
                    Err(p) => errors.push(FieldError::new(&at, p)),
                },
                _ => errors.push(FieldError::new(&at, "label values are strings")),
            }
        }
        errors.finish()?;
        pairs.sort();
        Ok(Self(pairs.into()))
    }

    /// The canonical text of the set: a JSON object with the names in order, or `""`.
    pub fn key(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let map: Map<String, Value> = self
            .iter()
            .map(|(n, v)| (n.to_owned(), Value::String(v.to_owned())))
            .collect();
        Value::Object(map).to_string()
    }

    /// The set whose [`key`](Self::key) `key` is, checked by the same rules as a request.
    pub fn from_key(key: &str) -> Result<Self, String> {
        if key.is_empty() {
            return Ok(Self::none());
        }
        let value: Value =
            serde_json::from_str(key).map_err(|e| format!("labels are not a JSON object: {e}"))?;
        let Value::Object(obj) = value else {
            return Err("labels are not a JSON object".into());
        };
        Self::parse_object(&obj, "").map_err(|e| e.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `other` is this very set (a clone of it): a cheap check before comparing.
    pub fn same(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of label `name`, if the set has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Whether this set has every pair of `filter` (an empty filter matches every set).
    pub fn matches(&self, filter: &Labels) -> bool {
        filter.iter().all(|(n, v)| self.get(n) == Some(v))
    }

    /// `name=value` pairs joined by `,` (for titles and messages).
    pub fn describe(&self) -> String {
        let pairs: Vec<String> = self.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join(",")
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Labels::from_pairs(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_are_sorted_and_keyed_canonically() {
        let a = Labels::parse(&json!({"route": "/pay", "method": "GET"}), "/labels").unwrap();
        let b = Labels::from_pairs([("method", "GET"), ("route", "/pay")]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), r#"{"method":"GET","route":"/pay"}"#);
        assert_eq!(Labels::from_key(&a.key()).unwrap(), a);
        assert_eq!(Labels::none().key(), "");
        assert_eq!(Labels::from_key("").unwrap(), Labels::none());
        assert_eq!(a.get("route"), Some("/pay"));
        assert_eq!(a.get("status"), None);
        assert_eq!(a.describe(), "method=GET,route=/pay");
    }

    #[test]
    fn filters_match_supersets() {
        let set = Labels::from_pairs([("method", "GET"), ("route", "/pay")]).unwrap();
        assert!(set.matches(&Labels::none()));
        assert!(set.matches(&Labels::from_pairs([("route", "/pay")]).unwrap()));
        assert!(!set.matches(&Labels::from_pairs([("route", "/cart")]).unwrap()));
        assert!(!Labels::none().matches(&Labels::from_pairs([("route", "/pay")]).unwrap()));
    }

    #[test]
    fn every_bad_label_is_named() {
        let nine: Map<String, Value> = (0..9).map(|i| (format!("l{i}"), json!("v"))).collect();
        let err = Labels::parse(&Value::Object(nine), "/0/labels").unwrap_err();
        assert_eq!(err.0[0].field, "/0/labels");
        assert!(err.0[0].problem.contains("limit is 8"), "{err:?}");
        let err = Labels::parse(
            &json!({"9x": "a", "ok": 3, "route": "", "a/b": "c", "v": "x\ny"}),
            "/labels",
        )
        .unwrap_err();
        // In the object's order (serde_json's: features may make it insertion order).
        let mut fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "/labels/9x",
                "/labels/a~1b",
                "/labels/ok",
                "/labels/route",
                "/labels/v"
            ]
        );
        assert!(Labels::parse(&json!(["route"]), "/labels").is_err());
        let long = "x".repeat(MAX_LABEL_VALUE_LEN + 1);
        assert!(Labels::from_pairs([("route", long.as_str())]).is_err());
        assert!(Labels::from_pairs([("route", "a"), ("route", "b")]).is_err());
    }

    #[test]
    fn decoding_applies_the_request_rules() {
        assert!(Labels::from_key(r#"{"route":""}"#).is_err());
        assert!(Labels::from_key("[1]").is_err());
        assert!(Labels::from_key("{").is_err());
        let set: Labels = serde_json::from_value(json!({"b": "2", "a": "1"})).unwrap();
        assert_eq!(
            serde_json::to_value(&set).unwrap(),
            json!({"a": "1", "b": "2"})
        );
        assert!(serde_json::from_value::<Labels>(json!({"a b": "1"})).is_err());
    }
}
