//! Metric samples and their parsing from client JSON.
//!
//! Accepts `service`/`metric` and the Python prototype's `service_name`/`metric_name`,
//! a finite `value`, and an optional `timestamp` (RFC 3339 string or epoch
//! milliseconds, from 1970 to the end of year 9999 — see [`crate::timestamp`], which
//! refuses epoch seconds — and at most [`MAX_FUTURE_SKEW_MS`] ahead of the clock;
//! absent means "when it was received"), and optional `labels` (an object of string
//! values: [`crate::labels`]). Any other member is refused by name, so nothing a client
//! sends (`tags`, say) is silently dropped.
//! Parsing a batch is all-or-nothing: problems in every element are collected, so a
//! client can fix the batch in one round trip, up to
//! [`MAX_REPORTED_ERRORS`](crate::error::MAX_REPORTED_ERRORS) of them (then the list
//! ends with a "stopped checking" entry and parsing stops).

use crate::error::{Collector, FieldError, FieldErrors, excerpt, pointer_segment};
use crate::labels::Labels;
use crate::names::{MetricName, ServiceName};
use crate::timestamp::clamp_timestamp;
use serde_json::Value;

pub use crate::timestamp::parse_timestamp;

/// Most samples accepted in one request.
pub const MAX_BATCH: usize = 50_000;

/// How far in the future (clock skew) a timestamp may lie, in milliseconds.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// One observation of one metric of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub service: ServiceName,
    pub metric: MetricName,
    pub value: f64,
    /// Milliseconds since the Unix epoch, UTC, within
    /// [`MIN_TIMESTAMP_MS`](crate::timestamp::MIN_TIMESTAMP_MS)`..=`[`MAX_TIMESTAMP_MS`](crate::timestamp::MAX_TIMESTAMP_MS)
    /// when parsed.
    pub timestamp_ms: i64,
    /// The sample's dimensions: part of its series' identity.
    pub labels: Labels,
}

/// The usual request, parsed straight from the body's bytes: a non-empty array (up to
/// [`MAX_BATCH`]) of sample objects whose every sample is valid. Anything else — a
/// single object, an invalid sample, a duplicated or doubly-named field, malformed
/// JSON — is `None`, and the caller parses the body as a JSON value with
/// [`parse_samples`], which says precisely what is wrong. Where this answers, it
/// answers exactly what [`parse_samples`] does (a property test checks it), without
/// building a JSON value first.
pub fn parse_samples_fast(body: &[u8], now_ms: i64) -> Option<Vec<Sample>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fast<'a> {
        #[serde(borrow, alias = "service_name")]
        service: std::borrow::Cow<'a, str>,
        #[serde(borrow, alias = "metric_name")]
        metric: std::borrow::Cow<'a, str>,
        value: f64,
        #[serde(default)]
        timestamp: Option<Value>,
        #[serde(default, borrow)]
        labels: Option<
            std::collections::BTreeMap<std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>>,
        >,
    }
    let raw: Vec<Fast<'_>> = serde_json::from_slice(body).ok()?;
    if raw.is_empty() || raw.len() > MAX_BATCH {
        return None;
    }
    let now_ms = clamp_timestamp(now_ms);
    let mut samples = Vec::with_capacity(raw.len());
    // Batches usually repeat one series: parse each distinct name (and label set) once.
    let mut last: Option<(ServiceName, MetricName)> = None;
    // The label sets parsed so far (index of a sample that sent it, the set): a batch
    // usually repeats a few, in any order.
    let mut seen_labels: Vec<(usize, Labels)> = Vec::new();
    for f in &raw {
        if !f.value.is_finite() {
            return None;
        }
        let timestamp_ms = match &f.timestamp {
            None | Some(Value::Null) => now_ms,
            Some(v) => match crate::timestamp::parse_sample_timestamp(v) {
                Ok(ts) if ts <= now_ms + MAX_FUTURE_SKEW_MS => ts,
                _ => return None,
            },
        };
        let (service, metric) = match &last {
            Some((s, m)) if s.as_str() == f.service && m.as_str() == f.metric => {
                (s.clone(), m.clone())
            }
            _ => {
                let pair = (
                    ServiceName::parse(&f.service).ok()?,
                    MetricName::parse(&f.metric).ok()?,
                );
                last = Some(pair.clone());
                pair
            }
        };
        let labels = match &f.labels {
            None => Labels::none(),
            Some(pairs) => match seen_labels
                .iter()
                .find(|(at, _)| raw[*at].labels.as_ref() == Some(pairs))
            {
                Some((_, held)) => held.clone(),
                None => {
                    if pairs.len() > crate::labels::MAX_LABELS {
                        return None;
                    }
                    let held =
                        Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
                            .ok()?;
                    // Remembered up to a few dozen sets (past them, parsed each time).
                    if seen_labels.len() < 32 {
                        seen_labels.push((samples.len(), held.clone()));
                    }
                    held
                }
            },
        };
        samples.push(Sample {
            service,
            metric,
            value: f.value,
            timestamp_ms,
            labels,
        });
    }
    Some(samples)
}

