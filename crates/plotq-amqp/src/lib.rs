//! `JobQueue` on RabbitMQ: the only crate that speaks AMQP.
//!
//! Topology (declared idempotently by every process that connects): a durable direct
//! exchange `<ns>.jobs` bound to a durable quorum queue `<ns>.plot.jobs` with an explicit
//! `x-delivery-limit` (the last guard against crash loops: past it the broker moves the
//! message to the dead-letter queue) and a length bound with `x-overflow: reject-publish`
//! (backpressure: a full queue nacks new jobs; concurrent publishes overshoot it by at
//! most [`PUBLISH_CHANNELS`] per publishing process). Retries wait in one durable queue per
//! backoff tier, `<ns>.plot.retry.<ms>ms`, whose `x-message-ttl` dead-letters them back
//! to the work exchange when the delay is over — a per-queue TTL, because per-message
//! TTLs only expire at the head of a queue. Jobs that gave up, and poison messages, wait
//! in `<ns>.plot.dead` with their reason in headers until an operator replays them. The
//! header names are `wire::amqp_headers`.
//!
//! Retry attempt k (1-based) waits `retry_delays[k - 1]` (the last repeats); there is one
//! delay queue per *distinct* delay (`config.rs`).
//!
//! Publishing waits for the publisher confirm and uses `mandatory`, so a job counts as
//! accepted only when the broker confirmed it *and* routed it to the queue. Messages are
//! persistent. Each process publishes on [`PUBLISH_CHANNELS`] channels with at most one
//! unconfirmed publish each, which is what bounds how far a flood can overshoot the
//! queue's length limit (`publisher.rs`). Consumers use manual acks and a prefetch limit.
//! A lost connection is not hidden: publishing reconnects on the next call, and a consumer
//! ends so its owner can reconnect (lapin's own auto-recovery is not used).
//!
//! The URL may list several broker addresses separated by commas (the nodes of a RabbitMQ
//! cluster): a new connection tries them in turn, starting from the last one that
//! worked, within one connect timeout.
//!
//! Every error is a `PortError` naming `rabbitmq`, with a detail stripped of credentials
//! (`redact.rs`).

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_domain::wire::amqp_headers::{ATTEMPT, BROKER_DEATH_REASON, DEAD_AT, REASON};
use plotq_ports::{Acker, DeadLetter, Delivery, JobConsumer, JobQueue, PortError, PortResult};
use std::sync::atomic::{AtomicUsize, Ordering};

mod config;
mod publisher;
mod redact;

pub use config::{AmqpConfig, check_url};
pub use publisher::PUBLISH_CHANNELS;

use publisher::{Outgoing, Publisher};
use redact::Redactor;

/// The name every error of this crate gives as its dependency.
pub(crate) const DEPENDENCY: &str = "rabbitmq";
const ROUTING_KEY: &str = "plot.render";

/// The job queue on RabbitMQ. Cheap to share behind an `Arc`.
pub struct AmqpQueue {
    config: AmqpConfig,
    publisher: Publisher,
    redactor: Redactor,
}

impl std::fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("queue", &self.config.queue())
            .finish()
    }
}

/// `Unavailable` from `rabbitmq`, any URL in the detail without its password (the
/// configured password is removed at the crate's edge, `AmqpQueue::clean`).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, redact::redact_urls(&e.to_string()))
}

impl AmqpQueue {
    /// Prepares the queue; the connection is made (and the topology declared) on first
    /// use and re-made after it is lost.
    pub fn new(config: AmqpConfig) -> Self {
        Self {
            redactor: Redactor::for_url(&config.url),
            config,
            publisher: Publisher::new(),
        }
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// Every error leaving the crate: dependency `rabbitmq`, no credentials in the detail.
    fn clean<T>(&self, result: PortResult<T>) -> PortResult<T> {
        result.map_err(|e| self.redactor.clean(e))
    }
}

/// Which broker address a new connection tries first: the last one that worked, or the
/// one after the last that failed (process-wide; every `AmqpQueue` of a process talks
/// to the same brokers).
static FIRST_ADDRESS: AtomicUsize = AtomicUsize::new(0);

/// A connection to the first broker address that accepts one, trying them in turn from
/// `FIRST_ADDRESS`, all within `config.timeout`: a node that refuses costs microseconds,
/// one that hangs spends the budget, and the next attempt starts past it.
async fn connect(config: &AmqpConfig) -> PortResult<Connection> {
    let addresses = config.addresses();
    let deadline = tokio::time::Instant::now() + config.timeout;
    let first = FIRST_ADDRESS.load(Ordering::Relaxed);
    let mut last_error = None;
    for k in 0..addresses.len() {
        let i = (first + k) % addresses.len();
        let attempt = Connection::connect(addresses[i], ConnectionProperties::default());
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(conn)) => {
                FIRST_ADDRESS.store(i, Ordering::Relaxed);
                return Ok(conn);
            }
            Ok(Err(e)) => last_error = Some(format!("connecting to broker {}: {e}", i + 1)),
            Err(_) => {
                FIRST_ADDRESS.store(i + 1, Ordering::Relaxed);
                return Err(unavailable(format!(
                    "timed out connecting to broker {}",
                    i + 1
                )));
            }
        }
        FIRST_ADDRESS.store(i + 1, Ordering::Relaxed);
    }
    Err(unavailable(
        last_error.unwrap_or_else(|| "no broker address".to_owned()),
    ))
}

