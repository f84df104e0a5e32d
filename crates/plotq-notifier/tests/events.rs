//! The SSE endpoint driven in-process (`oneshot`) over memory ports, behind the same
//! edge as in production: who may subscribe (tokens, read tickets, scopes), what a
//! tenant limited to some services receives, and the connection and view limits.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use plotq_domain::wire::{EventKind, PlotEvent};
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use plotq_http::auth::{hash_token, new_token, parse_tokens};
use plotq_http::{Auth, AuthConfig, Edge, EdgeConfig, Limits, LimitsConfig, harden};
use plotq_notifier::{Hub, NotifierConfig, router};
use plotq_ports::EventBus;
use plotq_ports::memory::{MemoryEventBus, MemoryViews};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

struct Fixture {
    router: axum::Router,
    bus: Arc<MemoryEventBus>,
    views: Arc<MemoryViews>,
    auth: Arc<Auth>,
    reader: String,
    tenant: String,
    ingest: String,
    hub: Arc<Hub>,
    _shutdown: tokio_util::sync::DropGuard,
}

fn fixture(limits: LimitsConfig, config: NotifierConfig) -> Fixture {
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
    let tailing = hub.clone();
    let edge = Edge {
        auth: auth.clone(),
        limits: Limits::new(limits),
        config: EdgeConfig::default(),
    };
    Fixture {
        router: harden(router(hub), &edge),
        bus,
        views,
        auth,
        reader,
        tenant,
        ingest,
        hub: tailing,
        _shutdown: shutdown.drop_guard(),
    }
}

/// Waits (with a deadline) until the hub reads the bus, so what is published next is
/// relayed: a fresh hub starts reading at the bus's newest event.
async fn hub_tailing(hub: &Hub) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !hub.is_tailing() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub started reading the bus");
}

async fn subscribe(
    router: &axum::Router,
    uri: &str,
    token: Option<&str>,
) -> axum::response::Response {
    let mut request = Request::builder().uri(uri);
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn problem(response: axum::response::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn ready_event(service: &str) -> PlotEvent {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse(service).unwrap());
    let state = JobState::queued(JobId::new_random(), spec, 1_000);
    PlotEvent::for_job(&state, EventKind::PlotReady, 2_000)
}

/// Reads the SSE body until `want` events arrived or the deadline passed; returns the
/// `data:` payloads' services.
async fn read_services(response: axum::response::Response, want: usize) -> Vec<String> {
    let mut body = response.into_body();
    let mut text = String::new();
    let mut services = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while services.len() < want {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        if let Some(data) = frame.data_ref() {
            text.push_str(&String::from_utf8_lossy(data));
        }
        services = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["service"].as_str().map(str::to_owned))
            .collect();
    }
    services
}

