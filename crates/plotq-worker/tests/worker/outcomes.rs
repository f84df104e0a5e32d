//! How a job ends: done with one ready event; failed at once when it can never succeed;
//! retried through the queue while its store fails transiently, then given up failed
//! and dead-lettered; a redelivery counted as another attempt, or, for a job already
//! finished, announced again rather than rendered again.

use crate::helpers::{Harness, Settled, job, outage};
use plotq_domain::JobStatus;
use plotq_domain::wire::{EventKind, JobMessage};
use plotq_ports::{JobQueue, PlotCache};

#[tokio::test]
async fn a_job_with_data_ends_done_with_one_ready_event() {
    let (h, job) = Harness::checkout().await;
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(state.n_samples, Some(200));
    assert_eq!(state.attempts, 1);
    assert!(h.cache.get_image(job.id).await.unwrap().is_some());
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_without_data_fails_at_once() {
    let h = Harness::new();
    let job = job("silent");
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert!(
        state
            .error
            .unwrap()
            .starts_with("no data for silent/latency_ms")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert_eq!(
        h.store.calls("points"),
        1,
        "a permanent failure is not retried"
    );
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transient_store_failure_is_retried_until_it_succeeds() {
    let (h, job) = Harness::checkout().await;
    h.store.next("points", 2, outage());
    h.run_to_final(&job).await;
    assert_eq!(
        h.store.calls("points"),
        3,
        "two failed reads, then the one that worked"
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(
        state.attempts, 3,
        "two retries, then the attempt that worked"
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_redelivered_unfinished_job_counts_as_another_attempt() {
    let (h, job) = Harness::checkout().await;
    h.store.next("points", 1, outage());
    let slots = h.slots();
    // The first delivery fails transiently (its retry waits in the queue, unconsumed).
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    let rendering = h.state(job.id).await.unwrap();
    assert_eq!(
        (rendering.status, rendering.attempts),
        (JobStatus::Rendering, 1)
    );
    // The broker redelivers it (as after a worker died): same retry count, one more start.
    assert_eq!(h.process(job.encode(), true, &slots).await, [Settled::Ack]);
    let done = h.state(job.id).await.unwrap();
    assert_eq!((done.status, done.attempts), (JobStatus::Done, 2));
}

#[tokio::test]
async fn a_persistent_store_failure_is_given_up_failed_and_dead_lettered() {
    let (h, job) = Harness::checkout().await;
    h.store.always("points", outage());
    h.run_to_final(&job).await;
    assert_eq!(h.store.calls("points"), 3, "max_attempts = 3");
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(state.attempts, 3, "the failed state keeps the count");
    let error = state.error.unwrap();
    assert!(error.starts_with("gave up after 3 attempts"), "{error}");
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(JobMessage::decode(&dead[0].body).unwrap().id, job.id);
    assert_eq!(
        (dead[0].attempts, dead[0].reason.as_str()),
        (3, error.as_str())
    );
}

#[tokio::test]
async fn a_redelivered_finished_job_is_announced_again_not_rendered_again() {
    let (h, job) = Harness::checkout().await;
    let slots = h.slots();
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    let done = h.state(job.id).await.unwrap();
    let reads = (h.store.calls("rollups"), h.store.calls("points"));
    // A worker that died after the final state may not have announced it: the
    // redelivery announces it again (notifiers relay a job's final event once).
    assert_eq!(h.process(job.encode(), true, &slots).await, [Settled::Ack]);
    assert_eq!(
        h.events_of(job.id).await,
        [EventKind::PlotReady, EventKind::PlotReady]
    );
    assert_eq!(
        (h.store.calls("rollups"), h.store.calls("points")),
        reads,
        "not rendered again"
    );
    assert_eq!(h.state(job.id).await.unwrap(), done);
    let repeated = h.final_event(job.id).await;
    assert_eq!(repeated.stats, done.stats, "the same statistics");
}
