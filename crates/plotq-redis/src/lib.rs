//! `PlotCache` and `EventBus` on Redis: the only crate that speaks to Redis.
//!
//! Keys (all under the namespace prefix): `<ns>:state:<id>` (job state JSON) and
//! `<ns>:img:<id>` (image bytes), each written with a TTL; `<ns>:events`, a stream capped
//! at a bounded length, which is both the fan-out to every notifier replica and the
//! replay history for SSE clients reconnecting with `Last-Event-ID`.
//!
//! Commands go through a `ConnectionManager` (reconnects by itself) with a response
//! timeout; blocking stream reads use a connection of their own so they never hold up
//! other commands.

use async_trait::async_trait;
use plotq_domain::wire::{PlotEvent, decode_state, encode_state};
use plotq_domain::{JobId, JobState};
use plotq_ports::{EventBus, PlotCache, PortError, PortResult, StoredEvent};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Client, Value};
use std::time::Duration;

const DEPENDENCY: &str = "redis";
const EVENT_FIELD: &str = "e";

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// Connection settings shared by the cache and the event bus.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key, so deployments can share one Redis.
    pub namespace: String,
    /// Bound on each command (and on connecting).
    pub timeout: Duration,
    /// Events kept in the stream for replay (approximate, trimmed on write).
    pub event_history: usize,
}

fn manager(
    client: &Client,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> PortResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(connect_timeout))
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)
}

/// Job states and PNGs in Redis.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisCache {
    /// Prepares the connection; it is made lazily and re-made after failures.
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        let client = Client::open(config.url.as_str()).map_err(unavailable)?;
        Ok(Self {
            conn: manager(&client, config.timeout, config.timeout)?,
            prefix: config.namespace.clone(),
        })
    }

    fn state_key(&self, id: JobId) -> String {
        format!("{}:state:{id}", self.prefix)
    }

    fn image_key(&self, id: JobId) -> String {
        format!("{}:img:{id}", self.prefix)
    }
}

fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

#[async_trait]
impl PlotCache for RedisCache {
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.state_key(state.id), encode_state(state), ttl_secs(ttl))
            .await
            .map_err(unavailable)
    }

    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = conn.get(self.state_key(id)).await.map_err(unavailable)?;
        Ok(raw.and_then(|b| match decode_state(&b) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(%id, error = %e, "unreadable job state in redis; treating as unknown");
                None
            }
        }))
    }

    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.image_key(id), png, ttl_secs(ttl))
            .await
            .map_err(unavailable)
    }

    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.image_key(id)).await.map_err(unavailable)
    }

    async fn ping(&self) -> PortResult<()> {
        ping(&self.conn).await
    }
}

async fn ping(conn: &ConnectionManager) -> PortResult<()> {
    let mut conn = conn.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())
        .map_err(unavailable)
}

/// Plot events in a capped Redis stream.
#[derive(Clone)]
pub struct RedisEventBus {
    conn: ConnectionManager,
    /// Only for blocking reads (`XREAD BLOCK`), which would stall a shared connection.
    blocking: ConnectionManager,
    stream: String,
    history: usize,
}

impl std::fmt::Debug for RedisEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventBus")
            .field("stream", &self.stream)
            .finish()
    }
}

/// Longest a single blocking read may wait; callers loop.
const MAX_BLOCK: Duration = Duration::from_secs(5);

impl RedisEventBus {
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        let client = Client::open(config.url.as_str()).map_err(unavailable)?;
        Ok(Self {
            conn: manager(&client, config.timeout, config.timeout)?,
            blocking: manager(&client, MAX_BLOCK + config.timeout, config.timeout)?,
            stream: format!("{}:events", config.namespace),
            history: config.event_history.max(1),
        })
    }
}

fn decode_entries(ids: Vec<redis::streams::StreamId>) -> Vec<StoredEvent> {
    ids.into_iter()
        .filter_map(|entry| {
            let bytes = match entry.map.get(EVENT_FIELD) {
                Some(Value::BulkString(b)) => b.clone(),
                _ => return None,
            };
            match PlotEvent::decode(&bytes) {
                Ok(event) => Some(StoredEvent {
                    id: entry.id,
                    event,
                }),
                Err(e) => {
                    tracing::warn!(id = %entry.id, error = %e, "skipping unreadable event");
                    None
                }
            }
        })
        .collect()
}

/// The id right after `id` in stream order, for exclusive ranges on old Redis versions.
fn exclusive(id: &str) -> String {
    format!("({id}")
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, event: &PlotEvent) -> PortResult<String> {
        let mut conn = self.conn.clone();
        redis::cmd("XADD")
            .arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.history)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(event.encode())
            .query_async::<String>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn read_after(
        &self,
        after: Option<&str>,
        block: Duration,
        max: usize,
    ) -> PortResult<Vec<StoredEvent>> {
        let mut conn = self.blocking.clone();
        let options = StreamReadOptions::default()
            .count(max.max(1))
            .block(block.min(MAX_BLOCK).as_millis() as usize);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.stream], &[after.unwrap_or("$")], &options)
            .await
            .map_err(unavailable)?;
        Ok(reply
            .map(|r| decode_entries(r.keys.into_iter().flat_map(|k| k.ids).collect()))
            .unwrap_or_default())
    }

    async fn last_id(&self) -> PortResult<Option<String>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn
            .xrevrange_count(&self.stream, "+", "-", 1)
            .await
            .map_err(unavailable)?;
        Ok(reply.ids.into_iter().next().map(|e| e.id))
    }

    async fn history_after(&self, after: &str, max: usize) -> PortResult<Vec<StoredEvent>> {
        let mut conn = self.conn.clone();
        let reply: StreamRangeReply = conn
            .xrange_count(&self.stream, exclusive(after), "+", max.max(1))
            .await
            .map_err(unavailable)?;
        Ok(decode_entries(reply.ids))
    }

    async fn ping(&self) -> PortResult<()> {
        ping(&self.conn).await
    }
}
