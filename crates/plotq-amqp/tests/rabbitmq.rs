//! `AmqpQueue` against the real RabbitMQ on 127.0.0.1:5672 (fails if it is not running):
//! confirmed publishing, consuming with acks and requeues, refusals that must never be
//! mistaken for acceptance (unroutable, queue full), the queue bound under a concurrent
//! flood, retry tiers, and errors that never carry credentials. Each test uses its own
//! random namespace and deletes the queues and exchange it created.

use futures::StreamExt;
use lapin::options::QueueDeclareOptions;
use lapin::options::QueueDeleteOptions;
use lapin::types::FieldTable;
use plotq_amqp::{AmqpConfig, AmqpQueue, PUBLISH_CHANNELS};
use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use plotq_ports::{JobQueue, PortError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        breaker: plotq_ports::Breaker::system("rabbitmq", plotq_ports::BreakerConfig::default()),
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

/// Messages in `queue` now (a passive declare: fails if the queue does not exist).
async fn count(ch: &lapin::Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("queue {queue} must exist: {e}"))
    .message_count()
}

async fn delete(config: &AmqpConfig) {
    let (_conn, ch) = admin().await;
    let mut queues = vec![config.queue(), config.dead_queue()];
    queues.extend(config.retry_queues());
    for q in queues {
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

/// Several broker addresses (a cluster's nodes): a dead one, first or last, is skipped,
/// and the jobs go through the live one; with every address dead the queue is
/// unavailable, naming the broker by position, never by its URL.
#[tokio::test]
async fn dead_broker_addresses_are_skipped() {
    let dead = "amqp://guest:s3cret-node@127.0.0.1:1/%2f";
    for url in [format!("{dead},{URL}"), format!("{URL}, {dead}")] {
        let mut config = config(100);
        config.url = url;
        let queue = AmqpQueue::new(config.clone());
        let sent = job();
        queue
            .publish(&sent)
            .await
            .expect("published through the live broker");
        let mut consumer = queue.consume(1).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(JobMessage::decode(&got.body).unwrap(), sent);
        assert!(got.acker.ack().await.unwrap());
        delete(&config).await;
    }
    let mut config = config(10);
    config.url = format!("{dead},{}", dead.replace(":1/", ":2/"));
    config.timeout = Duration::from_secs(2);
    match AmqpQueue::new(config).publish(&job()).await {
        Err(PortError::Unavailable { detail, .. }) => {
            assert!(detail.contains("broker"), "{detail}");
            assert!(!detail.contains("s3cret-node"), "{detail}");
        }
        other => panic!("every broker is down: {other:?}"),
    }
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

#[tokio::test]
async fn errors_name_rabbitmq_and_never_carry_credentials() {
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let cases = [
        // Wrong credentials: the broker answers ACCESS_REFUSED.
        format!("amqp://plotq-no-such-user:{password}@127.0.0.1:5672/%2f"),
        // Nobody listening.
        format!("amqp://plotq:{password}@127.0.0.1:1/%2f"),
        // Not a URL lapin accepts.
        format!("amqp://plotq:{password}@127.0.0.1:notaport/%2f"),
    ];
    for url in cases {
        let mut config = config(10);
        config.url = url.clone();
        config.timeout = Duration::from_secs(5);
        let queue = AmqpQueue::new(config.clone());
        for result in [
            queue.publish(&job()).await.err(),
            queue.ping().await.err(),
            queue.consume(1).await.err(),
            queue.dead_letters(1).await.err(),
        ] {
            let error = result.expect("an error");
            let text = format!("{error} {error:?}");
            eprintln!("{url} -> {error}");
            assert!(
                matches!(
                    error,
                    PortError::Unavailable {
                        dependency: "rabbitmq",
                        ..
                    }
                ),
                "{text}"
            );
            assert!(!text.contains(&password), "credentials in {text}");
            assert!(!text.contains(&url), "the URL in {text}");
        }
    }
}
