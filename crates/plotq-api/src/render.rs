//! Plots by URL: `GET /api/v1/render?kind=histogram&service=checkout&window=1h`, for
//! `<img src>` embeds (wikis, runbooks, chat, email) and the dashboard's past ranges, and
//! `POST /api/v1/render/grants`, which mints signed links to one such URL.
//!
//! Every plot option is a query parameter, read into the same JSON object a
//! `POST /api/v1/plots` body is and validated by `PlotSpec::parse` (a bad parameter is
//! the same `422` naming the field). The plot goes through the workers like any other:
//! an identical request over unchanged data reuses its job and cached image
//! (`routes::single_flight`, for `routes::reuse_for`), otherwise a job is queued. The
//! request then waits, at most `RenderConfig::wait`, for the job to finish (polling its
//! state in the cache), and answers the image with a strong `ETag` (a digest of the
//! bytes, so an identical re-render keeps it), `Cache-Control: private, max-age=` the
//! time the image is shared for, and the job's id in `X-Plotq-Job`; `304` when
//! `If-None-Match` names that ETag; `503 render_timeout` with `Retry-After` when the
//! image is not ready in time (the job goes on, and the retry finds it). At most
//! `RenderConfig::waiters` requests wait at once per process (`503 render_busy` past it).
//!
//! An `<img>` cannot send headers: with authentication on, a link carries `grant=`, a
//! signed read-only claim scoped to the link's canonical query (the known parameters in
//! a fixed order, `ticket` and `grant` left out) and expiring (see `plotq_http::auth`).
//! A `ticket=` (the dashboard's) or a bearer token works as on every GET route.

use crate::routes::{
    ApiState, Flight, cached_image, may_read_services, queue_charged, reuse_for, single_flight,
    state_body,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use plotq_domain::error::pointer_segment;
use plotq_domain::{FieldError, FieldErrors, JobId, JobState, JobStatus, PlotSpec};
use plotq_http::{
    Auth, AuthProblems, Caller, JsonBodyProblems, Limits, Problem, ProblemCode, ProblemDoc,
    RateLimited, Scope, read_json,
};
use plotq_ports::clock::now_ms;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// `GET /api/v1/render`'s bounds and the life of its links.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Longest a request waits for its image.
    pub wait: Duration,
    /// Requests waiting at once in this process (shared by clones).
    pub waiters: Arc<Semaphore>,
    /// Life of a link minted without `ttl_secs`.
    pub grant_ttl: Duration,
    /// Longest life a link may be given.
    pub grant_max_ttl: Duration,
}

impl RenderConfig {
    pub fn waiters(n: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(n.max(1)))
    }
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(10),
            waiters: Self::waiters(256),
            grant_ttl: Duration::from_secs(7 * 86_400),
            grant_max_ttl: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Longest query `GET /api/v1/render` and a grant's `query` may have, in bytes.
pub const MAX_RENDER_QUERY_BYTES: usize = 2048;

/// The routes, to be merged into the api's router.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/render", get(render))
        .route("/api/v1/render/grants", post(grant))
}

/// The query of `GET /api/v1/render`: a plot request's fields, each a parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// The plot kind.
    #[param(nullable = false, value_type = plotq_http::KindDoc)]
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
    #[param(nullable = false, pattern = "^[0-9]+[smhd]$", example = "1h")]
    window: Option<String>,
    /// Start of an absolute range: epoch milliseconds or RFC 3339; not with `window`.
    #[param(nullable = false, example = "2026-11-22T10:00:00Z")]
    from: Option<String>,
    /// End of an absolute range (default: now); only with `from`.
    #[param(nullable = false, example = "1795345200000")]
    until: Option<String>,
    /// Image width in pixels (200 to 4000, default 1000).
    #[param(nullable = false, value_type = Option<u32>, minimum = 200, maximum = 4000)]
    width: Option<String>,
    /// Image height in pixels (150 to 4000, default 600).
    #[param(nullable = false, value_type = Option<u32>, minimum = 150, maximum = 4000)]
    height: Option<String>,
    /// Device pixels per layout pixel (1 to 4, default 1): the image is laid out at
    /// width/scale × height/scale and drawn `scale` times sharper.
    #[param(nullable = false, value_type = Option<u32>, minimum = 1, maximum = 4)]
    scale: Option<String>,
    /// Histogram bins (1 to 1000, default 50).
    #[param(nullable = false, value_type = Option<u32>, minimum = 1, maximum = 1000)]
    bins: Option<String>,
    /// Logarithmic latency axis (histogram and cdf).
    #[param(nullable = false, value_type = Option<bool>)]
    log_x: Option<String>,
    /// Also draw each bucket's maximum (latency_timeseries).
    #[param(nullable = false, value_type = Option<bool>)]
    show_max: Option<String>,
    /// `light` (default) or `dark`.
    #[param(nullable = false, pattern = "^(light|dark)$")]
    theme: Option<String>,
    /// `png` (default) or `svg`.
    #[param(nullable = false, pattern = "^(png|svg)$")]
    format: Option<String>,
    /// A title instead of the generated one (at most 120 characters).
    #[param(nullable = false)]
    title: Option<String>,
    /// A read ticket (`POST /api/v1/tickets`), read by the authenticator.
    #[param(nullable = false)]
    ticket: Option<String>,
    /// A signed link's grant (`POST /api/v1/render/grants`), valid for exactly the other
    /// parameters it was minted with.
    #[param(nullable = false)]
    grant: Option<String>,
    /// Any other parameter: refused, each named.
    #[serde(flatten)]
    #[param(ignore)]
    unknown: BTreeMap<String, String>,
}

