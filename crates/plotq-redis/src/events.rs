//! `RedisEventBus`, the `EventBus` on Redis (the twin of `plotq_ports::memory::events`):
//! plot events in `<ns>:events`, a stream capped at a bounded length, which is both the
//! fan-out to every notifier replica and the replay history for SSE clients
//! reconnecting with `Last-Event-ID`. The stream has no TTL (its cap bounds it).
//!
//! Event ids are `EventId`s to everyone else: this is the only place that turns them
//! into stream ids (`<ms>-<seq>`) and back. Blocking reads (`XREAD BLOCK`) use a `Link`
//! of their own, so they never hold up other commands.

use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::link::{Link, unavailable};
use async_trait::async_trait;
use plotq_domain::wire::{EventId, PlotEvent};
use plotq_ports::{EventBus, PortResult, StoredEvent};
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Value};
use std::time::Duration;

/// The stream entry's field holding the encoded event.
const EVENT_FIELD: &str = "e";

/// Longest a single blocking read may wait; callers loop.
const MAX_BLOCK: Duration = Duration::from_secs(5);

/// Plot events in a capped Redis stream.
#[derive(Debug, Clone)]
pub struct RedisEventBus {
    conn: Link,
    /// Only for blocking reads (`XREAD BLOCK`), which would stall a shared connection.
    blocking: Link,
    stream: String,
    history: usize,
}

impl RedisEventBus {
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        let conn = Link::new(config, Duration::ZERO)?;
        Ok(Self {
            stream: Keys::new(&config.namespace, conn.is_cluster()).events(),
            conn,
            blocking: Link::new(config, MAX_BLOCK)?,
            history: config.event_history.max(1),
        })
    }
}

/// A stream id as Redis writes it, as an `EventId`. Redis only writes `<ms>-<seq>`, so
/// `None` means something else wrote to our stream.
fn event_id(stream_id: &str) -> Option<EventId> {
    EventId::parse(stream_id)
}

/// An `EventId` as a stream id: the same `<ms>-<seq>` text.
fn stream_id(id: EventId) -> String {
    id.to_string()
}

/// The start of a range exclusive of `id` (`XRANGE` with `(`, Redis 6.2 and later).
fn exclusive(id: EventId) -> String {
    format!("({}", stream_id(id))
}

/// The events of stream entries, in order; entries with a foreign id or an unreadable
/// event are skipped (and logged).
fn decode_entries(ids: Vec<StreamId>) -> Vec<StoredEvent> {
    ids.into_iter()
        .filter_map(|entry| {
            let Some(id) = event_id(&entry.id) else {
                tracing::warn!(id = %entry.id, "skipping a stream entry with a foreign id");
                return None;
            };
            let bytes = match entry.map.get(EVENT_FIELD) {
                Some(Value::BulkString(b)) => b.clone(),
                _ => return None,
            };
            match PlotEvent::decode(&bytes) {
                Ok(event) => Some(StoredEvent { id, event }),
                Err(e) => {
                    tracing::warn!(%id, error = %e, "skipping unreadable event");
                    None
                }
            }
        })
        .collect()
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, event: &PlotEvent) -> PortResult<EventId> {
        let mut conn = self.conn.clone();
        let id = redis::cmd("XADD")
            .arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.history)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(event.encode())
            .query_async::<String>(&mut conn)
            .await
            .map_err(unavailable)?;
        event_id(&id).ok_or_else(|| unavailable(format!("XADD answered a stream id {id:?}")))
    }

    async fn read_after(
        &self,
        after: Option<EventId>,
        block: Duration,
    ) -> PortResult<Vec<StoredEvent>> {
        let mut conn = self.blocking.clone();
        let options = StreamReadOptions::default()
            .count(plotq_ports::READ_BATCH)
            .block(block.min(MAX_BLOCK).as_millis() as usize);
        // `$`: only entries added after the read starts.
        let after = after.map_or_else(|| "$".to_owned(), stream_id);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.stream], &[after], &options)
            .await
            .map_err(unavailable)?;
        Ok(reply
            .map(|r| decode_entries(r.keys.into_iter().flat_map(|k| k.ids).collect()))
            .unwrap_or_default())
    }

    async fn last_id(&self) -> PortResult<Option<EventId>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn
            .xrevrange_count(&self.stream, "+", "-", 1)
            .await
            .map_err(unavailable)?;
        Ok(reply.ids.into_iter().next().and_then(|e| event_id(&e.id)))
    }

    async fn history_after(&self, after: EventId, max: usize) -> PortResult<Vec<StoredEvent>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn
            .xrange_count(&self.stream, exclusive(after), "+", max.max(1))
            .await
            .map_err(unavailable)?;
        Ok(decode_entries(reply.ids))
    }

    async fn ping(&self) -> PortResult<()> {
        self.conn.ping(&self.stream).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::wire::EventKind;

    fn entry(id: &str, value: Value) -> StreamId {
        StreamId {
            id: id.to_owned(),
            map: [(EVENT_FIELD.to_owned(), value)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn stream_ids_are_event_ids_in_the_same_text() {
        let id = event_id("1700000000000-7").unwrap();
        assert_eq!(stream_id(id), "1700000000000-7");
        assert_eq!(exclusive(id), "(1700000000000-7");
        assert_eq!(event_id("not-an-id"), None);
    }

    #[test]
    fn entries_with_a_foreign_id_or_an_unreadable_event_are_skipped() {
        let event = PlotEvent::for_job(
            &plotq_ports::contract::queued_state(),
            EventKind::PlotReady,
            1,
        );
        let good = Value::BulkString(event.encode());
        let decoded = decode_entries(vec![
            entry("5-0", good.clone()),
            entry("foreign", good.clone()),
            entry("6-0", Value::BulkString(b"{not json".to_vec())),
            entry("7-0", Value::Int(1)),
            entry("8-1", good),
        ]);
        let ids: Vec<String> = decoded.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, ["5-0", "8-1"]);
        assert_eq!(decoded[0].event, event);
    }
}
