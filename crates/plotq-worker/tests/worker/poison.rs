//! What must not stop a worker: messages that do not decode or are invalid (poison,
//! dead-lettered once and acked), and panics in the store or the renderer (the job
//! fails once, its delivery is settled, its render permit given back, and the worker
//! goes on).

use crate::helpers::{Harness, Settled, job, job_without_services};
use plotq_domain::JobStatus;
use plotq_domain::wire::EventKind;
use plotq_ports::JobQueue;
use plotq_worker::Renderer;

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_acked() {
    let h = Harness::new();
    let settled = h
        .process(b"{\"v\": 1, \"garbage\": true}".to_vec(), false, &h.slots())
        .await;
    assert_eq!(settled, [Settled::Ack]);
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"{\"v\": 1, \"garbage\": true}");
    assert!(
        dead[0].reason.starts_with("undecodable job message"),
        "{}",
        dead[0].reason
    );
    assert!(h.events().await.is_empty());
}

#[tokio::test]
async fn a_decodable_but_invalid_message_is_dead_lettered_once_and_acked() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let (id, body) = job_without_services();
    let settled = h.process(body.clone(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack], "settled exactly once");
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, body);
    assert!(!dead[0].reason.is_empty());
    assert!(!h.events_of(id).await.contains(&EventKind::PlotReady));
    assert!(
        h.state(id)
            .await
            .is_none_or(|s| s.status == JobStatus::Failed)
    );
}

#[tokio::test]
async fn poison_messages_do_not_stop_the_worker() {
    let (mut h, good) = Harness::checkout().await;
    h.config.prefetch = 1;
    let worker = h.start();
    let (invalid_id, invalid) = job_without_services();
    // More poison than the prefetch: each must free its slot for the next.
    for _ in 0..3 {
        h.queue.publish_raw(b"not json at all").unwrap();
        h.queue.publish_raw(&invalid).unwrap();
    }
    h.queue.publish(&good).await.unwrap();
    h.wait_final(&[good.id]).await;
    worker.stop().await;
    assert_eq!(h.state(good.id).await.unwrap().status, JobStatus::Done);
    assert_eq!(h.events_of(good.id).await, [EventKind::PlotReady]);
    assert!(
        !h.events_of(invalid_id)
            .await
            .contains(&EventKind::PlotReady)
    );
    let dead = h.queue.dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), 6, "every poison message dead-lettered once");
}

#[tokio::test]
async fn a_panic_fails_the_job_once_and_settles_its_delivery() {
    let (h, job) = Harness::checkout().await;
    h.store_panics_on("checkout");
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(
        state.error.as_deref(),
        Some("internal error while rendering: store double exploded reading checkout")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_panicking_renderer_fails_the_job_once() {
    let (mut h, job) = Harness::checkout().await;
    h.config.renderer = Renderer::new(|_, _| panic!("renderer double exploded"));
    let slots = h.slots();
    let settled = h.process(job.encode(), false, &slots).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(
        state.error.as_deref(),
        Some("internal error while rendering: renderer double exploded")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert_eq!(
        slots.available(),
        2,
        "the unwinding render gave its permit back"
    );
}

#[tokio::test]
async fn the_worker_keeps_working_after_a_panic() {
    let (h, good) = Harness::checkout().await;
    h.ingest("payments").await;
    h.store_panics_on("payments");
    let worker = h.start();
    let bad = job("payments");
    h.queue.publish(&bad).await.unwrap();
    h.queue.publish(&good).await.unwrap();
    h.wait_final(&[bad.id, good.id]).await;
    worker.stop().await;
    assert_eq!(h.events_of(bad.id).await, [EventKind::PlotFailed]);
    assert_eq!(h.state(bad.id).await.unwrap().status, JobStatus::Failed);
    assert_eq!(h.events_of(good.id).await, [EventKind::PlotReady]);
    assert_eq!(h.state(good.id).await.unwrap().status, JobStatus::Done);
}
