//! The worker over the in-memory ports, with fault-injecting doubles: a store that fails
//! or panics on demand, a renderer that blocks or panics, and an acker that records how
//! each delivery was settled. Every test asserts on job states (their timings and
//! statistics included), events, dead letters, settlements and metrics (a recorder
//! local to the test's thread), never on logs, and waits on events or state under a
//! deadline.

use async_trait::async_trait;
use plotq_domain::DataSource;
use plotq_domain::wire::{EventId, EventKind, JobMessage, PlotEvent};
use plotq_domain::{
    JobId, JobState, JobStatus, MetricName, PlotKind, PlotSpec, Sample, ServiceName,
};
use plotq_ports::clock::now_ms;
use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore};
use plotq_ports::{
    Acker, Delivery, EventBus, JobQueue, MetricStore, PlotCache, Points, PortError, PortResult,
    SeriesQuery,
};
use plotq_worker::{RenderSlots, Renderer, WorkerConfig, WorkerPorts};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long any test waits for something that should happen well before.
const PATIENCE: Duration = Duration::from_secs(20);

/// A `MetricStore` over `MemoryStore` that fails (transiently) the next `fail` reads, or
/// every read when `fail` is `u32::MAX`, and panics on reads of `panic_on` service.
#[derive(Default)]
struct FaultyStore {
    inner: MemoryStore,
    fail: AtomicU32,
    panic_on: Mutex<Option<String>>,
    reads: AtomicU32,
    /// A breaker a failing read marks down, as the real adapter's would.
    trips: Mutex<Option<plotq_ports::Breaker>>,
}

impl FaultyStore {
    fn fail_next(&self, n: u32) {
        self.fail.store(n, Ordering::SeqCst);
    }

    fn panic_on(&self, service: &str) {
        *self.panic_on.lock().unwrap() = Some(service.to_owned());
    }

