//! Window reads: both bounds included to the millisecond (samples are filtered exactly
//! after decoding, even on a server that compares dates at whole seconds), series kept
//! apart, the chunks read per window, and windows at the end of year 9999.

use crate::helpers::{query, sample, store};
use plotq_domain::Sample;
use plotq_ports::MetricStore;

#[tokio::test]
async fn window_queries_include_both_ends_and_are_per_series() {
    let store = store().await;
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
async fn windows_at_the_end_of_year_9999_are_read() {
    let store = store().await;
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

/// The store contract of label sets (`plotq_ports::contract`): sets kept apart, a
/// query's filter and split part of its MongoDB filter (`lb.<name>`), a minute's
/// rollups of several sets merged, and the samples per label value counted by an
/// aggregation.
#[tokio::test]
async fn label_sets_are_selected_counted_and_merged() {
    let store = store().await;
    plotq_ports::contract::label_sets_are_selected_counted_and_merged(&store, "labelled").await;
}

/// The store contract of summaries (`plotq_ports::contract`): OTLP histogram points
/// merged into the rollup documents (`u`, `e`) in the write of the samples, none as raw
/// chunks.
#[tokio::test]
async fn summaries_merge_into_the_rollups() {
    let store = store().await;
    plotq_ports::contract::summaries_merge_into_the_rollups(&store, "summarized").await;
}

/// The store contract of hour rollups (`plotq_ports::contract`): the second update
/// command of every write, its documents the merge of their minutes', a retried batch
/// counted once there too.
#[tokio::test]
async fn hours_are_the_merge_of_their_minutes() {
    let store = store().await;
    plotq_ports::contract::hours_are_the_merge_of_their_minutes(&store, "hourly").await;
}

/// The store contract of annotations (`plotq_ports::contract`): one document per service,
/// read by service and time, replaced by id.
#[tokio::test]
async fn annotations_are_kept_by_service_and_time() {
    let store = store().await;
    let prefix = format!("ann{}", plotq_ports::clock::now_ms() % 1_000_000);
    plotq_ports::contract::annotations_are_kept_by_service_and_time(&store, &prefix).await;
}
