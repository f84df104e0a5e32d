//! The API router driven in-process (`oneshot`) over in-memory ports, behind the same
//! edge as in production (`plotq_http::harden`): status codes and problem bodies for
//! good and bad input, what is (not) stored or queued, authentication, scopes, tenant
//! isolation and rate limits.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plotq_api::{ApiConfig, ApiState, router};
use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, JobStatus, PlotKind, PlotSpec, Sample, ServiceName};
use plotq_http::auth::{hash_token, new_token};
use plotq_http::{Auth, AuthConfig, Edge, EdgeConfig, Limits, LimitsConfig, harden};
use plotq_ports::memory::{MemoryCache, MemoryQueue, MemoryStore, MemoryViews};
use plotq_ports::{JobQueue, MetricStore, PlotCache, PortError, PortResult};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct App {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    cache: Arc<MemoryCache>,
    router: axum::Router,
}

/// The edge in open mode (standalone on loopback) with default limits.
fn open_edge() -> Edge {
    edge(AuthConfig::open(), LimitsConfig::default())
}

fn edge(auth: AuthConfig, limits: LimitsConfig) -> Edge {
    Edge {
        auth: Auth::new(auth),
        limits: Limits::new(limits),
        config: EdgeConfig::default(),
    }
}

fn hardened(state: ApiState, edge: &Edge) -> axum::Router {
    harden(
        router(state).merge(plotq_http::readiness_router(Vec::new(), None)),
        edge,
    )
}

fn app_on(max_body_bytes: usize, edge: &Edge) -> App {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::new(100));
    let cache = Arc::new(MemoryCache::default());
    let router = hardened(
        ApiState {
            store: store.clone(),
            queue: queue.clone(),
            cache: cache.clone(),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig {
                max_body_bytes,
                ..ApiConfig::default()
            },
        },
        edge,
    );
    App {
        store,
        queue,
        cache,
        router,
    }
}

/// The open api over `store` (and in-memory everything else).
fn router_over(store: Arc<dyn MetricStore>) -> axum::Router {
    hardened(
        ApiState {
            store,
            queue: Arc::new(MemoryQueue::new(10)),
            cache: Arc::new(MemoryCache::default()),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        },
        &open_edge(),
    )
}

fn app_with(max_body_bytes: usize) -> App {
    app_on(max_body_bytes, &open_edge())
}

fn app() -> App {
    app_with(1024 * 1024)
}

/// A request with a JSON content type on POST (as every client sends).
async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let headers: &[(&str, &str)] = if method == "POST" {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    call_with(router, method, uri, headers, body).await
}

async fn call_with(
    router: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

async fn call_json(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Value,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let (status, headers, bytes) = call(router, method, uri, body.to_string()).await;
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn stored(store: &MemoryStore, service: &str) -> usize {
    store
        .points(&plotq_ports::SeriesQuery {
            service,
            metric: "latency_ms",
            from_ms: 0,
            until_ms: i64::MAX,
            with_timestamps: false,
        })
        .await
        .unwrap()
        .values
        .len()
}

#[tokio::test]
async fn ingest_accepts_single_and_batch() {
    let app = app();
    let (status, _, body) = call_json(
        &app.router,
        "POST",
        "/api/v1/metrics",
        json!({"service": "a", "metric": "latency_ms", "value": 1.5}),
    )
    .await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(1)));
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({"service_name": "a", "metric_name": "latency_ms", "value": i}))
        .collect();
    let (status, _, body) = call_json(&app.router, "POST", "/api/v1/metrics", json!(batch)).await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(10)));
    assert_eq!(stored(&app.store, "a").await, 11);
}

#[tokio::test]
async fn bad_batches_are_rejected_whole_and_store_nothing() {
    let app = app();
    let (status, headers, body) = call_json(
        &app.router,
        "POST",
        "/api/v1/metrics",
        json!([{"service": "a", "metric": "latency_ms", "value": 1}, {"service": "a", "metric": "latency_ms", "value": "NaN"}]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "invalid_field");
    assert_eq!(body["errors"][0]["field"], "/1/value");
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("finite")
    );
    assert_eq!(stored(&app.store, "a").await, 0);
}

#[tokio::test]
async fn malformed_empty_and_oversized_bodies() {
    let app = app_with(1000);
    let (status, _, bytes) = call(&app.router, "POST", "/api/v1/metrics", "{\"service\": ").await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (status, _, bytes) = call(&app.router, "POST", "/api/v1/plots", "").await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_body"))
    );
    let big: Vec<Value> = (0..100)
        .map(|_| json!({"service": "a", "metric": "latency_ms", "value": 1}))
        .collect();
    let (status, _, bytes) = call(
        &app.router,
        "POST",
        "/api/v1/metrics",
        json!(big).to_string(),
    )
    .await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
}

