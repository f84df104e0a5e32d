//! The fuzz generator's OpenTelemetry requests: `POST /v1/traces` and `/v1/metrics`
//! with export requests built by `opentelemetry-proto`, as exporters build them — every
//! metric kind (gauges and sums of extreme values, delta and cumulative sums of known
//! and unknown start, explicit and exponential histograms with bounds and counts valid
//! or not, summaries), spans of every kind with random durations and status codes,
//! resources without or with bad `service.name`, label bombs (more attributes than 8,
//! long values) — in binary protobuf or the JSON mapping, gzip or not; and broken
//! bodies (truncated, random bytes, a wrong content type). A decodable export must be
//! answered `200` (its bad items counted in the partial success); every error must be a
//! `google.rpc.Status` (checked by [`check_status`]).

use super::{Expect, Gen, Req, Role, all_services, extreme};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use rand::Rng;
use reqwest::Method;
use std::io::Write;

/// `google.rpc.Status` as googleapis defines it (only what the check reads).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The problems of an answer on an OTLP path: a `200` is the export response in the
/// request's encoding; a 4xx or 5xx a `google.rpc.Status` with a code and a message.
pub(super) fn check_status(req: &Req, status: u16, content_type: &str, body: &[u8]) -> Vec<String> {
    let json = req
        .headers
        .iter()
        .any(|(k, v)| *k == "content-type" && v == "application/json");
    let mut problems = Vec::new();
    if status == 200 {
        let read = match (json, req.path.as_str()) {
            (true, _) => serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            (false, "/v1/traces") => ExportTraceServiceResponse::decode(body).is_ok(),
            (false, _) => ExportMetricsServiceResponse::decode(body).is_ok(),
        };
        if !read {
            problems.push("200 whose body is not an export response".to_owned());
        }
        return problems;
    }
    if status < 400 {
        return problems;
    }
    let (code, message) = if content_type.starts_with("application/json") && json {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        (
            v["code"].as_i64().unwrap_or(0) as i32,
            v["message"].as_str().unwrap_or("").to_owned(),
        )
    } else if content_type.starts_with("application/x-protobuf") && !json {
        match RpcStatus::decode(body) {
            Ok(s) => (s.code, s.message),
            Err(e) => {
                problems.push(format!("{status} Status does not decode: {e}"));
                return problems;
            }
        }
    } else {
        problems.push(format!(
            "{status} on an OTLP path with content-type {content_type:?}, not a google.rpc.Status in the request's encoding"
        ));
        return problems;
    };
    if code == 0 || message.is_empty() {
        problems.push(format!(
            "{status} Status with code {code} and message {message:?}"
        ));
    }
    problems
}

