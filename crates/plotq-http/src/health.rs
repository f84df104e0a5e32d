//! `/healthz` (the process is alive) and `/readyz` (every dependency answers), shared by
//! every HTTP role: each role passes the probes of the dependencies it uses.
//!
//! Anyone may ask (load balancers do not authenticate) and learn which dependency is
//! failing; what the dependency said (error text, addresses) is only shown to callers
//! with the `admin` scope, and always logged.

use crate::auth::{Caller, Scope};
use crate::probe::{PROBE_TIMEOUT, Probe, ProbeFailure, probe_all};
use crate::problem::Problem;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use docs::{HealthDoc, NotReadyDoc, ReadyDoc};
use plotq_ports::MetricStore;
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/healthz` and `/readyz`, each with its entry in the OpenAPI document.
fn readiness_routes() -> OpenApiRouter<Arc<Readiness>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/healthz` and `/readyz` for the given probes.
pub fn readiness_router(probes: Vec<Probe>, store: Option<Arc<dyn MetricStore>>) -> Router {
    let (routes, _) = readiness_routes().split_for_parts();
    routes.with_state(Arc::new(Readiness { probes, store }))
}

/// What `/readyz` asks: each dependency's probe, and a bounded store's usage.
pub struct Readiness {
    probes: Vec<Probe>,
    store: Option<Arc<dyn MetricStore>>,
}

/// The JSON shapes of the health answers, for the OpenAPI document (they only describe:
/// the handlers build the same JSON directly).
mod docs {
    #![allow(dead_code)] // reason: fields and variants exist to be described, never built

    /// Liveness answer: always `{"status": "ok"}`.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct HealthDoc {
        status: AliveDoc,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum AliveDoc {
        Ok,
    }

    /// Readiness answer when every dependency answers.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct ReadyDoc {
        status: ReadyStatusDoc,
        /// Each dependency of this role by name (none in standalone mode).
        checks: std::collections::BTreeMap<String, CheckOkDoc>,
        /// How full standalone's in-memory store is (only there).
        #[schema(nullable = false)]
        store: Option<StoreUsageDoc>,
    }

    /// A bounded store's usage; at `max_bytes`, ingest is refused with `507 store_full`.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct StoreUsageDoc {
        bytes: u64,
        max_bytes: u64,
        samples: u64,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum ReadyStatusDoc {
        Ready,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum CheckOkDoc {
        Ok,
    }

    /// Readiness answer when a dependency is failing.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    pub struct NotReadyDoc {
        status: NotReadyStatusDoc,
        /// Each dependency of this role by name.
        checks: std::collections::BTreeMap<String, CheckDoc>,
        /// The failing dependencies.
        #[schema(min_items = 1)]
        failing: Vec<FailingDoc>,
        #[schema(nullable = false)]
        store: Option<StoreUsageDoc>,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum NotReadyStatusDoc {
        NotReady,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[serde(rename_all = "snake_case")]
    enum CheckDoc {
        Ok,
        Failing,
    }

    /// One failing dependency.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    struct FailingDoc {
        /// `mongodb`, `rabbitmq` or `redis`.
        dependency: String,
        /// What the dependency said; only for callers with the `admin` scope.
        #[schema(nullable = false)]
        problem: Option<String>,
    }
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthDoc)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Every dependency of this role answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = ReadyDoc),
        (status = 503, description = "A dependency is failing (named)", body = NotReadyDoc),
    ))]
pub async fn readyz(
    State(readiness): State<Arc<Readiness>>,
    caller: Result<Caller, Problem>,
) -> impl IntoResponse {
    let detailed = caller.is_ok_and(|c| c.require(Scope::Admin).is_ok());
    let results: Vec<(&str, Option<String>)> = probe_all(&readiness.probes, PROBE_TIMEOUT)
        .await
        .into_iter()
        .map(|p| {
            // A known outage was logged once by the dependency's breaker; a load balancer
            // polling readiness must not repeat it every few seconds.
            if let Err(ProbeFailure::Failed(e)) = &p.outcome {
                if e.is_failing_fast() {
                    tracing::debug!(dependency = p.name, error = %e, "readiness probe: known down");
                } else {
                    tracing::warn!(dependency = p.name, error = %e, "readiness probe failed");
                }
            }
            (p.name, p.problem())
        })
        .collect();
    let failing: Vec<_> = results
        .iter()
        .filter_map(|(name, e)| {
            e.as_ref().map(|e| {
                if detailed {
                    json!({"dependency": name, "problem": e})
                } else {
                    json!({"dependency": name})
                }
            })
        })
        .collect();
    let checks: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .map(|(name, e)| {
            (
                (*name).to_owned(),
                json!(if e.is_none() { "ok" } else { "failing" }),
            )
        })
        .collect();
    let (status, mut body) = if failing.is_empty() {
        (StatusCode::OK, json!({"status": "ready", "checks": checks}))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "checks": checks, "failing": failing}),
        )
    };
    if let Some(usage) = readiness.store.as_ref().and_then(|s| s.usage()) {
        body["store"] = json!(usage);
    }
    (status, Json(body))
}

/// The health routes' tag, for [`HealthApiDoc`].
#[derive(utoipa::OpenApi)]
#[openapi(tags((name = "health", description = "Liveness, readiness and the health report")))]
struct HealthTags;

/// The health routes' part of the OpenAPI document, built from the routers themselves:
/// `/healthz` and `/readyz` (here), `GET /api/v1/health` (`status.rs`) and `/metrics`
/// (`observe`), so a route is documented exactly when it is served.
#[derive(Debug)]
pub struct HealthApiDoc;

impl utoipa::OpenApi for HealthApiDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        let mut document = HealthTags::openapi();
        document.merge(readiness_routes().into_openapi());
        document.merge(crate::status::health_routes().into_openapi());
        document.merge(crate::observe::prometheus::metrics_routes().into_openapi());
        document
    }
}
