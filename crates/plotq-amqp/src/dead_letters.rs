//! Listing and replaying the dead-letter queue (`<ns>.plot.dead`): every message is
//! taken on a connection of its own, and each is settled — replayed ones re-published
//! to the work exchange (confirmed, through the `Publisher`) and acked, the others put
//! back where they were. Reading the dead letters' headers is `headers.rs`'s.

use crate::config::AmqpConfig;
use crate::connection::open;
use crate::headers;
use crate::publisher::{Outgoing, Publisher};
use crate::redact::unavailable;
use crate::topology::ROUTING_KEY;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::FieldTable;
use plotq_ports::{DeadLetter, PortResult};

/// Takes every message of the dead-letter queue (up to `max`), lets `replay` decide
/// which to replay, and settles each; the letters seen and how many were replayed.
pub(crate) async fn sweep(
    config: &AmqpConfig,
    publisher: &Publisher,
    max: usize,
    replay: impl Fn(&DeadLetter) -> bool,
) -> PortResult<(Vec<DeadLetter>, usize)> {
    let (conn, channel) = open(config).await?;
    let mut taken = Vec::new();
    while taken.len() < max {
        let got = channel
            .basic_get(
                config.dead_queue().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(unavailable)?;
        let Some(message) = got else { break };
        let letter = headers::dead_letter_of(
            message.delivery.data.clone(),
            &message
                .delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default(),
        );
        taken.push((message.delivery.acker, letter));
    }
    let mut replayed = 0;
    let mut letters = Vec::with_capacity(taken.len());
    for (acker, letter) in taken {
        if replay(&letter) {
            let out = Outgoing {
                exchange: &config.exchange(),
                routing_key: ROUTING_KEY,
                body: &letter.body,
                headers: FieldTable::default(),
                message_id: None,
            };
            publisher.publish(config, out).await?;
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
