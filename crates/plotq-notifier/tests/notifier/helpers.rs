//! The notifier under test and the one way to call it: `Fixture` (a `Hub` over memory
//! ports behind the same edge as in production, with three tokens: `reader`, `tenant`
//! limited to `team-a-*`, and `ingest` without the read scope) and `Fixture::subscribe`
//! (one request driven in-process); `Sse`, a stream's body read as text; the problem a
//! refusal carries; the events the tests publish.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use plotq_domain::wire::{EventKind, PlotEvent};
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use plotq_http::auth::{Principal, hash_token, new_token, parse_tokens};
use plotq_http::{Auth, AuthConfig, Edge, EdgeConfig, Limits, LimitsConfig, harden};
use plotq_notifier::{Hub, NotifierConfig, router};
use plotq_ports::memory::{MemoryEventBus, MemoryViews};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub struct Fixture {
    router: axum::Router,
    pub bus: Arc<MemoryEventBus>,
    pub views: Arc<MemoryViews>,
    pub auth: Arc<Auth>,
    /// `read` on every service.
    pub reader: String,
    /// `read` on `team-a-*` only.
    pub tenant: String,
    /// `ingest` only.
    pub ingest: String,
    pub hub: Arc<Hub>,
    /// The process's shutdown, as the hub sees it.
    pub shutdown: CancellationToken,
    _shutdown: tokio_util::sync::DropGuard,
}

impl Fixture {
    /// Default limits and settings.
    pub fn new() -> Self {
        Self::with(LimitsConfig::default(), NotifierConfig::default())
    }

    /// Default limits, the hub's settings changed by `change`.
    pub fn with_notifier(change: impl FnOnce(&mut NotifierConfig)) -> Self {
        let mut config = NotifierConfig::default();
        change(&mut config);
        Self::with(LimitsConfig::default(), config)
    }

    pub fn with(limits: LimitsConfig, config: NotifierConfig) -> Self {
        let (reader, tenant, ingest) = (new_token(), new_token(), new_token());
        let tokens = parse_tokens(&format!(
            "{} scopes=read name=reader\n{} scopes=read services=team-a-* name=tenant\n{} scopes=ingest name=ingest",
            hash_token(&reader),
            hash_token(&tenant),
            hash_token(&ingest)
        ))
        .unwrap();
        let auth = Auth::new(AuthConfig {
            tokens,
            ..AuthConfig::open()
        });
        let bus = Arc::new(MemoryEventBus::new(100));
        let views = Arc::new(MemoryViews::default());
        let shutdown = CancellationToken::new();
        let hub = Hub::new(bus.clone(), views.clone(), config, shutdown.clone());
        tokio::spawn(hub.clone().run_until_stopped());
        let edge = Edge {
            auth: auth.clone(),
            limits: Limits::new(limits),
            config: EdgeConfig::default(),
        };
        Self {
            router: harden(router(hub.clone()), &edge),
            bus,
            views,
            auth,
            reader,
            tenant,
            ingest,
            hub,
            shutdown: shutdown.clone(),
            _shutdown: shutdown.drop_guard(),
        }
    }

    /// `GET uri` with `token` as the bearer, if any.
    pub async fn subscribe(&self, uri: &str, token: Option<&str>) -> Response {
        self.send(request(uri, token)).await
    }

    /// `GET uri` with `token` and `Last-Event-ID: last_event_id`.
    pub async fn subscribe_after(&self, uri: &str, token: &str, last_event_id: &str) -> Response {
        self.send(request(uri, Some(token)).header("last-event-id", last_event_id))
            .await
    }

    /// Opens a stream watching the histogram views of `services` (`views_of`).
    pub async fn watch(&self, services: &[&str], token: &str) -> Response {
        self.subscribe(
            &format!("/api/v1/events?views={}", views_of(services)),
            Some(token),
        )
        .await
    }

