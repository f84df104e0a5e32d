//! What a done (or failed) job says about itself: what it was drawn from (raw samples,
//! or minute rollups for long windows, windows past the raw retention or over the
//! sample bound), where its time went (its state, its event), the statistics each kind
//! carries, and the worker's metrics (seen by a recorder local to the test's thread).

use crate::helpers::{Harness, PATIENCE, job, job_over, outage};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use plotq_domain::wire::EventKind;
use plotq_domain::{DataSource, JobStatus, MetricName, PlotKind, Sample, ServiceName};
use plotq_ports::MetricStore;
use plotq_ports::clock::now_ms;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn long_windows_are_drawn_from_rollups_and_say_so() {
    let mut h = Harness::new();
    h.config.sources.rollup_after = Duration::from_secs(3 * 3600);
    // Six hours of one sample every 2 s (10,800 samples), whole minutes.
    let end = now_ms() / 60_000 * 60_000 - 60_000;
    let samples: Vec<Sample> = (0..10_800)
        .map(|i| Sample {
            service: ServiceName::parse("checkout").unwrap(),
            metric: MetricName::parse("latency_ms").unwrap(),
            value: 5.0 + (i % 97) as f64,
            timestamp_ms: end - i * 2_000,
            labels: plotq_domain::Labels::none(),
        })
        .collect();
    h.store.insert(&samples, None).await.unwrap();
    for kind in [
        PlotKind::Histogram,
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
    ] {
        let state = h.processed(&job_over("checkout", kind, "6h")).await;
        assert_eq!(state.status, JobStatus::Done, "{kind:?}: {:?}", state.error);
        assert_eq!(state.source, Some(DataSource::minute_rollups()), "{kind:?}");
        // One document a minute of the six hours, whatever the number of samples.
        assert!(
            (360..=362).contains(&state.documents_read.unwrap()),
            "{kind:?}: {:?}",
            state.documents_read
        );
        // Whole minutes: the rollups hold every sample of the window's minutes.
        assert!(
            (10_770..=10_800).contains(&state.n_samples.unwrap()),
            "{kind:?}: {:?}",
            state.n_samples
        );
    }
    let short = h
        .processed(&job_over("checkout", PlotKind::Histogram, "1h"))
        .await;
    assert_eq!(short.source, Some(DataSource::Exact));
    // Exactly the samples in the last hour.
    let exact = samples
        .iter()
        .filter(|s| s.timestamp_ms >= now_ms() - 3_600_000 - 5_000)
        .count() as u64;
    assert!(short.n_samples.unwrap().abs_diff(exact) <= 3, "{short:?}");
    // The ready event says what the plot was drawn from.
    let sources: Vec<Option<DataSource>> = h
        .events()
        .await
        .iter()
        .filter(|e| e.event == EventKind::PlotReady)
        .map(|e| e.source)
        .collect();
    assert_eq!(sources.len(), 4);
    assert!(
        sources[..3]
            .iter()
            .all(|s| *s == Some(DataSource::minute_rollups()))
    );
    assert_eq!(sources[3], Some(DataSource::Exact));
}

#[tokio::test]
async fn windows_past_the_raw_retention_or_over_the_sample_bound_use_rollups() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    // 200 samples in the last 21 s: a 1 h window is raw by default...
    let state = h
        .processed(&job_over("checkout", PlotKind::Histogram, "1h"))
        .await;
    assert_eq!(
        (state.source, state.n_samples),
        (Some(DataSource::Exact), Some(200))
    );
    // ...but not when it reaches past the raw retention,
    h.config.sources.raw_retention = Duration::from_secs(1800);
    let state = h
        .processed(&job_over("checkout", PlotKind::Histogram, "1h"))
        .await;
    assert_eq!(
        (state.source, state.n_samples),
        (Some(DataSource::minute_rollups()), Some(200))
    );
    // ...nor when it holds more samples than raw plots may read.
    h.config.sources.raw_retention = Duration::from_secs(48 * 3600);
    h.config.sources.raw_max_samples = 100;
    let state = h
        .processed(&job_over("checkout", PlotKind::Histogram, "1h"))
        .await;
    assert_eq!(state.source, Some(DataSource::minute_rollups()));
}

