//! The `Hub`: one per process, the single reader of the event bus (`tail`), the
//! in-memory broadcast to this process's SSE streams (`Relay`: each event encoded once
//! for all of them, and the process's shutdown), the views its clients watch (bounded,
//! their leases renewed), and the memory of final events already relayed. The SSE
//! handler itself is `events.rs`, a stream's body `stream.rs`.

use crate::refresh;
use crate::stream::{Relay, Relayed};
use plotq_domain::JobId;
use plotq_domain::wire::{EventId, EventKind};
use plotq_http::{Problem, ProblemCode};
use plotq_ports::clock::now_ms;
use plotq_ports::{Backoff, EventBus, ViewRegistry};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Settings of the SSE endpoint.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Interval of each stream's `:` keep-alive comments (below common proxy idle
    /// timeouts).
    pub keep_alive: Duration,
    /// Most events replayed to one reconnecting client.
    pub max_replay: usize,
    /// Events buffered per slow client before it skips ahead.
    pub client_buffer: usize,
    /// How long a view stays watched without renewal (survives a crashed replica).
    pub view_lease: Duration,
    /// How often this process renews the leases of its clients' views.
    pub lease_renewal: Duration,
    /// Most distinct views this process's clients may watch at once.
    pub max_watched_views: usize,
    /// How often a stream checks that its credential still holds (a ticket's expiry is
    /// met on time whatever this is).
    pub credential_recheck: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(10),
            max_replay: 1000,
            client_buffer: 1024,
            view_lease: Duration::from_secs(30),
            lease_renewal: Duration::from_secs(10),
            max_watched_views: 10_000,
            credential_recheck: Duration::from_secs(10),
        }
    }
}

/// The per-process fan-out point.
pub struct Hub {
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) registry: Arc<dyn ViewRegistry>,
    /// Views watched by this process's clients, with how many clients watch each.
    watching: Mutex<HashMap<String, usize>>,
    pub(crate) sender: broadcast::Sender<Arc<Relay>>,
    pub(crate) config: NotifierConfig,
    /// Set when the process shuts down, before `Relay::Shutdown` goes out: a stream that
    /// subscribed after it went out still sees that it must end.
    pub(crate) closing: Arc<AtomicBool>,
    /// False while the tail loop cannot read the bus (reported by `/readyz`).
    tailing: AtomicBool,
    /// Ends every SSE stream when the process shuts down, so graceful shutdown completes.
    pub(crate) shutdown: CancellationToken,
    /// Jobs whose final event was already relayed (duplicates from redelivery are dropped).
    announced: Mutex<Announced>,
}

/// How many finished job ids a hub remembers for de-duplication.
pub const ANNOUNCED_MEMORY: usize = 100_000;

/// A bounded set of (job id, final event kind), oldest evicted first.
#[derive(Default)]
struct Announced {
    ids: HashSet<(JobId, EventKind)>,
    order: std::collections::VecDeque<(JobId, EventKind)>,
}

impl Announced {
    /// True the first time `id` is seen with `kind`: a job is announced `plot.ready` once
    /// and `plot.failed` once, so a job failed for an outage and replayed from the
    /// dead-letter queue is still announced ready.
    fn first(&mut self, id: JobId, kind: EventKind) -> bool {
        if !self.ids.insert((id, kind)) {
            return false;
        }
        self.order.push_back((id, kind));
        if self.order.len() > ANNOUNCED_MEMORY
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// Whether `kind` ends a job (`plot.ready`, `plot.failed`).
pub(crate) fn is_final(kind: EventKind) -> bool {
    matches!(kind, EventKind::PlotReady | EventKind::PlotFailed)
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.sender.receiver_count())
            .finish()
    }
}

