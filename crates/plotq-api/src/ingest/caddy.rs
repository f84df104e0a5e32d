//! Caddy v2 access logs in. `POST /api/v1/ingest/caddy` takes access-log lines (NDJSON,
//! as Caddy writes them) and turns each access entry into a duration and a status
//! sample, written exactly as `/api/v1/metrics` writes its batch — the same scope, rate
//! limits, body limit and body read, allowlist, `Idempotency-Key` and store write
//! ([`store_batch`]). Malformed lines are counted and reported (the first 20 with their
//! line numbers), never fatal; lines that are not access entries are skipped. Lines are
//! counted in `plotq_caddy_lines_total{result}`.
//!
//! The parser is pure (no I/O; `plotq tail` uses it too, as `plotq_api::caddy`), one
//! file per step: `caddy/line.rs` reads one line into an [`AccessEntry`] (the format is
//! described there), `caddy/map.rs` turns hosts into services and an entry into samples
//! ([`ServiceMap`]), `caddy/batch.rs` reads a body of lines ([`parse_access_log`]).

mod batch;
mod line;
mod map;
#[cfg(test)]
mod tests;

pub use batch::{AccessLogBatch, LineError, MAX_LINE_ERRORS, MAX_LINES, parse_access_log};
pub use line::{
    ACCESS_LOGGER, AccessEntry, HANDLED_REQUEST, Line, MAX_LINE_BYTES, is_access_logger,
    parse_go_duration, parse_line,
};
pub use map::{
    DURATION_METRIC, MAX_MAP_RULES, SAMPLES_PER_ENTRY, STATUS_METRIC, ServiceMap, normalize_host,
};

use super::{IdempotencyKeyHeader, Stored, idempotency_key, mark_replayed, store_batch};
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::ServiceName;
use plotq_http::{
    AuthProblems, IdempotencyInUse, Limits, Problem, ProblemCode, ProblemDoc, RateLimited,
    StoreFull, Unavailable,
};
use plotq_http::{Caller, Scope, read_json_bytes};
use plotq_ports::clock::now_ms;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The query of `POST /api/v1/ingest/caddy`: how hosts become services.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CaddyQuery {
    /// The service of every host that no `map` rule names (without it, the lines of such
    /// a host are malformed, field `/request/host`: hosts never name services themselves).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    service: Option<String>,
    /// Comma-separated `host=service` rules (at most 100): an exact host
    /// (`api.example.com=api`) or every subdomain of one (`*.example.com=web`); exact
    /// rules win, then the longest suffix. Hosts compare without port, case-insensitively.
    #[param(nullable = false, example = "api.example.com=api,*.example.com=web")]
    map: Option<String>,
    /// `true`: the duration metric carries the request's method
    /// (`http_request_duration_ms.get`); the status metric never does.
    #[param(nullable = false)]
    metric_per_method: Option<bool>,
}

/// The answer: what the lines held. The samples are stored when this is sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaddyIngestDoc {
    /// Non-blank lines read (`accepted` + `skipped` + `malformed`).
    #[schema(minimum = 0, maximum = 25000)]
    lines: u64,
    /// Access entries turned into samples.
    #[schema(minimum = 0, maximum = 25000)]
    accepted: u64,
    /// Samples stored: two per accepted line (`http_request_duration_ms`, `status_code`).
    #[schema(minimum = 0, maximum = 50000)]
    samples: u64,
    /// Lines of other loggers or messages (not access entries).
    #[schema(minimum = 0, maximum = 25000)]
    skipped: u64,
    /// Lines that are not JSON, or access entries with a missing or invalid field.
    #[schema(minimum = 0, maximum = 25000)]
    malformed: u64,
    /// The first 20 malformed lines.
    #[schema(max_items = 20)]
    errors: Vec<CaddyLineErrorDoc>,
}

/// One malformed line.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CaddyLineErrorDoc {
    /// The line's number in the body (1-based; blank lines count).
    #[schema(minimum = 1)]
    line: u64,
    /// The field at fault (`/ts`, `/duration`, `/status`, `/request/host`, …); empty for
    /// the whole line (too long, not JSON, not an object).
    field: String,
    /// What is wrong (`/status: is required`).
    problem: String,
}

/// The content types of a body of lines. Never `text/plain`: a page on another site may
/// send that without asking the browser's CORS check first (a "simple" request).
const LINE_TYPES: [&str; 3] = [
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
];

