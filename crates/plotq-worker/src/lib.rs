//! The rendering worker: consumes plot jobs and turns each into a cached PNG and a
//! `plot.ready` (or `plot.failed`) event.
//!
//! Order of effects for one job, which is what makes a crash at any point safe:
//! state `rendering` → query samples → render (on the blocking pool, under a deadline) →
//! PNG into the cache with a TTL → state `done` → event published → **ack**. A job is
//! acked only after all of that succeeded; a crash before the ack means redelivery, and
//! re-running a job is harmless (same key, same data window, same bytes).
//!
//! Failures are sorted once, in `process`: permanent ones (no data, invalid spec) end
//! the job `failed` at once; transient ones (a dependency down) are retried through the
//! queue's backoff tiers, and after `max_attempts` the job ends `failed` with the last
//! error and its message goes to the dead-letter queue. Undecodable messages (poison)
//! go straight to the dead-letter queue. This crate knows ports, not technologies.

use plotq_domain::wire::{EventKind, JobMessage, PlotEvent};
use plotq_domain::{JobState, JobStatus};
use plotq_ports::{Delivery, EventBus, JobQueue, MetricStore, PlotCache, PortError};
use plotq_render::{PlotData, RenderError, SeriesData};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unacknowledged jobs held at once; also how many render concurrently.
    pub prefetch: u16,
    /// How long a PNG stays in the cache.
    pub png_ttl: Duration,
    /// How long a job state stays in the cache.
    pub state_ttl: Duration,
    /// Longest one render may take before the job is failed.
    pub render_deadline: Duration,
    /// Pause before giving a job back to the queue when even scheduling its retry failed;
    /// also the bound of the random jitter added before each scheduled retry.
    pub retry_pause: Duration,
    /// Attempts (first try included) before a transiently failing job is dead-lettered.
    pub max_attempts: u32,
    /// On shutdown, how long in-flight jobs may take before they are abandoned (and
    /// redelivered to another worker by the broker).
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            prefetch: 2,
            png_ttl: Duration::from_secs(600),
            state_ttl: Duration::from_secs(3600),
            render_deadline: Duration::from_secs(30),
            retry_pause: Duration::from_secs(1),
            max_attempts: 5,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The ports a worker uses.
#[derive(Clone)]
pub struct WorkerPorts {
    pub store: Arc<dyn MetricStore>,
    pub queue: Arc<dyn JobQueue>,
    pub cache: Arc<dyn PlotCache>,
    pub events: Arc<dyn EventBus>,
}

/// Consumes until `shutdown` is cancelled, reconnecting with backoff whenever the queue
/// connection is lost. Returns once in-flight jobs finished (or the grace ran out).
pub async fn run_until_stopped(
    ports: WorkerPorts,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let consumer = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = ports.queue.consume(config.prefetch) => c,
        };
        let mut consumer = match consumer {
            Ok(c) => {
                backoff = Duration::from_millis(200);
                tracing::info!(prefetch = config.prefetch, "worker consuming");
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot consume; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let mut in_flight = JoinSet::new();
        loop {
            // Never hold more tasks than the prefetch allows; the broker enforces it too.
            while in_flight.len() >= config.prefetch.max(1) as usize {
                in_flight.join_next().await;
            }
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => None,
                d = consumer.next() => {
                    if d.is_none() {
                        tracing::warn!("job consumer closed; reconnecting");
                    }
                    d
                }
            };
            let Some(delivery) = delivery else { break };
            let ports = ports.clone();
            let config = config.clone();
            in_flight.spawn(async move { process(&ports, &config, delivery).await });
        }
        // Finish what we hold before letting go of the connection its acks need.
        let drain = async { while in_flight.join_next().await.is_some() {} };
        if tokio::time::timeout(config.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight jobs outlived the shutdown grace; the broker will redeliver them"
            );
        }
        drop(consumer);
    }
    tracing::info!("worker stopped");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How one attempt at a job ended.
enum Outcome {
    Done,
    /// The job can never succeed; it ends `failed` with this reason.
    Permanent(String),
    /// A dependency failed; try again later.
    Transient(PortError),
}

