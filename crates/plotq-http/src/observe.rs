//! How every HTTP role observes itself: the `observe` middleware (one Prometheus
//! counter and duration histogram per route template, method and status; one log line
//! per request; slow-request warnings; the `Server-Timing` header; the request
//! statistics `GET /api/v1/health` shows; plotq's own request durations as samples),
//! the process-wide Prometheus recorder and `/metrics`, and process figures (memory,
//! threads, open files) from `sysinfo`.
//!
//! Labels are bounded: the route is the matched template (`/api/v1/plots/{id}`, or
//! `unmatched`), the method one of the few plotq serves (or `other`), the status a
//! number. Probes and scrapes (`/healthz`, `/readyz`, `/metrics`, `/api/v1/health`) are
//! counted in Prometheus only: they are logged at debug and are neither request
//! statistics nor samples, so a load balancer or a health page left open does not
//! drown what users did.

use crate::auth::{Caller, Scope};
use crate::problem::{Problem, ProblemNote};
use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_ports::{MetricStore, ViewRegistry};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The metric plotq's own request durations are stored under.
pub const SELF_DURATION_METRIC: &str = "http_request_duration_ms";
/// The metric plotq's own response status codes are stored under (what the
/// `status_codes` and `error_rate` plots read by default).
pub const SELF_STATUS_METRIC: &str = plotq_domain::plot::DEFAULT_STATUS_METRIC;

/// Histogram buckets (seconds) of every `*_seconds` histogram plotq exports.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// How many recent request durations the statistics keep (for mean and p95).
const RECENT: usize = 2048;
/// How many recent errors the statistics keep.
const LAST_ERRORS: usize = 10;

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
    Router::new().route("/metrics", get(scrape))
}

/// Prometheus text exposition (`/metrics`).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "Authentication is on and no valid token was sent", body = crate::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the admin scope", body = crate::ProblemDoc, content_type = "application/problem+json"),
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

/// This process and its host, as `sysinfo` reads them (zeros where the platform does
/// not tell).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ProcessInfo {
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
    pub host_memory_total_bytes: u64,
    pub host_memory_available_bytes: u64,
    pub cpus: u64,
}

impl ProcessInfo {
    /// Reads the figures (a few `/proc` reads; call off the reactor).
    pub fn read() -> Self {
        use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, RefreshKind};
        let Ok(pid) = sysinfo::get_current_pid() else {
            return Self::default();
        };
        let mut system = sysinfo::System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_tasks(),
        );
        let mut info = Self {
            host_memory_total_bytes: system.total_memory(),
            host_memory_available_bytes: system.available_memory(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
            ..Self::default()
        };
        if let Some(process) = system.process(pid) {
            info.rss_bytes = process.memory();
            info.virtual_bytes = process.virtual_memory();
            // The main thread is not among the tasks sysinfo lists.
            info.threads = process.tasks().map_or(0, |t| t.len() as u64 + 1);
            info.open_files = process.open_files().unwrap_or(0) as u64;
        }
        info
    }

    fn export(&self) {
        metrics::gauge!("process_resident_memory_bytes").set(self.rss_bytes as f64);
        metrics::gauge!("process_virtual_memory_bytes").set(self.virtual_bytes as f64);
        metrics::gauge!("process_threads").set(self.threads as f64);
        metrics::gauge!("process_open_fds").set(self.open_files as f64);
        metrics::gauge!("process_uptime_seconds").set(process_started().elapsed().as_secs_f64());
    }
}

/// When this process first observed itself (close enough to its start).
pub fn process_started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

// ---------------------------------------------------------------------------------
// Server-Timing: the parts come from `plotq_ports::timing` (every dependency call's
// breaker ticket records one; handlers add cache hit/miss and a job's stages).

fn server_timing(timings: &plotq_ports::timing::Timings, total_ms: f64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (name, desc, ms) in &timings.parts {
        let _ = write!(out, "{name};");
        if let Some(desc) = desc {
            let _ = write!(out, "desc=\"{desc}\";");
        }
        let _ = write!(out, "dur={:.2}, ", ms);
    }
    let _ = write!(out, "total;dur={total_ms:.2}");
    out
}

// ---------------------------------------------------------------------------------
// Request statistics

