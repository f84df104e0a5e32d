//! `POST /api/v1/metrics`: samples as JSON (one object or an array), parsed by
//! `plotq_domain::sample` (every bad field named) and written by the ingest routes' one
//! write path ([`store_batch`]).

use super::{
    IdempotencyKeyHeader, Stored, check_age, idempotency_key, mark_replayed, rollup_only,
    store_batch,
};
use crate::openapi::{AcceptedDoc, SamplesDoc};
use crate::state::ApiState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use plotq_domain::sample::{parse_samples, parse_samples_fast};
use plotq_http::{
    AuthProblems, Caller, IdempotencyInUse, JsonBodyProblems, Limits, Problem, RateLimited, Scope,
    StoreFull, Unavailable, read_json_bytes,
};
use plotq_ports::clock::now_ms;
use serde_json::{Value, json};
use std::sync::Arc;

/// Ingest samples (one object or an array); answered only after the store acknowledged.
///
/// Outages: MongoDB down, `503` and nothing stored (in milliseconds once the outage is
/// known; send the batch again with the same `Idempotency-Key` and it is stored once);
/// Redis down, stored (`200`) unless an `Idempotency-Key` is sent (then `503`, nothing
/// stored); RabbitMQ down, stored.
#[utoipa::path(
    post, path = "/api/v1/metrics", tag = "metrics",
    request_body(content = SamplesDoc, content_type = "application/json"),
    params(IdempotencyKeyHeader),
    responses(
        (status = 200, description = "Stored (MongoDB acknowledged the write)", body = AcceptedDoc,
            headers(("idempotent-replayed" = String, description = "`true` when this answers a retried Idempotency-Key"))),
        AuthProblems, JsonBodyProblems, RateLimited, Unavailable, StoreFull, IdempotencyInUse,
    ),
    security(("bearer" = ["ingest"]))
)]
pub(crate) async fn ingest(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Ingest)?;
    let key = idempotency_key(&headers)?;
    let bytes = read_json_bytes(&headers, body)?;
    let now = now_ms();
    // The usual batch straight from the bytes; anything else through a JSON value,
    // which names every problem.
    let samples = match parse_samples_fast(&bytes, now) {
        Some(samples) => samples,
        None => {
            let body: Value =
                serde_json::from_slice(&bytes).map_err(|e| Problem::malformed_json(&e))?;
            parse_samples(&body, now).map_err(Problem::invalid)?
        }
    };
    check_age(&samples, now, &state.config.sources)?;
    let (n, replayed) = match store_batch(
        &state,
        &caller,
        &limits,
        key.as_deref(),
        &bytes,
        (&samples, &[]),
        now,
    )
    .await?
    {
        Stored::Now => (samples.len() as u64, false),
        Stored::Replayed(n) => (n, true),
    };
    let mut answer = json!({"accepted": n});
    let kept_in_rollups = rollup_only(&samples, now, &state.config.sources);
    if kept_in_rollups > 0 {
        answer["rollup_only"] = kept_in_rollups.into();
    }
    let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
    if replayed {
        mark_replayed(&mut response);
    }
    Ok(response)
}