/// Handles one delivery start to finish, settling it exactly once.
pub async fn process(ports: &WorkerPorts, config: &WorkerConfig, delivery: Delivery) {
    let message = match JobMessage::decode(&delivery.body) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("undecodable job message: {e}");
            tracing::error!(%reason, "poison message; dead-lettering it");
            match ports
                .queue
                .dead_letter(&delivery.body, delivery.attempt, &reason)
                .await
            {
                Ok(()) => settle_ack(&delivery, None).await,
                // The work queue dead-letters rejected messages itself (without our reason).
                Err(e) => {
                    tracing::warn!(error = %e, "cannot dead-letter; rejecting instead");
                    let _ = delivery.acker.reject(false).await;
                }
            }
            return;
        }
    };
    let id = message.id;
    let outcome = attempt(ports, config, &message, delivery.redelivered).await;
    match outcome {
        Outcome::Done => match delivery.acker.ack().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%id, "ack not delivered (channel closed); the job will be redelivered")
            }
            Err(e) => tracing::warn!(%id, error = %e, "ack failed; the job will be redelivered"),
        },
        Outcome::Permanent(reason) => {
            tracing::info!(%id, %reason, "job failed permanently");
            match finish_failed(ports, config, &message, &reason).await {
                Ok(()) => {
                    if let Err(e) = delivery.acker.ack().await {
                        tracing::warn!(%id, error = %e, "ack failed; the job will be redelivered");
                    }
                }
                Err(e) => requeue(config, &delivery, &e, id).await,
            }
        }
        Outcome::Transient(e) => {
            let attempt = delivery.attempt + 1;
            if attempt >= config.max_attempts {
                give_up(ports, config, &delivery, &message, attempt, &e).await;
            } else {
                tracing::warn!(%id, error = %e, attempt, "transient failure; retrying later");
                // Jitter: jobs that failed together (a dependency went down) do not all
                // come back in the same instant; the delay tiers supply the backoff.
                let jitter = config.retry_pause.mul_f64(rand::random::<f64>());
                tokio::time::sleep(jitter).await;
                match ports.queue.retry_later(&delivery.body, attempt).await {
                    Ok(()) => settle_ack(&delivery, Some(id)).await,
                    Err(schedule) => requeue(config, &delivery, &schedule, id).await,
                }
            }
        }
    }
}

async fn settle_ack(delivery: &Delivery, id: Option<plotq_domain::JobId>) {
    match delivery.acker.ack().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            ?id,
            "ack not delivered (channel closed); the job will be redelivered"
        ),
        Err(e) => tracing::warn!(?id, error = %e, "ack failed; the job will be redelivered"),
    }
}

/// Out of attempts: the job ends `failed` with the last error (best effort, the
/// dependency may still be down) and its message is kept in the dead-letter queue.
async fn give_up(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    message: &JobMessage,
    attempts: u32,
    last_error: &PortError,
) {
    let id = message.id;
    let reason = format!("gave up after {attempts} attempts: {last_error}");
    tracing::error!(%id, %reason, "dead-lettering job");
    if let Err(e) = finish_failed(ports, config, message, &reason).await {
        tracing::warn!(%id, error = %e, "cannot record the failure; the dead letter keeps the reason");
    }
    match ports
        .queue
        .dead_letter(&delivery.body, attempts, &reason)
        .await
    {
        Ok(()) => settle_ack(delivery, Some(id)).await,
        Err(e) => requeue(config, delivery, &e, id).await,
    }
}

async fn requeue(
    config: &WorkerConfig,
    delivery: &Delivery,
    error: &PortError,
    id: plotq_domain::JobId,
) {
    tracing::warn!(%id, error = %error, pause = ?config.retry_pause, "transient failure; requeueing");
    tokio::time::sleep(config.retry_pause).await;
    if let Err(e) = delivery.acker.reject(true).await {
        tracing::warn!(%id, error = %e, "requeue failed; the broker will redeliver when the channel closes");
    }
}

fn base_state(message: &JobMessage, existing: Option<JobState>) -> JobState {
    existing.unwrap_or_else(|| JobState {
        until_ms: message.until_ms,
        view: message.view.clone(),
        ..JobState::queued(message.id, message.spec.clone(), message.until_ms)
    })
}

