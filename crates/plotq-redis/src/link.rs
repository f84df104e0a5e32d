//! `Link`: the one way commands reach Redis. A `ConnectionLike` over a
//! `ConnectionManager` (one node) or a cluster connection (`Topology::Cluster`), behind
//! the process's Redis `Breaker`, so call sites stay plain Redis commands. Also the
//! crate's error mapping (`unavailable`, `unreached`) and the health probe (`ping`).
//! It knows nothing of keys or of what the commands mean (`keys.rs` and the adapters).
//!
//! Bounds: a `ConnectionManager` reconnects when a call finds the connection lost, in
//! one attempt per call; a cluster connection's own retries and redirections share the
//! same bound; so every call ends within the configured dependency timeout (half to
//! connect, half to answer) even while Redis is down. Blocking stream reads use a
//! `Link` of their own (`extra_response`) so they never hold up other commands.
//!
//! Breaker: while Redis is believed down, commands fail in microseconds without
//! touching the network (`failing fast`); each command's outcome feeds the breaker, and
//! `ping` is the probe that marks Redis down or up. A command that failed fast to reach
//! Redis — the dead connection a restart leaves — is tried once more.

use crate::config::RedisConfig;
use crate::topology::Topology;
use plotq_ports::{Breaker, PortError, PortResult, Ticket};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::future::Future;
use std::time::Duration;

/// The dependency every error of this crate names.
const DEPENDENCY: &str = "redis";

/// `Unavailable` from `redis`.
pub(crate) fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

/// Whether an error means Redis could not be reached (rather than Redis answering with
/// an error of its own).
fn unreached(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == redis::ErrorKind::Io
}

fn timed_out() -> RedisError {
    RedisError::from((redis::ErrorKind::Io, "timed out", "retry".to_owned()))
}

fn refused(e: &PortError) -> RedisError {
    RedisError::from((redis::ErrorKind::Io, "failing fast", e.to_string()))
}

/// A connection to one node or to a cluster; commands go through it alike.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
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

impl Conn {
    /// One health probe. One node: `PING`. A cluster: `CLUSTER INFO` asked of the master
    /// serving `key`'s slot, which must say `cluster_state:ok` — the cluster's own verdict
    /// that every slot is served (a `PING` would go to every node the client knows, so
    /// one node gone for good, even after its replica took over, would fail it).
    async fn probe(self, key: &str) -> RedisResult<()> {
        match self {
            Self::Single(mut conn) => {
                redis::cmd("PING").query_async::<String>(&mut conn).await?;
                Ok(())
            }
            Self::Cluster(mut conn) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("INFO");
                let info = conn
                    .route_command(cmd, RoutingInfo::SingleNode(route))
                    .await?;
                let info: String = redis::from_redis_value(info)?;
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    Ok(())
                } else {
                    // Unreached, as far as plotq is concerned: the cluster refuses
                    // commands until every slot is served again.
                    Err(RedisError::from((
                        redis::ErrorKind::Io,
                        "cluster down",
                        "cluster_state is not ok".to_owned(),
                    )))
                }
            }
        }
    }
}

/// A connection behind the process's Redis breaker: while Redis is believed down,
/// commands fail at once (`failing fast`) without touching the network, and each
/// command's outcome feeds the breaker. Commands go through it like through any
/// connection (`ConnectionLike`), so call sites stay plain Redis commands.
#[derive(Clone)]
pub(crate) struct Link {
    conn: Conn,
    breaker: Breaker,
    /// The bound on one command, the retry included.
    timeout: Duration,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("cluster", &self.is_cluster())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Link {
    /// A link to what `config` names, connected lazily; `extra_response` is added to
    /// the bound on one answer (blocking reads wait that much longer).
    pub(crate) fn new(config: &RedisConfig, extra_response: Duration) -> PortResult<Self> {
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
            conn,
            breaker: config.breaker.clone(),
            timeout: config.timeout + extra_response,
        })
    }

    /// Whether commands go to a Redis Cluster (keys used together then need a hash tag).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// A health probe (`key` picks the cluster master asked) that, if Redis cannot be
    /// reached, marks it down at once.
    pub(crate) async fn ping(&self, key: &str) -> PortResult<()> {
        let ticket = self.breaker.admit_probe()?;
        self.attempt(&ticket, |conn| conn.probe(key))
            .await
            .map_err(unavailable)
    }

    /// `call` on the connection, tried once more within the bound if it failed fast to
    /// reach Redis (`retry_budget`); its outcome goes on `ticket`.
    async fn attempt<T, Fut>(&self, ticket: &Ticket, call: impl Fn(Conn) -> Fut) -> RedisResult<T>
    where
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = tokio::time::Instant::now();
        let mut result = call(self.conn.clone()).await;
        if let Some(left) = self.retry_budget(&result, started) {
            result = tokio::time::timeout(left, call(self.conn.clone()))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
        }
        ticket.reached(!result.as_ref().is_err_and(unreached));
        result
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
        result: &RedisResult<T>,
        started: tokio::time::Instant,
    ) -> Option<Duration> {
        let elapsed = started.elapsed();
        (result.as_ref().is_err_and(unreached) && elapsed < self.timeout / 4)
            .then(|| self.timeout.saturating_sub(elapsed))
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let ticket = self.breaker.admit().map_err(|e| refused(&e))?;
            self.attempt(&ticket, |mut conn| async move {
                conn.req_packed_command(cmd).await
            })
            .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let ticket = self.breaker.admit().map_err(|e| refused(&e))?;
            self.attempt(&ticket, |mut conn| async move {
                conn.req_packed_commands(pipeline, offset, count).await
            })
            .await
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
