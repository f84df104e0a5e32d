//! `GET /api/v1/stats`: the numbers a plot would show, answered at once as JSON.
//!
//! The query names what a plot request names — `kind` (default `histogram`), `service`
//! or `services` (a comma-separated list, for the kinds that compare), `metric`, and
//! `window` or `from`/`until` — read as a [`PlotQuery`] (its data parameters only) and
//! validated by `PlotSpec::parse`, so a bad parameter gets the same `422` (naming the
//! field) as the same field of `POST /api/v1/plots`. The window is read through
//! `plotq_ports::window`, the path the workers draw from (raw samples or rollups by the
//! same `SourcePolicy`, so the work of one answer is bounded the same way), and the
//! statistics are the job state's: `SeriesStats` with the extras of the kind (rates for
//! throughput, codes and the error ratio for status codes and error rate), with the
//! annotations a time plot of the window draws.
//!
//! Authorisation is that of reading a plot: the `read` scope, and every service within
//! the caller's allowlist (`403` naming the others). Each answer takes one plot request
//! from the caller's rate (`429`). No sample of any service in the window is `404
//! not_found` with the worker's "no data for …" words; services without samples are
//! left out of `stats`, as in a job state.

use crate::access::may_read_services;
use crate::openapi::StatsDoc;
use crate::query::{PlotQuery, STATS_PARAMETERS};
use crate::state::ApiState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use plotq_http::{
    AuthProblems, Caller, Limits, Problem, ProblemCode, ProblemDoc, RateLimited, Scope, Unavailable,
};
use plotq_ports::clock::now_ms;
use plotq_ports::window::{no_data, read_window};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterIn};

/// How long a stats request waits for one of the process's read slots.
const STATS_SLOT_WAIT: Duration = Duration::from_secs(5);

/// The query of `GET /api/v1/stats` in the document: [`STATS_PARAMETERS`] of a
/// [`PlotQuery`], `kind` optional (its default and what it adds said).
struct StatsParams;

impl IntoParams for StatsParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        PlotQuery::params(&STATS_PARAMETERS, |p| {
            if p.name == "kind" {
                p.required = Required::False;
                p.description = Some(
                    "The plot kind whose numbers to compute (default `histogram`): `throughput` adds\n\
                     rates, `status_codes` and `error_rate` add codes and the error ratio."
                        .to_owned(),
                );
            }
        })
    }
}

/// The statistics of services over a window, as a plot of `kind` would show them.
///
/// Outages: MongoDB down, `503` (in milliseconds once the outage is known); Redis or
/// RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "metrics",
    params(StatsParams),
    responses(
        (status = 200, description = "Each service's numbers in the window (services without samples left out)", body = StatsDoc),
        AuthProblems,
        (status = 404, description = "No sample of any of the services in the window (`not_found`, `no data for …`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters, each named as in a plot request (`invalid_field`)", body = ProblemDoc, content_type = "application/problem+json"),
        RateLimited, Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn stats(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    query: Result<Query<PlotQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let Query(query) = query.map_err(|e| Problem::invalid_field("", e.body_text()))?;
    let now = now_ms();
    let spec = query.spec(&STATS_PARAMETERS, Some("histogram"), now, "")?;
    may_read_services(&caller, &spec)?;
    limits.check_plot(&caller.limit_key)?;
    let _slot = tokio::time::timeout(
        STATS_SLOT_WAIT,
        state.config.stats_slots.0.clone().acquire_owned(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| {
        Problem::new(
            ProblemCode::RateLimited,
            "this api is reading as many statistics windows as it may at once; retry shortly",
        )
        .with_retry_after(1)
    })?;
    let (from_ms, until_ms) = spec.range.resolve(now);
    let read = read_window(
        state.store.as_ref(),
        &state.config.sources,
        &spec,
        from_ms,
        until_ms,
    )
    .await?;
    if read.is_empty() {
        return Err(Problem::not_found(no_data(&spec)));
    }
    let mut body = json!({
        "kind": spec.kind.as_str(),
        "services": spec.services,
        "metric": spec.metric,
        "range": spec.range.label(),
        "from_ms": from_ms,
        "until_ms": until_ms,
        "source": read.source,
        "samples": read.samples,
        "documents_read": read.documents,
        "stats": read.stats,
    });
    if !read.annotations.is_empty() {
        body["annotations"] = json!(read.annotations);
    }
    Ok(axum::Json(body).into_response())
}
