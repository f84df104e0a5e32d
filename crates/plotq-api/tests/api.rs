//! The API router driven in-process (`oneshot`) over in-memory ports: status codes and
//! problem bodies for good and bad input, and what is (not) stored or queued.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plotq_api::{ApiConfig, ApiState, router};
use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, JobStatus, PlotKind, PlotSpec, Sample, ServiceName};
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

fn app_with(max_body_bytes: usize) -> App {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::new(100));
    let cache = Arc::new(MemoryCache::default());
    let router = router(ApiState {
        store: store.clone(),
        queue: queue.clone(),
        cache: cache.clone(),
        views: Arc::new(MemoryViews::default()),
        config: ApiConfig {
            max_body_bytes,
            ..ApiConfig::default()
        },
    });
    App {
        store,
        queue,
        cache,
        router,
    }
}

fn app() -> App {
    app_with(1024 * 1024)
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(body.into())
                .unwrap(),
        )
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
        .points(service, "latency_ms", 0, i64::MAX, false)
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
    async fn insert(&self, _: &[Sample]) -> PortResult<()> {
        Err(PortError::unavailable("mongodb", "connection refused"))
    }
    async fn points(
        &self,
        _: &str,
        _: &str,
        _: i64,
        _: i64,
        _: bool,
    ) -> PortResult<plotq_ports::Points> {
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
    let router = router(ApiState {
        store: Arc::new(Down),
        queue: Arc::new(Down),
        cache: Arc::new(MemoryCache::default()),
        views: Arc::new(MemoryViews::default()),
        config: ApiConfig::default(),
    });
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
