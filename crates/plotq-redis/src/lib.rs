//! `PlotCache` and `EventBus` on Redis: the only crate that speaks to Redis.
//!
//! Keys (all under the namespace prefix): `<ns>:state:<id>` (job state JSON),
//! `<ns>:img:<id>` (image bytes) and `<ns>:req:<key>` (single-flight claim: request key →
//! job id), each written with a TTL; `<ns>:events`, a stream capped at a bounded length,
//! which is both the fan-out to every notifier replica and the replay history for SSE
//! clients reconnecting with `Last-Event-ID`.
//!
//! Live refresh (`RedisViews`): `<ns>:views` (sorted set: view → lease expiry; the key
//! expires an hour after its longest lease), `<ns>:series` (sorted set: `service\tmetric`
//! → last ingest; at most `max_series` members, the oldest-touched dropped first, members
//! older than 8 days dropped, and the key expires 8 days after the last touch),
//! `<ns>:view:<key>` (latest render of a view, JSON, with a TTL) and `<ns>:claim:<key>`
//! (`SET NX PX`: one refresher per debounce period across all replicas).
//!
//! Redis Cluster: with several node addresses (or `RedisConfig::cluster`), commands go
//! through the `redis` crate's cluster client, which follows the slot map (`MOVED`/`ASK`)
//! and reconnects to nodes on its own. Keys used together share a hash slot through a
//! `{…}` hash tag (on a cluster only, so a single Redis keeps its key names): a job's
//! state and image (`<ns>:state:{<id>}`, `<ns>:img:{<id>}`), a view's state and refresh
//! claim (`{<key>}`); every command and atomic pipeline touches one key, so none crosses
//! slots. The event stream is one key, so it lives on one master. The health probe asks
//! the cluster whether every slot is served (`Link::probe`). Every key has a
//! TTL except the capped event stream and `<ns>:since` (when this Redis's data begins:
//! written once, so an empty Redis after a restart writes a new time, which is how a
//! job whose state was lost is told from one that never existed).
//!
//! Job and view states are stored in their versioned wire form (`wire::encode_state`,
//! `wire::encode_view_state`); a value that does not decode reads as absent (and is
//! logged). Event ids are `EventId`s to everyone else: this crate is the only place that
//! turns them into stream ids (`<ms>-<seq>`) and back.
//!
//! Commands go through a `ConnectionManager` (one node), which reconnects when a call
//! finds the connection lost, in one attempt per call, or a cluster connection, whose
//! own retries and redirections share the same bound; so every call ends within the
//! configured dependency timeout (half to connect, half to answer) even while Redis is
//! down;
//! blocking stream reads use a connection of their own so they never hold up other
//! commands. Every command passes the process's Redis `Breaker` (`RedisConfig::breaker`):
//! while Redis is believed down, commands fail in microseconds without touching the
//! network, and `ping` is the probe that marks it down or up.

use async_trait::async_trait;
use plotq_domain::wire::{
    EventId, PlotEvent, decode_state, decode_view_state, encode_state, encode_view_state,
};
use plotq_domain::{JobId, JobState, ViewState};
use plotq_ports::clock::now_ms;
use plotq_ports::{
    Breaker, EventBus, IdempotentStart, PlotCache, PortError, PortResult, StoredEvent, ViewRegistry,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
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
    /// One `redis://` URL, or several separated by commas: the seed nodes of a Redis
    /// Cluster (any reachable one is enough to learn the others).
    pub url: String,
    /// Talk to a Redis Cluster even when `url` names a single seed node (several nodes
    /// always mean a cluster).
    pub cluster: bool,
    /// Prefix of every key, so deployments can share one Redis.
    pub namespace: String,
    /// Bound on each command (and on connecting).
    pub timeout: Duration,
    /// Events kept in the stream for replay (approximate, trimmed on write).
    pub event_history: usize,
    /// What this process believes about Redis; every adapter built from this config
    /// shares it (and should share it with every other Redis adapter of the process).
    pub breaker: Breaker,
}

