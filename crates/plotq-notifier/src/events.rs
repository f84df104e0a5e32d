//! `GET /api/v1/events`, the SSE handler, in four steps: parse and authorise the request
//! (`parse_request`), charge the caller for the views it opens (`charge_views`: a view
//! never rendered costs one render of its plot budget, and a caller keeps at most
//! `views_per_caller` views live), send each watched view's current state
//! (`current_view_states`), replay what a reconnecting client missed (`replay`), then
//! stream live events from the `Hub` (`live_events`), all filtered to what the caller may
//! see (`event_filter`).
//!
//! A stream lives only as long as its credential (`credential_lapse`): when its ticket
//! expires, or its token is removed, replaced or loses a service the stream uses, the
//! stream ends with a last event `stream.closed` saying why (`credential_expired`,
//! `credential_revoked`), which tells the page to get a new ticket.

use crate::hub::{Hub, is_final};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use plotq_domain::wire::EventId;
use plotq_domain::{View, ViewState, view::MAX_VIEWS_PER_CONNECTION};
use plotq_http::auth::{Auth, Lapsed, Principal};
use plotq_http::{Caller, Limits, Problem, ProblemCode, Scope};
use plotq_ports::StoredEvent;
use serde::Deserialize;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio_stream::wrappers::BroadcastStream;

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
    metrics::counter!("plotq_sse_events_sent_total", "event" => event.event.event.as_str())
        .increment(1);
    Event::default()
        .id(event.id.to_string())
        .event(event.event.event.as_str())
        .data(String::from_utf8(event.event.encode()).expect("JSON is UTF-8"))
}

/// The event stream.
///
/// Outages: Redis down, the stream opens without the views' current states or the
/// replay, and live events resume when Redis is back; RabbitMQ down, served, but
/// watched views are not re-rendered.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        EventsQuery,
        ("last-event-id" = Option<String>, Header, nullable = false, pattern = "^[0-9]+-[0-9]+$", description = "Resume after this event id (`<ms>-<seq>`, as sent): the events missed since are replayed first"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `plot.ready`, `plot.failed` (payload `PlotEventDoc`), `plot.queued`/`plot.rendering` (views only), `view.state` (`ViewStateEventDoc`). Each has an `id:`; reconnect with `Last-Event-ID` to replay what was missed. `:` comments keep the stream alive. When the credential lapses (the ticket expired, the token was revoked or lost a service the stream uses) the stream ends with `stream.closed` (`StreamClosedDoc`).", content_type = "text/event-stream", body = String,
            headers(("cache-control" = String, description = "`no-cache`"), ("x-accel-buffering" = String, description = "`no` (proxies must not buffer)"))),
        plotq_http::AuthProblems,
        (status = 422, description = "Bad query parameter (views, service) or Last-Event-ID", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Over a limit, before the stream starts: the views never rendered cost more renders than the caller's plot budget has left (`rate_limited`), or the caller holds too many streams or live views (`too_many_connections`)", body = plotq_http::ProblemDoc, content_type = "application/problem+json",
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = ["read"]), ("ticket" = []))
)]
pub async fn events(
    caller: Caller,
    State(hub): State<Arc<Hub>>,
    Extension(limits): Extension<Arc<Limits>>,
    Extension(auth): Extension<Arc<Auth>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let request = parse_request(&caller, query, &headers)?;
    let connection = limits.open_connection(&caller.limit_key)?;
    let states = view_states(&hub, &request.views).await;
    let guard = if request.views.is_empty() {
        None
    } else {
        let mine = charge_views(&hub, &limits, &caller, &states)?;
        Some((mine, hub.watch(&request.views)?))
    };
    // Subscribe before reading history so nothing published in between is missed.
    let live = BroadcastStream::new(hub.sender.subscribe());
    if !request.views.is_empty()
        && let Err(e) = hub.registry.watch(&request.views, hub.lease_until()).await
    {
        tracing::warn!(error = %e, "cannot lease views; the renewal loop will retry");
    }
    let current = if request.last_event_id.is_none() {
        current_view_states(&hub, states).await
    } else {
        Vec::new()
    };
    let history = history(&hub, request.last_event_id).await;
    let keep = event_filter(&caller, &request);
    let (replayed, high_water) = replay(history, request.last_event_id, &keep);
    let live = live_events(live, high_water, keep);
    // The guard lives as long as the stream: dropping the connection unwatches its views.
    let client = ClientGauge::connected();
    let live = live.map(move |item| {
        let _keep = (&guard, &connection, &client);
        item
    });
    // Until the credential lapses; then one last event says why.
    let lapsed = Arc::new(Mutex::new(None));
    let watch = {
        let lapsed = lapsed.clone();
        let uses = request.services_used();
        let check = hub.config.credential_recheck;
        async move {
            let why = credential_lapse(auth, caller.0, uses, check).await;
            *lapsed.lock().expect("lapsed lock") = Some(why);
        }
    };
    let closing = futures::stream::once(async move { lapsed.lock().expect("lapsed lock").take() })
        .filter_map(|why| futures::future::ready(why.map(|why| Ok(closed_event(why)))));
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        futures::stream::iter(current)
            .chain(futures::stream::iter(replayed))
            .chain(live)
            .take_until(watch)
            .chain(closing)
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

/// The last event of a stream whose credential lapsed.
fn closed_event(why: Lapsed) -> Event {
    metrics::counter!("plotq_sse_streams_closed_total", "reason" => why.as_str()).increment(1);
    Event::default()
        .event("stream.closed")
        .data(serde_json::json!({"reason": why.as_str()}).to_string())
}

/// Resolves when `principal`'s credential no longer holds for a stream using the services
/// `uses`: at a ticket's expiry, or at the first check (every `every`) that finds its
/// token removed, replaced or narrowed. Never, in open mode.
async fn credential_lapse(
    auth: Arc<Auth>,
    principal: Principal,
    uses: Vec<String>,
    every: std::time::Duration,
) -> Lapsed {
    let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
    let expires_ms = match &principal.credential {
        plotq_http::auth::Credential::Open => return std::future::pending().await,
        plotq_http::auth::Credential::Token { .. } => None,
        plotq_http::auth::Credential::Ticket { expires_ms, .. }
        | plotq_http::auth::Credential::Grant { expires_ms, .. } => Some(*expires_ms),
    };
    loop {
        let now = plotq_ports::clock::now_ms();
        if let Err(why) = auth.recheck(&principal, &uses, now) {
            return why;
        }
        let until_expiry = expires_ms
            .map(|e| std::time::Duration::from_millis(u64::try_from(e - now).unwrap_or(0)))
            .unwrap_or(every);
        tokio::time::sleep(every.min(until_expiry)).await;
    }
}

/// Each view's stored state (`None` when it has none, or the registry cannot be read:
/// the stream then opens without it).
async fn view_states(hub: &Hub, views: &[String]) -> Vec<(String, Option<ViewState>)> {
    let mut states = Vec::with_capacity(views.len());
    for key in views {
        let state = match hub.registry.view_state(key).await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a view's state");
                None
            }
        };
        states.push((key.clone(), state));
    }
    states
}