/// A new connection and channel, with the topology declared.
async fn open(config: &AmqpConfig) -> PortResult<(Connection, Channel)> {
    let conn = connect(config).await?;
    let channel = conn.create_channel().await.map_err(unavailable)?;
    declare_topology(&channel, config).await?;
    Ok((conn, channel))
}

async fn declare_queue(channel: &Channel, name: String, args: FieldTable) -> PortResult<()> {
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            unavailable(format!(
                "declaring queue {name} (if it exists with other arguments, delete it or use another namespace): {e}"
            ))
        })
}

async fn declare_topology(channel: &Channel, config: &AmqpConfig) -> PortResult<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    declare_queue(channel, config.dead_queue(), FieldTable::default()).await?;
    // One delay queue per distinct delay; retry k goes to the queue of its delay
    // (`AmqpConfig::retry_queue`), so repeated delays share a queue.
    for delay in config.retry_tiers() {
        let mut args = FieldTable::default();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongUInt(config::ttl_ms(delay)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(config.exchange().into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(ROUTING_KEY.into()),
        );
        declare_queue(channel, config.retry_queue_for(delay), args).await?;
    }
    channel
        .exchange_declare(
            config.exchange().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| unavailable(format!("declaring exchange {}: {e}", config.exchange())))?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongUInt(config.delivery_limit),
    );
    args.insert(
        "x-max-length".into(),
        AMQPValue::LongUInt(config.max_queued_jobs),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    // Past the delivery limit (a job that keeps crashing its workers) the broker moves
    // the message to the dead-letter queue instead of dropping it.
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(config.dead_queue().into()),
    );
    declare_queue(channel, config.queue(), args).await?;
    channel
        .queue_bind(
            config.queue().into(),
            config.exchange().into(),
            ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

impl AmqpQueue {
    /// Publishes persistently with `mandatory`, waiting for the confirm: `Ok` only when
    /// the broker confirmed the message and routed it to a queue.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        message_id: Option<String>,
    ) -> PortResult<()> {
        let out = Outgoing {
            exchange,
            routing_key,
            body,
            headers,
            message_id,
        };
        self.publisher.publish(&self.config, out).await
    }

    /// Takes every message of the dead-letter queue (up to `max`), lets `keep` decide
    /// which to replay, and settles each: replayed ones are re-published to the work
    /// exchange and acked, the others go back where they were.
    async fn sweep_dead(
        &self,
        max: usize,
        replay: impl Fn(&DeadLetter) -> bool,
    ) -> PortResult<(Vec<DeadLetter>, usize)> {
        let (conn, channel) = open(&self.config).await?;
        let mut taken = Vec::new();
        while taken.len() < max {
            let got = channel
                .basic_get(
                    self.config.dead_queue().into(),
                    BasicGetOptions { no_ack: false },
                )
                .await
                .map_err(unavailable)?;
            let Some(message) = got else { break };
            let headers = message
                .delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default();
            let letter = DeadLetter {
                body: message.delivery.data.clone(),
                reason: header_str(&headers, REASON).unwrap_or_else(|| death_reason(&headers)),
                attempts: header_u32(&headers, ATTEMPT).unwrap_or(0),
                dead_at_ms: header_u64(&headers, DEAD_AT)
                    .and_then(|ms| i64::try_from(ms).ok())
                    .unwrap_or(0),
            };
            taken.push((message.delivery.acker, letter));
        }
        let mut replayed = 0;
        let mut letters = Vec::with_capacity(taken.len());
        for (acker, letter) in taken {
            if replay(&letter) {
                self.publish_confirmed(
                    &self.config.exchange(),
                    ROUTING_KEY,
                    &letter.body,
                    FieldTable::default(),
                    None,
                )
                .await?;
                acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(unavailable)?;
                replayed += 1;
            } else {
                acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await
                    .map_err(unavailable)?;
            }
            letters.push(letter);
        }
        let _ = channel.close(200, "done".into()).await;
        let _ = conn.close(200, "done".into()).await;
        Ok((letters, replayed))
    }
}

