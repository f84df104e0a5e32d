//! `/healthz` (the process is alive) and `/readyz` (every dependency answers), shared by
//! every HTTP role: each role passes the probes of the dependencies it uses.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use plotq_ports::PortResult;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// One named readiness check.
#[derive(Clone)]
pub struct Probe {
    pub name: &'static str,
    pub check: Arc<dyn Fn() -> BoxFuture<'static, PortResult<()>> + Send + Sync>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// `/healthz` and `/readyz` for the given probes.
pub fn readiness_router(probes: Vec<Probe>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(probes))
}

async fn readyz(State(probes): State<Arc<Vec<Probe>>>) -> impl IntoResponse {
    let results = futures::future::join_all(probes.iter().map(|p| async move {
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, (p.check)()).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
        };
        (p.name, error)
    }))
    .await;
    let failing: Vec<_> = results
        .iter()
        .filter_map(|(name, e)| {
            e.as_ref()
                .map(|e| json!({"dependency": name, "problem": e}))
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
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": checks})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "checks": checks, "failing": failing})),
        )
    }
}
