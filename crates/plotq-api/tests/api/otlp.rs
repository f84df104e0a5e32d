//! `POST /v1/traces` and `POST /v1/metrics` (OTLP/HTTP): spans counted as requests
//! (latency and status samples), gauge and delta-sum points as samples, in both
//! encodings, gzip or not; what is not stored counted in the partial success with its
//! reason (another tenant's service, times out of bounds, spans that are not requests,
//! metric kinds not stored yet); bodies that are not OTLP refused with the edge's
//! problems. Protobuf messages are built with `opentelemetry-proto`, as exporters do.

use crate::helpers::{Tokens, app, build};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;
use std::io::Write;

fn now_ns() -> u64 {
    plotq_ports::clock::now_ms() as u64 * 1_000_000
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![attribute(
            "service.name",
            any_value::Value::StringValue(service.to_owned()),
        )],
        ..Default::default()
    })
}

/// A span of `kind` that took `ms`, ended a second ago, with an HTTP `status`.
fn span(kind: SpanKind, ms: u64, status: Option<i64>) -> Span {
    let end = now_ns() - 1_000_000_000;
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "GET /pay".to_owned(),
        kind: kind as i32,
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes: status
            .map(|s| {
                vec![attribute(
                    "http.response.status_code",
                    any_value::Value::IntValue(s),
                )]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn traces(resources: Vec<(&str, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn server_spans_become_request_samples_and_the_rest_is_accounted_for() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let mut future = span(SpanKind::Server, 5, Some(200));
    future.end_time_unix_nano = now_ns() + 3_600 * 1_000_000_000;
    future.start_time_unix_nano = future.end_time_unix_nano - 1_000_000;
    let request = traces(vec![
        (
            "team-a-pay",
            vec![
                span(SpanKind::Server, 10, Some(200)),
                span(SpanKind::Server, 20, Some(200)),
                span(SpanKind::Consumer, 30, None),
                span(SpanKind::Server, 40, Some(503)),
                span(SpanKind::Client, 50, Some(200)),
                span(SpanKind::Internal, 60, None),
                future,
            ],
        ),
        // Another tenant's service: refused, the rest stored all the same.
        ("team-b-pay", vec![span(SpanKind::Server, 70, Some(200))]),
    ]);
    let answer = app
        .post("/v1/traces")
        .token(Some(&tokens.tenant))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(gzip(&request.encode_to_vec()))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/x-protobuf");
    let response = ExportTraceServiceResponse::decode(&answer.bytes[..]).unwrap();
    let partial = response.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 2, "{}", partial.error_message);
    for reason in [
        "future",
        "team-b-pay is not allowed",
        "not SERVER or CONSUMER",
    ] {
        assert!(
            partial.error_message.contains(reason),
            "{}",
            partial.error_message
        );
    }
    assert_eq!(
        app.stored("team-a-pay", "latency_ms").await,
        [10.0, 20.0, 30.0, 40.0]
    );
    assert_eq!(
        app.stored("team-a-pay", "status_code").await,
        [200.0, 200.0, 503.0]
    );
    assert!(app.stored("team-b-pay", "latency_ms").await.is_empty());
}

#[tokio::test]
async fn the_json_mapping_is_read_and_answered_in_json() {
    let app = app();
    let end = now_ns() - 1_000_000_000;
    // As an exporter writes it: hex ids, nanoseconds as strings, the kind as a number.
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "POST /pay",
            "kind": 2,
            "startTimeUnixNano": (end - 12_500_000).to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "201"}}]
        }]}]
    }]});
    let answer = app.post("/v1/traces").json(&body).send().await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json());
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.json(), json!({}));
    assert_eq!(app.stored("checkout", "latency_ms").await, [12.5]);
    assert_eq!(app.stored("checkout", "status_code").await, [201.0]);
}

fn number(value: f64, at_ns: u64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: at_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn metric_of(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(data),
        ..Default::default()
    }
}

