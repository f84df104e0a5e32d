//! Calls end within the dependency timeout while Redis is down: a private `redis-server`
//! (started on a free port for this test, killed, then started again on the same port)
//! behind a `RedisCache`. Every call during the outage fails `Unavailable` within the
//! timeout (the connection manager's own reconnect loop must not wait past it), and calls
//! succeed again once Redis is back. With the breaker on, once the outage is detected
//! calls fail in milliseconds without waiting for the timeout, and the breaker lets
//! calls through again once Redis answers.

use crate::helpers::{breaker, config_on, eventually, no_breaker, redis_server};
use plotq_ports::contract::{TestServer, queued_state};
use plotq_ports::{Breaker, PlotCache, PortError};
use plotq_redis::{RedisCache, RedisConfig};
use std::time::{Duration, Instant};

/// Polls of a private server coming (back) up.
const RESTART: (Duration, Duration) = (Duration::from_secs(10), Duration::from_millis(50));

/// A private Redis on `port` and a cache on it (with `timeout` and `breaker`), once the
/// server answers.
async fn started(port: u16, timeout: Duration, breaker: Breaker) -> (TestServer, RedisCache) {
    let cache = RedisCache::new(&RedisConfig {
        breaker,
        ..config_on(&format!("redis://127.0.0.1:{port}"), false, timeout)
    })
    .unwrap();
    let server = redis_server(port, &[]);
    let (within, every) = RESTART;
    eventually("redis-server starts", within, every, async || {
        cache.ping().await.ok()
    })
    .await;
    (server, cache)
}

#[tokio::test]
async fn calls_end_within_the_timeout_while_redis_is_down() {
    let port = TestServer::free_port();
    let timeout = Duration::from_secs(1);
    let (server, cache) = started(port, timeout, no_breaker()).await;
    let state = queued_state();
    cache
        .put_state(&state, Duration::from_secs(60))
        .await
        .unwrap();

    drop(server);
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let err = cache.get_state(state.id).await.unwrap_err();
        slowest = slowest.max(started.elapsed());
        assert!(matches!(err, PortError::Unavailable { .. }), "{err}");
    }
    // The bound, with room for a loaded machine's scheduling.
    assert!(
        slowest <= timeout + Duration::from_millis(300),
        "a call took {slowest:?} with a timeout of {timeout:?}"
    );

    let _server = redis_server(port, &[]);
    let (within, every) = RESTART;
    let found = eventually("a reconnect", within, every, async || {
        cache.get_state(state.id).await.ok()
    })
    .await;
    // A fresh server (nothing saved): the state is gone, the connection is back.
    assert_eq!(found, None);
}

#[tokio::test]
async fn a_known_outage_is_answered_in_milliseconds() {
    let port = TestServer::free_port();
    let timeout = Duration::from_secs(1);
    let breaker = breaker(3, Duration::from_millis(300));
    let (server, cache) = started(port, timeout, breaker.clone()).await;
    let state = queued_state();
    drop(server);
    // Detection: at most `failures_to_open` calls wait (each within the timeout).
    let mut waited = 0;
    while breaker.is_up() {
        let started = Instant::now();
        assert!(cache.get_state(state.id).await.is_err());
        assert!(started.elapsed() <= timeout + Duration::from_millis(300));
        waited += 1;
        assert!(waited <= 3, "still believed up after {waited} failed calls");
    }
    // Known down: every call fails at once and names Redis (only probes check it).
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let err = cache.get_state(state.id).await.unwrap_err();
        times.push(started.elapsed());
        assert_eq!(err.dependency(), "redis");
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "redis down, breaker open: p50 {:?}, p99 {p99:?}",
        times[100]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");

    let _server = redis_server(port, &[]);
    // The probe (a role's background prober) finds it back; calls go through again.
    let (within, every) = RESTART;
    eventually("the probe finds Redis back", within, every, async || {
        cache.ping().await.ok()
    })
    .await;
    assert!(breaker.is_up());
    cache.get_state(state.id).await.unwrap();
}
