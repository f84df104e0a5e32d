//! Calls end within the dependency timeout while Redis is down: a private `redis-server`
//! (started on a free port for this test, killed, then started again on the same port)
//! behind a `RedisCache`. Every call during the outage fails `Unavailable` within the
//! timeout (the connection manager's own reconnect loop must not wait past it), and calls
//! succeed again once Redis is back.

use plotq_ports::contract::TestServer;
use plotq_ports::contract::queued_state;
use plotq_ports::{PlotCache, PortError};
use plotq_redis::{RedisCache, RedisConfig};
use std::time::{Duration, Instant};

/// A `redis-server` of this test's own on `port`, keeping nothing on disk.
fn redis_server(port: u16) -> TestServer {
    let port = port.to_string();
    TestServer::start(
        "redis-server",
        &[
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
}

#[tokio::test]
async fn calls_end_within_the_timeout_while_redis_is_down() {
    let port = TestServer::free_port();
    let timeout = Duration::from_secs(1);
    let cache = RedisCache::new(&RedisConfig {
        url: format!("redis://127.0.0.1:{port}"),
        namespace: "outage:plotq".to_owned(),
        timeout,
        event_history: 10,
    })
    .unwrap();
    let state = queued_state();
    let server = redis_server(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.ping().await.is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    let _server = redis_server(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.get_state(state.id).await {
            // A fresh server (nothing saved): the state is gone, the connection is back.
            Ok(found) => {
                assert_eq!(found, None);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no reconnect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
