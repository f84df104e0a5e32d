//! The shared helpers of the api's tests: one way to build the api under test
//! ([`build`] … [`Build::start`], or [`app`] with every default) and one way to call it
//! ([`App::call`] … [`Call::send`]).
//!
//! The api runs in-process behind the production edge (`plotq_http::harden`, with the
//! readiness routes beside it, and `plotq_api::otlp_statuses` and `render_cards` around it) over in-memory
//! ports, each wrapped in `plotq_ports::faulty::Faulty`: a test injects a dependency's
//! faults (down, slow, hanging, failing after the write) as rules on `app.store`,
//! `app.queue` or `app.cache`, and reads what was stored or queued through the same
//! fields.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use plotq_api::{ApiConfig, ApiDoc, ApiState, router};
use plotq_domain::{JobId, JobState, JobStatus, PlotSpec};
use plotq_http::auth::{hash_token, new_token, parse_tokens};
use plotq_http::{Auth, AuthConfig, Edge, EdgeConfig, Limits, LimitsConfig, Probe, harden};
use plotq_ports::faulty::Faulty;
use plotq_ports::memory::{MemoryCache, MemoryQueue, MemoryStore, MemoryViews};
use plotq_ports::{MetricStore, PlotCache, SeriesQuery};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use utoipa::OpenApi;

/// The api under test and its ports.
pub struct App {
    pub router: axum::Router,
    pub store: Arc<Faulty<MemoryStore>>,
    pub queue: Arc<Faulty<MemoryQueue>>,
    pub cache: Arc<Faulty<MemoryCache>>,
    pub views: Arc<MemoryViews>,
    /// Its edge (to replace the tokens while it runs).
    pub edge: Edge,
}

/// What an api under test is built from; every part has a default.
pub struct Build {
    config: ApiConfig,
    auth: AuthConfig,
    limits: LimitsConfig,
    edge: EdgeConfig,
    store: MemoryStore,
    cache: Option<Arc<Faulty<MemoryCache>>>,
    probes: Vec<Probe>,
    dashboard: Option<String>,
}

/// An api in open mode (standalone on loopback) with default limits and settings.
pub fn app() -> App {
    build().start()
}

/// An api to build: open mode, default limits and settings, empty in-memory ports.
pub fn build() -> Build {
    Build {
        config: ApiConfig::default(),
        auth: AuthConfig::open(),
        limits: LimitsConfig::default(),
        edge: EdgeConfig::default(),
        store: MemoryStore::default(),
        cache: None,
        probes: Vec::new(),
        dashboard: None,
    }
}

impl Build {
    /// Tokens from a token file's `lines` (`<hash> scopes=… name=…`): authentication on.
    pub fn tokens(mut self, lines: &str) -> Self {
        self.auth.tokens = parse_tokens(lines).unwrap();
        self
    }

    pub fn limits(mut self, limits: LimitsConfig) -> Self {
        self.limits = limits;
        self
    }

    pub fn edge(mut self, edge: EdgeConfig) -> Self {
        self.edge = edge;
        self
    }

    pub fn config(mut self, config: ApiConfig) -> Self {
        self.config = config;
        self
    }

    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config.max_body_bytes = bytes;
        self
    }

    pub fn store(mut self, store: MemoryStore) -> Self {
        self.store = store;
        self
    }

    /// Another api's cache (as replicas share Redis).
    pub fn cache(mut self, cache: Arc<Faulty<MemoryCache>>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The readiness checks of `/readyz`.
    pub fn probes(mut self, probes: Vec<Probe>) -> Self {
        self.probes = probes;
        self
    }

    /// Serves the dashboard too, subscribing to `events_url`.
    pub fn dashboard(mut self, events_url: &str) -> Self {
        self.dashboard = Some(events_url.to_owned());
        self
    }

    pub fn start(self) -> App {
        let store = Arc::new(Faulty::new(self.store));
        let queue = Arc::new(Faulty::new(MemoryQueue::new(100)));
        let cache = self
            .cache
            .unwrap_or_else(|| Arc::new(Faulty::new(MemoryCache::default())));
        let views = Arc::new(MemoryViews::default());
        let state = ApiState {
            store: store.clone(),
            queue: queue.clone(),
            cache: cache.clone(),
            views: views.clone(),
            config: self.config,
        };
        let edge = Edge {
            auth: Auth::new(self.auth),
            limits: Limits::new(self.limits),
            config: self.edge,
        };
        let mut routes = router(state).merge(plotq_http::readiness_router(self.probes, None));
        if let Some(events_url) = &self.dashboard {
            routes = routes.merge(plotq_api::dashboard_router(events_url));
        }
        App {
            router: plotq_api::render_cards(plotq_api::otlp_statuses(harden(routes, &edge))),
            store,
            queue,
            cache,
            views,
            edge,
        }
    }
}

/// Four tokens: ingest only, read only, a tenant (both, for the services `team-a-*`)
/// and an admin.
pub struct Tokens {
    pub ingest: String,
    pub reader: String,
    pub tenant: String,
    pub admin: String,
}

