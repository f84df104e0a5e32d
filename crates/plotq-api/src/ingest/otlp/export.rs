//! What every OTLP signal shares on its way to samples: the service of a resource
//! (`service.name`), the checks a point's time must pass (the sample rules: inside the
//! timestamp range, at most 5 minutes ahead, not older than the rollup retention), the
//! caller's service allowlist, and the [`Export`] an export request becomes — its
//! samples and summaries, how many items were rejected and why, in the few words the OTLP partial
//! success carries back to the exporter.

use crate::streams::{Streams, Update};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use plotq_domain::ServiceName;
use plotq_domain::rollup::SeriesRollup;
use plotq_domain::sample::{MAX_BATCH, MAX_FUTURE_SKEW_MS};
use plotq_domain::timestamp::check_timestamp;
use plotq_domain::{MetricName, Sample};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Distinct reasons reported in one answer's message (each with its count).
const MAX_REASONS: usize = 8;

/// The rules an export is read under.
pub(crate) struct Rules<'a> {
    /// The request's clock, epoch milliseconds.
    pub now_ms: i64,
    /// Points older than this are refused (the rollup retention's horizon).
    pub oldest_ms: i64,
    /// Whether the caller may write this service.
    pub may_use: &'a dyn Fn(&str) -> bool,
    /// The cumulative streams this process follows.
    pub streams: &'a Streams,
}

/// An export request read into samples: what is stored, and what was not.
#[derive(Debug, Default)]
pub(crate) struct Export {
    pub samples: Vec<Sample>,
    /// Histogram points, merged into the rollups.
    pub summaries: Vec<SeriesRollup>,
    /// The cumulative streams' state once these are stored.
    pub updates: Vec<Update>,
    /// Items (spans, data points) refused, each counted once.
    pub rejected: u64,
    /// Items left out by design (spans that are not requests): a warning, not a rejection.
    pub ignored: u64,
    /// Reason → items, for the answer's message (a fixed phrase is not copied per item:
    /// an export of thousands of left-out spans allocates nothing for them).
    reasons: BTreeMap<Cow<'static, str>, u64>,
}

impl Export {
    /// Records `n` items refused for `reason`.
    pub(crate) fn reject(&mut self, n: u64, reason: impl Into<Cow<'static, str>>) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        self.note(n, reason);
    }

    /// Records `n` items left out by design, for `reason`.
    pub(crate) fn ignore(&mut self, n: u64, reason: impl Into<Cow<'static, str>>) {
        if n == 0 {
            return;
        }
        self.ignored += n;
        self.note(n, reason);
    }

    fn note(&mut self, n: u64, reason: impl Into<Cow<'static, str>>) {
        let reason = reason.into();
        if self.reasons.len() < MAX_REASONS || self.reasons.contains_key(&reason) {
            *self.reasons.entry(reason).or_default() += n;
        } else {
            *self
                .reasons
                .entry(Cow::Borrowed("other reasons"))
                .or_default() += n;
        }
    }

    /// Whether `more` samples or summaries still fit the request's bound ([`MAX_BATCH`]).
    pub(crate) fn full(&self, more: usize) -> bool {
        self.stored() + more > MAX_BATCH
    }

    /// Items to store: samples and summaries.
    pub(crate) fn stored(&self) -> usize {
        self.samples.len() + self.summaries.len()
    }

    /// The partial-success message: every reason with its count, or empty.
    pub(crate) fn message(&self) -> String {
        self.reasons
            .iter()
            .map(|(reason, n)| format!("{n} × {reason}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The service a resource's items belong to: its `service.name`, which the caller must
/// be allowed to write. `Err` is the reason every item of the resource is refused.
pub(crate) fn service_of(
    resource: Option<&Resource>,
    rules: &Rules<'_>,
) -> Result<ServiceName, String> {
    let name = resource
        .and_then(|r| string_attribute(&r.attributes, &["service.name"]))
        .ok_or_else(|| "the resource has no service.name".to_owned())?;
    let service = ServiceName::parse(name).map_err(|p| format!("service.name: {p}"))?;
    if !(rules.may_use)(service.as_str()) {
        return Err(format!("service {service} is not allowed for this token"));
    }
    Ok(service)
}

/// An OTLP metric or span name as a metric name (its syntax: `names.rs`).
pub(crate) fn metric_of(name: &str) -> Result<MetricName, String> {
    MetricName::parse(name).map_err(|p| {
        format!(
            "metric {:?}: {p}",
            name.chars().take(64).collect::<String>()
        )
    })
}

/// A point's time (Unix nanoseconds) as a sample timestamp, under the sample rules.
pub(crate) fn timestamp_of(unix_nano: u64, rules: &Rules<'_>) -> Result<i64, &'static str> {
    if unix_nano == 0 {
        return Err("no time");
    }
    let ms = i64::try_from(unix_nano / 1_000_000).map_err(|_| "time out of range")?;
    let ms = check_timestamp(ms).map_err(|_| "time out of range")?;
    if ms > rules.now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err("time more than 5 minutes in the future");
    }
    if ms < rules.oldest_ms {
        return Err("older than the rollup retention (PLOTQ_ROLLUP_RETENTION)");
    }
    Ok(ms)
}

/// The first of `keys` present among `attributes` as a string.
pub(crate) fn string_attribute<'a>(attributes: &'a [KeyValue], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| {
        attributes.iter().find(|kv| kv.key == *key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            }
        })
    })
}

/// The first of `keys` present among `attributes` as a whole number (an integer, or a
/// string of digits, as some instrumentations send status codes).
pub(crate) fn int_attribute(attributes: &[KeyValue], keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|key| {
        attributes.iter().find(|kv| kv.key == *key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::IntValue(i) => Some(*i),
                any_value::Value::StringValue(s) => s.trim().parse().ok(),
                _ => None,
            }
        })
    })
}
