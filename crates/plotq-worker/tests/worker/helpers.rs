//! The worker under test and the one way to drive it: `Harness` (the worker's ports over
//! the memory adapters, its store wrapped in `Faulty` so a test can fail, count or
//! explode its reads), `Harness::process` (one delivery to its end, with a recording
//! acker) and `Harness::start` (a running worker over the memory queue); the jobs the
//! tests send; renders held at a gate (`Gated`); waiting under `PATIENCE`.

use async_trait::async_trait;
use plotq_domain::wire::{EventId, EventKind, JobMessage, PlotEvent};
use plotq_domain::{JobId, JobState, MetricName, PlotKind, PlotSpec, Sample, ServiceName};
use plotq_ports::clock::now_ms;
use plotq_ports::faulty::{Fault, Faulty};
use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore};
use plotq_ports::{
    Acker, Breaker, BreakerConfig, Delivery, EventBus, JobQueue, ManualClock, MetricStore,
    PlotCache, PortError, PortResult,
};
use plotq_worker::{RenderSlots, Renderer, WorkerConfig, WorkerPorts};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long any test waits for something that should happen well before.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How a delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Ack,
    Requeue,
    Drop,
}

#[derive(Clone, Default)]
struct RecordingAcker(Arc<Mutex<Vec<Settled>>>);

