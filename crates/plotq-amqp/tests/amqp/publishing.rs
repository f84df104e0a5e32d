//! Publishing: confirmed jobs consumed with acks and requeues, refusals that must never
//! be mistaken for acceptance (unroutable, queue full), and the queue bound under a
//! concurrent flood.

use crate::helpers::{admin, config, count, delete, job, next};
use futures::StreamExt;
use lapin::types::FieldTable;
use plotq_amqp::{AmqpQueue, PUBLISH_CHANNELS};
use plotq_domain::wire::JobMessage;
use plotq_ports::{JobQueue, PortError};
use std::sync::Arc;
use std::time::Instant;

#[tokio::test]
async fn publish_consume_ack_and_requeue() {
    let config = config(100);
    let queue = AmqpQueue::new(config.clone());
    let sent = job();
    queue.publish(&sent).await.expect("confirmed and routed");
    let mut consumer = queue.consume(1).await.unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(JobMessage::decode(&first.body).unwrap(), sent);
    assert!(!first.redelivered);
    first.acker.reject(true).await.unwrap();
    let again = next(&mut consumer).await;
    assert!(
        again.redelivered,
        "a requeued job comes back marked redelivered"
    );
    assert!(again.acker.ack().await.unwrap());
    delete(&config).await;
}

#[tokio::test]
async fn unroutable_job_is_refused_not_accepted() {
    let config = config(100);
    let queue = AmqpQueue::new(config.clone());
    queue.ping().await.unwrap(); // declares the topology
    let (_conn, ch) = admin().await;
    ch.queue_unbind(
        config.queue().into(),
        config.exchange().into(),
        "plot.render".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    match queue.publish(&job()).await {
        Err(PortError::Refused { detail, .. }) => {
            assert!(detail.contains("not routed"), "{detail}")
        }
        other => panic!("an unroutable job must be refused, got {other:?}"),
    }
    delete(&config).await;
}

#[tokio::test]
async fn full_queue_refuses_new_jobs() {
    let config = config(2);
    let queue = AmqpQueue::new(config.clone());
    // A quorum queue checks its bound after enqueueing, so it may admit one message
    // past `x-max-length` before it starts refusing.
    let mut accepted = 0;
    let refusal = loop {
        match queue.publish(&job()).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 3, "the queue bound (2) was not enforced");
    };
    assert!(accepted >= 2, "refused before the bound: {refusal}");
    match refusal {
        PortError::Refused { detail, .. } => assert!(detail.contains("full"), "{detail}"),
        other => panic!("a job past the bound must be refused, got {other:?}"),
    }
    delete(&config).await;
}

/// Publishes `n` jobs through `queue`, `concurrency` at a time; (accepted, refused).
/// Every refusal must be the full queue's.
async fn flood(queue: Arc<AmqpQueue>, n: usize, concurrency: usize) -> (usize, usize) {
    let outcomes: Vec<bool> = futures::stream::iter(0..n)
        .map(|_| {
            let queue = queue.clone();
            async move {
                match queue.publish(&job()).await {
                    Ok(()) => true,
                    Err(PortError::Refused { dependency, detail }) => {
                        assert_eq!(dependency, "rabbitmq");
                        assert!(detail.contains("full"), "{detail}");
                        false
                    }
                    Err(other) => panic!("a flood must be accepted or refused: {other:?}"),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let accepted = outcomes.iter().filter(|ok| **ok).count();
    (accepted, n - accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_flood_stays_within_the_documented_bound() {
    // Documented: at most max_queued_jobs + PUBLISH_CHANNELS per publishing process.
    for (bound, n, publishers) in [(50u32, 500, 1usize), (5, 100, 1), (50, 500, 2)] {
        let config = config(bound);
        let queues: Vec<Arc<AmqpQueue>> = (0..publishers)
            .map(|_| Arc::new(AmqpQueue::new(config.clone())))
            .collect();
        for queue in &queues {
            queue.ping().await.unwrap();
        }
        let started = Instant::now();
        let results =
            futures::future::join_all(queues.iter().map(|q| flood(q.clone(), n, 32))).await;
        let elapsed = started.elapsed();
        let accepted: usize = results.iter().map(|r| r.0).sum();
        let (_conn, ch) = admin().await;
        let in_queue = count(&ch, &config.queue()).await;
        let most = bound as usize + PUBLISH_CHANNELS * publishers;
        eprintln!(
            "bound {bound}, {publishers}×{n} publishes at concurrency 32: {accepted} accepted \
             ({in_queue} in the queue), at most {most} allowed, {elapsed:?}"
        );
        assert_eq!(in_queue as usize, accepted, "accepted means in the queue");
        assert!(
            accepted >= bound as usize,
            "refused before the bound: {accepted}"
        );
        assert!(
            accepted <= most,
            "{accepted} accepted past a bound of {bound} (documented: at most {most})"
        );
        delete(&config).await;
    }
}
