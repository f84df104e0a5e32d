//! The window read's tests: exact numbers from raw samples, rollups by the minute and
//! the hour, and what a correlation read from rollups is drawn by.

use super::*;
use crate::memory::MemoryStore;
use plotq_domain::{MetricName, PlotKind, Sample, ServiceName, TimeRange, Window};

fn spec(kind: PlotKind, service: &str, window: &str) -> PlotSpec {
    let mut spec = PlotSpec::new(kind, ServiceName::parse(service).unwrap());
    spec.range = TimeRange::Last(Window::parse(window).unwrap());
    spec
}

async fn store_with(metric: &str, values: &[(i64, f64)]) -> MemoryStore {
    let store = MemoryStore::default();
    let samples: Vec<Sample> = values
        .iter()
        .map(|&(timestamp_ms, value)| Sample {
            service: ServiceName::parse("checkout").unwrap(),
            metric: MetricName::parse(metric).unwrap(),
            value,
            timestamp_ms,
            labels: plotq_domain::Labels::none(),
        })
        .collect();
    store.insert(&samples, None).await.unwrap();
    store
}

#[test]
fn correlations_from_rollups_are_drawn_in_whole_minutes() {
    let mut fine = spec(PlotKind::Correlation, "checkout", "1h");
    fine.correlation.as_mut().unwrap().bucket = Window::parse("10s").unwrap();
    let rollups = DataSource::minute_rollups();
    let drawn = as_read(&fine, &rollups);
    assert_eq!(drawn.correlation.as_ref().unwrap().bucket.secs(), 60);
    // Raw samples keep the bucket asked for, and so do coarser buckets.
    assert_eq!(as_read(&fine, &DataSource::Exact).as_ref(), &fine);
    let coarse = spec(PlotKind::Correlation, "checkout", "1h");
    assert!(matches!(as_read(&coarse, &rollups), Cow::Borrowed(_)));
}

#[tokio::test]
async fn long_windows_read_one_document_an_hour() {
    let now = now_ms();
    let hour = Resolution::Hour.millis();
    // 30 days, ten samples every hour (in its first minutes), each hour's values 1..=10.
    let samples: Vec<(i64, f64)> = (1..=30 * 24)
        .flat_map(|h| {
            let start = Resolution::Hour.start_of(now) - h * hour;
            (0..10).map(move |i| (start + i * 6_000, (i + 1) as f64))
        })
        .collect();
    let store = store_with("latency_ms", &samples).await;
    let policy = SourcePolicy::default();
    for (window, resolution) in [("30d", 3_600), ("7d", 3_600), ("24h", 60)] {
        let s = spec(PlotKind::Throughput, "checkout", window);
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &policy, &s, from, until).await.unwrap();
        let DataSource::Rollups {
            resolution_secs, ..
        } = read.source
        else {
            panic!("{window}: {:?}", read.source);
        };
        assert_eq!(resolution_secs, resolution, "{window}");
        // Whole periods: the hours overlapping the window, each read once.
        let periods = (until - from) / (i64::from(resolution) * 1000) + 1;
        let hours = (until - from) / hour + 1;
        assert!(
            read.documents as i64 <= periods.min(hours * 10),
            "{window}: {}",
            read.documents
        );
        let st = &read.stats[0];
        assert_eq!((st.min, st.max), (1.0, 10.0), "{window}");
        let whole = (until - from) / hour;
        assert!(
            ((whole - 1) * 10..=(whole + 1) * 10).contains(&(st.count as i64)),
            "{window}"
        );
        assert!((st.mean - 5.5).abs() < 1e-9, "{window}: {}", st.mean);
        // The stand-ins lie within the hours read, and the rates count them all.
        let drawn = &read.series[0];
        assert!(
            drawn
                .timestamps_ms
                .iter()
                .all(|t| *t >= Resolution::Hour.start_of(from))
        );
        assert!(st.rate_per_s.unwrap() > 0.0 && st.peak_rate_per_s.unwrap() > 0.0);
    }
    // A correlation's bucket is cut in whole hours from hour rollups.
    let mut c = spec(PlotKind::Correlation, "checkout", "30d");
    c.correlation.as_mut().unwrap().bucket = Window::parse("90m").unwrap();
    let hourly = DataSource::Rollups {
        resolution_secs: 3_600,
        relative_error: RELATIVE_ACCURACY,
    };
    let drawn = as_read(&c, &hourly);
    assert_eq!(drawn.correlation.as_ref().unwrap().bucket.secs(), 7_200);
    // The policy never reads hours for windows of 60 h or less.
    let eager = SourcePolicy {
        hourly_after: Duration::from_secs(3_600),
        ..SourcePolicy::default()
    };
    assert_eq!(eager.resolution(60 * hour), Resolution::Minute);
    assert_eq!(eager.resolution(60 * hour + 1), Resolution::Hour);
    assert_eq!(
        SourcePolicy::default().resolution(72 * hour),
        Resolution::Minute
    );
    assert_eq!(
        SourcePolicy::default().resolution(72 * hour + 1),
        Resolution::Hour
    );
}

