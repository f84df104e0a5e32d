//! What every test of the binary shares: the one way to make a store (`config`,
//! `store_with`, `store`), its queries and samples, and, for outages, a private
//! `nx-27017` and breakers.

use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_mongo::{MongoConfig, MongoStore};
use plotq_ports::contract::TestServer;
use plotq_ports::{Breaker, BreakerConfig, MetricStore, SeriesQuery};
use std::time::Duration;

/// A config on the shared server, in a fresh database.
pub fn config() -> MongoConfig {
    MongoConfig {
        url: "mongodb://127.0.0.1:27017".to_owned(),
        database: format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        timeout: Duration::from_secs(10),
        raw_retention: Duration::from_secs(48 * 3600),
        rollup_retention: Duration::from_secs(90 * 86_400),
        breaker: Breaker::system("mongodb", BreakerConfig::default()),
    }
}

/// A store on `config`, its indexes made as at a process's start.
pub async fn store_with(config: &MongoConfig) -> MongoStore {
    let store = MongoStore::new(config).await.unwrap();
    store.ensure_indexes().await.unwrap();
    store
}

/// A store on the shared server, in a fresh database.
pub async fn store() -> MongoStore {
    let store = MongoStore::new(&config()).await.unwrap();
    store
        .ping()
        .await
        .expect("the MongoDB-wire server must be running on 127.0.0.1:27017");
    store.ensure_indexes().await.unwrap();
    store
}

/// The window `[from_ms, until_ms]` of `service`'s `latency_ms`.
pub fn query(service: &str, from_ms: i64, until_ms: i64, with_timestamps: bool) -> SeriesQuery<'_> {
    SeriesQuery {
        service,
        metric: "latency_ms",
        from_ms,
        until_ms,
        with_timestamps,
        select: plotq_ports::LabelSelect::ALL,
    }
}

pub fn sample(service: &str, metric: &str, value: f64, ts: i64) -> Sample {
    Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: MetricName::parse(metric).unwrap(),
        value,
        timestamp_ms: ts,
        labels: plotq_domain::Labels::none(),
    }
}

/// An `nx-27017` of the test's own on `port`, in memory; killed when dropped.
pub fn private_server(port: u16) -> TestServer {
    // Its own pid file: the shared server holds the default one.
    let pid_file = format!("{}/nx-outage-{port}.pid", std::env::temp_dir().display());
    TestServer::start(
        "nx-27017",
        &[
            "--db",
            "memory",
            "-p",
            &port.to_string(),
            "--pid-file",
            &pid_file,
        ],
    )
}

/// A store on the server at `port`, with `timeout` and `breaker` (indexes not made).
pub async fn store_on(port: u16, timeout: Duration, breaker: Breaker) -> MongoStore {
    MongoStore::new(&MongoConfig {
        url: format!("mongodb://127.0.0.1:{port}"),
        timeout,
        breaker,
        ..config()
    })
    .await
    .unwrap()
}

/// A breaker that opens after `failures_to_open` unreached calls, probing every
/// `cooldown`.
pub fn breaker(failures_to_open: u32, cooldown: Duration) -> Breaker {
    Breaker::system(
        "mongodb",
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
