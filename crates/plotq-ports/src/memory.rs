//! In-process implementations of every port: the embedded standalone mode (`plotq`
//! with no external services) and fast doubles for unit tests.
//!
//! They keep the same promises as the real adapters where it matters to callers —
//! bounded memory (retention, queue bound, TTLs, history length, series-list bound),
//! inclusive data windows, retry tiers taken in order, redelivery of rejected jobs,
//! single-flight claims released only by their holder, exclusive event ids — but nothing
//! survives the process. Job and view states are kept in their wire form
//! (`wire::encode_state`, `wire::encode_view_state`), so they go through the same
//! versioning and validation as in Redis.
//!
//! Expiry (cache TTLs, view claims) and event ids follow a `Clock` (the system clock
//! unless `with_clock` gives a `ManualClock`), so tests move time instead of sleeping.
//! Event ids are made as Redis makes stream ids: `<clock ms>-<seq>`, the sequence
//! counting events within one millisecond, and never going backwards when the clock does.

use crate::clock::{Clock, SystemClock};
use crate::{
    Acker, DeadLetter, Delivery, EventBus, JobConsumer, JobQueue, MetricStore, PlotCache, Points,
    PortError, PortResult, StoredEvent, ViewRegistry,
};
use async_trait::async_trait;
use plotq_domain::wire::{
    EventId, JobMessage, PlotEvent, decode_state, decode_view_state, encode_state,
    encode_view_state,
};
use plotq_domain::{JobId, JobState, Sample, ViewState};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Samples kept per series in memory; the oldest go first.
const MAX_SAMPLES_PER_SERIES: usize = 2_000_000;
/// Samples older than this are dropped (the longest plot window).
const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

type SeriesKey = (String, String);

/// Samples in memory, per series in arrival order.
#[derive(Debug, Default)]
pub struct MemoryStore {
    series: Mutex<HashMap<SeriesKey, VecDeque<(i64, f64)>>>,
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert(&self, samples: &[Sample]) -> PortResult<()> {
        let mut series = self.series.lock().expect("store lock");
        for s in samples {
            let rows = series
                .entry((s.service.to_string(), s.metric.to_string()))
                .or_default();
            rows.push_back((s.timestamp_ms, s.value));
            let newest = s.timestamp_ms.max(rows.back().map_or(0, |r| r.0));
            while rows.len() > MAX_SAMPLES_PER_SERIES
                || rows.front().is_some_and(|r| r.0 < newest - RETENTION_MS)
            {
                rows.pop_front();
            }
        }
        Ok(())
    }