#[tokio::test]
async fn plot_request_queues_one_job_and_answers_202() {
    let app = app();
    let (status, headers, body) = call_json(
        &app.router,
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "checkout"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap();
    assert_eq!(headers["location"], format!("/api/v1/plots/{id}").as_str());
    assert_eq!(body["status"], "queued");
    assert_eq!(body["spec"]["bins"], 50);
    let mut consumer = app.queue.consume(1).await.unwrap();
    let delivery = consumer.next().await.unwrap();
    let message = JobMessage::decode(&delivery.body).unwrap();
    assert_eq!(message.id.to_string(), id);
    let (status, _, body) = call_json(
        &app.router,
        "GET",
        &format!("/api/v1/plots/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
}

#[tokio::test]
async fn invalid_specs_name_their_fields() {
    let app = app();
    let (status, _, body) = call_json(
        &app.router,
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "checkout", "window": "9y", "bins": -1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["/window", "/bins"]);
}

#[tokio::test]
async fn png_answers_follow_the_job_state() {
    let app = app();
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("s").unwrap());
    let mut job = JobState::queued(JobId::new_random(), spec, 1);
    let ttl = Duration::from_secs(60);
    app.cache.put_state(&job, ttl).await.unwrap();
    let png_uri = format!("/api/v1/plots/{}/png", job.id);
    let (status, headers, body) = call_json(&app.router, "GET", &png_uri, Value::Null).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_ready"))
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(body["job"]["status"], "queued");

    job.status = JobStatus::Failed;
    job.error = Some("no data".into());
    app.cache.put_state(&job, ttl).await.unwrap();
    let (status, _, body) = call_json(&app.router, "GET", &png_uri, Value::Null).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("plot_failed"))
    );

    job.status = JobStatus::Done;
    app.cache.put_state(&job, ttl).await.unwrap();
    let (status, _, body) = call_json(&app.router, "GET", &png_uri, Value::Null).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::GONE, Some("expired"))
    );

    app.cache
        .put_image(job.id, b"\x89PNG fake", ttl)
        .await
        .unwrap();
    let (status, headers, bytes) = call(&app.router, "GET", &png_uri, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(bytes, b"\x89PNG fake");

    let (status, _, _) = call(
        &app.router,
        "GET",
        "/api/v1/plots/not-a-uuid",
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(
        &app.router,
        "GET",
        &format!("/api/v1/plots/{}", JobId::new_random()),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A store and queue that are down.
struct Down;

#[async_trait]
impl MetricStore for Down {
    async fn insert(
        &self,
        _: &[Sample],
        _: Option<&plotq_domain::chunk::BatchId>,
    ) -> PortResult<()> {
        Err(PortError::unavailable("mongodb", "connection refused"))
    }
    async fn points(&self, _: &plotq_ports::SeriesQuery<'_>) -> PortResult<plotq_ports::Points> {
        Err(PortError::unavailable("mongodb", "connection refused"))
    }
    async fn rollups(&self, _: &plotq_ports::SeriesQuery<'_>) -> PortResult<plotq_ports::Rollups> {
        Err(PortError::unavailable("mongodb", "connection refused"))
    }
    async fn ping(&self) -> PortResult<()> {
        Err(PortError::unavailable("mongodb", "connection refused"))
    }
}

#[async_trait]
impl JobQueue for Down {
    async fn publish(&self, _: &JobMessage) -> PortResult<()> {
        Err(PortError::refused(
            "rabbitmq",
            "the job was not routed to a queue (312 NO_ROUTE)",
        ))
    }
    async fn consume(&self, _: u16) -> PortResult<Box<dyn plotq_ports::JobConsumer>> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn retry_later(&self, _: &[u8], _: u32) -> PortResult<()> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn dead_letter(&self, _: &[u8], _: u32, _: &str) -> PortResult<()> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn dead_letters(&self, _: usize) -> PortResult<Vec<plotq_ports::DeadLetter>> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn replay_dead_letters(&self, _: Option<JobId>) -> PortResult<usize> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn ping(&self) -> PortResult<()> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
}

#[tokio::test]
async fn dependency_failures_are_503_with_retry_after_never_2xx() {
    let router = hardened(
        ApiState {
            store: Arc::new(Down),
            queue: Arc::new(Down),
            cache: Arc::new(MemoryCache::default()),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        },
        &open_edge(),
    );
    let (status, headers, body) = call_json(
        &router,
        "POST",
        "/api/v1/metrics",
        json!({"service": "a", "metric": "m", "value": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"));
    assert!(body["detail"].as_str().unwrap().contains("mongodb"));
    let (status, _, body) = call_json(
        &router,
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "a"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "dependency_refused");
    // The broker's own words stay in the log.
    assert!(!body["detail"].as_str().unwrap().contains("NO_ROUTE"));
}

/// POSTs `body` to `/api/v1/metrics` with `Idempotency-Key: key`.
async fn ingest_keyed(
    router: &axum::Router,
    key: &str,
    body: &Value,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", key),
    ];
    let (status, headers, bytes) = call_with(
        router,
        "POST",
        "/api/v1/metrics",
        &headers,
        body.to_string(),
    )
    .await;
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_retried_batch_with_an_idempotency_key_is_stored_once() {
    let app = app();
    let batch = json!(
        (0..50)
            .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
            .collect::<Vec<_>>()
    );
    let (status, headers, body) = ingest_keyed(&app.router, "k-1", &batch).await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(50)));
    assert!(!headers.contains_key("idempotent-replayed"));
    for _ in 0..2 {
        let (status, headers, body) = ingest_keyed(&app.router, "k-1", &batch).await;
        assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(50)));
        assert_eq!(headers["idempotent-replayed"], "true");
    }
    assert_eq!(stored(&app.store, "a").await, 50);
    // The same key with another body is refused, and stores nothing.
    let other = json!([{"service": "a", "metric": "latency_ms", "value": 1}]);
    let (status, _, body) = ingest_keyed(&app.router, "k-1", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    assert_eq!(stored(&app.store, "a").await, 50);
    // Another key is another batch.
    let (status, _, _) = ingest_keyed(&app.router, "k-2", &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored(&app.store, "a").await, 100);
    // Keys are checked like any field.
    for bad in ["", &"x".repeat(256), "has space"] {
        let (status, _, body) = ingest_keyed(&app.router, bad, &batch).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    }
    assert_eq!(stored(&app.store, "a").await, 100);
}

/// A store that writes, then reports a failure (the write was acknowledged but the
/// answer lost, or the raw samples were written and the rollups were not), `fail` times.
struct WritesThenFails {
    inner: MemoryStore,
    fail: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl MetricStore for WritesThenFails {
    async fn insert(
        &self,
        samples: &[Sample],
        batch: Option<&plotq_domain::chunk::BatchId>,
    ) -> PortResult<()> {
        self.inner.insert(samples, batch).await?;
        let left = self.fail.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.fail
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(PortError::unavailable("mongodb", "connection reset"));
        }
        Ok(())
    }
    async fn points(&self, q: &plotq_ports::SeriesQuery<'_>) -> PortResult<plotq_ports::Points> {
        self.inner.points(q).await
    }
    async fn rollups(&self, q: &plotq_ports::SeriesQuery<'_>) -> PortResult<plotq_ports::Rollups> {
        self.inner.rollups(q).await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_batch_whose_write_failed_after_storing_is_not_counted_twice_on_retry() {
    let store = Arc::new(WritesThenFails {
        inner: MemoryStore::default(),
        fail: 1.into(),
    });
    let router = router_over(store.clone());
    let batch = json!(
        (0..20)
            .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
            .collect::<Vec<_>>()
    );
    let (status, _, _) = ingest_keyed(&router, "retry-me", &batch).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The client was told nothing was accepted, and retries with the same key.
    let (status, _, body) = ingest_keyed(&router, "retry-me", &batch).await;
    assert_eq!((status, &body["accepted"]), (StatusCode::OK, &json!(20)));
    assert_eq!(stored(&store.inner, "a").await, 20, "stored once");
    let rollups = store
        .inner
        .rollups(&plotq_ports::SeriesQuery {
            service: "a",
            metric: "latency_ms",
            from_ms: 0,
            until_ms: i64::MAX,
            with_timestamps: false,
        })
        .await
        .unwrap();
    let counted: u64 = rollups.minutes.iter().map(|(_, r)| r.count).sum();
    assert_eq!(counted, 20, "and counted once");
}

#[tokio::test]
async fn a_full_store_refuses_ingest_with_507_and_keeps_what_it_had() {
    // One batch of 200 samples holds 3,408 bytes of the store (chunk, rollup and the
    // series' bookkeeping, as counted); a second would take it past 4,500.
    let store = Arc::new(MemoryStore::new(plotq_ports::memory::MemoryStoreConfig {
        max_bytes: 4_500,
        ..Default::default()
    }));
    let router = router_over(store.clone());
    let batch = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
                .collect::<Vec<_>>()
        )
    };
    let (status, _, _) = call_json(&router, "POST", "/api/v1/metrics", batch(200)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, body) = call_json(&router, "POST", "/api/v1/metrics", batch(200)).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["code"], "store_full");
    assert!(headers.contains_key("retry-after"));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_MEMORY_STORE_MAX_BYTES"),
        "{body}"
    );
    assert_eq!(
        stored(&store, "a").await,
        200,
        "the accepted batch is intact"
    );
}

#[tokio::test]
async fn identical_concurrent_requests_share_one_job() {
    let app = app();
    let body = json!({"kind": "histogram", "service": "checkout", "window": "5m"});
    let calls = (0..100).map(|_| call_json(&app.router, "POST", "/api/v1/plots", body.clone()));
    let answers = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, StatusCode::ACCEPTED);
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one job for 100 identical requests");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, _, b)| b["deduplicated"] == true)
            .count(),
        99
    );
    // Exactly one job was queued.
    let mut consumer = app.queue.consume(1).await.unwrap();
    assert!(consumer.next().await.is_some());
    let nothing_else = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await;
    assert!(nothing_else.is_err(), "a second job was queued");
    // A different spec is a different job.
    let (_, _, other) = call_json(
        &app.router,
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "checkout", "window": "6m"}),
    )
    .await;
    assert!(!ids.contains(other["id"].as_str().unwrap()));
}

