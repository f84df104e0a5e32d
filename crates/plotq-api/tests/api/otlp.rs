//! `POST /v1/traces` and `POST /v1/metrics` (OTLP/HTTP): spans counted as requests
//! (latency and status samples), gauge and delta-sum points as samples, in both
//! encodings, gzip or not; what is not stored counted in the partial success with its
//! reason (another tenant's service, times out of bounds, spans that are not requests,
//! metric kinds not stored yet); every error (not OTLP, no token, over a limit, the
//! store down, and the edge's own) answered as a `google.rpc.Status` in the request's
//! encoding. Protobuf messages are built with `opentelemetry-proto`, as exporters do.

use crate::helpers::{Tokens, app, build};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;
use std::io::Write;

pub(crate) fn now_ns() -> u64 {
    plotq_ports::clock::now_ms() as u64 * 1_000_000
}

pub(crate) fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn resource(service: &str) -> Option<Resource> {
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

pub(crate) fn number(value: f64, at_ns: u64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: at_ns,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

pub(crate) fn metric_of(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(data),
        ..Default::default()
    }
}

/// `google.rpc.Status`, `google.protobuf.Any` and `google.rpc.ErrorInfo` as googleapis
/// define them, restated here (not the api's own types) to read its error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(btree_map = "string, string", tag = "3")]
    metadata: std::collections::BTreeMap<String, String>,
}

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// An OTLP error answer read back: the Status' code and message, its one ErrorInfo.
#[derive(Debug)]
struct Refusal {
    code: i32,
    message: String,
    info: RpcErrorInfo,
}

/// The Status of an error answer, in the encoding its content type names (checked to
/// be `json`'s: the request's), with exactly one ErrorInfo of domain `plotq.dev`.
fn refusal(answer: &crate::helpers::Answer, json: bool) -> Refusal {
    let content_type = answer.headers["content-type"].to_str().unwrap();
    let refusal = if json {
        assert_eq!(content_type, "application/json");
        let body = answer.json();
        let details = body["details"].as_array().expect("details");
        assert_eq!(details.len(), 1, "{body}");
        assert_eq!(details[0]["@type"], ERROR_INFO, "{body}");
        Refusal {
            code: body["code"].as_i64().expect("a code") as i32,
            message: body["message"].as_str().expect("a message").to_owned(),
            info: RpcErrorInfo {
                reason: details[0]["reason"].as_str().unwrap().to_owned(),
                domain: details[0]["domain"].as_str().unwrap().to_owned(),
                metadata: serde_json::from_value(details[0]["metadata"].clone()).unwrap(),
            },
        }
    } else {
        assert_eq!(content_type, "application/x-protobuf");
        let status = RpcStatus::decode(&answer.bytes[..]).expect("a google.rpc.Status");
        assert_eq!(status.details.len(), 1, "{status:?}");
        assert_eq!(status.details[0].type_url, ERROR_INFO);
        Refusal {
            code: status.code,
            message: status.message,
            info: RpcErrorInfo::decode(&status.details[0].value[..]).expect("an ErrorInfo"),
        }
    };
    assert!(!refusal.message.is_empty(), "{refusal:?}");
    assert_eq!(refusal.info.domain, "plotq.dev");
    refusal
}

/// `(answer, json)`'s gRPC code and reason.
fn code_and_reason(answer: &crate::helpers::Answer, json: bool) -> (i32, String) {
    let r = refusal(answer, json);
    (r.code, r.info.reason)
}

#[tokio::test]
async fn every_error_is_a_google_rpc_status_in_the_request_encoding() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).max_body(64 * 1024).start();
    let post = |path: &'static str| app.post(path).token(Some(&tokens.ingest));
    let mut truncated =
        traces(vec![("a", vec![span(SpanKind::Server, 1, Some(200))])]).encode_to_vec();
    truncated.truncate(truncated.len() - 3);
    let cases = [
        // (what, the call, its status, gRPC code and reason; true: JSON)
        (
            "another content type",
            post("/v1/traces")
                .header("content-type", "text/plain")
                .body("x"),
            415,
            3,
            "unsupported_media_type",
            false,
        ),
        (
            "no content type",
            post("/v1/metrics").without("content-type").body("x"),
            415,
            3,
            "unsupported_media_type",
            false,
        ),
        (
            "a truncated message",
            post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .body(truncated),
            400,
            3,
            "unreadable_body",
            false,
        ),
        (
            "not the JSON mapping",
            post("/v1/metrics").body("{\"resourceMetrics\": 3}"),
            400,
            3,
            "malformed_json",
            true,
        ),
        (
            "a gzip bomb inflating past the body limit",
            post("/v1/metrics")
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(gzip(&vec![0u8; 4 * 1024 * 1024])),
            413,
            8,
            "body_too_large",
            false,
        ),
        (
            "JSON over the body limit",
            post("/v1/traces").body(format!("[\"{}\"]", "x".repeat(70_000))),
            413,
            8,
            "body_too_large",
            true,
        ),
        (
            "no token",
            app.post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .body(vec![]),
            401,
            16,
            "unauthorized",
            false,
        ),
        (
            "no token, JSON",
            app.post("/v1/traces").body("{}"),
            401,
            16,
            "unauthorized",
            true,
        ),
        (
            "a token without the ingest scope",
            app.post("/v1/metrics")
                .token(Some(&tokens.reader))
                .header("content-type", "application/x-protobuf")
                .body(vec![]),
            403,
            7,
            "forbidden",
            false,
        ),
        // The edge's own answers (outside the routes) are Statuses too.
        (
            "a write from another site's page",
            post("/v1/traces")
                .header("origin", "https://evil.example")
                .body("{}"),
            403,
            7,
            "origin_not_allowed",
            true,
        ),
        (
            "a method other than POST",
            app.get("/v1/traces").token(Some(&tokens.ingest)),
            405,
            12,
            "method_not_allowed",
            false,
        ),
    ];
    for (what, call, status, code, reason, json) in cases {
        let answer = call.send().await;
        assert_eq!(answer.status.as_u16(), status, "{what}");
        assert_eq!(
            code_and_reason(&answer, json),
            (code, reason.to_owned()),
            "{what}"
        );
    }
    // Other paths still answer problem+json.
    let answer = app.post("/api/v1/metrics").json(&json!([])).send().await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    assert!(app.stored("a", "latency_ms").await.is_empty());
}

