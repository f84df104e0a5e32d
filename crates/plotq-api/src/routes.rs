//! The `/api/v1` resources: metrics (ingest) and plots (jobs, states, images).

use crate::problem::Problem;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use plotq_domain::sample::parse_samples;
use plotq_domain::wire::JobMessage;
use plotq_domain::{ImageFormat, JobId, JobState, JobStatus, PlotSpec};
use plotq_ports::{JobQueue, MetricStore, PlotCache, ViewRegistry};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the API role.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// How long a job's state is kept (covers queueing plus rendering plus reading).
    pub state_ttl: Duration,
    /// Identical plot requests within this period (and with no new samples) share one
    /// job; zero disables it.
    pub dedupe_for: Duration,
    /// Where the dashboard's browser subscribes to events (`/api/v1/events` when the
    /// notifier shares this origin, as in standalone mode; its URL otherwise).
    pub events_url: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            state_ttl: Duration::from_secs(3600),
            events_url: "/api/v1/events".to_owned(),
            dedupe_for: Duration::from_secs(10),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn MetricStore>,
    pub queue: Arc<dyn JobQueue>,
    pub cache: Arc<dyn PlotCache>,
    pub views: Arc<dyn ViewRegistry>,
    pub config: ApiConfig,
}

/// The `/api/v1` router (metrics and plots).
pub fn router(state: ApiState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/api/v1/metrics", post(ingest))
        .route("/api/v1/plots", post(request_plot))
        .route("/api/v1/plots/{id}", get(plot_status))
        .route("/api/v1/plots/{id}/png", get(plot_png))
        .route("/api/v1/plots/{id}/image", get(plot_image))
        .route("/api/v1/services", get(services))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Reads the body as JSON, turning every failure into a precise problem.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, Problem> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                status,
                "body_too_large",
                "Body too large",
                "the request body exceeds the configured limit; send smaller batches",
            )
        } else {
            Problem::new(
                status,
                "unreadable_body",
                "Unreadable body",
                rejection.body_text(),
            )
        }
    })?;
    if bytes.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "Empty body",
            "the request body is empty; expected JSON",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| Problem::malformed_json(&e))
}

async fn ingest(
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = json_body(body)?;
    let now = now_ms();
    let samples = parse_samples(&body, now).map_err(Problem::invalid)?;
    state.store.insert(&samples).await?;
    // The samples are stored; telling live dashboards is best effort (a missed touch
    // only delays a refresh until the image's age triggers one).
    let mut series: Vec<(String, String)> = samples
        .iter()
        .map(|s| (s.service.to_string(), s.metric.to_string()))
        .collect();
    series.sort();
    series.dedup();
    if let Err(e) = state.views.touch_series(&series, now).await {
        tracing::warn!(error = %e, "cannot record new samples for live refresh");
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({"accepted": samples.len()})),
    )
        .into_response())
}

/// `GET /api/v1/services`: services that sent samples in the last week.
async fn services(State(state): State<ApiState>) -> Result<Response, Problem> {
    let since = now_ms() - 7 * 24 * 3600 * 1000;
    let services = state.views.services(since).await?;
    Ok(axum::Json(json!({"services": services})).into_response())
}

