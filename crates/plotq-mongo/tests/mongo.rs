//! `MongoStore` against the MongoDB-wire server on 127.0.0.1:27017 (fails if it is not
//! running): acknowledged inserts, window queries including both bounds (to the
//! millisecond), series isolation, chunks read per window, and the retention TTL index.

use plotq_domain::rollup::Rollup;
use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_mongo::{MongoConfig, MongoStore};
use plotq_ports::{MetricStore, PortError, SeriesQuery};
use std::time::Duration;

fn config() -> MongoConfig {
    MongoConfig {
        url: "mongodb://127.0.0.1:27017".to_owned(),
        database: format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        timeout: Duration::from_secs(10),
        raw_retention: Duration::from_secs(48 * 3600),
        rollup_retention: Duration::from_secs(90 * 86_400),
        breaker: plotq_ports::Breaker::system("mongodb", plotq_ports::BreakerConfig::default()),
    }
}

fn query(service: &str, from_ms: i64, until_ms: i64, with_timestamps: bool) -> SeriesQuery<'_> {
    SeriesQuery {
        service,
        metric: "latency_ms",
        from_ms,
        until_ms,
        with_timestamps,
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
    // Samples are filtered exactly after decoding, so windows hold to the millisecond
    // even on a server that compares dates at whole seconds (nx-27017 0.8.1).
    // Recent data: the retention TTL index (48 h) would delete older chunks.
    let t0 = (plotq_ports::clock::now_ms() - 3_600_000) / 60_000 * 60_000 + 123;
    let mut samples: Vec<Sample> = (0..1000)
        .map(|i| sample("a", "latency_ms", i as f64, t0 + i * 1000))
        .collect();
    samples.push(sample("b", "latency_ms", -1.0, t0 + 500_000));
    samples.push(sample("a", "other", -2.0, t0 + 500_000));
    store.insert(&samples, None).await.unwrap();
    let window = |from, until| {
        let store = &store;
        async move { store.points(&query("a", from, until, false)).await }
    };
    // One millisecond short of a sample at each end leaves both out.
    let mut inner = window(t0 + 99_001, t0 + 199_999).await.unwrap().values;
    inner.sort_by(f64::total_cmp);
    assert_eq!(inner, (100..=199).map(|i| i as f64).collect::<Vec<_>>());
    let mut got = window(t0 + 100_000, t0 + 200_000).await.unwrap().values;
    got.sort_by(f64::total_cmp);
    assert_eq!(
        got,
        (100..=200).map(|i| i as f64).collect::<Vec<_>>(),
        "[from, until]: a sample at exactly `until` is drawn, as one at `from` is"
    );
    // A window of one instant holds the one sample taken then.
    let at = store
        .points(&query("a", t0 + 7_000, t0 + 7_000, true))
        .await
        .unwrap();
    assert_eq!((at.values, at.timestamps_ms), (vec![7.0], vec![t0 + 7_000]));
    let (lo, hi) = (t0 - 3_600_000, t0 + 7_200_000);
    let all = store.points(&query("a", lo, hi, true)).await.unwrap();
    // 1,000 samples a second apart: 17 one-minute buckets, one chunk each.
    assert_eq!(all.chunks_read, 17);
    assert_eq!((all.values.len(), all.timestamps_ms.len()), (1000, 1000));
    for (ts, v) in all.timestamps_ms.iter().zip(&all.values) {
        assert_eq!(
            *ts,
            t0 + *v as i64 * 1000,
            "timestamps stay paired with their values"
        );
    }
    let b = store.points(&query("b", lo, hi, false)).await.unwrap();
    assert_eq!((b.values, b.timestamps_ms.len()), (vec![-1.0], 0));
    let none = store.points(&query("zzz", lo, hi, false)).await.unwrap();
    assert!(none.values.is_empty());
}

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
async fn the_retention_ttl_index_follows_the_setting() {
    let mut config = config();
    let store = MongoStore::new(&config).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let ttl_of_hi = |indexes: Vec<(Vec<String>, Option<u64>)>| {
        indexes
            .into_iter()
            .find(|(keys, _)| keys == &["hi"])
            .and_then(|(_, ttl)| ttl)
    };
    assert_eq!(
        ttl_of_hi(store.index_ttls(false).await.unwrap()),
        Some(48 * 3600)
    );
    // Restarted with another retention: the same index, the new expiry.
    config.raw_retention = Duration::from_secs(3 * 3600);
    let store = MongoStore::new(&config).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let indexes = store.index_ttls(false).await.unwrap();
    assert_eq!(
        indexes.iter().filter(|(keys, _)| keys == &["hi"]).count(),
        1
    );
    assert_eq!(ttl_of_hi(indexes), Some(3 * 3600));
    let rollup_ttl = store
        .index_ttls(true)
        .await
        .unwrap()
        .into_iter()
        .find(|(keys, _)| keys == &["t"])
        .and_then(|(_, ttl)| ttl);
    assert_eq!(rollup_ttl, Some(90 * 86_400));
}