/// Where Redis is: one node, or the seed nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    Single(String),
    Cluster(Vec<String>),
}

impl Topology {
    /// `url` (one URL, or several separated by commas: `plotq_ports::split_urls`) and
    /// whether a cluster is forced. Every address must be a
    /// `redis://` URL (one node may also be `redis+unix://`); a cluster's are TCP
    /// addresses of database 0, as Redis Cluster has no other. The error names the bad
    /// address by position, never by content (URLs carry passwords).
    pub fn parse(url: &str, cluster: bool) -> Result<Self, String> {
        let nodes: Vec<String> = plotq_ports::split_urls(url)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let cluster = cluster || nodes.len() > 1;
        for (i, node) in nodes.iter().enumerate() {
            let which = format!("address {} of {}", i + 1, nodes.len());
            if node.starts_with("rediss://") {
                return Err(format!("{which}: TLS (rediss://) is not built into plotq"));
            }
            let info =
                redis::IntoConnectionInfo::into_connection_info(node.as_str()).map_err(|_| {
                    format!("{which} is not a Redis URL (redis://[user:password@]host:port)")
                })?;
            if cluster && !matches!(info.addr(), redis::ConnectionAddr::Tcp(..)) {
                return Err(format!("{which}: a Redis Cluster is reached over TCP"));
            }
            if cluster && info.redis_settings().db() != 0 {
                return Err(format!("{which}: a Redis Cluster has only database 0"));
            }
        }
        Ok(if cluster {
            Self::Cluster(nodes)
        } else {
            Self::Single(nodes.into_iter().next().unwrap_or_default())
        })
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// A connection to one node or to a cluster; commands go through it alike.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection manager behind the process's Redis breaker: while Redis is believed
/// down, commands fail at once (`failing fast`) without touching the network, and each
/// command's outcome feeds the breaker. Commands go through it like through any
/// connection (`ConnectionLike`), so call sites stay plain Redis commands.
#[derive(Clone)]
struct Link {
    conn: Conn,
    /// Keys used together get a hash tag (`{…}`) only on a cluster, so a single Redis
    /// keeps the key names of earlier releases.
    cluster: bool,
    breaker: Breaker,
    /// The bound on one command, the retry included.
    timeout: Duration,
}

impl Link {
    fn new(config: &RedisConfig, extra_response: Duration) -> PortResult<Self> {
        let conn = match Topology::parse(&config.url, config.cluster).map_err(unavailable)? {
            Topology::Single(url) => {
                let client = Client::open(url.as_str()).map_err(unavailable)?;
                Conn::Single(manager(&client, config.timeout, extra_response)?)
            }
            Topology::Cluster(nodes) => {
                Conn::Cluster(cluster(&nodes, config.timeout, extra_response)?)
            }
        };
        Ok(Self {
            cluster: matches!(conn, Conn::Cluster(_)),
            conn,
            breaker: config.breaker.clone(),
            timeout: config.timeout + extra_response,
        })
    }

    /// `text` as a hash tag on a cluster (`{text}`: the slot is computed from it alone),
    /// as it is on a single Redis.
    fn tag(&self, text: &str) -> String {
        if self.cluster {
            format!("{{{text}}}")
        } else {
            text.to_owned()
        }
    }

    /// One health probe. One node: `PING`. A cluster: `CLUSTER INFO` asked of the master
    /// serving `key`'s slot, which must say `cluster_state:ok` — the cluster's own verdict
    /// that every slot is served (a `PING` would go to every node the client knows, so
    /// one node gone for good, even after its replica took over, would fail it).
    async fn probe(&self, key: &str) -> redis::RedisResult<()> {
        match &self.conn {
            Conn::Single(conn) => {
                let mut conn = conn.clone();
                redis::cmd("PING").query_async::<String>(&mut conn).await?;
                Ok(())
            }
            Conn::Cluster(conn) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("INFO");
                let info = conn
                    .clone()
                    .route_command(cmd, RoutingInfo::SingleNode(route))
                    .await?;
                let info: String = redis::from_redis_value(info)?;
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    Ok(())
                } else {
                    // Unreached, as far as plotq is concerned: the cluster refuses
                    // commands until every slot is served again.
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "cluster down",
                        "cluster_state is not ok".to_owned(),
                    )))
                }
            }
        }
    }

    /// Whether to try a failed command once more, and within how long: only when it
    /// failed to reach Redis quickly (in under a quarter of the timeout). That is what a
    /// connection lost in a Redis restart looks like — the manager answers the first
    /// command after it with the dead connection's error, or the error of its last
    /// reconnect attempt, and reconnects — and one retry on the new connection spares
    /// that command; a Redis that is really down refuses the retry as fast. Every command
    /// plotq sends is safe to repeat (plain writes, compare-and-deletes, stream appends
    /// whose repeated events notifiers drop).
    fn retry_budget<T>(
        &self,
        result: &redis::RedisResult<T>,
        started: tokio::time::Instant,
    ) -> Option<Duration> {
        let elapsed = started.elapsed();
        (result.as_ref().is_err_and(unreached) && elapsed < self.timeout / 4)
            .then(|| self.timeout.saturating_sub(elapsed))
    }

    fn timed_out() -> redis::RedisError {
        redis::RedisError::from((redis::ErrorKind::Io, "timed out", "retry".to_owned()))
    }

    fn refused(e: &PortError) -> redis::RedisError {
        redis::RedisError::from((redis::ErrorKind::Io, "failing fast", e.to_string()))
    }
}

