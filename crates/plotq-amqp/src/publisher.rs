//! The publishing side of `AmqpQueue`: one connection (declared topology, re-made when
//! lost) with [`PUBLISH_CHANNELS`] confirm-mode channels ("lanes"), each carrying at
//! most one publish at a time — sent, then held until its confirm arrived.
//!
//! Why at most one: a quorum queue applies `x-max-length` to what it already holds. When
//! an enqueue takes it past the bound, the queue tells each publishing channel to refuse
//! further publishes, but every publish already on its way is still enqueued. With
//! pipelined publishing (many unconfirmed messages per channel) a flood overshoots the
//! bound by about the number in flight — measured with one pipelined channel and 32
//! concurrent publishers: 64–75 accepted for a bound of 50, 32–33 for a bound of 5. The
//! broker checks after enqueueing, so even one publish at a time ends at the bound plus
//! one. With one unconfirmed publish per lane, at most `PUBLISH_CHANNELS` publishes of a
//! process are past the check at once, so the queue holds at most
//! `max_queued_jobs + PUBLISH_CHANNELS` jobs per publishing process (the crossing one
//! included) — measured 56–58 for 50 and 11–13 for 5 — while confirms still overlap
//! across lanes (about 6,000 confirmed publishes/s from one process on 2 cores, against
//! about 1,300–2,700/s with 4 lanes and 200/s with one). Once refused, a channel stays
//! refused until the queue has drained to about 80 % of its bound (the broker's
//! hysteresis).

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use plotq_ports::{PortError, PortResult};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::config::AmqpConfig;
use crate::connection::open;
use crate::redact::{DEPENDENCY, unavailable};

/// Publishing channels per `AmqpQueue` (per process), each with at most one publish
/// awaiting its confirm. This is also the most one publishing process can push the work
/// queue past `x-max-length` when many publish at once: the queue holds at most
/// `max_queued_jobs + PUBLISH_CHANNELS × publishing processes` jobs.
pub const PUBLISH_CHANNELS: usize = 8;

/// A confirm-mode channel of the connection of generation `generation`.
struct Lane {
    generation: u64,
    channel: Channel,
}

/// The publishing connection and its lanes.
pub(crate) struct Publisher {
    /// The live connection and its generation; `None` until first use and after a failure.
    connection: Mutex<Option<(u64, Connection)>>,
    /// Generation of the live connection (0: none). Lanes of older generations reconnect.
    live: AtomicU64,
    generations: AtomicU64,
    /// One permit per lane: holding one guarantees a free lane.
    permits: Semaphore,
    lanes: Vec<Mutex<Option<Lane>>>,
    next: AtomicUsize,
}

/// What to publish.
pub(crate) struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub headers: FieldTable,
    pub message_id: Option<String>,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Self {
            connection: Mutex::new(None),
            live: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            permits: Semaphore::new(PUBLISH_CHANNELS),
            lanes: (0..PUBLISH_CHANNELS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Publishes persistently with `mandatory` and waits for the confirm, all within
    /// `config.timeout`: `Ok` only when the broker confirmed the message and routed it.
    pub(crate) async fn publish(&self, config: &AmqpConfig, out: Outgoing<'_>) -> PortResult<()> {
        let deadline = Instant::now() + config.timeout;
        let (_permit, mut lane) = self.checkout(deadline).await?;
        let confirmation =
            match tokio::time::timeout_at(deadline, self.send(config, &mut lane, out)).await {
                Ok(Ok(confirmation)) => confirmation,
                Ok(Err(e)) => {
                    self.abandon(&mut lane).await;
                    return Err(e);
                }
                Err(_) => {
                    self.abandon(&mut lane).await;
                    return Err(unavailable(
                        "timed out connecting or waiting for the publisher confirm",
                    ));
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

    /// Makes sure there is a live publishing connection (with the topology declared) and
    /// a usable lane.
    pub(crate) async fn ping(&self, config: &AmqpConfig) -> PortResult<()> {
        let deadline = Instant::now() + config.timeout;
        let (_permit, mut lane) = self.checkout(deadline).await?;
        match tokio::time::timeout_at(deadline, self.channel(config, &mut lane)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.abandon(&mut lane).await;
                Err(unavailable("timed out connecting"))
            }
        }
    }

    /// A publishing permit (waited for until `deadline`) and a free lane.
    async fn checkout(
        &self,
        deadline: Instant,
    ) -> PortResult<(SemaphorePermit<'_>, MutexGuard<'_, Option<Lane>>)> {
        let permit = tokio::time::timeout_at(deadline, self.permits.acquire())
            .await
            .map_err(|_| unavailable("timed out waiting for a free publishing channel"))?
            .map_err(unavailable)?;
        Ok((permit, self.free_lane().await))
    }

    /// A lane nobody is using; called with a permit held, so one exists.
    async fn free_lane(&self) -> MutexGuard<'_, Option<Lane>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.lanes.len() {
            if let Ok(lane) = self.lanes[(start + i) % self.lanes.len()].try_lock() {
                return lane;
            }
        }
        // Unreachable while every lane holder holds a permit; waiting is still correct.
        self.lanes[start % self.lanes.len()].lock().await
    }

    async fn send(
        &self,
        config: &AmqpConfig,
        lane: &mut Option<Lane>,
        out: Outgoing<'_>,
    ) -> PortResult<Confirmation> {
        let channel = self.channel(config, lane).await?;
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(out.headers);
        if let Some(id) = out.message_id {
            properties = properties.with_message_id(ShortString::from(id));
        }
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = channel
            .basic_publish(
                out.exchange.into(),
                out.routing_key.into(),
                options,
                out.body,
                properties,
            )
            .await
            .map_err(|e| unavailable(format!("publishing: {e}")))?;
        confirm
            .await
            .map_err(|e| unavailable(format!("publishing: {e}")))
    }

    /// The lane's channel, (re)opening it — and the connection — when it is gone.
    async fn channel(&self, config: &AmqpConfig, lane: &mut Option<Lane>) -> PortResult<Channel> {
        if let Some(current) = lane.as_ref()
            && current.generation == self.live.load(Ordering::Acquire)
            && current.channel.status().connected()
        {
            return Ok(current.channel.clone());
        }
        *lane = None;
        let mut slot = self.connection.lock().await;
        let (generation, channel) = match slot.as_ref() {
            Some((generation, conn)) if conn.status().connected() => (
                *generation,
                conn.create_channel().await.map_err(unavailable)?,
            ),
            previous => {
                if previous.is_some() {
                    tracing::warn!("rabbitmq publishing connection lost; reconnecting");
                }
                *slot = None;
                self.live.store(0, Ordering::Release);
                let (conn, channel) = open(config).await?;
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                *slot = Some((generation, conn));
                self.live.store(generation, Ordering::Release);
                (generation, channel)
            }
        };
        drop(slot);
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        *lane = Some(Lane {
            generation,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// After a failed or timed-out publish: drops the lane's channel and its connection
    /// (if still the live one), so the next publish reconnects and re-declares the
    /// topology. Other lanes of that connection follow at their next use.
    async fn abandon(&self, lane: &mut Option<Lane>) {
        let Some(dead) = lane.take() else { return };
        let mut slot = self.connection.lock().await;
        if slot.as_ref().is_some_and(|(g, _)| *g == dead.generation) {
            *slot = None;
            self.live.store(0, Ordering::Release);
        }
    }
}
