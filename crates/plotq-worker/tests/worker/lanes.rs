//! Fair turns: held jobs are started lane by lane, not in arrival order, and every job
//! gives its place in its lane back; on shutdown, held jobs not started go back to the
//! queue for the next worker.

use crate::helpers::{Harness, job, wait_until};
use plotq_domain::JobId;
use plotq_domain::wire::{EventKind, JobMessage, Lane};
use plotq_ports::JobQueue;
use plotq_ports::clock::now_ms;
use plotq_ports::{LaneSlot, PlotCache};
use std::time::Duration;

/// The ready events' job ids, in the order they were announced.
async fn ready_order(h: &Harness) -> Vec<JobId> {
    h.events()
        .await
        .into_iter()
        .filter(|e| e.event == EventKind::PlotReady)
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn held_jobs_are_served_lane_by_lane_not_in_arrival_order() {
    let (mut h, _) = Harness::checkout().await;
    let gated = h.gate_renders();
    (h.config.prefetch, h.config.lookahead) = (1, 10);
    let busy = Lane::of_digest("aaaaaaaaaaaaaaaa");
    let quiet = Lane::of_digest("bbbbbbbbbbbbbbbb");
    // A tenant's backlog of six, then another tenant's one job, all in the queue before
    // the first render ends.
    let backlog: Vec<JobMessage> = (0..6)
        .map(|_| job("checkout").in_lane(busy.clone()))
        .collect();
    let other = job("checkout").in_lane(quiet.clone());
    let slot = |lane, id, cap| LaneSlot {
        lane,
        id,
        cap,
        lease: Duration::from_secs(60),
        now_ms: now_ms(),
    };
    for j in backlog.iter().chain([&other]) {
        let lane = j.lane.as_ref().unwrap().as_str();
        assert!(h.cache.begin_job(&slot(lane, j.id, 100)).await.unwrap());
        h.queue.publish(j).await.unwrap();
    }
    let worker = h.start();
    // The first job renders (held at the gate) while the worker takes the rest in.
    wait_until(|| gated.alive() == 1 && h.queue.depth() == 0).await;
    gated.open();
    let mut ids: Vec<JobId> = backlog.iter().map(|j| j.id).collect();
    ids.push(other.id);
    h.wait_final(&ids).await;
    worker.stop().await;
    let order = ready_order(&h).await;
    assert_eq!(order.len(), 7);
    let at = order.iter().position(|id| *id == other.id).unwrap();
    assert!(
        at <= 2,
        "the quiet tenant's job waited for at most one of the busy tenant's jobs besides the one rendering (done {}th of 7)",
        at + 1
    );
    // Every job gave its place in its lane back: both lanes are empty again.
    for lane in [&busy, &quiet] {
        assert!(
            h.cache
                .begin_job(&slot(lane.as_str(), JobId::new_random(), 1))
                .await
                .unwrap(),
            "lane {lane} is empty"
        );
    }
}

#[tokio::test]
async fn held_jobs_not_started_go_back_to_the_queue_on_shutdown() {
    let (mut h, _) = Harness::checkout().await;
    let gated = h.gate_renders();
    (h.config.prefetch, h.config.lookahead) = (1, 10);
    let jobs: Vec<JobMessage> = (0..4).map(|_| job("checkout")).collect();
    for j in &jobs {
        h.queue.publish(j).await.unwrap();
    }
    let worker = h.start();
    wait_until(|| gated.alive() == 1 && h.queue.depth() == 0).await;
    // Stopping: the one rendering finishes (the gate opens), the three held go back.
    worker.cancel();
    wait_until(|| h.queue.depth() == 3).await;
    gated.open();
    worker.stop().await;
    assert_eq!(h.queue.depth(), 3, "three jobs wait for the next worker");
    let next = h.start();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    h.wait_final(&ids).await;
    next.stop().await;
    for j in &jobs {
        assert_eq!(h.events_of(j.id).await, [EventKind::PlotReady], "each once");
    }
}