    async fn send(&self, request: axum::http::request::Builder) -> Response {
        self.router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// Who `token` is, as the edge authenticates it.
    pub fn principal(&self, token: &str) -> Principal {
        self.auth
            .authenticate(&bearer(token), &Method::POST, None, None, 0)
            .unwrap()
    }

    /// Waits (with a deadline) until the hub reads the bus, so what is published next
    /// is relayed: a fresh hub starts reading at the bus's newest event.
    pub async fn hub_tailing(&self) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !self.hub.is_tailing() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the hub started reading the bus");
    }
}

fn request(uri: &str, token: Option<&str>) -> axum::http::request::Builder {
    let mut request = Request::builder().uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    request
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}

/// The status and problem document of a refusal.
pub async fn problem(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A histogram job of `service` announced ready.
pub fn ready_event(service: &str) -> PlotEvent {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse(service).unwrap());
    let state = JobState::queued(JobId::new_random(), spec, 1_000);
    PlotEvent::for_job(&state, EventKind::PlotReady, 2_000)
}

/// The keys of the histogram views of `services`, comma-separated.
pub fn views_of(services: &[&str]) -> String {
    services
        .iter()
        .map(|s| format!("{s}/histogram/15m/light/800x450"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An SSE response's body, read as text frame by frame.
pub struct Sse {
    body: Body,
    text: String,
}

impl Sse {
    pub fn new(response: Response) -> Self {
        Self {
            body: response.into_body(),
            text: String::new(),
        }
    }

    /// Reads frames until `look` finds what it looks for in the text so far; `None` when
    /// the stream ends or `within` passes first.
    async fn read_until<T>(
        &mut self,
        within: Duration,
        mut look: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = look(&self.text) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        self.text.push_str(&String::from_utf8_lossy(data));
                    }
                }
                _ => return None,
            }
        }
    }

    /// What `parse` finds in the text, once it finds `want` or within 5 s.
    async fn at_least<T>(&mut self, want: usize, parse: fn(&str) -> Vec<T>) -> Vec<T> {
        let arrived = self
            .read_until(Duration::from_secs(5), |text| {
                Some(parse(text)).filter(|found| found.len() >= want)
            })
            .await;
        arrived.unwrap_or_else(|| parse(&self.text))
    }

    /// The services of the events' `data:` payloads, once `want` arrived or within 5 s.
    pub async fn services(mut self, want: usize) -> Vec<String> {
        self.at_least(want, |text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| v["service"].as_str().map(str::to_owned))
                .collect()
        })
        .await
    }

    /// Each event with an `id:` so far, as `(id, service)`, once `want` arrived or
    /// within 5 s.
    pub async fn ids(&mut self, want: usize) -> Vec<(String, String)> {
        self.at_least(want, |text| {
            text.split("\n\n")
                .filter_map(|block| {
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name).map(str::to_owned))
                    };
                    let data: Value = serde_json::from_str(&field("data: ")?).ok()?;
                    Some((field("id: ")?, data["service"].as_str()?.to_owned()))
                })
                .collect()
        })
        .await
    }

    /// How many `:` keep-alive comments arrived, once `want` did or within 5 s.
    pub async fn keep_alives(&mut self, want: usize) -> usize {
        let count = |text: &str| text.split("\n\n").filter(|b| *b == ":").count();
        self.read_until(Duration::from_secs(5), |text| {
            Some(count(text)).filter(|n| *n >= want)
        })
        .await
        .unwrap_or_else(|| count(&self.text))
    }

    /// Whether the stream ends (no more frames) within 5 s, whatever it sends before.
    pub async fn ends(mut self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The `data:` of the first event named `name` (within 10 s), and whether the
    /// stream ended right after it.
    pub async fn until_event(mut self, name: &str) -> Option<(Value, bool)> {
        let marker = format!("event: {name}\n");
        let data = self
            .read_until(Duration::from_secs(10), |text| {
                let at = text.find(&marker)?;
                let block = text[at..].split("\n\n").next().unwrap_or("");
                block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
            })
            .await?;
        // Past the event, the stream must end (no more frames).
        let ended = matches!(
            tokio::time::timeout(Duration::from_secs(5), self.body.frame()).await,
            Ok(None)
        );
        Some((data, ended))
    }
}
