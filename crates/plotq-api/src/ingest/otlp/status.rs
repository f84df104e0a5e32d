//! The error answers of the OTLP/HTTP paths: a `google.rpc.Status`, as the OTLP
//! specification asks of every `4xx`/`5xx` to an export, instead of problem+json.
//!
//! It owns the two messages (`google.rpc.Status` and `google.rpc.ErrorInfo`, with
//! `google.protobuf.Any`, derived with prost), the mapping of a problem answer onto
//! them ([`otlp_statuses`], a layer over the hardened router, so that the edge's own
//! answers on these paths are mapped too), the HTTP-to-gRPC code table
//! ([`grpc_code`]), and how the OpenAPI document describes these answers
//! ([`OtlpErrors`], [`OtlpStatusDoc`]).
//!
//! Nothing of a problem is lost: its `detail` is the Status' `message`; its `code`, its
//! fields at fault and its `Retry-After` are one `ErrorInfo` (see [`error_info`]). The
//! HTTP status and headers (`Retry-After` on `429`/`503`/`507`) stay as they were.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::response::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use plotq_http::{ProblemCode, ProblemNote};
use prost::Message;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{OpenApi, PartialSchema, ToSchema};

/// The paths whose errors are Statuses.
pub(crate) const PATHS: [&str; 2] = ["/v1/traces", "/v1/metrics"];
/// `ErrorInfo.domain`.
pub(crate) const DOMAIN: &str = "plotq.dev";
/// The `Any` type URL (and JSON `@type`) of an `ErrorInfo`.
pub(crate) const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// Longest problem body read to map it (they are a few hundred bytes; a longer one is
/// mapped from its `ProblemNote`).
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// `google.rpc.Status` (googleapis `google/rpc/status.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Status {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any` (prost-types is not in the build; two fields are all it is).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.ErrorInfo` (googleapis `google/rpc/error_details.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(btree_map = "string, string", tag = "3")]
    pub metadata: BTreeMap<String, String>,
}

/// The gRPC code (`google.rpc.Code`: number and name) of an HTTP error status, after
/// the HTTP mapping `google/rpc/code.proto` gives each code:
///
/// | HTTP | gRPC | on these paths |
/// |---|---|---|
/// | 400 | `INVALID_ARGUMENT` (3) | not an OTLP message, broken gzip |
/// | 401 | `UNAUTHENTICATED` (16) | no or an unknown token |
/// | 403 | `PERMISSION_DENIED` (7) | no `ingest` scope; the edge's foreign `Origin` or `Host` |
/// | 404 | `NOT_FOUND` (5) | (a role without these routes) |
/// | 405 | `UNIMPLEMENTED` (12) | a method other than POST |
/// | 413 | `RESOURCE_EXHAUSTED` (8) | body over the limit: as gRPC answers a message over its size limit (the same data in smaller batches is accepted, which `INVALID_ARGUMENT` would deny) |
/// | 415 | `INVALID_ARGUMENT` (3) | another content type or coding: the request's choice, not a missing method (`UNIMPLEMENTED`) |
/// | 422 | `INVALID_ARGUMENT` (3) | spread over too many minutes, too many label sets: this export as sent is refused whole |
/// | 429 | `RESOURCE_EXHAUSTED` (8) | over the caller's rate |
/// | other 4xx | `INVALID_ARGUMENT` (3) | (the edge's `414`) |
/// | 500 | `INTERNAL` (13) | |
/// | 501 | `UNIMPLEMENTED` (12) | |
/// | 502, 503 | `UNAVAILABLE` (14) | a dependency unavailable; retry after `Retry-After` |
/// | 504 | `DEADLINE_EXCEEDED` (4) | |
/// | 507 | `RESOURCE_EXHAUSTED` (8) | the store at its size bound (`code.proto`'s own example: "the entire file system is out of space") |
/// | other 5xx | `INTERNAL` (13) | |
///
/// An exporter decides on retrying by the HTTP status (OTLP/HTTP: `429`, `502`, `503`,
/// `504` with `Retry-After`), never by this code: it says what kind of failure it was.
pub(crate) fn grpc_code(status: StatusCode) -> (i32, &'static str) {
    match status.as_u16() {
        401 => (16, "UNAUTHENTICATED"),
        403 => (7, "PERMISSION_DENIED"),
        404 => (5, "NOT_FOUND"),
        405 | 501 => (12, "UNIMPLEMENTED"),
        413 | 429 | 507 => (8, "RESOURCE_EXHAUSTED"),
        502 | 503 => (14, "UNAVAILABLE"),
        504 => (4, "DEADLINE_EXCEEDED"),
        400..=499 => (3, "INVALID_ARGUMENT"),
        _ => (13, "INTERNAL"),
    }
}