    fn reads(&self) -> u32 {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl MetricStore for FaultyStore {
    async fn insert(
        &self,
        samples: &[Sample],
        batch: Option<&plotq_domain::chunk::BatchId>,
    ) -> PortResult<()> {
        self.inner.insert(samples, batch).await
    }

    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        let service = query.service;
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.panic_on.lock().unwrap().as_deref() == Some(service) {
            panic!("store double exploded reading {service}");
        }
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 | u32::MAX => None,
                n => Some(n - 1),
            })
            .map_or_else(|n| n == u32::MAX, |_| true);
        if failing {
            if let Some(breaker) = self.trips.lock().unwrap().as_ref()
                && let Ok(ticket) = breaker.admit_probe()
            {
                ticket.reached(false);
            }
            return Err(PortError::unavailable("mongodb", "injected outage"));
        }
        self.inner.points(query).await
    }

    async fn rollups(&self, query: &SeriesQuery<'_>) -> PortResult<plotq_ports::Rollups> {
        self.inner.rollups(query).await
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

/// How a delivery was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
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

/// A door render threads wait at until the test opens it (opened on drop, so a failing
/// test never leaves blocking threads behind).
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

struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Render threads alive now, and the most ever alive at once.
#[derive(Default)]
struct Alive {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A renderer that waits at `gate`, then renders for real; it counts its threads.
fn gated_renderer(gate: Arc<Gate>, alive: Arc<Alive>) -> Renderer {
    Renderer::new(move |spec, data| {
        let n = alive.now.fetch_add(1, Ordering::SeqCst) + 1;
        alive.max.fetch_max(n, Ordering::SeqCst);
        gate.wait();
        let out = plotq_render::render(spec, data);
        alive.now.fetch_sub(1, Ordering::SeqCst);
        out
    })
}

struct Harness {
    store: Arc<FaultyStore>,
    queue: Arc<MemoryQueue>,
    cache: Arc<MemoryCache>,
    events: Arc<MemoryEventBus>,
    config: WorkerConfig,
}

impl Harness {
    fn new() -> Self {
        Self {
            store: Arc::new(FaultyStore::default()),
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

    fn ports(&self) -> WorkerPorts {
        WorkerPorts {
            store: self.store.clone(),
            queue: self.queue.clone(),
            cache: self.cache.clone(),
            events: self.events.clone(),
        }
    }

    /// Samples for `service` inside the default window (the last 10 minutes).
    async fn ingest(&self, service: &str) {
        let now = now_ms();
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                service: ServiceName::parse(service).unwrap(),
                metric: MetricName::parse("latency_ms").unwrap(),
                value: 5.0 + (i % 17) as f64,
                timestamp_ms: now - 1_000 - i * 100,
            })
            .collect();
        self.store.insert(&samples, None).await.unwrap();
    }

    /// Processes one delivery of `body` to the end, with a recording acker.
    async fn process(&self, body: Vec<u8>, redelivered: bool, slots: &RenderSlots) -> Vec<Settled> {
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

    fn slots(&self) -> RenderSlots {
        RenderSlots::for_config(&self.config)
    }

    async fn state(&self, id: JobId) -> Option<JobState> {
        self.cache.get_state(id).await.unwrap()
    }

    /// Every event on the bus, oldest first.
    async fn events(&self) -> Vec<PlotEvent> {
        self.events
            .history_after(EventId::ZERO, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    /// The kinds of the events of job `id`, in order.
    async fn events_of(&self, id: JobId) -> Vec<EventKind> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.id == id)
            .map(|e| e.event)
            .collect()
    }

    /// Waits (under `PATIENCE`) until every job of `ids` has had a final event.
    async fn wait_final(&self, ids: &[JobId]) {
        let waiting = async {
            let mut after = EventId::ZERO;
            loop {
                let finished = self
                    .events()
                    .await
                    .into_iter()
                    .filter(|e| matches!(e.event, EventKind::PlotReady | EventKind::PlotFailed))
                    .map(|e| e.id)
                    .collect::<Vec<_>>();
                if ids.iter().all(|id| finished.contains(id)) {
                    return;
                }
                if let Some(last) = self.events.last_id().await.unwrap() {
                    after = last;
                }
                self.events
                    .read_after(Some(after), Duration::from_secs(1), 100)
                    .await
                    .unwrap();
            }
        };
        tokio::time::timeout(PATIENCE, waiting)
            .await
            .expect("every job reached a final event");
    }

    /// Runs a worker over the memory queue; stop it with the returned token.
    /// Runs a worker until `job`, published now, has its final event, then stops it.
    async fn run_to_final(&self, job: &JobMessage) {
        let worker = self.start();
        self.queue.publish(job).await.unwrap();
        self.wait_final(&[job.id]).await;
        stop(worker).await;
    }

    fn start(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(plotq_worker::run_until_stopped(
            self.ports(),
            self.config.clone(),
            shutdown.clone(),
        ));
        (shutdown, worker)
    }
}

/// A harness holding checkout's samples whose next `failures` store reads fail, and a
/// checkout job.
async fn checkout_failing_reads(failures: u32) -> (Harness, JobMessage) {
    let h = Harness::new();
    h.ingest("checkout").await;
    h.store.fail_next(failures);
    (h, job("checkout"))
}

/// Stops a worker and waits until it has settled everything it held.
async fn stop(worker: (CancellationToken, tokio::task::JoinHandle<()>)) {
    worker.0.cancel();
    tokio::time::timeout(PATIENCE, worker.1)
        .await
        .expect("the worker stopped")
        .expect("the worker did not panic");
}

fn job(service: &str) -> JobMessage {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse(service).unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, now_ms()))
}

/// A job message that decodes as JSON but names no service (`"services": []`).
fn job_without_services() -> (JobId, Vec<u8>) {
    let message = job("checkout");
    let json = String::from_utf8(message.encode()).unwrap();
    let one_service = "\"services\":[\"checkout\"]";
    assert!(json.contains(one_service), "{json}");
    let body = json.replace(one_service, "\"services\":[]");
    (message.id, body.into_bytes())
}

#[tokio::test]
async fn a_job_with_data_ends_done_with_one_ready_event() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let job = job("checkout");
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(state.n_samples, Some(200));
    assert_eq!(state.attempts, 1);
    assert!(h.cache.get_image(job.id).await.unwrap().is_some());
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

/// A job over the last `window` of `service`.
fn job_over(service: &str, kind: PlotKind, window: &str) -> JobMessage {
    let mut spec = PlotSpec::new(kind, ServiceName::parse(service).unwrap());
    spec.range = plotq_domain::TimeRange::Last(plotq_domain::Window::parse(window).unwrap());
    JobMessage::new(&JobState::queued(JobId::new_random(), spec, now_ms()))
}

/// Renders `job` to its final state.
async fn rendered(h: &Harness, job: &JobMessage) -> JobState {
    assert_eq!(
        h.process(job.encode(), false, &h.slots()).await,
        [Settled::Ack]
    );
    h.state(job.id).await.unwrap()
}

#[tokio::test]
async fn long_windows_are_drawn_from_rollups_and_say_so() {
    let mut h = Harness::new();
    h.config.sources.rollup_after = Duration::from_secs(3 * 3600);
    // Six hours of one sample every 2 s (10,800 samples), whole minutes.
    let end = now_ms() / 60_000 * 60_000 - 60_000;
    let samples: Vec<Sample> = (0..10_800)
        .map(|i| Sample {
            service: ServiceName::parse("checkout").unwrap(),
            metric: MetricName::parse("latency_ms").unwrap(),
            value: 5.0 + (i % 97) as f64,
            timestamp_ms: end - i * 2_000,
        })
        .collect();
    h.store.insert(&samples, None).await.unwrap();
    for kind in [
        PlotKind::Histogram,
        PlotKind::LatencyTimeseries,
        PlotKind::Throughput,
    ] {
        let state = rendered(&h, &job_over("checkout", kind, "6h")).await;
        assert_eq!(state.status, JobStatus::Done, "{kind:?}: {:?}", state.error);
        assert_eq!(state.source, Some(DataSource::minute_rollups()), "{kind:?}");
        // One document a minute of the six hours, whatever the number of samples.
        assert!(
            (360..=362).contains(&state.documents_read.unwrap()),
            "{kind:?}: {:?}",
            state.documents_read
        );
        // Whole minutes: the rollups hold every sample of the window's minutes.
        assert!(
            (10_770..=10_800).contains(&state.n_samples.unwrap()),
            "{kind:?}: {:?}",
            state.n_samples
        );
    }
    let short = rendered(&h, &job_over("checkout", PlotKind::Histogram, "1h")).await;
    assert_eq!(short.source, Some(DataSource::Exact));
    // Exactly the samples in the last hour.
    let exact = samples
        .iter()
        .filter(|s| s.timestamp_ms >= now_ms() - 3_600_000 - 5_000)
        .count() as u64;
    assert!(short.n_samples.unwrap().abs_diff(exact) <= 3, "{short:?}");
    // The ready event says what the plot was drawn from.
    let sources: Vec<Option<DataSource>> = h
        .events()
        .await
        .iter()
        .filter(|e| e.event == EventKind::PlotReady)
        .map(|e| e.source)
        .collect();
    assert_eq!(sources.len(), 4);
    assert!(
        sources[..3]
            .iter()
            .all(|s| *s == Some(DataSource::minute_rollups()))
    );
    assert_eq!(sources[3], Some(DataSource::Exact));
}

#[tokio::test]
async fn windows_past_the_raw_retention_or_over_the_sample_bound_use_rollups() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    // 200 samples in the last 21 s: a 1 h window is raw by default...
    let state = rendered(&h, &job_over("checkout", PlotKind::Histogram, "1h")).await;
    assert_eq!(
        (state.source, state.n_samples),
        (Some(DataSource::Exact), Some(200))
    );
    // ...but not when it reaches past the raw retention,
    h.config.sources.raw_retention = Duration::from_secs(1800);
    let state = rendered(&h, &job_over("checkout", PlotKind::Histogram, "1h")).await;
    assert_eq!(
        (state.source, state.n_samples),
        (Some(DataSource::minute_rollups()), Some(200))
    );
    // ...nor when it holds more samples than raw plots may read.
    h.config.sources.raw_retention = Duration::from_secs(48 * 3600);
    h.config.sources.raw_max_samples = 100;
    let state = rendered(&h, &job_over("checkout", PlotKind::Histogram, "1h")).await;
    assert_eq!(state.source, Some(DataSource::minute_rollups()));
}

