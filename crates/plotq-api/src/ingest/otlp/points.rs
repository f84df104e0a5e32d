//! Metric data points into samples, one sample per point, the metric named as the
//! exporter names it (when it fits plotq's name syntax), at the point's time:
//! a Gauge's value; a Sum's value when its temporality is delta (what happened in the
//! point's interval) or when it is not monotonic (an up-down counter's cumulative value
//! is a level, like a gauge's). Cumulative monotonic sums and the histogram kinds are
//! refused with a message saying what to change, never taken and dropped: turning them
//! into samples needs per-stream state and rollup merges plotq does not have yet.
//!
//! A point's attributes are its sample's labels: each name with every character outside
//! `[A-Za-z0-9_]` made `_` (`http.route` → `http_route`), string, integer and boolean
//! values as text. A point with more than 8 attributes, or one that is no label value, is
//! refused with the reason (never stored without them).

use super::export::{Export, Rules, metric_of, service_of, timestamp_of};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, NumberDataPoint};
use plotq_domain::labels::MAX_LABELS;
use plotq_domain::{Labels, MetricName, Sample, ServiceName};

/// A data point's flag: no value was recorded in its interval.
const NO_RECORDED_VALUE: u32 = 1;

/// The samples of every gauge and delta (or non-monotonic) sum point of `request`.
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
        for metric in metrics {
            read_metric(&mut export, &service, metric, rules);
        }
    }
    export
}

fn read_metric(export: &mut Export, service: &ServiceName, metric: &Metric, rules: &Rules<'_>) {
    let n = points_of(metric) as u64;
    let points = match &metric.data {
        Some(Data::Gauge(gauge)) => &gauge.data_points,
        Some(Data::Sum(sum))
            if sum.aggregation_temporality == AggregationTemporality::Delta as i32
                || !sum.is_monotonic =>
        {
            &sum.data_points
        }
        Some(Data::Sum(_)) => {
            return export.reject(
                n,
                "points of cumulative monotonic sums (not stored yet: set the exporter's temporality preference to delta)",
            );
        }
        Some(Data::Histogram(_) | Data::ExponentialHistogram(_) | Data::Summary(_)) => {
            return export.reject(
                n,
                "histogram and summary points (not stored yet: send the requests as spans, or their values as gauges)",
            );
        }
        None => return,
    };
    let name = match metric_of(&metric.name) {
        Ok(name) => name,
        Err(reason) => return export.reject(n, reason),
    };
    for point in points {
        if point.flags & NO_RECORDED_VALUE != 0 {
            continue;
        }
        if export.full(1) {
            export.reject(
                1,
                format!(
                    "points past {} samples in one request",
                    plotq_domain::sample::MAX_BATCH
                ),
            );
            continue;
        }
        match sample_of(service, &name, point, rules) {
            Ok(sample) => export.samples.push(sample),
            Err(reason) => export.reject(1, reason),
        }
    }
}

fn sample_of(
    service: &ServiceName,
    metric: &MetricName,
    point: &NumberDataPoint,
    rules: &Rules<'_>,
) -> Result<Sample, &'static str> {
    let value = match point.value {
        Some(Value::AsDouble(v)) => v,
        Some(Value::AsInt(v)) => v as f64,
        None => return Err("no value"),
    };
    if !value.is_finite() {
        return Err("a value that is not a finite number");
    }
    Ok(Sample {
        service: service.clone(),
        metric: metric.clone(),
        value,
        timestamp_ms: timestamp_of(point.time_unix_nano, rules)?,
        labels: labels_of(&point.attributes)?,
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
