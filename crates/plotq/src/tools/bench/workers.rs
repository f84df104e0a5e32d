//! `plotq bench workers`: worker scaling in standalone. Fills the in-memory store with
//! `--services` services' requests (the generator's latencies and status codes, the last
//! `--minutes`), then for each count of `--workers` pre-fills an in-memory queue with
//! `--jobs` distinct renders (every kind but correlation in turn, each at its own width,
//! so none is shared or cached) and times that many workers draining it, over the same
//! store (each worker rendering `--prefetch` jobs at once); prints one JSON line with
//! each count's jobs per second and its speedup over the first, side by side in one
//! run.

use crate::config::tools::BenchWorkersArgs;
use crate::tools::generator::Generator;
use plotq_domain::wire::{EventId, EventKind, JobMessage};
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName, TimeRange, Window};
use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore};
use plotq_ports::{EventBus, JobQueue, MetricStore};
use plotq_worker::{WorkerConfig, WorkerPorts};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub fn run(args: &BenchWorkersArgs) -> anyhow::Result<()> {
    super::print_line(bench(args))
}

async fn bench(args: &BenchWorkersArgs) -> anyhow::Result<serde_json::Value> {
    let store = Arc::new(MemoryStore::default());
    let services: Vec<ServiceName> = (0..args.services)
        .map(|i| ServiceName::parse(&format!("svc-{i}")).expect("valid name"))
        .collect();
    let weights: Vec<(ServiceName, f64)> = services.iter().map(|s| (s.clone(), 40.0)).collect();
    let mut generator = Generator::new(&weights, 0x5eed);
    let now = plotq_ports::clock::now_ms();
    for m in 0..i64::from(args.minutes) {
        let at = now - m * 60_000;
        let samples = generator.requests(at, 60_000, args.per_minute);
        store.insert(&samples, None).await?;
    }
    let samples = store.usage().map_or(0, |u| u.samples);
    let mut rounds = Vec::new();
    let mut base: Option<f64> = None;
    for &workers in &args.workers {
        let cpu_before = super::cpu_seconds("self")?;
        let (secs, failed) = drain(&store, &services, args, workers).await?;
        let cpu_s = super::cpu_seconds("self")? - cpu_before;
        let per_sec = args.jobs as f64 / secs;
        let speedup = base.map_or(1.0, |b| per_sec / b);
        base.get_or_insert(per_sec);
        rounds.push(serde_json::json!({
            "workers": workers,
            "jobs": args.jobs,
            "failed": failed,
            "secs": (secs * 1000.0).round() / 1000.0,
            "jobs_per_sec": (per_sec * 10.0).round() / 10.0,
            "speedup": (speedup * 100.0).round() / 100.0,
            // How busy the cores were (of this machine's), and what a job cost in CPU:
            // a speedup short of the count is idle cores or costlier jobs.
            "cores_busy": (cpu_s / secs * 100.0).round() / 100.0,
            "cpu_ms_per_job": (cpu_s * 1e3 / args.jobs as f64 * 100.0).round() / 100.0,
        }));
    }
    Ok(serde_json::json!({
        "services": args.services,
        "minutes": args.minutes,
        "samples": samples,
        "window": args.window,
        "prefetch": args.prefetch,
        "rounds": rounds,
    }))
}

/// Times `workers` workers draining `args.jobs` distinct renders queued before they
/// start; seconds from the start to the last final event, and how many failed.
async fn drain(
    store: &Arc<MemoryStore>,
    services: &[ServiceName],
    args: &BenchWorkersArgs,
    workers: usize,
) -> anyhow::Result<(f64, usize)> {
    let queue = Arc::new(MemoryQueue::new(args.jobs + 16));
    let events = Arc::new(MemoryEventBus::new(args.jobs * 4 + 64));
    let ports = WorkerPorts {
        store: store.clone(),
        queue: queue.clone(),
        cache: Arc::new(MemoryCache::default()),
        events: events.clone(),
    };
    let kinds: Vec<PlotKind> = PlotKind::ALL
        .iter()
        .copied()
        .filter(|k| *k != PlotKind::Correlation)
        .collect();
    let window = Window::parse(&args.window).map_err(anyhow::Error::msg)?;
    for i in 0..args.jobs {
        let kind = kinds[i % kinds.len()];
        let mut spec = PlotSpec::new(kind, services[i % services.len()].clone());
        spec.range = TimeRange::Last(window);
        spec.width = 800 + (i % 1_000) as u32; // distinct renders
        let state = JobState::queued(
            JobId::issued_at(plotq_ports::clock::now_ms()),
            spec,
            plotq_ports::clock::now_ms(),
        );
        queue.publish(&JobMessage::new(&state)).await?;
    }
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        prefetch: args.prefetch,
        render_deadline: Duration::from_secs(120),
        ..WorkerConfig::default()
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(plotq_worker::run_until_stopped(
                ports.clone(),
                config.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let (mut finished, mut failed) = (0usize, 0usize);
    let mut after = EventId::ZERO;
    let deadline = Instant::now() + Duration::from_secs(600);
    while finished < args.jobs {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the jobs did not finish in 10 minutes"
        );
        for e in events
            .read_after(Some(after), Duration::from_millis(200))
            .await?
        {
            after = e.id;
            match e.event.event {
                EventKind::PlotReady => finished += 1,
                EventKind::PlotFailed => {
                    finished += 1;
                    failed += 1;
                }
                _ => {}
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok((secs, failed))
}