impl Hub {
    pub fn new(
        bus: Arc<dyn EventBus>,
        registry: Arc<dyn ViewRegistry>,
        config: NotifierConfig,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (sender, _) = broadcast::channel(config.client_buffer.max(16));
        Arc::new(Self {
            bus,
            registry,
            watching: Mutex::new(HashMap::new()),
            sender,
            config,
            closing: Arc::new(AtomicBool::new(false)),
            tailing: AtomicBool::new(false),
            shutdown,
            announced: Mutex::new(Announced::default()),
        })
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// Whether the tail loop is currently reading the bus.
    pub fn is_tailing(&self) -> bool {
        self.tailing.load(Ordering::Relaxed)
    }

    /// Connected SSE clients in this process.
    pub fn clients(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Views watched by this process's clients right now.
    pub fn watched_views(&self) -> Vec<String> {
        let watching = self.watching.lock().expect("watching lock");
        let mut views: Vec<String> = watching.keys().cloned().collect();
        views.sort();
        views
    }

    /// When a lease taken now lapses.
    pub(crate) fn lease_until(&self) -> i64 {
        now_ms() + self.config.view_lease.as_millis() as i64
    }

    /// Registers a client's views; the guard unregisters them when the client goes.
    /// `429` when they would take this process past `max_watched_views`.
    pub(crate) fn watch(self: &Arc<Self>, views: &[String]) -> Result<WatchGuard, Problem> {
        let mut watching = self.watching.lock().expect("watching lock");
        let new = views.iter().filter(|v| !watching.contains_key(*v)).count();
        if watching.len() + new > self.config.max_watched_views {
            return Err(Problem::new(
                ProblemCode::TooManyConnections,
                format!(
                    "this notifier already keeps {} views live (the limit); retry later",
                    self.config.max_watched_views
                ),
            )
            .with_retry_after(10));
        }
        for v in views {
            *watching.entry(v.clone()).or_default() += 1;
        }
        metrics::gauge!("plotq_watched_views").set(watching.len() as f64);
        Ok(WatchGuard {
            hub: self.clone(),
            views: views.to_vec(),
        })
    }

    /// Tails the bus and renews view leases until `shutdown`, then ends every stream;
    /// survives bus outages.
    pub async fn run_until_stopped(self: Arc<Self>) {
        let end_streams = async {
            self.shutdown.cancelled().await;
            self.closing.store(true, Ordering::SeqCst);
            // No receivers is fine: no stream is open.
            let _ = self.sender.send(Arc::new(Relay::Shutdown));
        };
        tokio::join!(
            self.clone().renew_leases(),
            self.clone().tail(),
            end_streams
        );
        tracing::info!("event hub stopped");
    }

    async fn renew_leases(self: Arc<Self>) {
        let mut interval = tokio::time::interval(self.config.lease_renewal);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            let views = self.watched_views();
            if let Err(e) = self.registry.watch(&views, self.lease_until()).await {
                tracing::warn!(error = %e, "cannot renew view leases; retrying");
            }
        }
    }

    /// The bus cannot be read: says so (`is_tailing`) and waits out `backoff`'s next
    /// delay; false when the hub is shut down meanwhile.
    async fn pause(&self, backoff: &mut Backoff) -> bool {
        self.tailing.store(false, Ordering::Relaxed);
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(backoff.next_delay()) => true,
        }
    }

    /// Reads the bus from its newest event on and relays every event (a job's final
    /// event once) to this process's streams, recording views' states on the way.
    async fn tail(self: Arc<Self>) {
        let shutdown = self.shutdown.clone();
        let mut last: Option<EventId> = None;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            if last.is_none() {
                match self.bus.last_id().await {
                    Ok(id) => {
                        // Reading from here on: whatever is published next is relayed.
                        last = Some(id.unwrap_or(EventId::ZERO));
                        self.tailing.store(true, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the event bus; retrying");
                        if !self.pause(&mut backoff).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.bus.read_after(last, Duration::from_secs(5)) => r,
            };
            match read {
                Ok(events) => {
                    self.tailing.store(true, Ordering::Relaxed);
                    backoff.reset();
                    for event in events {
                        last = Some(event.id);
                        if is_final(event.event.event)
                            && !self
                                .announced
                                .lock()
                                .expect("announced lock")
                                .first(event.event.id, event.event.event)
                        {
                            tracing::debug!(id = %event.event.id, "dropping a repeated final event");
                            continue;
                        }
                        if let Err(e) =
                            refresh::record_event(self.registry.as_ref(), &event.event).await
                        {
                            tracing::warn!(error = %e, "cannot record a view's state");
                        }
                        // No receivers is fine: nobody is listening right now.
                        let _ = self
                            .sender
                            .send(Arc::new(Relay::Event(Relayed::new(event))));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event bus read failed; retrying");
                    if !self.pause(&mut backoff).await {
                        break;
                    }
                }
            }
        }
    }
}

/// Keeps a client's views counted as watched for as long as its stream lives.
pub(crate) struct WatchGuard {
    hub: Arc<Hub>,
    views: Vec<String>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut watching = self.hub.watching.lock().expect("watching lock");
        for v in &self.views {
            if let Some(n) = watching.get_mut(v) {
                *n -= 1;
                if *n == 0 {
                    watching.remove(v);
                }
            }
        }
        metrics::gauge!("plotq_watched_views").set(watching.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_are_announced_once() {
        let mut announced = Announced::default();
        let id = JobId::new_random();
        assert!(announced.first(id, EventKind::PlotFailed));
        assert!(!announced.first(id, EventKind::PlotFailed));
        assert!(
            announced.first(id, EventKind::PlotReady),
            "a failed job replayed from the dead-letter queue is announced ready"
        );
        assert!(!announced.first(id, EventKind::PlotReady));
        for _ in 0..ANNOUNCED_MEMORY {
            announced.first(JobId::new_random(), EventKind::PlotReady);
        }
        assert!(
            announced.first(id, EventKind::PlotReady),
            "memory is bounded: the oldest id was forgotten"
        );
        assert_eq!(announced.ids.len(), ANNOUNCED_MEMORY);
    }
}
