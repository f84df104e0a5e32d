//! `MemoryEventBus`, the in-process `EventBus`: a bounded event history with waiting
//! readers. Event ids are made as Redis makes stream ids, `<clock ms>-<seq>`, the
//! sequence counting events within one millisecond and never going backwards when the
//! `Clock` does. Part of the embedded standalone implementation, and a unit-test double.

use crate::clock::{Clock, SystemClock};
use crate::error::PortResult;
use crate::events::{EventBus, StoredEvent};
use async_trait::async_trait;
use plotq_domain::wire::{EventId, PlotEvent};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A bounded event history with waiting readers.
#[derive(Debug)]
pub struct MemoryEventBus {
    inner: Mutex<EventLog>,
    notify: Notify,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct EventLog {
    /// The newest id handed out (`ZERO` before the first event).
    last: EventId,
    capacity: usize,
    events: VecDeque<StoredEvent>,
}

impl EventLog {
    /// The id after `last` at `now_ms`, as Redis makes stream ids: the clock's
    /// millisecond with sequence 0, or, while the clock has not passed the last id's
    /// millisecond (same millisecond, or a clock that went back), the last id's
    /// millisecond with the next sequence.
    fn next_id(&mut self, now_ms: i64) -> EventId {
        let now = u64::try_from(now_ms).unwrap_or(0);
        let last = self.last;
        self.last = if now > last.ms {
            EventId { ms: now, seq: 0 }
        } else {
            match last.seq.checked_add(1) {
                Some(seq) => EventId { ms: last.ms, seq },
                None => EventId {
                    ms: last.ms.saturating_add(1),
                    seq: 0,
                },
            }
        };
        self.last
    }
}

impl MemoryEventBus {
    /// A bus keeping the last `capacity` events (at least one) as history.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(EventLog {
                last: EventId::ZERO,
                capacity: capacity.max(1),
                events: VecDeque::new(),
            }),
            notify: Notify::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Event ids take their milliseconds from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn collect_after(&self, after: EventId, max: usize) -> Vec<StoredEvent> {
        let log = self.inner.lock().expect("event log lock");
        // Ids increase along the log: skip to the first one past `after`.
        let start = log.events.partition_point(|e| e.id <= after);
        log.events.range(start..).take(max).cloned().collect()
    }

    fn last(&self) -> EventId {
        self.inner.lock().expect("event log lock").last
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, event: &PlotEvent) -> PortResult<EventId> {
        let now = self.clock.now_ms();
        let id = {
            let mut log = self.inner.lock().expect("event log lock");
            let id = log.next_id(now);
            log.events.push_back(StoredEvent {
                id,
                event: event.clone(),
            });
            while log.events.len() > log.capacity {
                log.events.pop_front();
            }
            id
        };
        self.notify.notify_waiters();
        Ok(id)
    }

    async fn read_after(
        &self,
        after: Option<EventId>,
        block: Duration,
    ) -> PortResult<Vec<StoredEvent>> {
        let after = after.unwrap_or_else(|| self.last());
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.notify.notified();
            let found = self.collect_after(after, crate::READ_BATCH);
            if !found.is_empty() {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn last_id(&self) -> PortResult<Option<EventId>> {
        let last = self.last();
        Ok((last != EventId::ZERO).then_some(last))
    }

    async fn history_after(&self, after: EventId, max: usize) -> PortResult<Vec<StoredEvent>> {
        Ok(self.collect_after(after, max))
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::contract::queued_state as state;
    use plotq_domain::wire::EventKind;

    #[tokio::test]
    async fn event_bus_replays_after_an_id_and_wakes_readers() {
        let bus = Arc::new(MemoryEventBus::new(2));
        assert_eq!(bus.last_id().await.unwrap(), None);
        let ev = PlotEvent::for_job(&state(), EventKind::PlotReady, 5);
        let first = bus.publish(&ev).await.unwrap();
        let reader = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.read_after(Some(first), Duration::from_secs(10))
                    .await
                    .unwrap()
            })
        };
        tokio::task::yield_now().await;
        let second = bus.publish(&ev).await.unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, second);
        let third = bus.publish(&ev).await.unwrap();
        assert_eq!(bus.last_id().await.unwrap(), Some(third));
        // Capacity 2: the first event has been dropped from history.
        let history = bus.history_after(EventId::ZERO, 10).await.unwrap();
        let ids: Vec<EventId> = history.iter().map(|e| e.id).collect();
        assert_eq!(ids, [second, third]);
        // A reader starting now (`None`) waits for the next event only.
        let none = bus
            .read_after(None, Duration::from_millis(10))
            .await
            .unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn event_ids_are_made_like_redis_stream_ids_and_ordered() {
        let clock = ManualClock::new(1_700_000_000_000);
        let bus = MemoryEventBus::new(100).with_clock(Arc::new(clock.clone()));
        let ev = PlotEvent::for_job(&state(), EventKind::PlotReady, 5);
        let mut ids = Vec::new();
        // Same millisecond: the sequence counts.
        ids.push(bus.publish(&ev).await.unwrap());
        ids.push(bus.publish(&ev).await.unwrap());
        // Time moves on: sequence 0 of the new millisecond.
        clock.advance(Duration::from_millis(5));
        ids.push(bus.publish(&ev).await.unwrap());
        // The clock goes back: ids still increase, within the last millisecond.
        clock.set(1_600_000_000_000);
        ids.push(bus.publish(&ev).await.unwrap());
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "1700000000000-0",
                "1700000000000-1",
                "1700000000005-0",
                "1700000000005-1"
            ]
        );
        assert!(ids.is_sorted());
        for id in &ids {
            assert_eq!(EventId::parse(&id.to_string()), Some(*id));
        }
        // History is exclusive of `after`, oldest first, and bounded by `max`.
        let after = |id, max| {
            let bus = &bus;
            async move {
                bus.history_after(id, max)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(after(EventId::ZERO, 100).await, ids);
        assert_eq!(after(ids[1], 100).await, ids[2..]);
        assert_eq!(after(ids[0], 2).await, ids[1..3]);
        assert_eq!(after(ids[3], 100).await, []);
        // An id the bus never wrote still orders: between two of its events.
        let between = EventId {
            ms: 1_700_000_000_003,
            seq: 7,
        };
        assert_eq!(after(between, 100).await, ids[2..]);
        let read = bus.read_after(Some(ids[2]), Duration::ZERO).await.unwrap();
        assert_eq!(read.iter().map(|e| e.id).collect::<Vec<_>>(), ids[3..]);
    }
}
