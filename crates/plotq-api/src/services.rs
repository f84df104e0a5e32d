//! `GET /api/v1/services`: the services that sent samples in the last week and the
//! metrics of each, as the live refresh registry recorded them (`ViewRegistry::series`),
//! filtered to those the caller may see.

use crate::openapi::ServicesDoc;
use crate::state::ApiState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use plotq_http::{AuthProblems, Caller, Problem, Scope, Unavailable};
use plotq_ports::clock::now_ms;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Services that sent samples in the last week (those this caller may see), and the
/// metrics each sent.
///
/// Outages: Redis down, `503` (in milliseconds once the outage is known); MongoDB or
/// RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/services", tag = "metrics",
    responses(
        (status = 200, description = "Service names, sorted, and each one's metrics", body = ServicesDoc),
        AuthProblems, Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn services(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let since = now_ms() - 7 * 24 * 3600 * 1000;
    let mut metrics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (service, metric) in state.views.series(since).await? {
        if metric != plotq_ports::views::ANNOTATIONS_SERIES && caller.may_use_service(&service) {
            metrics.entry(service).or_default().push(metric);
        }
    }
    let services: Vec<&String> = metrics.keys().collect();
    Ok(axum::Json(json!({"services": services, "metrics": metrics})).into_response())
}