/// Wraps a role's hardened router (outside `plotq_http::harden`, so that what its edge
/// answers itself — `403` for a foreign `Origin` or `Host`, `405`, `414` — is mapped
/// too): on [`PATHS`], every `4xx`/`5xx` answer becomes a `google.rpc.Status`, its JSON
/// mapping (`application/json`) for a request declared `application/json`, else the
/// binary message (`application/x-protobuf`, OTLP's default: for protobuf requests and
/// those of a missing or unsupported content type). Other paths pass untouched.
pub fn otlp_statuses(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(answer_with_status))
}

async fn answer_with_status(request: Request, next: Next) -> Response {
    if !PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let json = plotq_http::edge::declared_media_type(request.headers()).as_deref()
        == Some("application/json");
    let response = next.run(request).await;
    let status = response.status();
    let mapped = response.extensions().get::<Mapped>().is_some();
    if !(status.is_client_error() || status.is_server_error()) || mapped {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem = if is_problem(&parts.headers) {
        // A body that does not read within the bound is mapped from its `ProblemNote`.
        axum::body::to_bytes(body, MAX_PROBLEM_BYTES)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
    } else {
        None
    };
    let (status, info) = to_status(&parts, problem.as_ref());
    let (content_type, bytes) = if json {
        ("application/json", status_json(&status, info.as_ref()))
    } else {
        ("application/x-protobuf", status_protobuf(status, info))
    };
    set_body_headers(&mut parts, content_type);
    parts.extensions.insert(Mapped);
    Response::from_parts(parts, Body::from(bytes))
}

/// Marks an answer already made a Status (the layer applied twice maps it once).
#[derive(Debug, Clone, Copy)]
struct Mapped;

fn is_problem(headers: &HeaderMap) -> bool {
    plotq_http::edge::declared_media_type(headers).as_deref() == Some("application/problem+json")
}

fn set_body_headers(parts: &mut Parts, content_type: &'static str) {
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
}

/// The Status of an error answer (without details) and its `ErrorInfo`, from its
/// problem body, else the `ProblemNote` the problem left on the answer, else its status
/// alone (no `ErrorInfo`: no code to give as its reason).
fn to_status(parts: &Parts, problem: Option<&Map<String, Value>>) -> (Status, Option<ErrorInfo>) {
    let note = parts.extensions.get::<ProblemNote>();
    let text = |member: &str| problem.and_then(|p| p.get(member)?.as_str());
    let reason = text("code").or_else(|| note.map(|n| n.code.as_str()));
    let message = text("detail")
        .or_else(|| note.map(|n| n.detail.as_str()))
        .filter(|m| !m.is_empty())
        .or_else(|| parts.status.canonical_reason())
        .unwrap_or("error");
    let status = Status {
        code: grpc_code(parts.status).0,
        message: message.to_owned(),
        details: Vec::new(),
    };
    let info = reason.map(|reason| error_info(reason, problem, &parts.headers));
    (status, info)
}

/// The `ErrorInfo` of a problem: `reason` its code (`too_many_label_sets`), `domain`
/// `plotq.dev`, and in `metadata`:
///
/// - `field_<i>` and `problem_<i>` for its `i`-th field at fault (from 0, in order: the
///   problem's `errors`), so one shape reads one field or several;
/// - `retry_after_seconds`: the answer's `Retry-After`;
/// - any other member of the problem (none on these paths yet) under its own name, a
///   string as it is and anything else as JSON text.
///
/// Keys follow `ErrorInfo`'s rule (`[a-z][a-zA-Z0-9-_]+`). The problem's `type` and
/// `title` are left out: both follow from its code.
fn error_info(
    reason: &str,
    problem: Option<&Map<String, Value>>,
    headers: &HeaderMap,
) -> ErrorInfo {
    let mut metadata = BTreeMap::new();
    for (member, value) in problem.into_iter().flatten() {
        match member.as_str() {
            "type" | "title" | "status" | "code" | "detail" => {}
            "errors" => {
                let errors = value.as_array().map(Vec::as_slice).unwrap_or_default();
                for (i, error) in errors.iter().enumerate() {
                    for part in ["field", "problem"] {
                        let text = error.get(part).and_then(Value::as_str).unwrap_or_default();
                        metadata.insert(format!("{part}_{i}"), text.to_owned());
                    }
                }
            }
            other if is_metadata_key(other) => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                metadata.insert(other.to_owned(), text);
            }
            _ => {}
        }
    }
    let retry_after = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if let Some(secs) = retry_after {
        metadata.insert("retry_after_seconds".to_owned(), secs.to_string());
    }
    ErrorInfo {
        reason: reason.to_owned(),
        domain: DOMAIN.to_owned(),
        metadata,
    }
}