/// Step 1b: what opening these views costs the caller. A view that was never rendered
/// and nobody here watches yet makes the refresher queue its first render: each costs
/// one render of the caller's plot budget (all or none; `429` before the stream starts
/// when they do not fit). The views count toward the caller's `views_per_caller`.
fn charge_views(
    hub: &Hub,
    limits: &Arc<Limits>,
    caller: &Caller,
    states: &[(String, Option<ViewState>)],
) -> Result<plotq_http::ViewsGuard, Problem> {
    let keys: Vec<String> = states.iter().map(|(k, _)| k.clone()).collect();
    let mine = limits.watch_views(&caller.limit_key, &keys)?;
    let watched = hub.watched_views();
    let unrendered = states
        .iter()
        .filter(|(key, state)| state.is_none() && watched.binary_search(key).is_err())
        .count();
    limits
        .check_plots(&caller.limit_key, unrendered)
        .map_err(|p| {
            let detail = format!(
                "{unrendered} of these views were never rendered, and their first renders are charged to this caller: {}",
                p.detail
            );
            Problem { detail, ..p }
        })?;
    if unrendered > 0 {
        metrics::counter!("plotq_view_renders_charged_total").increment(unrendered as u64);
    }
    Ok(mine)
}

/// Counts a connected SSE client in `plotq_sse_clients` for as long as its stream lives.
struct ClientGauge;

impl ClientGauge {
    fn connected() -> Self {
        metrics::gauge!("plotq_sse_clients").increment(1.0);
        metrics::counter!("plotq_sse_connections_total").increment(1);
        Self
    }
}

impl Drop for ClientGauge {
    fn drop(&mut self) {
        metrics::gauge!("plotq_sse_clients").decrement(1.0);
    }
}

/// A parsed and authorised request for the event stream.
struct EventsRequest {
    /// The views the client watches (empty when it watches none).
    views: Vec<String>,
    /// The services of those views.
    view_services: Vec<String>,
    /// Only events of this service.
    service: Option<String>,
    /// Where a reconnecting client left off.
    last_event_id: Option<EventId>,
}

impl EventsRequest {
    /// The services this stream reads (its views' and its `service` filter).
    fn services_used(&self) -> Vec<String> {
        let mut uses = self.view_services.clone();
        uses.extend(self.service.clone());
        uses.sort();
        uses.dedup();
        uses
    }
}

