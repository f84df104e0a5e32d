//! `MemoryQueue`, the in-process `JobQueue`, with its `JobConsumer` and `Acker`: a
//! bounded channel shared by any number of consumers, retry tiers taken in order,
//! redelivery of rejected jobs, and dead letters kept in memory. Part of the embedded
//! standalone implementation, and a unit-test double.

use crate::error::{PortError, PortResult};
use crate::queue::{Acker, DeadLetter, Delivery, JobConsumer, JobQueue};
use async_trait::async_trait;
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A queued job body, whether it was delivered before, and its retry count.
type QueuedJob = (Vec<u8>, bool, u32);

/// A bounded in-process work queue shared by any number of consumers.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    tx: mpsc::Sender<QueuedJob>,
    /// Consumers take turns receiving; each delivery goes to exactly one of them.
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<QueuedJob>>>,
    /// Backoff before retry n: `retry_delays[n - 1]`, the last entry repeating. Kept as
    /// given (never deduplicated), so `1,1,5` waits 1 s, 1 s, then 5 s for every later retry.
    retry_delays: Arc<Vec<Duration>>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryQueue {
    pub fn new(capacity: usize) -> Self {
        Self::with_retry_delays(capacity, vec![Duration::from_secs(1)])
    }

    /// A queue whose retry `n` (1-based) waits `retry_delays[n - 1]`; the last delay
    /// repeats for later retries. An empty list means one second.
    pub fn with_retry_delays(capacity: usize, retry_delays: Vec<Duration>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            retry_delays: Arc::new(if retry_delays.is_empty() {
                vec![Duration::from_secs(1)]
            } else {
                retry_delays
            }),
            dead: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The backoff before retry `attempt` (1-based; 0 counts as 1).
    fn retry_delay(&self, attempt: u32) -> Duration {
        let index = (attempt.max(1) as usize - 1).min(self.retry_delays.len() - 1);
        self.retry_delays[index]
    }

    /// Jobs waiting in the queue (published or returned, not yet delivered).
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Enqueues `body` exactly as given, bypassing `JobMessage` encoding: how tests (and
    /// tools) put a malformed or foreign message on the queue.
    pub fn publish_raw(&self, body: &[u8]) -> PortResult<()> {
        self.tx
            .try_send((body.to_vec(), false, 0))
            .map_err(queue_send_error)
    }
}

fn queue_send_error<T>(e: mpsc::error::TrySendError<T>) -> PortError {
    match e {
        mpsc::error::TrySendError::Full(_) => PortError::refused("queue", "the queue is full"),
        mpsc::error::TrySendError::Closed(_) => PortError::unavailable("queue", "closed"),
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        self.publish_raw(&job.encode())
    }

    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()> {
        let delay = self.retry_delay(attempt);
        let (tx, body) = (self.tx.clone(), body.to_vec());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send((body, false, attempt)).await;
        });
        Ok(())
    }

    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()> {
        self.dead
            .lock()
            .expect("dead letters lock")
            .push(DeadLetter {
                body: body.to_vec(),
                reason: reason.to_owned(),
                attempts,
                dead_at_ms: crate::clock::now_ms(),
            });
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>> {
        let dead = self.dead.lock().expect("dead letters lock");
        Ok(dead.iter().take(max).cloned().collect())
    }

    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize> {
        let chosen: Vec<DeadLetter> = {
            let mut dead = self.dead.lock().expect("dead letters lock");
            let (chosen, kept): (Vec<_>, Vec<_>) = dead.drain(..).partition(|d| {
                id.is_none_or(|id| JobMessage::decode(&d.body).is_ok_and(|m| m.id == id))
            });
            *dead = kept;
            chosen
        };
        for d in &chosen {
            self.tx
                .send((d.body.clone(), false, 0))
                .await
                .map_err(|_| PortError::unavailable("queue", "closed"))?;
        }
        Ok(chosen.len())
    }

    async fn consume(&self, _prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        Ok(Box::new(MemoryConsumer {
            queue: self.clone(),
        }))
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

struct MemoryConsumer {
    queue: MemoryQueue,
}

#[async_trait]
impl JobConsumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Delivery> {
        let (body, redelivered, attempt) = self.queue.rx.lock().await.recv().await?;
        Some(Delivery {
            body: body.clone(),
            redelivered,
            attempt,
            acker: Box::new(MemoryAcker {
                tx: self.queue.tx.clone(),
                body,
                attempt,
            }),
        })
    }
}

struct MemoryAcker {
    tx: mpsc::Sender<QueuedJob>,
    body: Vec<u8>,
    attempt: u32,
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> PortResult<bool> {
        Ok(true)
    }

    async fn reject(&self, requeue: bool) -> PortResult<()> {
        if requeue {
            // Waits for room rather than dropping a job that was already accepted.
            self.tx
                .send((self.body.clone(), true, self.attempt))
                .await
                .map_err(|_| PortError::unavailable("queue", "closed"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::queued_state as state;

    #[tokio::test]
    async fn queue_redelivers_rejected_jobs_and_refuses_when_full() {
        let q = MemoryQueue::new(1);
        let msg = JobMessage::new(&state());
        q.publish(&msg).await.unwrap();
        assert!(matches!(
            q.publish(&msg).await,
            Err(PortError::Refused { .. })
        ));
        let mut c = q.consume(1).await.unwrap();
        let d = c.next().await.unwrap();
        assert!(!d.redelivered);
        d.acker.reject(true).await.unwrap();
        let again = c.next().await.unwrap();
        assert!(again.redelivered);
        assert_eq!(JobMessage::decode(&again.body).unwrap(), msg);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_tiers_are_used_in_order_and_the_last_repeats() {
        // `PLOTQ_RETRY_DELAYS=1,1,5`: repeated tiers count, so the third retry waits 5 s.
        let secs = |s| Duration::from_secs(s);
        let q = MemoryQueue::with_retry_delays(10, vec![secs(1), secs(1), secs(5)]);
        let mut c = q.consume(1).await.unwrap();
        let mut waited = Vec::new();
        for attempt in 1..=4u32 {
            let started = tokio::time::Instant::now();
            q.retry_later(b"job", attempt).await.unwrap();
            let d = c.next().await.unwrap();
            assert_eq!((d.body.as_slice(), d.attempt), (&b"job"[..], attempt));
            waited.push(started.elapsed().as_secs());
        }
        assert_eq!(waited, vec![1, 1, 5, 5]);
    }

    #[tokio::test]
    async fn raw_bodies_are_delivered_as_given() {
        let q = MemoryQueue::new(1);
        q.publish_raw(b"not json").unwrap();
        assert!(matches!(
            q.publish_raw(b"more"),
            Err(PortError::Refused { .. })
        ));
        let d = q.consume(1).await.unwrap().next().await.unwrap();
        assert_eq!(d.body, b"not json");
    }
}