/// Parses a request body that is one sample object or an array of them.
/// `now_ms` (clamped into the timestamp range) fills absent timestamps and bounds
/// future ones.
pub fn parse_samples(body: &Value, now_ms: i64) -> Result<Vec<Sample>, FieldErrors> {
    let now_ms = clamp_timestamp(now_ms);
    let items: &[Value] = match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(FieldErrors::one("", "the batch is empty"));
            }
            if items.len() > MAX_BATCH {
                return Err(FieldErrors::one(
                    "",
                    format!(
                        "the batch has {} samples; the limit is {MAX_BATCH}",
                        items.len()
                    ),
                ));
            }
            items
        }
        Value::Object(_) => std::slice::from_ref(body),
        _ => {
            return Err(FieldErrors::one(
                "",
                "expected a sample object or an array of sample objects",
            ));
        }
    };
    let batch = matches!(body, Value::Array(_));
    let mut samples = Vec::with_capacity(items.len());
    let mut errors = Collector::new();
    for (i, item) in items.iter().enumerate() {
        match parse_one(item, now_ms) {
            Ok(s) => samples.push(s),
            Err(errs) => {
                let path = if batch {
                    format!("/{i}")
                } else {
                    String::new()
                };
                for e in errs {
                    errors.push(e.under(&path));
                }
            }
        }
        if errors.is_full() {
            break;
        }
    }
    errors.finish().map(|()| samples)
}

/// The members a sample object may have.
pub const SAMPLE_FIELDS: [&str; 7] = [
    "service",
    "service_name",
    "metric",
    "metric_name",
    "value",
    "timestamp",
    "labels",
];

/// The problem with a member that is not a sample field, at its JSON pointer.
fn unknown_field(key: &str) -> FieldError {
    let pointer = format!("/{}", pointer_segment(key));
    let problem = match key {
        "tags" | "attributes" | "dimensions" => {
            "is not a sample field: send dimensions as `labels` (an object of string values)"
        }
        _ => "is not a sample field (service, metric, value, timestamp, labels)",
    };
    FieldError::new(pointer, problem)
}

