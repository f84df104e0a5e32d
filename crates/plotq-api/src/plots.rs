//! Plot jobs: `POST /api/v1/plots` (a spec in, a queued job out, answered `202` once
//! the broker confirmed it), `GET /api/v1/plots/{id}` (its state) and its image
//! (`/png`, `/image`). Also how any plot request becomes a job, shared with
//! `GET /api/v1/render`: identical requests over unchanged data share one job
//! ([`single_flight`], for as long as [`reuse_for`] says), and a job that is really
//! queued is charged to its caller first ([`queue_charged`]: its plot budget and its
//! tenant's share of the queue) and put in the tenant's lane ([`queue_job`]).
//!
//! Each handler authenticates first (`Caller`, 401), checks its scope and the caller's
//! services (403), then the body (415/413/400/422) and the caller's rate (429), and
//! only then touches a dependency. A plot job belongs to its services: a caller limited
//! to other services gets `404` for it, exactly as for an unknown id, so ids cannot be
//! probed across tenants.

use crate::access::may_read_services;
use crate::openapi::{JobStateDoc, PlotSpecDoc};
use crate::state::{ApiConfig, ApiState};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::wire::{JobMessage, Lane};
use plotq_domain::{ImageFormat, JobId, JobState, JobStatus, PlotSpec, TimeRange};
use plotq_http::{
    AuthProblems, Caller, JobReadProblems, JsonBodyProblems, Limits, Problem, ProblemCode,
    ProblemDoc, RateLimited, Scope, Unavailable, read_json,
};
use plotq_ports::clock::now_ms;
use plotq_ports::{LaneSlot, RequestClaim};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, IntoResponses};

/// The path of the routes on one job.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // reason: describes the path for the document; handlers read it raw
struct JobPath {
    /// The job id (a UUID)
    #[param(format = "uuid")]
    id: String,
}

/// `410`: what the image routes answer once the image or the state is gone.
#[derive(IntoResponses)]
#[allow(dead_code)] // reason: describes the answer for the document, never built
enum ImageGone {
    #[response(
        status = 410,
        description = "The image expired from the cache (`expired`), or the job's state was lost with a cache that restarted empty (`state_lost`)",
        content_type = "application/problem+json"
    )]
    Gone(ProblemDoc),
}

/// `409 plot_failed`, with the job's state.
pub(crate) fn plot_failed(job: &JobState) -> Problem {
    Problem::new(
        ProblemCode::PlotFailed,
        format!(
            "plot {} failed: {}",
            job.id,
            job.error.as_deref().unwrap_or("unknown error")
        ),
    )
    .with_extra(json!({"job": state_body(job)}))
}

/// A job's state as clients see it: its stored state plus the URLs of its state and,
/// once done, of its image.
pub(crate) fn state_body(job: &JobState) -> Value {
    let mut body = serde_json::to_value(job).expect("job state serialises");
    let url = format!("/api/v1/plots/{}", job.id);
    body["status_url"] = json!(url);
    if job.status == JobStatus::Done {
        body["image_url"] = json!(format!("{url}/image"));
        if job.spec.format == ImageFormat::Png {
            body["png_url"] = json!(format!("{url}/png"));
        }
    }
    body
}

fn with_location(mut response: Response, id: JobId) -> Response {
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/plots/{id}")).expect("uuid path is a valid header"),
    );
    response
}