impl Tokens {
    pub fn new() -> Self {
        Self {
            ingest: new_token(),
            reader: new_token(),
            tenant: new_token(),
            admin: new_token(),
        }
    }

    /// Their token file.
    pub fn lines(&self) -> String {
        format!(
            "{} scopes=ingest name=ingest\n{} scopes=read name=reader\n{} scopes=ingest,read services=team-a-* name=tenant\n{} scopes=admin name=admin",
            hash_token(&self.ingest),
            hash_token(&self.reader),
            hash_token(&self.tenant),
            hash_token(&self.admin)
        )
    }
}

impl App {
    /// A request; a POST declares a JSON body (as every client sends).
    pub fn call(&self, method: &str, uri: impl Into<String>) -> Call<'_> {
        let call = Call {
            router: &self.router,
            method: method.to_owned(),
            uri: uri.into(),
            headers: Vec::new(),
            body: Body::empty(),
        };
        if method == "POST" {
            call.header("content-type", "application/json")
        } else {
            call
        }
    }

    pub fn get(&self, uri: impl Into<String>) -> Call<'_> {
        self.call("GET", uri)
    }

    pub fn post(&self, uri: impl Into<String>) -> Call<'_> {
        self.call("POST", uri)
    }

    /// The values stored for `service`'s `metric`, sorted.
    pub async fn stored(&self, service: &str, metric: &str) -> Vec<f64> {
        let mut values = self
            .store
            .points(&SeriesQuery {
                service,
                metric,
                from_ms: 0,
                until_ms: i64::MAX,
                with_timestamps: false,
                select: plotq_ports::LabelSelect::ALL,
            })
            .await
            .unwrap()
            .values;
        values.sort_by(f64::total_cmp);
        values
    }

    /// A done job of `spec` with `image` cached, as a worker leaves it (done now).
    pub async fn done_job(&self, spec: PlotSpec, image: &[u8]) -> JobState {
        let now = plotq_ports::clock::now_ms();
        let mut job = JobState::queued(JobId::new_random(), spec, now);
        job.status = JobStatus::Done;
        let ttl = Duration::from_secs(60);
        self.cache.put_state(&job, ttl).await.unwrap();
        self.cache.put_image(job.id, image, ttl).await.unwrap();
        job
    }
}

/// Operation `method` (`get`, `post`) of `path` in the api's OpenAPI document, and the
/// whole document.
pub fn documented(path: &str, method: &str) -> (Value, Value) {
    let doc: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
    (doc["paths"][path][method].clone(), doc)
}

/// The names of an operation's parameters, in order.
pub fn parameter_names(op: &Value) -> Vec<&str> {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

/// A request being built; [`Call::send`] sends it.
pub struct Call<'a> {
    router: &'a axum::Router,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Call<'_> {
    /// Sets header `name` (replacing an earlier value).
    pub fn header(self, name: &str, value: &str) -> Self {
        let mut call = self.without(name);
        call.headers.push((name.to_owned(), value.to_owned()));
        call
    }

    /// Sends no header `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// `Authorization: Bearer <token>`, if a token is given.
    pub fn token(self, token: Option<&str>) -> Self {
        match token {
            Some(token) => self.header("authorization", &format!("Bearer {token}")),
            None => self,
        }
    }

    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// `body` as JSON text (the content type is the POST's).
    pub fn json(self, body: &Value) -> Self {
        self.body(body.to_string())
    }

    /// Access-log lines: `application/x-ndjson`.
    pub fn lines(self, body: impl Into<Body>) -> Self {
        self.header("content-type", "application/x-ndjson")
            .body(body)
    }

    /// Sends the request through the router. Every client error is problem+json, but on
    /// the OTLP paths: a `google.rpc.Status`, binary or in its JSON mapping.
    pub async fn send(self) -> Answer {
        let mut request = Request::builder()
            .method(self.method.as_str())
            .uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(self.body).unwrap())
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
        if status.is_client_error() {
            let otlp = ["/v1/traces", "/v1/metrics"].contains(&self.uri.as_str());
            // A render asked for as an image answers errors as an SVG card.
            let card = self.uri.starts_with("/api/v1/render?")
                && self
                    .headers
                    .iter()
                    .any(|(k, v)| k == "accept" && v.starts_with("image/"));
            let expected: &[&str] = if otlp {
                &["application/x-protobuf", "application/json"]
            } else if card {
                &["image/svg+xml"]
            } else {
                &["application/problem+json"]
            };
            assert!(
                expected.contains(&headers["content-type"].to_str().unwrap()),
                "{} {}: {status} as {:?}",
                self.method,
                self.uri,
                headers["content-type"]
            );
        }
        Answer {
            status,
            headers,
            bytes,
        }
    }
}

/// What the api answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    /// The `field` of each of the problem's `errors`, in order.
    pub fn error_fields(&self) -> Vec<String> {
        let body = self.json();
        body["errors"]
            .as_array()
            .map(|errors| {
                let fields = errors.iter().map(|e| e["field"].as_str().unwrap_or("?"));
                fields.map(str::to_owned).collect()
            })
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}