#[tokio::test]
async fn a_refused_export_names_its_fields_and_when_to_retry() {
    // One label set per series: a span of another status is a second one.
    let app = build()
        .limits(plotq_http::LimitsConfig {
            label_sets_per_series: 1,
            ..plotq_http::LimitsConfig::default()
        })
        .start();
    let request = traces(vec![(
        "checkout",
        vec![
            span(SpanKind::Server, 10, Some(200)),
            span(SpanKind::Server, 20, Some(503)),
        ],
    )])
    .encode_to_vec();
    let answer = app
        .post("/v1/traces")
        .header("content-type", "application/x-protobuf")
        .body(request)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refusal(&answer, false);
    assert_eq!(refused.code, 3);
    assert_eq!(refused.info.reason, "too_many_label_sets");
    let metadata = &refused.info.metadata;
    assert!(metadata["field_0"].ends_with("/labels"), "{metadata:?}");
    assert!(!metadata["problem_0"].is_empty(), "{metadata:?}");
    assert!(
        !metadata.contains_key("retry_after_seconds"),
        "{metadata:?}"
    );
    assert!(app.stored("checkout", "latency_ms").await.is_empty());

    // Over the caller's rate (a burst of one sample): `429` with `Retry-After`, in both
    // encodings; the store down: `503` with `Retry-After`.
    let app = build()
        .limits(plotq_http::LimitsConfig {
            ingest_samples_per_sec: 1,
            ingest_burst: 1,
            ..plotq_http::LimitsConfig::default()
        })
        .start();
    let one = traces(vec![(
        "checkout",
        vec![span(SpanKind::Server, 10, Some(200))],
    )]);
    let end = now_ns() - 1_000_000_000;
    let one_json = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "POST /pay",
            "kind": 2,
            "startTimeUnixNano": (end - 1_000_000).to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "201"}}]
        }]}]
    }]});
    for json in [false, true] {
        let call = app.post("/v1/traces");
        let call = if json {
            call.json(&one_json)
        } else {
            call.header("content-type", "application/x-protobuf")
                .body(one.encode_to_vec())
        };
        let answer = call.send().await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "json {json}");
        let retry_after = answer.headers["retry-after"].to_str().unwrap().to_owned();
        let refused = refusal(&answer, json);
        assert_eq!(
            (refused.code, refused.info.reason.as_str()),
            (8, "rate_limited")
        );
        assert_eq!(refused.info.metadata["retry_after_seconds"], retry_after);
    }

    let app = app_with_store_down();
    let answer = app
        .post("/v1/metrics")
        .header("content-type", "application/x-protobuf")
        .body(gauge_export().encode_to_vec())
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let refused = refusal(&answer, false);
    assert_eq!(
        (refused.code, refused.info.reason.as_str()),
        (14, "dependency_unavailable")
    );
    assert_eq!(
        refused.info.metadata["retry_after_seconds"],
        answer.headers["retry-after"].to_str().unwrap()
    );
}

fn app_with_store_down() -> crate::helpers::App {
    let app = app();
    app.store.always(
        "insert",
        plotq_ports::faulty::Fault::Fail(plotq_ports::PortError::unavailable(
            "mongodb",
            "connection refused",
        )),
    );
    app
}

/// One gauge point of `checkout`'s `queue.depth`, a second ago.
fn gauge_export() -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric_of(
                    "queue.depth",
                    metric::Data::Gauge(Gauge {
                        data_points: vec![number(3.0, now_ns() - 1_000_000_000)],
                    }),
                )],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn the_otlp_routes_are_documented_with_both_encodings() {
    for path in ["/v1/traces", "/v1/metrics"] {
        let (op, _) = crate::helpers::documented(path, "post");
        let content = &op["requestBody"]["content"];
        for encoding in ["application/x-protobuf", "application/json"] {
            assert!(content.get(encoding).is_some(), "{path}: {content}");
        }
        // Every error answer: a google.rpc.Status, binary or in its JSON mapping.
        for status in [
            "400", "401", "403", "413", "415", "422", "429", "503", "507",
        ] {
            let response = &op["responses"][status];
            let content = response["content"].as_object().expect(status);
            let mut types: Vec<&str> = content.keys().map(String::as_str).collect();
            types.sort_unstable();
            assert_eq!(
                types,
                ["application/json", "application/x-protobuf"],
                "{path} {status}"
            );
            assert_eq!(
                content["application/json"]["schema"]["$ref"],
                "#/components/schemas/OtlpStatusDoc"
            );
            let retry = response["headers"].get("retry-after").is_some();
            assert_eq!(
                retry,
                ["429", "503", "507"].contains(&status),
                "{path} {status}"
            );
        }
    }
    let (_, doc) = crate::helpers::documented("/v1/traces", "post");
    let info = &doc["components"]["schemas"]["OtlpErrorInfoDoc"];
    assert_eq!(
        info["properties"]["reason"]["$ref"],
        "#/components/schemas/ProblemCode"
    );
    assert!(info["properties"]["@type"].is_object(), "{info}");
}