/// Request a plot: answered `202` once the job is durably queued (or `200`/`202` with
/// `deduplicated` when an identical request already has a job).
///
/// Outages: RabbitMQ or Redis down, `503` and nothing queued (in milliseconds once the
/// outage is known); MongoDB down, `202` (workers hold the job until MongoDB is back,
/// for up to `PLOTQ_OUTAGE_BUDGET`; past it the job is dead-lettered as
/// `dependency_unavailable`, for `plotq dlq retry`).
#[utoipa::path(
    post, path = "/api/v1/plots", tag = "plots",
    request_body(content = PlotSpecDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "An identical plot is already rendered and cached (`deduplicated`)", body = JobStateDoc,
            headers(("location" = String, description = "The job: `/api/v1/plots/{id}`"))),
        (status = 202, description = "Queued (RabbitMQ confirmed and routed the job), or an identical request's job is queued or rendering (`deduplicated`)", body = JobStateDoc,
            headers(("location" = String, description = "The job: `/api/v1/plots/{id}`"))),
        AuthProblems, JsonBodyProblems, RateLimited, Unavailable,
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn request_plot(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let body = read_json(&headers, body)?;
    let spec = PlotSpec::parse(&body, now_ms()).map_err(Problem::invalid)?;
    may_read_services(&caller, &spec)?;
    let job = JobState::queued(JobId::issued_at(now_ms()), spec, now_ms());
    let claim = match single_flight(&state, &job).await? {
        Flight::Existing(existing) => {
            let mut body = state_body(&existing);
            body["deduplicated"] = json!(true);
            let status = if existing.status == JobStatus::Done {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            return Ok(with_location(
                (status, axum::Json(body)).into_response(),
                existing.id,
            ));
        }
        Flight::Claimed(claim) => claim,
    };
    queue_charged(&state, &limits, &caller, &job, claim).await?;
    Ok(with_location(
        (StatusCode::ACCEPTED, axum::Json(state_body(&job))).into_response(),
        job.id,
    ))
}

/// Charges a render that is about to be queued to `caller` — its plot budget (a render
/// link's requests have their own, charged at the door) and a place in its tenant's
/// share of the queue (`jobs_in_flight_per_caller`, `429 too_many_jobs`) — then queues
/// it in the tenant's lane. Refused, the single-flight claim is released: answers shared
/// with or cached from another job cost nothing, and only a job that is really queued is
/// ever charged.
pub(crate) async fn queue_charged(
    state: &ApiState,
    limits: &Limits,
    caller: &Caller,
    job: &JobState,
    claim: Option<String>,
) -> Result<(), Problem> {
    let lane = lane_of(caller);
    let charged = charge(state, limits, caller, job, &lane).await;
    if let Err(refused) = charged {
        release_claim(state, claim.as_deref(), job.id).await;
        return Err(refused);
    }
    if let Err(e) = queue_job(state, job, claim, Some(lane.clone())).await {
        if let Err(undo) = state.cache.end_job(lane.as_str(), job.id).await {
            tracing::warn!(error = %undo, id = %job.id, "cannot give back the job's place; its lease frees it");
        }
        return Err(e);
    }
    Ok(())
}

/// The lane of `caller`'s jobs: a digest of its tenant.
pub(crate) fn lane_of(caller: &Caller) -> Lane {
    Lane::of_digest(&plotq_http::auth::sha256_hex(caller.tenant.as_bytes()))
}

async fn charge(
    state: &ApiState,
    limits: &Limits,
    caller: &Caller,
    job: &JobState,
    lane: &Lane,
) -> Result<(), Problem> {
    if !caller.via_grant() {
        limits.check_plot(&caller.limit_key)?;
    }
    let cap = state.config.jobs_in_flight_per_caller;
    let slot = LaneSlot {
        lane: lane.as_str(),
        id: job.id,
        cap,
        lease: state.config.job_lease,
        now_ms: now_ms(),
    };
    let counted = state.cache.begin_job(&slot).await?;
    if counted {
        Ok(())
    } else {
        metrics::counter!("plotq_jobs_refused_total", "reason" => "too_many_jobs").increment(1);
        Err(Problem::new(
            ProblemCode::TooManyJobs,
            format!(
                "this caller has {cap} plot jobs queued or rendering (PLOTQ_JOBS_IN_FLIGHT_PER_CALLER); \
                 wait for one to finish"
            ),
        )
        .with_retry_after(1))
    }
}

/// Gives up the single-flight claim `key` held for job `id` (best effort: it lapses).
async fn release_claim(state: &ApiState, key: Option<&str>, id: JobId) {
    if let Some(key) = key
        && let Err(undo) = state.cache.release_request(key, id).await
    {
        tracing::warn!(error = %undo, %id, "cannot release the single-flight claim");
    }
}

/// Publishes `job` and writes its first state. The state is written once the broker
/// confirmed the job, and only if a worker has not already written a newer one: until
/// then an identical request finds the claim without a state and renders its own
/// rather than being pointed at a job whose publish may still fail. If queueing fails,
/// the claim is released, so no later request is pointed at a job that never existed.
pub(crate) async fn queue_job(
    state: &ApiState,
    job: &JobState,
    claim: Option<String>,
    lane: Option<Lane>,
) -> Result<(), Problem> {
    let mut message = JobMessage::new(job);
    message.lane = lane;
    if let Err(e) = state.queue.publish(&message).await {
        release_claim(state, claim.as_deref(), job.id).await;
        return Err(e.into());
    }
    if let Err(e) = state
        .cache
        .put_state_if_absent(job, state.config.state_ttl)
        .await
    {
        // Queued durably all the same: the worker writes the state when it starts.
        tracing::warn!(error = %e, id = %job.id, "job queued, its state not written yet");
    }
    tracing::debug!(id = %job.id, service = %job.spec.service(), kind = job.spec.kind.as_str(), "plot job queued");
    Ok(())
}

pub(crate) enum Flight {
    /// An identical request's job (queued, rendering, or done with its image cached)
    /// answers this one.
    Existing(Box<JobState>),
    /// This request renders; it holds the single-flight key (if deduplication is on).
    Claimed(Option<String>),
}

/// How long identical requests over unchanged data share a job and its image
/// (`dedupe_for` at least, never longer than the image is cached):
///
/// - a range wholly in the past draws the same picture until its series get new
///   samples (which change the sharing key), so for as long as the image is cached;
/// - a range ending at the request (`window`) moves with the clock, so only while it has
///   moved less than one of the plot's time buckets (`series::time_bucket_ms` of its
///   span and layout width): 15 s for the last 15 minutes at 800 px, 10 minutes for a
///   day (the default image lifetime).
pub fn reuse_for(config: &ApiConfig, spec: &PlotSpec, now_ms: i64) -> Duration {
    if config.dedupe_for.is_zero() {
        return Duration::ZERO;
    }
    let longest = config.image_ttl.max(config.dedupe_for);
    match spec.range {
        TimeRange::Between { until_ms, .. } if until_ms < now_ms => longest,
        range => {
            let bucket =
                plotq_domain::series::time_bucket_ms(range.span_ms(), spec.layout_size().0);
            Duration::from_millis(u64::try_from(bucket).unwrap_or(0))
                .clamp(config.dedupe_for, longest)
        }
    }
}

/// How long the hours of new samples are remembered for the single flight of past
/// ranges: longer than any render is reused ([`reuse_for`]), with a minute to spare.
pub fn reuse_horizon(config: &ApiConfig) -> Duration {
    config.image_ttl.max(config.dedupe_for) + Duration::from_secs(60)
}

/// Identical requests share a job: while one is queued or rendering, or finished and
/// still cached, the same spec over the same data is answered with that job instead of
/// a new render (within [`reuse_for`]). The same data: for a range wholly in the past,
/// no sample timed inside it arrived since (the hours of its series,
/// `ViewRegistry::range_touched`), however much newer data flows; for a range reaching
/// now, no sample of its series arrived at all.
pub(crate) async fn single_flight(state: &ApiState, job: &JobState) -> Result<Flight, Problem> {
    let ttl = reuse_for(&state.config, &job.spec, job.created_at_ms);
    if ttl.is_zero() {
        return Ok(Flight::Claimed(None));
    }
    let spec = &job.spec;
    let mut key = serde_json::to_string(spec).expect("spec serialises");
    let past = match spec.range {
        TimeRange::Between { from_ms, until_ms } if until_ms < job.created_at_ms => {
            Some((from_ms, until_ms))
        }
        _ => None,
    };
    // Time plots draw their services' annotations: those move the watermark too.
    let annotated = spec
        .services
        .iter()
        .filter(|_| spec.kind.has_time_axis())
        .map(|s| (s.as_str(), plotq_ports::views::ANNOTATIONS_SERIES));
    for (service, metric) in read_series(spec).into_iter().chain(annotated) {
        let watermark = match past {
            Some((from, until)) => {
                state
                    .views
                    .range_touched(service, metric, from, until)
                    .await?
            }
            None => state.views.series_touched(service, metric).await?,
        };
        key.push_str(&format!("|{}", watermark.unwrap_or(0)));
    }
    let claim = RequestClaim {
        key: &key,
        job: job.id,
        ttl,
    };
    let Some(holder) = state.cache.claim_request(&claim).await? else {
        return Ok(Flight::Claimed(Some(key))); // first of its kind: render it
    };
    // A holder without a state is still being published: wait (briefly) for it to be
    // confirmed — its state appears — or refused — its claim is released and ours to
    // take. Past the wait, render our own rather than point at a job that may fail. When
    // the claim passes to another request meanwhile, the holder's publish was refused:
    // publish our own at once rather than wait behind every waiter in turn (during a
    // broker outage, each would fail in turn, a poll apart).
    let waiting_until = tokio::time::Instant::now() + HOLDER_PUBLISH_WAIT;
    let existing = loop {
        if let Some(existing) = state.cache.get_state(holder).await? {
            break Some(existing);
        }
        if tokio::time::Instant::now() >= waiting_until {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        match state.cache.claim_request(&claim).await? {
            None => return Ok(Flight::Claimed(Some(key))),
            Some(now_held_by) if now_held_by != holder => return Ok(Flight::Claimed(None)),
            Some(_) => {}
        }
    };
    if let Some(existing) = existing {
        let reusable = match existing.status {
            JobStatus::Queued | JobStatus::Rendering => true,
            JobStatus::Done => state.cache.get_image(holder).await?.is_some(),
            JobStatus::Failed => false,
        };
        if reusable {
            return Ok(Flight::Existing(Box::new(existing)));
        }
    }
    state.cache.replace_request(&claim).await?;
    Ok(Flight::Claimed(Some(key)))
}

/// The (service, metric) series a spec reads: each service's metric, and a
/// correlation's x series.
fn read_series(spec: &PlotSpec) -> Vec<(&str, &str)> {
    let metric = spec.metric.as_str();
    let mut series: Vec<(&str, &str)> =
        spec.services.iter().map(|s| (s.as_str(), metric)).collect();
    if let Some(c) = &spec.correlation {
        let service = c.x_service.as_ref().unwrap_or(spec.service());
        series.push((service.as_str(), c.x_metric.as_str()));
    }
    series
}

/// How long an identical request waits for the job it would share to be confirmed by
/// the broker (its state written) before rendering its own.
const HOLDER_PUBLISH_WAIT: Duration = Duration::from_secs(2);

/// The job id of the path; every malformed one (not a UUID, not even UTF-8) is `400
/// invalid_id`.
fn parse_id(path: Result<Path<String>, PathRejection>) -> Result<JobId, Problem> {
    let Path(raw) = path.map_err(|_| {
        Problem::new(
            ProblemCode::InvalidId,
            "the job id in the path is not valid UTF-8 (a job id is a UUID)",
        )
    })?;
    let raw = raw.as_str();
    JobId::parse(raw).ok_or_else(|| {
        Problem::new(
            ProblemCode::InvalidId,
            format!(
                "{:?} is not a job id (a UUID)",
                raw.chars().take(64).collect::<String>()
            ),
        )
    })
}

/// Why job `id`'s state is missing, when the cache can tell: issued before the cache
/// lost its data (and recently enough that its state would still be there), the state
/// was lost, not never made (`410 state_lost`).
async fn missing(state: &ApiState, id: JobId) -> Result<Option<Problem>, Problem> {
    let Some(issued) = id.issued_ms() else {
        return Ok(None);
    };
    let now = now_ms();
    let recent = issued >= now.saturating_sub(state.config.state_ttl.as_millis() as i64);
    if !recent || issued > now {
        return Ok(None);
    }
    let since = state.cache.data_since(now).await?;
    Ok((issued < since).then(|| {
        Problem::new(
            ProblemCode::StateLost,
            format!(
                "the state of job {id} was lost when the cache restarted without its data; \
                 a job still queued reappears when a worker runs it, otherwise request the plot again"
            ),
        )
    }))
}

/// The job, if it exists and the caller may read all of its services.
async fn load(state: &ApiState, caller: &Caller, id: JobId) -> Result<JobState, Problem> {
    caller.require(Scope::Read)?;
    let job = state.cache.get_state(id).await?;
    readable(state, caller, id, job).await
}

/// `job` (as read for `id`) if it exists and `caller` may read all of its services;
/// `404` otherwise, exactly as for an unknown id (`410 state_lost` for a state lost
/// with its cache).
async fn readable(
    state: &ApiState,
    caller: &Caller,
    id: JobId,
    job: Option<JobState>,
) -> Result<JobState, Problem> {
    let Some(job) = job else {
        return Err(missing(state, id).await?.unwrap_or_else(|| not_found(id)));
    };
    may_read(caller, &job)?;
    Ok(job)
}

fn not_found(id: JobId) -> Problem {
    Problem::not_found(format!("no plot job {id} (unknown, or expired)"))
}

/// `404` unless `caller` may read every service of `job`.
fn may_read(caller: &Caller, job: &JobState) -> Result<(), Problem> {
    if job
        .spec
        .services
        .iter()
        .all(|s| caller.may_use_service(s.as_str()))
    {
        Ok(())
    } else {
        Err(not_found(job.id))
    }
}

/// A job's state.
///
/// Outages: Redis down, `503` (in milliseconds once the outage is known); MongoDB or
/// RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/plots/{id}", tag = "plots",
    params(JobPath),
    responses(
        (status = 200, description = "The job's state", body = JobStateDoc),
        JobReadProblems, AuthProblems,
        (status = 410, description = "The job's state was lost with a cache that restarted empty (`state_lost`); a job still queued reappears when a worker runs it", body = ProblemDoc, content_type = "application/problem+json"),
        Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn plot_status(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let job = load(&state, &caller, parse_id(id)?).await?;
    // The job's stages as the worker measured them, beside this request's own parts.
    if let Some(timings) = &job.timings {
        for (stage, ms) in timings.stages() {
            plotq_ports::timing::record_ms(job_part(stage), None, ms);
        }
    }
    Ok(axum::Json(state_body(&job)).into_response())
}

/// The `Server-Timing` part of a job stage (`job-queue-wait`, …).
fn job_part(stage: &str) -> &'static str {
    match stage {
        "queue_wait" => "job-queue-wait",
        "query" => "job-query",
        "render" => "job-render",
        "encode" => "job-encode",
        "store" => "job-store",
        _ => "job-total",
    }
}

/// The image of a PNG-format plot.
///
/// A replica serves a done plot's image from its memory once it has read it, and
/// answers `If-None-Match` naming its `ETag` with `304`; otherwise it reads the state
/// and the image in one round trip. Outages: Redis down, `503` for what is not in
/// memory (in milliseconds once the outage is known); MongoDB or RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/plots/{id}/png", tag = "plots",
    params(JobPath, ImageHeaders),
    responses(
        (status = 200, description = "The PNG", content_type = "image/png", body = Vec<u8>, headers(
            ("cache-control" = String, description = "`private, max-age=300, immutable`"),
            ("etag" = String, description = "The image's digest (quoted hex)"))),
        (status = 304, description = "Not modified: `If-None-Match` names the image's `ETag`", headers(
            ("etag" = String, description = "The image's digest (quoted hex)"))),
        JobReadProblems, AuthProblems,
        (status = 409, description = "Not ready yet (`not_ready`, with `Retry-After`), failed (`plot_failed`), or rendered as SVG (`wrong_format`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait (`not_ready`)"))),
        ImageGone,
        Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn plot_png(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    image_response(&state, &caller, parse_id(id)?, &headers, true).await
}

/// The image in whatever format the plot asked for.
///
/// Served from memory and answered `304` as `/png` is. Outages: Redis down, `503` for
/// what is not in memory (in milliseconds once the outage is known); MongoDB or
/// RabbitMQ down, served.
#[utoipa::path(
    get, path = "/api/v1/plots/{id}/image", tag = "plots",
    params(JobPath, ImageHeaders),
    responses(
        (status = 200, description = "The image (PNG or SVG)", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml"),
        ), headers(
            ("cache-control" = String, description = "`private, max-age=300, immutable`"),
            ("etag" = String, description = "The image's digest (quoted hex)"))),
        (status = 304, description = "Not modified: `If-None-Match` names the image's `ETag`", headers(
            ("etag" = String, description = "The image's digest (quoted hex)"))),
        JobReadProblems, AuthProblems,
        (status = 409, description = "Not ready yet (`not_ready`, with `Retry-After`), or failed (`plot_failed`)", body = ProblemDoc, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait (`not_ready`)"))),
        ImageGone,
        Unavailable,
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub(crate) async fn plot_image(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    image_response(&state, &caller, parse_id(id)?, &headers, false).await
}

/// The request headers of the image routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // reason: describes the headers for the document; handlers read them raw
struct ImageHeaders {
    /// `ETag`s the client holds: `304` when one is the image's.
    #[param(rename = "if-none-match")]
    if_none_match: Option<String>,
}

/// The cached image of done job `id`; `410 expired` once it left the cache.
pub(crate) async fn cached_image(state: &ApiState, id: JobId) -> Result<Vec<u8>, Problem> {
    let image = state.cache.get_image(id).await?;
    counted_image(id, image)
}

/// `image` (as read for job `id`), counted as a cache hit or miss; `410 expired` when
/// it is gone.
fn counted_image(id: JobId, image: Option<Vec<u8>>) -> Result<Vec<u8>, Problem> {
    let result = if image.is_some() { "hit" } else { "miss" };
    metrics::counter!("plotq_cache_requests_total", "item" => "image", "result" => result)
        .increment(1);
    plotq_ports::timing::record_ms("cache", Some(result), 0.0);
    image.ok_or_else(|| {
        Problem::new(
            ProblemCode::Expired,
            format!("the image of plot {id} has expired from the cache; request it again"),
        )
    })
}

/// Job `id`'s image for `caller`: from this replica's memory when it holds it (`304`
/// when `If-None-Match` names it), otherwise the state and image in one cache read.
async fn image_response(
    state: &ApiState,
    caller: &Caller,
    id: JobId,
    headers: &HeaderMap,
    png_only: bool,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let hot_images = &state.config.hot_images;
    let now = now_ms();
    let hot_result = |result: &'static str| {
        metrics::counter!("plotq_hot_image_requests_total", "result" => result).increment(1);
    };
    if let Some(hot) = hot_images.job(id, now) {
        may_read(caller, &hot.state)?;
        image_format(&hot.state, png_only)?;
        if if_none_match.is_some_and(|tags| crate::hot::matches(tags, &hot.etag)) {
            hot_result("not_modified");
            return Ok(image_answer(&hot, None));
        }
        if let Some(bytes) = hot_images.image(&hot) {
            hot_result("hit");
            return Ok(image_answer(&hot, Some(bytes)));
        }
    }
    hot_result("miss");
    let (job, image) = state.cache.get_state_and_image(id).await?;
    let job = readable(state, caller, id, job).await?;
    image_format(&job, png_only)?;
    done(&job)?;
    let image = counted_image(id, image)?;
    let ttl = state.config.image_ttl.as_millis() as i64;
    let expires_at_ms = job.updated_at_ms.min(now).saturating_add(ttl);
    let bytes = Bytes::from(image);
    let hot = hot_images.insert(job, bytes.clone(), expires_at_ms);
    let not_modified = if_none_match.is_some_and(|tags| crate::hot::matches(tags, &hot.etag));
    Ok(image_answer(&hot, (!not_modified).then_some(bytes)))
}

/// `409 wrong_format` for an SVG plot's `/png`.
fn image_format(job: &JobState, png_only: bool) -> Result<(), Problem> {
    if png_only && job.spec.format != ImageFormat::Png {
        let id = job.id;
        return Err(Problem::new(
            ProblemCode::WrongFormat,
            format!("plot {id} was rendered as SVG; fetch /api/v1/plots/{id}/image"),
        ));
    }
    Ok(())
}

/// `409` unless `job` is done: `not_ready` (with `Retry-After`) or `plot_failed`.
fn done(job: &JobState) -> Result<(), Problem> {
    let id = job.id;
    match job.status {
        JobStatus::Done => Ok(()),
        JobStatus::Queued | JobStatus::Rendering => Err(Problem::new(
            ProblemCode::NotReady,
            format!("plot {id} is {}; wait for plot.ready", job.status.as_str()),
        )
        .with_retry_after(1)
        .with_extra(json!({"job": state_body(job)}))),
        JobStatus::Failed => Err(plot_failed(job)),
    }
}

/// `200` with the image, or `304` without it.
fn image_answer(hot: &crate::hot::HotJob, image: Option<Bytes>) -> Response {
    let mut response = match image {
        Some(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(hot.state.spec.format.content_type()),
            );
            response
        }
        None => StatusCode::NOT_MODIFIED.into_response(),
    };
    let headers = response.headers_mut();
    // The bytes of a job id never change, but they are a tenant's: private caches only.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300, immutable"),
    );
    if let Ok(etag) = HeaderValue::from_str(&hot.etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::{PlotKind, Window};

    fn spec(range: TimeRange) -> PlotSpec {
        let mut spec = PlotSpec::new(
            PlotKind::Throughput,
            plotq_domain::ServiceName::parse("a").unwrap(),
        );
        spec.range = range;
        spec.width = 800;
        spec
    }

    #[test]
    fn identical_plots_are_shared_while_their_picture_holds() {
        let config = ApiConfig::default(); // 10 s at least, images cached 600 s
        let now = 1_800_000_000_000;
        let last = |w: &str| spec(TimeRange::Last(Window::parse(w).unwrap()));
        // A moving window: one of its time buckets (at 800 px, at most 60 of them).
        assert_eq!(
            reuse_for(&config, &last("15m"), now),
            Duration::from_secs(15)
        );
        assert_eq!(
            reuse_for(&config, &last("1h"), now),
            Duration::from_secs(60)
        );
        assert_eq!(
            reuse_for(&config, &last("5m"), now),
            Duration::from_secs(10)
        );
        assert_eq!(
            reuse_for(&config, &last("1d"), now),
            Duration::from_secs(600)
        );
        // The layout width sets the buckets, not the device pixels.
        let mut sharp = last("1h");
        (sharp.width, sharp.height, sharp.scale) = (2400, 1350, 3);
        assert_eq!(reuse_for(&config, &sharp, now), Duration::from_secs(60));
        // A past range: for as long as the image is cached.
        let past = spec(TimeRange::Between {
            from_ms: now - 7_200_000,
            until_ms: now - 3_600_000,
        });
        assert_eq!(reuse_for(&config, &past, now), Duration::from_secs(600));
        // A range reaching now moves like a window.
        let open = spec(TimeRange::Between {
            from_ms: now - 3_600_000,
            until_ms: now,
        });
        assert_eq!(reuse_for(&config, &open, now), Duration::from_secs(60));
        let off = ApiConfig {
            dedupe_for: Duration::ZERO,
            ..ApiConfig::default()
        };
        assert_eq!(reuse_for(&off, &past, now), Duration::ZERO);
    }
}