/// The parameters `RenderQuery` reads (besides `ticket` and `grant`).
const KNOWN_PARAMETERS: &str = "kind, service, services, metric, window, from, until, width, \
     height, scale, bins, log_x, show_max, theme, format, title, ticket, grant";

impl RenderQuery {
    /// The plot parameters in their fixed order (what a grant signs).
    fn pairs(&self) -> [(&'static str, Option<&String>); 16] {
        [
            ("kind", self.kind.as_ref()),
            ("service", self.service.as_ref()),
            ("services", self.services.as_ref()),
            ("metric", self.metric.as_ref()),
            ("window", self.window.as_ref()),
            ("from", self.from.as_ref()),
            ("until", self.until.as_ref()),
            ("width", self.width.as_ref()),
            ("height", self.height.as_ref()),
            ("scale", self.scale.as_ref()),
            ("bins", self.bins.as_ref()),
            ("log_x", self.log_x.as_ref()),
            ("show_max", self.show_max.as_ref()),
            ("theme", self.theme.as_ref()),
            ("format", self.format.as_ref()),
            ("title", self.title.as_ref()),
        ]
    }

    /// The plot parameters, form-encoded in their fixed order: one plot, one string.
    pub fn canonical(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.pairs() {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.finish()
    }

    /// `422` naming every parameter a plot request does not have.
    fn refuse_unknown(&self, under: &str) -> Result<(), Problem> {
        refuse_unknown(&self.unknown, under, KNOWN_PARAMETERS)
    }

    /// The plot request this query stands for, as `POST /api/v1/plots` would take it:
    /// numbers and booleans as JSON numbers and booleans when they read as such (else
    /// the string, which the spec's rules then name), `services` split on commas,
    /// timestamps as epoch-ms numbers or RFC 3339 strings.
    fn as_plot_request(&self) -> Value {
        let mut request = Map::new();
        for (name, value) in self.pairs() {
            let Some(raw) = value else { continue };
            let value = match name {
                "services" => Value::Array(raw.split(',').map(|s| s.trim().into()).collect()),
                "width" | "height" | "scale" | "bins" => raw
                    .parse::<u64>()
                    .map_or_else(|_| raw.as_str().into(), Value::from),
                "from" | "until" => crate::stats::timestamp(raw),
                "log_x" | "show_max" => match raw.as_str() {
                    "true" | "1" => true.into(),
                    "false" | "0" => false.into(),
                    other => other.into(),
                },
                _ => raw.as_str().into(),
            };
            request.insert(name.into(), value);
        }
        Value::Object(request)
    }

    /// The spec, with every problem named as the parameter (under `under`).
    fn spec(&self, now: i64, under: &str) -> Result<PlotSpec, Problem> {
        self.refuse_unknown(under)?;
        PlotSpec::parse(&self.as_plot_request(), now).map_err(|mut e| {
            for error in &mut e.0 {
                error.field = format!("{under}{}", error.field);
            }
            Problem::invalid(e)
        })
    }
}

/// `422` naming (under `under`) each of `unknown`, the parameters a query does not have.
pub(crate) fn refuse_unknown(
    unknown: &BTreeMap<String, String>,
    under: &str,
    known: &str,
) -> Result<(), Problem> {
    if unknown.is_empty() {
        return Ok(());
    }
    let errors = unknown
        .keys()
        .take(plotq_domain::error::MAX_REPORTED_ERRORS)
        .map(|name| {
            FieldError::new(
                format!("{under}/{}", pointer_segment(name)),
                format!("unknown parameter; known parameters: {known}"),
            )
        })
        .collect();
    Err(Problem::invalid(FieldErrors(errors)))
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
#[utoipa::path(
    get, path = "/api/v1/render", tag = "plots",
    params(RenderQuery,
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
    State(state): State<ApiState>,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    raw_query: axum::extract::RawQuery,
    query: Result<Query<RenderQuery>, QueryRejection>,
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
    let spec = query.spec(now, "")?;
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
            Some(job) if job.status == JobStatus::Failed => {
                return Err(Problem::new(
                    ProblemCode::PlotFailed,
                    format!(
                        "plot {id} failed: {}",
                        job.error.as_deref().unwrap_or("unknown error")
                    ),
                )
                .with_extra(json!({"job": state_body(job)})));
            }
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
        (status = 200, description = "The link", body = crate::openapi::GrantDoc,
            headers(("cache-control" = String, description = "`no-store`"))),
        AuthProblems, JsonBodyProblems, RateLimited,
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn grant(
    caller: Caller,
    Extension(auth): Extension<Arc<Auth>>,
    Extension(limits): Extension<Arc<Limits>>,
    State(state): State<ApiState>,
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
    let query: RenderQuery = serde_urlencoded::from_str(request.query.trim_start_matches('?'))
        .map_err(|e| Problem::invalid_field("/query", format!("not a query string: {e}")))?;
    if query.ticket.is_some() || query.grant.is_some() {
        return Err(Problem::invalid_field(
            "/query",
            "must hold plot parameters only, no ticket or grant",
        ));
    }
    let now = now_ms();
    let spec = query.spec(now, "/query")?;
    may_read_services(&caller, &spec)?;
    limits.check_plot(&caller.limit_key)?;
    let canonical = query.canonical();
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let grant = auth
        .issue_grant(&caller, &canonical, expires)
        .ok_or_else(crate::routes::signed_claims_mint_nothing)?;
    let mut link = form_urlencoded::Serializer::new(canonical.clone());
    link.append_pair("grant", &grant);
    let mut response = Json(json!({
        "url": format!("/api/v1/render?{}", link.finish()),
        "grant": grant,
        "expires_at_ms": expires,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &str) -> RenderQuery {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn parameters_read_as_a_plot_request() {
        assert_eq!(
            query("kind=histogram&service=checkout&window=1h&width=800&log_x=true&scale=2")
                .as_plot_request(),
            json!({"kind": "histogram", "service": "checkout", "window": "1h",
                "width": 800, "scale": 2, "log_x": true})
        );
        assert_eq!(
            query("kind=cdf&services=a,b&from=1700000000000&width=wide&show_max=maybe")
                .as_plot_request(),
            json!({"kind": "cdf", "services": ["a", "b"], "from": 1_700_000_000_000_i64,
                "width": "wide", "show_max": "maybe"})
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let p = query("kind=histogram&service=a&width=wide&colour=red")
            .spec(1_700_000_000_000, "")
            .unwrap_err();
        assert_eq!(p.errors[0].field, "/colour");
        let p = query("kind=histogram&service=a&width=wide")
            .spec(1_700_000_000_000, "/query")
            .unwrap_err();
        assert_eq!(p.errors[0].field, "/query/width");
        assert!(p.errors[0].problem.contains("200 to 4000"), "{p:?}");
    }

    #[test]
    fn the_canonical_query_is_one_string_per_plot() {
        let a = query("window=1h&service=a&kind=histogram&ticket=t&grant=g");
        let b = query("kind=histogram&service=a&window=1h");
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), "kind=histogram&service=a&window=1h");
        assert_ne!(
            query("kind=histogram&service=b&window=1h").canonical(),
            b.canonical()
        );
        assert_eq!(
            query("kind=histogram&service=a&title=p%2699+%C3%A9").canonical(),
            "kind=histogram&service=a&title=p%2699+%C3%A9"
        );
    }

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
