//! `JobQueue` on RabbitMQ: the only crate that speaks AMQP.
//!
//! Topology (declared idempotently by every process that connects): a durable direct
//! exchange `<ns>.jobs` bound to a durable quorum queue `<ns>.plot.jobs` with an explicit
//! `x-delivery-limit` (the last guard against crash loops: past it the broker moves the
//! message to the dead-letter queue) and a length bound with `x-overflow: reject-publish`
//! (backpressure: a full queue nacks new jobs). Retries wait in one durable queue per
//! backoff tier, `<ns>.plot.retry.<ms>ms`, whose `x-message-ttl` dead-letters them back
//! to the work exchange when the delay is over — a per-queue TTL, because per-message
//! TTLs only expire at the head of a queue. Jobs that gave up, and poison messages, wait
//! in `<ns>.plot.dead` with their reason in headers until an operator replays them.
//!
//! Publishing waits for the publisher confirm and uses `mandatory`, so a job counts as
//! accepted only when the broker confirmed it *and* routed it to the queue. Messages are
//! persistent. Consumers use manual acks and a prefetch limit. A lost connection is not
//! hidden: publishing reconnects on the next call, and a consumer ends so its owner can
//! reconnect (lapin's own auto-recovery is not used).

use async_trait::async_trait;
use futures::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_ports::{Acker, DeadLetter, Delivery, JobConsumer, JobQueue, PortError, PortResult};
use std::time::Duration;
use tokio::sync::Mutex;

const DEPENDENCY: &str = "rabbitmq";
const ROUTING_KEY: &str = "plot.render";

/// Where and how to reach the broker, and the queue's limits.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    pub url: String,
    /// Prefix of the exchange and queue names, so deployments can share a broker.
    pub namespace: String,
    /// Most jobs waiting in the queue; past it publishes are refused (429/503 upstream).
    pub max_queued_jobs: u32,
    /// Deliveries of one message before the broker drops it (crash-loop guard).
    pub delivery_limit: u32,
    /// Bound on connecting and on waiting for a publisher confirm.
    pub timeout: Duration,
    /// Backoff before each retry; retry n waits `retry_delays[n - 1]` (the last repeats).
    pub retry_delays: Vec<Duration>,
}

impl AmqpConfig {
    pub fn exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    pub fn queue(&self) -> String {
        format!("{}.plot.jobs", self.namespace)
    }

    pub fn dead_queue(&self) -> String {
        format!("{}.plot.dead", self.namespace)
    }

    /// The retry queue for retry `attempt` (1-based).
    pub fn retry_queue(&self, attempt: u32) -> String {
        format!(
            "{}.plot.retry.{}ms",
            self.namespace,
            self.retry_delay(attempt).as_millis()
        )
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        let tiers = &self.retry_delays;
        if tiers.is_empty() {
            return Duration::from_secs(1);
        }
        tiers[(attempt.max(1) as usize - 1).min(tiers.len() - 1)]
    }
}

const ATTEMPT_HEADER: &str = "x-plotq-attempt";
const REASON_HEADER: &str = "x-plotq-reason";
const DEAD_AT_HEADER: &str = "x-plotq-dead-at";

