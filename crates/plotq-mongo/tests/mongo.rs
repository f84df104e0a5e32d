//! `MongoStore` against the MongoDB-wire server on 127.0.0.1:27017 (fails if it is not
//! running): acknowledged inserts, window queries including both bounds, series isolation.

use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_mongo::{MongoConfig, MongoStore};
use plotq_ports::{MetricStore, PortError};
use std::time::Duration;

fn config() -> MongoConfig {
    MongoConfig {
        url: "mongodb://127.0.0.1:27017".to_owned(),
        database: format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        timeout: Duration::from_secs(10),
    }
}

fn sample(service: &str, metric: &str, value: f64, ts: i64) -> Sample {
    Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: MetricName::parse(metric).unwrap(),
        value,
        timestamp_ms: ts,
    }
}

#[tokio::test]
async fn window_queries_include_both_ends_and_are_per_series() {
    let store = MongoStore::new(&config()).await.unwrap();
    store
        .ping()
        .await
        .expect("the MongoDB-wire server must be running on 127.0.0.1:27017");
    store.ensure_indexes().await.unwrap();
    // Whole seconds apart, and windows ending on whole seconds: the MongoDB-wire test
    // server compares dates at whole-second precision (a gap of nx-27017 0.8.1, not of
    // MongoDB), so sub-second bounds would not test what they claim to.
    let t0 = 1_795_000_000_000i64;
    let mut samples: Vec<Sample> = (0..1000)
        .map(|i| sample("a", "latency_ms", i as f64, t0 + i * 1000))
        .collect();
    samples.push(sample("b", "latency_ms", -1.0, t0 + 500_000));
    samples.push(sample("a", "other", -2.0, t0 + 500_000));
    store.insert(&samples).await.unwrap();
    let window = |from, until| store.points("a", "latency_ms", from, until, false);
    let mut got = window(t0 + 100_000, t0 + 200_000).await.unwrap().values;
    got.sort_by(f64::total_cmp);
    assert_eq!(
        got,
        (100..=200).map(|i| i as f64).collect::<Vec<_>>(),
        "[from, until]: a sample at exactly `until` is drawn, as one at `from` is"
    );
    // A window of one instant holds the one sample taken then.
    let at = store
        .points("a", "latency_ms", t0 + 7_000, t0 + 7_000, true)
        .await
        .unwrap();
    assert_eq!((at.values, at.timestamps_ms), (vec![7.0], vec![t0 + 7_000]));
    let (lo, hi) = (t0 - 3_600_000, t0 + 7_200_000);
    let all = store.points("a", "latency_ms", lo, hi, true).await.unwrap();
    assert_eq!((all.values.len(), all.timestamps_ms.len()), (1000, 1000));
    for (ts, v) in all.timestamps_ms.iter().zip(&all.values) {
        assert_eq!(
            *ts,
            t0 + *v as i64 * 1000,
            "timestamps stay paired with their values"
        );
    }
    let b = store
        .points("b", "latency_ms", lo, hi, false)
        .await
        .unwrap();
    assert_eq!((b.values, b.timestamps_ms.len()), (vec![-1.0], 0));
    let none = store
        .points("zzz", "latency_ms", lo, hi, false)
        .await
        .unwrap();
    assert!(none.values.is_empty());
}

#[tokio::test]
async fn unreachable_store_is_unavailable() {
    let mut config = config();
    config.url = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000".to_owned();
    config.timeout = Duration::from_secs(1);
    let store = MongoStore::new(&config).await.unwrap();
    let err = store.insert(&[sample("a", "m", 1.0, 1)]).await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable { .. }));
}
