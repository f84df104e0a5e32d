//! The standalone demo producer: realistic latency samples for a few services, so a
//! fresh `cargo run` has something to plot. Lognormal latencies with occasional spikes;
//! the last ten minutes are back-filled at start.

use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_ports::MetricStore;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// (service, median latency in ms) of the demo services.
const SERVICES: &[(&str, f64)] = &[
    ("checkout", 45.0),
    ("payments", 120.0),
    ("search", 18.0),
    ("auth", 8.0),
];
const TICK: Duration = Duration::from_millis(250);
/// Samples per service per tick (≈ 80 requests/s per service).
const PER_TICK: usize = 20;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn batch(rng: &mut StdRng, at_ms: i64) -> Vec<Sample> {
    let metric = MetricName::parse("latency_ms").expect("valid metric");
    let mut out = Vec::with_capacity(SERVICES.len() * PER_TICK);
    for (name, median) in SERVICES {
        let service = ServiceName::parse(name).expect("valid service");
        let dist = LogNormal::new(median.ln(), 0.45).expect("valid lognormal");
        for i in 0..PER_TICK {
            let mut value: f64 = dist.sample(rng);
            // One request in a hundred hits a slow path (GC pause, cold cache, retry).
            if rand::Rng::random_bool(rng, 0.01) {
                value *= rand::Rng::random_range(rng, 4.0..12.0);
            }
            out.push(Sample {
                service: service.clone(),
                metric: metric.clone(),
                value: (value * 100.0).round() / 100.0,
                timestamp_ms: at_ms - (i as i64 * TICK.as_millis() as i64 / PER_TICK as i64),
            });
        }
    }
    out
}

/// Back-fills ten minutes, then writes a batch every tick until `shutdown`.
pub async fn run(store: Arc<dyn MetricStore>, shutdown: CancellationToken) {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let now = now_ms();
    let ticks = (600_000 / TICK.as_millis() as i64) as usize;
    for t in (0..ticks).rev() {
        let samples = batch(&mut rng, now - t as i64 * TICK.as_millis() as i64);
        if let Err(e) = store.insert(&samples).await {
            tracing::warn!(error = %e, "demo back-fill failed");
            break;
        }
    }
    tracing::info!(services = SERVICES.len(), "demo producer running");
    let mut interval = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        if let Err(e) = store.insert(&batch(&mut rng, now_ms())).await {
            tracing::warn!(error = %e, "demo producer write failed");
        }
    }
}
