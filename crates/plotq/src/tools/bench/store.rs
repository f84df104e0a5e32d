//! `plotq bench store`: the storage benchmark. Backfills `--hours` of one series at
//! `--per-minute` samples (lognormal latencies, the generator's) straight into the
//! in-memory store, and `--days` before them as minute rollups only (each minute the
//! rollup of as many of the generator's samples, written as the store's summaries are,
//! so its hour rollups are made by the store's own write path), then times plots from
//! request to `plot.ready` through a real worker over the in-memory ports (queue, cache,
//! event bus): histogram and latency over time for each `--windows`. Prints one JSON
//! line: ingest rate, stored bytes per sample, and per plot the source, the documents
//! (chunks or rollups) read (as its job state says), p50/max milliseconds and the
//! worker's extra peak RSS while drawing it.

use crate::config::tools::BenchStoreArgs;
use crate::tools::generator::Generator;
use plotq_domain::rollup::{Rollup, SeriesRollup};
use plotq_domain::wire::{EventId, EventKind, JobMessage};
use plotq_domain::{
    JobId, JobState, Labels, MetricName, PlotKind, PlotSpec, ServiceName, TimeRange, Window,
};
use plotq_ports::memory::{
    MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore, MemoryStoreConfig,
};
use plotq_ports::{EventBus, JobQueue, MetricStore, PlotCache};
use plotq_worker::{SourcePolicy, WorkerConfig, WorkerPorts};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Resident and peak resident memory of this process, in bytes (Linux).
fn rss() -> (u64, u64) {
    let [rss, peak] = super::memory_fields("self", ["VmRSS:", "VmHWM:"]);
    (rss, peak)
}

/// Resets the peak-RSS mark (`VmHWM`) to the current RSS (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn run(args: &BenchStoreArgs) -> anyhow::Result<()> {
    super::print_line(bench(args))
}

async fn bench(args: &BenchStoreArgs) -> anyhow::Result<serde_json::Value> {
    let store = Arc::new(MemoryStore::new(MemoryStoreConfig {
        retention: Duration::from_secs(48 * 3600),
        rollup_retention: Duration::from_secs(90 * 86_400),
        max_bytes: args.max_bytes,
        ..MemoryStoreConfig::default()
    }));
    let service = ServiceName::parse("bench").expect("valid name");
    let mut generator = Generator::new(&[(service.clone(), 40.0)], 0x5eed);
    let now = plotq_ports::clock::now_ms();
    let minutes = (args.hours * 60.0).round() as i64;
    let per_batch = 10_000usize;
    let batches_per_minute = (args.per_minute / per_batch).max(1);
    let started = Instant::now();
    let mut ingested = 0u64;
    for m in (0..minutes).rev() {
        let minute_end = now - m * 60_000;
        for b in 0..batches_per_minute {
            let span = 60_000 / batches_per_minute as i64;
            let at = minute_end - (batches_per_minute - 1 - b) as i64 * span;
            let samples = generator.latencies(at, span, per_batch);
            ingested += samples.len() as u64;
            store.insert(&samples, None).await?;
        }
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let usage = store.usage().expect("the memory store reports usage");
    let history =
        backfill_rollups(store.as_ref(), &mut generator, args, now - minutes * 60_000).await?;

    let plots = time_plots(&store, &service, args, SourcePolicy::default()).await?;
    // The same long windows read by the minute, as before hour rollups existed.
    let minutes_only = SourcePolicy {
        hourly_after: Duration::MAX,
        ..SourcePolicy::default()
    };
    let long: Vec<String> = args
        .windows
        .iter()
        .filter(|w| {
            Window::parse(w).is_ok_and(|w| {
                SourcePolicy::default().resolution(w.millis()) == plotq_ports::Resolution::Hour
            })
        })
        .cloned()
        .collect();
    let before = BenchStoreArgs {
        windows: long,
        ..args.clone()
    };
    let by_minute = time_plots(&store, &service, &before, minutes_only).await?;
    Ok(serde_json::json!({
        "hours": args.hours,
        "per_minute": args.per_minute,
        "samples": ingested,
        "ingest_secs": (ingest_secs * 10.0).round() / 10.0,
        "ingest_per_sec": (ingested as f64 / ingest_secs).round(),
        "stored_bytes": usage.bytes,
        "bytes_per_sample": (usage.bytes as f64 / ingested as f64 * 100.0).round() / 100.0,
        "rollup_history": history,
        "plots": plots,
        "plots_from_minute_rollups": by_minute,
    }))
}

/// Times `args.windows` × (histogram, latency over time) from request to `plot.ready`
/// through a worker reading by `sources`.
async fn time_plots(
    store: &Arc<MemoryStore>,
    service: &ServiceName,
    args: &BenchStoreArgs,
    sources: SourcePolicy,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let store = store.clone();
    let queue = Arc::new(MemoryQueue::new(1_000));
    let events = Arc::new(MemoryEventBus::new(10_000));
    let cache = Arc::new(MemoryCache::default());
    let ports = WorkerPorts {
        store: store.clone(),
        queue: queue.clone(),
        cache: cache.clone(),
        events: events.clone(),
    };
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        prefetch: 1,
        sources,
        render_deadline: Duration::from_secs(120),
        ..WorkerConfig::default()
    };
    let worker = tokio::spawn(plotq_worker::run_until_stopped(ports, config, stop.clone()));
    let mut plots = Vec::new();
    for window in &args.windows {
        for kind in [PlotKind::Histogram, PlotKind::LatencyTimeseries] {
            let mut times = Vec::new();
            let (mut docs, mut peak, mut source) = (0, 0, serde_json::Value::Null);
            for rep in 0..args.reps {
                let mut spec = PlotSpec::new(kind, service.clone());
                spec.range = TimeRange::Last(Window::parse(window).map_err(anyhow::Error::msg)?);
                spec.width = 1000 + rep as u32; // distinct jobs, nothing cached
                let state = JobState::queued(
                    JobId::issued_at(plotq_ports::clock::now_ms()),
                    spec,
                    plotq_ports::clock::now_ms(),
                );
                let after = events.last_id().await?.unwrap_or(EventId::ZERO);
                reset_peak();
                let (rss_before, _) = rss();
                let t = Instant::now();
                queue.publish(&JobMessage::new(&state)).await?;
                let ready = wait_final(events.as_ref(), after, state.id).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                anyhow::ensure!(ready == EventKind::PlotReady, "{window} {kind:?} failed");
                peak = peak.max(rss().1.saturating_sub(rss_before));
                let done = cache.get_state(state.id).await?.expect("a final state");
                docs = done.documents_read.unwrap_or_default();
                source = serde_json::json!({
                    "source": done.source,
                    "n_samples": done.n_samples,
                });
            }
            times.sort_by(f64::total_cmp);
            plots.push(serde_json::json!({
                "window": window,
                "kind": kind.as_str(),
                "docs_read": docs,
                "p50_ms": (times[times.len() / 2] * 10.0).round() / 10.0,
                "max_ms": (times[times.len() - 1] * 10.0).round() / 10.0,
                "extra_peak_rss_mb": peak / (1 << 20),
                "drawn_from": source,
            }));
        }
    }
    stop.cancel();
    let _ = worker.await;
    Ok(plots)
}

