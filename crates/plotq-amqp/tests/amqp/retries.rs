//! Retries and dead letters: a retry comes back after its tier's delay carrying its
//! attempt, each attempt waits in the queue of its delay, and dead letters are listed
//! in place and replayed.

use crate::helpers::{admin, config, count, delete, job, next};
use plotq_amqp::AmqpQueue;
use plotq_domain::wire::JobMessage;
use plotq_ports::JobQueue;
use std::time::{Duration, Instant};

#[tokio::test]
async fn retries_come_back_after_their_delay_and_dead_letters_replay() {
    let config = config(100);
    let queue = AmqpQueue::new(config.clone());
    let sent = job();
    queue.publish(&sent).await.unwrap();
    let mut consumer = queue.consume(1).await.unwrap();
    let first = next(&mut consumer).await;
    assert_eq!(first.attempt, 0);
    let started = std::time::Instant::now();
    queue.retry_later(&first.body, 2).await.unwrap();
    first.acker.ack().await.unwrap();
    let again = next(&mut consumer).await;
    assert_eq!(again.attempt, 2, "the retry carries its attempt number");
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "waited its tier's delay: {:?}",
        started.elapsed()
    );
    assert_eq!(JobMessage::decode(&again.body).unwrap(), sent);

    queue
        .dead_letter(&again.body, 2, "gave up: mongodb is unavailable")
        .await
        .unwrap();
    again.acker.ack().await.unwrap();
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, "gave up: mongodb is unavailable");
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(
        queue.dead_letters(10).await.unwrap().len(),
        1,
        "listing leaves them in place"
    );
    assert_eq!(
        queue
            .replay_dead_letters(Some(plotq_domain::JobId::new_random()))
            .await
            .unwrap(),
        0
    );
    assert_eq!(queue.replay_dead_letters(Some(sent.id)).await.unwrap(), 1);
    let replayed = next(&mut consumer).await;
    assert_eq!(
        (
            JobMessage::decode(&replayed.body).unwrap().id,
            replayed.attempt
        ),
        (sent.id, 0)
    );
    replayed.acker.ack().await.unwrap();
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    delete(&config).await;
}

#[tokio::test]
async fn retry_attempt_k_waits_in_the_queue_of_the_kth_delay() {
    let mut config = config(100);
    config.retry_delays = [1, 1, 5].map(Duration::from_secs).to_vec();
    assert_eq!(
        config.retry_queues(),
        [config.retry_queue(1), config.retry_queue(3)],
        "one delay queue per distinct delay"
    );
    assert!(config.retry_queue(3).ends_with(".5000ms"));
    let queue = AmqpQueue::new(config.clone());
    queue.ping().await.unwrap(); // declares the topology, every tier included
    let (_conn, ch) = admin().await;
    let (short, long) = (config.retry_queue(1), config.retry_queue(3));
    assert_eq!(count(&ch, &long).await, 0, "the 5 s tier is declared");

    let body = job().encode();
    let started = Instant::now();
    // Attempt 3 and later (the last delay repeats) wait 5 s; attempts 1 and 2 wait 1 s.
    queue.retry_later(&body, 3).await.unwrap();
    queue.retry_later(&body, 4).await.unwrap();
    assert_eq!(count(&ch, &long).await, 2, "attempts 3 and 4 wait 5 s");
    queue.retry_later(&body, 1).await.unwrap();
    queue.retry_later(&body, 2).await.unwrap();
    // The 1 s tier returns its two to the work queue; the 5 s tier still holds its two.
    while count(&ch, &config.queue()).await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "attempts 1 and 2 did not come back after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&ch, &short).await, 0);
    assert_eq!(count(&ch, &config.queue()).await, 2);
    assert_eq!(count(&ch, &long).await, 2, "attempts 3 and 4 still waiting");
    assert!(started.elapsed() < Duration::from_secs(5));
    delete(&config).await;
}
