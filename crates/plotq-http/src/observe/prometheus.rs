//! The process-wide Prometheus recorder (with the help texts of every series a role may
//! export), its upkeep, and `GET /metrics`.

use super::process::ProcessInfo;
use crate::auth::{Caller, Scope};
use crate::openapi::ProblemDoc;
use crate::problem::Problem;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Histogram buckets (seconds) of every `*_seconds` histogram plotq exports.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The process-wide Prometheus recorder, installed on first use. Every role of a
/// process (standalone runs several; the test harness too) reports into it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows none of plotq's"
            );
        }
        describe();
        handle
    })
}

/// Help texts of the series every role may export.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "plotq_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "plotq_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by route template, method and status"
    );
    describe_counter!(
        "plotq_http_response_bytes_total",
        Unit::Bytes,
        "Response body bytes (where known), by route template"
    );
    describe_counter!(
        "plotq_self_samples_total",
        "plotq's own request samples, by outcome (stored, dropped when the queue was full, failed to store)"
    );
    describe_counter!(
        "plotq_cache_requests_total",
        "Image and state reads from the cache, by result (hit, miss)"
    );
    describe_gauge!(
        "plotq_dependency_up",
        "1 while the dependency answers (its breaker is closed), else 0"
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of this process"
    );
    describe_gauge!(
        "process_virtual_memory_bytes",
        Unit::Bytes,
        "Virtual memory of this process"
    );
    describe_gauge!("process_threads", "Threads of this process");
    describe_gauge!("process_open_fds", "Open file descriptors of this process");
    describe_gauge!(
        "process_uptime_seconds",
        Unit::Seconds,
        "Seconds since this process started"
    );
}

/// Keeps the recorder's memory bounded while nobody scrapes: drains histogram samples
/// into their buckets every few seconds, until `stop`.
pub async fn upkeep(stop: CancellationToken) {
    let handle = prometheus();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// `GET /metrics`: the Prometheus text exposition of this process. Anyone when
/// authentication is off; otherwise a token with the `admin` scope.
pub fn metrics_router() -> Router {
    metrics_routes().split_for_parts().0
}

/// `GET /metrics` with its entry in the OpenAPI document.
pub(crate) fn metrics_routes() -> utoipa_axum::router::OpenApiRouter {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(scrape))
}

/// Prometheus text exposition (`/metrics`).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "Authentication is on and no valid token was sent", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn scrape(caller: Result<Caller, Problem>) -> Result<Response, Problem> {
    caller?.require(Scope::Admin)?;
    let process = tokio::task::spawn_blocking(ProcessInfo::read)
        .await
        .unwrap_or_default();
    process.export();
    let handle = prometheus();
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