// ---- Hardening (issue: safe to expose) ----

#[tokio::test]
async fn error_bodies_are_bounded_however_many_fields_are_wrong() {
    // 690,000 unknown fields (8 MB) used to produce a 226 MB answer.
    let app = app_with(16 * 1024 * 1024);
    let mut body = String::from("{\"kind\":\"histogram\",\"service\":\"a\"");
    for i in 0..690_000 {
        body.push_str(&format!(",\"f{i}\":1"));
    }
    body.push('}');
    let (status, _, bytes) = call(&app.router, "POST", "/api/v1/plots", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bytes.len() < 64 * 1024,
        "error body is {} bytes",
        bytes.len()
    );
    let problem: Value = serde_json::from_slice(&bytes).unwrap();
    let errors = problem["errors"].as_array().unwrap();
    assert!(errors.len() <= plotq_domain::error::MAX_REPORTED_ERRORS + 1);
}

/// A queue that refuses (full): the request's traces must all be undone.
struct Full;

#[async_trait]
impl JobQueue for Full {
    async fn publish(&self, _: &JobMessage) -> PortResult<()> {
        // Slow enough that concurrent identical requests overlap a refused publish.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(PortError::refused("rabbitmq", "the work queue is full"))
    }
    async fn consume(&self, _: u16) -> PortResult<Box<dyn plotq_ports::JobConsumer>> {
        Err(PortError::unavailable("rabbitmq", "down"))
    }
    async fn retry_later(&self, _: &[u8], _: u32) -> PortResult<()> {
        Ok(())
    }
    async fn dead_letter(&self, _: &[u8], _: u32, _: &str) -> PortResult<()> {
        Ok(())
    }
    async fn dead_letters(&self, _: usize) -> PortResult<Vec<plotq_ports::DeadLetter>> {
        Ok(Vec::new())
    }
    async fn replay_dead_letters(&self, _: Option<JobId>) -> PortResult<usize> {
        Ok(0)
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_publish_leaves_no_job_behind_for_later_requests() {
    let cache = Arc::new(MemoryCache::default());
    let full = hardened(
        ApiState {
            store: Arc::new(MemoryStore::default()),
            queue: Arc::new(Full),
            cache: cache.clone(),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        },
        &open_edge(),
    );
    let spec = json!({"kind": "histogram", "service": "a", "window": "5m"});
    for _ in 0..3 {
        let (status, headers, body) = call_json(&full, "POST", "/api/v1/plots", spec.clone()).await;
        // Never a 202 (deduplicated or not) pointing at a job that was never queued.
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(headers.contains_key("retry-after"));
        assert_ne!(body["deduplicated"], true);
    }
    // Nor when identical requests arrive while a refused publish is still in flight.
    let together = (0..10).map(|_| call_json(&full, "POST", "/api/v1/plots", spec.clone()));
    for (status, _, body) in futures::future::join_all(together).await {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    // Once the queue takes jobs again, the same request is queued for real.
    let working = hardened(
        ApiState {
            store: Arc::new(MemoryStore::default()),
            queue: Arc::new(MemoryQueue::new(10)),
            cache: cache.clone(),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        },
        &open_edge(),
    );
    let (status, _, body) = call_json(&working, "POST", "/api/v1/plots", spec).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(
        body["deduplicated"], true,
        "pointed at a job that never existed"
    );
}

#[tokio::test]
async fn a_refused_publish_leaves_no_orphan_state() {
    let cache = Arc::new(MemoryCache::default());
    let recorder = Arc::new(Recorder {
        inner: cache.clone(),
        written: Default::default(),
    });
    let full_recorded = hardened(
        ApiState {
            store: Arc::new(MemoryStore::default()),
            queue: Arc::new(Full),
            cache: recorder.clone(),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        },
        &open_edge(),
    );
    let (status, _, _) = call_json(
        &full_recorded,
        "POST",
        "/api/v1/plots",
        json!({"kind": "cdf", "service": "b"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let written = recorder.written.lock().unwrap().clone();
    assert!(
        written.is_empty(),
        "no state is written for a job the broker did not take: {written:?}"
    );
}

/// A cache that records which job states were written.
struct Recorder {
    inner: Arc<MemoryCache>,
    written: std::sync::Mutex<Vec<JobId>>,
}

#[async_trait]
impl PlotCache for Recorder {
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        self.written.lock().unwrap().push(state.id);
        self.inner.put_state(state, ttl).await
    }
    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        self.written.lock().unwrap().push(state.id);
        self.inner.put_state_if_absent(state, ttl).await
    }
    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        self.inner.get_state(id).await
    }
    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        self.inner.delete_state(id).await
    }
    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        self.inner.put_image(id, png, ttl).await
    }
    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        self.inner.get_image(id).await
    }
    async fn claim_request(
        &self,
        key: &str,
        id: JobId,
        ttl: Duration,
    ) -> PortResult<Option<JobId>> {
        self.inner.claim_request(key, id, ttl).await
    }
    async fn replace_request(&self, key: &str, id: JobId, ttl: Duration) -> PortResult<()> {
        self.inner.replace_request(key, id, ttl).await
    }
    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        self.inner.release_request(key, id).await
    }
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> PortResult<plotq_ports::IdempotentStart> {
        self.inner
            .begin_idempotent(key, fingerprint, pending_ttl)
            .await
    }
    async fn finish_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        accepted: u64,
        ttl: Duration,
    ) -> PortResult<()> {
        self.inner
            .finish_idempotent(key, fingerprint, accepted, ttl)
            .await
    }
    async fn abandon_idempotent(&self, key: &str, fingerprint: &str) -> PortResult<()> {
        self.inner.abandon_idempotent(key, fingerprint).await
    }
    async fn begin_job(
        &self,
        lane: &str,
        id: JobId,
        cap: usize,
        lease: Duration,
        now_ms: i64,
    ) -> PortResult<bool> {
        self.inner.begin_job(lane, id, cap, lease, now_ms).await
    }
    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        self.inner.end_job(lane, id).await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn json_routes_refuse_other_content_types() {
    let app = app();
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1}).to_string();
    for headers in [
        &[("content-type", "application/x-www-form-urlencoded")][..],
        &[("content-type", "text/plain")][..],
        &[][..],
    ] {
        let (status, h, bytes) = call_with(
            &app.router,
            "POST",
            "/api/v1/metrics",
            headers,
            sample.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(h["content-type"], "application/problem+json");
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "unsupported_media_type");
    }
    assert_eq!(stored(&app.store, "a").await, 0);
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_long_uris_answer_problem_json() {
    let app = app();
    for (method, uri, status, code) in [
        ("GET", "/nope".to_owned(), 404, "not_found"),
        (
            "DELETE",
            "/api/v1/metrics".to_owned(),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            format!("/api/v1/plots/{}", "x".repeat(9000)),
            414,
            "uri_too_long",
        ),
    ] {
        let (got, headers, bytes) = call(&app.router, method, &uri, Body::empty()).await;
        assert_eq!(
            got.as_u16(),
            status,
            "{method} {}",
            &uri[..uri.len().min(40)]
        );
        assert_eq!(headers["content-type"], "application/problem+json");
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], code);
    }
}