fn header_str(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_u64(headers: &FieldTable, key: &str) -> Option<u64> {
    match headers.inner().get(key)? {
        AMQPValue::LongUInt(v) => Some(u64::from(*v)),
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::ShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(u64::from(*v)),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}

fn header_u32(headers: &FieldTable, key: &str) -> Option<u32> {
    header_u64(headers, key).and_then(|v| u32::try_from(v).ok())
}

/// The broker's own reason (`x-first-death-reason`, e.g. `delivery_limit`) for messages
/// it dead-lettered itself.
fn death_reason(headers: &FieldTable) -> String {
    header_str(headers, BROKER_DEATH_REASON)
        .map(|r| format!("dead-lettered by the broker: {r}"))
        .unwrap_or_else(|| "dead-lettered by the broker".to_owned())
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        let ticket = self.config.breaker.admit()?;
        let result = self
            .publish_confirmed(
                &self.config.exchange(),
                ROUTING_KEY,
                &job.encode(),
                FieldTable::default(),
                Some(job.id.to_string()),
            )
            .await;
        ticket.settle(self.clean(result))
    }

    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()> {
        let ticket = self.config.breaker.admit()?;
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(attempt));
        let queue = self.config.retry_queue(attempt);
        let result = self
            .publish_confirmed("", &queue, body, headers, None)
            .await;
        ticket.settle(self.clean(result))
    }

    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()> {
        let ticket = self.config.breaker.admit()?;
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT.into(), AMQPValue::LongUInt(attempts));
        headers.insert(REASON.into(), AMQPValue::LongString(reason.into()));
        headers.insert(
            DEAD_AT.into(),
            AMQPValue::LongLongInt(plotq_ports::clock::now_ms()),
        );
        let queue = self.config.dead_queue();
        let result = self
            .publish_confirmed("", &queue, body, headers, None)
            .await;
        ticket.settle(self.clean(result))
    }

    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>> {
        self.clean(
            self.sweep_dead(max, |_| false)
                .await
                .map(|(letters, _)| letters),
        )
    }

    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize> {
        let matches = |d: &DeadLetter| {
            id.is_none_or(|id| JobMessage::decode(&d.body).is_ok_and(|m| m.id == id))
        };
        self.clean(self.sweep_dead(usize::MAX, matches).await.map(|(_, n)| n))
    }

    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        self.clean(self.start_consumer(prefetch).await)
    }

    async fn ping(&self) -> PortResult<()> {
        let ticket = self.config.breaker.admit_probe()?;
        ticket.settle(self.clean(self.publisher.ping(&self.config).await))
    }
}

impl AmqpQueue {
    async fn start_consumer(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        let (conn, channel) = open(&self.config).await?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                self.config.queue().into(),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(AmqpConsumer {
            _conn: conn,
            _channel: channel,
            consumer,
            redactor: self.redactor.clone(),
        }))
    }
}

struct AmqpConsumer {
    /// Kept so the connection lives as long as the consumer.
    _conn: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
    redactor: Redactor,
}

#[async_trait]
impl JobConsumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        match self.consumer.next().await? {
            Ok(delivery) => {
                let attempt = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| header_u32(h, ATTEMPT))
                    .unwrap_or(0);
                Some(Delivery {
                    body: delivery.data,
                    redelivered: delivery.redelivered,
                    attempt,
                    acker: Box::new(AmqpAcker {
                        acker: delivery.acker,
                        redactor: self.redactor.clone(),
                    }),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "rabbitmq consumer failed");
                None
            }
        }
    }
}

struct AmqpAcker {
    acker: lapin::Acker,
    redactor: Redactor,
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> PortResult<bool> {
        let result = self
            .acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(unavailable);
        result.map_err(|e| self.redactor.clean(e))
    }

    async fn reject(&self, requeue: bool) -> PortResult<()> {
        let result = self
            .acker
            .reject(BasicRejectOptions { requeue })
            .await
            .map(|_| ())
            .map_err(unavailable);
        result.map_err(|e| self.redactor.clean(e))
    }
}
