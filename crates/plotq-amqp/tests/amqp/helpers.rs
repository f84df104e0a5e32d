//! What every test of the binary shares: the broker's URL, the one way to make a queue's
//! config (`config`, a random namespace), a job, the next delivery, and an admin
//! channel past the adapter to count and delete what a test declared.

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use plotq_amqp::AmqpConfig;
use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use plotq_ports::{Delivery, JobConsumer};
use std::time::Duration;

pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A queue's config on the shared broker, in a fresh namespace, bounded at
/// `max_queued_jobs`, retrying after 300 ms then 600 ms.
pub fn config(max_queued_jobs: u32) -> AmqpConfig {
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

pub fn job() -> JobMessage {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("svc").unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, 1_000))
}

/// The consumer's next delivery, within 10 s.
pub async fn next(consumer: &mut Box<dyn JobConsumer>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a delivery within 10 s")
        .expect("the consumer is live")
}

/// A connection and channel of the test's own, past the adapter.
pub async fn admin() -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be running on 127.0.0.1:5672 for these tests");
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

/// Messages in `queue` now (a passive declare: fails if the queue does not exist).
pub async fn count(ch: &lapin::Channel, queue: &str) -> u32 {
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

/// Deletes the queues and the exchange `config`'s topology declared.
pub async fn delete(config: &AmqpConfig) {
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
