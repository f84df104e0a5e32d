//! Metric data points into samples and summaries, the metric named as the exporter
//! names it (when it fits plotq's name syntax), at the point's time: a Gauge's value, a
//! Sum's value when its temporality is delta (what happened in the point's interval) or
//! when it is not monotonic (an up-down counter's cumulative value is a level, like a
//! gauge's), and a cumulative monotonic Sum's increase since its stream's previous
//! point (`streams.rs`) become samples; Histogram and ExponentialHistogram points,
//! delta or cumulative (by difference, likewise), merge into the rollups
//! (`histograms.rs`). Summary points are refused with a message saying what to send
//! instead, never taken and dropped.
//!
//! A point's attributes are its sample's labels: each name with every character outside
//! `[A-Za-z0-9_]` made `_` (`http.route` → `http_route`), string, integer and boolean
//! values as text. A point with more than 8 attributes, or one that is no label value, is
//! refused with the reason (never stored without them).

use super::export::{Export, Rules, metric_of, service_of, timestamp_of};
use super::histograms;
use crate::streams::{Cumulative, Delta};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, NumberDataPoint};
use plotq_domain::chunk::bucket_of;
use plotq_domain::labels::MAX_LABELS;
use plotq_domain::rollup::SeriesRollup;
use plotq_domain::{Labels, MetricName, Sample, ServiceName};
use prost::Message;

/// A data point's flag: no value was recorded in its interval.
const NO_RECORDED_VALUE: u32 = 1;

/// The samples and summaries of every point of `request`.
pub(crate) fn read_points(request: &ExportMetricsServiceRequest, rules: &Rules<'_>) -> Export {
    let mut export = Export::default();
    for resource_metrics in &request.resource_metrics {
        let metrics = resource_metrics
            .scope_metrics
            .iter()
            .flat_map(|s| &s.metrics);
        let service = match service_of(resource_metrics.resource.as_ref(), rules) {
            Ok(service) => service,
            Err(reason) => {
                export.reject(metrics.map(|m| points_of(m) as u64).sum(), reason);
                continue;
            }
        };
        // Part of every stream's identity (the data model's): the resource.
        let resource = rules.streams.id_of(
            resource_metrics
                .resource
                .as_ref()
                .map(Message::encode_to_vec)
                .unwrap_or_default(),
        );
        for metric in metrics {
            let series = Series {
                service: &service,
                resource,
            };
            read_metric(&mut export, &series, metric, rules);
        }
    }
    export
}

/// Whose a metric's points are.
struct Series<'a> {
    service: &'a ServiceName,
    /// The resource's part of a stream id.
    resource: u64,
}

/// A point of any kind, as far as its time, stream and labels go.
struct Point<'a> {
    start: u64,
    time: u64,
    attributes: &'a [KeyValue],
    flags: u32,
    /// A histogram point's min and max.
    extremes: (Option<f64>, Option<f64>),
}

fn read_metric(export: &mut Export, series: &Series<'_>, metric: &Metric, rules: &Rules<'_>) {
    let n = points_of(metric) as u64;
    let delta = |t: i32| t == AggregationTemporality::Delta as i32;
    let name = match (&metric.data, metric_of(&metric.name)) {
        (None, _) => return,
        (Some(Data::Summary(_)), _) => {
            return export.reject(
                n,
                "summary points (not stored: send histograms, or the quantiles as gauges)",
            );
        }
        (_, Err(reason)) => return export.reject(n, reason),
        (_, Ok(name)) => name,
    };
    match &metric.data {
        Some(Data::Gauge(gauge)) => {
            for p in &gauge.data_points {
                let value = value_of(p);
                read_value(export, series, &name, &point_of(p), value, rules);
            }
        }
        Some(Data::Sum(sum)) if delta(sum.aggregation_temporality) || !sum.is_monotonic => {
            for p in &sum.data_points {
                let value = value_of(p);
                read_value(export, series, &name, &point_of(p), value, rules);
            }
        }
        Some(Data::Sum(sum)) => {
            for p in &sum.data_points {
                let point = point_of(p);
                let value = value_of(p).and_then(|v| {
                    let current = Cumulative::Sum(v);
                    match cumulative(export, series, &name, &point, current, rules)? {
                        Cumulative::Sum(d) => Ok(d),
                        _ => Err("a sum point that is not a number"),
                    }
                });
                match value {
                    Err("") => {}
                    value => read_value(export, series, &name, &point, value, rules),
                }
            }
        }
        Some(Data::Histogram(h)) => {
            for p in &h.data_points {
                let point = Point {
                    start: p.start_time_unix_nano,
                    time: p.time_unix_nano,
                    attributes: &p.attributes,
                    flags: p.flags,
                    extremes: (p.min, p.max),
                };
                let counts = histograms::explicit(p);
                let is_delta = delta(h.aggregation_temporality);
                read_summary(export, series, &name, &point, counts, is_delta, rules);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                let point = Point {
                    start: p.start_time_unix_nano,
                    time: p.time_unix_nano,
                    attributes: &p.attributes,
                    flags: p.flags,
                    extremes: (p.min, p.max),
                };
                let counts = histograms::exponential(p);
                let is_delta = delta(h.aggregation_temporality);
                read_summary(export, series, &name, &point, counts, is_delta, rules);
            }
        }
        Some(Data::Summary(_)) | None => {}
    }
}

fn point_of(p: &NumberDataPoint) -> Point<'_> {
    Point {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        attributes: &p.attributes,
        flags: p.flags,
        extremes: (None, None),
    }
}