/// Ingest Caddy v2 access-log lines; answered only after the store acknowledged their samples.
///
/// The body is Caddy's JSON log, one entry per line. Each access entry (logger
/// `http.log.access[.<name>]`, msg "handled request") becomes two samples at its `ts`:
/// `http_request_duration_ms` (its `duration`) and `status_code` (its `status`), of the
/// service its host maps to. Other log lines are skipped; malformed lines are counted
/// and reported, never fatal. A body without any access entry stores nothing and is
/// answered all the same.
///
/// Outages: as `/api/v1/metrics` (MongoDB down, `503` and nothing stored; Redis down,
/// stored unless an `Idempotency-Key` is sent).
#[utoipa::path(
    post, path = "/api/v1/ingest/caddy", tag = "metrics",
    request_body(
        content((String = "application/x-ndjson")),
        description = "Caddy access-log lines, one JSON entry per line, at most 25,000 (also accepted as application/jsonl and application/json-lines)"),
    params(
        CaddyQuery, IdempotencyKeyHeader,
    ),
    responses(
        (status = 200, description = "Read; the samples of its access entries stored (MongoDB acknowledged the write)", body = CaddyIngestDoc,
            headers(("idempotent-replayed" = String, description = "`true` when this answers a retried Idempotency-Key"))),
        AuthProblems,
        (status = 400, description = "Unreadable body", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over the configured limit", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Body not declared as lines (application/x-ndjson, application/jsonl, application/json-lines); never text/plain, which any page may send cross-site", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad query parameter (service, map, metric_per_method) or Idempotency-Key, a reused Idempotency-Key, or more than 25,000 lines; nothing stored", body = ProblemDoc, content_type = "application/problem+json"),
        RateLimited, Unavailable, StoreFull, IdempotencyInUse,
    ),
    security(("bearer" = ["ingest"]))
)]
pub(crate) async fn ingest_caddy(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    query: Result<Query<CaddyQuery>, QueryRejection>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Ingest)?;
    let key = idempotency_key(&headers)?;
    let map = service_map(query)?;
    let bytes = read_lines(&headers, body)?;
    let now = now_ms();
    let batch =
        parse_access_log(&bytes, &map, now).map_err(|p| Problem::invalid_field("/body", p))?;
    // The samples depend on the mapping as much as on the lines: a retry under the same
    // key must send both unchanged (another mapping is another body).
    let fingerprinted = format!(
        "{}\n{}",
        raw_query.as_deref().unwrap_or(""),
        plotq_http::auth::sha256_hex(&bytes)
    );
    let stored = store_batch(
        &state,
        &caller,
        &limits,
        key.as_deref(),
        fingerprinted.as_bytes(),
        (&batch.samples, &[]),
        now,
    )
    .await?;
    if stored == Stored::Now {
        for (result, n) in [
            ("accepted", batch.accepted),
            ("skipped", batch.skipped),
            ("malformed", batch.malformed),
        ] {
            metrics::counter!("plotq_caddy_lines_total", "result" => result).increment(n as u64);
        }
    }
    let mut response = (StatusCode::OK, axum::Json(answer(&batch))).into_response();
    if let Stored::Replayed(_) = stored {
        // The counts are the body's, read again: the same body gives the same counts.
        mark_replayed(&mut response);
    }
    Ok(response)
}

fn answer(batch: &AccessLogBatch) -> serde_json::Value {
    serde_json::json!({
        "lines": batch.lines,
        "accepted": batch.accepted,
        "samples": batch.samples.len(),
        "skipped": batch.skipped,
        "malformed": batch.malformed,
        "errors": batch.errors.iter().map(|e: &LineError| serde_json::json!({
            "line": e.line, "field": e.field, "problem": e.problem,
        })).collect::<Vec<_>>(),
    })
}

/// The query as a [`ServiceMap`]; `422` naming the parameter.
fn service_map(query: Result<Query<CaddyQuery>, QueryRejection>) -> Result<ServiceMap, Problem> {
    let Query(query) = query.map_err(|e| Problem::invalid_field("/query", e.body_text()))?;
    let default = query
        .service
        .as_deref()
        .map(ServiceName::parse)
        .transpose()
        .map_err(|p| Problem::invalid_field("/query/service", p))?;
    let mut map = ServiceMap::new(default);
    map.metric_per_method = query.metric_per_method.unwrap_or(false);
    if let Some(rules) = &query.map {
        map.add_rules(rules)
            .map_err(|p| Problem::invalid_field("/query/map", p))?;
    }
    Ok(map)
}

/// The body, when declared as lines (`415` otherwise), read by the edge's one body path
/// (`413` over the limit, `400` unreadable); an empty body is an empty batch.
fn read_lines(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    let declared = plotq_http::edge::declared_media_type(headers);
    match declared.as_deref() {
        Some(t) if LINE_TYPES.contains(&t) => {}
        Some(other) => {
            return Err(Problem::new(
                ProblemCode::UnsupportedMediaType,
                format!(
                    "the body is {:?}; send the access-log lines as application/x-ndjson",
                    other.chars().take(64).collect::<String>()
                ),
            ));
        }
        None => {
            return Err(Problem::new(
                ProblemCode::UnsupportedMediaType,
                "no Content-Type; send the access-log lines as application/x-ndjson",
            ));
        }
    }
    match body {
        Ok(bytes) if bytes.is_empty() => Ok(bytes),
        // Past the content type, checked above: the body limit and read errors exactly as
        // for every JSON body.
        body => read_json_bytes(&json_declared(), body),
    }
}

/// Headers declaring a JSON body, for `read_json_bytes` once the route has accepted its
/// own content type.
fn json_declared() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers
}
