//! `Lanes`: the deliveries a worker holds and has not started, by lane (`wire::Lane`:
//! one per tenant, one for the refresher), taken in turn, with the sharing rule that
//! keeps a slot for another lane while several are active. What runs them is `run`'s.

use crate::panic::log_task_end;
use plotq_domain::wire::{JobMessage, Lane};
use plotq_ports::Delivery;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::task::JoinError;

/// Deliveries held and not yet started, by lane, taken in turn: one from each lane that
/// has any, in the order the lanes first had one, round and round. While two or more
/// lanes are active (had a job here within `SHARING_WINDOW`), no lane may hold every
/// render slot: each may run at most `slots - 1` jobs at once, so a job of another lane
/// finds a slot free instead of waiting for one to end. Alone, a lane uses every slot.
#[derive(Default)]
pub(crate) struct Lanes {
    waiting: HashMap<Option<Lane>, VecDeque<Delivery>>,
    /// The lanes with waiting deliveries, in turn order.
    turns: VecDeque<Option<Lane>>,
    len: usize,
    /// Each lane's jobs running in this worker now.
    running: HashMap<Option<Lane>, usize>,
    /// When each lane last had a job held or started here.
    seen: HashMap<Option<Lane>, Instant>,
    /// The lane of each running task, so it is counted ended however the task ends.
    tasks: HashMap<tokio::task::Id, Option<Lane>>,
}

/// How long a lane counts as active after it last had a job here.
const SHARING_WINDOW: Duration = Duration::from_secs(10);

impl Lanes {
    /// Holds `delivery` in its job's lane (undecodable ones share the lane of jobs
    /// without one; `process` dead-letters them).
    pub(crate) fn push(&mut self, delivery: Delivery) {
        let lane = JobMessage::decode(&delivery.body).ok().and_then(|m| m.lane);
        self.seen.insert(lane.clone(), Instant::now());
        let queue = self.waiting.entry(lane.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(lane);
        }
        queue.push_back(delivery);
        self.len += 1;
    }

    /// The most jobs one lane may run at once out of `slots`: all of them unless another
    /// lane is active too.
    fn share(&mut self, slots: usize) -> usize {
        let now = Instant::now();
        self.seen.retain(|lane, at| {
            now.duration_since(*at) < SHARING_WINDOW || self.running.contains_key(lane)
        });
        if self.seen.len() >= 2 {
            slots.saturating_sub(1).max(1)
        } else {
            slots
        }
    }

    /// The next delivery to start with `slots` render slots in all, and its lane: the
    /// oldest of the next lane in turn still under its share.
    pub(crate) fn next(&mut self, slots: usize) -> Option<(Option<Lane>, Delivery)> {
        let share = self.share(slots);
        for _ in 0..self.turns.len() {
            let lane = self.turns.pop_front()?;
            if self.running.get(&lane).copied().unwrap_or(0) >= share {
                self.turns.push_back(lane);
                continue;
            }
            let delivery = self.take(&lane)?;
            *self.running.entry(lane.clone()).or_default() += 1;
            self.seen.insert(lane.clone(), Instant::now());
            return Some((lane, delivery));
        }
        None
    }