    async fn points(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
        with_timestamps: bool,
    ) -> PortResult<Points> {
        let series = self.series.lock().expect("store lock");
        let mut out = Points::default();
        if let Some(rows) = series.get(&(service.to_owned(), metric.to_owned())) {
            for &(ts, v) in rows
                .iter()
                .filter(|(ts, _)| (from_ms..=until_ms).contains(ts))
            {
                out.values.push(v);
                if with_timestamps {
                    out.timestamps_ms.push(ts);
                }
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

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

/// `now + ttl` in epoch ms, saturating.
fn expiry(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// Job states and PNGs in memory, expiring like Redis keys.
#[derive(Debug)]
pub struct MemoryCache {
    /// Key → (expiry, epoch ms; value).
    entries: Mutex<HashMap<String, (i64, Vec<u8>)>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryCache {
    /// Entries expire by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn put(&self, key: String, value: Vec<u8>, ttl: Duration) {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len().is_multiple_of(64) {
            entries.retain(|_, (expires, _)| *expires > now);
        }
        entries.insert(key, (expiry(now, ttl), value));
    }

    fn remove(&self, key: &str) {
        self.entries.lock().expect("cache lock").remove(key);
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.clock.now_ms();
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, v)| v.clone())
    }
}

#[async_trait]
impl PlotCache for MemoryCache {
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        self.put(format!("state:{}", state.id), encode_state(state), ttl);
        Ok(())
    }

    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        Ok(self
            .get(&format!("state:{id}"))
            .and_then(|b| decode_state(&b).ok()))
    }

    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        self.put(format!("img:{id}"), png.to_vec(), ttl);
        Ok(())
    }

    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        Ok(self.get(&format!("img:{id}")))
    }

    async fn claim_request(
        &self,
        key: &str,
        id: JobId,
        ttl: Duration,
    ) -> PortResult<Option<JobId>> {
        let key = format!("req:{key}");
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some((expires, holder)) = entries.get(&key)
            && *expires > now
        {
            return Ok(std::str::from_utf8(holder).ok().and_then(JobId::parse));
        }
        entries.insert(key, (expiry(now, ttl), id.to_string().into_bytes()));
        Ok(None)
    }

    async fn replace_request(&self, key: &str, id: JobId, ttl: Duration) -> PortResult<()> {
        self.put(format!("req:{key}"), id.to_string().into_bytes(), ttl);
        Ok(())
    }

    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        let key = format!("req:{key}");
        let mut entries = self.entries.lock().expect("cache lock");
        // An expired claim is as good as gone; a live one is removed only by its holder.
        if entries
            .get(&key)
            .is_some_and(|(_, holder)| holder.as_slice() == id.to_string().as_bytes())
        {
            entries.remove(&key);
        }
        Ok(())
    }

    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        self.remove(&format!("state:{id}"));
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

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
        max: usize,
    ) -> PortResult<Vec<StoredEvent>> {
        let after = after.unwrap_or_else(|| self.last());
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.notify.notified();
            let found = self.collect_after(after, max);
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

/// Series remembered by default (`touch_series`); past it the oldest-touched go.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Series not touched for this long drop out of the service list (it covers a week).
pub const SERIES_RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;

/// Watched views, series watermarks, view states and claims, in memory. The series list
/// is bounded (`max_series`, the most recently touched kept) and forgets series not
/// touched within `SERIES_RETENTION_MS`, like the Redis registry.
#[derive(Debug)]
pub struct MemoryViews {
    inner: Mutex<ViewsInner>,
    max_series: usize,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryViews {
    fn default() -> Self {
        Self::with_max_series(DEFAULT_MAX_SERIES)
    }
}

impl MemoryViews {
    /// A registry remembering at most `max_series` series (at least one).
    pub fn with_max_series(max_series: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_series: max_series.max(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// Refresh claims lapse by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[derive(Debug, Default)]
struct ViewsInner {
    leases: HashMap<String, i64>,
    touched: HashMap<(String, String), i64>,
    /// View → its state in wire form (`encode_view_state`).
    states: HashMap<String, Vec<u8>>,
    /// View → when its claim lapses, epoch ms.
    claims: HashMap<String, i64>,
}

#[async_trait]
impl ViewRegistry for MemoryViews {
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        for v in views {
            let lease = inner.leases.entry(v.clone()).or_insert(until_ms);
            *lease = (*lease).max(until_ms);
        }
        Ok(())
    }

    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>> {
        let mut inner = self.inner.lock().expect("views lock");
        inner.leases.retain(|_, until| *until > now_ms);
        let mut out: Vec<String> = inner.leases.keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        for s in series {
            inner.touched.insert(s.clone(), now_ms);
        }
        inner
            .touched
            .retain(|_, at| *at >= now_ms - SERIES_RETENTION_MS);
        let excess = inner.touched.len().saturating_sub(self.max_series);
        if excess > 0 {
            // Drop the oldest-touched series (ties broken by name, like a sorted set).
            let mut by_age: Vec<((String, String), i64)> = inner
                .touched
                .iter()
                .map(|(k, at)| (k.clone(), *at))
                .collect();
            by_age.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            for (key, _) in by_age.into_iter().take(excess) {
                inner.touched.remove(&key);
            }
        }
        Ok(())
    }

    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>> {
        let inner = self.inner.lock().expect("views lock");
        Ok(inner
            .touched
            .get(&(service.to_owned(), metric.to_owned()))
            .copied())
    }

    async fn services(&self, since_ms: i64) -> PortResult<Vec<String>> {
        let inner = self.inner.lock().expect("views lock");
        let mut out: Vec<String> = inner
            .touched
            .iter()
            .filter(|(_, at)| **at >= since_ms)
            .map(|((service, _), _)| service.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>> {
        let inner = self.inner.lock().expect("views lock");
        // Unreadable reads as unknown, as in Redis (it cannot happen here: we wrote it).
        Ok(inner
            .states
            .get(view)
            .and_then(|bytes| decode_view_state(bytes).ok()))
    }

    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()> {
        let mut inner = self.inner.lock().expect("views lock");
        inner
            .states
            .insert(view.to_owned(), encode_view_state(state));
        Ok(())
    }

    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool> {
        let now = self.clock.now_ms();
        let mut inner = self.inner.lock().expect("views lock");
        match inner.claims.get(view) {
            Some(until) if *until > now => Ok(false),
            _ => {
                inner.claims.insert(view.to_owned(), expiry(now, ttl));
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use plotq_domain::wire::EventKind;
    use plotq_domain::{PlotKind, PlotSpec, ServiceName};

    fn state() -> JobState {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("svc").unwrap());
        JobState::queued(JobId::new_random(), spec, 1_000)
    }

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

    #[tokio::test]
    async fn event_bus_replays_after_an_id_and_wakes_readers() {
        let bus = Arc::new(MemoryEventBus::new(2));
        assert_eq!(bus.last_id().await.unwrap(), None);
        let ev = PlotEvent::for_job(&state(), EventKind::PlotReady, 5);
        let first = bus.publish(&ev).await.unwrap();
        let reader = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.read_after(Some(first), Duration::from_secs(10), 10)
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
            .read_after(None, Duration::from_millis(10), 10)
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
        let read = bus
            .read_after(Some(ids[2]), Duration::ZERO, 10)
            .await
            .unwrap();
        assert_eq!(read.iter().map(|e| e.id).collect::<Vec<_>>(), ids[3..]);
    }

    fn sample(value: f64, timestamp_ms: i64) -> Sample {
        Sample {
            service: ServiceName::parse("svc").unwrap(),
            metric: plotq_domain::MetricName::parse("latency_ms").unwrap(),
            value,
            timestamp_ms,
        }
    }

    #[tokio::test]
    async fn points_include_both_ends_of_the_window() {
        let store = MemoryStore::default();
        let samples: Vec<Sample> = (0..10).map(|i| sample(i as f64, 1_000 * i)).collect();
        store.insert(&samples).await.unwrap();
        let got = store
            .points("svc", "latency_ms", 2_000, 5_000, true)
            .await
            .unwrap();
        // A sample at exactly `until` is drawn, as one at exactly `from` is.
        assert_eq!(got.values, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(got.timestamps_ms, vec![2_000, 3_000, 4_000, 5_000]);
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

    #[tokio::test]
    async fn release_request_removes_only_the_holders_claim() {
        let cache = MemoryCache::default();
        let ttl = Duration::from_secs(60);
        let (a, b) = (JobId::new_random(), JobId::new_random());
        assert_eq!(cache.claim_request("k", a, ttl).await.unwrap(), None);
        // Another job's release leaves a's claim in place.
        cache.release_request("k", b).await.unwrap();
        assert_eq!(cache.claim_request("k", b, ttl).await.unwrap(), Some(a));
        cache.release_request("k", a).await.unwrap();
        assert_eq!(cache.claim_request("k", b, ttl).await.unwrap(), None);
        // Releasing a claim that is not held is a no-op.
        cache.release_request("other", a).await.unwrap();
        assert_eq!(cache.claim_request("k", a, ttl).await.unwrap(), Some(b));
    }

    #[tokio::test]
    async fn delete_state_forgets_the_state_only() {
        let cache = MemoryCache::default();
        let s = state();
        let ttl = Duration::from_secs(60);
        cache.put_state(&s, ttl).await.unwrap();
        cache.put_image(s.id, b"png", ttl).await.unwrap();
        cache.delete_state(s.id).await.unwrap();
        assert_eq!(cache.get_state(s.id).await.unwrap(), None);
        assert_eq!(
            cache.get_image(s.id).await.unwrap().as_deref(),
            Some(&b"png"[..])
        );
        cache.delete_state(JobId::new_random()).await.unwrap();
    }

    #[tokio::test]
    async fn series_list_is_bounded_and_forgets_old_series() {
        let views = MemoryViews::with_max_series(3);
        let now = 1_795_000_000_000;
        let series = |s: &str| (s.to_owned(), "latency_ms".to_owned());
        views
            .touch_series(&[series("old")], now - SERIES_RETENTION_MS - 1)
            .await
            .unwrap();
        for (i, s) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            views
                .touch_series(&[series(s)], now + i as i64)
                .await
                .unwrap();
        }
        // Only the three most recently touched remain; the stale one expired.
        assert_eq!(views.services(0).await.unwrap(), vec!["c", "d", "e"]);
        assert_eq!(views.series_touched("a", "latency_ms").await.unwrap(), None);
        assert_eq!(
            views.series_touched("old", "latency_ms").await.unwrap(),
            None
        );
        // Touching again refreshes: "c" is now the newest, so "d" goes next.
        views.touch_series(&[series("c")], now + 10).await.unwrap();
        views.touch_series(&[series("f")], now + 11).await.unwrap();
        assert_eq!(views.services(0).await.unwrap(), vec!["c", "e", "f"]);
    }

    #[tokio::test]
    async fn expiry_follows_the_clock() {
        let clock = ManualClock::new(1_000_000);
        let cache = MemoryCache::default().with_clock(Arc::new(clock.clone()));
        let s = state();
        cache.put_state(&s, Duration::from_secs(10)).await.unwrap();
        let (a, b) = (JobId::new_random(), JobId::new_random());
        let ttl = Duration::from_secs(5);
        assert_eq!(cache.claim_request("k", a, ttl).await.unwrap(), None);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(cache.claim_request("k", b, ttl).await.unwrap(), Some(a));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            cache.claim_request("k", b, ttl).await.unwrap(),
            None,
            "a's claim lapsed"
        );
        assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s.clone()));
        clock.advance(Duration::from_secs(5));
        assert_eq!(cache.get_state(s.id).await.unwrap(), None);

        let views = MemoryViews::default().with_clock(Arc::new(clock.clone()));
        let debounce = Duration::from_secs(3);
        assert!(views.claim("v", debounce).await.unwrap());
        clock.advance(Duration::from_millis(2_999));
        assert!(!views.claim("v", debounce).await.unwrap());
        clock.advance(Duration::from_millis(1));
        assert!(views.claim("v", debounce).await.unwrap());
    }

    #[tokio::test]
    async fn view_states_round_trip_through_their_wire_form() {
        let views = MemoryViews::default();
        let s = state();
        let vs = ViewState {
            job_id: s.id,
            status: plotq_domain::JobStatus::Done,
            requested_ms: 1_000,
            last_ready: Some(PlotEvent::for_job(&s, EventKind::PlotReady, 2_000)),
            error: None,
        };
        assert_eq!(views.view_state("v").await.unwrap(), None);
        views.set_view_state("v", &vs).await.unwrap();
        assert_eq!(views.view_state("v").await.unwrap(), Some(vs));
    }

    #[tokio::test]
    async fn cache_expires_entries() {
        let cache = MemoryCache::default();
        let s = state();
        cache.put_state(&s, Duration::from_millis(0)).await.unwrap();
        assert!(cache.get_state(s.id).await.unwrap().is_none());
        cache.put_state(&s, Duration::from_secs(60)).await.unwrap();
        assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s));
    }
}
