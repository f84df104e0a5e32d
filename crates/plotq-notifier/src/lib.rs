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
//! Each job's final event reaches clients once per kind (`plot.ready` once, `plot.failed`
//! once): a job redelivered after a worker crash may be announced again on the bus, and
//! every replica drops such repeats (it remembers the last `ANNOUNCED_MEMORY` ones); a
//! job that failed and was replayed from the dead-letter queue is announced ready.
//!
//! Callers need the `read` scope (a bearer token, or a read ticket in `?ticket=` since
//! `EventSource` cannot send headers); a caller limited to some services receives only
//! their events and may watch only their views. Each caller holds at most
//! `sse_connections_per_caller` streams and `views_per_caller` live views, a view never
//! rendered costs one render of the caller's plot budget when its stream opens, and a
//! process leases at most `max_watched_views` distinct views (`429` beyond any of them).
//! A stream ends, with a last `stream.closed` event, when its credential lapses.
//!
//! `hub.rs` is the `Hub`, `events.rs` the SSE handler, `stream.rs` a stream's body (each
//! event encoded once for every stream), `refresh.rs` the refresher,
//! `openapi.rs` the endpoint's documentation. This crate holds no job state and renders
//! nothing.

mod events;
mod hub;
pub mod openapi;
pub mod refresh;
mod stream;

pub use events::{EventsQuery, events};
pub use hub::{ANNOUNCED_MEMORY, Hub, NotifierConfig};

use axum::Router;
use std::sync::Arc;

/// `GET /api/v1/events` with its entry in the OpenAPI document.
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<Hub>> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(crate::events::events))
}

/// `GET /api/v1/events` for the given hub.
pub fn router(hub: Arc<Hub>) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes.with_state(hub)
}