fn parse_one(item: &Value, now_ms: i64) -> Result<Sample, Vec<FieldError>> {
    let Value::Object(obj) = item else {
        return Err(vec![FieldError::new("", "expected a sample object")]);
    };
    let mut errors: Vec<FieldError> = obj
        .keys()
        .filter(|k| !SAMPLE_FIELDS.contains(&k.as_str()))
        .map(|k| unknown_field(k))
        .collect();
    // (key, its JSON pointer) of a field and its alias.
    type Field = (&'static str, &'static str);
    let mut name_field = |primary: Field, alias: Field| -> Option<(&'static str, &Value)> {
        match (obj.get(primary.0), obj.get(alias.0)) {
            (Some(v), _) => Some((primary.1, v)),
            (None, Some(v)) => Some((alias.1, v)),
            (None, None) => {
                errors.push(FieldError::new(primary.1, "is required"));
                None
            }
        }
    };
    let service_raw = name_field(("service", "/service"), ("service_name", "/service_name"));
    let metric_raw = name_field(("metric", "/metric"), ("metric_name", "/metric_name"));
    let service = service_raw.and_then(|(path, v)| match v.as_str() {
        Some(s) => ServiceName::parse(s)
            .map_err(|p| errors.push(FieldError::new(path, p)))
            .ok(),
        None => {
            errors.push(FieldError::new(path, "must be a string"));
            None
        }
    });
    let metric = metric_raw.and_then(|(path, v)| match v.as_str() {
        Some(s) => MetricName::parse(s)
            .map_err(|p| errors.push(FieldError::new(path, p)))
            .ok(),
        None => {
            errors.push(FieldError::new(path, "must be a string"));
            None
        }
    });
    let value = match obj.get("value") {
        None => {
            errors.push(FieldError::new("/value", "is required"));
            None
        }
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() => Some(v),
            _ => {
                errors.push(FieldError::new("/value", "must be a finite number"));
                None
            }
        },
        // JSON has no NaN/Infinity literals, but clients sometimes send them as strings.
        Some(Value::String(s)) => {
            errors.push(FieldError::new(
                "/value",
                format!("must be a finite number, got the string {}", excerpt(s)),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("/value", "must be a finite number"));
            None
        }
    };
    let timestamp_ms = match obj.get("timestamp") {
        None | Some(Value::Null) => Some(now_ms),
        Some(v) => match crate::timestamp::parse_sample_timestamp(v) {
            // Both are within the timestamp range, so the sum cannot overflow.
            Ok(ts) if ts > now_ms + MAX_FUTURE_SKEW_MS => {
                errors.push(FieldError::new(
                    "/timestamp",
                    "lies more than 5 minutes in the future",
                ));
                None
            }
            Ok(ts) => Some(ts),
            Err(p) => {
                errors.push(FieldError::new("/timestamp", p));
                None
            }
        },
    };
    let labels = match obj.get("labels") {
        None | Some(Value::Null) => Some(Labels::none()),
        Some(v) => match Labels::parse(v, "/labels") {
            Ok(labels) => Some(labels),
            Err(errs) => {
                errors.extend(errs.0);
                None
            }
        },
    };
    match (service, metric, value, timestamp_ms, labels) {
        (Some(service), Some(metric), Some(value), Some(timestamp_ms), Some(labels))
            if errors.is_empty() =>
        {
            Ok(Sample {
                service,
                metric,
                value,
                timestamp_ms,
                labels,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_796_000_000_000;

    #[test]
    fn parses_single_and_batch_with_aliases() {
        let one = parse_samples(
            &json!({"service": "checkout", "metric": "latency_ms", "value": 12.5,
                    "timestamp": "2026-11-22T10:00:00.123Z"}),
            NOW,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].timestamp_ms, 1_795_341_600_123);
        let batch = parse_samples(
            &json!([
                {"service_name": "a", "metric_name": "m", "value": 1},
                {"service": "b", "metric": "m", "value": 2.0, "timestamp": 1_700_000_000_000i64}
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(batch[0].service.as_str(), "a");
        assert_eq!(batch[0].timestamp_ms, NOW);
        assert_eq!(batch[1].timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn reports_every_bad_field_with_its_path() {
        let err = parse_samples(
            &json!([
                {"service": "ok", "metric": "m", "value": 1},
                {"service": "bad name", "metric": "m", "value": "NaN"},
                {"metric": "m", "value": 1, "timestamp": "yesterday"}
            ]),
            NOW,
        )
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["/1/service", "/1/value", "/2/service", "/2/timestamp"]
        );
    }

    #[test]
    fn the_fast_path_takes_the_usual_batch_and_leaves_the_rest() {
        let usual = json!([
            {"service": "a", "metric": "m", "value": 1.5, "timestamp": NOW - 1_000},
            {"service_name": "a", "metric_name": "m", "value": 2},
            {"service": "b", "metric": "m", "value": -3, "timestamp": "2026-11-22T10:00:00Z"},
        ]);
        let bytes = serde_json::to_vec(&usual).unwrap();
        let fast = parse_samples_fast(&bytes, NOW).expect("the usual shape");
        assert_eq!(fast, parse_samples(&usual, NOW).unwrap());
        for other in [
            json!({"service": "a", "metric": "m", "value": 1}),
            json!([]),
            json!([{"service": "a", "service_name": "b", "metric": "m", "value": 1}]),
            json!([{"service": "a", "metric": "m", "value": "1"}]),
            json!([{"service": "bad name", "metric": "m", "value": 1}]),
            json!([{"service": "a", "metric": "m", "value": 1, "timestamp": NOW + 3_600_000}]),
            json!([{"service": "a", "metric": "m", "value": 1, "tags": {"route": "/pay"}}]),
            json!([{"service": "a", "metric": "m", "value": 1, "timestamp": NOW / 1000}]),
        ] {
            let bytes = serde_json::to_vec(&other).unwrap();
            assert_eq!(parse_samples_fast(&bytes, NOW), None, "{other}");
        }
    }

    #[test]
    fn unknown_members_are_refused_by_name_never_dropped() {
        let err = parse_samples(
            &json!([
                {"service": "a", "metric": "m", "value": 1, "tags": {"route": "/pay"}},
                {"service": "a", "metric": "m", "value": 1, "a/b~": 2},
            ]),
            NOW,
        )
        .unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/0/tags", "/1/a~1b~0"]);
        assert!(err.0[0].problem.contains("labels"), "{}", err.0[0].problem);
    }

    #[test]
    fn epoch_seconds_are_refused_naming_the_unit() {
        let err = parse_samples(
            &json!({"service": "a", "metric": "m", "value": 1, "timestamp": NOW / 1000}),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "/timestamp");
        assert!(
            err.0[0].problem.contains("epoch seconds"),
            "{}",
            err.0[0].problem
        );
    }

    #[test]
    fn rejects_future_and_non_objects() {
        let err = parse_samples(
            &json!({"service": "a", "metric": "m", "value": 1, "timestamp": NOW + 3_600_000}),
            NOW,
        )
        .unwrap_err();
        assert!(err.0[0].problem.contains("future"));
        assert!(parse_samples(&json!(3), NOW).is_err());
        assert!(parse_samples(&json!([]), NOW).is_err());
        assert_eq!(
            parse_samples(&json!([1]), NOW).unwrap_err().0[0].field,
            "/0"
        );
    }
}