fn is_rounded(ms: f64) -> bool {
    ms == (ms * 100.0).round() / 100.0
}

#[tokio::test]
async fn a_done_job_says_where_its_time_went_in_its_state_and_event() {
    let (h, job) = Harness::checkout().await;
    let state = h.processed(&job).await;
    assert_eq!(state.status, JobStatus::Done);
    let t = state.timings.expect("a done job has timings");
    let stages = [t.query_ms, t.render_ms, t.encode_ms, t.store_ms]
        .map(|stage| stage.expect("a done job reached every stage"));
    let all: Vec<f64> = stages
        .iter()
        .copied()
        .chain([t.queue_wait_ms, t.total_ms])
        .collect();
    assert!(
        all.iter()
            .all(|ms| ms.is_finite() && *ms >= 0.0 && is_rounded(*ms)),
        "{t:?}"
    );
    assert!(
        t.total_ms >= stages.iter().sum::<f64>(),
        "the stages are parts of the total: {t:?}"
    );
    assert!(
        t.render_ms.unwrap() > 0.0 && t.encode_ms.unwrap() > 0.0,
        "{t:?}"
    );
    // The job was queued just now: its wait is short (and never negative).
    assert!(t.queue_wait_ms < PATIENCE.as_millis() as f64, "{t:?}");
    // `render_ms` (kept for older clients) is drawing plus encoding.
    let render_ms = state.render_ms.unwrap();
    assert!(
        (render_ms - (t.render_ms.unwrap() + t.encode_ms.unwrap())).abs() <= 0.011,
        "{render_ms} vs {t:?}"
    );
    // The ready event carries the same timings and statistics as the state.
    let ready = h.final_event(job.id).await;
    assert_eq!(ready.event, EventKind::PlotReady);
    assert_eq!(ready.timings, state.timings);
    assert_eq!(ready.stats, state.stats);
    // A histogram's statistics: the latency numbers, exact, and nothing per kind.
    let values: Vec<f64> = (0..200).map(|i| 5.0 + (i % 17) as f64).collect();
    let stats = state.stats.unwrap();
    let s = &stats[0];
    assert_eq!((s.service.as_str(), s.count), ("checkout", 200));
    assert_eq!((s.min, s.max), (5.0, 21.0));
    assert!((s.mean - values.iter().sum::<f64>() / 200.0).abs() < 1e-12);
    assert_eq!(
        (
            s.rate_per_s,
            s.peak_rate_per_s,
            s.codes.as_ref(),
            s.error_ratio
        ),
        (None, None, None, None)
    );
}

#[tokio::test]
async fn statistics_carry_what_each_kind_draws() {
    let h = Harness::new();
    // 600 latencies over the last minute (10 per second), and 100 status codes of which
    // 10 are 503 and 10 are 404.
    h.ingest_values("checkout", "latency_ms", 600, |i| 1.0 + i as f64)
        .await;
    h.ingest_values("checkout", "status_code", 100, |i| match i % 10 {
        0 => 503.0,
        1 => 404.0,
        _ => 200.0,
    })
    .await;
    let throughput = h
        .processed(&job_over("checkout", PlotKind::Throughput, "10m"))
        .await;
    let s = &throughput.stats.as_ref().unwrap()[0];
    assert_eq!(s.count, 600);
    // 600 samples over the 10-minute window; the minute's 10 s buckets hold 100 each.
    assert_eq!(s.rate_per_s, Some(1.0));
    let peak = s.peak_rate_per_s.unwrap();
    assert!((9.0..=10.0 + 1e-9).contains(&peak), "{peak}");
    assert_eq!((s.codes.as_ref(), s.error_ratio), (None, None));
    for kind in [PlotKind::StatusCodes, PlotKind::ErrorRate] {
        let state = h.processed(&job_over("checkout", kind, "10m")).await;
        assert_eq!(state.status, JobStatus::Done, "{kind:?}: {:?}", state.error);
        let s = &state.stats.as_ref().unwrap()[0];
        assert_eq!(s.count, 100);
        let codes = s.codes.as_ref().unwrap();
        assert_eq!(
            codes.iter().map(|(c, n)| (*c, *n)).collect::<Vec<_>>(),
            [(200, 80), (404, 10), (503, 10)],
            "{kind:?}"
        );
        assert_eq!(s.error_ratio, Some(0.1), "{kind:?}");
        assert_eq!(s.rate_per_s, None);
        let ready = h.final_event(state.id).await;
        assert_eq!(ready.stats, state.stats);
    }
}