/// Settings of the middleware.
#[derive(Debug, Clone)]
pub struct ObserveConfig {
    /// Requests slower than this are logged at WARN.
    pub slow_request: Duration,
    /// The service plotq's own request samples are stored under (`None`: not stored).
    pub self_service: Option<ServiceName>,
    /// How many samples may wait to be stored; past that they are dropped (and counted).
    pub self_queue: usize,
    /// Most own samples stored per second (two a request); past it they are dropped
    /// (and counted).
    pub self_rate: u32,
    /// Most samples per store write.
    pub self_batch: usize,
    /// How long a sample may wait before its batch is written.
    pub self_flush: Duration,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        Self {
            slow_request: Duration::from_secs(1),
            self_service: ServiceName::parse("plotq").ok(),
            self_queue: 10_000,
            self_rate: 2_000,
            self_batch: 1_000,
            self_flush: Duration::from_secs(1),
        }
    }
}

/// A role's view of its own requests, fed by the middleware.
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("role", &self.inner.role)
            .finish()
    }
}

struct Inner {
    role: &'static str,
    config: ObserveConfig,
    started: Instant,
    stats: Mutex<Stats>,
    samples: Option<SampleSink>,
    handles: std::sync::RwLock<HashMap<Arc<str>, RouteHandles>>,
}

/// Where the middleware puts the role's own samples: a bounded queue behind a rate cap.
struct SampleSink {
    tx: mpsc::Sender<Observation>,
    rate: governor::DefaultDirectRateLimiter,
    over_rate: metrics::Counter,
    dropped: metrics::Counter,
}

/// One request as its samples will say it (made into samples off the request path).
#[derive(Debug, Clone, Copy)]
struct Observation {
    ms: f64,
    status: u16,
    at_ms: i64,
}

#[derive(Default)]
struct Stats {
    total: u64,
    server_errors: u64,
    client_errors: u64,
    sum_ms: f64,
    by_status: BTreeMap<u16, u64>,
    /// Per route template: the tallies per method (a handful at most).
    by_route: HashMap<Arc<str>, Vec<(&'static str, RouteTally)>>,
    recent_ms: VecDeque<f64>,
    last_errors: VecDeque<ErrorNote>,
}

#[derive(Default)]
struct RouteTally {
    count: u64,
    errors: u64,
    sum_ms: f64,
}

/// One recent error response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorNote {
    pub at_ms: i64,
    pub method: String,
    pub route: String,
    pub status: u16,
    /// The problem code, when the response was a problem.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Requests per route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteCount {
    pub method: String,
    pub route: String,
    pub count: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
    pub mean_ms: f64,
}

/// What the role answered since it started (probes and scrapes left out).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestSnapshot {
    pub total: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// 4xx responses.
    pub client_errors: u64,
    /// Share of 5xx responses (0 to 1).
    pub error_rate: f64,
    /// Mean time to answer, all requests since start (ms).
    pub mean_ms: f64,
    /// 95th percentile of the last (up to 2048) requests (ms).
    pub p95_ms: f64,
    /// Responses by status code.
    pub by_status: BTreeMap<String, u64>,
    /// The most requested routes, most first (at most 10).
    pub top_routes: Vec<RouteCount>,
    /// The last (up to 10) responses with a 4xx or 5xx status, newest first.
    pub last_errors: Vec<ErrorNote>,
}

/// Writes a role's own request samples to its store; spawn [`SelfSamples::run`].
pub struct SelfSamples {
    rx: mpsc::Receiver<Observation>,
    /// Observations per store write (two samples each).
    batch: usize,
    flush: Duration,
    service: ServiceName,
    duration: MetricName,
    status: MetricName,
}

impl Observer {
    /// The observer of `role`, and (when `config.self_service` is set) the writer of
    /// its own samples, to be run with the role's store.
    pub fn new(role: &'static str, config: ObserveConfig) -> (Self, Option<SelfSamples>) {
        let _ = prometheus();
        let _ = process_started();
        let (samples, writer) = match &config.self_service {
            Some(service) => {
                let (tx, rx) = mpsc::channel(config.self_queue.max(1));
                let writer = SelfSamples {
                    rx,
                    batch: config.self_batch.max(1),
                    flush: config.self_flush,
                    service: service.clone(),
                    duration: MetricName::parse(SELF_DURATION_METRIC).expect("a valid metric name"),
                    status: MetricName::parse(SELF_STATUS_METRIC).expect("a valid metric name"),
                };
                let per_sec =
                    std::num::NonZeroU32::new(config.self_rate.max(1)).expect("at least one");
                let sink = SampleSink {
                    tx,
                    rate: governor::RateLimiter::direct(governor::Quota::per_second(per_sec)),
                    over_rate: metrics::counter!("plotq_self_samples_total", "outcome" => "over_rate"),
                    dropped: metrics::counter!("plotq_self_samples_total", "outcome" => "dropped"),
                };
                (Some(sink), Some(writer))
            }
            None => (None, None),
        };
        let observer = Self {
            inner: Arc::new(Inner {
                role,
                config,
                started: Instant::now(),
                stats: Mutex::new(Stats::default()),
                samples,
                handles: Default::default(),
            }),
        };
        (observer, writer)
    }

