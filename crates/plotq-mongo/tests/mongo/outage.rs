//! Calls end within the dependency timeout while MongoDB cannot be reached: a store on
//! an address nobody listens on, and a private MongoDB-wire server (`nx-27017`, started
//! on a free port for this test, then killed) behind a `MongoStore`. Every insert and
//! read during the outage fails `Unavailable` within the timeout, the driver's own retry
//! included; with the breaker on, once the outage is detected they fail in
//! milliseconds.

use crate::helpers::{breaker, config, no_breaker, private_server, sample, store_on};
use plotq_mongo::MongoStore;
use plotq_ports::contract::TestServer;
use plotq_ports::{MetricStore, PortError, SeriesQuery};
use std::time::{Duration, Instant};

#[tokio::test]
async fn unreachable_store_is_unavailable() {
    let mut config = config();
    config.url = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000".to_owned();
    config.timeout = Duration::from_secs(1);
    let store = MongoStore::new(&config).await.unwrap();
    let err = store
        .insert(&[sample("a", "m", 1.0, 1)], None)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Unavailable { .. }));
}

#[tokio::test]
async fn calls_end_within_the_timeout_while_mongodb_is_down() {
    let port = TestServer::free_port();
    let server = private_server(port);
    // Short: every call during the outage waits for it.
    let timeout = Duration::from_secs(1);
    let store = store_on(port, timeout, no_breaker()).await;
    let breaker = breaker(3, Duration::from_millis(300));
    let guarded = store_on(port, timeout, breaker.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.ping().await.is_err() || guarded.ping().await.is_err() {
        assert!(Instant::now() < deadline, "nx-27017 did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = plotq_ports::clock::now_ms();
    let sample = sample("a", "latency_ms", 1.0, now);
    store
        .insert(std::slice::from_ref(&sample), None)
        .await
        .unwrap();

    drop(server);
    let query = SeriesQuery {
        service: "a",
        metric: "latency_ms",
        from_ms: now - 60_000,
        until_ms: now,
        with_timestamps: false,
        select: plotq_ports::LabelSelect::ALL,
    };
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let err = store
            .insert(std::slice::from_ref(&sample), None)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Unavailable { .. }), "{err}");
        slowest = slowest.max(started.elapsed());
        let started = Instant::now();
        let err = store.points(&query).await.unwrap_err();
        assert!(matches!(err, PortError::Unavailable { .. }), "{err}");
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest <= timeout + Duration::from_millis(500),
        "a call took {slowest:?} with a timeout of {timeout:?}"
    );
    // With the breaker: at most three calls wait before the outage is known...
    let mut waited = 0;
    while breaker.is_up() {
        let started = Instant::now();
        assert!(guarded.points(&query).await.is_err());
        assert!(started.elapsed() <= timeout + Duration::from_millis(500));
        waited += 1;
        assert!(waited <= 3, "still believed up after {waited} failed calls");
    }
    // ...then calls fail at once, naming MongoDB (only probes check it).
    let mut times = Vec::new();
    for i in 0..200 {
        let started = Instant::now();
        let err = if i % 2 == 0 {
            guarded
                .insert(std::slice::from_ref(&sample), None)
                .await
                .unwrap_err()
        } else {
            guarded.points(&query).await.unwrap_err()
        };
        times.push(started.elapsed());
        assert_eq!(err.dependency(), "mongodb");
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "mongodb down, breaker open: p50 {:?}, p99 {p99:?}",
        times[100]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
}
