//! Holding for outages: while the store's breaker is open a job is held, not failed, and
//! runs once the store is back with its attempts unspent — also when the outage is
//! learnt while the job runs; past the outage budget it is dead-lettered as
//! `dependency_unavailable`, and replayed once the store is back it finishes.

use crate::helpers::{
    Harness, PATIENCE, Settled, open_breaker, outage, recover, store_breaker, wait_until,
};
use plotq_domain::JobStatus;
use plotq_domain::wire::EventKind;
use plotq_ports::JobQueue;
use plotq_ports::ManualClock;
use plotq_ports::clock::now_ms;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_job_is_held_while_its_store_is_down_and_finishes_once_it_is_back() {
    let (mut h, job) = Harness::checkout().await;
    h.store.always("points", outage());
    let clock = ManualClock::new(now_ms());
    let breaker = open_breaker(&clock);
    h.config.breakers = vec![breaker.clone()];
    h.config.outage_budget = PATIENCE;
    let h = Arc::new(h);
    let running = h.spawn_process(&job);
    // Held: the job does not run while the store is believed down...
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!running.is_finished());
    assert_eq!(
        (h.store.calls("rollups"), h.store.calls("points")),
        (0, 0),
        "no read while MongoDB is known down"
    );
    // ...and runs once it is back, spending none of its attempts.
    h.store.clear();
    recover(&breaker, &clock);
    assert_eq!(running.await.unwrap(), [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!((state.status, state.attempts), (JobStatus::Done, 1));
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_failing_as_its_store_goes_down_is_run_again_once_it_is_back() {
    let (mut h, job) = Harness::checkout().await;
    let clock = ManualClock::new(now_ms());
    let breaker = store_breaker(&clock);
    h.config.breakers = vec![breaker.clone()];
    h.config.outage_budget = PATIENCE;
    // The outage is learnt while the job runs: its read fails, and the breaker opens,
    // as the real adapter's would.
    let trips = breaker.clone();
    h.store.on_fault(move |_, _| {
        if let Ok(ticket) = trips.admit_probe() {
            ticket.reached(false);
        }
    });
    h.store.next("points", 1, outage());
    let h = Arc::new(h);
    let running = h.spawn_process(&job);
    wait_until(|| !breaker.is_up()).await;
    recover(&breaker, &clock);
    assert_eq!(running.await.unwrap(), [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(
        h.queue.dead_letters(10).await.unwrap().is_empty(),
        "nothing given up"
    );
}

#[tokio::test]
async fn a_job_held_past_the_outage_budget_is_dead_lettered_as_dependency_unavailable() {
    let (mut h, job) = Harness::checkout().await;
    h.store.always("points", outage());
    let clock = ManualClock::new(now_ms());
    h.config.breakers = vec![open_breaker(&clock)];
    h.config.outage_budget = Duration::from_millis(300);
    let slots = h.slots();
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    assert_eq!((h.store.calls("rollups"), h.store.calls("points")), (0, 0));
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .reason
            .starts_with("dependency_unavailable: mongodb"),
        "{}",
        dead[0].reason
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert!(state.error.unwrap().starts_with("dependency_unavailable"));
    // Replayed once the store is back, the job finishes.
    h.config.breakers.clear();
    h.store.clear();
    assert_eq!(h.queue.replay_dead_letters(Some(job.id)).await.unwrap(), 1);
    let worker = h.start();
    let done = async {
        while h.state(job.id).await.unwrap().status != JobStatus::Done {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, done)
        .await
        .expect("the replayed job finished");
    worker.stop().await;
}