impl RecordingAcker {
    fn settled(&self) -> Vec<Settled> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl Acker for RecordingAcker {
    async fn ack(&self) -> PortResult<bool> {
        self.0.lock().unwrap().push(Settled::Ack);
        Ok(true)
    }

    async fn reject(&self, requeue: bool) -> PortResult<()> {
        self.0.lock().unwrap().push(if requeue {
            Settled::Requeue
        } else {
            Settled::Drop
        });
        Ok(())
    }
}

/// The store's failure while MongoDB is down (transient: the job is retried).
pub fn outage() -> Fault {
    Fault::Fail(PortError::unavailable("mongodb", "injected outage"))
}

pub struct Harness {
    /// Reads fail, panic or are counted by its rules (`calls("points")`).
    pub store: Arc<Faulty<MemoryStore>>,
    pub queue: Arc<MemoryQueue>,
    pub cache: Arc<MemoryCache>,
    pub events: Arc<MemoryEventBus>,
    pub config: WorkerConfig,
}

impl Harness {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Faulty::new(MemoryStore::default())),
            // Retries come back at once: the tests are about what happens, not when.
            queue: Arc::new(MemoryQueue::with_retry_delays(100, vec![Duration::ZERO])),
            cache: Arc::new(MemoryCache::default()),
            events: Arc::new(MemoryEventBus::new(10_000)),
            config: WorkerConfig {
                prefetch: 2,
                render_deadline: Duration::from_secs(15),
                retry_pause: Duration::from_millis(10),
                max_attempts: 3,
                shutdown_grace: Duration::from_secs(10),
                ..WorkerConfig::default()
            },
        }
    }

    /// A harness holding checkout's samples (`ingest`), and a checkout job.
    pub async fn checkout() -> (Self, JobMessage) {
        let h = Self::new();
        h.ingest("checkout").await;
        (h, job("checkout"))
    }

    fn ports(&self) -> WorkerPorts {
        WorkerPorts {
            store: self.store.clone(),
            queue: self.queue.clone(),
            cache: self.cache.clone(),
            events: self.events.clone(),
        }
    }

    /// Samples for `service` inside the default window (the last 10 minutes).
    pub async fn ingest(&self, service: &str) {
        let now = now_ms();
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                service: ServiceName::parse(service).unwrap(),
                metric: MetricName::parse("latency_ms").unwrap(),
                value: 5.0 + (i % 17) as f64,
                timestamp_ms: now - 1_000 - i * 100,
                labels: plotq_domain::Labels::none(),
            })
            .collect();
        self.store.insert(&samples, None).await.unwrap();
    }

    /// `n` samples of `service`'s `metric` over the last minute, valued by `value(i)`.
    pub async fn ingest_values(&self, service: &str, metric: &str, n: i64, value: fn(i64) -> f64) {
        let now = now_ms();
        let samples: Vec<Sample> = (0..n)
            .map(|i| Sample {
                service: ServiceName::parse(service).unwrap(),
                metric: MetricName::parse(metric).unwrap(),
                value: value(i),
                timestamp_ms: now - 60_000 + i * 60_000 / n,
                labels: plotq_domain::Labels::none(),
            })
            .collect();
        self.store.insert(&samples, None).await.unwrap();
    }

    /// Reads of `service`'s samples panic, as a bug in the store's adapter would.
    pub fn store_panics_on(&self, service: &str) {
        self.store.always_about(
            "points",
            service,
            Fault::Panic(format!("store double exploded reading {service}")),
        );
    }

    /// Processes one delivery of `body` to the end, with a recording acker.
    pub async fn process(
        &self,
        body: Vec<u8>,
        redelivered: bool,
        slots: &RenderSlots,
    ) -> Vec<Settled> {
        let acker = RecordingAcker::default();
        let delivery = Delivery {
            body,
            redelivered,
            attempt: 0,
            acker: Box::new(acker.clone()),
        };
        tokio::time::timeout(
            PATIENCE,
            plotq_worker::process(&self.ports(), &self.config, slots, delivery),
        )
        .await
        .expect("process returned");
        acker.settled()
    }

    /// `process` on a task of its own, with fresh render slots, for a test that acts
    /// while the job runs (or is held).
    pub fn spawn_process(
        self: &Arc<Self>,
        job: &JobMessage,
    ) -> tokio::task::JoinHandle<Vec<Settled>> {
        let (h, body, slots) = (self.clone(), job.encode(), self.slots());
        tokio::spawn(async move { h.process(body, false, &slots).await })
    }

    /// Processes one delivery of `job`, acked once, and returns the job's state.
    pub async fn processed(&self, job: &JobMessage) -> JobState {
        assert_eq!(
            self.process(job.encode(), false, &self.slots()).await,
            [Settled::Ack]
        );
        self.state(job.id).await.unwrap()
    }

    pub fn slots(&self) -> RenderSlots {
        RenderSlots::for_config(&self.config)
    }

    pub async fn state(&self, id: JobId) -> Option<JobState> {
        self.cache.get_state(id).await.unwrap()
    }

    /// Every event on the bus, oldest first.
    pub async fn events(&self) -> Vec<PlotEvent> {
        self.events
            .history_after(EventId::ZERO, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    /// The kinds of the events of job `id`, in order.
    pub async fn events_of(&self, id: JobId) -> Vec<EventKind> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.id == id)
            .map(|e| e.event)
            .collect()
    }

    /// The final event of job `id`.
    pub async fn final_event(&self, id: JobId) -> PlotEvent {
        self.events()
            .await
            .into_iter()
            .find(|e| e.id == id && is_final(e.event))
            .expect("a final event")
    }

    /// Waits (under `PATIENCE`) until every job of `ids` has had a final event.
    pub async fn wait_final(&self, ids: &[JobId]) {
        let waiting = async {
            let mut after = EventId::ZERO;
            loop {
                let finished = self
                    .events()
                    .await
                    .into_iter()
                    .filter(|e| is_final(e.event))
                    .map(|e| e.id)
                    .collect::<Vec<_>>();
                if ids.iter().all(|id| finished.contains(id)) {
                    return;
                }
                if let Some(last) = self.events.last_id().await.unwrap() {
                    after = last;
                }
                self.events
                    .read_after(Some(after), Duration::from_secs(1))
                    .await
                    .unwrap();
            }
        };
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .expect("every job reached a final event");
    }

    /// Runs a worker until `job`, published now, has its final event, then stops it.
    pub async fn run_to_final(&self, job: &JobMessage) {
        let worker = self.start();
        self.queue.publish(job).await.unwrap();
        self.wait_final(&[job.id]).await;
        worker.stop().await;
    }

    /// Runs a worker over the memory queue until `stop`.
    pub fn start(&self) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(plotq_worker::run_until_stopped(
            self.ports(),
            self.config.clone(),
            shutdown.clone(),
        ));
        Running { shutdown, task }
    }

    /// Renders from now on wait at a gate the test opens, counted (see `Gated`).
    pub fn gate_renders(&mut self) -> Gated {
        let gated = Gated::default();
        let (gate, alive) = (gated.gate.clone(), gated.alive.clone());
        self.config.renderer = Renderer::new(move |spec, data| {
            let n = alive.now.fetch_add(1, Ordering::SeqCst) + 1;
            alive.max.fetch_max(n, Ordering::SeqCst);
            gate.wait();
            let out = plotq_render::render(spec, data);
            alive.now.fetch_sub(1, Ordering::SeqCst);
            out
        });
        gated
    }
}

