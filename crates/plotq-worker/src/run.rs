//! The worker's loop: `run_until_stopped` consumes (reconnecting with backoff when the
//! queue connection is lost), holds deliveries in `Lanes` and starts them lane by lane
//! up to `prefetch` at once, and on shutdown or a lost connection gives held jobs back
//! and drains those running within the grace. Each job itself is `process`'s.

use crate::config::{WorkerConfig, WorkerPorts};
use crate::lanes::Lanes;
use crate::panic::log_task_end;
use crate::process::process;
use crate::slots::RenderSlots;
use crate::telemetry;
use plotq_ports::Backoff;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Consumes until `shutdown` is cancelled, reconnecting with backoff whenever the queue
/// connection is lost. Returns once in-flight jobs finished (or the grace ran out).
pub async fn run_until_stopped(
    ports: WorkerPorts,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    telemetry::describe();
    // One set of permits for the worker's life: render threads of a lost connection's
    // jobs may still be running when the worker consumes again.
    let slots = RenderSlots::for_config(&config);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while !shutdown.is_cancelled() {
        let consumer = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = ports.queue.consume(config.prefetch.max(1).saturating_add(config.lookahead)) => c,
        };
        let mut consumer = match consumer {
            Ok(c) => {
                backoff.reset();
                tracing::info!(
                    prefetch = config.prefetch,
                    lookahead = config.lookahead,
                    "worker consuming"
                );
                c
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "cannot consume; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        };
        let mut in_flight = JoinSet::new();
        let mut held = Lanes::default();
        let slots_n = config.prefetch.max(1) as usize;
        let room = slots_n + config.lookahead as usize;
        loop {
            while let Some(end) = in_flight.try_join_next_with_id() {
                held.ended(end);
            }
            // Start what the concurrency allows, taking the lanes in turn.
            while in_flight.len() < slots_n {
                let Some((lane, delivery)) = held.next(slots_n) else {
                    break;
                };
                let ports = ports.clone();
                let config = config.clone();
                let slots = slots.clone();
                let task = in_flight
                    .spawn(async move { process(&ports, &config, &slots, delivery).await });
                held.started(task.id(), lane);
            }
            // Take another delivery only while there is room to hold it (the broker's
            // prefetch enforces it too).
            let may_take = in_flight.len() + held.len() < room;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(end) = in_flight.join_next_with_id(), if !in_flight.is_empty() => held.ended(end),
                delivery = consumer.next(), if may_take => match delivery {
                    Some(delivery) => held.push(delivery),
                    None => {
                        tracing::warn!("job consumer closed; reconnecting");
                        break;
                    }
                },
            }
        }
        // Held jobs not started go back to the queue now, for this or another worker.
        held.give_back().await;
        // Finish what we hold before letting go of the connection its acks need.
        let drain = async {
            while let Some(ended) = in_flight.join_next().await {
                log_task_end(ended);
            }
        };
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