    /// The oldest delivery of `lane`, whose turn it is (popped from `turns` already).
    fn take(&mut self, lane: &Option<Lane>) -> Option<Delivery> {
        let queue = self.waiting.get_mut(lane)?;
        let delivery = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(lane);
        } else {
            self.turns.push_back(lane.clone());
        }
        self.len -= 1;
        Some(delivery)
    }

    /// The job `next` gave, of `lane`, runs as task `id`.
    pub(crate) fn started(&mut self, id: tokio::task::Id, lane: Option<Lane>) {
        self.tasks.insert(id, lane);
    }

    /// A task `started` ended (however it ended); reports a task that panicked.
    pub(crate) fn ended(&mut self, end: Result<(tokio::task::Id, ()), JoinError>) {
        let id = match &end {
            Ok((id, ())) => *id,
            Err(e) => e.id(),
        };
        if let Some(lane) = self.tasks.remove(&id) {
            self.finish(&lane);
        }
        log_task_end(end.map(|_| ()));
    }

    /// One job of `lane` stopped running.
    fn finish(&mut self, lane: &Option<Lane>) {
        if let Some(n) = self.running.get_mut(lane) {
            *n -= 1;
            if *n == 0 {
                self.running.remove(lane);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Gives every held delivery back to the queue (requeued, not redelivered to this
    /// consumer's lost channel), bounded in time: a broker that is gone redelivers them
    /// by itself.
    pub(crate) async fn give_back(&mut self) {
        let mut back = Vec::new();
        while let Some(lane) = self.turns.pop_front() {
            back.extend(self.take(&lane));
        }
        if back.is_empty() {
            return;
        }
        tracing::info!(jobs = back.len(), "giving held jobs back to the queue");
        let requeue = async {
            for delivery in &back {
                if let Err(e) = delivery.acker.reject(true).await {
                    tracing::warn!(error = %e, "cannot give a held job back; the broker redelivers it");
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), requeue)
            .await
            .is_err()
        {
            tracing::warn!("giving held jobs back timed out; the broker redelivers them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
    use plotq_ports::Acker;

    struct NoAcker;

    #[async_trait::async_trait]
    impl Acker for NoAcker {
        async fn ack(&self) -> plotq_ports::PortResult<bool> {
            Ok(true)
        }
        async fn reject(&self, _requeue: bool) -> plotq_ports::PortResult<()> {
            Ok(())
        }
    }

    fn delivery(lane: &Lane, title: &str) -> Delivery {
        let mut spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        spec.title = Some(title.to_owned());
        let state = JobState::queued(JobId::new_random(), spec, 1_000);
        Delivery {
            body: JobMessage::new(&state).in_lane(lane.clone()).encode(),
            redelivered: false,
            attempt: 0,
            acker: Box::new(NoAcker),
        }
    }

    fn title(d: &Delivery) -> String {
        JobMessage::decode(&d.body).unwrap().spec.title.unwrap()
    }

    #[test]
    fn lanes_take_turns_and_share_the_slots_when_several_are_active() {
        let (busy, quiet) = (Lane::of_digest("aaaa"), Lane::of_digest("bbbb"));
        let mut lanes = Lanes::default();
        // Alone, a lane uses every slot.
        for i in 0..4 {
            lanes.push(delivery(&busy, &format!("b{i}")));
        }
        let (lane, first) = lanes.next(2).unwrap();
        assert_eq!((lane.as_ref(), title(&first).as_str()), (Some(&busy), "b0"));
        assert_eq!(title(&lanes.next(2).unwrap().1), "b1", "both slots");
        lanes.finish(&Some(busy.clone()));
        lanes.finish(&Some(busy.clone()));
        // Another lane arrives: each may hold one of the two slots now, and the quiet
        // lane's job is next although it came last.
        lanes.push(delivery(&quiet, "q0"));
        assert_eq!(title(&lanes.next(2).unwrap().1), "b2");
        assert_eq!(title(&lanes.next(2).unwrap().1), "q0");
        assert!(
            lanes.next(2).is_none(),
            "busy holds its share; the slot waits for another lane"
        );
        lanes.push(delivery(&quiet, "q1"));
        assert!(lanes.next(2).is_none(), "quiet holds its share too");
        lanes.finish(&Some(quiet.clone()));
        assert_eq!(
            title(&lanes.next(2).unwrap().1),
            "q1",
            "a job of another lane finds a slot"
        );
        lanes.finish(&Some(busy.clone()));
        assert_eq!(title(&lanes.next(2).unwrap().1), "b3");
        assert_eq!(lanes.len(), 0);
        // One slot in all: every lane may use it (a share is never zero).
        lanes.finish(&Some(busy.clone()));
        lanes.finish(&Some(quiet.clone()));
        lanes.push(delivery(&busy, "b4"));
        assert_eq!(title(&lanes.next(1).unwrap().1), "b4");
    }
}