fn is_metadata_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn status_protobuf(mut status: Status, info: Option<ErrorInfo>) -> Vec<u8> {
    status.details = info
        .map(|info| Any {
            type_url: ERROR_INFO_TYPE.to_owned(),
            value: info.encode_to_vec(),
        })
        .into_iter()
        .collect();
    status.encode_to_vec()
}

/// The proto3 JSON mapping: `details` as `Any`s with their `@type`.
fn status_json(status: &Status, info: Option<&ErrorInfo>) -> Vec<u8> {
    let details: Vec<Value> = info
        .map(|info| {
            json!({
                "@type": ERROR_INFO_TYPE,
                "reason": info.reason,
                "domain": info.domain,
                "metadata": info.metadata,
            })
        })
        .into_iter()
        .collect();
    json!({"code": status.code, "message": status.message, "details": details})
        .to_string()
        .into_bytes()
}

/// `google.rpc.Status` in its JSON mapping: the body of every error answer of the OTLP
/// routes to a request declared `application/json` (others get the binary message).
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct OtlpStatusDoc {
    /// The gRPC code (`google.rpc.Code`) of the HTTP status: 3 `INVALID_ARGUMENT` (400,
    /// 415, 422), 16 `UNAUTHENTICATED` (401), 7 `PERMISSION_DENIED` (403), 8
    /// `RESOURCE_EXHAUSTED` (413, 429, 507), 14 `UNAVAILABLE` (503), 13 `INTERNAL` (500).
    #[schema(minimum = 1, maximum = 16)]
    code: i32,
    /// What went wrong, in words (the problem+json `detail` of other routes).
    #[schema(min_length = 1)]
    message: String,
    /// One `google.rpc.ErrorInfo`.
    #[schema(max_items = 1)]
    details: Vec<OtlpErrorInfoDoc>,
}

/// `google.rpc.ErrorInfo` in the JSON mapping of an `Any`.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct OtlpErrorInfoDoc {
    /// `type.googleapis.com/google.rpc.ErrorInfo`.
    #[serde(rename = "@type")]
    #[schema(pattern = "^type\\.googleapis\\.com/google\\.rpc\\.ErrorInfo$")]
    r#type: String,
    /// The problem code, as other routes answer it in problem+json.
    reason: ProblemCode,
    /// `plotq.dev`.
    #[schema(pattern = "^plotq\\.dev$")]
    domain: String,
    /// `field_<i>` and `problem_<i>` for the `i`-th field at fault (from 0; a JSON pointer
    /// and what is wrong with it), `retry_after_seconds` as `Retry-After` says.
    metadata: BTreeMap<String, String>,
}

/// The schemas the OTLP routes' error answers refer to (merged into the api's document).
#[derive(OpenApi)]
#[openapi(components(schemas(OtlpStatusDoc, OtlpErrorInfoDoc)))]
pub(crate) struct StatusSchemas;

/// Every error answer of the two OTLP routes, each a `google.rpc.Status` in both
/// encodings: `(status, description, with Retry-After)`.
const DOCUMENTED: &[(StatusCode, &str, bool)] = &[
    (
        StatusCode::BAD_REQUEST,
        "Not an OTLP message in the declared encoding, or a broken gzip stream",
        false,
    ),
    (
        StatusCode::UNAUTHORIZED,
        "Missing or unknown credential",
        false,
    ),
    (
        StatusCode::FORBIDDEN,
        "Credential lacks the ingest scope, or a write from another site's page (Origin)",
        false,
    ),
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "Body over the configured limit (compressed or inflated)",
        false,
    ),
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Body neither application/x-protobuf nor application/json, or a Content-Encoding other than gzip",
        false,
    ),
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        "Spread over too many minutes (PLOTQ_MAX_BATCH_BUCKETS, batch_too_spread), or more label sets of one series than this caller may write (PLOTQ_MAX_LABEL_SETS, too_many_label_sets); nothing stored",
        false,
    ),
    (
        StatusCode::TOO_MANY_REQUESTS,
        "Over this caller's rate",
        true,
    ),
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "A dependency (MongoDB, Redis) unavailable; nothing stored",
        true,
    ),
    (
        StatusCode::INSUFFICIENT_STORAGE,
        "The sample store is at its configured size bound (standalone's memory store); nothing stored",
        true,
    ),
];

/// The error answers of `POST /v1/traces` and `/v1/metrics` in the document: for each
/// status, a `google.rpc.Status` as `application/x-protobuf` (binary) or
/// `application/json` ([`OtlpStatusDoc`]), as the request was.
pub(crate) struct OtlpErrors;