#[tokio::test]
async fn rollups_merge_across_batches_per_series_and_minute() {
    let store = MongoStore::new(&config()).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let t0 = (plotq_ports::clock::now_ms() - 3_600_000) / 60_000 * 60_000;
    // Three minutes of latencies and status codes, written in 30 batches.
    let latencies: Vec<Sample> = (0..3_000)
        .map(|i| sample("a", "latency_ms", 1.0 + (i % 500) as f64, t0 + i * 60))
        .collect();
    let codes: Vec<Sample> = (0..3_000)
        .map(|i| {
            let code = if i % 10 == 0 { 503.0 } else { 200.0 };
            sample("a", "status_code", code, t0 + i * 60)
        })
        .collect();
    for batch in latencies.chunks(200).zip(codes.chunks(200)) {
        let both: Vec<Sample> = batch.0.iter().chain(batch.1).cloned().collect();
        store.insert(&both, None).await.unwrap();
    }
    let read = store
        .rollups(&SeriesQuery {
            metric: "latency_ms",
            ..query("a", t0, t0 + 179_999, false)
        })
        .await
        .unwrap();
    assert_eq!(
        read.docs_read, 3,
        "one document per minute, however many batches"
    );
    let expected: Vec<(i64, Rollup)> = (0..3)
        .map(|m| {
            let values: Vec<f64> = latencies[m * 1_000..(m + 1) * 1_000]
                .iter()
                .map(|s| s.value)
                .collect();
            (t0 + m as i64 * 60_000, Rollup::of(&values))
        })
        .collect();
    for ((t, got), (want_t, want)) in read.minutes.iter().zip(&expected) {
        assert_eq!(t, want_t);
        assert_eq!(
            (got.count, got.min, got.max, &got.positive, got.zeros),
            (want.count, want.min, want.max, &want.positive, want.zeros)
        );
        assert!((got.sum - want.sum).abs() <= 1e-9 * want.sum.abs());
    }
    let codes = store
        .rollups(&SeriesQuery {
            metric: "status_code",
            ..query("a", t0, t0 + 179_999, false)
        })
        .await
        .unwrap();
    let merged = Rollup::merged(codes.minutes.iter().map(|(_, r)| r));
    assert_eq!(
        merged.codes,
        std::collections::BTreeMap::from([(200, 2_700), (503, 300)])
    );
}

#[tokio::test]
async fn windows_at_the_end_of_year_9999_are_read() {
    let store = MongoStore::new(&config()).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let last = plotq_domain::timestamp::MAX_TIMESTAMP_MS;
    store
        .insert(&[sample("a", "latency_ms", 7.0, last)], None)
        .await
        .unwrap();
    // The query's margins would reach year 10000; they are clamped.
    let got = store
        .points(&query("a", last - 60_000, last, true))
        .await
        .unwrap();
    assert_eq!((got.values, got.timestamps_ms), (vec![7.0], vec![last]));
    let rollups = store
        .rollups(&query("a", last - 60_000, last, false))
        .await
        .unwrap();
    assert_eq!(rollups.minutes.len(), 1);
}

#[tokio::test]
async fn a_batch_with_an_id_is_stored_and_counted_once() {
    let store = MongoStore::new(&config()).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let t0 = (plotq_ports::clock::now_ms() - 600_000) / 60_000 * 60_000;
    // Three minutes of samples: three chunks and three rollups.
    let samples: Vec<Sample> = (0..180)
        .map(|i| sample("a", "latency_ms", i as f64, t0 + i * 1_000))
        .collect();
    let batch = plotq_domain::chunk::BatchId::parse(&"c0".repeat(16)).unwrap();
    for _ in 0..3 {
        store.insert(&samples, Some(&batch)).await.unwrap();
    }
    let window = query("a", t0, t0 + 179_999, false);
    assert_eq!(store.points(&window).await.unwrap().values.len(), 180);
    let rollups = store.rollups(&window).await.unwrap();
    let merged = Rollup::merged(rollups.minutes.iter().map(|(_, r)| r));
    let counts: Vec<u64> = rollups.minutes.iter().map(|(_, r)| r.count).collect();
    assert_eq!(
        merged.count, 180,
        "each rollup counted the batch once: {counts:?} of {}",
        rollups.docs_read
    );
    // Another batch id (or none) is another batch.
    store.insert(&samples, None).await.unwrap();
    assert_eq!(store.points(&window).await.unwrap().values.len(), 360);
}

#[tokio::test]
async fn extreme_values_keep_their_rollup_updatable_and_exact() {
    let store = MongoStore::new(&config()).await.unwrap();
    store.ensure_indexes().await.unwrap();
    let t0 = (plotq_ports::clock::now_ms() - 120_000) / 60_000 * 60_000;
    let values = [f64::MAX, -f64::MAX, 5e-324, 1e308, -1e308, 0.0];
    // One batch each into the same minute: every later one updates the first's rollup.
    for (i, &v) in values.iter().enumerate() {
        store
            .insert(&[sample("x", "latency_ms", v, t0 + i as i64)], None)
            .await
            .unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    let rollups = store
        .rollups(&query("x", t0, t0 + 59_999, false))
        .await
        .unwrap();
    assert_eq!(rollups.minutes.len(), 1, "the rollup reads back");
    let r = &rollups.minutes[0].1;
    assert_eq!((r.count, r.min, r.max), (6, -f64::MAX, f64::MAX));
}
