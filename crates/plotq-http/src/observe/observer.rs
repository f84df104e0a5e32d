//! `Observer`, a role's view of its own requests, and the middleware that feeds it
//! (`Observer::wrap`): per request, the Prometheus counters and duration histogram, one
//! log line (slow requests at WARN), the `Server-Timing` header, the statistics and the
//! role's own samples.

use super::process::process_started;
use super::prometheus::prometheus;
use super::samples::{SampleSink, SelfSamples, channel};
use super::stats::{RequestSnapshot, Seen, Stats, UNMATCHED, method_label, round2};
use crate::problem::ProblemNote;
use axum::Router;
use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use plotq_domain::ServiceName;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

impl Observer {
    /// The observer of `role`, and (when `config.self_service` is set) the writer of
    /// its own samples, to be run with the role's store.
    pub fn new(role: &'static str, config: ObserveConfig) -> (Self, Option<SelfSamples>) {
        let _ = prometheus();
        let _ = process_started();
        let (samples, writer) = match &config.self_service {
            Some(service) => {
                let (sink, writer) = channel(
                    service.clone(),
                    config.self_queue,
                    config.self_rate,
                    config.self_batch,
                    config.self_flush,
                );
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
        self.inner.stats.lock().expect("stats lock").snapshot()
    }

    fn record(&self, seen: &Seen<'_>, problem: Option<&ProblemNote>) {
        self.inner
            .stats
            .lock()
            .expect("stats lock")
            .record(seen, problem);
    }

    fn sample(&self, seen: &Seen<'_>) {
        if let Some(sink) = &self.inner.samples {
            sink.offer(seen);
        }
    }
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

/// Records one answered request (see the `observe` module docs) and adds its `Server-Timing`.
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
