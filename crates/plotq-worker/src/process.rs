//! One delivery start to finish: decode it (poison goes to the dead-letter queue), hold
//! the job while a dependency it needs is down (`hold`, for at most the outage budget),
//! run an attempt with panics caught, sort its `Outcome` once — done, permanent,
//! transient (retried through the delay queues, dead-lettered after `max_attempts`) or
//! a panic — settle the delivery exactly once, and give the job's place in its lane back
//! when it ended.

use crate::attempt::{Outcome, attempt};
use crate::config::{WorkerConfig, WorkerPorts};
use crate::panic::catching;
use crate::settle::{Settle, dead_letter_or_drop, fail_and_ack, give_up, requeue};
use crate::slots::RenderSlots;
use crate::telemetry;
use crate::timing::Stopwatch;
use plotq_domain::JobId;
use plotq_domain::wire::{JobMessage, Lane};
use plotq_ports::Delivery;
use std::time::Instant;
use tracing::Instrument;

/// Handles one delivery start to finish, settling it exactly once — also when something
/// panics along the way. `slots` are the worker's render permits.
pub async fn process(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: Delivery,
) {
    let settle = Settle::new(delivery.acker.as_ref());
    if let Err(panic) = catching(handle(ports, config, slots, &delivery, &settle)).await {
        // Only settling code runs outside the inner guard; if it panicked before settling,
        // drop the message (the work queue dead-letters it) rather than hold it forever.
        tracing::error!(%panic, "panic while settling a delivery");
        if !settle.used() {
            telemetry::dead_letter("settle_panicked");
            match catching(settle.reject(false, None)).await {
                Ok(()) => tracing::warn!("rejected the delivery after the panic"),
                Err(again) => tracing::error!(panic = %again, "cannot reject the delivery"),
            }
        }
    }
}

/// Decodes the delivery (poison is dead-lettered at once) and runs its job inside the
/// job's span.
async fn handle(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: &Delivery,
    settle: &Settle<'_>,
) {
    let message = match JobMessage::decode(&delivery.body) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("undecodable job message: {e}");
            tracing::error!(%reason, "poison message; dead-lettering it");
            telemetry::job("unknown", "dead_lettered");
            telemetry::dead_letter("poison");
            dead_letter_or_drop(ports, delivery, settle, delivery.attempt, &reason, None).await;
            return;
        }
    };
    // Every line logged for this job, to its settling, carries its id and kind.
    let span = tracing::info_span!("job", id = %message.id, kind = message.spec.kind.as_str());
    handle_job(ports, config, slots, delivery, settle, &message)
        .instrument(span)
        .await;
}

/// Runs a decoded job (holding it while a dependency is down) and settles its delivery.
async fn handle_job(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
) {
    let id = message.id;
    let kind = message.spec.kind.as_str();
    let held_since = Instant::now();
    let (outcome, stopwatch) = loop {
        if let Some(down) = hold(config, held_since, id).await {
            // The dependency stayed down past the budget: the job waits in the dead-letter
            // queue for `plotq dlq retry`, its attempts unspent.
            let reason = format!(
                "dependency_unavailable: {down} did not answer for {} s",
                config.outage_budget.as_secs()
            );
            let attempts = delivery.attempt + 1;
            telemetry::job(kind, "dead_lettered");
            telemetry::dead_letter("dependency_unavailable");
            give_up(
                ports, config, delivery, settle, message, attempts, &reason, None,
            )
            .await;
            end_in_lane(ports, message).await;
            return;
        }
        let mut stopwatch = Stopwatch::start();
        let outcome = catching(attempt(
            ports,
            config,
            slots,
            message,
            delivery.redelivered,
            delivery.attempt + 1,
            &mut stopwatch,
        ))
        .await
        .unwrap_or_else(Outcome::Panicked);
        match &outcome {
            // Failed because a dependency is down (known now): hold the job and run it
            // again once the dependency is back, rather than spending an attempt.
            Outcome::Transient(e) if down(config, e.dependency()) => continue,
            _ => break (outcome, stopwatch),
        }
    };
    let timings = stopwatch.snapshot();
    // Whether the job ended here (not scheduled to run again later).
    let ended =
        !matches!(&outcome, Outcome::Transient(_)) || delivery.attempt + 1 >= config.max_attempts;
    match outcome {
        Outcome::Done => {
            telemetry::job(kind, "done");
            settle.ack(Some(id)).await
        }
        Outcome::AlreadyFinished => settle.ack(Some(id)).await,
        Outcome::Permanent(reason) => {
            tracing::info!(%id, %reason, "job failed permanently");
            telemetry::job(kind, "failed");
            fail_and_ack(ports, config, delivery, settle, message, &reason, timings).await;
        }
        Outcome::Panicked(panic) => {
            tracing::error!(%id, %panic, "panic while processing a job; failing it");
            telemetry::job(kind, "failed");
            let reason = format!("internal error while rendering: {panic}");
            fail_and_ack(ports, config, delivery, settle, message, &reason, timings).await;
        }
        Outcome::Transient(e) => {
            let attempt = delivery.attempt + 1;
            if attempt >= config.max_attempts {
                let reason = format!("gave up after {attempt} attempts: {e}");
                telemetry::job(kind, "dead_lettered");
                telemetry::dead_letter("exhausted");
                give_up(
                    ports, config, delivery, settle, message, attempt, &reason, timings,
                )
                .await;
            } else {
                tracing::warn!(%id, error = %e, attempt, "transient failure; retrying later");
                telemetry::job(kind, "retried");
                telemetry::retry();
                // Jitter: jobs that failed together (a dependency went down) do not all
                // come back in the same instant; the delay tiers supply the backoff.
                let jitter = config.retry_pause.mul_f64(rand::random::<f64>());
                tokio::time::sleep(jitter).await;
                match ports.queue.retry_later(&delivery.body, attempt).await {
                    Ok(()) => settle.ack(Some(id)).await,
                    Err(schedule) => requeue(config, settle, &schedule, id).await,
                }
            }
        }
    }
    if ended {
        end_in_lane(ports, message).await;
    }
}

/// Gives the job's place in its lane back (best effort: its lease frees it anyway).
/// The refresher's lane counts nothing, and jobs of writers before lanes have none.
async fn end_in_lane(ports: &WorkerPorts, message: &JobMessage) {
    let Some(lane) = &message.lane else { return };
    if *lane == Lane::views() {
        return;
    }
    if let Err(e) = ports.cache.end_job(lane.as_str(), message.id).await {
        tracing::warn!(id = %message.id, error = %e, "cannot end the job in its lane; its lease frees its place");
    }
}

/// Whether `dependency` has a breaker that believes it down.
fn down(config: &WorkerConfig, dependency: &str) -> bool {
    config
        .breakers
        .iter()
        .any(|b| b.dependency() == dependency && !b.is_up())
}

/// Holds a job while any dependency it needs is believed down, until all are back or
/// the outage budget (counted from `since`) is spent; `Some(name)` of one still down
/// when it is. A held job counts in `plotq_worker_jobs_held` while it waits.
async fn hold(config: &WorkerConfig, since: Instant, id: JobId) -> Option<&'static str> {
    let mut held = None;
    loop {
        let breaker = config.breakers.iter().find(|b| !b.is_up())?;
        let left = config.outage_budget.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Some(breaker.dependency());
        }
        if held.is_none() {
            tracing::info!(%id, dependency = breaker.dependency(), "holding job until the dependency is back");
            held = Some(telemetry::Held::start());
        }
        breaker.wait_up(left).await;
    }
}