/// Reads the SSE body until `want` events with an `id:` arrived or the deadline passed;
/// returns each one's `(id, service)`.
async fn read_ids(body: &mut Body, text: &mut String, want: usize) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events: Vec<(String, String)> = text
            .split("\n\n")
            .filter_map(|block| {
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(str::to_owned))
                };
                let data: Value = serde_json::from_str(&field("data: ")?).ok()?;
                Some((field("id: ")?, data["service"].as_str()?.to_owned()))
            })
            .collect();
        if events.len() >= want {
            return events;
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(data));
                }
            }
            _ => return events,
        }
    }
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_once_then_live_events() {
    let f = fixture(LimitsConfig::default(), NotifierConfig::default());
    hub_tailing(&f.hub).await;
    let mut ids = Vec::new();
    for service in ["s1", "s2", "s3"] {
        ids.push(f.bus.publish(&ready_event(service)).await.unwrap());
    }
    // The client saw s1 (its `id:` is the bus's `EventId`) and reconnects.
    let request = Request::builder()
        .uri("/api/v1/events")
        .header("authorization", format!("Bearer {}", f.reader))
        .header("last-event-id", ids[0].to_string())
        .body(Body::empty())
        .unwrap();
    let response = f.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (mut body, mut text) = (response.into_body(), String::new());
    assert_eq!(read_ids(&mut body, &mut text, 2).await.len(), 2);
    ids.push(f.bus.publish(&ready_event("s4")).await.unwrap());
    let got = read_ids(&mut body, &mut text, 3).await;
    // Replayed s2 and s3, then live s4; the hub's relay of s2 and s3 is not repeated.
    let want: Vec<(String, String)> = ids[1..]
        .iter()
        .zip(["s2", "s3", "s4"])
        .map(|(id, s)| (id.to_string(), s.to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn events_need_a_read_credential() {
    let f = fixture(LimitsConfig::default(), NotifierConfig::default());
    for token in [None, Some("pq_wrong")] {
        let (status, body) = problem(subscribe(&f.router, "/api/v1/events", token).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    let (status, body) =
        problem(subscribe(&f.router, "/api/v1/events", Some(&f.ingest)).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let ok = subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    assert!(
        !ok.headers().contains_key("access-control-allow-origin"),
        "no CORS unless origins are configured"
    );
}

#[tokio::test]
async fn a_tenant_receives_only_its_services_events_and_tickets_work() {
    let f = fixture(LimitsConfig::default(), NotifierConfig::default());
    let principal = f
        .auth
        .authenticate(
            &{
                let mut h = axum::http::HeaderMap::new();
                h.insert(
                    "authorization",
                    format!("Bearer {}", f.tenant).parse().unwrap(),
                );
                h
            },
            &axum::http::Method::POST,
            None,
            None,
            0,
        )
        .unwrap();
    let (ticket, _) = f
        .auth
        .issue_ticket(&principal, plotq_ports::clock::now_ms())
        .unwrap();
    let tenant = subscribe(&f.router, &format!("/api/v1/events?ticket={ticket}"), None).await;
    assert_eq!(tenant.status(), StatusCode::OK);
    let everyone = subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await;
    hub_tailing(&f.hub).await;
    for service in ["payments", "team-a-api", "search", "team-a-web"] {
        f.bus.publish(&ready_event(service)).await.unwrap();
    }
    let all = read_services(everyone, 4).await;
    assert_eq!(all, ["payments", "team-a-api", "search", "team-a-web"]);
    let own = read_services(tenant, 2).await;
    assert_eq!(
        own,
        ["team-a-api", "team-a-web"],
        "never another tenant's events"
    );
    // Asking for another tenant's service or views is refused outright.
    for uri in [
        "/api/v1/events?service=payments",
        "/api/v1/events?views=payments/histogram/15m/light/800x450",
    ] {
        let (status, _) = problem(subscribe(&f.router, uri, Some(&f.tenant)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
}

#[tokio::test]
async fn bad_parameters_are_422_problems() {
    let f = fixture(LimitsConfig::default(), NotifierConfig::default());
    let too_many: Vec<String> = (0..33)
        .map(|i| format!("s{i}/histogram/15m/light/800x450"))
        .collect();
    for uri in [
        "/api/v1/events?views=not-a-view".to_owned(),
        format!("/api/v1/events?views={}", too_many.join(",")),
    ] {
        let (status, body) = problem(subscribe(&f.router, &uri, Some(&f.reader)).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
        );
    }
    let request = Request::builder()
        .uri("/api/v1/events")
        .header("authorization", format!("Bearer {}", f.reader))
        .header("last-event-id", "garbage")
        .body(Body::empty())
        .unwrap();
    let (status, body) = problem(f.router.clone().oneshot(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "Last-Event-ID");
}

#[tokio::test]
async fn streams_per_caller_and_live_views_are_limited() {
    let f = fixture(
        LimitsConfig {
            sse_connections_per_caller: 2,
            ..LimitsConfig::default()
        },
        NotifierConfig {
            max_watched_views: 3,
            ..NotifierConfig::default()
        },
    );
    let a = subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await;
    let b = subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await;
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let (status, body) =
        problem(subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_connections"))
    );
    // Another caller has its own allowance; a closed stream frees its slot.
    let c = subscribe(
        &f.router,
        "/api/v1/events?views=team-a-x/histogram/15m/light/800x450,team-a-x/cdf/15m/light/800x450",
        Some(&f.tenant),
    )
    .await;
    assert_eq!(c.status(), StatusCode::OK);
    drop(a);
    let d = subscribe(
        &f.router,
        "/api/v1/events?views=team-a-x/histogram/15m/light/800x450",
        Some(&f.reader),
    )
    .await;
    assert_eq!(
        d.status(),
        StatusCode::OK,
        "watching an already-live view adds nothing"
    );
    let (status, _) = problem(
        subscribe(
            &f.router,
            "/api/v1/events?views=a/histogram/15m/light/800x450,b/histogram/15m/light/800x450",
            Some(&f.tenant),
        )
        .await,
    )
    .await;
    // The tenant may not watch a/b at all: 403 comes before the view limit.
    assert_eq!(status, StatusCode::FORBIDDEN);
    drop(b);
    let (status, body) = problem(
        subscribe(
            &f.router,
            "/api/v1/events?views=a/histogram/15m/light/800x450,b/histogram/15m/light/800x450",
            Some(&f.reader),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "2 live + 2 new > 3");
    assert!(body["detail"].as_str().unwrap().contains("views"));
    drop((c, d));
}

/// Reads the SSE body until an event named `name` arrived, or the stream ended or the
/// deadline passed; returns its `data:` and whether the stream ended right after it.
async fn read_until_event(response: axum::response::Response, name: &str) -> Option<(Value, bool)> {
    let mut body = response.into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let marker = format!("event: {name}\n");
    loop {
        if let Some(at) = text.find(&marker) {
            let block = text[at..].split("\n\n").next().unwrap_or("");
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())?;
            // Past the event, the stream must end (no more frames).
            let ended = matches!(
                tokio::time::timeout(Duration::from_secs(5), body.frame()).await,
                Ok(None)
            );
            return Some((data, ended));
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    text.push_str(&String::from_utf8_lossy(data));
                }
            }
            _ => return None,
        }
    }
}

fn views_of(services: &[&str]) -> String {
    services
        .iter()
        .map(|s| format!("{s}/histogram/15m/light/800x450"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn views_never_rendered_cost_the_callers_plot_budget() {
    let f = fixture(
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 4,
            ..LimitsConfig::default()
        },
        NotifierConfig::default(),
    );
    // Eight views nobody ever rendered: eight renders, over the burst of four. Refused
    // before the stream starts, with nothing watched.
    let eight: Vec<String> = (0..8).map(|i| format!("new{i}")).collect();
    let eight: Vec<&str> = eight.iter().map(String::as_str).collect();
    let (status, body) = problem(
        subscribe(
            &f.router,
            &format!("/api/v1/events?views={}", views_of(&eight)),
            Some(&f.reader),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(
        body["detail"].as_str().unwrap().contains("never rendered"),
        "{body}"
    );
    assert!(f.hub.watched_views().is_empty(), "nothing was watched");
    // Three fit (three renders charged), and the stream opens.
    let three = subscribe(
        &f.router,
        &format!("/api/v1/events?views={}", views_of(&["a", "b", "c"])),
        Some(&f.reader),
    )
    .await;
    assert_eq!(three.status(), StatusCode::OK);
    // Two more do not (one render left) …
    let (status, _) = problem(
        subscribe(
            &f.router,
            &format!("/api/v1/events?views={}", views_of(&["d", "e"])),
            Some(&f.reader),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // … but views already live here, or rendered before, cost nothing.
    for service in ["x", "y", "z", "w"] {
        let key = format!("{service}/histogram/15m/light/800x450");
        let state = plotq_domain::ViewState {
            job_id: JobId::new_random(),
            status: plotq_domain::JobStatus::Done,
            requested_ms: 1_000,
            last_ready: None,
            error: None,
        };
        plotq_ports::ViewRegistry::set_view_state(f.views.as_ref(), &key, &state)
            .await
            .unwrap();
    }
    let free = subscribe(
        &f.router,
        &format!(
            "/api/v1/events?views={}",
            views_of(&["a", "b", "c", "x", "y", "z", "w"])
        ),
        Some(&f.reader),
    )
    .await;
    assert_eq!(free.status(), StatusCode::OK);
    // Another caller has its own budget.
    let other = subscribe(
        &f.router,
        &format!(
            "/api/v1/events?views={}",
            views_of(&["team-a-1", "team-a-2", "team-a-3", "team-a-4"])
        ),
        Some(&f.tenant),
    )
    .await;
    assert_eq!(other.status(), StatusCode::OK);
    drop((three, free, other));
}

#[tokio::test]
async fn a_caller_keeps_a_bounded_number_of_views_live() {
    let f = fixture(
        LimitsConfig {
            views_per_caller: 4,
            ..LimitsConfig::default()
        },
        NotifierConfig::default(),
    );
    let a = subscribe(
        &f.router,
        &format!("/api/v1/events?views={}", views_of(&["a", "b", "c"])),
        Some(&f.reader),
    )
    .await;
    assert_eq!(a.status(), StatusCode::OK);
    let same = subscribe(
        &f.router,
        &format!("/api/v1/events?views={}", views_of(&["a", "b", "c", "d"])),
        Some(&f.reader),
    )
    .await;
    assert_eq!(same.status(), StatusCode::OK, "four distinct views in all");
    let (status, body) = problem(
        subscribe(
            &f.router,
            &format!("/api/v1/events?views={}", views_of(&["e"])),
            Some(&f.reader),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_connections"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_VIEWS_PER_CALLER"),
        "{body}"
    );
    drop((a, same));
    let again = subscribe(
        &f.router,
        &format!("/api/v1/events?views={}", views_of(&["e"])),
        Some(&f.reader),
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "closed streams give their views back"
    );
}

#[tokio::test]
async fn a_stream_ends_when_its_ticket_expires_saying_why() {
    let f = fixture(LimitsConfig::default(), NotifierConfig::default());
    let principal = f
        .auth
        .authenticate(&bearer(&f.reader), &axum::http::Method::POST, None, None, 0)
        .unwrap();
    // Issued long enough ago that it has 300 ms left (tickets live 300 s here).
    let now = plotq_ports::clock::now_ms();
    let (ticket, expires) = f.auth.issue_ticket(&principal, now - 299_700).unwrap();
    assert!(expires > now);
    let stream = subscribe(&f.router, &format!("/api/v1/events?ticket={ticket}"), None).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let (data, ended) = read_until_event(stream, "stream.closed")
        .await
        .expect("the stream says it closes");
    assert_eq!(data["reason"], "credential_expired");
    assert!(ended, "and then ends");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_is_revoked_or_loses_the_service() {
    let f = fixture(
        LimitsConfig::default(),
        NotifierConfig {
            credential_recheck: Duration::from_millis(50),
            ..NotifierConfig::default()
        },
    );
    let reader = subscribe(&f.router, "/api/v1/events", Some(&f.reader)).await;
    let tenant = subscribe(
        &f.router,
        "/api/v1/events?service=team-a-api",
        Some(&f.tenant),
    )
    .await;
    let untouched = subscribe(
        &f.router,
        "/api/v1/events?service=team-a-web",
        Some(&f.tenant),
    )
    .await;
    assert!(
        [&reader, &tenant, &untouched]
            .iter()
            .all(|r| r.status() == StatusCode::OK)
    );
    // The reader's token is removed; the tenant's narrowed to team-a-web.
    f.auth
        .replace_tokens(
            parse_tokens(&format!(
                "{} scopes=read services=team-a-web name=tenant\n{} scopes=ingest name=ingest",
                hash_token(&f.tenant),
                hash_token(&f.ingest)
            ))
            .unwrap(),
        )
        .unwrap();
    for stream in [reader, tenant] {
        let (data, ended) = read_until_event(stream, "stream.closed")
            .await
            .expect("the stream says it closes");
        assert_eq!(data["reason"], "credential_revoked");
        assert!(ended);
    }
    // A stream whose services the token still has goes on.
    hub_tailing(&f.hub).await;
    f.bus.publish(&ready_event("team-a-web")).await.unwrap();
    assert_eq!(read_services(untouched, 1).await, ["team-a-web"]);
}

fn bearer(token: &str) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}
