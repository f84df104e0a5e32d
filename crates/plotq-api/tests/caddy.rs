//! `POST /api/v1/ingest/caddy` driven in-process (`oneshot`) over in-memory ports,
//! behind the production edge: the fixture of real Caddy 2.7 lines counted and stored,
//! the accepted content types (415 otherwise), the query's mapping (422 when invalid; a
//! host that no rule and no default service names is a malformed line, never a service),
//! empty and oversized bodies, `Idempotency-Key` (covering the query as well as the
//! body), scopes and service allowlists, and the route's place in the OpenAPI document.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plotq_api::{ApiConfig, ApiDoc, ApiState, router};
use plotq_domain::chunk::BatchId;
use plotq_domain::{JobId, JobState, Sample};
use plotq_http::auth::{hash_token, new_token};
use plotq_http::{Auth, AuthConfig, Edge, EdgeConfig, Limits, LimitsConfig, harden};
use plotq_ports::memory::{MemoryCache, MemoryQueue, MemoryStore, MemoryViews};
use plotq_ports::{IdempotentStart, MetricStore, PortResult, SeriesQuery, ViewRegistry};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tower::ServiceExt;
use utoipa::OpenApi;

const FIXTURE: &str = include_str!("../../../tests/fixtures/caddy/access.log");
const NDJSON: &str = "application/x-ndjson";

/// The fixture with every numeric `ts` moved by whole seconds so that its first entry
/// lies two minutes ago (stores keep only recent raw samples).
fn recent_fixture() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    shift_ts(FIXTURE, now - 120 - 1_700_000_001)
}

