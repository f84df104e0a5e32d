//! What the hub relays to its streams (`Relay`), one SSE connection's response body
//! (`EventBody`) and the SSE wire format (`frame`).
//!
//! The hub encodes each live event once (`Relayed` carries its frame) and every
//! stream that passes its filter sends those same bytes: at ten thousand clients an event
//! costs one encoding, not ten thousand. A stream holds only what it must: its filter,
//! where it is in the bus, the frames queued before the live ones (views' current states,
//! the replay), its credential's checks and one timer. That timer is never reset by an
//! event; it fires for the next keep-alive comment (every `keep_alive`), the next
//! credential recheck (every `credential_recheck`, for tokens, tickets and links) and a
//! ticket's or link's expiry, whichever comes first. The process's shutdown reaches every
//! stream through the hub's broadcast (`Relay::Shutdown`) and its `closing` flag.

use axum::body::Bytes;
use futures::Stream;
use http_body::{Body, Frame};
use plotq_domain::wire::EventId;
use plotq_http::auth::{Auth, Credential, Lapsed, Principal};
use plotq_ports::StoredEvent;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// What the hub broadcasts to this process's streams.
#[allow(clippy::large_enum_variant)] // reason: always behind one `Arc`, one a bus event
pub(crate) enum Relay {
    Event(Relayed),
    /// The process is shutting down: every stream ends.
    Shutdown,
}

/// A bus event with its SSE frame, encoded once for every stream that sends it, and its
/// `plotq_sse_events_sent_total` counter, looked up once.
pub(crate) struct Relayed {
    pub(crate) stored: StoredEvent,
    pub(crate) frame: Bytes,
    pub(crate) sent: metrics::Counter,
}

impl Relayed {
    pub(crate) fn new(stored: StoredEvent) -> Self {
        let sent = metrics::counter!("plotq_sse_events_sent_total", "event" => stored.event.event.as_str());
        Self {
            frame: event_frame(&stored),
            stored,
            sent,
        }
    }
}

/// An SSE comment: keeps proxies and browsers from timing an idle stream out.
const KEEP_ALIVE: &[u8] = b":\n\n";

/// One SSE event: its `id:` when it has one, `event:`, a `data:` line per line of
/// `data`, and the blank line that ends it. `id` and `event` are one line each (ours
/// are event ids and kind names; a newline in either would be dropped).
pub(crate) fn frame(id: Option<&str>, event: &str, data: &str) -> Bytes {
    fn one_line(s: &str) -> impl Iterator<Item = char> + '_ {
        s.chars().filter(|c| !matches!(c, '\r' | '\n'))
    }
    let mut out = String::with_capacity(data.len() + event.len() + 24 + id.map_or(0, str::len));
    if let Some(id) = id {
        out.push_str("id: ");
        out.extend(one_line(id));
        out.push('\n');
    }
    out.push_str("event: ");
    out.extend(one_line(event));
    out.push('\n');
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// A bus event as sent to clients; its `id:` is the `EventId` (`<ms>-<seq>`), which is
/// what a reconnecting client sends back as `Last-Event-ID`.
pub(crate) fn event_frame(event: &StoredEvent) -> Bytes {
    let data = String::from_utf8(event.event.encode()).expect("JSON is UTF-8");
    frame(
        Some(&event.id.to_string()),
        event.event.event.as_str(),
        &data,
    )
}

/// The last event of a stream whose credential lapsed.
pub(crate) fn closed_frame(why: Lapsed) -> Bytes {
    metrics::counter!("plotq_sse_streams_closed_total", "reason" => why.as_str()).increment(1);
    let data = serde_json::json!({"reason": why.as_str()}).to_string();
    frame(None, "stream.closed", &data)
}

/// Which bus events a client receives: never another service's events for a caller
/// limited to some services; then only its views' events when it watches views, else
/// only the `service` it named, if any.
pub(crate) struct EventFilter {
    pub(crate) principal: Principal,
    pub(crate) views: HashSet<String>,
    pub(crate) service: Option<String>,
}

impl EventFilter {
    pub(crate) fn keeps(&self, e: &StoredEvent) -> bool {
        let principal = &self.principal;
        if !e
            .event
            .services
            .iter()
            .all(|s| principal.may_use_service(s))
            || !principal.may_use_service(&e.event.service)
        {
            return false;
        }
        if !self.views.is_empty() {
            return e
                .event
                .view
                .as_ref()
                .is_some_and(|v| self.views.contains(v));
        }
        self.service.as_deref().is_none_or(|s| e.event.service == s)
    }
}

/// What keeps a stream's credential honest: rechecked every `every` (never in open
/// mode), and a ticket's or link's expiry met on time.
pub(crate) struct CredentialCheck {
    pub(crate) auth: Arc<Auth>,
    /// The services the stream reads (its views' and its `service` filter).
    pub(crate) uses: Vec<String>,
    pub(crate) every: std::time::Duration,
}

/// What a stream reads from its hub: the relays (subscribed before its history was read),
/// the id live events must pass, and the flag set when the process shuts down.
pub(crate) struct Live {
    pub(crate) relays: BroadcastStream<Arc<Relay>>,
    pub(crate) after: EventId,
    pub(crate) closing: Arc<AtomicBool>,
}