#[tokio::test]
async fn a_job_without_data_fails_at_once() {
    let h = Harness::new();
    let job = job("silent");
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert!(
        state
            .error
            .unwrap()
            .starts_with("no data for silent/latency_ms")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert_eq!(h.store.reads(), 1, "a permanent failure is not retried");
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transient_store_failure_is_retried_until_it_succeeds() {
    let (h, job) = checkout_failing_reads(2).await;
    h.run_to_final(&job).await;
    assert_eq!(
        h.store.reads(),
        3,
        "two failed reads, then the one that worked"
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(
        state.attempts, 3,
        "two retries, then the attempt that worked"
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_redelivered_unfinished_job_counts_as_another_attempt() {
    let (h, job) = checkout_failing_reads(1).await;
    let slots = h.slots();
    // The first delivery fails transiently (its retry waits in the queue, unconsumed).
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    let rendering = h.state(job.id).await.unwrap();
    assert_eq!(
        (rendering.status, rendering.attempts),
        (JobStatus::Rendering, 1)
    );
    // The broker redelivers it (as after a worker died): same retry count, one more start.
    assert_eq!(h.process(job.encode(), true, &slots).await, [Settled::Ack]);
    let done = h.state(job.id).await.unwrap();
    assert_eq!((done.status, done.attempts), (JobStatus::Done, 2));
}

#[tokio::test]
async fn a_persistent_store_failure_is_given_up_failed_and_dead_lettered() {
    let (h, job) = checkout_failing_reads(u32::MAX).await;
    h.run_to_final(&job).await;
    assert_eq!(h.store.reads(), 3, "max_attempts = 3");
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(state.attempts, 3, "the failed state keeps the count");
    let error = state.error.unwrap();
    assert!(error.starts_with("gave up after 3 attempts"), "{error}");
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(JobMessage::decode(&dead[0].body).unwrap().id, job.id);
    assert_eq!(
        (dead[0].attempts, dead[0].reason.as_str()),
        (3, error.as_str())
    );
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_acked() {
    let h = Harness::new();
    let settled = h
        .process(b"{\"v\": 1, \"garbage\": true}".to_vec(), false, &h.slots())
        .await;
    assert_eq!(settled, [Settled::Ack]);
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"{\"v\": 1, \"garbage\": true}");
    assert!(
        dead[0].reason.starts_with("undecodable job message"),
        "{}",
        dead[0].reason
    );
    assert!(h.events().await.is_empty());
}

#[tokio::test]
async fn a_decodable_but_invalid_message_is_dead_lettered_once_and_acked() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let (id, body) = job_without_services();
    let settled = h.process(body.clone(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack], "settled exactly once");
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, body);
    assert!(!dead[0].reason.is_empty());
    assert!(!h.events_of(id).await.contains(&EventKind::PlotReady));
    assert!(
        h.state(id)
            .await
            .is_none_or(|s| s.status == JobStatus::Failed)
    );
}

#[tokio::test]
async fn poison_messages_do_not_stop_the_worker() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let mut config = h.config.clone();
    config.prefetch = 1;
    let h = Harness { config, ..h };
    let worker = h.start();
    let (invalid_id, invalid) = job_without_services();
    // More poison than the prefetch: each must free its slot for the next.
    for _ in 0..3 {
        h.queue.publish_raw(b"not json at all").unwrap();
        h.queue.publish_raw(&invalid).unwrap();
    }
    let good = job("checkout");
    h.queue.publish(&good).await.unwrap();
    h.wait_final(&[good.id]).await;
    stop(worker).await;
    assert_eq!(h.state(good.id).await.unwrap().status, JobStatus::Done);
    assert_eq!(h.events_of(good.id).await, [EventKind::PlotReady]);
    assert!(
        !h.events_of(invalid_id)
            .await
            .contains(&EventKind::PlotReady)
    );
    let dead = h.queue.dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), 6, "every poison message dead-lettered once");
}

