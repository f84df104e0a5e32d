//! OpenTelemetry in. `POST /v1/traces` and `POST /v1/metrics`, the OTLP/HTTP paths, so
//! any OpenTelemetry SDK or Collector exporter sends to plotq with only an endpoint and
//! a token (`Authorization: Bearer …`, scope `ingest`). Bodies in either OTLP encoding,
//! gzip or not (`body.rs`); spans become request samples (`spans.rs`), gauge and sum
//! points samples (`points.rs`), under the rules of every sample (`export.rs`); stored
//! by the ingest routes' one write path, so rates, spread, outages and the store's bound
//! answer as on `/api/v1/metrics` (`429`/`503` with `Retry-After`, which exporters
//! honour). What is not stored is counted in the answer's partial success with the
//! reason, as the OTLP specification asks.
//!
//! Every error answer on these paths is a `google.rpc.Status` (`status.rs`), as the OTLP
//! specification asks, not problem+json: binary for protobuf requests, its JSON mapping
//! for JSON ones, with the problem's code, fields and `Retry-After` in an `ErrorInfo`.
//! The handlers answer [`Problem`]s like every route; [`otlp_statuses`], around the
//! edge, maps them, and the edge's own answers on these paths.

mod body;
mod export;
mod histograms;
mod points;
mod spans;
mod status;

pub(crate) use status::StatusSchemas;
pub use status::otlp_statuses;

use super::{horizon, store_batch};
use crate::state::ApiState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use body::Encoding;
use export::{Export, Rules};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

use plotq_http::{Caller, Limits, Problem, Scope};
use plotq_ports::clock::now_ms;
use serde_json::json;
use status::OtlpErrors;
use std::sync::Arc;

/// Export spans (OTLP/HTTP); answered only after the store acknowledged their samples.
///
/// Each span of kind SERVER or CONSUMER is one request of its resource's `service.name`:
/// its duration as `latency_ms` and its `http.response.status_code` as `status_code`, at
/// its end. Other spans are left out (said in the answer's message). Spans that cannot
/// be stored — a service the token may not write, no `service.name`, a time in the
/// future or past the rollup retention — are counted as rejected, with the reasons; the
/// rest are stored.
#[utoipa::path(
    post, path = "/v1/traces", tag = "otlp",
    request_body(
        content(
            (Vec<u8> = "application/x-protobuf"),
            (serde_json::Value = "application/json"),
        ),
        description = "An OTLP ExportTraceServiceRequest (binary protobuf or its JSON mapping), optionally with Content-Encoding: gzip"),
    responses(
        (status = 200, description = "Stored; an OTLP ExportTraceServiceResponse in the request's encoding (partialSuccess: the spans not stored and why)", body = OtlpTraceAnswerDoc),
        OtlpErrors,
    ),
    security(("bearer" = ["ingest"]))
)]
pub(crate) async fn traces(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let (encoding, export) =
        export(&caller, &state, &limits, &headers, body, spans::read_spans).await?;
    count("spans", &export);
    let partial = has_news(&export).then(|| ExportTracePartialSuccess {
        rejected_spans: export.rejected as i64,
        error_message: export.message(),
    });
    let json = partial_json("rejectedSpans", &export);
    Ok(body::answer(
        encoding,
        ExportTraceServiceResponse {
            partial_success: partial,
        },
        json,
    ))
}

/// Export metrics (OTLP/HTTP); answered only after the store acknowledged their samples.
///
/// Gauge and Sum points become samples of the metric as named, of the resource's
/// `service.name`, at the point's time (a cumulative monotonic sum's increase since its
/// previous point); Histogram and ExponentialHistogram points (delta or cumulative)
/// merge into the metric's minute rollups, read within the buckets' stated error.
/// Summary points are counted as rejected, with a message saying what to send instead.
/// A cumulative stream's first point, when the stream started before this api, is the
/// baseline (said in the answer's message).
#[utoipa::path(
    post, path = "/v1/metrics", tag = "otlp",
    request_body(
        content(
            (Vec<u8> = "application/x-protobuf"),
            (serde_json::Value = "application/json"),
        ),
        description = "An OTLP ExportMetricsServiceRequest (binary protobuf or its JSON mapping), optionally with Content-Encoding: gzip"),
    responses(
        (status = 200, description = "Stored; an OTLP ExportMetricsServiceResponse in the request's encoding (partialSuccess: the data points not stored and why)", body = OtlpMetricsAnswerDoc),
        OtlpErrors,
    ),
    security(("bearer" = ["ingest"]))
)]
pub(crate) async fn metrics(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let (encoding, export) = export(
        &caller,
        &state,
        &limits,
        &headers,
        body,
        points::read_points,
    )
    .await?;
    count("data_points", &export);
    let partial = has_news(&export).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: export.rejected as i64,
        error_message: export.message(),
    });
    let json = partial_json("rejectedDataPoints", &export);
    Ok(body::answer(
        encoding,
        ExportMetricsServiceResponse {
            partial_success: partial,
        },
        json,
    ))
}