/// An app with three tokens: one per scope set, one limited to a tenant's services.
struct Secured {
    app: App,
    ingest: String,
    reader: String,
    tenant: String,
    admin: String,
}

fn secured(limits: LimitsConfig) -> Secured {
    let (ingest, reader, tenant, admin) = (new_token(), new_token(), new_token(), new_token());
    let lines = format!(
        "{} scopes=ingest name=ingest\n{} scopes=read name=reader\n{} scopes=ingest,read services=team-a-* name=tenant\n{} scopes=admin name=admin",
        hash_token(&ingest),
        hash_token(&reader),
        hash_token(&tenant),
        hash_token(&admin)
    );
    let auth = AuthConfig {
        tokens: plotq_http::auth::parse_tokens(&lines).unwrap(),
        ..AuthConfig::open()
    };
    Secured {
        app: app_on(1024 * 1024, &edge(auth, limits)),
        ingest,
        reader,
        tenant,
        admin,
    }
}

async fn as_token(
    router: &axum::Router,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Value,
) -> (StatusCode, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, h, bytes) = call_with(router, method, uri, &headers, body).await;
    if status.is_client_error() {
        assert_eq!(h["content-type"], "application/problem+json");
    }
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_route_needs_a_token_with_its_scope() {
    let s = secured(LimitsConfig::default());
    let r = &s.app.router;
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1});
    let spec = json!({"kind": "histogram", "service": "a"});
    let id = JobId::new_random();
    let routes: Vec<(&str, String, Value, &str)> = vec![
        ("POST", "/api/v1/metrics".into(), sample.clone(), "ingest"),
        ("POST", "/api/v1/plots".into(), spec.clone(), "read"),
        ("GET", format!("/api/v1/plots/{id}"), Value::Null, "read"),
        (
            "GET",
            format!("/api/v1/plots/{id}/png"),
            Value::Null,
            "read",
        ),
        (
            "GET",
            format!("/api/v1/plots/{id}/image"),
            Value::Null,
            "read",
        ),
        ("GET", "/api/v1/services".into(), Value::Null, "read"),
        ("POST", "/api/v1/tickets".into(), Value::Null, "read"),
    ];
    for (method, uri, body, scope) in &routes {
        for token in [None, Some("pq_wrong")] {
            let (status, problem) = as_token(r, token, method, uri, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}"
            );
            assert_eq!(problem["code"], "unauthorized");
        }
        let without = if *scope == "ingest" {
            &s.reader
        } else {
            &s.ingest
        };
        let (status, problem) = as_token(r, Some(without), method, uri, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {uri} without {scope}"
        );
        assert_eq!(problem["code"], "forbidden");
        assert!(problem["detail"].as_str().unwrap().contains(scope));
    }
    assert_eq!(
        stored(&s.app.store, "a").await,
        0,
        "nothing stored without ingest"
    );
    let (status, _) = as_token(r, Some(&s.ingest), "POST", "/api/v1/metrics", sample).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = as_token(r, Some(&s.reader), "POST", "/api/v1/plots", spec).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn readiness_details_are_for_admins_only() {
    let s = secured(LimitsConfig::default());
    let failing = plotq_http::Probe {
        name: "redis",
        check: Arc::new(|| {
            Box::pin(async {
                Err(PortError::unavailable(
                    "redis",
                    "connect to 10.0.0.7:6379 refused",
                ))
            })
        }),
    };
    let edge = edge(
        AuthConfig {
            tokens: plotq_http::auth::parse_tokens(&format!(
                "{} scopes=read name=r\n{} scopes=admin name=a",
                hash_token(&s.reader),
                hash_token(&s.admin)
            ))
            .unwrap(),
            ..AuthConfig::open()
        },
        LimitsConfig::default(),
    );
    let router = harden(plotq_http::readiness_router(vec![failing], None), &edge);
    for (token, detailed) in [
        (None, false),
        (Some(s.reader.as_str()), false),
        (Some(s.admin.as_str()), true),
    ] {
        let (status, body) = as_token(&router, token, "GET", "/readyz", Value::Null).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["redis"], "failing", "everyone learns which");
        assert_eq!(body["failing"][0]["dependency"], "redis");
        let text = body.to_string();
        assert_eq!(text.contains("10.0.0.7"), detailed, "{token:?}: {text}");
    }
}

