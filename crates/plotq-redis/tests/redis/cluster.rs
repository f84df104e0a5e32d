//! The Redis adapters' suite (`suite.rs`) against a Redis Cluster — three masters on
//! 127.0.0.1:7101-7103, started by `tests/redis-cluster.sh` (fails if it is not
//! running) — plus what only a cluster shows: the keys a job or a view uses together
//! land on one master, and the jobs of one namespace spread over every master; an
//! adapter made before any cluster node answers connects once one does; and the health
//! probe follows the cluster's own state.

use crate::helpers::{Cluster, Target, cluster_node, config, eventually};
use plotq_ports::contract::queued_state as state;
use plotq_ports::{PlotCache, ViewRegistry};
use plotq_redis::{RedisCache, RedisViews};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

crate::suite::suite_tests!(Cluster);

const PORTS: [u16; 3] = [7101, 7102, 7103];

/// The keys under `prefix` that the master on `port` holds (asked of that node alone).
async fn keys_on(port: u16, prefix: &str) -> BTreeSet<String> {
    let mut node = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("every cluster node accepts connections");
    redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut node)
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_used_together_share_a_master_and_jobs_spread_over_all() {
    let config = config::<Cluster>(10);
    let cache = RedisCache::new(&config).unwrap();
    let views = RedisViews::new(&config).unwrap();
    let ttl = Duration::from_secs(60);
    let mut jobs = Vec::new();
    for _ in 0..40 {
        let s = state();
        cache.put_state(&s, ttl).await.unwrap();
        cache.put_image(s.id, b"png", ttl).await.unwrap();
        jobs.push(s.id);
    }
    let views_used: Vec<String> = (0..6)
        .map(|i| format!("svc{i}/histogram/10m/light/800x450"))
        .collect();
    for view in &views_used {
        assert!(views.claim(view, ttl).await.unwrap());
        let vs = plotq_domain::ViewState {
            job_id: jobs[0],
            status: plotq_domain::JobStatus::Queued,
            requested_ms: 1,
            last_ready: None,
            error: None,
        };
        views.set_view_state(view, &vs).await.unwrap();
    }

    let prefix = format!("{}:", config.namespace);
    let mut master_of: BTreeMap<String, u16> = BTreeMap::new();
    for port in PORTS {
        for key in keys_on(port, &prefix).await {
            assert!(
                master_of.insert(key, port).is_none(),
                "a key on two masters"
            );
        }
    }
    let at = |key: String| {
        *master_of
            .get(&key)
            .unwrap_or_else(|| panic!("{key} is on no master"))
    };
    let ns = &config.namespace;
    let mut used = BTreeSet::new();
    for id in &jobs {
        let state_on = at(format!("{ns}:state:{{{id}}}"));
        assert_eq!(state_on, at(format!("{ns}:img:{{{id}}}")), "job {id}");
        used.insert(state_on);
        // Read back through the adapter, wherever the slot is.
        assert!(cache.get_state(*id).await.unwrap().is_some());
        assert_eq!(
            cache.get_image(*id).await.unwrap().as_deref(),
            Some(&b"png"[..])
        );
    }
    for view in &views_used {
        assert_eq!(
            at(format!("{ns}:view:{{{view}}}")),
            at(format!("{ns}:claim:{{{view}}}")),
            "view {view}"
        );
        assert!(views.view_state(view).await.unwrap().is_some());
    }
    assert_eq!(
        used.len(),
        PORTS.len(),
        "40 jobs land on every master (the odds of one missing them all: 3·(2/3)^40, 2e-7)"
    );

    let mut conn = Cluster::raw().await;
    // Every key written has a TTL, on a cluster as on one node.
    for key in master_of.keys() {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    for key in master_of.keys() {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A process that starts before its Redis Cluster (pods starting in any order): calls
/// fail `Unavailable` within the timeout while no node answers, and succeed once a
/// cluster is up on the seed address, with no new adapter. The cluster here is a
/// private one-node cluster (all 16,384 slots on one master) on a free port.
#[tokio::test]
async fn a_cluster_adapter_connects_late_and_its_probe_follows_the_cluster_state() {
    let port = plotq_ports::contract::TestServer::free_port();
    let dir = std::env::temp_dir().join(format!("plotq-cluster-{}-{port}", std::process::id()));
    let mut config = config::<Cluster>(10);
    config.url = format!("redis://127.0.0.1:{port}");
    config.timeout = Duration::from_secs(1);
    let cache = RedisCache::new(&config).unwrap();
    let started = std::time::Instant::now();
    let early = cache.get_state(plotq_domain::JobId::new_random()).await;
    assert!(
        matches!(early, Err(plotq_ports::PortError::Unavailable { .. })),
        "{early:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let server = cluster_node(port, &dir, &[]);
    let node = redis::Client::open(config.url.as_str()).unwrap();
    let (within, every) = (Duration::from_secs(30), Duration::from_millis(50));
    let mut conn = eventually("redis-server starts", within, every, async || {
        node.get_multiplexed_async_connection().await.ok()
    })
    .await;
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async(&mut conn)
        .await
        .unwrap();

    let s = state();
    let every = Duration::from_millis(100);
    eventually(
        "the adapter reaches the cluster",
        within,
        every,
        async || cache.put_state(&s, Duration::from_secs(30)).await.ok(),
    )
    .await;
    assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s));

    // The health probe is the cluster's own verdict: while some slots are served by no
    // master the cluster refuses commands, and the probe says Redis is down; once every
    // slot is served again, it is up.
    let slots = |verb: &'static str| {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg(verb).arg(0).arg(99);
        cmd
    };
    let within = Duration::from_secs(20);
    let _: () = slots("DELSLOTSRANGE").query_async(&mut conn).await.unwrap();
    eventually(
        "the probe sees the unserved slots",
        within,
        every,
        async || cache.ping().await.err(),
    )
    .await;
    let _: () = slots("ADDSLOTSRANGE").query_async(&mut conn).await.unwrap();
    eventually(
        "the probe sees the slots served again",
        within,
        every,
        async || cache.ping().await.ok(),
    )
    .await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
