//! Spans into samples. A span of kind SERVER or CONSUMER is one request handled by its
//! resource's service, represented exactly as the JSON ingest represents a request: its
//! duration as `latency_ms` and, when it carries an HTTP status
//! (`http.response.status_code`, or the older `http.status_code`), that code as
//! `status_code` (what the status and error-rate kinds read), both at the span's end.
//! Both samples carry the labels `route` (`http.route`, else the span's name), `method`
//! (`http.request.method`, or the older `http.method`) and `status` (the code), each
//! only where the span has it; a value that is no label value (empty, control
//! characters) is left out, a longer one cut to the limit. Other attributes are not
//! stored. Other kinds (INTERNAL, CLIENT, PRODUCER) are not requests of the service: they
//! are left out and said so in the answer's message, not counted as rejected.

use super::export::{Export, Rules, int_attribute, service_of, string_attribute, timestamp_of};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use plotq_domain::labels::{MAX_LABEL_VALUE_LEN, check_label_value};
use plotq_domain::plot::{DEFAULT_METRIC, DEFAULT_STATUS_METRIC};
use plotq_domain::{Labels, MetricName, Sample, ServiceName};

/// The samples of every request span of `request`.
pub(crate) fn read_spans(request: &ExportTraceServiceRequest, rules: &Rules<'_>) -> Export {
    let latency = MetricName::parse(DEFAULT_METRIC).expect("a valid name");
    let status = MetricName::parse(DEFAULT_STATUS_METRIC).expect("a valid name");
    let mut export = Export::default();
    let mut sets = LabelSets::default();
    for resource_spans in &request.resource_spans {
        let spans = resource_spans.scope_spans.iter().flat_map(|s| &s.spans);
        let service = match service_of(resource_spans.resource.as_ref(), rules) {
            Ok(service) => service,
            Err(reason) => {
                export.reject(spans.count() as u64, reason);
                continue;
            }
        };
        for span in spans {
            match request_of(span, rules) {
                Ok(None) => export.ignore(1, "spans that are not SERVER or CONSUMER (not stored)"),
                Ok(Some(_)) if export.full(2) => export.reject(
                    1,
                    format!(
                        "past {} samples in one request (lower the exporter's batch size)",
                        plotq_domain::sample::MAX_BATCH
                    ),
                ),
                Ok(Some((at, latency_ms, code))) => {
                    let labels = sets.of(span, code);
                    push(&mut export, &service, &latency, latency_ms, at, &labels);
                    if let Some(code) = code {
                        push(&mut export, &service, &status, f64::from(code), at, &labels);
                    }
                }
                Err(reason) => export.reject(1, reason),
            }
        }
    }
    export
}

fn push(
    export: &mut Export,
    service: &ServiceName,
    metric: &MetricName,
    value: f64,
    at: i64,
    labels: &Labels,
) {
    export.samples.push(Sample {
        service: service.clone(),
        metric: metric.clone(),
        value,
        timestamp_ms: at,
        labels: labels.clone(),
    });
}

/// The label sets of one export's spans, each built once: an export usually repeats a
/// few routes, methods and codes (up to 64 sets remembered; past them, built each time).
#[derive(Default)]
struct LabelSets(Vec<(Request, Labels)>);

/// What a request span's labels are made of: its route, method and status.
type Request = (String, Option<String>, Option<u16>);

impl LabelSets {
    /// A request span's labels: `route`, `method`, `status` where it has them.
    fn of(&mut self, span: &Span, code: Option<u16>) -> Labels {
        let route = string_attribute(&span.attributes, &["http.route"]).unwrap_or(&span.name);
        let method = string_attribute(&span.attributes, &["http.request.method", "http.method"]);
        let known = self
            .0
            .iter()
            .find(|((r, m, c), _)| r.as_str() == route && m.as_deref() == method && *c == code);
        if let Some((_, labels)) = known {
            return labels.clone();
        }
        let labels = labels_of(route, method, code);
        if self.0.len() < 64 {
            let key = (route.to_owned(), method.map(str::to_owned), code);
            self.0.push((key, labels.clone()));
        }
        labels
    }
}

/// The label set of a request with this route, method and status.
fn labels_of(route: &str, method: Option<&str>, code: Option<u16>) -> Labels {
    let code = code.map(|c| c.to_string());
    let pairs = [
        ("route", Some(route)),
        ("method", method),
        ("status", code.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        let value: String = value?.chars().take(MAX_LABEL_VALUE_LEN).collect();
        check_label_value(&value).ok().map(|()| (name, value))
    });
    // Three distinct, valid names and checked values: always a label set.
    Labels::from_pairs(pairs).unwrap_or_default()
}

/// A request span's end (epoch ms), duration (ms) and HTTP status; `None` for spans
/// that are not requests.
#[allow(clippy::type_complexity)] // reason: one private tuple, named at its only use
fn request_of(
    span: &Span,
    rules: &Rules<'_>,
) -> Result<Option<(i64, f64, Option<u16>)>, &'static str> {
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    if !matches!(kind, SpanKind::Server | SpanKind::Consumer) {
        return Ok(None);
    }
    let at = timestamp_of(span.end_time_unix_nano, rules)?;
    if span.start_time_unix_nano == 0 || span.start_time_unix_nano > span.end_time_unix_nano {
        return Err("no start, or a start after the end");
    }
    let latency_ms = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6;
    let code = int_attribute(
        &span.attributes,
        &["http.response.status_code", "http.status_code"],
    )
    .map(|code| {
        u16::try_from(code)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or("an HTTP status code outside 100 to 599")
    })
    .transpose()?;
    Ok(Some((at, latency_ms, code)))
}
