//! How a delivery ends: `Settle` (acked or rejected exactly once, and knowing whether it
//! was), and the endings that record a failure first — failed and acked, given up into
//! the dead-letter queue, requeued when not even that can be recorded yet. Which ending
//! a job gets is `process`'s decision.

use crate::attempt::base_state;
use crate::config::{WorkerConfig, WorkerPorts};
use crate::panic::catching;
use crate::telemetry;
use plotq_domain::wire::{EventKind, JobMessage, PlotEvent};
use plotq_domain::{JobId, JobStatus, StageTimings};
use plotq_ports::clock::now_ms;
use plotq_ports::{Acker, Delivery, PortError};
use std::sync::atomic::{AtomicBool, Ordering};

/// Settles one delivery and remembers that it did, so the panic guard in `process`
/// settles only deliveries nothing else settled.
pub(crate) struct Settle<'a> {
    acker: &'a dyn Acker,
    used: AtomicBool,
}

impl<'a> Settle<'a> {
    pub(crate) fn new(acker: &'a dyn Acker) -> Self {
        Self {
            acker,
            used: AtomicBool::new(false),
        }
    }

    pub(crate) fn used(&self) -> bool {
        self.used.load(Ordering::SeqCst)
    }

    pub(crate) async fn ack(&self, id: Option<JobId>) {
        self.used.store(true, Ordering::SeqCst);
        match self.acker.ack().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                ?id,
                "ack not delivered (channel closed); the job will be redelivered"
            ),
            Err(e) => tracing::warn!(?id, error = %e, "ack failed; the job will be redelivered"),
        }
    }

    pub(crate) async fn reject(&self, requeue: bool, id: Option<JobId>) {
        self.used.store(true, Ordering::SeqCst);
        if let Err(e) = self.acker.reject(requeue).await {
            tracing::warn!(
                ?id,
                requeue,
                error = %e,
                "reject failed; the broker will redeliver when the channel closes"
            );
        }
    }
}

/// Moves the delivery to the dead-letter queue with `reason` and acks it; if the queue
/// refuses, rejects it without requeueing (the work queue dead-letters it by itself,
/// without our reason).
pub(crate) async fn dead_letter_or_drop(
    ports: &WorkerPorts,
    delivery: &Delivery,
    settle: &Settle<'_>,
    attempts: u32,
    reason: &str,
    id: Option<JobId>,
) {
    match ports
        .queue
        .dead_letter(&delivery.body, attempts, reason)
        .await
    {
        Ok(()) => settle.ack(id).await,
        Err(e) => {
            tracing::warn!(?id, error = %e, "cannot dead-letter; rejecting instead");
            settle.reject(false, id).await;
        }
    }
}

/// Ends the job `failed` with `reason` (and the timings of the attempt, where known) and
/// acks; requeues if the failure cannot be recorded yet, and dead-letters the message if
/// recording it panics.
pub(crate) async fn fail_and_ack(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    reason: &str,
    timings: Option<StageTimings>,
) {
    let id = message.id;
    match catching(finish_failed(
        ports,
        config,
        message,
        reason,
        delivery.attempt + 1,
        timings,
    ))
    .await
    {
        Ok(Ok(())) => settle.ack(Some(id)).await,
        Ok(Err(e)) => requeue(config, settle, &e, id).await,
        Err(panic) => {
            tracing::error!(%id, %panic, "panic while recording a failed job; dead-lettering it");
            telemetry::dead_letter("unrecordable");
            let reason = format!("{reason} (recording the failure panicked: {panic})");
            dead_letter_or_drop(
                ports,
                delivery,
                settle,
                delivery.attempt + 1,
                &reason,
                Some(id),
            )
            .await;
        }
    }
}

/// Out of attempts, or out of outage budget: the job ends `failed` with `reason` (best
/// effort, the dependency may still be down) and its message is kept in the dead-letter
/// queue with it.
#[allow(clippy::too_many_arguments)] // reason: one call per way of giving up, all alike
pub(crate) async fn give_up(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    attempts: u32,
    reason: &str,
    timings: Option<StageTimings>,
) {
    let id = message.id;
    tracing::error!(%id, %reason, "dead-lettering job");
    match catching(finish_failed(
        ports, config, message, reason, attempts, timings,
    ))
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(%id, error = %e, "cannot record the failure; the dead letter keeps the reason")
        }
        Err(panic) => {
            tracing::error!(%id, %panic, "panic while recording the failure; the dead letter keeps the reason")
        }
    }
    match ports
        .queue
        .dead_letter(&delivery.body, attempts, reason)
        .await
    {
        Ok(()) => settle.ack(Some(id)).await,
        Err(e) => requeue(config, settle, &e, id).await,
    }
}

/// Gives the delivery back to the queue after `retry_pause`: `error` kept its job from
/// being scheduled again or its end from being recorded.
pub(crate) async fn requeue(
    config: &WorkerConfig,
    settle: &Settle<'_>,
    error: &PortError,
    id: JobId,
) {
    tracing::warn!(%id, error = %error, pause = ?config.retry_pause, "transient failure; requeueing");
    tokio::time::sleep(config.retry_pause).await;
    settle.reject(true, Some(id)).await;
}

/// Ends the job `failed` with `reason` and, when the attempt recorded them, its
/// `timings`. The stored state's `attempts` is kept (at least `attempts`, this
/// delivery's count, should the state have been lost meanwhile).
async fn finish_failed(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    message: &JobMessage,
    reason: &str,
    attempts: u32,
    timings: Option<StageTimings>,
) -> Result<(), PortError> {
    let existing = ports.cache.get_state(message.id).await?;
    let mut state = base_state(message, existing);
    state.status = JobStatus::Failed;
    state.attempts = state.attempts.max(attempts);
    state.error = Some(reason.to_owned());
    if timings.is_some() {
        state.timings = timings;
    }
    state.updated_at_ms = now_ms();
    ports.cache.put_state(&state, config.state_ttl).await?;
    ports
        .events
        .publish(&PlotEvent::for_job(&state, EventKind::PlotFailed, now_ms()))
        .await?;
    Ok(())
}
