//! Plots by URL: `GET /api/v1/render?kind=histogram&service=checkout&window=1h`, for
//! `<img src>` embeds (wikis, runbooks, chat, email) and the dashboard's past ranges, and
//! `POST /api/v1/render/grants`, which mints signed links to one such URL.
//!
//! Every plot option is a query parameter (a [`PlotQuery`], shared with
//! `GET /api/v1/stats`), read into the same JSON object a `POST /api/v1/plots` body is and validated by `PlotSpec::parse` (a bad parameter is
//! the same `422` naming the field). The plot goes through the workers like any other:
//! an identical request over unchanged data reuses its job and cached image
//! (`plots::single_flight`, for `plots::reuse_for`), otherwise a job is queued. The
//! request then waits, at most `RenderConfig::wait`, for the job to finish (polling its
//! state in the cache), and answers the image with a strong `ETag` (a digest of the
//! bytes, so an identical re-render keeps it), `Cache-Control: private, max-age=` the
//! time the image is shared for, and the job's id in `X-Plotq-Job`; `304` when
//! `If-None-Match` names that ETag; `503 render_timeout` with `Retry-After` when the
//! image is not ready in time (the job goes on, and the retry finds it). At most
//! `RenderConfig::waiters` requests wait at once per process (`503 render_busy` past it).
//! An `<img>` embed gets its errors as an SVG card instead (`card.rs`).
//!
//! An `<img>` cannot send headers: with authentication on, a link carries `grant=`, a
//! signed read-only claim scoped to the link's canonical query (the known parameters in
//! a fixed order, `ticket` and `grant` left out) and expiring (see `plotq_http::auth`).
//! A `ticket=` (the dashboard's) or a bearer token works as on every GET route.

use crate::access::{may_read_services, no_store, signed_claims_mint_nothing};
use crate::openapi::GrantDoc;
use crate::plots::{
    Flight, cached_image, plot_failed, queue_charged, reuse_for, single_flight, state_body,
};
use crate::query::{PlotQuery, RENDER_PARAMETERS};
use crate::state::ApiState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::{JobId, JobState, JobStatus};
use plotq_http::{
    Auth, AuthProblems, Caller, JsonBodyProblems, Limits, Problem, ProblemCode, ProblemDoc,
    RateLimited, Scope, read_json,
};
use plotq_ports::clock::now_ms;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

/// Longest query `GET /api/v1/render` and a grant's `query` may have, in bytes.
pub(crate) const MAX_RENDER_QUERY_BYTES: usize = 2048;

/// The query of `GET /api/v1/render` in the document: every parameter of a
/// [`PlotQuery`].
struct RenderParams;

impl IntoParams for RenderParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        PlotQuery::params(&RENDER_PARAMETERS, |_| {})
    }
}

fn query_too_long() -> Problem {
    Problem::invalid_field(
        "",
        format!("the query is longer than {MAX_RENDER_QUERY_BYTES} bytes"),
    )
}

