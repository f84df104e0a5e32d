//! The `JobQueue` port, the durable work queue between the api and the workers, and
//! what consuming it hands out: `JobConsumer` (a stream of deliveries), `Delivery` and
//! its `Acker` (settled exactly once), and `DeadLetter`. Implemented by `plotq-amqp` and
//! `memory::MemoryQueue`.

use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;

/// The durable work queue between the api and the workers.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Enqueues a job; returns only once the queue has durably accepted it.
    async fn publish(&self, job: &JobMessage) -> PortResult<()>;
    /// Schedules a delivery again after the backoff of retry `attempt` (1-based), durably;
    /// the caller acks the original only after this returned.
    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()>;
    /// Moves a job to the dead-letter queue with the reason it is there.
    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()>;
    /// The dead letters (oldest first, at most `max`), left in place.
    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>>;
    /// Re-enqueues dead letters (all, or the one of job `id`) as fresh jobs; returns how
    /// many were moved.
    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize>;
    /// Starts consuming with at most `prefetch` unacknowledged deliveries.
    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>>;
    /// Readiness probe.
    async fn ping(&self) -> PortResult<()>;
}

/// A stream of deliveries for one worker.
#[async_trait]
pub trait JobConsumer: Send {
    /// The next delivery; `None` when the consumer was closed (connection lost, shutdown).
    async fn next(&mut self) -> Option<Delivery>;
}

/// A job in the dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub reason: String,
    pub attempts: u32,
    /// When it was dead-lettered, epoch ms (0 if unknown).
    pub dead_at_ms: i64,
}

/// One delivered job, to be settled exactly once.
pub struct Delivery {
    pub body: Vec<u8>,
    /// The queue delivered this message before (a worker died or gave it back).
    pub redelivered: bool,
    /// Retries already made (0 on the first attempt).
    pub attempt: u32,
    pub acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("bytes", &self.body.len())
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// Settles one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    /// Done with it. `Ok(false)` means the channel was gone: the queue will redeliver it.
    async fn ack(&self) -> PortResult<bool>;
    /// Give it back (`requeue`) or drop it (dead-letter, where configured).
    async fn reject(&self, requeue: bool) -> PortResult<()>;
}