#[tokio::test]
async fn a_panic_fails_the_job_once_and_settles_its_delivery() {
    let h = Harness::new();
    h.ingest("checkout").await;
    h.store.panic_on("checkout");
    let job = job("checkout");
    let settled = h.process(job.encode(), false, &h.slots()).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(
        state.error.as_deref(),
        Some("internal error while rendering: store double exploded reading checkout")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_panicking_renderer_fails_the_job_once() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    h.config.renderer = Renderer::new(|_, _| panic!("renderer double exploded"));
    let slots = h.slots();
    let job = job("checkout");
    let settled = h.process(job.encode(), false, &slots).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert_eq!(
        state.error.as_deref(),
        Some("internal error while rendering: renderer double exploded")
    );
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    assert_eq!(
        slots.available(),
        2,
        "the unwinding render gave its permit back"
    );
}

#[tokio::test]
async fn the_worker_keeps_working_after_a_panic() {
    let h = Harness::new();
    h.ingest("checkout").await;
    h.ingest("payments").await;
    h.store.panic_on("payments");
    let worker = h.start();
    let (bad, good) = (job("payments"), job("checkout"));
    h.queue.publish(&bad).await.unwrap();
    h.queue.publish(&good).await.unwrap();
    h.wait_final(&[bad.id, good.id]).await;
    stop(worker).await;
    assert_eq!(h.events_of(bad.id).await, [EventKind::PlotFailed]);
    assert_eq!(h.state(bad.id).await.unwrap().status, JobStatus::Failed);
    assert_eq!(h.events_of(good.id).await, [EventKind::PlotReady]);
    assert_eq!(h.state(good.id).await.unwrap().status, JobStatus::Done);
}

#[tokio::test]
async fn a_redelivered_finished_job_is_announced_again_not_rendered_again() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let job = job("checkout");
    let slots = h.slots();
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    let done = h.state(job.id).await.unwrap();
    let reads = h.store.reads();
    // A worker that died after the final state may not have announced it: the
    // redelivery announces it again (notifiers relay a job's final event once).
    assert_eq!(h.process(job.encode(), true, &slots).await, [Settled::Ack]);
    assert_eq!(
        h.events_of(job.id).await,
        [EventKind::PlotReady, EventKind::PlotReady]
    );
    assert_eq!(h.store.reads(), reads, "not rendered again");
    assert_eq!(h.state(job.id).await.unwrap(), done);
    let repeated = final_event(&h, job.id).await;
    assert_eq!(repeated.stats, done.stats, "the same statistics");
}

#[tokio::test]
async fn a_render_past_its_deadline_fails_the_job_once() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let alive = Arc::new(Alive::default());
    h.config.renderer = gated_renderer(gate.clone(), alive.clone());
    h.config.render_deadline = Duration::from_millis(200);
    let slots = h.slots();
    let job = job("checkout");
    let settled = h.process(job.encode(), false, &slots).await;
    assert_eq!(settled, [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    let error = state.error.unwrap();
    assert!(error.contains("deadline"), "{error}");
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
    // The render thread is still running and still holds its permit.
    wait_until(|| alive.now.load(Ordering::SeqCst) == 1).await;
    assert_eq!(slots.available(), 1);
    gate.open();
    wait_until(|| slots.available() == 2).await;
    // Its late result changes nothing.
    assert_eq!(h.state(job.id).await.unwrap().status, JobStatus::Failed);
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotFailed]);
}

/// Polls a condition on state the test cannot await, under `PATIENCE`.
async fn wait_until(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition reached in time");
}

