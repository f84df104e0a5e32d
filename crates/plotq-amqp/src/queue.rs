//! `AmqpQueue`, the `JobQueue` on RabbitMQ (the twin of `plotq_ports::memory::queue`):
//! jobs, retries and dead letters published through the `Publisher`, each behind the
//! process's RabbitMQ breaker, consumers (`consumer.rs`), dead-letter listing and replay
//! (`dead_letters.rs`), and every error leaving the crate cleaned of credentials
//! (`Redactor`).
//!
//! Retry attempt k (1-based) waits `retry_delays[k - 1]` (the last repeats) in the
//! delay queue of its delay (`config.rs`). Jobs that gave up, and poison messages, wait
//! in the dead-letter queue with their reason in headers (`headers.rs`) until an
//! operator replays them.

use crate::config::AmqpConfig;
use crate::publisher::{Outgoing, Publisher};
use crate::redact::Redactor;
use crate::topology::ROUTING_KEY;
use crate::{consumer, dead_letters, headers};
use async_trait::async_trait;
use lapin::types::FieldTable;
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_ports::{DeadLetter, JobConsumer, JobQueue, PortResult};

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

    /// Publishes persistently with `mandatory`, behind the breaker, waiting for the
    /// confirm: `Ok` only when the broker confirmed the message and routed it to a queue.
    async fn publish_guarded(&self, out: Outgoing<'_>) -> PortResult<()> {
        let ticket = self.config.breaker.admit()?;
        let result = self.publisher.publish(&self.config, out).await;
        ticket.settle(self.clean(result))
    }
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        self.publish_guarded(Outgoing {
            exchange: &self.config.exchange(),
            routing_key: ROUTING_KEY,
            body: &job.encode(),
            headers: FieldTable::default(),
            message_id: Some(job.id.to_string()),
        })
        .await
    }

    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()> {
        self.publish_guarded(Outgoing {
            exchange: "",
            routing_key: &self.config.retry_queue(attempt),
            body,
            headers: headers::retry(attempt),
            message_id: None,
        })
        .await
    }

    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()> {
        let now = plotq_ports::clock::now_ms();
        self.publish_guarded(Outgoing {
            exchange: "",
            routing_key: &self.config.dead_queue(),
            body,
            headers: headers::dead_letter(attempts, reason, now),
            message_id: None,
        })
        .await
    }

    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>> {
        let swept = dead_letters::sweep(&self.config, &self.publisher, max, |_| false).await;
        self.clean(swept.map(|(letters, _)| letters))
    }

    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize> {
        let matches = |d: &DeadLetter| {
            id.is_none_or(|id| JobMessage::decode(&d.body).is_ok_and(|m| m.id == id))
        };
        let swept = dead_letters::sweep(&self.config, &self.publisher, usize::MAX, matches).await;
        self.clean(swept.map(|(_, n)| n))
    }

    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        self.clean(consumer::consume(&self.config, &self.redactor, prefetch).await)
    }

    async fn ping(&self) -> PortResult<()> {
        let ticket = self.config.breaker.admit_probe()?;
        ticket.settle(self.clean(self.publisher.ping(&self.config).await))
    }
}