/// A cumulative point's increase since its stream's previous one (see `streams.rs`);
/// `Err("")` when there is nothing to store (already reported as left out).
fn cumulative(
    export: &mut Export,
    series: &Series<'_>,
    name: &MetricName,
    point: &Point<'_>,
    current: Cumulative,
    rules: &Rules<'_>,
) -> Result<Cumulative, &'static str> {
    if point.flags & NO_RECORDED_VALUE != 0 {
        return Err("");
    }
    let kind = match current {
        Cumulative::Sum(_) => 0u8,
        Cumulative::Buckets(_) => 1,
        Cumulative::Exponential(_) => 2,
    };
    let attributes: Vec<Vec<u8>> = point
        .attributes
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    let id = rules
        .streams
        .id_of((series.resource, name.as_str(), kind, attributes));
    match rules.streams.delta(
        id,
        (point.start, point.time),
        current,
        rules.now_ms,
        &mut export.updates,
    ) {
        Delta::Counted(delta) => Ok(delta),
        Delta::Left(reason) => {
            export.ignore(1, reason);
            Err("")
        }
        Delta::Refused(reason) => Err(reason),
    }
}

fn value_of(point: &NumberDataPoint) -> Result<f64, &'static str> {
    let value = match point.value {
        Some(Value::AsDouble(v)) => v,
        Some(Value::AsInt(v)) => v as f64,
        None => return Err("no value"),
    };
    if !value.is_finite() {
        return Err("a value that is not a finite number");
    }
    Ok(value)
}

/// Stores a point's value as a sample (or its reason for being refused).
fn read_value(
    export: &mut Export,
    series: &Series<'_>,
    name: &MetricName,
    point: &Point<'_>,
    value: Result<f64, &'static str>,
    rules: &Rules<'_>,
) {
    if point.flags & NO_RECORDED_VALUE != 0 {
        return;
    }
    if export.full(1) {
        return export.reject(
            1,
            format!(
                "points past {} samples in one request",
                plotq_domain::sample::MAX_BATCH
            ),
        );
    }
    match value.and_then(|v| sample_of(series.service, name, point, v, rules)) {
        Ok(sample) => export.samples.push(sample),
        Err(reason) => export.reject(1, reason),
    }
}

/// Merges a histogram point's counts into its minute's rollup: a delta point's as they
/// are, with its min and max; a cumulative point's increase since its stream's previous
/// point (its extremes are the whole stream's, so not used).
fn read_summary(
    export: &mut Export,
    series: &Series<'_>,
    name: &MetricName,
    point: &Point<'_>,
    counts: Result<Cumulative, &'static str>,
    is_delta: bool,
    rules: &Rules<'_>,
) {
    if point.flags & NO_RECORDED_VALUE != 0 {
        return;
    }
    let (counts, (min, max)) = match counts {
        Ok(counts) if is_delta => (Ok(counts), point.extremes),
        Ok(counts) => (
            cumulative(export, series, name, point, counts, rules),
            (None, None),
        ),
        Err(reason) => (Err(reason), (None, None)),
    };
    let counts = match counts {
        Err("") => return,
        Err(reason) => return export.reject(1, reason),
        Ok(counts) => counts,
    };
    if export.full(1) {
        return export.reject(
            1,
            format!(
                "points past {} samples in one request",
                plotq_domain::sample::MAX_BATCH
            ),
        );
    }
    let summary = timestamp_of(point.time, rules)
        .and_then(|t| Ok((t, labels_of(point.attributes)?)))
        .map(|(t, labels)| {
            histograms::rollup_of(&counts, min, max).map(|rollup| SeriesRollup {
                service: series.service.clone(),
                metric: name.clone(),
                labels,
                minute_ms: bucket_of(t),
                rollup,
            })
        });
    match summary {
        Ok(Some(summary)) => export.summaries.push(summary),
        // Nothing happened in the interval.
        Ok(None) => {}
        Err(reason) => export.reject(1, reason),
    }
}

fn sample_of(
    service: &ServiceName,
    metric: &MetricName,
    point: &Point<'_>,
    value: f64,
    rules: &Rules<'_>,
) -> Result<Sample, &'static str> {
    Ok(Sample {
        service: service.clone(),
        metric: metric.clone(),
        value,
        timestamp_ms: timestamp_of(point.time, rules)?,
        labels: labels_of(point.attributes)?,
    })
}

/// A point's attributes as labels (see the module docs).
fn labels_of(attributes: &[KeyValue]) -> Result<Labels, &'static str> {
    if attributes.is_empty() {
        return Ok(Labels::none());
    }
    if attributes.len() > MAX_LABELS {
        return Err("more than 8 attributes (plotq keeps at most 8 labels a sample)");
    }
    let mut pairs = Vec::with_capacity(attributes.len());
    for kv in attributes {
        let name: String = kv
            .key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            Some(any_value::Value::IntValue(i)) => i.to_string(),
            Some(any_value::Value::BoolValue(b)) => b.to_string(),
            _ => return Err("an attribute that is not a string, integer or boolean"),
        };
        pairs.push((name, value));
    }
    Labels::from_pairs(pairs).map_err(|_| {
        "attributes that are no labels (a name starting with a digit, twice after mapping, or a value empty, over 128 characters or with control characters)"
    })
}

/// How many data points a metric holds, of any kind.
fn points_of(metric: &Metric) -> usize {
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
