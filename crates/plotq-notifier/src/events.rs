//! `GET /api/v1/events`, the SSE handler, in four steps: parse and authorise the request
//! (`parse_request`), send each watched view's current state (`current_view_states`),
//! replay what a reconnecting client missed (`replay`), then stream live events from the
//! `Hub` (`live_events`), all filtered to what the caller may see (`event_filter`).

use crate::{Hub, is_final};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use plotq_domain::wire::EventId;
use plotq_domain::{View, view::MAX_VIEWS_PER_CONNECTION};
use plotq_http::{Caller, Limits, Problem, ProblemCode, Scope};
use plotq_ports::StoredEvent;
use serde::Deserialize;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
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
        (status = 200, description = "Server-Sent Events: `plot.ready`, `plot.failed` (payload `PlotEventDoc`), `plot.queued`/`plot.rendering` (views only), `view.state` (`ViewStateEventDoc`). Each has an `id:`; reconnect with `Last-Event-ID` to replay what was missed. `:` comments keep the stream alive.", content_type = "text/event-stream", body = String,
            headers(("cache-control" = String, description = "`no-cache`"), ("x-accel-buffering" = String, description = "`no` (proxies must not buffer)"))),
        plotq_http::AuthProblems,
        (status = 422, description = "Bad query parameter (views, service) or Last-Event-ID", body = plotq_http::ProblemDoc, content_type = "application/problem+json"),
        plotq_http::RateLimited,
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
    let request = parse_request(&caller, query, &headers)?;
    let connection = limits.open_connection(&caller.limit_key)?;
    let guard = if request.views.is_empty() {
        None
    } else {
        Some(hub.watch(&request.views)?)
    };
    // Subscribe before reading history so nothing published in between is missed.
    let live = BroadcastStream::new(hub.sender.subscribe());
    if !request.views.is_empty()
        && let Err(e) = hub.registry.watch(&request.views, hub.lease_until()).await
    {
        tracing::warn!(error = %e, "cannot lease views; the renewal loop will retry");
    }
    let current = if request.last_event_id.is_none() && !request.views.is_empty() {
        current_view_states(&hub, &request.views).await
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
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        futures::stream::iter(current)
            .chain(futures::stream::iter(replayed))
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
    /// Only events of this service.
    service: Option<String>,
    /// Where a reconnecting client left off.
    last_event_id: Option<EventId>,
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
    for key in &views {
        let view = View::parse(key).map_err(|p| Problem::invalid_field("views", p))?;
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
        service: query.service,
        last_event_id,
    })
}

/// Step 2, for a new client watching views: what each view shows right now, so it is not
/// blank until the next render. These events carry the bus's current position as their
/// id: a client reconnecting with it resumes from there.
async fn current_view_states(hub: &Hub, views: &[String]) -> Vec<Result<Event, Infallible>> {
    let mut current = Vec::new();
    let position = hub
        .bus
        .last_id()
        .await
        .ok()
        .flatten()
        .unwrap_or(EventId::ZERO)
        .to_string();
    for key in views {
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
