//! The notifier: Server-Sent Events for browsers.
//!
//! One `Hub` per process tails the shared event bus (a single reader, however many
//! clients) and broadcasts in memory to its SSE connections; every replica tails the
//! same bus, so every replica sees every event. A client reconnecting with
//! `Last-Event-ID` first gets the history it missed from the bus, then live events, with
//! no gap and no duplicate (live events at or before the last replayed id are skipped).
//!
//! A connection may name dashboard views (`?views=checkout/histogram/15m/light/800x450,…`):
//! it then receives only those views' events, starting with each view's current state,
//! and while it stays connected the views are leased as watched in the shared
//! `ViewRegistry`, which is what makes the refresher (`refresh.rs`) re-render them.
//!
//! Each job's final event (`plot.ready` or `plot.failed`) reaches clients once: a job
//! redelivered after a worker crash may be announced again on the bus, and every replica
//! drops such repeats (it remembers the last `ANNOUNCED_MEMORY` finished job ids).
//!
//! Callers need the `read` scope (a bearer token, or a read ticket in `?ticket=` since
//! `EventSource` cannot send headers); a caller limited to some services receives only
//! their events and may watch only their views. Each caller holds at most
//! `sse_connections_per_caller` streams, and a process leases at most
//! `max_watched_views` distinct views (`429` beyond either).
//!
//! This crate holds no job state and renders nothing.

pub mod openapi;
pub mod refresh;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures::{Stream, StreamExt};
use plotq_domain::wire::{EventId, EventKind};
use plotq_domain::{JobId, View, view::MAX_VIEWS_PER_CONNECTION};
use plotq_http::{Caller, Limits, Problem, ProblemCode, Scope};
use plotq_ports::clock::now_ms;
use plotq_ports::{Backoff, EventBus, StoredEvent, ViewRegistry};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;

/// Settings of the SSE endpoint.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Interval of `:` keep-alive comments (below common proxy idle timeouts).
    pub keep_alive: Duration,
    /// Most events replayed to one reconnecting client.
    pub max_replay: usize,
    /// Events buffered per slow client before it skips ahead.
    pub client_buffer: usize,
    /// How long a view stays watched without renewal (survives a crashed replica).
    pub view_lease: Duration,
    /// How often this process renews the leases of its clients' views.
    pub lease_renewal: Duration,
    /// Most distinct views this process's clients may watch at once.
    pub max_watched_views: usize,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(10),
            max_replay: 1000,
            client_buffer: 1024,
            view_lease: Duration::from_secs(30),
            lease_renewal: Duration::from_secs(10),
            max_watched_views: 10_000,
        }
    }
}

/// The per-process fan-out point.
pub struct Hub {
    bus: Arc<dyn EventBus>,
    registry: Arc<dyn ViewRegistry>,
    /// Views watched by this process's clients, with how many clients watch each.
    watching: Mutex<HashMap<String, usize>>,
    sender: broadcast::Sender<Arc<StoredEvent>>,
    config: NotifierConfig,
    /// False while the tail loop cannot read the bus (reported by `/readyz`).
    tailing: AtomicBool,
    /// Ends every SSE stream when the process shuts down, so graceful shutdown completes.
    shutdown: CancellationToken,
    /// Jobs whose final event was already relayed (duplicates from redelivery are dropped).
    announced: Mutex<Announced>,
}

/// How many finished job ids a hub remembers for de-duplication.
pub const ANNOUNCED_MEMORY: usize = 100_000;

/// A bounded set of job ids, oldest evicted first.
#[derive(Default)]
struct Announced {
    ids: HashSet<JobId>,
    order: std::collections::VecDeque<JobId>,
}

impl Announced {
    /// True the first time `id` is seen.
    fn first(&mut self, id: JobId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > ANNOUNCED_MEMORY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

fn is_final(kind: EventKind) -> bool {
    matches!(kind, EventKind::PlotReady | EventKind::PlotFailed)
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.sender.receiver_count())
            .finish()
    }
}

