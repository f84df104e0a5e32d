//! Render deadlines and render slots: a render past its deadline fails its job once
//! while its thread runs on holding its permit; a job that finds no free permit fails
//! under its own deadline; a worker never has more render threads alive than its
//! prefetch.

use crate::helpers::{Harness, Settled, job, wait_until};
use plotq_domain::JobId;
use plotq_domain::JobStatus;
use plotq_domain::wire::{EventKind, JobMessage};
use plotq_ports::JobQueue;
use plotq_worker::RenderSlots;
use std::time::Duration;

#[tokio::test]
async fn a_render_past_its_deadline_fails_the_job_once() {
    let (mut h, job) = Harness::checkout().await;
    let gated = h.gate_renders();
    h.config.render_deadline = Duration::from_millis(200);
    let slots = h.slots();
    let settled = h.process(job.encode(), false, &slots).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    let error = state.error.unwrap();
    assert!(error.contains("deadline"), "{error}");
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    // The render thread is still running and still holds its permit.
    wait_until(|| gated.alive() == 1).await;
    assert_eq!(slots.available(), 1);
    gated.open();
    wait_until(|| slots.available() == 2).await;
    // Its late result changes nothing.
    assert_eq!(h.state(job.id).await.unwrap().status, JobStatus::Failed);
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
}

#[tokio::test]
async fn a_job_finding_no_free_render_slot_fails_under_its_own_deadline() {
    let (mut h, stuck) = Harness::checkout().await;
    let gated = h.gate_renders();
    h.config.render_deadline = Duration::from_millis(200);
    let slots = RenderSlots::new(1);
    let waiting = job("checkout");
    assert_eq!(
        h.process(stuck.encode(), false, &slots).await,
        [Settled::Ack]
    );
    assert_eq!(
        h.process(waiting.encode(), false, &slots).await,
        [Settled::Ack]
    );
    let error = h.state(waiting.id).await.unwrap().error.unwrap();
    assert!(error.starts_with("no render slot freed up"), "{error}");
    assert_eq!(h.events_of(waiting.id).await, [EventKind::PlotFailed]);
    assert_eq!(gated.max_alive(), 1, "no second render thread");
    // Once the stuck render returns, its permit serves the next job.
    gated.open();
    let next = job("checkout");
    h.config.render_deadline = Duration::from_secs(15);
    assert_eq!(
        h.process(next.encode(), false, &slots).await,
        [Settled::Ack]
    );
    assert_eq!(h.state(next.id).await.unwrap().status, JobStatus::Done);
}

#[tokio::test]
async fn render_threads_never_outnumber_the_prefetch() {
    let (mut h, _) = Harness::checkout().await;
    let gated = h.gate_renders();
    h.config.render_deadline = Duration::from_millis(200);
    let worker = h.start();
    let jobs: Vec<JobMessage> = (0..5).map(|_| job("checkout")).collect();
    for j in &jobs {
        h.queue.publish(j).await.unwrap();
    }
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    h.wait_final(&ids).await;
    let mut errors = Vec::new();
    for j in &jobs {
        assert_eq!(h.events_of(j.id).await, [EventKind::PlotFailed]);
        errors.push(h.state(j.id).await.unwrap().error.unwrap());
    }
    let past_deadline = errors
        .iter()
        .filter(|e| e.starts_with("rendering took longer"))
        .count();
    let no_slot = errors
        .iter()
        .filter(|e| e.starts_with("no render slot"))
        .count();
    assert_eq!((past_deadline, no_slot), (2, 3), "{errors:?}");
    // Both stuck renders are alive, and no third thread was ever started.
    wait_until(|| gated.alive() == 2).await;
    assert_eq!(gated.max_alive(), 2, "prefetch = 2 render threads at most");
    // The stuck renders return; the worker renders again.
    gated.open();
    let later = job("checkout");
    h.queue.publish(&later).await.unwrap();
    h.wait_final(&[later.id]).await;
    worker.stop().await;
    assert_eq!(h.events_of(later.id).await, [EventKind::PlotReady]);
    assert!(gated.max_alive() <= 2);
}