#[tokio::test]
async fn raw_windows_give_exact_numbers_per_kind() {
    let now = now_ms();
    // 600 latencies over the last minute: 1..=600 ms.
    let latencies: Vec<(i64, f64)> = (0..600)
        .map(|i| (now - 60_000 + i * 100, (i + 1) as f64))
        .collect();
    let store = store_with("latency_ms", &latencies).await;
    let policy = SourcePolicy::default();
    let s = spec(PlotKind::Histogram, "checkout", "10m");
    let (from, until) = s.range.resolve(now);
    let read = read_window(&store, &policy, &s, from, until).await.unwrap();
    assert_eq!((read.source, read.samples), (DataSource::Exact, 600));
    assert_eq!(
        read.series[0].timestamps_ms.len(),
        0,
        "a histogram needs no time"
    );
    let st = &read.stats[0];
    assert_eq!(
        (st.count, st.min, st.max, st.mean),
        (600, 1.0, 600.0, 300.5)
    );
    assert_eq!((st.rate_per_s, st.codes.as_ref()), (None, None));
    // Throughput: 600 samples over a 10-minute window is 1/s on average; the
    // minute's 10 s buckets hold 100 samples each: 10/s.
    let t = spec(PlotKind::Throughput, "checkout", "10m");
    let read = read_window(&store, &policy, &t, from, until).await.unwrap();
    let st = &read.stats[0];
    assert_eq!(st.rate_per_s, Some(1.0));
    assert!((st.peak_rate_per_s.unwrap() - 10.0).abs() < 1e-9, "{st:?}");
    assert_eq!(read.series[0].timestamps_ms.len(), 600);
}

#[tokio::test]
async fn large_windows_give_the_same_numbers_off_the_reactor() {
    let now = now_ms();
    let n = STATS_ON_THE_REACTOR as i64 + 20_000;
    let latencies: Vec<(i64, f64)> = (0..n)
        .map(|i| (now - 500_000 + i * 4, (i % 1_000) as f64))
        .collect();
    let store = store_with("latency_ms", &latencies).await;
    let s = spec(PlotKind::Histogram, "checkout", "10m");
    let (from, until) = s.range.resolve(now);
    let read = read_window(&store, &SourcePolicy::default(), &s, from, until)
        .await
        .unwrap();
    assert_eq!((read.source, read.samples), (DataSource::Exact, n as u64));
    assert_eq!(
        read.series[0].values.len(),
        n as usize,
        "the series come back"
    );
    let st = &read.stats[0];
    assert_eq!((st.count, st.min, st.max), (n as u64, 0.0, 999.0));
}

#[tokio::test]
async fn status_kinds_count_codes_and_errors() {
    let now = now_ms();
    let codes: Vec<(i64, f64)> = (0..100)
        .map(|i| {
            let code = match i % 10 {
                0 => 503.0,
                1 => 404.0,
                _ => 200.0,
            };
            (now - 30_000 + i * 100, code)
        })
        .collect();
    let store = store_with("status_code", &codes).await;
    let policy = SourcePolicy::default();
    for kind in [PlotKind::StatusCodes, PlotKind::ErrorRate] {
        let s = spec(kind, "checkout", "10m");
        let (from, until) = s.range.resolve(now);
        let read = read_window(&store, &policy, &s, from, until).await.unwrap();
        let st = &read.stats[0];
        assert_eq!(
            st.codes.as_ref().unwrap(),
            &std::collections::BTreeMap::from([(200, 80), (404, 10), (503, 10)])
        );
        assert_eq!(st.error_ratio, Some(0.1), "{kind:?}");
        assert_eq!(st.rate_per_s, None);
    }
    // From rollups (a window over the rollup threshold): the same counts, exactly.
    let policy = SourcePolicy {
        rollup_after: Duration::from_secs(60),
        ..SourcePolicy::default()
    };
    let s = spec(PlotKind::StatusCodes, "checkout", "10m");
    let (from, until) = s.range.resolve(now);
    let read = read_window(&store, &policy, &s, from, until).await.unwrap();
    assert_eq!(read.source, DataSource::minute_rollups());
    let st = &read.stats[0];
    assert_eq!(st.count, 100);
    assert_eq!(st.codes.as_ref().unwrap()[&200], 80);
    assert_eq!(st.error_ratio, Some(0.1));
}

#[tokio::test]
async fn rollup_windows_keep_exact_counts_and_extremes() {
    let now = now_ms();
    let latencies: Vec<(i64, f64)> = (0..1_000)
        .map(|i| (now - 120_000 + i * 100, 1.0 + (i % 100) as f64))
        .collect();
    let store = store_with("latency_ms", &latencies).await;
    let policy = SourcePolicy {
        rollup_after: Duration::from_secs(60),
        rollup_budget: 100,
        ..SourcePolicy::default()
    };
    let s = spec(PlotKind::Throughput, "checkout", "10m");
    let (from, until) = s.range.resolve(now);
    let read = read_window(&store, &policy, &s, from, until).await.unwrap();
    assert_eq!(read.source, DataSource::minute_rollups());
    assert_eq!(read.samples, 1_000);
    let st = &read.stats[0];
    assert_eq!((st.count, st.min, st.max), (1_000, 1.0, 100.0));
    assert!((st.mean - 50.5).abs() < 1e-9);
    // At most about the budget of stand-ins, each standing for ten samples.
    assert!(read.series[0].values.len() <= 110);
    assert_eq!(read.series[0].weight, 10.0);
    assert!(st.rate_per_s.unwrap() > 0.0 && st.peak_rate_per_s.unwrap() > 0.0);
    // A service without samples has no stats, and the read says it is empty.
    let ghost = spec(PlotKind::Histogram, "ghost", "10m");
    let read = read_window(&store, &policy, &ghost, from, until)
        .await
        .unwrap();
    assert!(read.is_empty() && read.stats.is_empty());
}