fn string(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

impl Gen {
    /// An OTLP export request (see the module docs).
    pub(super) fn otlp(&mut self) -> Req {
        let traces = self.chance(0.4);
        let path = if traces { "/v1/traces" } else { "/v1/metrics" };
        let json = self.chance(0.3);
        let (body, decodable) = match self.rng.random_range(0..20) {
            0 => (vec![0xff; self.rng.random_range(1..64)], false),
            1 => {
                let mut body = self.export(traces, json);
                body.truncate(body.len() / 2);
                (body, false)
            }
            _ => (self.export(traces, json), true),
        };
        let content_type = match self.rng.random_range(0..20) {
            0 => "text/plain",
            _ if json => "application/json",
            _ => "application/x-protobuf",
        };
        let expect = if !decodable {
            Expect::Any
        } else if content_type == "text/plain" {
            Expect::Rejected
        } else {
            Expect::Success
        };
        let req = Req::new("otlp", Role::Api, Method::POST, path, expect);
        if self.chance(0.3) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&body).expect("gzip in memory");
            let body = gz.finish().expect("gzip in memory");
            return req
                .header("content-encoding", "gzip")
                .body(Some(content_type), body);
        }
        req.body(Some(content_type), body)
    }

    fn export(&mut self, traces: bool, json: bool) -> Vec<u8> {
        let resources = self.rng.random_range(1..3);
        if traces {
            let request = ExportTraceServiceRequest {
                resource_spans: (0..resources)
                    .map(|_| ResourceSpans {
                        resource: self.resource(),
                        scope_spans: vec![ScopeSpans {
                            spans: (0..self.rng.random_range(0..40))
                                .map(|_| self.span())
                                .collect(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
            };
            return if json {
                serde_json::to_vec(&request).expect("the JSON mapping")
            } else {
                request.encode_to_vec()
            };
        }
        let request = ExportMetricsServiceRequest {
            resource_metrics: (0..resources)
                .map(|_| ResourceMetrics {
                    resource: self.resource(),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: (0..self.rng.random_range(0..6))
                            .map(|_| self.metric())
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        };
        if json {
            serde_json::to_vec(&request).expect("the JSON mapping")
        } else {
            request.encode_to_vec()
        }
    }

    fn resource(&mut self) -> Option<Resource> {
        let service = match self.rng.random_range(0..12) {
            0 => return None,
            1 => "bad service!".to_owned(),
            2 => "s".repeat(300),
            _ => self.pick(&all_services()).to_owned(),
        };
        Some(Resource {
            attributes: vec![string("service.name", service)],
            ..Default::default()
        })
    }

    /// Nanoseconds: mostly within the last hour, sometimes zero, far ahead or ancient.
    fn nanos(&mut self) -> u64 {
        let now = super::now_ms() as u64 * 1_000_000;
        match self.rng.random_range(0..20) {
            0 => 0,
            1 => now + 3_600_000_000_000,
            2 => 1_000_000,
            3 => u64::MAX,
            _ => now - self.rng.random_range(0..3_600_000_000_000u64),
        }
    }

    fn attributes(&mut self) -> Vec<KeyValue> {
        let n = match self.rng.random_range(0..10) {
            0 => self.rng.random_range(9..40), // a label bomb
            _ => self.rng.random_range(0..4),
        };
        (0..n)
            .map(|i| {
                let value = match self.rng.random_range(0..15) {
                    0 => "v".repeat(200),
                    1 => String::new(),
                    2 => "\u{7}bell".to_owned(),
                    _ => self.pick(&["eu", "us", "/pay", "/cart", "GET"]).to_owned(),
                };
                let key = match self.rng.random_range(0..10) {
                    0 => "9digit".to_owned(),
                    1 => "http.route".to_owned(),
                    _ => format!("k{i}"),
                };
                string(&key, value)
            })
            .collect()
    }

    fn span(&mut self) -> Span {
        let end = self.nanos();
        let start = end.saturating_sub(self.rng.random_range(0..10_000_000_000u64));
        let mut attributes = self.attributes();
        if self.chance(0.8) {
            let code = self.pick(&[200i64, 201, 404, 500, 503, 0, 999, -1]);
            attributes.push(KeyValue {
                key: "http.response.status_code".to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(code)),
                }),
                ..Default::default()
            });
        }
        Span {
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            name: self.pick(&["GET /pay", "", "render"]).to_owned(),
            kind: self.rng.random_range(0..7),
            start_time_unix_nano: if self.chance(0.05) {
                end.saturating_add(5)
            } else {
                start
            },
            end_time_unix_nano: end,
            attributes,
            ..Default::default()
        }
    }

    fn number(&mut self) -> NumberDataPoint {
        let value = if self.chance(0.5) {
            number_data_point::Value::AsDouble(self.pick(extreme()))
        } else {
            number_data_point::Value::AsInt(self.rng.random_range(-1_000..1_000_000))
        };
        NumberDataPoint {
            start_time_unix_nano: if self.chance(0.5) { 0 } else { self.nanos() },
            time_unix_nano: self.nanos(),
            value: self.chance(0.95).then_some(value),
            attributes: self.attributes(),
            flags: u32::from(self.chance(0.05)),
            ..Default::default()
        }
    }

    fn counts(&mut self, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| match self.rng.random_range(0..10) {
                0 => u64::MAX / 4,
                1..4 => 0,
                _ => self.rng.random_range(1..1_000),
            })
            .collect()
    }

    fn metric(&mut self) -> Metric {
        let temporality = self.rng.random_range(0..3);
        let name = self.pick(&["payload_kb", "queue.depth", "bad name!", "orders", ""]);
        let data = match self.rng.random_range(0..6) {
            0 => metric::Data::Gauge(Gauge {
                data_points: (0..self.rng.random_range(0..5))
                    .map(|_| self.number())
                    .collect(),
            }),
            1 => metric::Data::Sum(Sum {
                data_points: (0..self.rng.random_range(0..5))
                    .map(|_| self.number())
                    .collect(),
                aggregation_temporality: temporality,
                is_monotonic: self.chance(0.7),
            }),
            2 => {
                let n = self.rng.random_range(0..12);
                let mut bounds: Vec<f64> = (0..n).map(|_| self.pick(extreme())).collect();
                if self.chance(0.8) {
                    bounds.sort_by(f64::total_cmp);
                    bounds.dedup();
                }
                let n = bounds.len() + usize::from(self.chance(0.9));
                let counts = self.counts(n);
                let count = counts.iter().fold(0u64, |a, n| a.saturating_add(*n));
                metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        start_time_unix_nano: self.nanos(),
                        time_unix_nano: self.nanos(),
                        count: if self.chance(0.9) {
                            count
                        } else {
                            count.saturating_add(1)
                        },
                        sum: self.chance(0.8).then(|| self.pick(extreme())),
                        bucket_counts: counts,
                        explicit_bounds: bounds,
                        min: self.chance(0.5).then(|| self.pick(extreme())),
                        max: self.chance(0.5).then(|| self.pick(extreme())),
                        attributes: self.attributes(),
                        ..Default::default()
                    }],
                    aggregation_temporality: temporality,
                })
            }
            3 => {
                let n = self.rng.random_range(0..50);
                let counts = self.counts(n);
                let zero: u64 = self.rng.random_range(0..3);
                let count = counts.iter().fold(zero, |a, n| a.saturating_add(*n));
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        start_time_unix_nano: self.nanos(),
                        time_unix_nano: self.nanos(),
                        count,
                        sum: self.chance(0.8).then(|| self.pick(extreme())),
                        scale: self.rng.random_range(-12..24),
                        zero_count: zero,
                        positive: Some(Buckets {
                            offset: self.pick(&[0, -1_000, 1_000, i32::MAX, i32::MIN, 5]),
                            bucket_counts: counts,
                        }),
                        attributes: self.attributes(),
                        ..Default::default()
                    }],
                    aggregation_temporality: temporality,
                })
            }
            4 => metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: self.nanos(),
                    count: 3,
                    ..Default::default()
                }],
            }),
            _ => return Metric::default(),
        };
        Metric {
            name: name.to_owned(),
            data: Some(data),
            ..Default::default()
        }
    }
}
