//! The Redis adapters' suite (`suite/mod.rs`) against the single Redis on
//! 127.0.0.1:6379 (fails if it is not running).

mod suite;

const URL: &str = "redis://127.0.0.1:6379";
const CLUSTER: bool = false;

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must be running on 127.0.0.1:6379 for these tests")
}