#[tokio::test]
async fn a_job_finding_no_free_render_slot_fails_under_its_own_deadline() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let alive = Arc::new(Alive::default());
    h.config.renderer = gated_renderer(gate.clone(), alive.clone());
    h.config.render_deadline = Duration::from_millis(200);
    let slots = RenderSlots::new(1);
    let (stuck, waiting) = (job("checkout"), job("checkout"));
    assert_eq!(
        h.process(stuck.encode(), false, &slots).await,
        [Settled::Ack]
    );
    assert_eq!(
        h.process(waiting.encode(), false, &slots).await,
        [Settled::Ack]
    );
    let error = h.state(waiting.id).await.unwrap().error.unwrap();
    assert!(error.starts_with("no render slot freed up"), "{error}");
    assert_eq!(h.events_of(waiting.id).await, [EventKind::PlotFailed]);
    assert_eq!(
        alive.max.load(Ordering::SeqCst),
        1,
        "no second render thread"
    );
    // Once the stuck render returns, its permit serves the next job.
    gate.open();
    let next = job("checkout");
    h.config.render_deadline = Duration::from_secs(15);
    assert_eq!(
        h.process(next.encode(), false, &slots).await,
        [Settled::Ack]
    );
    assert_eq!(h.state(next.id).await.unwrap().status, JobStatus::Done);
}

#[tokio::test]
async fn render_threads_never_outnumber_the_prefetch() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let alive = Arc::new(Alive::default());
    h.config.renderer = gated_renderer(gate.clone(), alive.clone());
    h.config.render_deadline = Duration::from_millis(200);
    let worker = h.start();
    let jobs: Vec<JobMessage> = (0..5).map(|_| job("checkout")).collect();
    for j in &jobs {
        h.queue.publish(j).await.unwrap();
    }
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    h.wait_final(&ids).await;
    let mut errors = Vec::new();
    for j in &jobs {
        assert_eq!(h.events_of(j.id).await, [EventKind::PlotFailed]);
        errors.push(h.state(j.id).await.unwrap().error.unwrap());
    }
    let past_deadline = errors
        .iter()
        .filter(|e| e.starts_with("rendering took longer"))
        .count();
    let no_slot = errors
        .iter()
        .filter(|e| e.starts_with("no render slot"))
        .count();
    assert_eq!((past_deadline, no_slot), (2, 3), "{errors:?}");
    // Both stuck renders are alive, and no third thread was ever started.
    wait_until(|| alive.now.load(Ordering::SeqCst) == 2).await;
    assert_eq!(
        alive.max.load(Ordering::SeqCst),
        2,
        "prefetch = 2 render threads at most"
    );
    // The stuck renders return; the worker renders again.
    gate.open();
    let later = job("checkout");
    h.queue.publish(&later).await.unwrap();
    h.wait_final(&[later.id]).await;
    stop(worker).await;
    assert_eq!(h.events_of(later.id).await, [EventKind::PlotReady]);
    assert!(alive.max.load(Ordering::SeqCst) <= 2);
}

/// A breaker for the store's dependency on a clock the test moves, already open (as the
/// store's adapter leaves it when MongoDB stops answering).
fn open_breaker(clock: &plotq_ports::ManualClock) -> plotq_ports::Breaker {
    let breaker = plotq_ports::Breaker::new(
        "mongodb",
        plotq_ports::BreakerConfig::default(),
        Arc::new(clock.clone()),
    );
    breaker.admit_probe().unwrap().reached(false);
    assert!(!breaker.is_up());
    breaker
}

