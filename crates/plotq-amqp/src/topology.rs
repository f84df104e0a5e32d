//! What every process declares on the broker, idempotently, when it connects: a durable
//! direct exchange `<ns>.jobs` bound to a durable quorum queue `<ns>.plot.jobs` with an
//! explicit `x-delivery-limit` (the last guard against crash loops: past it the broker
//! moves the message to the dead-letter queue) and a length bound with
//! `x-overflow: reject-publish` (backpressure: a full queue nacks new jobs); one durable
//! delay queue per distinct retry delay, `<ns>.plot.retry.<ms>ms`, whose `x-message-ttl`
//! dead-letters them back to the work exchange when the delay is over — a per-queue
//! TTL, because per-message TTLs only expire at the head of a queue; and
//! `<ns>.plot.dead`, where jobs that gave up and poison messages wait. The names and
//! tiers are `config.rs`'s; the queue arguments are built here without I/O
//! (`work_queue_args`, `retry_queue_args`), then declared (`declare`).

use crate::config::{AmqpConfig, ttl_ms};
use crate::redact::unavailable;
use lapin::Channel;
use lapin::ExchangeKind;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use plotq_ports::PortResult;
use std::time::Duration;

/// The routing key of jobs on the work exchange.
pub(crate) const ROUTING_KEY: &str = "plot.render";

/// The arguments of the work queue: quorum, delivery limit, length bound with
/// backpressure, and the dead-letter queue past the delivery limit.
fn work_queue_args(config: &AmqpConfig) -> FieldTable {
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
    args
}

/// The arguments of the delay queue of `delay`: its messages go back to the work
/// exchange once they have waited it.
fn retry_queue_args(config: &AmqpConfig, delay: Duration) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongUInt(ttl_ms(delay)));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(config.exchange().into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(ROUTING_KEY.into()),
    );
    args
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

/// Declares the exchange and every queue, and binds the work queue.
pub(crate) async fn declare(channel: &Channel, config: &AmqpConfig) -> PortResult<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    declare_queue(channel, config.dead_queue(), FieldTable::default()).await?;
    // One delay queue per distinct delay; retry k goes to the queue of its delay
    // (`AmqpConfig::retry_queue`), so repeated delays share a queue.
    for delay in config.retry_tiers() {
        declare_queue(
            channel,
            config.retry_queue_for(delay),
            retry_queue_args(config, delay),
        )
        .await?;
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
    declare_queue(channel, config.queue(), work_queue_args(config)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AmqpConfig {
        crate::config::example(&[2])
    }

    fn arg<'a>(args: &'a FieldTable, key: &str) -> &'a AMQPValue {
        args.inner().get(key).unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn the_work_queue_is_a_bounded_quorum_queue_dead_lettering_past_its_limit() {
        let args = work_queue_args(&config());
        assert_eq!(
            arg(&args, "x-queue-type"),
            &AMQPValue::LongString("quorum".into())
        );
        assert_eq!(arg(&args, "x-delivery-limit"), &AMQPValue::LongUInt(5));
        assert_eq!(arg(&args, "x-max-length"), &AMQPValue::LongUInt(10));
        assert_eq!(
            arg(&args, "x-overflow"),
            &AMQPValue::LongString("reject-publish".into())
        );
        assert_eq!(
            arg(&args, "x-dead-letter-routing-key"),
            &AMQPValue::LongString("ns.plot.dead".into())
        );
    }

    #[test]
    fn a_delay_queue_returns_its_messages_to_the_work_exchange_after_its_delay() {
        let args = retry_queue_args(&config(), Duration::from_millis(2_500));
        assert_eq!(arg(&args, "x-message-ttl"), &AMQPValue::LongUInt(2_500));
        assert_eq!(
            arg(&args, "x-dead-letter-exchange"),
            &AMQPValue::LongString("ns.jobs".into())
        );
        assert_eq!(
            arg(&args, "x-dead-letter-routing-key"),
            &AMQPValue::LongString(ROUTING_KEY.into())
        );
    }
}