#[tokio::test]
async fn a_failed_job_keeps_the_timings_of_the_stages_it_reached() {
    let h = Harness::new();
    let job = job("silent");
    let state = h.processed(&job).await;
    assert_eq!(state.status, JobStatus::Failed);
    let t = state.timings.expect("the attempt's timings");
    assert!(t.query_ms.is_some(), "{t:?}");
    assert_eq!((t.render_ms, t.encode_ms, t.store_ms), (None, None, None));
    assert!(t.total_ms >= t.query_ms.unwrap(), "{t:?}");
    assert_eq!(state.stats, None);
    let failed = h.final_event(job.id).await;
    assert_eq!(failed.event, EventKind::PlotFailed);
    assert_eq!(failed.timings, state.timings);
}

/// What a recorder saw, each metric under `name{label=value,…}` (labels sorted): a
/// counter's total, a gauge's value, a histogram's samples.
fn recorded(snapshotter: &Snapshotter) -> BTreeMap<String, Vec<f64>> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            let values = match value {
                DebugValue::Counter(total) => vec![total as f64],
                DebugValue::Gauge(value) => vec![value.into_inner()],
                DebugValue::Histogram(samples) => {
                    samples.into_iter().map(|v| v.into_inner()).collect()
                }
            };
            (name, values)
        })
        .collect()
}

/// The worker's metrics, seen by a recorder installed for this test's thread (the
/// test's runtime runs every task on it).
#[tokio::test(flavor = "current_thread")]
async fn jobs_are_counted_by_kind_and_outcome_with_their_stages() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (h, done) = Harness::checkout().await;
    h.process(done.encode(), false, &h.slots()).await;
    h.process(job("silent").encode(), false, &h.slots()).await;
    h.process(b"not a job".to_vec(), false, &h.slots()).await;
    h.store.next("points", 1, outage());
    h.process(job("checkout").encode(), false, &h.slots()).await;
    let recorded = recorded(&snapshotter);
    let get = |key: &str| recorded.get(key).cloned().unwrap_or_default();
    assert_eq!(get("plotq_jobs_total{kind=histogram,outcome=done}"), [1.0]);
    assert_eq!(
        get("plotq_jobs_total{kind=histogram,outcome=failed}"),
        [1.0]
    );
    assert_eq!(
        get("plotq_jobs_total{kind=histogram,outcome=retried}"),
        [1.0]
    );
    assert_eq!(get("plotq_job_retries_total"), [1.0]);
    assert_eq!(
        get("plotq_jobs_total{kind=unknown,outcome=dead_lettered}"),
        [1.0]
    );
    assert_eq!(get("plotq_job_dead_letters_total{reason=poison}"), [1.0]);
    // The done job's stages, in seconds, matching its state's timings.
    let t = h.state(done.id).await.unwrap().timings.unwrap();
    for (stage, ms) in t.stages() {
        let seen = get(&format!("plotq_job_stage_seconds{{stage={stage}}}"));
        assert_eq!(seen, [ms / 1000.0], "{stage}");
    }
    assert!(get("plotq_store_documents_read_total")[0] >= 1.0);
}
