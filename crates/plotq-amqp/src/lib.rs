//! `JobQueue` on RabbitMQ: the only crate that speaks AMQP.
//!
//! Topology (declared idempotently by every process that connects): a durable direct
//! exchange `<ns>.jobs` bound to a durable quorum queue `<ns>.plot.jobs` with an explicit
//! `x-delivery-limit` (the last guard against crash loops) and a length bound with
//! `x-overflow: reject-publish` (backpressure: a full queue nacks new jobs).
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
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use plotq_domain::wire::JobMessage;
use plotq_ports::{Acker, Delivery, JobConsumer, JobQueue, PortError, PortResult};
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
}

impl AmqpConfig {
    pub fn exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    pub fn queue(&self) -> String {
        format!("{}.plot.jobs", self.namespace)
    }
}

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

async fn declare_topology(channel: &Channel, config: &AmqpConfig) -> PortResult<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
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
    channel
        .queue_declare(
            config.queue().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .map_err(|e| {
            unavailable(format!(
                "declaring queue {} (if it exists with other arguments, delete it or use another namespace): {e}",
                config.queue()
            ))
        })?;
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

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        let channel = self.publishing_channel().await?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(ShortString::from(job.id.to_string()));
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let publish = async {
            channel
                .basic_publish(
                    self.config.exchange().into(),
                    ROUTING_KEY.into(),
                    options,
                    &job.encode(),
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
            Ok(delivery) => Some(Delivery {
                body: delivery.data,
                redelivered: delivery.redelivered,
                acker: Box::new(AmqpAcker(delivery.acker)),
            }),
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
