//! Minute rollups: merged across batches into one document per series and minute, a
//! batch with an id stored and counted once however often it is retried, and extreme
//! values that keep their rollup updatable and exact.

use crate::helpers::{query, sample, store};
use plotq_domain::Sample;
use plotq_domain::rollup::Rollup;
use plotq_ports::MetricStore;
use plotq_ports::SeriesQuery;

#[tokio::test]
async fn rollups_merge_across_batches_per_series_and_minute() {
    let store = store().await;
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
async fn a_batch_with_an_id_is_stored_and_counted_once() {
    let store = store().await;
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
    let store = store().await;
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