    pub fn role(&self) -> &'static str {
        self.inner.role
    }

    /// How long the role has been running.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Wraps `router` (a role's complete, hardened router) with the middleware.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(ObserveLayer(self.clone()))
    }

    /// The role's request statistics so far.
    pub fn snapshot(&self) -> RequestSnapshot {
        let stats = self.inner.stats.lock().expect("stats lock");
        let mut recent: Vec<f64> = stats.recent_ms.iter().copied().collect();
        recent.sort_by(f64::total_cmp);
        let p95 = if recent.is_empty() {
            0.0
        } else {
            recent[((recent.len() as f64 * 0.95).ceil() as usize).clamp(1, recent.len()) - 1]
        };
        let mut top: Vec<RouteCount> = stats
            .by_route
            .iter()
            .flat_map(|(route, methods)| {
                methods.iter().map(move |(method, t)| RouteCount {
                    method: (*method).to_owned(),
                    route: route.to_string(),
                    count: t.count,
                    errors: t.errors,
                    mean_ms: round2(t.sum_ms / t.count.max(1) as f64),
                })
            })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.route.cmp(&b.route)));
        top.truncate(10);
        RequestSnapshot {
            total: stats.total,
            server_errors: stats.server_errors,
            client_errors: stats.client_errors,
            error_rate: if stats.total == 0 {
                0.0
            } else {
                stats.server_errors as f64 / stats.total as f64
            },
            mean_ms: round2(stats.sum_ms / stats.total.max(1) as f64),
            p95_ms: round2(p95),
            by_status: stats
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            top_routes: top,
            last_errors: stats.last_errors.iter().rev().cloned().collect(),
        }
    }

    fn record(&self, seen: &Seen<'_>, problem: Option<&ProblemNote>) {
        let mut stats = self.inner.stats.lock().expect("stats lock");
        stats.total += 1;
        stats.sum_ms += seen.ms;
        *stats.by_status.entry(seen.status.as_u16()).or_default() += 1;
        let server_error = seen.status.is_server_error();
        if server_error {
            stats.server_errors += 1;
        } else if seen.status.is_client_error() {
            stats.client_errors += 1;
        }
        let method = method_label(seen.method);
        let methods = match stats.by_route.get_mut(seen.route) {
            Some(methods) => methods,
            None => stats.by_route.entry(Arc::from(seen.route)).or_default(),
        };
        let at = match methods.iter().position(|(m, _)| *m == method) {
            Some(at) => at,
            None => {
                methods.push((method, RouteTally::default()));
                methods.len() - 1
            }
        };
        let tally = &mut methods[at].1;
        tally.count += 1;
        tally.sum_ms += seen.ms;
        tally.errors += u64::from(server_error);
        if stats.recent_ms.len() == RECENT {
            stats.recent_ms.pop_front();
        }
        stats.recent_ms.push_back(seen.ms);
        if seen.status.is_client_error() || server_error {
            if stats.last_errors.len() == LAST_ERRORS {
                stats.last_errors.pop_front();
            }
            stats.last_errors.push_back(ErrorNote {
                at_ms: plotq_ports::clock::now_ms(),
                method: method_label(seen.method).to_owned(),
                route: seen.route.to_owned(),
                status: seen.status.as_u16(),
                code: problem.map(|p| p.code.as_str().to_owned()),
                detail: problem.map(|p| p.detail.clone()),
            });
        }
    }

    fn sample(&self, seen: &Seen<'_>) {
        let Some(sink) = &self.inner.samples else {
            return;
        };
        // Requests refused before a handler ran (no route, no credentials, over a
        // rate) cost the sender nothing: they must not cost the store anything either.
        if seen.route == UNMATCHED
            || matches!(
                seen.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            )
        {
            return;
        }
        let two = std::num::NonZeroU32::new(2).expect("two");
        if !matches!(sink.rate.check_n(two), Ok(Ok(()))) {
            sink.over_rate.increment(2);
            return;
        }
        let observation = Observation {
            ms: round2(seen.ms),
            status: seen.status.as_u16(),
            at_ms: plotq_ports::clock::now_ms(),
        };
        if sink.tx.try_send(observation).is_err() {
            sink.dropped.increment(2);
        }
    }
}