impl Hub {
    pub fn new(
        bus: Arc<dyn EventBus>,
        registry: Arc<dyn ViewRegistry>,
        config: NotifierConfig,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (sender, _) = broadcast::channel(config.client_buffer.max(16));
        Arc::new(Self {
            bus,
            registry,
            watching: Mutex::new(HashMap::new()),
            sender,
            config,
            tailing: AtomicBool::new(false),
            shutdown,
            announced: Mutex::new(Announced::default()),
        })
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Whether the tail loop is currently reading the bus.
    pub fn is_tailing(&self) -> bool {
        self.tailing.load(Ordering::Relaxed)
    }

    /// Connected SSE clients in this process.
    pub fn clients(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Views watched by this process's clients right now.
    pub fn watched_views(&self) -> Vec<String> {
        let watching = self.watching.lock().expect("watching lock");
        let mut views: Vec<String> = watching.keys().cloned().collect();
        views.sort();
        views
    }

    fn lease_until(&self) -> i64 {
        now_ms() + self.config.view_lease.as_millis() as i64
    }

    /// Registers a client's views; the guard unregisters them when the client goes.
    /// `429` when they would take this process past `max_watched_views`.
    fn watch(self: &Arc<Self>, views: &[String]) -> Result<WatchGuard, Problem> {
        let mut watching = self.watching.lock().expect("watching lock");
        let new = views.iter().filter(|v| !watching.contains_key(*v)).count();
        if watching.len() + new > self.config.max_watched_views {
            return Err(Problem::new(
                ProblemCode::TooManyConnections,
                format!(
                    "this notifier already keeps {} views live (the limit); retry later",
                    self.config.max_watched_views
                ),
            )
            .with_retry_after(10));
        }
        for v in views {
            *watching.entry(v.clone()).or_default() += 1;
        }
        Ok(WatchGuard {
            hub: self.clone(),
            views: views.to_vec(),
        })
    }

    /// Tails the bus and renews view leases until `shutdown`; survives bus outages.
    pub async fn run_until_stopped(self: Arc<Self>) {
        tokio::join!(self.clone().renew_leases(), self.tail());
        tracing::info!("event hub stopped");
    }

    async fn renew_leases(self: Arc<Self>) {
        let mut interval = tokio::time::interval(self.config.lease_renewal);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            let views = self.watched_views();
            if let Err(e) = self.registry.watch(&views, self.lease_until()).await {
                tracing::warn!(error = %e, "cannot renew view leases; retrying");
            }
        }
    }

    async fn tail(self: Arc<Self>) {
        let shutdown = self.shutdown.clone();
        let mut last: Option<EventId> = None;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            if last.is_none() {
                match self.bus.last_id().await {
                    Ok(id) => {
                        // Reading from here on: whatever is published next is relayed.
                        last = Some(id.unwrap_or(EventId::ZERO));
                        self.tailing.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.tailing.store(false, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cannot read the event bus; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(backoff.next_delay()) => {}
                        }
                        continue;
                    }
                }
            }
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.bus.read_after(last, Duration::from_secs(5), 512) => r,
            };
            match read {
                Ok(events) => {
                    self.tailing.store(true, Ordering::Relaxed);
                    backoff.reset();
                    for event in events {
                        last = Some(event.id);
                        if is_final(event.event.event)
                            && !self
                                .announced
                                .lock()
                                .expect("announced lock")
                                .first(event.event.id)
                        {
                            tracing::debug!(id = %event.event.id, "dropping a repeated final event");
                            continue;
                        }
                        if let Err(e) =
                            refresh::record_event(self.registry.as_ref(), &event.event).await
                        {
                            tracing::warn!(error = %e, "cannot record a view's state");
                        }
                        // No receivers is fine: nobody is listening right now.
                        let _ = self.sender.send(Arc::new(event));
                    }
                }
                Err(e) => {
                    self.tailing.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "event bus read failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }
}

/// Keeps a client's views counted as watched for as long as its stream lives.
struct WatchGuard {
    hub: Arc<Hub>,
    views: Vec<String>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut watching = self.hub.watching.lock().expect("watching lock");
        for v in &self.views {
            if let Some(n) = watching.get_mut(v) {
                *n -= 1;
                if *n == 0 {
                    watching.remove(v);
                }
            }
        }
    }
}

/// `GET /api/v1/events` for the given hub.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/api/v1/events", get(events))
        .with_state(hub)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this service.
    service: Option<String>,
    /// Comma-separated view keys (`checkout/histogram/15m/light/800x450`), at most 32:
    /// only their events, each view's current state first, and the views stay live.
    views: Option<String>,
    /// A read ticket (`POST /api/v1/tickets`), since `EventSource` sends no headers.
    #[allow(dead_code)] // reason: read by the authenticator from the raw query
    ticket: Option<String>,
}

/// A view's current state as an SSE event, for a client that just subscribed.
fn view_state_event(view: &str, state: &plotq_domain::ViewState) -> Event {
    let data = serde_json::json!({
        "view": view, "status": state.status.as_str(), "id": state.job_id, "error": state.error,
        "requested_ms": state.requested_ms,
    });
    Event::default().event("view.state").data(data.to_string())
}

/// An SSE event for a bus event; its `id:` is the `EventId` (`<ms>-<seq>`), which is
/// what a reconnecting client sends back as `Last-Event-ID`.
fn to_sse(event: &StoredEvent) -> Event {
    Event::default()
        .id(event.id.to_string())
        .event(event.event.event.as_str())
        .data(String::from_utf8(event.event.encode()).expect("JSON is UTF-8"))
}

/// The event stream.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        EventsQuery,
        ("last-event-id" = Option<String>, Header, nullable = false, pattern = "^[0-9]+-[0-9]+$", description = "Resume after this event id (`<ms>-<seq>`, as sent): the events missed since are replayed first"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `plot.ready`, `plot.failed` (payload `PlotEventDoc`), `plot.queued`/`plot.rendering` (views only), `view.state` (`ViewStateEventDoc`). Each has an `id:`; reconnect with `Last-Event-ID` to replay what was missed. `:` comments keep the stream alive.", content_type = "text/event-stream", body = String,
            headers(("cache-control" = String, description = "`no-cache`"), ("x-accel-buffering" = String, description = "`no` (proxies must not buffer)"))),
        (status = 401, description = "Missing or invalid credential", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Credential lacks the read scope or a service", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad query parameter (views, service) or Last-Event-ID", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many streams for this caller, or too many live views", body = plotq_http::ProblemDoc, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub async fn events(
    caller: Caller,
    State(hub): State<Arc<Hub>>,
    Extension(limits): Extension<Arc<Limits>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let Query(query) = query.map_err(|e| Problem::invalid_field("", e.body_text()))?;
    let views: Vec<String> = query
        .views
        .as_deref()
        .map(|v| {
            v.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if views.len() > MAX_VIEWS_PER_CONNECTION {
        return Err(Problem::invalid_field(
            "views",
            format!("at most {MAX_VIEWS_PER_CONNECTION} views per connection"),
        ));
    }
    for key in &views {
        let view = View::parse(key).map_err(|p| Problem::invalid_field("views", p))?;
        if !caller.may_use_service(view.service.as_str()) {
            return Err(Problem::new(
                ProblemCode::Forbidden,
                format!("this credential may not watch views of {}", view.service),
            ));
        }
    }
    if let Some(service) = &query.service
        && !caller.may_use_service(service)
    {
        return Err(Problem::new(
            ProblemCode::Forbidden,
            format!("this credential may not read events of {service}"),
        ));
    }
    let last_event_id = match last_event_id_header(&headers) {
        None => None,
        Some(raw) => Some(EventId::parse(&raw).ok_or_else(|| {
            Problem::invalid_field(
                "Last-Event-ID",
                "is not an event id this server sent (<ms>-<seq>)",
            )
        })?),
    };
    let connection = limits.open_connection(&caller.limit_key)?;
    let guard = if views.is_empty() {
        None
    } else {
        Some(hub.watch(&views)?)
    };
    // Subscribe before reading history so nothing published in between is missed.
    let live = BroadcastStream::new(hub.sender.subscribe());
    if !views.is_empty()
        && let Err(e) = hub.registry.watch(&views, hub.lease_until()).await
    {
        tracing::warn!(error = %e, "cannot lease views; the renewal loop will retry");
    }
    // What each view shows right now, so a new client is not blank until the next render.
    // These events carry the bus's current position as their id: a client reconnecting
    // with it resumes from there.
    let mut current = Vec::new();
    if last_event_id.is_none() && !views.is_empty() {
        let position = hub
            .bus
            .last_id()
            .await
            .ok()
            .flatten()
            .unwrap_or(EventId::ZERO)
            .to_string();
        for key in &views {
            match hub.registry.view_state(key).await {
                Ok(Some(state)) => {
                    if let Some(ready) = &state.last_ready {
                        current.push(Ok::<_, Infallible>(
                            Event::default()
                                .id(position.clone())
                                .event(ready.event.as_str())
                                .data(String::from_utf8(ready.encode()).expect("JSON is UTF-8")),
                        ));
                    }
                    current.push(Ok(view_state_event(key, &state).id(position.clone())));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read a view's state"),
            }
        }
    }
    let mut replay = Vec::new();
    if let Some(after) = last_event_id {
        match hub.bus.history_after(after, hub.config.max_replay).await {
            Ok(events) => replay = events,
            Err(e) => tracing::warn!(error = %e, "replay unavailable; sending live events only"),
        }
    }
    let mut high_water = replay
        .last()
        .map(|e| e.id)
        .or(last_event_id)
        .unwrap_or(EventId::ZERO);
    let filter = query.service.clone();
    let view_set: HashSet<String> = views.iter().cloned().collect();
    let principal = caller.0.clone();
    let keep = move |e: &StoredEvent| {
        // A caller limited to some services never sees another's events.
        if !e
            .event
            .services
            .iter()
            .all(|s| principal.may_use_service(s))
            || !principal.may_use_service(&e.event.service)
        {
            return false;
        }
        if !view_set.is_empty() {
            return e.event.view.as_ref().is_some_and(|v| view_set.contains(v));
        }
        filter.as_deref().is_none_or(|s| e.event.service == s)
    };
    let keep_live = keep.clone();
    // Replayed history is de-duplicated the same way (a job's final event once).
    let mut finished = HashSet::new();
    let replayed = futures::stream::iter(
        replay
            .into_iter()
            .filter(|e| !is_final(e.event.event) || finished.insert(e.event.id))
            .filter(|e| keep(e))
            .map(|e| Ok::<_, Infallible>(to_sse(&e)))
            .collect::<Vec<_>>(),
    );
    let live = live.filter_map(move |item| {
        let out = match item {
            Ok(event) => {
                if event.id <= high_water || !keep_live(&event) {
                    None
                } else {
                    high_water = event.id;
                    Some(Ok(to_sse(&event)))
                }
            }
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "slow SSE client skipped events");
                None
            }
        };
        futures::future::ready(out)
    });
    // The guard lives as long as the stream: dropping the connection unwatches its views.
    let live = live.map(move |item| {
        let _keep = (&guard, &connection);
        item
    });
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        futures::stream::iter(current)
            .chain(replayed)
            .chain(live)
            .take_until(hub.shutdown.clone().cancelled_owned()),
    );
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(hub.config.keep_alive))
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn last_event_id_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_are_announced_once() {
        let mut announced = Announced::default();
        let id = JobId::new_random();
        assert!(announced.first(id));
        assert!(!announced.first(id));
        for _ in 0..ANNOUNCED_MEMORY {
            announced.first(JobId::new_random());
        }
        assert!(
            announced.first(id),
            "memory is bounded: the oldest id was forgotten"
        );
        assert_eq!(announced.ids.len(), ANNOUNCED_MEMORY);
    }
}