impl utoipa::IntoResponses for OtlpErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        DOCUMENTED
            .iter()
            .map(|&(status, description, retry_after)| {
                let (n, name) = grpc_code(status);
                let binary = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                    .description(Some("A google.rpc.Status message (binary protobuf)"));
                let json = Ref::from_schema_name(OtlpStatusDoc::name());
                let mut response = ResponseBuilder::new()
                    .description(format!(
                        "{description}. A google.rpc.Status, code {n} ({name}), in the request's encoding"
                    ))
                    .content(
                        "application/x-protobuf",
                        ContentBuilder::new().schema(Some(binary)).build(),
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(json)).build(),
                    );
                if retry_after {
                    response = response.header(
                        "retry-after",
                        HeaderBuilder::new()
                            .schema(u64::schema())
                            .description(Some("Seconds to wait"))
                            .build(),
                    );
                }
                (status.as_u16().to_string(), RefOr::T(response.build()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_http::Problem;

    #[test]
    fn the_wire_format_is_googleapis() {
        // Field numbers and types as in status.proto and error_details.proto, byte for byte.
        let info = ErrorInfo {
            reason: "r".into(),
            domain: "d".into(),
            metadata: BTreeMap::from([("k".into(), "v".into())]),
        };
        assert_eq!(
            info.encode_to_vec(),
            [
                0x0a, 1, b'r', 0x12, 1, b'd', 0x1a, 6, 0x0a, 1, b'k', 0x12, 1, b'v'
            ]
        );
        let status = Status {
            code: 3,
            message: "m".into(),
            details: vec![Any {
                type_url: "t".into(),
                value: vec![7],
            }],
        };
        assert_eq!(
            status.encode_to_vec(),
            [0x08, 3, 0x12, 1, b'm', 0x1a, 6, 0x0a, 1, b't', 0x12, 1, 7]
        );
    }

    #[test]
    fn every_problem_code_maps_to_a_grpc_code_of_its_kind() {
        for code in ProblemCode::ALL {
            let (n, _) = grpc_code(code.status());
            assert!((1..=16).contains(&n), "{code:?}");
            assert_ne!(n, 0, "an error is never OK");
        }
        assert_eq!(grpc_code(StatusCode::TOO_MANY_REQUESTS).0, 8);
        assert_eq!(grpc_code(StatusCode::SERVICE_UNAVAILABLE).0, 14);
        assert_eq!(grpc_code(StatusCode::URI_TOO_LONG).0, 3);
        assert_eq!(grpc_code(StatusCode::BAD_GATEWAY).0, 14);
        assert_eq!(grpc_code(StatusCode::INTERNAL_SERVER_ERROR).0, 13);
    }

    #[tokio::test]
    async fn a_problem_keeps_its_fields_and_retry_after_and_other_paths_are_untouched() {
        let problem = || {
            Problem {
                errors: vec![
                    plotq_domain::FieldError::new("/0/labels", "one"),
                    plotq_domain::FieldError::new("/1/labels", "two"),
                ],
                ..Problem::new(ProblemCode::RateLimited, "slow down")
            }
            .with_retry_after(7)
            .with_extra(json!({"job": {"id": 1}, "Bad Key": 2}))
        };
        // Applied twice, as a careless embedder might: mapped once, nothing lost.
        let app = otlp_statuses(otlp_statuses(
            Router::new()
                .route(
                    "/v1/traces",
                    axum::routing::post(move || async move { problem() }),
                )
                .route(
                    "/other",
                    axum::routing::post(move || async move { problem() }),
                ),
        ));
        let call = |path: &str, content_type: &str| {
            let request = Request::post(path)
                .header("content-type", content_type)
                .body(Body::empty())
                .unwrap();
            tower::ServiceExt::oneshot(app.clone(), request)
        };
        let response = call("/v1/traces", "application/x-protobuf").await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
        assert!(response.extensions().get::<ProblemNote>().is_some());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let status = Status::decode(&bytes[..]).unwrap();
        assert_eq!((status.code, status.message.as_str()), (8, "slow down"));
        assert_eq!(status.details[0].type_url, ERROR_INFO_TYPE);
        let info = ErrorInfo::decode(&status.details[0].value[..]).unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("rate_limited", DOMAIN)
        );
        let expected: BTreeMap<String, String> = [
            ("field_0", "/0/labels"),
            ("problem_0", "one"),
            ("field_1", "/1/labels"),
            ("problem_1", "two"),
            ("retry_after_seconds", "7"),
            ("job", "{\"id\":1}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(info.metadata, expected);

        let response = call("/v1/traces", "application/json; charset=utf-8")
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], 8);
        assert_eq!(body["details"][0]["@type"], ERROR_INFO_TYPE);
        assert_eq!(body["details"][0]["metadata"]["field_1"], "/1/labels");

        let response = call("/other", "application/json").await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}