#[tokio::test]
async fn a_job_is_held_while_its_store_is_down_and_finishes_once_it_is_back() {
    let (mut h, job) = checkout_failing_reads(u32::MAX).await;
    let clock = plotq_ports::ManualClock::new(now_ms());
    let breaker = open_breaker(&clock);
    h.config.breakers = vec![breaker.clone()];
    h.config.outage_budget = PATIENCE;
    let h = Arc::new(h);
    let slots = h.slots();
    let running = tokio::spawn({
        let (h, body) = (h.clone(), job.encode());
        async move { h.process(body, false, &slots).await }
    });
    // Held: the job does not run while the store is believed down...
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!running.is_finished());
    assert_eq!(h.store.reads(), 0, "no read while MongoDB is known down");
    // ...and runs once it is back, spending none of its attempts.
    h.store.fail_next(0);
    clock.advance(Duration::from_secs(1));
    breaker.admit_probe().unwrap().reached(true);
    assert_eq!(running.await.unwrap(), [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!((state.status, state.attempts), (JobStatus::Done, 1));
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(h.queue.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_failing_as_its_store_goes_down_is_run_again_once_it_is_back() {
    let (mut h, job) = checkout_failing_reads(u32::MAX).await;
    let clock = plotq_ports::ManualClock::new(now_ms());
    let breaker = plotq_ports::Breaker::new(
        "mongodb",
        plotq_ports::BreakerConfig::default(),
        Arc::new(clock.clone()),
    );
    h.config.breakers = vec![breaker.clone()];
    h.config.outage_budget = PATIENCE;
    let h = Arc::new(h);
    let slots = h.slots();
    // The outage is learnt while the job runs: its read fails, and the breaker opens.
    *h.store.trips.lock().unwrap() = Some(breaker.clone());
    h.store.fail_next(1);
    let running = tokio::spawn({
        let (h, body) = (h.clone(), job.encode());
        async move { h.process(body, false, &slots).await }
    });
    wait_until(|| !breaker.is_up()).await;
    clock.advance(Duration::from_secs(1));
    breaker.admit_probe().unwrap().reached(true);
    assert_eq!(running.await.unwrap(), [Settled::Ack]);
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    assert_eq!(h.events_of(job.id).await, [EventKind::PlotReady]);
    assert!(
        h.queue.dead_letters(10).await.unwrap().is_empty(),
        "nothing given up"
    );
}

#[tokio::test]
async fn a_job_held_past_the_outage_budget_is_dead_lettered_as_dependency_unavailable() {
    let (mut h, job) = checkout_failing_reads(u32::MAX).await;
    let clock = plotq_ports::ManualClock::new(now_ms());
    h.config.breakers = vec![open_breaker(&clock)];
    h.config.outage_budget = Duration::from_millis(300);
    let slots = h.slots();
    assert_eq!(h.process(job.encode(), false, &slots).await, [Settled::Ack]);
    assert_eq!(h.store.reads(), 0);
    let dead = h.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .reason
            .starts_with("dependency_unavailable: mongodb"),
        "{}",
        dead[0].reason
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    assert!(state.error.unwrap().starts_with("dependency_unavailable"));
    // Replayed once the store is back, the job finishes.
    h.config.breakers.clear();
    h.store.fail_next(0);
    assert_eq!(h.queue.replay_dead_letters(Some(job.id)).await.unwrap(), 1);
    let worker = h.start();
    let done = async {
        while h.state(job.id).await.unwrap().status != JobStatus::Done {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, done)
        .await
        .expect("the replayed job finished");
    stop(worker).await;
}

/// `n` samples of `service`'s `metric` over the last minute, valued by `value(i)`.
async fn ingest_values(h: &Harness, service: &str, metric: &str, n: i64, value: fn(i64) -> f64) {
    let now = now_ms();
    let samples: Vec<Sample> = (0..n)
        .map(|i| Sample {
            service: ServiceName::parse(service).unwrap(),
            metric: MetricName::parse(metric).unwrap(),
            value: value(i),
            timestamp_ms: now - 60_000 + i * 60_000 / n,
        })
        .collect();
    h.store.insert(&samples, None).await.unwrap();
}

/// The final event of job `id`.
async fn final_event(h: &Harness, id: JobId) -> PlotEvent {
    h.events()
        .await
        .into_iter()
        .find(|e| e.id == id && matches!(e.event, EventKind::PlotReady | EventKind::PlotFailed))
        .expect("a final event")
}

fn is_rounded(ms: f64) -> bool {
    ms == (ms * 100.0).round() / 100.0
}

#[tokio::test]
async fn a_done_job_says_where_its_time_went_in_its_state_and_event() {
    let h = Harness::new();
    h.ingest("checkout").await;
    let job = job("checkout");
    assert_eq!(
        h.process(job.encode(), false, &h.slots()).await,
        [Settled::Ack]
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Done);
    let t = state.timings.expect("a done job has timings");
    let stages = [t.query_ms, t.render_ms, t.encode_ms, t.store_ms]
        .map(|stage| stage.expect("a done job reached every stage"));
    let all: Vec<f64> = stages
        .iter()
        .copied()
        .chain([t.queue_wait_ms, t.total_ms])
        .collect();
    assert!(
        all.iter()
            .all(|ms| ms.is_finite() && *ms >= 0.0 && is_rounded(*ms)),
        "{t:?}"
    );
    assert!(
        t.total_ms >= stages.iter().sum::<f64>(),
        "the stages are parts of the total: {t:?}"
    );
    assert!(
        t.render_ms.unwrap() > 0.0 && t.encode_ms.unwrap() > 0.0,
        "{t:?}"
    );
    // The job was queued just now: its wait is short (and never negative).
    assert!(t.queue_wait_ms < PATIENCE.as_millis() as f64, "{t:?}");
    // `render_ms` (kept for older clients) is drawing plus encoding.
    let render_ms = state.render_ms.unwrap();
    assert!(
        (render_ms - (t.render_ms.unwrap() + t.encode_ms.unwrap())).abs() <= 0.011,
        "{render_ms} vs {t:?}"
    );
    // The ready event carries the same timings and statistics as the state.
    let ready = final_event(&h, job.id).await;
    assert_eq!(ready.event, EventKind::PlotReady);
    assert_eq!(ready.timings, state.timings);
    assert_eq!(ready.stats, state.stats);
    // A histogram's statistics: the latency numbers, exact, and nothing per kind.
    let values: Vec<f64> = (0..200).map(|i| 5.0 + (i % 17) as f64).collect();
    let stats = state.stats.unwrap();
    let s = &stats[0];
    assert_eq!((s.service.as_str(), s.count), ("checkout", 200));
    assert_eq!((s.min, s.max), (5.0, 21.0));
    assert!((s.mean - values.iter().sum::<f64>() / 200.0).abs() < 1e-12);
    assert_eq!(
        (
            s.rate_per_s,
            s.peak_rate_per_s,
            s.codes.as_ref(),
            s.error_ratio
        ),
        (None, None, None, None)
    );
}

#[tokio::test]
async fn statistics_carry_what_each_kind_draws() {
    let h = Harness::new();
    // 600 latencies over the last minute (10 per second), and 100 status codes of which
    // 10 are 503 and 10 are 404.
    ingest_values(&h, "checkout", "latency_ms", 600, |i| 1.0 + i as f64).await;
    ingest_values(&h, "checkout", "status_code", 100, |i| match i % 10 {
        0 => 503.0,
        1 => 404.0,
        _ => 200.0,
    })
    .await;
    let throughput = rendered(&h, &job_over("checkout", PlotKind::Throughput, "10m")).await;
    let s = &throughput.stats.as_ref().unwrap()[0];
    assert_eq!(s.count, 600);
    // 600 samples over the 10-minute window; the minute's 10 s buckets hold 100 each.
    assert_eq!(s.rate_per_s, Some(1.0));
    let peak = s.peak_rate_per_s.unwrap();
    assert!((9.0..=10.0 + 1e-9).contains(&peak), "{peak}");
    assert_eq!((s.codes.as_ref(), s.error_ratio), (None, None));
    for kind in [PlotKind::StatusCodes, PlotKind::ErrorRate] {
        let state = rendered(&h, &job_over("checkout", kind, "10m")).await;
        assert_eq!(state.status, JobStatus::Done, "{kind:?}: {:?}", state.error);
        let s = &state.stats.as_ref().unwrap()[0];
        assert_eq!(s.count, 100);
        let codes = s.codes.as_ref().unwrap();
        assert_eq!(
            codes.iter().map(|(c, n)| (*c, *n)).collect::<Vec<_>>(),
            [(200, 80), (404, 10), (503, 10)],
            "{kind:?}"
        );
        assert_eq!(s.error_ratio, Some(0.1), "{kind:?}");
        assert_eq!(s.rate_per_s, None);
        let ready = final_event(&h, state.id).await;
        assert_eq!(ready.stats, state.stats);
    }
}

#[tokio::test]
async fn a_failed_job_keeps_the_timings_of_the_stages_it_reached() {
    let h = Harness::new();
    let job = job("silent");
    assert_eq!(
        h.process(job.encode(), false, &h.slots()).await,
        [Settled::Ack]
    );
    let state = h.state(job.id).await.unwrap();
    assert_eq!(state.status, JobStatus::Failed);
    let t = state.timings.expect("the attempt's timings");
    assert!(t.query_ms.is_some(), "{t:?}");
    assert_eq!((t.render_ms, t.encode_ms, t.store_ms), (None, None, None));
    assert!(t.total_ms >= t.query_ms.unwrap(), "{t:?}");
    assert_eq!(state.stats, None);
    let failed = final_event(&h, job.id).await;
    assert_eq!(failed.event, EventKind::PlotFailed);
    assert_eq!(failed.timings, state.timings);
}

/// What a test recorder saw: counter totals, gauge values and histogram samples, each
/// under `name{label=value,…}` (labels sorted).
#[derive(Default, Clone)]
struct Recorded(Arc<Mutex<std::collections::BTreeMap<String, Vec<f64>>>>);

struct Handle {
    key: String,
    seen: Recorded,
}

impl Handle {
    fn update(&self, f: impl FnOnce(&mut Vec<f64>)) {
        f(self
            .seen
            .0
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default());
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.update(|v| match v.first_mut() {
            Some(total) => *total += value as f64,
            None => v.push(value as f64),
        });
    }
    fn absolute(&self, value: u64) {
        self.update(|v| *v = vec![value as f64]);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.update(|v| match v.first_mut() {
            Some(g) => *g += value,
            None => v.push(value),
        });
    }
    fn decrement(&self, value: f64) {
        metrics::GaugeFn::increment(self, -value);
    }
    fn set(&self, value: f64) {
        self.update(|v| *v = vec![value]);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.update(|v| v.push(value));
    }
}

impl Recorded {
    fn handle(&self, key: &metrics::Key) -> Arc<Handle> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let key = if labels.is_empty() {
            key.name().to_owned()
        } else {
            format!("{}{{{}}}", key.name(), labels.join(","))
        };
        Arc::new(Handle {
            key,
            seen: self.clone(),
        })
    }

    fn get(&self, key: &str) -> Vec<f64> {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.handle(key))
    }
}

/// The worker's metrics, seen by a recorder installed for this test's thread (the
/// test's runtime runs every task on it).
#[tokio::test(flavor = "current_thread")]
async fn jobs_are_counted_by_kind_and_outcome_with_their_stages() {
    let recorded = Recorded::default();
    let _local = metrics::set_default_local_recorder(&recorded);
    let h = Harness::new();
    h.ingest("checkout").await;
    let done = job("checkout");
    h.process(done.encode(), false, &h.slots()).await;
    h.process(job("silent").encode(), false, &h.slots()).await;
    h.process(b"not a job".to_vec(), false, &h.slots()).await;
    h.store.fail_next(1);
    h.process(job("checkout").encode(), false, &h.slots()).await;
    assert_eq!(
        recorded.get("plotq_jobs_total{kind=histogram,outcome=done}"),
        [1.0]
    );
    assert_eq!(
        recorded.get("plotq_jobs_total{kind=histogram,outcome=failed}"),
        [1.0]
    );
    assert_eq!(
        recorded.get("plotq_jobs_total{kind=histogram,outcome=retried}"),
        [1.0]
    );
    assert_eq!(recorded.get("plotq_job_retries_total"), [1.0]);
    assert_eq!(
        recorded.get("plotq_jobs_total{kind=unknown,outcome=dead_lettered}"),
        [1.0]
    );
    assert_eq!(
        recorded.get("plotq_job_dead_letters_total{reason=poison}"),
        [1.0]
    );
    // The done job's stages, in seconds, matching its state's timings.
    let t = h.state(done.id).await.unwrap().timings.unwrap();
    for (stage, ms) in t.stages() {
        let seen = recorded.get(&format!("plotq_job_stage_seconds{{stage={stage}}}"));
        assert_eq!(seen, [ms / 1000.0], "{stage}");
    }
    assert!(recorded.get("plotq_store_documents_read_total")[0] >= 1.0);
}

/// The ready events' job ids, in the order they were announced.
async fn ready_order(h: &Harness) -> Vec<JobId> {
    h.events()
        .await
        .into_iter()
        .filter(|e| e.event == EventKind::PlotReady)
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn held_jobs_are_served_lane_by_lane_not_in_arrival_order() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let alive = Arc::new(Alive::default());
    h.config.renderer = gated_renderer(gate.clone(), alive.clone());
    (h.config.prefetch, h.config.lookahead) = (1, 10);
    let busy = plotq_domain::wire::Lane::of_digest("aaaaaaaaaaaaaaaa");
    let quiet = plotq_domain::wire::Lane::of_digest("bbbbbbbbbbbbbbbb");
    // A tenant's backlog of six, then another tenant's one job, all in the queue before
    // the first render ends.
    let backlog: Vec<JobMessage> = (0..6)
        .map(|_| job("checkout").in_lane(busy.clone()))
        .collect();
    let other = job("checkout").in_lane(quiet.clone());
    let lease = Duration::from_secs(60);
    for j in backlog.iter().chain([&other]) {
        let lane = j.lane.as_ref().unwrap().as_str();
        assert!(
            h.cache
                .begin_job(lane, j.id, 100, lease, now_ms())
                .await
                .unwrap()
        );
        h.queue.publish(j).await.unwrap();
    }
    let worker = h.start();
    // The first job renders (held at the gate) while the worker takes the rest in.
    wait_until(|| alive.now.load(Ordering::SeqCst) == 1 && h.queue.depth() == 0).await;
    gate.open();
    let mut ids: Vec<JobId> = backlog.iter().map(|j| j.id).collect();
    ids.push(other.id);
    h.wait_final(&ids).await;
    stop(worker).await;
    let order = ready_order(&h).await;
    assert_eq!(order.len(), 7);
    let at = order.iter().position(|id| *id == other.id).unwrap();
    assert!(
        at <= 2,
        "the quiet tenant's job waited for at most one of the busy tenant's jobs besides the one rendering (done {}th of 7)",
        at + 1
    );
    // Every job gave its place in its lane back: both lanes are empty again.
    for lane in [&busy, &quiet] {
        assert!(
            h.cache
                .begin_job(lane.as_str(), JobId::new_random(), 1, lease, now_ms())
                .await
                .unwrap(),
            "lane {lane} is empty"
        );
    }
}

#[tokio::test]
async fn held_jobs_not_started_go_back_to_the_queue_on_shutdown() {
    let mut h = Harness::new();
    h.ingest("checkout").await;
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    let alive = Arc::new(Alive::default());
    h.config.renderer = gated_renderer(gate.clone(), alive.clone());
    (h.config.prefetch, h.config.lookahead) = (1, 10);
    let jobs: Vec<JobMessage> = (0..4).map(|_| job("checkout")).collect();
    for j in &jobs {
        h.queue.publish(j).await.unwrap();
    }
    let worker = h.start();
    wait_until(|| alive.now.load(Ordering::SeqCst) == 1 && h.queue.depth() == 0).await;
    // Stopping: the one rendering finishes (the gate opens), the three held go back.
    worker.0.cancel();
    wait_until(|| h.queue.depth() == 3).await;
    gate.open();
    tokio::time::timeout(PATIENCE, worker.1)
        .await
        .expect("the worker stopped")
        .expect("the worker did not panic");
    assert_eq!(h.queue.depth(), 3, "three jobs wait for the next worker");
    let next = h.start();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    h.wait_final(&ids).await;
    stop(next).await;
    for j in &jobs {
        assert_eq!(h.events_of(j.id).await, [EventKind::PlotReady], "each once");
    }
}
