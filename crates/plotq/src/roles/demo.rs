//! The standalone demo producer: realistic latency samples for a few services, so a
//! fresh `cargo run` has something to plot (the `generator` that `plotq loadgen` uses:
//! lognormal latencies with slow requests, status codes with error waves). The last ten
//! minutes are back-filled at start.

use crate::tools::generator::Generator;
use plotq_api::store_samples;
use plotq_domain::ServiceName;
use plotq_ports::clock::now_ms;
use plotq_ports::{MetricStore, ViewRegistry};
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
/// Requests per service per tick (≈ 80 requests/s per service).
const PER_TICK: usize = 20;

/// Back-fills ten minutes, then writes a batch every tick until `shutdown`; the hours
/// it writes are remembered for `keep` (`plotq_api::reuse_horizon`).
pub async fn run(
    store: Arc<dyn MetricStore>,
    views: Arc<dyn ViewRegistry>,
    keep: Duration,
    shutdown: CancellationToken,
) {
    let services: Vec<(ServiceName, f64)> = SERVICES
        .iter()
        .map(|(name, median)| (ServiceName::parse(name).expect("valid service"), *median))
        .collect();
    let mut generator = Generator::new(&services, 0x5eed);
    let tick_ms = TICK.as_millis() as i64;
    let now = now_ms();
    let ticks = (600_000 / TICK.as_millis() as i64) as usize;
    for t in (0..ticks).rev() {
        let samples = generator.requests(now - t as i64 * tick_ms, tick_ms, PER_TICK);
        if let Err(e) = store_samples(
            store.as_ref(),
            views.as_ref(),
            (&samples, &[]),
            now,
            keep,
            None,
        )
        .await
        {
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
        let samples = generator.requests(now, tick_ms, PER_TICK);
        if let Err(e) = store_samples(
            store.as_ref(),
            views.as_ref(),
            (&samples, &[]),
            now,
            keep,
            None,
        )
        .await
        {
            tracing::warn!(error = %e, "demo producer write failed");
        }
    }
}