/// `log` with the whole seconds of every numeric `"ts":` moved by `by_secs`.
fn shift_ts(log: &str, by_secs: i64) -> String {
    let mut out = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(at) = rest.find("\"ts\":") {
        let (head, tail) = rest.split_at(at + 5);
        out.push_str(head);
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        match tail[..digits].parse::<i64>() {
            Ok(secs) => out.push_str(&(secs + by_secs).to_string()),
            Err(_) => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

struct App {
    store: Arc<MemoryStore>,
    views: Arc<MemoryViews>,
    router: axum::Router,
}

fn app_on(auth: AuthConfig, max_body_bytes: usize) -> App {
    let store = Arc::new(MemoryStore::default());
    let views = Arc::new(MemoryViews::default());
    let state = ApiState {
        store: store.clone(),
        queue: Arc::new(MemoryQueue::new(10)),
        cache: Arc::new(MemoryCache::default()),
        views: views.clone(),
        config: ApiConfig {
            max_body_bytes,
            ..ApiConfig::default()
        },
    };
    let edge = Edge {
        auth: Auth::new(auth),
        limits: Limits::new(LimitsConfig::default()),
        config: EdgeConfig::default(),
    };
    App {
        store,
        views,
        router: harden(router(state), &edge),
    }
}

fn app() -> App {
    app_on(AuthConfig::open(), 1024 * 1024)
}

async fn post(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method("POST").uri(uri);
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
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post_lines(router: &axum::Router, query: &str, body: &str) -> (StatusCode, Value) {
    let uri = format!("/api/v1/ingest/caddy{query}");
    let (status, _, body) = post(router, &uri, &[("content-type", NDJSON)], body.to_owned()).await;
    (status, body)
}

/// Every service that received samples.
async fn services(app: &App) -> Vec<String> {
    app.views.services(0).await.unwrap()
}

/// `(line, field)` of each reported malformed line.
fn error_fields(body: &Value) -> Vec<(u64, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The problem of a host that no rule and no default service names.
fn unmapped(host: &str) -> String {
    format!(
        "/request/host: {host:?} matches no map rule, and no default service was given (`service=`)"
    )
}

/// The values stored for `service`/`metric`.
async fn stored(store: &MemoryStore, service: &str, metric: &str) -> Vec<f64> {
    let mut values = store
        .points(&plotq_ports::SeriesQuery {
            service,
            metric,
            from_ms: 0,
            until_ms: i64::MAX,
            with_timestamps: false,
        })
        .await
        .unwrap()
        .values;
    values.sort_by(f64::total_cmp);
    values
}

#[tokio::test]
async fn the_fixture_is_counted_and_its_access_entries_stored() {
    let app = app();
    let fixture = recent_fixture();
    // The README's query, as written there (`=` inside the value unencoded).
    let (status, body) = post_lines(
        &app.router,
        "?service=edge&map=api.example.com=api,*.example.com=web",
        &fixture,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lines"], 16);
    assert_eq!(body["accepted"], 9);
    assert_eq!(body["samples"], 18);
    assert_eq!(body["skipped"], 3);
    assert_eq!(body["malformed"], 4);
    let fields = |list: &[(u64, &str)]| -> Vec<(u64, String)> {
        list.iter().map(|(l, f)| (*l, (*f).to_owned())).collect()
    };
    assert_eq!(
        error_fields(&body),
        fields(&[(8, ""), (10, "/status"), (11, "/duration"), (12, "/status")])
    );
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .starts_with("not JSON (EOF while parsing"),
        "{body}"
    );
    assert!(
        body["errors"][1]["problem"]
            .as_str()
            .unwrap()
            .starts_with("/status: must be a number"),
        "{body}"
    );
    assert_eq!(
        stored(&app.store, "api", "status_code").await,
        [200.0, 201.0, 404.0, 502.0]
    );
    assert_eq!(
        stored(&app.store, "web", "status_code").await,
        [200.0, 200.0, 304.0, 500.0]
    );
    assert_eq!(stored(&app.store, "edge", "status_code").await, [308.0]);
    let api_ms = stored(&app.store, "api", "http_request_duration_ms").await;
    let expected = [2.113004, 12.006148, 30.012875, 48.213337];
    assert_eq!(api_ms.len(), expected.len());
    for (got, want) in api_ms.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{api_ms:?}");
    }
    assert_eq!(
        stored(&app.store, "edge", "http_request_duration_ms")
            .await
            .len(),
        1
    );
    assert_eq!(services(&app).await, ["api", "edge", "web"]);

    // Rules without a default service: the scanner's request to the bare IP (line 13)
    // is malformed, and no service is made of its host. Per-method metrics on request.
    let app = self::app();
    let (status, body) = post_lines(
        &app.router,
        "?map=*.example.com%3Dweb&metric_per_method=true",
        &fixture,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["lines"].clone(),
            body["accepted"].clone(),
            body["samples"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(16), json!(8), json!(16), json!(3), json!(5))
    );
    assert_eq!(
        error_fields(&body),
        fields(&[
            (8, ""),
            (10, "/status"),
            (11, "/duration"),
            (12, "/status"),
            (13, "/request/host")
        ])
    );
    assert_eq!(body["errors"][4]["problem"], unmapped("152.53.179.101"));
    for (method, n) in [("get", 4), ("head", 1), ("post", 2), ("put", 1)] {
        assert_eq!(
            stored(
                &app.store,
                "web",
                &format!("http_request_duration_ms.{method}")
            )
            .await
            .len(),
            n,
            "{method}"
        );
    }
    assert!(
        stored(&app.store, "web", "http_request_duration_ms")
            .await
            .is_empty()
    );
    assert_eq!(
        stored(&app.store, "web", "status_code").await,
        [200.0, 200.0, 200.0, 201.0, 304.0, 404.0, 500.0, 502.0]
    );
    assert_eq!(services(&app).await, ["web"]);

    // No mapping at all: every access entry is malformed, nothing is stored.
    let app = self::app();
    let (status, body) = post_lines(&app.router, "", &fixture).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["accepted"].clone(),
            body["samples"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(0), json!(0), json!(3), json!(13))
    );
    let host = "/request/host";
    assert_eq!(
        error_fields(&body),
        fields(&[
            (1, host),
            (2, host),
            (3, host),
            (5, host),
            (7, host),
            (8, ""),
            (9, host),
            (10, "/status"),
            (11, "/duration"),
            (12, "/status"),
            (13, host),
            (15, host),
            (16, host)
        ])
    );
    assert_eq!(body["errors"][0]["problem"], unmapped("shop.example.com"));
    assert_eq!(body["errors"][10]["problem"], unmapped("152.53.179.101"));
    assert!(services(&app).await.is_empty());
    for service in ["shop.example.com", "api.example.com", "152.53.179.101"] {
        assert!(stored(&app.store, service, "status_code").await.is_empty());
    }
}

#[tokio::test]
async fn an_unknown_method_folds_into_the_other_metric() {
    let app = app();
    let line = recent_fixture().lines().next().unwrap().to_owned();
    let brew = line.replace(r#""method":"GET""#, r#""method":"BREW""#);
    let propfind = line.replace(r#""method":"GET""#, r#""method":"propfind""#);
    assert_ne!(brew, line);
    let body = format!("{line}\n{brew}\n{propfind}\n");
    let (status, answer) =
        post_lines(&app.router, "?service=edge&metric_per_method=true", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(
        stored(&app.store, "edge", "http_request_duration_ms.get")
            .await
            .len(),
        1
    );
    assert_eq!(
        stored(&app.store, "edge", "http_request_duration_ms.other")
            .await
            .len(),
        2
    );
    for invented in ["brew", "propfind"] {
        assert!(
            stored(
                &app.store,
                "edge",
                &format!("http_request_duration_ms.{invented}")
            )
            .await
            .is_empty()
        );
    }
    assert_eq!(stored(&app.store, "edge", "status_code").await.len(), 3);
}

#[tokio::test]
async fn lines_in_any_line_content_type_anything_else_is_415() {
    let app = app();
    let line = FIXTURE.lines().next().unwrap();
    for content_type in [
        "application/x-ndjson",
        "application/jsonl",
        "application/json-lines",
        "Application/X-NDJSON; charset=utf-8",
    ] {
        let (status, _, body) = post(
            &app.router,
            "/api/v1/ingest/caddy?service=edge",
            &[("content-type", content_type)],
            line.to_owned(),
        )
        .await;
        assert_eq!(
            (status, body["accepted"].clone()),
            (StatusCode::OK, json!(1)),
            "{content_type}"
        );
    }
    // A content type a cross-site form or `fetch` may send without a CORS preflight
    // (`text/plain` above all) is refused, like anything else that is not lines.
    for headers in [
        &[("content-type", "text/plain")][..],
        &[("content-type", "text/plain; charset=utf-8")][..],
        &[("content-type", "multipart/form-data; boundary=x")][..],
        &[("content-type", "application/json")][..],
        &[("content-type", "application/x-www-form-urlencoded")][..],
        &[][..],
    ] {
        let (status, h, body) = post(
            &app.router,
            "/api/v1/ingest/caddy?service=edge",
            headers,
            line.to_owned(),
        )
        .await;
        assert_eq!(status, 415, "{headers:?}");
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(body["code"], "unsupported_media_type");
    }
}

#[tokio::test]
async fn empty_bodies_and_bodies_without_access_entries_are_answered_with_counts() {
    let app = app();
    let zero = json!({"lines": 0, "accepted": 0, "samples": 0, "skipped": 0, "malformed": 0, "errors": []});
    assert_eq!(
        post_lines(&app.router, "", "").await,
        (StatusCode::OK, zero.clone())
    );
    assert_eq!(
        post_lines(&app.router, "", "\n\r\n  \n").await,
        (StatusCode::OK, zero)
    );
    let (status, body) = post_lines(
        &app.router,
        "",
        "garbage\n{\"logger\":\"tls\",\"msg\":\"x\"}\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["lines"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(body["errors"][0]["line"], 1);
}

#[tokio::test]
async fn bad_queries_oversized_and_overlong_bodies_are_refused_whole() {
    let app = app_on(AuthConfig::open(), 64 * 1024);
    let fixture = recent_fixture();
    // Each query valid but for one parameter: nothing of the batch is stored.
    for (query, field) in [
        (
            "?service=bad%20name&map=api.example.com%3Dapi",
            "/query/service",
        ),
        ("?service=edge&map=nohost", "/query/map"),
        ("?service=edge&map=a%3Dbad%20name", "/query/map"),
        ("?service=edge&metric_per_method=maybe", "/query"),
    ] {
        let (status, body) = post_lines(&app.router, query, &fixture).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let big = fixture.repeat(40);
    let (status, body) = post_lines(&app.router, "?service=edge", &big).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("body_too_large"))
    );
    assert!(services(&app).await.is_empty());
    let app = app_on(AuthConfig::open(), 1024 * 1024);
    let many = "x\n".repeat(plotq_api::caddy::MAX_LINES + 1);
    let (status, body) = post_lines(&app.router, "?service=edge", &many).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/body");
    assert!(services(&app).await.is_empty());
}

#[tokio::test]
async fn a_retried_batch_with_an_idempotency_key_is_stored_once() {
    let app = app();
    let fixture = recent_fixture();
    let uri = "/api/v1/ingest/caddy?service=edge&map=api.example.com%3Dapi";
    let headers = [
        ("content-type", NDJSON),
        ("idempotency-key", "caddy-test-1"),
    ];
    let (first, h1, b1) = post(&app.router, uri, &headers, fixture.clone()).await;
    let (again, h2, b2) = post(&app.router, uri, &headers, fixture.clone()).await;
    assert_eq!(
        (first, again),
        (StatusCode::OK, StatusCode::OK),
        "{b1} {b2}"
    );
    assert_eq!(b1["accepted"], 9, "{b1}");
    assert!(h1.get("idempotent-replayed").is_none());
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(b1, b2);
    assert_eq!(stored(&app.store, "api", "status_code").await.len(), 4);
    assert_eq!(stored(&app.store, "edge", "status_code").await.len(), 5);
    let reused = |status: StatusCode, body: &Value| {
        assert_eq!(
            (status, body["code"].clone()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!("idempotency_key_reused")
            ),
            "{body}"
        );
        assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    };
    // Another body under the key.
    let other = fixture.lines().take(3).collect::<Vec<_>>().join("\n");
    let (status, _, body) = post(&app.router, uri, &headers, other).await;
    reused(status, &body);
    // The same body under the key with another mapping: other samples, so another batch.
    for query in [
        "?service=edge&map=*.example.com%3Dweb",
        "?service=web&map=api.example.com%3Dapi",
        "?service=edge&map=api.example.com%3Dapi&metric_per_method=true",
    ] {
        let (status, _, body) = post(
            &app.router,
            &format!("/api/v1/ingest/caddy{query}"),
            &headers,
            fixture.clone(),
        )
        .await;
        reused(status, &body);
    }
    // Nothing of the refused requests was stored.
    assert_eq!(services(&app).await, ["api", "edge"]);
    assert_eq!(stored(&app.store, "api", "status_code").await.len(), 4);
    assert_eq!(stored(&app.store, "edge", "status_code").await.len(), 5);
    // The first mapping again is still the same batch.
    let (status, h, body) = post(&app.router, uri, &headers, fixture.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(body, b1);
    let (status, _, body) = post(
        &app.router,
        "/api/v1/ingest/caddy",
        &[("content-type", NDJSON), ("idempotency-key", "with space")],
        FIXTURE,
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

/// A cache whose idempotency keys are taken at once but answered late (a Redis `SET`
/// that was applied, its reply still on the way).
struct SlowBegin(MemoryCache);

#[async_trait::async_trait]
impl plotq_ports::PlotCache for SlowBegin {
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        self.0.put_state(state, ttl).await
    }
    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        self.0.put_state_if_absent(state, ttl).await
    }
    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        self.0.get_state(id).await
    }
    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        self.0.put_image(id, png, ttl).await
    }
    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        self.0.get_image(id).await
    }
    async fn claim_request(
        &self,
        key: &str,
        id: JobId,
        ttl: Duration,
    ) -> PortResult<Option<JobId>> {
        self.0.claim_request(key, id, ttl).await
    }
    async fn replace_request(&self, key: &str, id: JobId, ttl: Duration) -> PortResult<()> {
        self.0.replace_request(key, id, ttl).await
    }
    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        self.0.release_request(key, id).await
    }
    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        self.0.delete_state(id).await
    }
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> PortResult<IdempotentStart> {
        let start = self.0.begin_idempotent(key, fingerprint, pending_ttl).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        start
    }
    async fn finish_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        accepted: u64,
        ttl: Duration,
    ) -> PortResult<()> {
        self.0
            .finish_idempotent(key, fingerprint, accepted, ttl)
            .await
    }
    async fn abandon_idempotent(&self, key: &str, fingerprint: &str) -> PortResult<()> {
        self.0.abandon_idempotent(key, fingerprint).await
    }
    async fn begin_job(
        &self,
        lane: &str,
        id: JobId,
        cap: usize,
        lease: Duration,
        now_ms: i64,
    ) -> PortResult<bool> {
        self.0.begin_job(lane, id, cap, lease, now_ms).await
    }
    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        self.0.end_job(lane, id).await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

/// A store whose first write never finishes (a request its client gave up on).
struct FirstWriteHangs {
    inner: MemoryStore,
    hung: AtomicBool,
}

#[async_trait::async_trait]
impl MetricStore for FirstWriteHangs {
    async fn insert(&self, samples: &[Sample], batch: Option<&BatchId>) -> PortResult<()> {
        if !self.hung.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.insert(samples, batch).await
    }
    async fn points(&self, q: &SeriesQuery<'_>) -> PortResult<plotq_ports::Points> {
        self.inner.points(q).await
    }
    async fn rollups(&self, q: &SeriesQuery<'_>) -> PortResult<plotq_ports::Rollups> {
        self.inner.rollups(q).await
    }
    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_retry_after_the_client_gave_up_is_stored_at_once() {
    // `plotq tail` killed with a batch in flight: the api drops the request's handler
    // (hyper does, when the connection closes) while it takes the key or writes. The
    // same batch sent again under its key is stored now, not answered `409
    // idempotency_key_in_use` until the in-progress mark lapses (60 s).
    for hang_in in ["the key's reply", "the write"] {
        let slow_begin = hang_in == "the key's reply";
        let store = Arc::new(FirstWriteHangs {
            inner: MemoryStore::default(),
            hung: AtomicBool::new(slow_begin),
        });
        let cache: Arc<dyn plotq_ports::PlotCache> = if slow_begin {
            Arc::new(SlowBegin(MemoryCache::default()))
        } else {
            Arc::new(MemoryCache::default())
        };
        let state = ApiState {
            store: store.clone(),
            queue: Arc::new(MemoryQueue::new(10)),
            cache,
            views: Arc::new(MemoryViews::default()),
            config: ApiConfig::default(),
        };
        let edge = Edge {
            auth: Auth::new(AuthConfig::open()),
            limits: Limits::new(LimitsConfig::default()),
            config: EdgeConfig::default(),
        };
        let router = harden(router(state), &edge);
        let fixture = recent_fixture();
        let uri = "/api/v1/ingest/caddy?service=edge";
        let headers = [
            ("content-type", NDJSON),
            ("idempotency-key", "caddy-tail-g-0"),
        ];
        let gave_up = tokio::time::timeout(
            Duration::from_millis(100),
            post(&router, uri, &headers, fixture.clone()),
        )
        .await;
        assert!(gave_up.is_err(), "{hang_in}: the first request hangs");
        // Released in the background: allow it a moment, far less than the mark's 60 s.
        let until = std::time::Instant::now() + Duration::from_secs(3);
        let (status, body) = loop {
            let (status, _, body) = post(&router, uri, &headers, fixture.clone()).await;
            if status != StatusCode::CONFLICT || std::time::Instant::now() > until {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(status, StatusCode::OK, "{hang_in}: {body}");
        assert_eq!(body["accepted"], 9, "{hang_in}: {body}");
        assert_eq!(
            stored(&store.inner, "edge", "status_code").await.len(),
            9,
            "{hang_in}"
        );
    }
}

#[tokio::test]
async fn the_ingest_scope_and_the_callers_services_are_required() {
    let (ingest, reader, tenant) = (new_token(), new_token(), new_token());
    let lines = format!(
        "{} scopes=ingest name=ingest\n{} scopes=read name=reader\n{} scopes=ingest services=team-a-* name=tenant",
        hash_token(&ingest),
        hash_token(&reader),
        hash_token(&tenant),
    );
    let auth = AuthConfig {
        tokens: plotq_http::auth::parse_tokens(&lines).unwrap(),
        ..AuthConfig::open()
    };
    let app = app_on(auth, 1024 * 1024);
    let send = |token: Option<String>, query: &'static str| {
        let router = app.router.clone();
        async move {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("content-type", NDJSON)];
            if let Some(b) = &bearer {
                headers.push(("authorization", b.as_str()));
            }
            let uri = format!("/api/v1/ingest/caddy{query}");
            let (status, _, body) = post(&router, &uri, &headers, recent_fixture()).await;
            (status, body)
        }
    };
    assert_eq!(send(None, "?service=edge").await.0, 401);
    assert_eq!(send(Some(reader), "?service=edge").await.0, 403);
    // A service outside the tenant's: the whole batch is refused.
    for query in [
        "?service=team-b-edge",
        "?service=team-a-edge&map=api.example.com%3Dteam-b-api",
    ] {
        let (status, body) = send(Some(tenant.clone()), query).await;
        assert_eq!(status, 403, "{query}: {body}");
        assert_eq!(body["code"], "forbidden");
        assert!(
            body["detail"].as_str().unwrap().contains("team-b-"),
            "{body}"
        );
    }
    assert!(services(&app).await.is_empty());
    // Without a mapping, no line names a service: nothing to store, nothing refused.
    let (status, body) = send(Some(tenant.clone()), "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["malformed"].clone()),
        (json!(0), json!(13))
    );
    assert_eq!(send(Some(tenant), "?service=team-a-edge").await.0, 200);
    assert_eq!(send(Some(ingest), "?service=edge").await.0, 200);
    assert_eq!(
        stored(&app.store, "team-a-edge", "status_code").await.len(),
        9
    );
    assert_eq!(stored(&app.store, "edge", "status_code").await.len(), 9);
    assert_eq!(services(&app).await, ["edge", "team-a-edge"]);
}

#[tokio::test]
async fn the_route_is_documented_with_its_body_and_answer() {
    let doc: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
    let op = &doc["paths"]["/api/v1/ingest/caddy"]["post"];
    assert!(
        op["requestBody"]["content"][NDJSON]["schema"]["type"] == "string",
        "{op}"
    );
    for status in [
        "200", "400", "401", "403", "413", "415", "422", "429", "503",
    ] {
        assert!(op["responses"][status].is_object(), "{status} in {op}");
    }
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["service", "map", "metric_per_method", "Idempotency-Key"]
    );
    let answer = &doc["components"]["schemas"]["CaddyIngestDoc"]["properties"];
    for field in [
        "lines",
        "accepted",
        "samples",
        "skipped",
        "malformed",
        "errors",
    ] {
        assert!(answer[field].is_object(), "{field}");
    }
}