fn is_final(kind: EventKind) -> bool {
    matches!(kind, EventKind::PlotReady | EventKind::PlotFailed)
}

/// A worker running on a task of its own.
pub struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Tells the worker to stop, without waiting.
    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Stops the worker and waits until it has settled everything it held.
    pub async fn stop(self) {
        self.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the worker stopped")
            .expect("the worker did not panic");
    }
}

/// A door render threads wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Render threads alive now, and the most ever alive at once.
#[derive(Default)]
struct Alive {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// The renders of a `Harness::gate_renders`: they wait at a gate until `open` (or until
/// this is dropped, so a failing test never leaves blocking threads behind), then
/// render for real; their threads are counted.
#[derive(Default)]
pub struct Gated {
    gate: Arc<Gate>,
    alive: Arc<Alive>,
}

impl Gated {
    pub fn open(&self) {
        self.gate.open();
    }

    /// Render threads alive now.
    pub fn alive(&self) -> usize {
        self.alive.now.load(Ordering::SeqCst)
    }

    /// The most render threads ever alive at once.
    pub fn max_alive(&self) -> usize {
        self.alive.max.load(Ordering::SeqCst)
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.gate.open();
    }
}

/// Polls a condition on state the test cannot await, under `PATIENCE`.
pub async fn wait_until(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

/// A histogram job of `service` over the default window.
pub fn job(service: &str) -> JobMessage {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse(service).unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, now_ms()))
}

/// A job over the last `window` of `service`.
pub fn job_over(service: &str, kind: PlotKind, window: &str) -> JobMessage {
    let mut spec = PlotSpec::new(kind, ServiceName::parse(service).unwrap());
    spec.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse(window).unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, now_ms()))
}

/// A job message that decodes as JSON but names no service (`"services": []`).
pub fn job_without_services() -> (JobId, Vec<u8>) {
    let message = job("checkout");
    let json = String::from_utf8(message.encode()).unwrap();
    let one_service = "\"services\":[\"checkout\"]";
    assert!(json.contains(one_service), "{json}");
    let body = json.replace(one_service, "\"services\":[]");
    (message.id, body.into_bytes())
}

/// A breaker for the store's dependency on a clock the test moves, closed.
pub fn store_breaker(clock: &ManualClock) -> Breaker {
    Breaker::new("mongodb", BreakerConfig::default(), Arc::new(clock.clone()))
}

/// `store_breaker`, already open (as the store's adapter leaves it when MongoDB stops
/// answering).
pub fn open_breaker(clock: &ManualClock) -> Breaker {
    let breaker = store_breaker(clock);
    breaker.admit_probe().unwrap().reached(false);
    assert!(!breaker.is_up());
    breaker
}

/// The breaker's probe finds the dependency back, a second later on its clock.
pub fn recover(breaker: &Breaker, clock: &ManualClock) {
    clock.advance(Duration::from_secs(1));
    breaker.admit_probe().unwrap().reached(true);
}