/// What both routes do with a body: the `ingest` scope, the encoding (`415`), the bytes
/// (`413`, gzip), the export request (`400`), then [`store`] of what `read` makes of it.
async fn export<R>(
    caller: &Caller,
    state: &ApiState,
    limits: &Limits,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    read: fn(&R, &Rules<'_>) -> Export,
) -> Result<(Encoding, Export), Problem>
where
    R: prost::Message + Default + serde::de::DeserializeOwned,
{
    caller.require(Scope::Ingest)?;
    let encoding = Encoding::of(headers)?;
    let bytes = body::read(headers, body, state.config.max_body_bytes)?;
    let request: R = body::decode(encoding, &bytes)?;
    let export = store(state, caller, limits, &bytes, |rules| read(&request, rules)).await?;
    Ok((encoding, export))
}

/// Reads an export under the caller's rules with `read`, then stores its samples through
/// the ingest routes' one write path (no `Idempotency-Key`: OTLP has none; exporters
/// retry only what was refused whole).
async fn store(
    state: &ApiState,
    caller: &Caller,
    limits: &Limits,
    bytes: &[u8],
    read: impl FnOnce(&Rules<'_>) -> Export,
) -> Result<Export, Problem> {
    let now = now_ms();
    // The rules (a borrowed closure, not `Send`) end before the write is awaited.
    let export = {
        let may_use = |service: &str| caller.may_use_service(service);
        read(&Rules {
            now_ms: now,
            oldest_ms: horizon(now, state.config.sources.rollup_retention),
            may_use: &may_use,
            streams: &state.config.otlp_streams,
        })
    };
    let items = (&export.samples[..], &export.summaries[..]);
    store_batch(state, caller, limits, None, bytes, items, now).await?;
    // Stored: the cumulative streams move on (a refused export is retried as it was).
    let mut export = export;
    state
        .config
        .otlp_streams
        .commit(std::mem::take(&mut export.updates));
    Ok(export)
}

/// Whether the answer carries a partial success: something was rejected or left out.
fn has_news(export: &Export) -> bool {
    export.rejected > 0 || export.ignored > 0
}

/// The JSON answer: `{}` when everything was stored, else the partial success with the
/// signal's rejected-count field.
fn partial_json(rejected_field: &str, export: &Export) -> serde_json::Value {
    if !has_news(export) {
        return json!({});
    }
    json!({"partialSuccess": {rejected_field: export.rejected, "errorMessage": export.message()}})
}

fn count(signal: &'static str, export: &Export) {
    for (result, n) in [
        ("stored", export.stored() as u64),
        ("rejected", export.rejected),
        ("ignored", export.ignored),
    ] {
        metrics::counter!("plotq_otlp_items_total", "signal" => signal, "result" => result)
            .increment(n);
    }
}

/// An OTLP partial success, in the JSON mapping.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OtlpTracePartialDoc {
    /// Spans not stored.
    rejected_spans: u64,
    /// Why, with a count per reason (also warnings when nothing was rejected).
    error_message: String,
}

/// The answer to a span export (JSON mapping; protobuf requests get the protobuf message).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OtlpTraceAnswerDoc {
    /// Absent when every span was stored.
    #[schema(nullable = false)]
    partial_success: Option<OtlpTracePartialDoc>,
}

/// An OTLP partial success of a metrics export, in the JSON mapping.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OtlpMetricsPartialDoc {
    /// Data points not stored.
    rejected_data_points: u64,
    /// Why, with a count per reason.
    error_message: String,
}

/// The answer to a metrics export (JSON mapping; protobuf requests get the protobuf message).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OtlpMetricsAnswerDoc {
    /// Absent when every data point was stored.
    #[schema(nullable = false)]
    partial_success: Option<OtlpMetricsPartialDoc>,
}