/// A plot as an image, by URL: queued through the workers (or an identical cached one
/// reused), waited for up to `PLOTQ_RENDER_WAIT_MS`.
///
/// Outages: RabbitMQ or Redis down, `503`; MongoDB down, `503 render_timeout` (the job
/// waits in a worker for MongoDB's return).
///
/// For `<img>` embeds: a request whose `Accept` asks for images at least as much as for
/// JSON (as browsers' image requests do) gets every error as an `image/svg+xml` card
/// saying why there is no plot ("No data in this window", an invalid link, …), with the
/// same status and `Retry-After`, `Cache-Control: no-store` and `X-Plotq-Problem: <code>`;
/// other clients get the problem+json below.
#[utoipa::path(
    get, path = "/api/v1/render", tag = "plots",
    params(RenderParams,
        ("if-none-match" = Option<String>, Header, description = "An ETag of an earlier answer: `304` if the image is still that one"),
    ),
    responses(
        (status = 200, description = "The image", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml"),
        ), headers(
            ("etag" = String, description = "A digest of the image's bytes"),
            ("cache-control" = String, description = "`private, max-age=<seconds the image is shared for>`"),
            ("x-plotq-job" = String, description = "The job that drew it (`GET /api/v1/plots/{id}` has its statistics)"),
        )),
        (status = 304, description = "The image is still the one `If-None-Match` names", headers(
            ("etag" = String, description = "The image's ETag"),
        )),
        AuthProblems,
        (status = 409, description = "The plot failed (`plot_failed`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "The image left the cache as it was read (`expired`); ask again", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters, each named as in a plot request (`invalid_field`)", body = ProblemDoc, content_type = "application/problem+json"),
        RateLimited,
        (status = 503, description = "Not rendered within the wait (`render_timeout`, the job goes on), too many requests waiting (`render_busy`), or a dependency is down", body = ProblemDoc, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = ["read"]), ("ticket" = []), ("grant" = []))
)]
pub(crate) async fn render(
    caller: Result<Caller, Problem>,
    State(state): State<Arc<ApiState>>,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    raw_query: RawQuery,
    query: Result<Query<PlotQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    if raw_query
        .0
        .as_ref()
        .is_some_and(|q| q.len() > MAX_RENDER_QUERY_BYTES)
    {
        return Err(query_too_long());
    }
    let now = now_ms();
    // A grant opens its own query only, whoever holds the link; otherwise the caller.
    let grant = query
        .as_ref()
        .ok()
        .and_then(|Query(q)| q.grant.as_deref().map(|g| (g, q.canonical())));
    let caller = match grant {
        Some((grant, canonical)) => auth.verify_grant(grant, &canonical, now)?,
        None => caller?.0,
    };
    caller.require(Scope::Read)?;
    // Malformed pairs, or a parameter given twice.
    let Query(query) = query.map_err(|e| Problem::invalid_field("", e.body_text()))?;
    let spec = query.spec(&RENDER_PARAMETERS, None, now, "")?;
    let caller = Caller(caller);
    may_read_services(&caller, &spec)?;
    // A link's traffic has its own budget (every request, the cheap ones too, so one
    // link cannot be hammered without bound); nobody else pays for it.
    if caller.via_grant() {
        limits.check_grant(&caller.limit_key)?;
    }
    let _mine = limits.wait_for_render(&caller.limit_key)?;
    let _waiting = state
        .config
        .render
        .waiters
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            Problem::new(
                ProblemCode::RenderBusy,
                "this api has as many render requests waiting as it allows; retry shortly",
            )
            .with_retry_after(1)
        })?;
    let job = JobState::queued(JobId::issued_at(now), spec, now);
    let (id, reused) = match single_flight(&state, &job).await? {
        Flight::Existing(existing) => (existing.id, true),
        Flight::Claimed(claim) => {
            queue_charged(&state, &limits, &caller, &job, claim).await?;
            (job.id, false)
        }
    };
    let done = wait_for(&state, id, state.config.render.wait).await?;
    let image = cached_image(&state, id).await?;
    let etag = format!("\"{:x}\"", Sha256::digest(&image));
    let max_age = reuse_for(&state.config, &done.spec, now).as_secs();
    let not_modified = if_none_match(&headers, &etag);
    let outcome = match (not_modified, reused) {
        (true, _) => "not_modified",
        (false, true) => "reused",
        (false, false) => "rendered",
    };
    metrics::counter!("plotq_render_requests_total", "outcome" => outcome).increment(1);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, image).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(done.spec.format.content_type()),
        );
        r
    };
    let h = response.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    // A tenant's data: browsers may keep it, shared caches may not.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("private, max-age={max_age}")).expect("valid header"),
    );
    h.insert(
        "x-plotq-job",
        HeaderValue::from_str(&id.to_string()).expect("uuid is a valid header"),
    );
    Ok(response)
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their value.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// Job `id`'s state once done, polling the cache (10 ms, doubling to `MAX_POLL`) for at
/// most `wait`; `409 plot_failed` if it failed, `503 render_timeout` past the wait.
async fn wait_for(state: &ApiState, id: JobId, wait: Duration) -> Result<JobState, Problem> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(10);
    loop {
        let job = state.cache.get_state(id).await?;
        match &job {
            Some(job) if job.status == JobStatus::Done => return Ok(job.clone()),
            Some(job) if job.status == JobStatus::Failed => return Err(plot_failed(job)),
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            metrics::counter!("plotq_render_requests_total", "outcome" => "timeout").increment(1);
            let mut problem = Problem::new(
                ProblemCode::RenderTimeout,
                format!(
                    "plot {id} was not rendered within {} ms; it is still being made: ask again",
                    wait.as_millis()
                ),
            )
            .with_retry_after(1);
            if let Some(job) = &job {
                problem = problem.with_extra(json!({"job": state_body(job)}));
            }
            return Err(problem);
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// The longest pause between two looks at a waited-for job's state: an image is answered
/// at most this long after it is ready (one cache read per waiter per pause).
const MAX_POLL: Duration = Duration::from_millis(50);

/// What `POST /api/v1/render/grants` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The render URL's query (without `?`): the plot parameters of `GET /api/v1/render`.
    #[schema(example = "kind=histogram&service=checkout&window=1h&width=800&height=450")]
    query: String,
    /// How long the link lives, in seconds (60 to `PLOTQ_GRANT_MAX_TTL_SECS`; default
    /// `PLOTQ_GRANT_TTL_SECS`).
    #[serde(default)]
    #[schema(minimum = 60)]
    ttl_secs: Option<u64>,
}

/// A signed, read-only, expiring link to one plot: its render URL with `grant=`, for
/// `<img>` embeds that cannot send headers. The link opens exactly these parameters
/// (the window of a `window=` link keeps moving: it always shows the latest data), for
/// the services the caller may read. Revoke every link by rotating `PLOTQ_GRANT_SECRET`,
/// or a token's links by removing the token.
#[utoipa::path(
    post, path = "/api/v1/render/grants", tag = "plots",
    request_body(content = GrantRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The link", body = GrantDoc,
            headers(("cache-control" = String, description = "`no-store`"))),
        AuthProblems, JsonBodyProblems, RateLimited,
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn grant(
    caller: Caller,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(limits): Extension<Arc<Limits>>,
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let body = read_json(&headers, body)?;
    let request: GrantRequest =
        serde_json::from_value(body).map_err(|e| Problem::invalid_field("", e.to_string()))?;
    if request.query.len() > MAX_RENDER_QUERY_BYTES {
        return Err(Problem::invalid_field(
            "/query",
            format!("must be at most {MAX_RENDER_QUERY_BYTES} bytes"),
        ));
    }
    let config = &state.config.render;
    let ttl = match request.ttl_secs {
        None => config.grant_ttl,
        Some(s) if (60..=config.grant_max_ttl.as_secs()).contains(&s) => Duration::from_secs(s),
        Some(_) => {
            return Err(Problem::invalid_field(
                "/ttl_secs",
                format!(
                    "must be a whole number of seconds from 60 to {}",
                    config.grant_max_ttl.as_secs()
                ),
            ));
        }
    };
    let query: PlotQuery = serde_urlencoded::from_str(request.query.trim_start_matches('?'))
        .map_err(|e| Problem::invalid_field("/query", format!("not a query string: {e}")))?;
    if query.ticket.is_some() || query.grant.is_some() {
        return Err(Problem::invalid_field(
            "/query",
            "must hold plot parameters only, no ticket or grant",
        ));
    }
    let now = now_ms();
    let spec = query.spec(&RENDER_PARAMETERS, None, now, "/query")?;
    may_read_services(&caller, &spec)?;
    limits.check_plot(&caller.limit_key)?;
    let canonical = query.canonical();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let grant = auth
        .issue_grant(&caller, &canonical, expires)
        .ok_or_else(signed_claims_mint_nothing)?;
    let mut link = form_urlencoded::Serializer::new(canonical.clone());
    link.append_pair("grant", &grant);
    Ok(no_store(
        Json(json!({
            "url": format!("/api/v1/render?{}", link.finish()),
            "grant": grant,
            "expires_at_ms": expires,
        }))
        .into_response(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_reads_lists_and_weak_tags() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&h, "\"abc\""));
        assert!(!if_none_match(&h, "\"abd\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"anything\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"abc\""));
    }
}