pin_project_lite::pin_project! {
    /// The body of one SSE response: queued frames first, then live events from the hub
    /// that pass its filter (each after the last one sent, so none twice), a keep-alive
    /// comment every `keep_alive`, until the client goes, the credential lapses (a last
    /// `stream.closed` says why) or the process shuts down.
    pub(crate) struct EventBody<G> {
        queued: VecDeque<Bytes>,
        live: BroadcastStream<Arc<Relay>>,
        high_water: EventId,
        filter: EventFilter,
        check: CredentialCheck,
        // The hub's: set when the process shuts down.
        closing: Arc<AtomicBool>,
        keep_alive: Duration,
        #[pin]
        timer: Sleep,
        next_keep_alive: Instant,
        keep_alive_owed: bool,
        // `None` in open mode: nothing to recheck.
        next_recheck: Option<Instant>,
        expires: Option<Instant>,
        ended: bool,
        // Lives as long as the stream: the views' and connection's counts, the gauge.
        _lives: G,
    }
}

impl<G> EventBody<G> {
    /// A stream sending `queued`, then what `live` brings.
    pub(crate) fn new(
        live: Live,
        keep_alive: Duration,
        queued: VecDeque<Bytes>,
        filter: EventFilter,
        check: CredentialCheck,
        lives: G,
    ) -> Self {
        // A zero interval would fire the timer on every poll.
        let keep_alive = keep_alive.max(Duration::from_millis(1));
        let check = CredentialCheck {
            every: check.every.max(Duration::from_millis(1)),
            ..check
        };
        let now = Instant::now();
        let next_keep_alive = now + keep_alive;
        let (next_recheck, expires) = match &filter.principal.credential {
            Credential::Open => (None, None),
            Credential::Token { .. } => (Some(now + check.every), None),
            Credential::Ticket { expires_ms, .. } | Credential::Grant { expires_ms, .. } => {
                let left = u64::try_from(expires_ms - plotq_ports::clock::now_ms()).unwrap_or(0);
                (
                    Some(now + check.every),
                    Some(now + Duration::from_millis(left)),
                )
            }
        };
        Self {
            queued,
            live: live.relays,
            high_water: live.after,
            filter,
            check,
            closing: live.closing,
            keep_alive,
            timer: tokio::time::sleep_until(earliest(next_keep_alive, next_recheck, expires)),
            next_keep_alive,
            keep_alive_owed: false,
            next_recheck,
            expires,
            ended: false,
            _lives: lives,
        }
    }
}

/// When a stream's timer must next fire: its next keep-alive, recheck or expiry.
fn earliest(keep_alive: Instant, recheck: Option<Instant>, expires: Option<Instant>) -> Instant {
    [recheck, expires]
        .into_iter()
        .flatten()
        .fold(keep_alive, Instant::min)
}

impl<G> Body for EventBody<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut this = self.project();
        if *this.ended || this.closing.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        // The timer: a credential that lapsed ends the stream now; a keep-alive comes
        // when nothing else is ready to send.
        if this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let lapsed = if this.expires.is_some_and(|e| e <= now) {
                Some(Lapsed::Expired)
            } else if this.next_recheck.is_some_and(|r| r <= now) {
                *this.next_recheck = Some(now + this.check.every);
                let uses: Vec<&str> = this.check.uses.iter().map(String::as_str).collect();
                this.check
                    .auth
                    .recheck(&this.filter.principal, &uses, plotq_ports::clock::now_ms())
                    .err()
            } else {
                None
            };
            if let Some(why) = lapsed {
                *this.ended = true;
                return Poll::Ready(Some(Ok(Frame::data(closed_frame(why)))));
            }
            if *this.next_keep_alive <= now {
                *this.keep_alive_owed = true;
                *this.next_keep_alive = now + *this.keep_alive;
            }
            let deadline = earliest(*this.next_keep_alive, *this.next_recheck, *this.expires);
            this.timer.as_mut().reset(deadline);
            // Registers the timer's waker for its new deadline.
            let _ = this.timer.as_mut().poll(cx);
        }
        if let Some(queued) = this.queued.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(queued))));
        }
        loop {
            match Pin::new(&mut *this.live).poll_next(cx) {
                Poll::Ready(Some(Ok(relay))) => match relay.as_ref() {
                    Relay::Event(event) => {
                        if event.stored.id <= *this.high_water || !this.filter.keeps(&event.stored)
                        {
                            continue;
                        }
                        *this.high_water = event.stored.id;
                        event.sent.increment(1);
                        return Poll::Ready(Some(Ok(Frame::data(event.frame.clone()))));
                    }
                    Relay::Shutdown => {
                        *this.ended = true;
                        return Poll::Ready(None);
                    }
                },
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    metrics::counter!("plotq_sse_events_skipped_total").increment(n);
                    tracing::warn!(skipped = n, "slow SSE client skipped events");
                }
                Poll::Ready(None) => {
                    *this.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if std::mem::take(this.keep_alive_owed) {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_sse_wire_format() {
        assert_eq!(
            frame(Some("12-0"), "plot.ready", "{\"a\":1}"),
            Bytes::from_static(b"id: 12-0\nevent: plot.ready\ndata: {\"a\":1}\n\n")
        );
        assert_eq!(
            frame(None, "x", "one\ntwo\r\nthree"),
            Bytes::from_static(b"event: x\ndata: one\ndata: two\ndata: three\n\n"),
            "each line of data is a data: line"
        );
    }
}
