//! The consuming side of `AmqpQueue`: a consumer on a connection of its own, with
//! manual acks and a prefetch limit (`consume`), its deliveries (`AmqpConsumer`) and
//! their settlement (`AmqpAcker`). A lost connection ends the consumer (`next` gives
//! `None`) so its owner can reconnect.

use crate::config::AmqpConfig;
use crate::connection::open;
use crate::headers;
use crate::redact::{Redactor, unavailable};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection};
use plotq_ports::{Acker, Delivery, JobConsumer, PortResult};

/// A consumer of the work queue taking at most `prefetch` unsettled deliveries.
pub(crate) async fn consume(
    config: &AmqpConfig,
    redactor: &Redactor,
    prefetch: u16,
) -> PortResult<Box<dyn JobConsumer>> {
    let (conn, channel) = open(config).await?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(unavailable)?;
    let consumer = channel
        .basic_consume(
            config.queue().into(),
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
        redactor: redactor.clone(),
    }))
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
            Ok(delivery) => Some(Delivery {
                attempt: headers::attempt_of(delivery.properties.headers().as_ref()),
                body: delivery.data,
                redelivered: delivery.redelivered,
                acker: Box::new(AmqpAcker {
                    acker: delivery.acker,
                    redactor: self.redactor.clone(),
                }),
            }),
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