/// Whether an error means Redis could not be reached (rather than Redis answering with
/// an error of its own).
fn unreached(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == redis::ErrorKind::Io
}

impl redis::aio::ConnectionLike for Link {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            let ticket = self.breaker.admit().map_err(|e| Self::refused(&e))?;
            let started = tokio::time::Instant::now();
            let mut result = self.conn.req_packed_command(cmd).await;
            if let Some(left) = self.retry_budget(&result, started) {
                result = tokio::time::timeout(left, self.conn.req_packed_command(cmd))
                    .await
                    .unwrap_or_else(|_| Err(Self::timed_out()));
            }
            ticket.reached(!result.as_ref().is_err_and(unreached));
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            let ticket = self.breaker.admit().map_err(|e| Self::refused(&e))?;
            let started = tokio::time::Instant::now();
            let mut result = self.conn.req_packed_commands(pipeline, offset, count).await;
            if let Some(left) = self.retry_budget(&result, started) {
                let retry = self.conn.req_packed_commands(pipeline, offset, count);
                result = tokio::time::timeout(left, retry)
                    .await
                    .unwrap_or_else(|_| Err(Self::timed_out()));
            }
            ticket.reached(!result.as_ref().is_err_and(unreached));
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// A connection manager whose calls end within `timeout` (plus `extra_response` for
/// blocking reads): half of it to (re)connect, in one attempt — the manager's own
/// retries with backoff would wait past it; the next call tries again — and half to
/// answer.
fn manager(
    client: &Client,
    timeout: Duration,
    extra_response: Duration,
) -> PortResult<ConnectionManager> {
    let half = (timeout / 2).max(Duration::from_millis(50));
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(half + extra_response))
        .set_connection_timeout(Some(half))
        .set_number_of_retries(0);
    ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)
}

/// A cluster connection bounded like `manager`: half of `timeout` to connect to a node,
/// half (plus `extra_response`) for one answer, and the whole of it for a command with
/// the client's own retries and redirections (`MOVED`/`ASK`, a node reconnected). It
/// connects in the background: the first command waits for the slot map.
fn cluster(
    nodes: &[String],
    timeout: Duration,
    extra_response: Duration,
) -> PortResult<ClusterConnection> {
    let half = (timeout / 2).max(Duration::from_millis(50));
    let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
        .retries(3)
        .min_retry_wait(20)
        .max_retry_wait(200)
        .overall_response_timeout(Some(timeout + extra_response))
        .build()
        .map_err(unavailable)?;
    let config = ClusterConfig::new()
        .set_connection_timeout(half)
        .set_response_timeout(half + extra_response);
    Ok(client.get_pending_async_connection_with_config(config))
}

