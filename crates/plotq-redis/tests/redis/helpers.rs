//! What every test of the binary shares: where the shared Redis and Redis Cluster are
//! (`Target`: `Single`, `Cluster`) and a raw connection to look at what the adapters
//! wrote; the one way to make an adapter's config (`config_on`, `config`) and the key
//! names plotq writes (`tag`); private `redis-server`s (`redis_server`,
//! `cluster_node`); breakers; and `eventually`, the bounded poll.

use plotq_ports::contract::TestServer;
use plotq_ports::{Breaker, BreakerConfig};
use plotq_redis::RedisConfig;
use redis::aio::ConnectionLike;
use std::path::Path;
use std::time::{Duration, Instant};

/// A Redis the suite runs against, with a plain connection to it.
pub trait Target {
    /// The adapters' `RedisConfig::url`.
    const URL: &'static str;
    /// The adapters' `RedisConfig::cluster`.
    const CLUSTER: bool;
    /// A connection past the adapters.
    type Raw: ConnectionLike + Send + Sync;
    /// A raw connection, to read and delete what the adapters wrote.
    async fn raw() -> Self::Raw;
}

/// The single Redis on 127.0.0.1:6379.
pub struct Single;

impl Target for Single {
    const URL: &'static str = "redis://127.0.0.1:6379";
    const CLUSTER: bool = false;
    type Raw = redis::aio::MultiplexedConnection;

    async fn raw() -> Self::Raw {
        redis::Client::open(Self::URL)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("Redis must be running on 127.0.0.1:6379 for these tests")
    }
}

/// The three masters on 127.0.0.1:7101-7103, started by `tests/redis-cluster.sh`.
pub struct Cluster;

impl Target for Cluster {
    const URL: &'static str =
        "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103";
    const CLUSTER: bool = true;
    type Raw = redis::cluster_async::ClusterConnection;

    async fn raw() -> Self::Raw {
        redis::cluster::ClusterClient::new(Self::URL.split(','))
            .unwrap()
            .get_async_connection()
            .await
            .expect(
                "a Redis Cluster must be running on 127.0.0.1:7101-7103 (tests/redis-cluster.sh)",
            )
    }
}

/// An adapter config on `url` (a cluster if `cluster`), in a fresh random namespace,
/// every call bounded by `timeout`, with the default breaker.
pub fn config_on(url: &str, cluster: bool, timeout: Duration) -> RedisConfig {
    RedisConfig {
        url: url.to_owned(),
        cluster,
        namespace: format!(
            "t-{}:plotq",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ),
        timeout,
        event_history: 10,
        breaker: Breaker::system("redis", BreakerConfig::default()),
    }
}

/// The suite's config on `T`'s Redis, keeping `history` events.
pub fn config<T: Target>(history: usize) -> RedisConfig {
    RedisConfig {
        event_history: history,
        ..config_on(T::URL, T::CLUSTER, Duration::from_secs(5))
    }
}

/// A key's variable part as plotq writes it on `T`: a hash tag on a cluster only (a
/// single Redis keeps the key names of earlier releases).
pub fn tag<T: Target>(text: &str) -> String {
    if T::CLUSTER {
        format!("{{{text}}}")
    } else {
        text.to_owned()
    }
}

/// A breaker that opens after `failures_to_open` unreached calls, probing every
/// `cooldown`.
pub fn breaker(failures_to_open: u32, cooldown: Duration) -> Breaker {
    Breaker::system(
        "redis",
        BreakerConfig {
            failures_to_open,
            cooldown,
        },
    )
}

/// The timeout alone, as without a breaker.
pub fn no_breaker() -> Breaker {
    breaker(0, BreakerConfig::default().cooldown)
}

/// A `redis-server` of the test's own on `port` (loopback only, keeping nothing on
/// disk), with `extra` arguments; killed when dropped.
pub fn redis_server(port: u16, extra: &[&str]) -> TestServer {
    let port = port.to_string();
    let mut args = vec![
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    args.extend_from_slice(extra);
    TestServer::start("redis-server", &args)
}

/// A private `redis-server` in cluster mode on `port`, its cluster state in `dir`
/// (created), with `extra` arguments.
pub fn cluster_node(port: u16, dir: &Path, extra: &[&str]) -> TestServer {
    std::fs::create_dir_all(dir).unwrap();
    let dir = dir.display().to_string();
    let mut args = vec!["--cluster-enabled", "yes", "--dir", &dir];
    args.extend_from_slice(extra);
    redis_server(port, &args)
}

/// Polls `poll` every `every` until it gives a value, and returns it; fails the test,
/// naming `what`, once `within` has passed without one.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    every: Duration,
    mut poll: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = Instant::now() + within;
    loop {
        if let Some(value) = poll().await {
            return value;
        }
        assert!(Instant::now() < until, "{what} within {within:?}");
        tokio::time::sleep(every).await;
    }
}
