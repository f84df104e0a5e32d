//! `AmqpQueue` against the real RabbitMQ on 127.0.0.1:5672 (fails if it is not running):
//! confirmed publishing, consuming with acks and requeues, and refusals that must never
//! be mistaken for acceptance (unroutable, queue full).

use lapin::options::QueueDeleteOptions;
use lapin::types::FieldTable;
use plotq_amqp::{AmqpConfig, AmqpQueue};
use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use plotq_ports::{JobQueue, PortError};
use std::time::Duration;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn config(max_queued_jobs: u32) -> AmqpConfig {
    AmqpConfig {
        url: URL.to_owned(),
        namespace: format!(
            "t-{}.plotq",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ),
        max_queued_jobs,
        delivery_limit: 5,
        timeout: Duration::from_secs(10),
        retry_delays: vec![Duration::from_millis(300), Duration::from_millis(600)],
    }
}

fn job() -> JobMessage {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("svc").unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, 1_000))
}

async fn admin() -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running on 127.0.0.1:5672 for these tests");
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

async fn delete(config: &AmqpConfig) {
    let (_conn, ch) = admin().await;
    for q in [
        config.queue(),
        config.dead_queue(),
        config.retry_queue(1),
        config.retry_queue(2),
    ] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(config.exchange().into(), Default::default())
        .await;
}

#[tokio::test]
async fn publish_consume_ack_and_requeue() {
    let config = config(100);
    let queue = AmqpQueue::new(config.clone());
    let sent = job();
    queue.publish(&sent).await.expect("confirmed and routed");
    let mut consumer = queue.consume(1).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(JobMessage::decode(&first.body).unwrap(), sent);
    assert!(!first.redelivered);
    first.acker.reject(true).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
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

#[tokio::test]
async fn unreachable_broker_is_unavailable() {
    let mut config = config(10);
    config.url = "amqp://guest:guest@127.0.0.1:1/%2f".to_owned();
    config.timeout = Duration::from_secs(2);
    let queue = AmqpQueue::new(config);
    assert!(matches!(
        queue.publish(&job()).await,
        Err(PortError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn retries_come_back_after_their_delay_and_dead_letters_replay() {
    let config = config(100);
    let queue = AmqpQueue::new(config.clone());
    let sent = job();
    queue.publish(&sent).await.unwrap();
    let mut consumer = queue.consume(1).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.attempt, 0);
    let started = std::time::Instant::now();
    queue.retry_later(&first.body, 2).await.unwrap();
    first.acker.ack().await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
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
    let replayed = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap();
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