async fn attempt(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    message: &JobMessage,
    redelivered: bool,
) -> Outcome {
    let existing = match ports.cache.get_state(message.id).await {
        Ok(s) => s,
        Err(e) => return Outcome::Transient(e),
    };
    if redelivered && existing.as_ref().is_some_and(|s| s.status.is_final()) {
        // Finished by a worker that died before its ack: nothing left to do.
        tracing::info!(id = %message.id, "redelivered job already finished; acking");
        return Outcome::Done;
    }
    let mut state = base_state(message, existing);
    state.status = JobStatus::Rendering;
    state.updated_at_ms = now_ms();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    if state.view.is_some() {
        // Dashboards show a panel's progress; plain API jobs do not need the extra event.
        let event = PlotEvent::for_job(&state, EventKind::PlotRendering, now_ms());
        if let Err(e) = ports.events.publish(&event).await {
            return Outcome::Transient(e);
        }
    }
    let spec = &message.spec;
    let (from_ms, until_ms) = spec.range.resolve(message.until_ms);
    let mut series = Vec::with_capacity(spec.services.len());
    for service in &spec.services {
        match ports
            .store
            .points(
                service.as_str(),
                spec.metric.as_str(),
                from_ms,
                until_ms,
                spec.kind.needs_timestamps(),
            )
            .await
        {
            Ok(points) => series.push(SeriesData {
                service: service.to_string(),
                timestamps_ms: points.timestamps_ms,
                values: points.values,
            }),
            Err(e) => return Outcome::Transient(e),
        }
    }
    if series.iter().all(|s| s.values.is_empty()) {
        return Outcome::Permanent(no_data(spec));
    }
    let started = Instant::now();
    let render_spec = spec.clone();
    let data = PlotData {
        from_ms,
        until_ms,
        series,
    };
    let render = tokio::task::spawn_blocking(move || plotq_render::render(&render_spec, &data));
    let rendered = match tokio::time::timeout(config.render_deadline, render).await {
        Err(_) => {
            return Outcome::Permanent(format!(
                "rendering took longer than the {:?} deadline",
                config.render_deadline
            ));
        }
        Ok(Err(join_error)) => {
            return Outcome::Permanent(format!("renderer crashed: {join_error}"));
        }
        Ok(Ok(Err(RenderError::NoData))) => return Outcome::Permanent(no_data(spec)),
        Ok(Ok(Err(e))) => return Outcome::Permanent(e.to_string()),
        Ok(Ok(Ok(r))) => r,
    };
    let render_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Err(e) = ports
        .cache
        .put_image(message.id, &rendered.bytes, config.png_ttl)
        .await
    {
        return Outcome::Transient(e);
    }
    state.status = JobStatus::Done;
    state.error = None;
    state.n_samples = Some(rendered.n_samples as u64);
    state.render_ms = Some((render_ms * 100.0).round() / 100.0);
    state.updated_at_ms = now_ms();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    let event = PlotEvent::for_job(&state, EventKind::PlotReady, now_ms());
    if let Err(e) = ports.events.publish(&event).await {
        return Outcome::Transient(e);
    }
    tracing::info!(id = %message.id, n = rendered.n_samples, render_ms, bytes = rendered.bytes.len(), "plot ready");
    Outcome::Done
}

/// Seed 000's "no data" case, e.g. `no data for checkout/latency_ms in the last 10m`.
fn no_data(spec: &plotq_domain::PlotSpec) -> String {
    let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
    format!(
        "no data for {}/{} in the {}",
        services.join(","),
        spec.metric,
        spec.range.label()
    )
}

async fn finish_failed(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    message: &JobMessage,
    reason: &str,
) -> Result<(), PortError> {
    let existing = ports.cache.get_state(message.id).await?;
    let mut state = base_state(message, existing);
    state.status = JobStatus::Failed;
    state.error = Some(reason.to_owned());
    state.updated_at_ms = now_ms();
    ports.cache.put_state(&state, config.state_ttl).await?;
    ports
        .events
        .publish(&PlotEvent::for_job(&state, EventKind::PlotFailed, now_ms()))
        .await?;
    Ok(())
}