/// One answered request, as the middleware saw it.
struct Seen<'a> {
    method: &'a Method,
    route: &'a str,
    status: StatusCode,
    ms: f64,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Routes that only machines poll: counted in Prometheus, logged at debug, and left out
/// of the statistics and samples.
fn is_quiet(route: &str) -> bool {
    matches!(
        route,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/health"
    )
}

/// A plot image served: an open dashboard fetches one per panel every few seconds, so
/// these are logged at debug (still counted, timed and stored like any request).
fn is_image_served(route: &str, status: StatusCode) -> bool {
    (status.is_success() || status == StatusCode::NOT_MODIFIED)
        && (route.ends_with("/png") || route.ends_with("/image"))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The Prometheus handles of one route template, made once (a label set is looked up
/// and allocated only the first time it is seen).
struct RouteHandles {
    bytes: metrics::Counter,
    by: Vec<(&'static str, u16, metrics::Counter, metrics::Histogram)>,
}

impl Observer {
    /// The request counter, duration histogram and response-bytes counter of one label
    /// set.
    fn handles(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
    ) -> (metrics::Counter, metrics::Histogram, metrics::Counter) {
        let find = |routes: &HashMap<Arc<str>, RouteHandles>| {
            routes.get(route).and_then(|r| {
                r.by.iter()
                    .find(|(m, s, _, _)| *m == method && *s == status)
                    .map(|(_, _, c, h)| (c.clone(), h.clone(), r.bytes.clone()))
            })
        };
        if let Some(found) = find(&self.inner.handles.read().expect("handles lock")) {
            return found;
        }
        let mut routes = self.inner.handles.write().expect("handles lock");
        if let Some(found) = find(&routes) {
            return found;
        }
        let entry = routes
            .entry(Arc::from(route))
            .or_insert_with(|| RouteHandles {
                bytes: metrics::counter!("plotq_http_response_bytes_total", "route" => route.to_owned()),
                by: Vec::new(),
            });
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        let counter = metrics::counter!("plotq_http_requests_total", &labels);
        let histogram = metrics::histogram!("plotq_http_request_duration_seconds", &labels);
        entry
            .by
            .push((method, status, counter.clone(), histogram.clone()));
        (counter, histogram, entry.bytes.clone())
    }
}

/// The middleware as a tower layer (applied per route by `Router::layer`, so the
/// matched route template is known): one boxed future a request, nothing cloned.
#[derive(Clone)]
struct ObserveLayer(Observer);

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            inner,
            observer: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Observed<S> {
    inner: S,
    observer: Observer,
}

impl<S> tower::Service<Request> for Observed<S>
where
    S: tower::Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let observer = self.observer.clone();
        let handled = self.inner.call(req);
        Box::pin(async move {
            let (response, timings) = plotq_ports::timing::scope(handled).await;
            Ok(observe(
                &observer, started, matched, method, uri, response?, timings,
            ))
        })
    }
}

/// Records one answered request (see the module docs) and adds its `Server-Timing`.
fn observe(
    observer: &Observer,
    started: Instant,
    matched: Option<MatchedPath>,
    method: Method,
    uri: axum::http::Uri,
    mut response: Response,
    timings: plotq_ports::timing::Timings,
) -> Response {
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let path = uri.path();
    let elapsed = started.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let status = response.status();
    if let Ok(value) = HeaderValue::from_str(&server_timing(&timings, ms)) {
        response
            .headers_mut()
            .append(header::HeaderName::from_static("server-timing"), value);
    }
    let bytes = response.body().size_hint().exact();
    let (requests, durations, sent) =
        observer.handles(route, method_label(&method), status.as_u16());
    requests.increment(1);
    durations.record(elapsed.as_secs_f64());
    if let Some(bytes) = bytes {
        sent.increment(bytes);
    }
    let ms = round2(ms);
    let quiet = is_quiet(route);
    if elapsed >= observer.inner.config.slow_request {
        tracing::warn!(target: "plotq::http", method = %method, route, path, status = status.as_u16(), ms, bytes, "slow request");
    } else if quiet || is_image_served(route, status) {
        tracing::debug!(target: "plotq::http", method = %method, route, path, status = status.as_u16(), ms, bytes, "request");
    } else {
        tracing::info!(target: "plotq::http", method = %method, route, path, status = status.as_u16(), ms, bytes, "request");
    }
    if !quiet {
        let seen = Seen {
            method: &method,
            route,
            status,
            ms,
        };
        observer.record(&seen, response.extensions().get::<ProblemNote>());
        observer.sample(&seen);
    }
    response
}

impl SelfSamples {
    /// Stores the role's own samples in batches (at most `batch` a write, none waiting
    /// longer than `flush`), and marks their series touched so dashboards watching
    /// plotq refresh, until `stop`; then stores what is left.
    pub async fn run(
        mut self,
        store: Arc<dyn MetricStore>,
        views: Option<Arc<dyn ViewRegistry>>,
        stop: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(self.batch);
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => None,
                s = self.rx.recv() => s,
            };
            let Some(first) = first else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.flush;
            while batch.len() < self.batch {
                let more = tokio::select! {
                    _ = stop.cancelled() => None,
                    _ = tokio::time::sleep_until(deadline) => None,
                    s = self.rx.recv() => s,
                };
                match more {
                    Some(s) => batch.push(s),
                    None => break,
                }
            }
            self.write(&*store, views.as_deref(), &mut batch).await;
        }
        // Whatever is already queued is written before the role stops.
        while let Ok(s) = self.rx.try_recv() {
            batch.push(s);
            if batch.len() >= self.batch {
                self.write(&*store, views.as_deref(), &mut batch).await;
            }
        }
        self.write(&*store, views.as_deref(), &mut batch).await;
    }
}