/// The job queue on RabbitMQ. Cheap to share behind an `Arc`.
pub struct AmqpQueue {
    config: AmqpConfig,
    /// The publishing connection and its confirm-mode channel; replaced when it dies.
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for AmqpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpQueue")
            .field("queue", &self.config.queue())
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> PortError {
    PortError::unavailable(DEPENDENCY, e)
}

impl AmqpQueue {
    /// Prepares the queue; the connection is made (and the topology declared) on first
    /// use and re-made after it is lost.
    pub fn new(config: AmqpConfig) -> Self {
        Self {
            config,
            publisher: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    async fn open(&self) -> PortResult<(Connection, Channel)> {
        let connect = Connection::connect(&self.config.url, ConnectionProperties::default());
        let conn = tokio::time::timeout(self.config.timeout, connect)
            .await
            .map_err(|_| unavailable("timed out connecting"))?
            .map_err(unavailable)?;
        let channel = conn.create_channel().await.map_err(unavailable)?;
        declare_topology(&channel, &self.config).await?;
        Ok((conn, channel))
    }

    /// The live publishing channel, reconnecting if the last one died.
    async fn publishing_channel(&self) -> PortResult<Channel> {
        let mut slot = self.publisher.lock().await;
        if let Some((conn, channel)) = slot.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
            tracing::warn!("rabbitmq publishing connection lost; reconnecting");
        }
        *slot = None;
        let (conn, channel) = self.open().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        *slot = Some((conn, channel.clone()));
        Ok(channel)
    }

    async fn forget_publisher(&self) {
        *self.publisher.lock().await = None;
    }
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
    let mut tiers: Vec<Duration> = config.retry_delays.clone();
    tiers.dedup();
    for (i, _) in tiers.iter().enumerate() {
        let mut args = FieldTable::default();
        let delay = config.retry_delay(i as u32 + 1);
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongUInt(delay.as_millis() as u32),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(config.exchange().into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(ROUTING_KEY.into()),
        );
        declare_queue(channel, config.retry_queue(i as u32 + 1), args).await?;
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
        let channel = self.publishing_channel().await?;
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        if let Some(id) = message_id {
            properties = properties.with_message_id(ShortString::from(id));
        }
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let publish = async {
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    options,
                    body,
                    properties,
                )
                .await?
                .await
        };
        let confirmation = match tokio::time::timeout(self.config.timeout, publish).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(e)) => {
                self.forget_publisher().await;
                return Err(unavailable(format!("publishing: {e}")));
            }
            Err(_) => {
                self.forget_publisher().await;
                return Err(unavailable("timed out waiting for the publisher confirm"));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(PortError::refused(
                    DEPENDENCY,
                    format!(
                        "the job was not routed to a queue ({} {})",
                        returned.reply_code, returned.reply_text
                    ),
                ))
            }
            Confirmation::Nack(None) => Err(PortError::refused(
                DEPENDENCY,
                "the broker refused the job (the queue is full)",
            )),
            Confirmation::NotRequested => Err(unavailable("publisher confirms are not enabled")),
        }
    }

    /// Takes every message of the dead-letter queue (up to `max`), lets `keep` decide
    /// which to replay, and settles each: replayed ones are re-published to the work
    /// exchange and acked, the others go back where they were.
    async fn sweep_dead(
        &self,
        max: usize,
        replay: impl Fn(&DeadLetter) -> bool,
    ) -> PortResult<(Vec<DeadLetter>, usize)> {
        let (conn, channel) = self.open().await?;
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
                reason: header_str(&headers, REASON_HEADER)
                    .unwrap_or_else(|| death_reason(&headers)),
                attempts: header_u32(&headers, ATTEMPT_HEADER).unwrap_or(0),
                dead_at_ms: header_u64(&headers, DEAD_AT_HEADER).unwrap_or(0) as i64,
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
    header_str(headers, "x-first-death-reason")
        .map(|r| format!("dead-lettered by the broker: {r}"))
        .unwrap_or_else(|| "dead-lettered by the broker".to_owned())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        self.publish_confirmed(
            &self.config.exchange(),
            ROUTING_KEY,
            &job.encode(),
            FieldTable::default(),
            Some(job.id.to_string()),
        )
        .await
    }

    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()> {
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempt));
        self.publish_confirmed("", &self.config.retry_queue(attempt), body, headers, None)
            .await
    }

    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()> {
        let mut headers = FieldTable::default();
        headers.insert(ATTEMPT_HEADER.into(), AMQPValue::LongUInt(attempts));
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(
            DEAD_AT_HEADER.into(),
            AMQPValue::LongLongInt(now_ms() as i64),
        );
        self.publish_confirmed("", &self.config.dead_queue(), body, headers, None)
            .await
    }

    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>> {
        Ok(self.sweep_dead(max, |_| false).await?.0)
    }

    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize> {
        let matches = |d: &DeadLetter| {
            id.is_none_or(|id| JobMessage::decode(&d.body).is_ok_and(|m| m.id == id))
        };
        Ok(self.sweep_dead(usize::MAX, matches).await?.1)
    }

    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        let (conn, channel) = self.open().await?;
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
        }))
    }

    async fn ping(&self) -> PortResult<()> {
        self.publishing_channel().await.map(|_| ())
    }
}

struct AmqpConsumer {
    /// Kept so the connection lives as long as the consumer.
    _conn: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
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
                    .and_then(|h| header_u32(h, ATTEMPT_HEADER))
                    .unwrap_or(0);
                Some(Delivery {
                    body: delivery.data,
                    redelivered: delivery.redelivered,
                    attempt,
                    acker: Box::new(AmqpAcker(delivery.acker)),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "rabbitmq consumer failed");
                None
            }
        }
    }
}

struct AmqpAcker(lapin::Acker);

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> PortResult<bool> {
        self.0
            .ack(BasicAckOptions::default())
            .await
            .map_err(unavailable)
    }

    async fn reject(&self, requeue: bool) -> PortResult<()> {
        self.0
            .reject(BasicRejectOptions { requeue })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
