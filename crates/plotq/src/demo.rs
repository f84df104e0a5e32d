//! The standalone demo producer: realistic latency samples for a few services, so a
//! fresh `cargo run` has something to plot: lognormal latencies with occasional spikes,
//! and status codes (one service's error rate rises and falls). The last ten minutes are
//! back-filled at start.

use plotq_api::store_samples;
use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_ports::clock::now_ms;
use plotq_ports::{MetricStore, ViewRegistry};
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

/// A response status: mostly 200, some redirects and client errors, and a service
/// whose error rate rises and falls over a few minutes.
fn status(rng: &mut StdRng, service_index: usize, at_ms: i64) -> f64 {
    let wave = ((at_ms / 1000) as f64 / 180.0 + service_index as f64)
        .sin()
        .max(0.0);
    let p5xx = if service_index == 1 {
        0.01 + 0.08 * wave
    } else {
        0.005
    };
    let r: f64 = rand::Rng::random(rng);
    if r < p5xx {
        if r < p5xx / 3.0 { 500.0 } else { 503.0 }
    } else if r < p5xx + 0.04 {
        404.0
    } else if r < p5xx + 0.06 {
        301.0
    } else if r < p5xx + 0.12 {
        201.0
    } else {
        200.0
    }
}

fn batch(rng: &mut StdRng, at_ms: i64) -> Vec<Sample> {
    let metric = MetricName::parse("latency_ms").expect("valid metric");
    let status_metric = MetricName::parse("status_code").expect("valid metric");
    let mut out = Vec::with_capacity(SERVICES.len() * PER_TICK * 2);
    for (index, (name, median)) in SERVICES.iter().enumerate() {
        let service = ServiceName::parse(name).expect("valid service");
        let dist = LogNormal::new(median.ln(), 0.45).expect("valid lognormal");
        for i in 0..PER_TICK {
            let mut value: f64 = dist.sample(rng);
            // One request in a hundred hits a slow path (GC pause, cold cache, retry).
            if rand::Rng::random_bool(rng, 0.01) {
                value *= rand::Rng::random_range(rng, 2.5..6.0);
            }
            let timestamp_ms = at_ms - (i as i64 * TICK.as_millis() as i64 / PER_TICK as i64);
            out.push(Sample {
                service: service.clone(),
                metric: metric.clone(),
                value: (value * 100.0).round() / 100.0,
                timestamp_ms,
            });
            out.push(Sample {
                service: service.clone(),
                metric: status_metric.clone(),
                value: status(rng, index, timestamp_ms),
                timestamp_ms,
            });
        }
    }
    out
}

/// Back-fills ten minutes, then writes a batch every tick until `shutdown`.
pub async fn run(
    store: Arc<dyn MetricStore>,
    views: Arc<dyn ViewRegistry>,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let now = now_ms();
    let ticks = (600_000 / TICK.as_millis() as i64) as usize;
    for t in (0..ticks).rev() {
        let samples = batch(&mut rng, now - t as i64 * TICK.as_millis() as i64);
        if let Err(e) = store_samples(store.as_ref(), views.as_ref(), &samples, now).await {
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
        let now = now_ms();
        if let Err(e) =
            store_samples(store.as_ref(), views.as_ref(), &batch(&mut rng, now), now).await
        {
            tracing::warn!(error = %e, "demo producer write failed");
        }
    }
}