fn state_body(job: &JobState) -> Value {
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

async fn request_plot(
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = json_body(body)?;
    let spec = PlotSpec::parse(&body, now_ms()).map_err(Problem::invalid)?;
    let job = JobState::queued(JobId::new_random(), spec, now_ms());
    if let Some(existing) = single_flight(&state, &job).await? {
        return Ok(existing);
    }
    // The state is written before the job is queued, so a worker never sees a job whose
    // state is missing; if queueing fails, the orphaned state simply expires.
    state.cache.put_state(&job, state.config.state_ttl).await?;
    state.queue.publish(&JobMessage::new(&job)).await?;
    tracing::debug!(id = %job.id, service = %job.spec.service(), kind = job.spec.kind.as_str(), "plot job queued");
    let location = format!("/api/v1/plots/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, axum::Json(state_body(&job))).into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("uuid path is a valid header"),
    );
    Ok(response)
}

/// Identical requests share a job: while one is queued or rendering, or finished and
/// still cached, the same spec over the same data (no newer samples, within
/// `dedupe_for`) is answered with that job instead of a new render.
async fn single_flight(state: &ApiState, job: &JobState) -> Result<Option<Response>, Problem> {
    if state.config.dedupe_for.is_zero() {
        return Ok(None);
    }
    let spec = &job.spec;
    let mut key = serde_json::to_string(spec).expect("spec serialises");
    for service in &spec.services {
        let watermark = state
            .views
            .series_touched(service.as_str(), spec.metric.as_str())
            .await?;
        key.push_str(&format!("|{}", watermark.unwrap_or(0)));
    }
    let ttl = state.config.dedupe_for;
    let Some(holder) = state.cache.claim_request(&key, job.id, ttl).await? else {
        return Ok(None); // first of its kind: render it
    };
    if let Some(existing) = state.cache.get_state(holder).await? {
        let reusable = match existing.status {
            JobStatus::Queued | JobStatus::Rendering => true,
            JobStatus::Done => state.cache.get_image(holder).await?.is_some(),
            JobStatus::Failed => false,
        };
        if reusable {
            let mut body = state_body(&existing);
            body["deduplicated"] = json!(true);
            let status = if existing.status == JobStatus::Done {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&format!("/api/v1/plots/{holder}"))
                    .expect("uuid path is a valid header"),
            );
            return Ok(Some(response));
        }
    }
    state.cache.replace_request(&key, job.id, ttl).await?;
    Ok(None)
}

fn parse_id(raw: &str) -> Result<JobId, Problem> {
    JobId::parse(raw).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "Invalid job id",
            format!("{raw:?} is not a job id (a UUID)"),
        )
    })
}

async fn load(state: &ApiState, id: JobId) -> Result<JobState, Problem> {
    state
        .cache
        .get_state(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no plot job {id} (unknown, or expired)")))
}

async fn plot_status(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = load(&state, parse_id(&id)?).await?;
    Ok(axum::Json(state_body(&job)).into_response())
}

/// `GET …/png`: the image of a PNG-format plot.
async fn plot_png(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let job = load(&state, id).await?;
    if job.spec.format != ImageFormat::Png {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "wrong_format",
            "Not a PNG",
            format!("plot {id} was rendered as SVG; fetch /api/v1/plots/{id}/image"),
        ));
    }
    serve_image(&state, job).await
}

/// `GET …/image`: the image in whatever format the plot asked for.
async fn plot_image(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let job = load(&state, parse_id(&id)?).await?;
    serve_image(&state, job).await
}

async fn serve_image(state: &ApiState, job: JobState) -> Result<Response, Problem> {
    let id = job.id;
    match job.status {
        JobStatus::Done => {}
        JobStatus::Queued | JobStatus::Rendering => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "not_ready",
                "Plot not ready",
                format!(
                    "plot {id} is {}; wait for plot.ready",
                    status_word(job.status)
                ),
            )
            .with_retry_after(1)
            .with_extra(json!({"job": state_body(&job)})));
        }
        JobStatus::Failed => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "plot_failed",
                "Plot failed",
                format!(
                    "plot {id} failed: {}",
                    job.error.as_deref().unwrap_or("unknown error")
                ),
            )
            .with_extra(json!({"job": state_body(&job)})));
        }
    }
    let image = state.cache.get_image(id).await?.ok_or_else(|| {
        Problem::new(
            StatusCode::GONE,
            "expired",
            "Plot expired",
            format!("the image of plot {id} has expired from the cache; request it again"),
        )
    })?;
    let mut response = (StatusCode::OK, image).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(job.spec.format.content_type()),
    );
    // The bytes of a job id never change: caches may keep them.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300, immutable"),
    );
    Ok(response)
}

fn status_word(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "queued",
        JobStatus::Rendering => "rendering",
        JobStatus::Done => "done",
        JobStatus::Failed => "failed",
    }
}
