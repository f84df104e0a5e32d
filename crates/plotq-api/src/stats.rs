//! `GET /api/v1/stats`: the numbers a plot would show, answered at once as JSON.
//!
//! The query names what a plot request names — `kind` (default `histogram`), `service`
//! or `services` (a comma-separated list, for the kinds that compare), `metric`, and
//! `window` or `from`/`until` — and is validated by `PlotSpec::parse`, so a bad
//! parameter gets the same `422` (naming the field) as the same field of
//! `POST /api/v1/plots`. The window is read through `plotq_ports::window`, the path the
//! workers draw from (raw samples or rollups by the same `SourcePolicy`, so the work of
//! one answer is bounded the same way), and the statistics are the job state's:
//! `SeriesStats` with the extras of the kind (rates for throughput, codes and the error
//! ratio for status codes and error rate).
//!
//! Authorisation is that of reading a plot: the `read` scope, and every service within
//! the caller's allowlist (`403` naming the others). Each answer takes one plot request
//! from the caller's rate (`429`). No sample of any service in the window is `404
//! not_found` with the worker's "no data for …" words; services without samples are
//! left out of `stats`, as in a job state.

use crate::routes::{ApiState, may_read_services};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use plotq_domain::PlotSpec;
use plotq_http::{
    AuthProblems, Caller, Limits, Problem, ProblemCode, RateLimited, Scope, Unavailable,
};
use plotq_ports::clock::now_ms;
use plotq_ports::window::{no_data, read_window};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long a stats request waits for one of the process's read slots.
const STATS_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The route, to be merged into the api's router.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/stats", get(stats))
}

/// The query of `GET /api/v1/stats`: a plot request's data fields.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The plot kind whose numbers to compute (default `histogram`): `throughput` adds
    /// rates, `status_codes` and `error_rate` add codes and the error ratio.
    #[param(nullable = false, value_type = Option<plotq_http::KindDoc>)]
    kind: Option<String>,
    /// One service (or use `services`).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    service: Option<String>,
    /// Comma-separated services, 1 to 8, for the kinds that compare (histogram,
    /// latency_timeseries, cdf); not with `service`.
    #[param(nullable = false, example = "checkout,payments")]
    services: Option<String>,
    /// Defaults to `latency_ms` (`status_code` for status_codes and error_rate).
    #[param(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    metric: Option<String>,
    /// The last `window` (default `10m`, 10s to 7d); not with `from`/`until`.
    #[param(nullable = false, pattern = "^[0-9]+[smhd]$", example = "15m")]
    window: Option<String>,
    /// Start of an absolute range: epoch milliseconds or RFC 3339; not with `window`.
    #[param(nullable = false, example = "2026-11-22T10:00:00Z")]
    from: Option<String>,
    /// End of an absolute range (default: now); only with `from`.
    #[param(nullable = false, example = "1795345200000")]
    until: Option<String>,
    /// A read ticket (`POST /api/v1/tickets`), read by the authenticator.
    #[param(nullable = false)]
    #[allow(dead_code)] // reason: read by the authenticator from the raw query
    ticket: Option<String>,
    /// Any other parameter: refused, each named (as a plot request's unknown fields).
    #[serde(flatten)]
    #[param(ignore)]
    unknown: BTreeMap<String, String>,
}

/// The parameters `StatsQuery` reads.
const KNOWN_PARAMETERS: &str = "kind, service, services, metric, window, from, until, ticket";

impl StatsQuery {
    /// `422` naming every parameter a plot request does not have.
    fn refuse_unknown(&self) -> Result<(), Problem> {
        crate::render::refuse_unknown(&self.unknown, "", KNOWN_PARAMETERS)
    }

    /// The plot request this query stands for, as `POST /api/v1/plots` would take it.
    fn as_plot_request(&self) -> Value {
        let mut request = Map::new();
        request.insert(
            "kind".into(),
            self.kind.as_deref().unwrap_or("histogram").into(),
        );
        for (name, value) in [
            ("service", &self.service),
            ("metric", &self.metric),
            ("window", &self.window),
        ] {
            if let Some(value) = value {
                request.insert(name.into(), value.as_str().into());
            }
        }
        if let Some(list) = &self.services {
            let services = list.split(',').map(|s| Value::from(s.trim())).collect();
            request.insert("services".into(), Value::Array(services));
        }
        for (name, value) in [("from", &self.from), ("until", &self.until)] {
            if let Some(value) = value {
                request.insert(name.into(), timestamp(value));
            }
        }
        Value::Object(request)
    }
}

/// A timestamp parameter as a plot request carries it: a number of epoch milliseconds
/// when it is one, an RFC 3339 string otherwise.
pub(crate) fn timestamp(raw: &str) -> Value {
    match raw.parse::<i64>() {
        Ok(ms) => ms.into(),
        Err(_) => raw.into(),
    }
}

/// The statistics of services over a window, as a plot of `kind` would show them.
///
/// Outages: MongoDB down, `503` (in milliseconds once the outage is known); Redis or
/// RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "metrics",
    params(StatsQuery),
    responses(
        (status = 200, description = "Each service's numbers in the window (services without samples left out)", body = crate::openapi::StatsDoc),
        AuthProblems,
        (status = 404, description = "No sample of any of the services in the window (`not_found`, `no data for …`)", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters, each named as in a plot request (`invalid_field`)", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        RateLimited, Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn stats(
    caller: Caller,
    State(state): State<ApiState>,
    Extension(limits): Extension<Arc<Limits>>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let Query(query) = query.map_err(|e| Problem::invalid_field("", e.body_text()))?;
    query.refuse_unknown()?;
    let now = now_ms();
    let spec = PlotSpec::parse(&query.as_plot_request(), now).map_err(Problem::invalid)?;
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
    let body = json!({
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
    Ok(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &str) -> StatsQuery {
        let uri: axum::http::Uri = format!("/api/v1/stats?{pairs}").parse().unwrap();
        Query::<StatsQuery>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn queries_read_as_plot_requests() {
        assert_eq!(
            query("service=checkout&window=15m").as_plot_request(),
            json!({"kind": "histogram", "service": "checkout", "window": "15m"})
        );
        assert_eq!(
            query(
                "kind=cdf&services=a,%20b&metric=m&from=1700000000000&until=2026-01-01T00:00:00Z"
            )
            .as_plot_request(),
            json!({"kind": "cdf", "services": ["a", "b"], "metric": "m",
                "from": 1_700_000_000_000_i64, "until": "2026-01-01T00:00:00Z"})
        );
        let refused = query("service=a&widht=3&ticket=t")
            .refuse_unknown()
            .unwrap_err();
        assert_eq!(refused.errors.len(), 1);
        assert_eq!(refused.errors[0].field, "/widht");
    }
}