impl SelfSamples {
    /// Stores `batch` (two samples an observation) and empties it.
    async fn write(
        &self,
        store: &dyn MetricStore,
        views: Option<&dyn ViewRegistry>,
        batch: &mut Vec<Observation>,
    ) {
        if batch.is_empty() {
            return;
        }
        let samples: Vec<Sample> = batch
            .drain(..)
            .flat_map(|o| {
                [(&self.duration, o.ms), (&self.status, f64::from(o.status))].map(
                    |(metric, value)| Sample {
                        service: self.service.clone(),
                        metric: metric.clone(),
                        value,
                        timestamp_ms: o.at_ms,
                    },
                )
            })
            .collect();
        let n = samples.len() as u64;
        match store.insert(&samples, None).await {
            Ok(()) => {
                metrics::counter!("plotq_self_samples_total", "outcome" => "stored").increment(n);
                if let Some(views) = views {
                    let series = [&self.duration, &self.status]
                        .map(|m| (self.service.to_string(), m.to_string()));
                    if let Err(e) = views
                        .touch_series(&series, plotq_ports::clock::now_ms())
                        .await
                    {
                        tracing::debug!(error = %e, "could not mark plotq's own series touched");
                    }
                }
            }
            Err(e) => {
                // Self-observation never retries into an outage: these are lost, and
                // counted.
                metrics::counter!("plotq_self_samples_total", "outcome" => "failed").increment(n);
                tracing::debug!(error = %e, n, "could not store plotq's own request samples");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_sums_parts_and_ends_with_the_total() {
        let mut t = plotq_ports::timing::Timings::default();
        t.add("cache", None, 1.0);
        t.add("db", None, 2.5);
        t.add("cache", Some("hit"), 0.25);
        assert_eq!(
            server_timing(&t, 4.0),
            "cache;desc=\"hit\";dur=1.25, db;dur=2.50, total;dur=4.00"
        );
    }

    #[test]
    fn snapshot_counts_statuses_routes_and_recent_errors() {
        let (observer, _) = Observer::new(
            "test",
            ObserveConfig {
                self_service: None,
                ..ObserveConfig::default()
            },
        );
        let route = "/api/v1/plots/{id}";
        for (i, status) in [200u16, 200, 404, 503].into_iter().enumerate() {
            let seen = Seen {
                method: &Method::GET,
                route,
                status: StatusCode::from_u16(status).unwrap(),
                ms: (i + 1) as f64,
            };
            observer.record(&seen, None);
        }
        let s = observer.snapshot();
        assert_eq!(s.total, 4);
        assert_eq!((s.client_errors, s.server_errors), (1, 1));
        assert_eq!(s.error_rate, 0.25);
        assert_eq!(s.mean_ms, 2.5);
        assert_eq!(s.p95_ms, 4.0);
        assert_eq!(s.by_status["200"], 2);
        assert_eq!(s.top_routes[0].count, 4);
        assert_eq!(s.top_routes[0].errors, 1);
        assert_eq!(s.last_errors.len(), 2);
        assert_eq!(s.last_errors[0].status, 503, "newest first");
    }
}
