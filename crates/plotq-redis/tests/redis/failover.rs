//! A Redis Cluster master lost for good: a private cluster of three masters with a
//! replica each (six `redis-server`s of this test's own, on free ports, killed when the
//! test ends however it ends), the adapters on it, then `kill -9` of the master holding
//! a job's state and the event stream. Its replica takes over; the adapters, made
//! before the loss and never re-made, read the replicated state, write and publish
//! again, and the health probe is up again — all within bounded waits, with no plotq
//! restart.

use crate::helpers::{breaker, cluster_node, config_on, eventually};
use plotq_domain::wire::{EventKind, PlotEvent};
use plotq_ports::contract::{TestServer, cluster_master_of, queued_state, redis_cli, redis_info};
use plotq_ports::{EventBus, PlotCache};
use plotq_redis::{RedisCache, RedisConfig, RedisEventBus};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// How often the waits here look.
const EVERY: Duration = Duration::from_millis(100);

/// `n` distinct ports nothing listens on now.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports = BTreeSet::new();
    while ports.len() < n {
        ports.insert(TestServer::free_port());
    }
    ports.into_iter().collect()
}

/// `INFO replication`'s `field` on `port` (empty if it has none).
fn replication(port: u16, field: &str) -> String {
    redis_info(port, "replication", field).unwrap_or_default()
}

/// Waits (polling every [`EVERY`]) until `done` holds; fails the test with `what` after
/// `within`.
async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    eventually(what, within, EVERY, async || done().then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_lost_for_good_fails_over_and_the_adapters_follow() {
    let ports = free_ports(12);
    let (data, bus) = ports.split_at(6);
    let dir = std::env::temp_dir().join(format!("plotq-failover-{}", std::process::id()));
    let mut servers = Vec::new();
    for (&port, &bus_port) in data.iter().zip(bus) {
        let bus_port = bus_port.to_string();
        let extra = [
            "--cluster-port",
            &bus_port,
            "--cluster-node-timeout",
            "1000",
        ];
        let node = cluster_node(port, &dir.join(port.to_string()), &extra);
        servers.push((port, Some(node)));
    }
    for &port in data {
        wait_for("a node answers", Duration::from_secs(20), || {
            redis_cli(port, &["ping"]).trim() == "PONG"
        })
        .await;
    }
    let mut create = Command::new("redis-cli");
    create.args(["--cluster", "create"]);
    create.args(data.iter().map(|p| format!("127.0.0.1:{p}")));
    create.args(["--cluster-replicas", "1", "--cluster-yes"]);
    assert!(create.output().unwrap().status.success(), "cluster create");
    wait_for("the cluster is up", Duration::from_secs(30), || {
        data.iter()
            .all(|&p| redis_cli(p, &["cluster", "info"]).contains("cluster_state:ok"))
    })
    .await;

    let urls: Vec<String> = data
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let config = RedisConfig {
        event_history: 100,
        breaker: breaker(3, Duration::from_millis(200)),
        ..config_on(&urls.join(","), true, Duration::from_secs(2))
    };
    let cache = RedisCache::new(&config).unwrap();
    let events = RedisEventBus::new(&config).unwrap();
    let ns = &config.namespace;
    let stream = format!("{ns}:events");
    // A job whose state lives on the master holding the stream: both go with it.
    let job = loop {
        let s = queued_state();
        if cluster_master_of(data[0], &format!("{ns}:state:{{{}}}", s.id))
            == cluster_master_of(data[0], &stream)
        {
            break s;
        }
    };
    cache
        .put_state(&job, Duration::from_secs(300))
        .await
        .unwrap();
    let before = events
        .publish(&PlotEvent::for_job(&job, EventKind::PlotReady, 1))
        .await
        .unwrap();
    cache.ping().await.unwrap();

    // Lost for good: `kill -9` once its replica has every write.
    let lost = cluster_master_of(data[0], &stream).expect("a master serves the stream");
    let replica = *data
        .iter()
        .find(|&&p| p != lost && replication(p, "master_port") == lost.to_string())
        .expect("the master has a replica");
    wait_for("the replica has caught up", Duration::from_secs(20), || {
        let offset = |p| {
            replication(p, "master_repl_offset")
                .parse::<u64>()
                .unwrap_or(0)
        };
        offset(replica) >= offset(lost) && offset(lost) > 0
    })
    .await;
    let watcher = *data.iter().find(|&&p| p != lost && p != replica).unwrap();
    servers
        .iter_mut()
        .find(|(p, _)| *p == lost)
        .unwrap()
        .1
        .take();
    let lost_at = Instant::now();
    wait_for("the replica takes over", Duration::from_secs(30), || {
        cluster_master_of(watcher, &stream) == Some(replica)
            && redis_cli(watcher, &["cluster", "info"]).contains("cluster_state:ok")
    })
    .await;
    let failover = lost_at.elapsed();

    // The same adapters, never re-made: the probe is up again, the replicated state
    // reads back, and writes and events go to the new master.
    eventually(
        "the adapters follow the failover",
        Duration::from_secs(30),
        EVERY,
        async || {
            (cache.ping().await.is_ok() && cache.get_state(job.id).await.is_ok()).then_some(())
        },
    )
    .await;
    let followed = lost_at.elapsed();
    assert_eq!(cache.get_state(job.id).await.unwrap(), Some(job.clone()));
    let after = queued_state();
    cache
        .put_state(&after, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(
        cache.get_state(after.id).await.unwrap(),
        Some(after.clone())
    );
    let next = events
        .publish(&PlotEvent::for_job(&after, EventKind::PlotReady, 1))
        .await
        .unwrap();
    let read = events
        .read_after(Some(before), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(read.iter().map(|e| e.id).collect::<Vec<_>>(), [next]);
    eprintln!(
        "master {lost} killed: replica {replica} took over in {failover:?}; the adapters \
         answered again after {followed:?}"
    );
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