/// Job states and PNGs in Redis.
#[derive(Clone)]
pub struct RedisCache {
    conn: Link,
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
        Ok(Self {
            conn: Link::new(config, Duration::ZERO)?,
            prefix: config.namespace.clone(),
        })
    }

    /// On a cluster a job's keys share the hash slot of `{<id>}`: its state and image
    /// live (and are lost, or fail over) together.
    /// The sorted set of a lane's jobs in flight (one key per command: no hash tag).
    fn lane_key(&self, lane: &str) -> String {
        format!("{}:lane:{lane}", self.prefix)
    }

    fn state_key(&self, id: JobId) -> String {
        format!("{}:state:{}", self.prefix, self.conn.tag(&id.to_string()))
    }

    fn image_key(&self, id: JobId) -> String {
        format!("{}:img:{}", self.prefix, self.conn.tag(&id.to_string()))
    }
}

fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// `SET key value NX EX ttl`: whether the key was absent (and is now set).
async fn set_absent(
    link: &Link,
    key: &str,
    value: impl redis::ToRedisArgs + Send + Sync,
    ttl: Duration,
) -> PortResult<bool> {
    let mut conn = link.clone();
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("NX")
        .arg("EX")
        .arg(ttl_secs(ttl))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(set.is_some())
}

/// Sets `KEYS[1]` to `ARGV[1]` unless it exists, and answers what it holds.
const SET_ONCE_AND_GET: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

#[async_trait]
impl PlotCache for RedisCache {
    async fn data_since(&self, now_ms: i64) -> PortResult<i64> {
        let mut conn = self.conn.clone();
        let since: String = redis::cmd("EVAL")
            .arg(SET_ONCE_AND_GET)
            .arg(1)
            .arg(format!("{}:since", self.prefix))
            .arg(now_ms)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        since
            .parse()
            .map_err(|_| unavailable(format!("the since key holds {since:?}")))
    }

    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.state_key(state.id), encode_state(state), ttl_secs(ttl))
            .await
            .map_err(unavailable)
    }

    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        set_absent(
            &self.conn,
            &self.state_key(state.id),
            encode_state(state),
            ttl,
        )
        .await
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

    async fn claim_request(
        &self,
        key: &str,
        id: JobId,
        ttl: Duration,
    ) -> PortResult<Option<JobId>> {
        let key = format!("{}:req:{key}", self.prefix);
        if set_absent(&self.conn, &key, id.to_string(), ttl).await? {
            return Ok(None);
        }
        let mut conn = self.conn.clone();
        let holder: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        Ok(holder.as_deref().and_then(JobId::parse))
    }

    async fn replace_request(&self, key: &str, id: JobId, ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(
            format!("{}:req:{key}", self.prefix),
            id.to_string(),
            ttl_secs(ttl),
        )
        .await
        .map_err(unavailable)
    }

    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("EVAL")
            .arg(RELEASE_IF_HELD)
            .arg(1)
            .arg(format!("{}:req:{key}", self.prefix))
            .arg(id.to_string())
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.state_key(id))
            .await
            .map_err(unavailable)
    }

    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        pending_ttl: Duration,
    ) -> PortResult<IdempotentStart> {
        let mut conn = self.conn.clone();
        let key = format!("{}:idem:{key}", self.prefix);
        // SET NX, else read what holds the key; a key that expired in between is tried
        // once more.
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(IdempotentStart::encode_pending(fingerprint))
                .arg("NX")
                .arg("PX")
                .arg(pending_ttl.as_millis().max(1) as u64)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if set.is_some() {
                return Ok(IdempotentStart::Fresh);
            }
            let stored: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            if let Some(stored) = stored {
                return Ok(IdempotentStart::of_stored(&stored, fingerprint));
            }
        }
        Ok(IdempotentStart::Pending)
    }

    async fn finish_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        accepted: u64,
        ttl: Duration,
    ) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(
            format!("{}:idem:{key}", self.prefix),
            IdempotentStart::encode_done(fingerprint, accepted),
            ttl_secs(ttl),
        )
        .await
        .map_err(unavailable)
    }

    async fn abandon_idempotent(&self, key: &str, fingerprint: &str) -> PortResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("EVAL")
            .arg(RELEASE_IF_HELD)
            .arg(1)
            .arg(format!("{}:idem:{key}", self.prefix))
            .arg(IdempotentStart::encode_pending(fingerprint))
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.image_key(id)).await.map_err(unavailable)
    }

    async fn begin_job(
        &self,
        lane: &str,
        id: JobId,
        cap: usize,
        lease: Duration,
        now_ms: i64,
    ) -> PortResult<bool> {
        let mut conn = self.conn.clone();
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        redis::cmd("EVAL")
            .arg(BEGIN_JOB)
            .arg(1)
            .arg(self.lane_key(lane))
            .arg(now_ms)
            .arg(until)
            .arg(cap)
            .arg(id.to_string())
            .query_async::<i64>(&mut conn)
            .await
            .map(|counted| counted == 1)
            .map_err(unavailable)
    }

    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.zrem::<_, _, ()>(self.lane_key(lane), id.to_string())
            .await
            .map_err(unavailable)
    }

    async fn ping(&self) -> PortResult<()> {
        ping(&self.conn, &format!("{}:since", self.prefix)).await
    }
}