#[tokio::test]
async fn tenants_see_only_their_services() {
    let s = secured(LimitsConfig::default());
    let r = &s.app.router;
    // The tenant cannot write or request other services' data.
    let (status, problem) = as_token(
        r,
        Some(&s.tenant),
        "POST",
        "/api/v1/metrics",
        json!([{"service": "team-a-api", "metric": "latency_ms", "value": 1},
               {"service": "payments", "metric": "latency_ms", "value": 1}]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["errors"][0]["field"], "/1/service");
    assert_eq!(
        stored(&s.app.store, "team-a-api").await,
        0,
        "rejected whole"
    );
    let (status, _) = as_token(
        r,
        Some(&s.tenant),
        "POST",
        "/api/v1/plots",
        json!({"kind": "cdf", "services": ["team-a-api", "payments"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another tenant's job is indistinguishable from an unknown one.
    let (status, other) = as_token(
        r,
        Some(&s.reader),
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "payments"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let other_id = other["id"].as_str().unwrap();
    for suffix in ["", "/png", "/image"] {
        let (status, problem) = as_token(
            r,
            Some(&s.tenant),
            "GET",
            &format!("/api/v1/plots/{other_id}{suffix}"),
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{suffix}");
        assert_eq!(problem["code"], "not_found");
    }
    // Its own plots work, and the service list is filtered.
    let (status, own) = as_token(
        r,
        Some(&s.tenant),
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "team-a-api"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = as_token(
        r,
        Some(&s.tenant),
        "GET",
        &format!("/api/v1/plots/{}", own["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (token, service) in [(&s.tenant, "team-a-api"), (&s.ingest, "payments")] {
        let sample = json!({"service": service, "metric": "latency_ms", "value": 1});
        let (status, _) = as_token(r, Some(token), "POST", "/api/v1/metrics", sample).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, listed) = as_token(r, Some(&s.tenant), "GET", "/api/v1/services", Value::Null).await;
    assert_eq!(listed["services"], json!(["team-a-api"]));
    let (_, listed) = as_token(r, Some(&s.reader), "GET", "/api/v1/services", Value::Null).await;
    assert_eq!(listed["services"], json!(["payments", "team-a-api"]));
}

#[tokio::test]
async fn read_tickets_open_images_for_browsers_and_nothing_else() {
    let s = secured(LimitsConfig::default());
    let r = &s.app.router;
    let spec = PlotSpec::new(
        PlotKind::Histogram,
        ServiceName::parse("team-a-web").unwrap(),
    );
    let mut job = JobState::queued(JobId::new_random(), spec, 1);
    job.status = JobStatus::Done;
    s.app
        .cache
        .put_state(&job, Duration::from_secs(60))
        .await
        .unwrap();
    s.app
        .cache
        .put_image(job.id, b"\x89PNG", Duration::from_secs(60))
        .await
        .unwrap();
    let (status, ticket) =
        as_token(r, Some(&s.tenant), "POST", "/api/v1/tickets", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let png = format!("/api/v1/plots/{}/png?ticket={ticket}", job.id);
    let (status, _, bytes) = call_with(r, "GET", &png, &[], Body::empty()).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, &b"\x89PNG"[..])
    );
    // A ticket does not write, and a tampered one is refused.
    let (status, _, _) = call_with(
        r,
        "POST",
        &format!("/api/v1/plots?ticket={ticket}"),
        &[("content-type", "application/json")],
        json!({"kind": "histogram", "service": "team-a-web"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = format!("/api/v1/plots/{}/png?ticket=x{ticket}", job.id);
    let (status, _, _) = call_with(r, "GET", &forged, &[], Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn callers_over_their_rate_get_429_with_retry_after() {
    let s = secured(LimitsConfig {
        plot_requests_per_sec: 1,
        plot_burst: 3,
        ingest_samples_per_sec: 1,
        ingest_burst: 10,
        ..LimitsConfig::default()
    });
    let r = &s.app.router;
    let spec = |i: usize| json!({"kind": "histogram", "service": "a", "title": format!("t{i}")});
    for i in 0..3 {
        let (status, _) = as_token(r, Some(&s.reader), "POST", "/api/v1/plots", spec(i)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, problem) = as_token(r, Some(&s.reader), "POST", "/api/v1/plots", spec(9)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem["code"], "rate_limited");
    // Another caller has its own budget.
    let (status, _) = as_token(
        r,
        Some(&s.tenant),
        "POST",
        "/api/v1/plots",
        json!({"kind": "histogram", "service": "team-a-x"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let batch: Vec<Value> = (0..11)
        .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
        .collect();
    let (status, _) = as_token(r, Some(&s.ingest), "POST", "/api/v1/metrics", json!(batch)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        stored(&s.app.store, "a").await,
        0,
        "a refused batch stores nothing"
    );
}

// -- Tenant safety at the browser edge: foreign pages, DNS rebinding, rotation --

#[tokio::test]
async fn writes_from_pages_of_other_origins_are_refused_and_store_nothing() {
    let allowed = "https://dash.example.com";
    let edge = Edge {
        config: EdgeConfig {
            cors_origins: vec![allowed.to_owned()],
            ..EdgeConfig::default()
        },
        ..open_edge()
    };
    let app = app_on(1024 * 1024, &edge);
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1}).to_string();
    let line = r#"{"level":"info","ts":1795000000.5,"logger":"http.log.access","msg":"handled request","request":{"host":"a.example.com","method":"GET","uri":"/"},"duration":0.01,"status":200}"#;
    for (origin, accepted) in [
        ("https://evil.example.net", false),
        ("null", false),
        ("http://plotq.local:8080.evil.example.net", false),
        ("http://plotq.local:8080", true), // its own origin (Host below)
        (allowed, true),
    ] {
        let headers = [
            ("content-type", "application/json"),
            ("host", "plotq.local:8080"),
            ("origin", origin),
        ];
        let (status, h, body) = call_with(
            &app.router,
            "POST",
            "/api/v1/metrics",
            &headers,
            sample.clone(),
        )
        .await;
        let lines = [
            ("content-type", "application/x-ndjson"),
            ("host", "plotq.local:8080"),
            ("origin", origin),
        ];
        let (caddy_status, _, _) = call_with(
            &app.router,
            "POST",
            "/api/v1/ingest/caddy?service=a",
            &lines,
            line.to_owned(),
        )
        .await;
        if accepted {
            assert_eq!(
                (status, caddy_status),
                (StatusCode::OK, StatusCode::OK),
                "{origin}"
            );
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
            assert_eq!(caddy_status, StatusCode::FORBIDDEN, "{origin}");
            assert_eq!(h["content-type"], "application/problem+json");
            let problem: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["code"], "origin_not_allowed", "{origin}");
        }
        // Reads are not writes: an <img> of another site may load plots it may see.
        let (status, _, _) = call_with(
            &app.router,
            "GET",
            "/api/v1/services",
            &[("host", "plotq.local:8080"), ("origin", origin)],
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "GET from {origin}");
    }
    assert_eq!(
        stored(&app.store, "a").await,
        2,
        "only the two allowed writes"
    );
    // A form post without Origin (an old browser) is still refused by its content type.
    let (status, _, _) = call_with(
        &app.router,
        "POST",
        "/api/v1/ingest/caddy?service=a",
        &[("content-type", "text/plain")],
        line.to_owned(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn open_mode_on_loopback_answers_only_to_loopback_and_configured_names() {
    let mut hosts = plotq_http::edge::loopback_hosts();
    hosts.push("plotq.internal".to_owned());
    let edge = Edge {
        config: EdgeConfig {
            allowed_hosts: Some(hosts),
            ..EdgeConfig::default()
        },
        ..open_edge()
    };
    let app = app_on(1024 * 1024, &edge);
    for (host, allowed) in [
        ("127.0.0.1:8080", true),
        ("localhost:8080", true),
        ("LOCALHOST", true),
        ("[::1]:8080", true),
        ("plotq.internal:8080", true),
        ("rebind.evil.example.net:8080", false),
        ("127.0.0.1.evil.example.net", false),
        ("localhost.evil.example.net:8080", false),
    ] {
        let (status, _, body) = call_with(
            &app.router,
            "GET",
            "/api/v1/services",
            &[("host", host)],
            "",
        )
        .await;
        if allowed {
            assert_eq!(status, StatusCode::OK, "{host}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
            let problem: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["code"], "host_not_allowed", "{host}");
        }
        let (status, _, _) = call_with(
            &app.router,
            "POST",
            "/api/v1/metrics",
            &[("host", host), ("content-type", "application/json")],
            json!({"service": "a", "metric": "latency_ms", "value": 1}).to_string(),
        )
        .await;
        assert_eq!(status.is_success(), allowed, "POST to {host}");
    }
    assert_eq!(stored(&app.store, "a").await, 5);
}

#[tokio::test]
async fn every_answer_is_nosniff_and_pages_and_svgs_carry_a_policy() {
    let cache = Arc::new(MemoryCache::default());
    let state = ApiState {
        store: Arc::new(MemoryStore::default()),
        queue: Arc::new(MemoryQueue::new(10)),
        cache: cache.clone(),
        views: Arc::new(MemoryViews::default()),
        config: ApiConfig::default(),
    };
    let router = harden(
        router(state).merge(plotq_api::dashboard_router(
            "http://127.0.0.1:8081/api/v1/events",
        )),
        &open_edge(),
    );
    let (_, h, _) = call(&router, "GET", "/api/v1/services", "").await;
    assert_eq!(h["x-content-type-options"], "nosniff");
    let (_, h, _) = call(&router, "GET", "/api/v1/nope", "").await;
    assert_eq!(h["x-content-type-options"], "nosniff");
    let (status, h, _) = call(&router, "GET", "/", "").await;
    assert_eq!(status, StatusCode::OK);
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "connect-src 'self' http://127.0.0.1:8081",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // An SVG plot: scripts it might hold never run (served through the same edge).
    let mut spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
    spec.format = plotq_domain::ImageFormat::Svg;
    let mut job = JobState::queued(JobId::new_random(), spec, 0);
    job.status = JobStatus::Done;
    cache
        .put_state(&job, Duration::from_secs(60))
        .await
        .unwrap();
    cache
        .put_image(
            job.id,
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let (status, h, _) = call(
        &router,
        "GET",
        &format!("/api/v1/plots/{}/image", job.id),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["content-type"], "image/svg+xml");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
}

#[tokio::test]
async fn tickets_and_links_die_with_their_token_even_under_the_same_name() {
    let (old, new) = (new_token(), new_token());
    let entries = |token: &str, scopes: &str| {
        plotq_http::auth::parse_tokens(&format!(
            "{} scopes={scopes} services=team-a-* name=team-a",
            hash_token(token)
        ))
        .unwrap()
    };
    let edge = edge(
        AuthConfig {
            tokens: entries(&old, "read,ingest"),
            ..AuthConfig::open()
        },
        LimitsConfig::default(),
    );
    let app = app_on(1024 * 1024, &edge);
    let r = &app.router;
    let (status, ticket) = as_token(r, Some(&old), "POST", "/api/v1/tickets", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let query = "kind=histogram&service=team-a-api&window=1h";
    let (status, link) = as_token(
        r,
        Some(&old),
        "POST",
        "/api/v1/render/grants",
        json!({"query": query}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let link = link["url"].as_str().unwrap().to_owned();
    let services = format!("/api/v1/services?ticket={ticket}");
    assert_eq!(call(r, "GET", &services, "").await.0, StatusCode::OK);
    // A percent-encoded ticket is the same ticket.
    let encoded = format!("/api/v1/services?ticket={}", ticket.replace('.', "%2E"));
    assert_eq!(call(r, "GET", &encoded, "").await.0, StatusCode::OK);

    // Rotated: the same name, a new secret. The old token's ticket and link are dead.
    edge.auth
        .replace_tokens(entries(&new, "read,ingest"))
        .unwrap();
    let (status, _, body) = call(r, "GET", &services, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "unauthorized"
    );
    assert_eq!(call(r, "GET", &link, "").await.0, StatusCode::UNAUTHORIZED);

    // The new token's ticket works until the token loses `read`.
    let (_, ticket) = as_token(r, Some(&new), "POST", "/api/v1/tickets", Value::Null).await;
    let services = format!(
        "/api/v1/services?ticket={}",
        ticket["ticket"].as_str().unwrap()
    );
    assert_eq!(call(r, "GET", &services, "").await.0, StatusCode::OK);
    edge.auth.replace_tokens(entries(&new, "ingest")).unwrap();
    assert_eq!(
        call(r, "GET", &services, "").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// An api (with `tokens`) whose `GET /api/v1/render` gives up after `wait`: no worker
/// runs here, so a render that is queued answers `503 render_timeout`.
fn secured_with_render_wait(
    tokens: &str,
    limits: LimitsConfig,
    wait: Duration,
) -> (axum::Router, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::new(100));
    let edge = edge(
        AuthConfig {
            tokens: plotq_http::auth::parse_tokens(tokens).unwrap(),
            ..AuthConfig::open()
        },
        limits,
    );
    let state = ApiState {
        store: Arc::new(MemoryStore::default()),
        queue: queue.clone(),
        cache: Arc::new(MemoryCache::default()),
        views: Arc::new(MemoryViews::default()),
        config: ApiConfig {
            render: plotq_api::RenderConfig {
                wait,
                ..plotq_api::RenderConfig::default()
            },
            ..ApiConfig::default()
        },
    };
    (hardened(state, &edge), queue)
}

#[tokio::test]
async fn a_link_spends_its_own_budget_never_its_minters() {
    let token = new_token();
    let (r, queue) = secured_with_render_wait(
        &format!("{} scopes=read name=minter", hash_token(&token)),
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 3,
            grant_requests_per_sec: 1,
            grant_burst: 5,
            ..LimitsConfig::default()
        },
        Duration::from_millis(20),
    );
    let (status, link) = as_token(
        &r,
        Some(&token),
        "POST",
        "/api/v1/render/grants",
        json!({"query": "kind=histogram&service=a&window=1h"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let url = link["url"].as_str().unwrap().to_owned();
    // Anyone hammering the link: its own burst, then 429 — one job for all of it.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let (status, _, body) = call(&r, "GET", &url, "").await;
        let code = serde_json::from_slice::<Value>(&body).unwrap_or_default()["code"].clone();
        codes.push((status.as_u16(), code.as_str().unwrap_or("").to_owned()));
    }
    let limited = codes
        .iter()
        .filter(|(s, c)| *s == 429 && c == "rate_limited")
        .count();
    assert_eq!(limited, 12 - 5, "{codes:?}");
    assert_eq!(queue.depth(), 1, "identical requests share one job");
    // The minter still has its whole budget for its own plots.
    for i in 0..2 {
        let (status, _) = as_token(
            &r,
            Some(&token),
            "POST",
            "/api/v1/plots",
            json!({"kind": "histogram", "service": "a", "title": format!("own {i}")}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "own plot {i}");
    }
}

#[tokio::test]
async fn answers_shared_with_an_earlier_job_cost_no_budget() {
    let token = new_token();
    let (r, queue) = secured_with_render_wait(
        &format!("{} scopes=read name=reader", hash_token(&token)),
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 2,
            ..LimitsConfig::default()
        },
        Duration::from_millis(20),
    );
    let spec = json!({"kind": "histogram", "service": "a", "window": "1h"});
    for _ in 0..10 {
        let (status, body) =
            as_token(&r, Some(&token), "POST", "/api/v1/plots", spec.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    for _ in 0..10 {
        let (status, _, _) = call_with(
            &r,
            "GET",
            "/api/v1/render?kind=histogram&service=a&window=1h&width=800",
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting, not refused"
        );
    }
    assert_eq!(
        queue.depth(),
        2,
        "one job for the POSTs, one for the render URL"
    );
    // A render that is really queued is charged: the burst of 2 is spent.
    let (status, problem) = as_token(
        &r,
        Some(&token),
        "POST",
        "/api/v1/plots",
        json!({"kind": "cdf", "service": "a"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn a_caller_has_a_bounded_share_of_the_queue() {
    let (busy, quiet) = (new_token(), new_token());
    let queue = Arc::new(MemoryQueue::new(100));
    let cache = Arc::new(MemoryCache::default());
    let edge = edge(
        AuthConfig {
            tokens: plotq_http::auth::parse_tokens(&format!(
                "{} scopes=read name=busy\n{} scopes=read name=quiet",
                hash_token(&busy),
                hash_token(&quiet)
            ))
            .unwrap(),
            ..AuthConfig::open()
        },
        LimitsConfig::default(),
    );
    let r = hardened(
        ApiState {
            store: Arc::new(MemoryStore::default()),
            queue: queue.clone(),
            cache: cache.clone(),
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig {
                jobs_in_flight_per_caller: 3,
                ..ApiConfig::default()
            },
        },
        &edge,
    );
    let spec = |i: usize| json!({"kind": "histogram", "service": "a", "title": format!("t{i}")});
    for i in 0..3 {
        let (status, _) = as_token(&r, Some(&busy), "POST", "/api/v1/plots", spec(i)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, problem) = as_token(&r, Some(&busy), "POST", "/api/v1/plots", spec(3)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_jobs")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_JOBS_IN_FLIGHT_PER_CALLER")
    );
    // A refused request shares an existing job when it can: identical requests are free.
    let (status, body) = as_token(&r, Some(&busy), "POST", "/api/v1/plots", spec(0)).await;
    assert_eq!(
        (status, body["deduplicated"].as_bool()),
        (StatusCode::ACCEPTED, Some(true))
    );
    // Another caller has its own share.
    let (status, _) = as_token(&r, Some(&quiet), "POST", "/api/v1/plots", spec(9)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(queue.depth(), 4);
    // Each job carries its caller's lane; one ending (as a worker ends it) frees a place.
    let mut consumer = queue.consume(10).await.unwrap();
    let mut lanes = Vec::new();
    for _ in 0..4 {
        let message = JobMessage::decode(&consumer.next().await.unwrap().body).unwrap();
        lanes.push((message.lane.clone().expect("a lane"), message.id));
    }
    let busy_lane = lanes[0].0.clone();
    assert!(lanes[..3].iter().all(|(lane, _)| *lane == busy_lane));
    assert_ne!(lanes[3].0, busy_lane, "the other caller's lane");
    assert!(!busy_lane.as_str().contains("busy"), "lanes name no token");
    cache.end_job(busy_lane.as_str(), lanes[0].1).await.unwrap();
    let (status, _) = as_token(&r, Some(&busy), "POST", "/api/v1/plots", spec(4)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}
