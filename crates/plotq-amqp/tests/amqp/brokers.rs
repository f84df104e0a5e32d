//! Reaching the broker: dead addresses of a cluster's list skipped, an unreachable
//! broker answered `Unavailable`, and errors that name `rabbitmq` and never carry
//! credentials.

use crate::helpers::{URL, config, delete, job, next};
use plotq_amqp::AmqpQueue;
use plotq_domain::wire::JobMessage;
use plotq_ports::{JobQueue, PortError};
use std::time::Duration;

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
        let got = next(&mut consumer).await;
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