/// A lane's jobs in flight (`KEYS[1]`, a sorted set of job ids by the end of their
/// lease): drops the lapsed ones (`ARGV[1]` is now), then adds job `ARGV[4]` until
/// `ARGV[2]` if it is there already or the set holds fewer than `ARGV[3]`; 1 if counted.
/// The key lives as long as its newest lease (every lease is as long).
const BEGIN_JOB: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
    return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
";

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`: a compare-and-delete, atomic
/// because Redis runs a script without interleaving other commands.
const RELEASE_IF_HELD: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// A health probe (`Link::probe`; `key` picks the cluster master asked) that, if Redis
/// cannot be reached, marks it down at once.
async fn ping(link: &Link, key: &str) -> PortResult<()> {
    let ticket = link.breaker.admit_probe()?;
    let started = tokio::time::Instant::now();
    let mut result = link.probe(key).await;
    if let Some(left) = link.retry_budget(&result, started) {
        result = tokio::time::timeout(left, link.probe(key))
            .await
            .unwrap_or_else(|_| Err(Link::timed_out()));
    }
    ticket.reached(!result.as_ref().is_err_and(unreached));
    result.map_err(unavailable)
}

/// Plot events in a capped Redis stream.
#[derive(Clone)]
pub struct RedisEventBus {
    conn: Link,
    /// Only for blocking reads (`XREAD BLOCK`), which would stall a shared connection.
    blocking: Link,
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
        Ok(Self {
            conn: Link::new(config, Duration::ZERO)?,
            blocking: Link::new(config, MAX_BLOCK)?,
            stream: format!("{}:events", config.namespace),
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

fn decode_entries(ids: Vec<redis::streams::StreamId>) -> Vec<StoredEvent> {
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

/// The start of a range exclusive of `id` (`XRANGE` with `(`, Redis 6.2 and later).
fn exclusive(id: EventId) -> String {
    format!("({}", stream_id(id))
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
        max: usize,
    ) -> PortResult<Vec<StoredEvent>> {
        let mut conn = self.blocking.clone();
        let options = StreamReadOptions::default()
            .count(max.max(1))
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
        ping(&self.conn, &self.stream).await
    }
}

/// Watched views, series watermarks, view states and refresh claims in Redis.
#[derive(Clone)]
pub struct RedisViews {
    conn: Link,
    prefix: String,
    max_series: usize,
}

impl std::fmt::Debug for RedisViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisViews")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How long a view's last state is remembered after its last update.
const VIEW_STATE_TTL_SECS: u64 = 24 * 3600;
/// Series not written for this long drop out of the service list (which covers a week);
/// also the TTL of the `series` key, refreshed on every touch.
const SERIES_RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;
/// Series remembered unless `with_max_series` says otherwise.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// How long the `views` key outlives its longest lease (covers clock skew between the
/// notifiers and Redis); idle dashboards leave nothing behind for longer than this.
const VIEWS_IDLE_TTL_MS: i64 = 3600 * 1000;

impl RedisViews {
    /// A registry remembering at most `DEFAULT_MAX_SERIES` series.
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        Ok(Self {
            conn: Link::new(config, Duration::ZERO)?,
            prefix: config.namespace.clone(),
            max_series: DEFAULT_MAX_SERIES,
        })
    }

    /// Bounds the series list to `max_series` members (at least one): past it, the
    /// oldest-touched series are dropped on the next touch.
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series.max(1);
        self
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// `<ns>:<family>:<view>`; on a cluster `<ns>:<family>:{<view>}`, so a view's state
    /// and claim share the hash slot of the view.
    fn view_key(&self, family: &str, view: &str) -> String {
        format!("{}:{family}:{}", self.prefix, self.conn.tag(view))
    }
}

#[async_trait]
impl ViewRegistry for RedisViews {
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()> {
        if views.is_empty() {
            return Ok(());
        }
        let key = self.key("views");
        let mut cmd = redis::cmd("ZADD");
        // GT: a replica with a shorter lease never cuts another replica's longer one.
        cmd.arg(&key).arg("GT");
        for v in views {
            cmd.arg(until_ms).arg(v);
        }
        // The key lives until an hour past the longest lease: NX gives a fresh key its
        // TTL, GT only ever lengthens it (another replica's longer lease is never cut).
        let ttl_ms = (until_ms - now_ms()).max(0) + VIEWS_IDLE_TTL_MS;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .add_command(cmd)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("NX")
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("GT")
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let key = self.key("views");
        let (_, live): ((), Vec<String>) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_ms)
            .cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(live)
    }

    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()> {
        if series.is_empty() {
            return Ok(());
        }
        let key = self.key("series");
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&key);
        for (service, metric) in series {
            cmd.arg(now_ms).arg(format!("{service}\t{metric}"));
        }
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .add_command(cmd)
            // Series not touched within the retention are forgotten...
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({}", now_ms - SERIES_RETENTION_MS))
            // ...and past the bound the oldest-touched go (rank 0 = lowest score).
            .cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(-(self.max_series as i64) - 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(SERIES_RETENTION_MS)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>> {
        let mut conn = self.conn.clone();
        let score: Option<f64> = conn
            .zscore(self.key("series"), format!("{service}\t{metric}"))
            .await
            .map_err(unavailable)?;
        Ok(score.map(|s| s as i64))
    }

    async fn services(&self, since_ms: i64) -> PortResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn
            .zrangebyscore(self.key("series"), since_ms, "+inf")
            .await
            .map_err(unavailable)?;
        let mut out: Vec<String> = members
            .into_iter()
            .filter_map(|m| m.split('\t').next().map(str::to_owned))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = conn
            .get(self.view_key("view", view))
            .await
            .map_err(unavailable)?;
        Ok(raw.and_then(|b| match decode_view_state(&b) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(view, error = %e, "unreadable view state in redis; treating as unknown");
                None
            }
        }))
    }

    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()> {
        let mut conn = self.conn.clone();
        let json = encode_view_state(state);
        conn.set_ex::<_, _, ()>(self.view_key("view", view), json, VIEW_STATE_TTL_SECS)
            .await
            .map_err(unavailable)
    }

    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.view_key("claim", view))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }
}
