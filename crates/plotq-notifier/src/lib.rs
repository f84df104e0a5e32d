//! The notifier: Server-Sent Events for browsers.
//!
//! One `Hub` per process tails the shared event bus (a single reader, however many
//! clients) and broadcasts in memory to its SSE connections; every replica tails the
//! same bus, so every replica sees every event. A client reconnecting with
//! `Last-Event-ID` first gets the history it missed from the bus, then live events, with
//! no gap and no duplicate (live events at or before the last replayed id are skipped).
//!
//! This crate holds no job state and renders nothing.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use plotq_ports::{EventBus, StoredEvent};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
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
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(10),
            max_replay: 1000,
            client_buffer: 1024,
        }
    }
}

/// The per-process fan-out point.
pub struct Hub {
    bus: Arc<dyn EventBus>,
    sender: broadcast::Sender<Arc<StoredEvent>>,
    config: NotifierConfig,
    /// False while the tail loop cannot read the bus (reported by `/readyz`).
    tailing: AtomicBool,
    /// Ends every SSE stream when the process shuts down, so graceful shutdown completes.
    shutdown: CancellationToken,
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
        config: NotifierConfig,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (sender, _) = broadcast::channel(config.client_buffer.max(16));
        Arc::new(Self {
            bus,
            sender,
            config,
            tailing: AtomicBool::new(false),
            shutdown,
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

    /// Tails the bus until `shutdown`, broadcasting every event; survives bus outages.
    pub async fn run_until_stopped(self: Arc<Self>) {
        let shutdown = self.shutdown.clone();
        let mut last: Option<String> = None;
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            if last.is_none() {
                match self.bus.last_id().await {
                    Ok(id) => last = Some(id.unwrap_or_else(|| "0-0".to_owned())),
                    Err(e) => {
                        self.tailing.store(false, Ordering::Relaxed);
                        tracing::warn!(error = %e, "cannot read the event bus; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.bus.read_after(last.as_deref(), Duration::from_secs(5), 512) => r,
            };
            match read {
                Ok(events) => {
                    self.tailing.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(200);
                    for event in events {
                        last = Some(event.id.clone());
                        // No receivers is fine: nobody is listening right now.
                        let _ = self.sender.send(Arc::new(event));
                    }
                }
                Err(e) => {
                    self.tailing.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "event bus read failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!("event hub stopped");
    }
}

/// `GET /api/v1/events` for the given hub.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/api/v1/events", get(events))
        .with_state(hub)
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    service: Option<String>,
}

/// Stream ids are `<ms>-<seq>`; compare them numerically.
fn id_key(id: &str) -> (u64, u64) {
    let mut parts = id.splitn(2, '-');
    let ms = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let seq = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (ms, seq)
}

fn to_sse(event: &StoredEvent) -> Event {
    Event::default()
        .id(event.id.clone())
        .event(event.event.event.as_str())
        .data(String::from_utf8(event.event.encode()).expect("JSON is UTF-8"))
}

async fn events(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    // Subscribe before reading history so nothing published in between is missed.
    let live = BroadcastStream::new(hub.sender.subscribe());
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut replay = Vec::new();
    if let Some(after) = &last_event_id {
        match hub.bus.history_after(after, hub.config.max_replay).await {
            Ok(events) => replay = events,
            Err(e) => tracing::warn!(error = %e, "replay unavailable; sending live events only"),
        }
    }
    let mut high_water = replay
        .last()
        .map(|e| id_key(&e.id))
        .or_else(|| last_event_id.as_deref().map(id_key))
        .unwrap_or((0, 0));
    let filter = query.service.clone();
    let keep = move |e: &StoredEvent| filter.as_deref().is_none_or(|s| e.event.service == s);
    let keep_live = keep.clone();
    let replayed = futures::stream::iter(
        replay
            .into_iter()
            .filter(|e| keep(e))
            .map(|e| Ok::<_, Infallible>(to_sse(&e)))
            .collect::<Vec<_>>(),
    );
    let live = live.filter_map(move |item| {
        let out = match item {
            Ok(event) => {
                let key = id_key(&event.id);
                if key <= high_water || !keep_live(&event) {
                    None
                } else {
                    high_water = key;
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
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        replayed
            .chain(live)
            .take_until(hub.shutdown.clone().cancelled_owned()),
    );
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(hub.config.keep_alive))
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_numerically() {
        assert!(id_key("1700000000000-10") > id_key("1700000000000-9"));
        assert!(id_key("1700000000001-0") > id_key("1700000000000-99"));
        assert_eq!(id_key("garbage"), (0, 0));
    }
}