#[tokio::test]
async fn gauge_and_delta_sum_points_are_stored_and_the_other_kinds_refused_saying_why() {
    let app = app();
    let at = now_ns() - 1_000_000_000;
    let sum = |temporality: AggregationTemporality, monotonic: bool, v: f64| {
        metric::Data::Sum(Sum {
            data_points: vec![number(v, at)],
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        })
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric_of(
                        "queue.depth",
                        metric::Data::Gauge(Gauge {
                            data_points: vec![number(3.0, at), number(5.0, at)],
                        }),
                    ),
                    metric_of("orders", sum(AggregationTemporality::Delta, true, 7.0)),
                    metric_of(
                        "inflight",
                        sum(AggregationTemporality::Cumulative, false, 2.0),
                    ),
                    metric_of(
                        "orders.total",
                        sum(AggregationTemporality::Cumulative, true, 99.0),
                    ),
                    metric_of(
                        "http.server.request.duration",
                        metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: at,
                                count: 3,
                                ..Default::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                        }),
                    ),
                    metric_of(
                        "bad name!",
                        metric::Data::Gauge(Gauge {
                            data_points: vec![number(1.0, at)],
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let answer = app
        .post("/v1/metrics")
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let partial = ExportMetricsServiceResponse::decode(&answer.bytes[..])
        .unwrap()
        .partial_success
        .expect("a partial success");
    assert_eq!(partial.rejected_data_points, 3, "{}", partial.error_message);
    for reason in ["cumulative monotonic", "histogram", "bad name!"] {
        assert!(
            partial.error_message.contains(reason),
            "{}",
            partial.error_message
        );
    }
    assert_eq!(app.stored("checkout", "queue.depth").await, [3.0, 5.0]);
    assert_eq!(app.stored("checkout", "orders").await, [7.0]);
    assert_eq!(app.stored("checkout", "inflight").await, [2.0]);
    assert!(app.stored("checkout", "orders.total").await.is_empty());
}

#[tokio::test]
async fn bodies_that_are_not_otlp_are_refused_with_the_edge_problems() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).max_body(64 * 1024).start();
    let post = |path: &'static str| app.post(path).token(Some(&tokens.ingest));
    for (path, content_type, body, status) in [
        (
            "/v1/traces",
            "text/plain",
            b"x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "/v1/traces",
            "application/x-protobuf",
            vec![0xff; 16],
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/metrics",
            "application/json",
            b"{\"resourceMetrics\": 3}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        // A gzip bomb inflating past the body limit.
        (
            "/v1/metrics",
            "application/x-protobuf",
            gzip(&vec![0u8; 4 * 1024 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let call = post(path).header("content-type", content_type);
        let call = if path == "/v1/metrics" && status == StatusCode::PAYLOAD_TOO_LARGE {
            call.header("content-encoding", "gzip")
        } else {
            call
        };
        let answer = call.body(body).send().await;
        assert_eq!(
            answer.status,
            status,
            "{path} {content_type}: {:?}",
            answer.json()
        );
    }
    // No token, or a token without the ingest scope.
    let request = traces(vec![("a", vec![span(SpanKind::Server, 1, None)])]).encode_to_vec();
    for (token, status) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(&tokens.reader), StatusCode::FORBIDDEN),
    ] {
        let answer = app
            .post("/v1/traces")
            .token(token.map(String::as_str))
            .header("content-type", "application/x-protobuf")
            .body(request.clone())
            .send()
            .await;
        assert_eq!(answer.status, status);
    }
    assert!(app.stored("a", "latency_ms").await.is_empty());
}

#[tokio::test]
async fn the_otlp_routes_are_documented_with_both_encodings() {
    for path in ["/v1/traces", "/v1/metrics"] {
        let (op, _) = crate::helpers::documented(path, "post");
        let content = &op["requestBody"]["content"];
        for encoding in ["application/x-protobuf", "application/json"] {
            assert!(content.get(encoding).is_some(), "{path}: {content}");
        }
        assert!(op["responses"].get("429").is_some() && op["responses"].get("503").is_some());
    }
}
