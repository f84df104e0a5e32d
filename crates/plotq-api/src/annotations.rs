//! `POST /api/v1/annotations` and `GET /api/v1/annotations`: marked moments (a deploy, an
//! incident) with a text and the services they concern, which every time plot of those
//! services draws (and its job lists).
//!
//! Posting takes the `ingest` scope and every named service within the caller's
//! allowlist (`403` naming the others), one of the caller's annotations a minute
//! (`PLOTQ_ANNOTATIONS_PER_MIN`), and a time within the rollup retention and at most 5
//! minutes ahead (`422` naming `/time`); a stored annotation moves the
//! data watermark of its services' plots (`views::ANNOTATIONS_SERIES`), so a cached plot
//! of its range is drawn again rather than served without it. Listing takes the `read`
//! scope, for services the caller may read, and names only those of each annotation's
//! services (as plots do: only their own).

use crate::access::may_use_services;
use crate::openapi::{AnnotationDoc, AnnotationRequestDoc, AnnotationsDoc};
use crate::plots::reuse_horizon;
use crate::state::ApiState;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use plotq_domain::annotation::MAX_SERVICES;
use plotq_domain::sample::MAX_FUTURE_SKEW_MS;
use plotq_domain::{Annotation, FieldError, JobId, ServiceName, Window};
use plotq_http::{
    AuthProblems, Caller, JsonBodyProblems, Limits, Problem, ProblemDoc, RateLimited, Scope,
    StoreFull, Unavailable, read_json_bytes,
};
use plotq_ports::clock::now_ms;
use plotq_ports::views::{ANNOTATIONS_SERIES, HOUR_MS};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Mark a moment on the time plots of some services (a deploy, an incident).
///
/// Outages: MongoDB down, `503` and nothing stored; Redis down, stored (cached plots of
/// its range may be served without it until they expire).
#[utoipa::path(
    post, path = "/api/v1/annotations", tag = "metrics",
    request_body(content = AnnotationRequestDoc, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored; time plots of its services draw it", body = AnnotationDoc),
        AuthProblems, JsonBodyProblems, RateLimited, Unavailable, StoreFull,
    ),
    security(("bearer" = ["ingest"]))
)]
pub(crate) async fn annotate(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Ingest)?;
    let bytes = read_json_bytes(&headers, body)?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| Problem::malformed_json(&e))?;
    let now = now_ms();
    let annotation = Annotation::parse(&body, JobId::issued_at(now).to_string(), now)
        .map_err(Problem::invalid)?;
    may_use_services(&caller, &annotation.services)?;
    if annotation.time_ms > now + MAX_FUTURE_SKEW_MS {
        return Err(Problem::invalid_field(
            "/time",
            "lies more than 5 minutes in the future",
        ));
    }
    let retention = state.config.sources.rollup_retention;
    if annotation.time_ms < now.saturating_sub(retention.as_millis() as i64) {
        return Err(Problem::invalid_field(
            "/time",
            "is older than the rollup retention (PLOTQ_ROLLUP_RETENTION): no plot reaches it",
        ));
    }
    limits.check_annotation(&caller.limit_key)?;
    state.store.annotate(&annotation).await?;
    // Plots of its services, cached or single-flighted, are not the same plots any more.
    let hour = annotation.time_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let touched: Vec<(String, String, i64)> = annotation
        .services
        .iter()
        .map(|s| (s.to_string(), ANNOTATIONS_SERIES.to_owned(), hour))
        .collect();
    if let Err(e) = state
        .views
        .touch_hours(&touched, now, reuse_horizon(&state.config))
        .await
    {
        tracing::warn!(error = %e, "cannot record an annotation's hour");
    }
    let series = plotq_ports::views::series_of(&touched);
    if let Err(e) = state.views.touch_series(&series, now).await {
        tracing::warn!(error = %e, "cannot record an annotation for live refresh");
    }
    Ok((StatusCode::CREATED, axum::Json(annotation)).into_response())
}

/// `GET /api/v1/annotations`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// The services whose annotations to list (comma-separated, 1 to 8).
    #[param(max_length = 600)]
    services: String,
    /// How far back to look (default `24h`, 10s to 90d).
    #[param(max_length = 16)]
    window: Option<String>,
}

/// The annotations of some services in the last `window`: the latest 50, in time order.
#[utoipa::path(
    get, path = "/api/v1/annotations", tag = "metrics",
    params(ListQuery),
    responses(
        (status = 200, description = "The annotations, in time order", body = AnnotationsDoc),
        (status = 422, description = "A bad parameter, named", body = ProblemDoc, content_type = "application/problem+json"),
        AuthProblems, Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn list(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let Query(query) = query.map_err(|e| {
        Problem::invalid(plotq_domain::FieldErrors::one(
            "/services",
            format!("is required ({})", e.body_text()),
        ))
    })?;
    let mut errors = Vec::new();
    let names: Vec<&str> = query.services.split(',').map(str::trim).collect();
    if names.is_empty() || names.len() > MAX_SERVICES {
        errors.push(FieldError::new(
            "/services",
            format!("must name 1 to {MAX_SERVICES} services"),
        ));
    }
    let mut services = Vec::new();
    for (i, name) in names.iter().enumerate().take(MAX_SERVICES) {
        match ServiceName::parse(name) {
            Ok(s) => services.push(s),
            Err(problem) => errors.push(FieldError::new(format!("/services/{i}"), problem)),
        }
    }
    let window = match Window::parse(query.window.as_deref().unwrap_or("24h")) {
        Ok(w) => Some(w),
        Err(problem) => {
            errors.push(FieldError::new("/window", problem));
            None
        }
    };
    let Some(window) = window.filter(|_| errors.is_empty()) else {
        return Err(Problem::invalid(plotq_domain::FieldErrors(errors)));
    };
    may_use_services(&caller, &services)?;
    let now = now_ms();
    let names: Vec<&str> = services.iter().map(|s| s.as_str()).collect();
    let mut found = state
        .store
        .annotations(&names, now - window.millis(), now)
        .await?;
    // Only the services this caller may see: an annotation of several services does not
    // name the others to it.
    for a in &mut found {
        a.services.retain(|s| caller.may_use_service(s.as_str()));
    }
    Ok(axum::Json(json!({"annotations": found})).into_response())
}