/// Step 1: the caller needs the `read` scope; the query and `Last-Event-ID` must parse
/// (`422`), and every view and the service must be the caller's (`403`).
fn parse_request(
    caller: &Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<EventsRequest, Problem> {
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
    let mut view_services = Vec::new();
    for key in &views {
        let view = View::parse(key).map_err(|p| Problem::invalid_field("views", p))?;
        view_services.extend(view.services.iter().map(|s| s.to_string()));
        if let Some(service) = view
            .services
            .iter()
            .find(|s| !caller.may_use_service(s.as_str()))
        {
            return Err(Problem::new(
                ProblemCode::Forbidden,
                format!("this credential may not watch views of {service}"),
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
    let last_event_id = match last_event_id_header(headers) {
        None => None,
        Some(raw) => Some(EventId::parse(&raw).ok_or_else(|| {
            Problem::invalid_field(
                "Last-Event-ID",
                "is not an event id this server sent (<ms>-<seq>)",
            )
        })?),
    };
    Ok(EventsRequest {
        views,
        view_services,
        service: query.service,
        last_event_id,
    })
}

/// Step 2, for a new client watching views: what each view shows right now, so it is not
/// blank until the next render. These events carry the bus's current position as their
/// id: a client reconnecting with it resumes from there.
async fn current_view_states(
    hub: &Hub,
    states: Vec<(String, Option<ViewState>)>,
) -> Vec<Result<Event, Infallible>> {
    let mut current = Vec::new();
    if states.iter().all(|(_, state)| state.is_none()) {
        return current;
    }
    let position = hub
        .bus
        .last_id()
        .await
        .ok()
        .flatten()
        .unwrap_or(EventId::ZERO)
        .to_string();
    for (key, state) in states {
        let Some(state) = state else { continue };
        if let Some(ready) = &state.last_ready {
            current.push(Ok::<_, Infallible>(
                Event::default()
                    .id(position.clone())
                    .event(ready.event.as_str())
                    .data(String::from_utf8(ready.encode()).expect("JSON is UTF-8")),
            ));
        }
        current.push(Ok(view_state_event(&key, &state).id(position.clone())));
    }
    current
}

/// Step 3, reading: the bus history after `Last-Event-ID` (at most `max_replay` events);
/// none without one, or when the bus cannot be read.
async fn history(hub: &Hub, last_event_id: Option<EventId>) -> Vec<StoredEvent> {
    let mut replay = Vec::new();
    if let Some(after) = last_event_id {
        match hub.bus.history_after(after, hub.config.max_replay).await {
            Ok(events) => replay = events,
            Err(e) => tracing::warn!(error = %e, "replay unavailable; sending live events only"),
        }
    }
    replay
}

/// Which bus events this client receives: never another service's events for a caller
/// limited to some services; then only its views' events when it watches views, else
/// only the `service` it named, if any.
fn event_filter(
    caller: &Caller,
    request: &EventsRequest,
) -> impl Fn(&StoredEvent) -> bool + Clone + Send + 'static {
    let filter = request.service.clone();
    let view_set: HashSet<String> = request.views.iter().cloned().collect();
    let principal = caller.0.clone();
    move |e: &StoredEvent| {
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
    }
}

/// Step 3, replaying: the history as SSE events, each job's final event once and only
/// what `keep` passes, and the id live events must pass (the last event of the history,
/// else `Last-Event-ID`, else zero).
fn replay(
    history: Vec<StoredEvent>,
    last_event_id: Option<EventId>,
    keep: &impl Fn(&StoredEvent) -> bool,
) -> (Vec<Result<Event, Infallible>>, EventId) {
    let high_water = history
        .last()
        .map(|e| e.id)
        .or(last_event_id)
        .unwrap_or(EventId::ZERO);
    // Replayed history is de-duplicated the same way (a job's final event once).
    let mut finished = HashSet::new();
    let replayed = history
        .into_iter()
        .filter(|e| !is_final(e.event.event) || finished.insert(e.event.id))
        .filter(|e| keep(e))
        .map(|e| Ok::<_, Infallible>(to_sse(&e)))
        .collect::<Vec<_>>();
    (replayed, high_water)
}

/// Step 4: the hub's live events after `high_water` that `keep` passes, skipping what
/// was already sent; a slow client that lags skips ahead.
fn live_events(
    live: BroadcastStream<Arc<StoredEvent>>,
    mut high_water: EventId,
    keep: impl Fn(&StoredEvent) -> bool + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    live.filter_map(move |item| {
        let out = match item {
            Ok(event) => {
                if event.id <= high_water || !keep(&event) {
                    None
                } else {
                    high_water = event.id;
                    Some(Ok(to_sse(&event)))
                }
            }
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                metrics::counter!("plotq_sse_events_skipped_total").increment(n);
                tracing::warn!(skipped = n, "slow SSE client skipped events");
                None
            }
        };
        futures::future::ready(out)
    })
}

fn last_event_id_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
