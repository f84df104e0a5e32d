//! `GET /api/v1/events`, the SSE handler, in four steps: parse and authorise the request
//! (`parse_request`), charge the caller for the views it opens (`charge_views`: a view
//! never rendered costs one render of its plot budget, and a caller keeps at most
//! `views_per_caller` views live), send each watched view's current state
//! (`current_view_states`), replay what a reconnecting client missed (`replay`), then
//! stream live events from the `Hub` (the body, `stream::EventBody`), all filtered to what
//! the caller may see (`event_filter`).
//!
//! A stream lives only as long as its credential (`stream::CredentialCheck`): when its
//! ticket expires, or its token is removed, replaced or loses a service the stream uses,
//! the stream ends with a last event `stream.closed` saying why (`credential_expired`,
//! `credential_revoked`), which tells the page to get a new ticket.

use crate::hub::{Hub, is_final};
use crate::stream::{CredentialCheck, EventBody, EventFilter, Live, event_frame, frame};
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::wire::EventId;
use plotq_domain::{View, ViewState, view::MAX_VIEWS_PER_CONNECTION};
use plotq_http::auth::Auth;
use plotq_http::{Caller, Limits, Problem, ProblemCode, Scope};
use plotq_ports::StoredEvent;
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
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

/// A view's current state as an SSE event, for a client that just subscribed; `id` is
/// the bus's position when it was read.
fn view_state_frame(id: &str, view: &str, state: &plotq_domain::ViewState) -> Bytes {
    let data = serde_json::json!({
        "view": view, "status": state.status.as_str(), "id": state.job_id, "error": state.error,
        "requested_ms": state.requested_ms,
    });
    frame(Some(id), "view.state", &data.to_string())
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
    let mut queued = if request.last_event_id.is_none() {
        current_view_states(&hub, states).await
    } else {
        VecDeque::new()
    };
    let history = history(&hub, request.last_event_id).await;
    let check = CredentialCheck {
        auth,
        uses: request.services_used(),
        every: hub.config.credential_recheck,
    };
    let last_event_id = request.last_event_id;
    let filter = event_filter(caller.0, request);
    let high_water = replay(history, last_event_id, &filter, &mut queued);
    // The guards live as long as the stream: dropping the connection unwatches its views.
    let lives = (guard, connection, ClientGauge::connected());
    let live = Live {
        relays: live,
        after: high_water,
        closing: hub.closing.clone(),
    };
    let body = EventBody::new(live, hub.config.keep_alive, queued, filter, check, lives);
    let mut response = (StatusCode::OK, Body::new(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
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
) -> VecDeque<Bytes> {
    let mut current = VecDeque::new();
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
            let data = String::from_utf8(ready.encode()).expect("JSON is UTF-8");
            current.push_back(frame(Some(&position), ready.event.as_str(), &data));
        }
        current.push_back(view_state_frame(&position, &key, &state));
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

/// Which bus events this client receives (`EventFilter`): its own credential's, then its
/// views' or its `service`'s.
fn event_filter(principal: plotq_http::auth::Principal, request: EventsRequest) -> EventFilter {
    EventFilter {
        principal,
        views: request.views.into_iter().collect(),
        service: request.service,
    }
}

/// Step 3, replaying: the history's events that `filter` keeps, each job's final event
/// once, queued as SSE events; returns the id live events must pass (the last event of
/// the history, else `Last-Event-ID`, else zero).
fn replay(
    history: Vec<StoredEvent>,
    last_event_id: Option<EventId>,
    filter: &EventFilter,
    queued: &mut VecDeque<Bytes>,
) -> EventId {
    let high_water = history
        .last()
        .map(|e| e.id)
        .or(last_event_id)
        .unwrap_or(EventId::ZERO);
    // Replayed history is de-duplicated the same way (a job's final event once).
    let mut finished = HashSet::new();
    for e in history
        .iter()
        .filter(|e| !is_final(e.event.event) || finished.insert(e.event.id))
        .filter(|e| filter.keeps(e))
    {
        metrics::counter!("plotq_sse_events_sent_total", "event" => e.event.event.as_str())
            .increment(1);
        queued.push_back(event_frame(e));
    }
    high_water
}

fn last_event_id_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