/// Writes minute rollups from `--days` ago to `until_ms` (where the raw hours begin), each the rollup
/// of `--per-minute` of the generator's latencies (16 such minutes, repeated: drawing
/// billions of samples would time the generator, not the store), a day a write. Returns
/// what was written and what the store holds after.
async fn backfill_rollups(
    store: &MemoryStore,
    generator: &mut Generator,
    args: &BenchStoreArgs,
    until_ms: i64,
) -> anyhow::Result<serde_json::Value> {
    let until_ms = until_ms.div_euclid(60_000) * 60_000;
    let templates: Vec<Rollup> = (0..16)
        .map(|_| {
            let values: Vec<f64> = generator
                .latencies(until_ms, 60_000, args.per_minute)
                .iter()
                .map(|s| s.value)
                .collect();
            Rollup::of(&values)
        })
        .collect();
    let service = ServiceName::parse("bench").expect("valid name");
    let metric = MetricName::parse("latency_ms").expect("valid name");
    let started = Instant::now();
    let (mut minutes, mut samples) = (0u64, 0u64);
    let before = store.usage().map_or(0, |u| u.bytes);
    // The history ends where the raw hours begin, and starts `--days` before now.
    let total = (i64::from(args.days) * 1_440 - (args.hours * 60.0).round() as i64).max(0) as u64;
    for day in 0..total.div_ceil(1_440) as i64 {
        let summaries: Vec<SeriesRollup> = (day * 1_440..((day + 1) * 1_440).min(total as i64))
            .map(|m| {
                let minute_ms = until_ms - (m + 1) * 60_000;
                SeriesRollup {
                    service: service.clone(),
                    metric: metric.clone(),
                    labels: Labels::none(),
                    minute_ms,
                    rollup: templates[(minute_ms / 60_000).rem_euclid(16) as usize].clone(),
                }
            })
            .collect();
        minutes += summaries.len() as u64;
        samples += summaries.iter().map(|s| s.rollup.count).sum::<u64>();
        store.write(&[], &summaries, None).await?;
    }
    let bytes = store.usage().map_or(0, |u| u.bytes) - before;
    Ok(serde_json::json!({
        "days": args.days,
        "minutes": minutes,
        "samples": samples,
        "secs": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "stored_bytes": bytes,
        "bytes_per_minute": bytes / minutes.max(1),
    }))
}

/// Waits for the final event of job `id` after `after`.
async fn wait_final(
    events: &dyn EventBus,
    mut after: EventId,
    id: JobId,
) -> anyhow::Result<EventKind> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        for e in events
            .read_after(Some(after), Duration::from_secs(1))
            .await?
        {
            after = e.id;
            if e.event.id == id
                && matches!(e.event.event, EventKind::PlotReady | EventKind::PlotFailed)
            {
                return Ok(e.event.event);
            }
        }
    }
    anyhow::bail!("job {id} did not finish within 5 minutes")
}
