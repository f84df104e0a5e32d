//! The rendering worker: consumes plot jobs and turns each into a cached PNG and a
//! `plot.ready` (or `plot.failed`) event.
//!
//! Order of effects for one job, which is what makes a crash at any point safe:
//! state `rendering` → query samples → render (on the blocking pool, under a deadline) →
//! PNG into the cache with a TTL → state `done` → event published → **ack**. A job is
//! acked only after all of that succeeded; a crash before the ack means redelivery, and
//! re-running a job is harmless (same key, same data window, same bytes).
//!
//! Failures are sorted once, in `process`: permanent ones (no data, invalid spec, a
//! render past its deadline) end the job `failed` at once; transient ones (a dependency
//! down) are retried through the queue's backoff tiers, and after `max_attempts` the job
//! ends `failed` with the last error and its message goes to the dead-letter queue.
//! Messages `JobMessage::decode` refuses (poison) go straight to the dead-letter queue.
//! A panic while processing a delivery is caught and logged; the job ends `failed`
//! ("internal error while rendering: …") and its delivery is still settled exactly once.
//!
//! While a dependency a job needs (the store, the cache) is known to be down — its
//! `Breaker` is open — the job is held, not failed: it waits for the dependency and runs
//! again (its attempts unspent), so a short outage ends with every job done, announced
//! once. Past `outage_budget` it is dead-lettered as `dependency_unavailable`, for
//! `plotq dlq retry` once the dependency is back.
//!
//! **Fair turns.** A worker holds up to `prefetch + lookahead` deliveries and processes
//! `prefetch` at once, taking the next from the held jobs' lanes in turn
//! (`wire::Lane`: one per tenant, one for the refresher's view re-renders): a tenant
//! with a backlog of its full share of the queue delays another tenant's job by at most
//! the renders already running, not by its backlog. While several lanes are active
//! here, no lane holds every slot (each runs at most `prefetch - 1` jobs at once), so a
//! job of another lane starts at once on the slot left; alone, a lane uses them all.
//! When a job ends (done, failed or
//! dead-lettered, not when it is retried later) its place in its lane's in-flight count
//! is given back (`PlotCache::end_job`). On shutdown or a lost connection, held jobs
//! not yet started are given back to the queue at once.
//!
//! Renders run on the blocking pool, which cannot be cancelled: a render past its
//! deadline fails its job but its thread runs on. Each worker therefore has `prefetch`
//! render permits (`RenderSlots`), each held by a render thread until the render really
//! returns, so a worker never has more than `prefetch` render threads alive; a job that
//! finds no free permit within its deadline fails with a message saying so.
//!
//! Observability: every job runs inside one `job` span (`id`, `kind`), so each of its
//! log lines carries its id; a query slower than `slow_query` or a render (drawing plus
//! encoding) slower than `slow_render` is a WARN line. Each done job records where its
//! time went (`StageTimings`: queue wait, query, render, encode, store, total) in its
//! state, its `plot.ready` event, one "plot ready" line (INFO for API jobs, DEBUG for
//! dashboard refreshes, which would otherwise flood the log) and the metrics below,
//! written through the `metrics` facade (the binary installs the Prometheus recorder):
//!
//! - `plotq_jobs_total{kind, outcome}`: outcome `done`, `failed`, `retried`,
//!   `dead_lettered` (`kind` is the plot kind, `unknown` for an undecodable message);
//! - `plotq_job_stage_seconds{stage}`: histogram of the stages of done jobs;
//! - `plotq_job_retries_total`; `plotq_job_dead_letters_total{reason}` (`poison`,
//!   `exhausted`, `dependency_unavailable`, `unrecordable`, `settle_panicked`);
//! - `plotq_worker_jobs_held`: jobs held while a dependency is down;
//! - `plotq_store_documents_read_total`: stored documents (chunks, rollups) read.
//!
//! The window is read by `plotq_ports::window` (raw samples or rollups, by
//! `SourcePolicy`, with the statistics), the same path `GET /api/v1/stats` takes.
//!
//! This crate knows ports, not technologies.

use plotq_domain::job::round_ms;
use plotq_domain::wire::{EventKind, JobMessage, Lane, PlotEvent};
use plotq_domain::{JobId, JobState, JobStatus, PlotSpec, StageTimings};
use plotq_ports::clock::now_ms;
use plotq_ports::window::{WindowRead, no_data, read_window};
use plotq_ports::{
    Acker, Backoff, Breaker, Delivery, EventBus, JobQueue, MetricStore, PlotCache, PortError,
};
use plotq_render::{PlotData, RenderError, Rendered, SeriesData};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use plotq_ports::window::SourcePolicy;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs processed at once: how many render concurrently, and how many render
    /// threads the worker may have alive at most (see `RenderSlots`).
    pub prefetch: u16,
    /// Jobs held beyond those being processed, waiting in their lanes (the broker's
    /// prefetch is `prefetch + lookahead`): the window in which the worker serves
    /// tenants in turn rather than in arrival order. Zero is plain arrival order.
    pub lookahead: u16,
    /// How long a PNG stays in the cache.
    pub png_ttl: Duration,
    /// How long a job state stays in the cache.
    pub state_ttl: Duration,
    /// Longest one render (including the wait for a render permit) may take before the
    /// job is failed.
    pub render_deadline: Duration,
    /// Pause before giving a job back to the queue when even scheduling its retry failed;
    /// also the bound of the random jitter added before each scheduled retry.
    pub retry_pause: Duration,
    /// Attempts (first try included) before a transiently failing job is dead-lettered.
    pub max_attempts: u32,
    /// On shutdown, how long in-flight jobs may take before they are abandoned (and
    /// redelivered to another worker by the broker).
    pub shutdown_grace: Duration,
    /// What draws the plot: `plotq_render::render` unless a test swaps in a double.
    pub renderer: Renderer,
    /// Where raw samples stop and rollups take over (`plotq_ports::window`).
    pub sources: SourcePolicy,
    /// The breakers of the dependencies a job needs (the store's and the cache's). While
    /// one is open, a job that needs it is held (its attempts are not spent) until the
    /// dependency is back, for at most `outage_budget`.
    pub breakers: Vec<Breaker>,
    /// Longest a job is held for a dependency that is down; past it the job is
    /// dead-lettered with the reason `dependency_unavailable` (`plotq dlq retry` brings
    /// it back).
    pub outage_budget: Duration,
    /// A store read of one job slower than this is logged as a warning.
    pub slow_query: Duration,
    /// A render (drawing plus encoding) slower than this is logged as a warning.
    pub slow_render: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            prefetch: 2,
            lookahead: 14,
            png_ttl: Duration::from_secs(600),
            state_ttl: Duration::from_secs(3600),
            render_deadline: Duration::from_secs(30),
            retry_pause: Duration::from_secs(1),
            max_attempts: 5,
            shutdown_grace: Duration::from_secs(30),
            renderer: Renderer::default(),
            sources: SourcePolicy::default(),
            breakers: Vec::new(),
            outage_budget: Duration::from_secs(120),
            slow_query: Duration::from_secs(1),
            slow_render: Duration::from_secs(2),
        }
    }
}

type RenderFn = dyn Fn(&PlotSpec, &PlotData) -> Result<Rendered, RenderError> + Send + Sync;

/// The function a worker renders with, called on the blocking pool: `plotq_render`'s
/// `draw` then `encode` (timed apart), or a function that does both (a test double,
/// whose time all counts as drawing).
#[derive(Clone)]
pub struct Renderer(Option<Arc<RenderFn>>);

/// How long a render's two steps took, in milliseconds (unrounded).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RenderTimes {
    pub draw_ms: f64,
    pub encode_ms: f64,
}

impl Renderer {
    /// Renders with `render` (drawing and encoding in one call).
    pub fn new(
        render: impl Fn(&PlotSpec, &PlotData) -> Result<Rendered, RenderError> + Send + Sync + 'static,
    ) -> Self {
        Self(Some(Arc::new(render)))
    }

    pub fn render(&self, spec: &PlotSpec, data: &PlotData) -> Result<Rendered, RenderError> {
        self.render_timed(spec, data).map(|(rendered, _)| rendered)
    }

    /// Renders, timing drawing and encoding apart (for `Renderer::new`'s one call, all of
    /// it is drawing).
    pub fn render_timed(
        &self,
        spec: &PlotSpec,
        data: &PlotData,
    ) -> Result<(Rendered, RenderTimes), RenderError> {
        let started = Instant::now();
        let Some(render) = &self.0 else {
            let drawn = plotq_render::draw(spec, data)?;
            let drawn_at = Instant::now();
            let rendered = drawn.encode();
            let times = RenderTimes {
                draw_ms: ms_between(started, drawn_at),
                encode_ms: ms_since(drawn_at),
            };
            return Ok((rendered, times));
        };
        let rendered = render(spec, data)?;
        let times = RenderTimes {
            draw_ms: ms_since(started),
            encode_ms: 0.0,
        };
        Ok((rendered, times))
    }
}

impl Default for Renderer {
    /// `plotq_render::draw`, then `Drawn::encode` (which is `plotq_render::render`).
    fn default() -> Self {
        Self(None)
    }
}

/// Milliseconds from `from` to `to`.
fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Milliseconds since `from`.
fn ms_since(from: Instant) -> f64 {
    ms_between(from, Instant::now())
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

/// One worker's render permits: a render thread holds one from before it starts until
/// the render returns, even when its job already failed on the deadline, so the worker
/// never has more render threads alive than it has permits.
#[derive(Debug, Clone)]
pub struct RenderSlots(Arc<Semaphore>);

impl RenderSlots {
    /// `permits` render threads at most (at least one).
    pub fn new(permits: usize) -> Self {
        Self(Arc::new(Semaphore::new(permits.max(1))))
    }

    /// `config.prefetch` permits: one per job the worker processes at once.
    pub fn for_config(config: &WorkerConfig) -> Self {
        Self::new(config.prefetch.max(1) as usize)
    }

    /// Permits free right now (the rest are held by running renders).
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The ports a worker uses.
#[derive(Clone)]
pub struct WorkerPorts {
    pub store: Arc<dyn MetricStore>,
    pub queue: Arc<dyn JobQueue>,
    pub cache: Arc<dyn PlotCache>,
    pub events: Arc<dyn EventBus>,
}

/// Consumes until `shutdown` is cancelled, reconnecting with backoff whenever the queue
/// connection is lost. Returns once in-flight jobs finished (or the grace ran out).
pub async fn run_until_stopped(
    ports: WorkerPorts,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    telemetry::describe();
    // One set of permits for the worker's life: render threads of a lost connection's
    // jobs may still be running when the worker consumes again.
    let slots = RenderSlots::for_config(&config);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while !shutdown.is_cancelled() {
        let consumer = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = ports.queue.consume(config.prefetch.max(1).saturating_add(config.lookahead)) => c,
        };
        let mut consumer = match consumer {
            Ok(c) => {
                backoff.reset();
                tracing::info!(
                    prefetch = config.prefetch,
                    lookahead = config.lookahead,
                    "worker consuming"
                );
                c
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "cannot consume; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        };
        let mut in_flight = JoinSet::new();
        let mut held = Lanes::default();
        let slots_n = config.prefetch.max(1) as usize;
        let room = slots_n + config.lookahead as usize;
        loop {
            while let Some(end) = in_flight.try_join_next_with_id() {
                held.ended(end);
            }
            // Start what the concurrency allows, taking the lanes in turn.
            while in_flight.len() < slots_n {
                let Some((lane, delivery)) = held.next(slots_n) else {
                    break;
                };
                let ports = ports.clone();
                let config = config.clone();
                let slots = slots.clone();
                let task = in_flight
                    .spawn(async move { process(&ports, &config, &slots, delivery).await });
                held.started(task.id(), lane);
            }
            // Take another delivery only while there is room to hold it (the broker's
            // prefetch enforces it too).
            let may_take = in_flight.len() + held.len() < room;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(end) = in_flight.join_next_with_id(), if !in_flight.is_empty() => held.ended(end),
                delivery = consumer.next(), if may_take => match delivery {
                    Some(delivery) => held.push(delivery),
                    None => {
                        tracing::warn!("job consumer closed; reconnecting");
                        break;
                    }
                },
            }
        }
        // Held jobs not started go back to the queue now, for this or another worker.
        held.give_back().await;
        // Finish what we hold before letting go of the connection its acks need.
        let drain = async {
            while let Some(ended) = in_flight.join_next().await {
                log_task_end(ended);
            }
        };
        if tokio::time::timeout(config.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight jobs outlived the shutdown grace; the broker will redeliver them"
            );
        }
        drop(consumer);
    }
    tracing::info!("worker stopped");
}

/// Deliveries held and not yet started, by lane, taken in turn: one from each lane that
/// has any, in the order the lanes first had one, round and round. While two or more
/// lanes are active (had a job here within `SHARING_WINDOW`), no lane may hold every
/// render slot: each may run at most `slots - 1` jobs at once, so a job of another lane
/// finds a slot free instead of waiting for one to end. Alone, a lane uses every slot.
#[derive(Default)]
struct Lanes {
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
    fn push(&mut self, delivery: Delivery) {
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
    fn next(&mut self, slots: usize) -> Option<(Option<Lane>, Delivery)> {
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
    fn started(&mut self, id: tokio::task::Id, lane: Option<Lane>) {
        self.tasks.insert(id, lane);
    }

    /// A task `started` ended (however it ended); reports a task that panicked.
    fn ended(&mut self, end: Result<(tokio::task::Id, ()), JoinError>) {
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

    fn len(&self) -> usize {
        self.len
    }

    /// Gives every held delivery back to the queue (requeued, not redelivered to this
    /// consumer's lost channel), bounded in time: a broker that is gone redelivers them
    /// by itself.
    async fn give_back(&mut self) {
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

/// `process` catches panics itself; this reports anything that still escaped a task.
fn log_task_end(ended: Result<(), JoinError>) {
    match ended {
        Ok(()) => {}
        Err(e) if e.is_panic() => {
            let panic = panic_message(&*e.into_panic());
            tracing::error!(%panic, "worker task panicked");
        }
        Err(e) => tracing::warn!(error = %e, "worker task did not finish"),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

/// Runs `fut` to completion, turning a panic inside it into `Err(panic message)`.
async fn catching<F: Future>(fut: F) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(&*payload))),
        }
    })
    .await
}

/// How one attempt at a job ended.
enum Outcome {
    Done,
    /// A redelivered job that a worker had already finished: announced again (its first
    /// announcement may have been lost with the worker), not rendered again.
    AlreadyFinished,
    /// The job can never succeed; it ends `failed` with this reason.
    Permanent(String),
    /// A dependency failed; try again later.
    Transient(PortError),
    /// Our code (or a dependency's) panicked, with this message; the job ends `failed`.
    Panicked(String),
}

/// Settles one delivery and remembers that it did, so the panic guard in `process`
/// settles only deliveries nothing else settled.
struct Settle<'a> {
    acker: &'a dyn Acker,
    used: AtomicBool,
}

impl<'a> Settle<'a> {
    fn new(acker: &'a dyn Acker) -> Self {
        Self {
            acker,
            used: AtomicBool::new(false),
        }
    }

    fn used(&self) -> bool {
        self.used.load(Ordering::SeqCst)
    }

    async fn ack(&self, id: Option<JobId>) {
        self.used.store(true, Ordering::SeqCst);
        match self.acker.ack().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                ?id,
                "ack not delivered (channel closed); the job will be redelivered"
            ),
            Err(e) => tracing::warn!(?id, error = %e, "ack failed; the job will be redelivered"),
        }
    }

    async fn reject(&self, requeue: bool, id: Option<JobId>) {
        self.used.store(true, Ordering::SeqCst);
        if let Err(e) = self.acker.reject(requeue).await {
            tracing::warn!(
                ?id,
                requeue,
                error = %e,
                "reject failed; the broker will redeliver when the channel closes"
            );
        }
    }
}

/// The worker's metrics (see the crate docs), written through the `metrics` facade:
/// label values come from small fixed sets only.
mod telemetry {
    use plotq_domain::StageTimings;

    /// Describes the metrics to the installed recorder (once per worker start).
    pub(crate) fn describe() {
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            "plotq_jobs_total",
            "Plot jobs ended or retried by workers, by plot kind and outcome (done, failed, retried, dead_lettered)"
        );
        describe_histogram!(
            "plotq_job_stage_seconds",
            Unit::Seconds,
            "Where done jobs spent their time, by stage (queue_wait, query, render, encode, store, total)"
        );
        describe_counter!("plotq_job_retries_total", "Job retries scheduled");
        describe_counter!(
            "plotq_job_dead_letters_total",
            "Jobs moved to the dead-letter queue, by reason"
        );
        describe_gauge!(
            "plotq_worker_jobs_held",
            "Jobs held while a dependency they need is down"
        );
        describe_counter!(
            "plotq_store_documents_read_total",
            "Stored documents (raw chunks and rollups) read for jobs"
        );
    }

    /// One job ended (or was scheduled for retry) with `outcome`.
    pub(crate) fn job(kind: &'static str, outcome: &'static str) {
        metrics::counter!("plotq_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
    }

    pub(crate) fn retry() {
        metrics::counter!("plotq_job_retries_total").increment(1);
    }

    /// `reason`: `poison`, `exhausted`, `dependency_unavailable`, `unrecordable`,
    /// `settle_panicked`.
    pub(crate) fn dead_letter(reason: &'static str) {
        metrics::counter!("plotq_job_dead_letters_total", "reason" => reason).increment(1);
    }

    pub(crate) fn documents_read(n: u64) {
        metrics::counter!("plotq_store_documents_read_total").increment(n);
    }

    /// The stages of a done job, in seconds.
    pub(crate) fn stages(timings: &StageTimings) {
        for (stage, ms) in timings.stages() {
            metrics::histogram!("plotq_job_stage_seconds", "stage" => stage).record(ms / 1000.0);
        }
    }

    /// Counts one held job for as long as it lives.
    pub(crate) struct Held;

    impl Held {
        pub(crate) fn start() -> Self {
            metrics::gauge!("plotq_worker_jobs_held").increment(1.0);
            Held
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            metrics::gauge!("plotq_worker_jobs_held").decrement(1.0);
        }
    }
}

/// The timings of one attempt as it goes: started when the attempt starts, `timings` set
/// once the job's creation time is known (its queue wait), each stage filled in as it
/// ends.
struct Stopwatch {
    started: Instant,
    started_ms: i64,
    timings: Option<StageTimings>,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            started_ms: now_ms(),
            timings: None,
        }
    }

    /// The job was created at `created_at_ms` (clocks of other processes may run ahead:
    /// never negative).
    fn created_at(&mut self, created_at_ms: i64) {
        let wait = self.started_ms.saturating_sub(created_at_ms).max(0) as f64;
        self.timings = Some(StageTimings {
            queue_wait_ms: wait,
            ..StageTimings::default()
        });
    }

    fn stage(&mut self, set: impl FnOnce(&mut StageTimings)) {
        if let Some(t) = &mut self.timings {
            set(t);
        }
    }

    /// The timings so far, rounded, with `total` from the attempt's start to now; the
    /// total is never less than the sum of the rounded stages it contains.
    fn snapshot(&self) -> Option<StageTimings> {
        let mut t = self.timings?;
        t.total_ms = ms_since(self.started);
        let t = t.rounded();
        let parts: f64 = [t.query_ms, t.render_ms, t.encode_ms, t.store_ms]
            .iter()
            .flatten()
            .sum();
        Some(StageTimings {
            total_ms: t.total_ms.max(round_ms(parts)),
            ..t
        })
    }
}

/// Handles one delivery start to finish, settling it exactly once — also when something
/// panics along the way. `slots` are the worker's render permits.
pub async fn process(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: Delivery,
) {
    let settle = Settle::new(delivery.acker.as_ref());
    if let Err(panic) = catching(handle(ports, config, slots, &delivery, &settle)).await {
        // Only settling code runs outside the inner guard; if it panicked before settling,
        // drop the message (the work queue dead-letters it) rather than hold it forever.
        tracing::error!(%panic, "panic while settling a delivery");
        if !settle.used() {
            telemetry::dead_letter("settle_panicked");
            match catching(settle.reject(false, None)).await {
                Ok(()) => tracing::warn!("rejected the delivery after the panic"),
                Err(again) => tracing::error!(panic = %again, "cannot reject the delivery"),
            }
        }
    }
}

async fn handle(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: &Delivery,
    settle: &Settle<'_>,
) {
    let message = match JobMessage::decode(&delivery.body) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("undecodable job message: {e}");
            tracing::error!(%reason, "poison message; dead-lettering it");
            telemetry::job("unknown", "dead_lettered");
            telemetry::dead_letter("poison");
            dead_letter_or_drop(ports, delivery, settle, delivery.attempt, &reason, None).await;
            return;
        }
    };
    // Every line logged for this job, to its settling, carries its id and kind.
    let span = tracing::info_span!("job", id = %message.id, kind = message.spec.kind.as_str());
    handle_job(ports, config, slots, delivery, settle, &message)
        .instrument(span)
        .await;
}

/// Runs a decoded job (holding it while a dependency is down) and settles its delivery.
async fn handle_job(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
) {
    let id = message.id;
    let kind = message.spec.kind.as_str();
    let held_since = Instant::now();
    let (outcome, stopwatch) = loop {
        if let Some(down) = hold(config, held_since, id).await {
            // The dependency stayed down past the budget: the job waits in the dead-letter
            // queue for `plotq dlq retry`, its attempts unspent.
            let reason = format!(
                "dependency_unavailable: {down} did not answer for {} s",
                config.outage_budget.as_secs()
            );
            let attempts = delivery.attempt + 1;
            telemetry::job(kind, "dead_lettered");
            telemetry::dead_letter("dependency_unavailable");
            give_up(
                ports, config, delivery, settle, message, attempts, &reason, None,
            )
            .await;
            end_in_lane(ports, message).await;
            return;
        }
        let mut stopwatch = Stopwatch::start();
        let outcome = catching(attempt(
            ports,
            config,
            slots,
            message,
            delivery.redelivered,
            delivery.attempt + 1,
            &mut stopwatch,
        ))
        .await
        .unwrap_or_else(Outcome::Panicked);
        match &outcome {
            // Failed because a dependency is down (known now): hold the job and run it
            // again once the dependency is back, rather than spending an attempt.
            Outcome::Transient(e) if down(config, e.dependency()) => continue,
            _ => break (outcome, stopwatch),
        }
    };
    let timings = stopwatch.snapshot();
    // Whether the job ended here (not scheduled to run again later).
    let ended =
        !matches!(&outcome, Outcome::Transient(_)) || delivery.attempt + 1 >= config.max_attempts;
    match outcome {
        Outcome::Done => {
            telemetry::job(kind, "done");
            settle.ack(Some(id)).await
        }
        Outcome::AlreadyFinished => settle.ack(Some(id)).await,
        Outcome::Permanent(reason) => {
            tracing::info!(%id, %reason, "job failed permanently");
            telemetry::job(kind, "failed");
            fail_and_ack(ports, config, delivery, settle, message, &reason, timings).await;
        }
        Outcome::Panicked(panic) => {
            tracing::error!(%id, %panic, "panic while processing a job; failing it");
            telemetry::job(kind, "failed");
            let reason = format!("internal error while rendering: {panic}");
            fail_and_ack(ports, config, delivery, settle, message, &reason, timings).await;
        }
        Outcome::Transient(e) => {
            let attempt = delivery.attempt + 1;
            if attempt >= config.max_attempts {
                let reason = format!("gave up after {attempt} attempts: {e}");
                telemetry::job(kind, "dead_lettered");
                telemetry::dead_letter("exhausted");
                give_up(
                    ports, config, delivery, settle, message, attempt, &reason, timings,
                )
                .await;
            } else {
                tracing::warn!(%id, error = %e, attempt, "transient failure; retrying later");
                telemetry::job(kind, "retried");
                telemetry::retry();
                // Jitter: jobs that failed together (a dependency went down) do not all
                // come back in the same instant; the delay tiers supply the backoff.
                let jitter = config.retry_pause.mul_f64(rand::random::<f64>());
                tokio::time::sleep(jitter).await;
                match ports.queue.retry_later(&delivery.body, attempt).await {
                    Ok(()) => settle.ack(Some(id)).await,
                    Err(schedule) => requeue(config, settle, &schedule, id).await,
                }
            }
        }
    }
    if ended {
        end_in_lane(ports, message).await;
    }
}

/// Gives the job's place in its lane back (best effort: its lease frees it anyway).
/// The refresher's lane counts nothing, and jobs of writers before lanes have none.
async fn end_in_lane(ports: &WorkerPorts, message: &JobMessage) {
    let Some(lane) = &message.lane else { return };
    if *lane == Lane::views() {
        return;
    }
    if let Err(e) = ports.cache.end_job(lane.as_str(), message.id).await {
        tracing::warn!(id = %message.id, error = %e, "cannot end the job in its lane; its lease frees its place");
    }
}

/// Whether `dependency` has a breaker that believes it down.
fn down(config: &WorkerConfig, dependency: &str) -> bool {
    config
        .breakers
        .iter()
        .any(|b| b.dependency() == dependency && !b.is_up())
}

/// Holds a job while any dependency it needs is believed down, until all are back or
/// the outage budget (counted from `since`) is spent; `Some(name)` of one still down
/// when it is. A held job counts in `plotq_worker_jobs_held` while it waits.
async fn hold(config: &WorkerConfig, since: Instant, id: JobId) -> Option<&'static str> {
    let mut held = None;
    loop {
        let breaker = config.breakers.iter().find(|b| !b.is_up())?;
        let left = config.outage_budget.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Some(breaker.dependency());
        }
        if held.is_none() {
            tracing::info!(%id, dependency = breaker.dependency(), "holding job until the dependency is back");
            held = Some(telemetry::Held::start());
        }
        breaker.wait_up(left).await;
    }
}

/// Moves the delivery to the dead-letter queue with `reason` and acks it; if the queue
/// refuses, rejects it without requeueing (the work queue dead-letters it by itself,
/// without our reason).
async fn dead_letter_or_drop(
    ports: &WorkerPorts,
    delivery: &Delivery,
    settle: &Settle<'_>,
    attempts: u32,
    reason: &str,
    id: Option<JobId>,
) {
    match ports
        .queue
        .dead_letter(&delivery.body, attempts, reason)
        .await
    {
        Ok(()) => settle.ack(id).await,
        Err(e) => {
            tracing::warn!(?id, error = %e, "cannot dead-letter; rejecting instead");
            settle.reject(false, id).await;
        }
    }
}

/// Ends the job `failed` with `reason` (and the timings of the attempt, where known) and
/// acks; requeues if the failure cannot be recorded yet, and dead-letters the message if
/// recording it panics.
async fn fail_and_ack(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    reason: &str,
    timings: Option<StageTimings>,
) {
    let id = message.id;
    match catching(finish_failed(
        ports,
        config,
        message,
        reason,
        delivery.attempt + 1,
        timings,
    ))
    .await
    {
        Ok(Ok(())) => settle.ack(Some(id)).await,
        Ok(Err(e)) => requeue(config, settle, &e, id).await,
        Err(panic) => {
            tracing::error!(%id, %panic, "panic while recording a failed job; dead-lettering it");
            telemetry::dead_letter("unrecordable");
            let reason = format!("{reason} (recording the failure panicked: {panic})");
            dead_letter_or_drop(
                ports,
                delivery,
                settle,
                delivery.attempt + 1,
                &reason,
                Some(id),
            )
            .await;
        }
    }
}

/// Out of attempts, or out of outage budget: the job ends `failed` with `reason` (best
/// effort, the dependency may still be down) and its message is kept in the dead-letter
/// queue with it.
#[allow(clippy::too_many_arguments)] // reason: one call per way of giving up, all alike
async fn give_up(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    attempts: u32,
    reason: &str,
    timings: Option<StageTimings>,
) {
    let id = message.id;
    tracing::error!(%id, %reason, "dead-lettering job");
    match catching(finish_failed(
        ports, config, message, reason, attempts, timings,
    ))
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(%id, error = %e, "cannot record the failure; the dead letter keeps the reason")
        }
        Err(panic) => {
            tracing::error!(%id, %panic, "panic while recording the failure; the dead letter keeps the reason")
        }
    }
    match ports
        .queue
        .dead_letter(&delivery.body, attempts, reason)
        .await
    {
        Ok(()) => settle.ack(Some(id)).await,
        Err(e) => requeue(config, settle, &e, id).await,
    }
}

async fn requeue(config: &WorkerConfig, settle: &Settle<'_>, error: &PortError, id: JobId) {
    tracing::warn!(%id, error = %error, pause = ?config.retry_pause, "transient failure; requeueing");
    tokio::time::sleep(config.retry_pause).await;
    settle.reject(true, Some(id)).await;
}

fn base_state(message: &JobMessage, existing: Option<JobState>) -> JobState {
    existing.unwrap_or_else(|| {
        // The state was lost (or never written): the id says when the job was issued.
        let created = message
            .id
            .issued_ms()
            .filter(|ms| plotq_domain::timestamp::check_timestamp(*ms).is_ok())
            .unwrap_or(message.until_ms);
        JobState {
            until_ms: message.until_ms,
            view: message.view.clone(),
            created_at_ms: created,
            updated_at_ms: created,
            ..JobState::queued(message.id, message.spec.clone(), message.until_ms)
        }
    })
}

/// One attempt at a job: state `rendering` → read the window → render → image into the
/// cache → state `done` → `plot.ready`. `stopwatch` records where the time went.
async fn attempt(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    message: &JobMessage,
    redelivered: bool,
    this_attempt: u32,
    stopwatch: &mut Stopwatch,
) -> Outcome {
    let existing = match ports.cache.get_state(message.id).await {
        Ok(s) => s,
        Err(e) => return Outcome::Transient(e),
    };
    if redelivered && let Some(finished) = existing.as_ref().filter(|s| s.status.is_final()) {
        // Finished by a worker that died before its ack — perhaps between its final state
        // and its event: announce it again rather than leave it unannounced (every
        // notifier relays a job's final event once, so a repeat reaches nobody twice).
        tracing::info!(id = %message.id, "redelivered job already finished; announcing it again and acking");
        let kind = if finished.status == JobStatus::Done {
            EventKind::PlotReady
        } else {
            EventKind::PlotFailed
        };
        if let Err(e) = ports
            .events
            .publish(&PlotEvent::for_job(finished, kind, now_ms()))
            .await
        {
            return Outcome::Transient(e);
        }
        return Outcome::AlreadyFinished;
    }
    let mut state = base_state(message, existing);
    stopwatch.created_at(state.created_at_ms);
    state.status = JobStatus::Rendering;
    // See `JobState::attempts`: redeliveries (stored count) and retries (the delivery's).
    state.attempts = state.attempts.saturating_add(1).max(this_attempt);
    // The timings of an earlier attempt are not this one's.
    state.timings = None;
    state.updated_at_ms = now_ms();
    let storing = Instant::now();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    let mut store_ms = ms_since(storing);
    if state.view.is_some() {
        // Dashboards show a panel's progress; plain API jobs do not need the extra event.
        let event = PlotEvent::for_job(&state, EventKind::PlotRendering, now_ms());
        if let Err(e) = ports.events.publish(&event).await {
            return Outcome::Transient(e);
        }
    }
    let spec = &message.spec;
    let (from_ms, until_ms) = spec.range.resolve(message.until_ms);
    let querying = Instant::now();
    let read = match read_window(
        ports.store.as_ref(),
        &config.sources,
        spec,
        from_ms,
        until_ms,
    )
    .await
    {
        Ok(read) => read,
        Err(e) => return Outcome::Transient(e),
    };
    let query_ms = ms_since(querying);
    stopwatch.stage(|t| t.query_ms = Some(query_ms));
    telemetry::documents_read(read.documents);
    if query_ms > config.slow_query.as_secs_f64() * 1000.0 {
        tracing::warn!(
            id = %message.id,
            stage = "query",
            ms = round_ms(query_ms),
            threshold_ms = config.slow_query.as_millis() as u64,
            documents = read.documents,
            "slow query"
        );
    }
    if read.is_empty() {
        return Outcome::Permanent(no_data(spec));
    }
    let WindowRead {
        from_ms,
        until_ms,
        series,
        source,
        samples,
        documents,
        stats,
    } = read;
    let data = PlotData {
        from_ms,
        until_ms,
        series: series
            .into_iter()
            .map(|s| SeriesData {
                service: s.service,
                timestamps_ms: s.timestamps_ms,
                values: s.values,
                weight: s.weight,
            })
            .collect(),
        // What the plot was drawn from, in the image's corner.
        note: Some(source.describe(samples)),
    };
    let (rendered, times) = match render(config, slots, spec, data).await {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    stopwatch.stage(|t| {
        t.render_ms = Some(times.draw_ms);
        t.encode_ms = Some(times.encode_ms);
    });
    let render_ms = times.draw_ms + times.encode_ms;
    if render_ms > config.slow_render.as_secs_f64() * 1000.0 {
        tracing::warn!(
            id = %message.id,
            stage = "render",
            ms = round_ms(render_ms),
            draw_ms = round_ms(times.draw_ms),
            encode_ms = round_ms(times.encode_ms),
            threshold_ms = config.slow_render.as_millis() as u64,
            "slow render"
        );
    }
    let storing = Instant::now();
    if let Err(e) = ports
        .cache
        .put_image(message.id, &rendered.bytes, config.png_ttl)
        .await
    {
        return Outcome::Transient(e);
    }
    store_ms += ms_since(storing);
    stopwatch.stage(|t| t.store_ms = Some(store_ms));
    let timings = stopwatch.snapshot();
    state.status = JobStatus::Done;
    state.error = None;
    state.n_samples = Some(samples);
    state.source = Some(source);
    state.documents_read = Some(documents);
    state.stats = Some(stats);
    state.time_axis = rendered.time_axis;
    state.render_ms = Some(round_ms(render_ms));
    state.timings = timings;
    state.updated_at_ms = now_ms();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    let event = PlotEvent::for_job(&state, EventKind::PlotReady, now_ms());
    if let Err(e) = ports.events.publish(&event).await {
        return Outcome::Transient(e);
    }
    if let Some(t) = &timings {
        telemetry::stages(t);
    }
    log_ready(&state, &rendered, timings.unwrap_or_default());
    Outcome::Done
}

/// The one line a done job logs: INFO for API jobs, DEBUG for dashboard refreshes (a
/// dashboard left open refreshes its views every few seconds).
fn log_ready(state: &JobState, rendered: &Rendered, t: StageTimings) {
    macro_rules! ready {
        ($level:expr) => {
            tracing::event!(
                $level,
                id = %state.id,
                n = state.n_samples.unwrap_or_default(),
                bytes = rendered.bytes.len(),
                source = state.source.map_or("exact", |s| match s {
                    plotq_domain::DataSource::Exact => "exact",
                    plotq_domain::DataSource::Rollups { .. } => "rollups",
                }),
                queue_wait_ms = t.queue_wait_ms,
                query_ms = t.query_ms.unwrap_or_default(),
                render_ms = t.render_ms.unwrap_or_default(),
                encode_ms = t.encode_ms.unwrap_or_default(),
                store_ms = t.store_ms.unwrap_or_default(),
                total_ms = t.total_ms,
                "plot ready"
            )
        };
    }
    if state.view.is_some() {
        ready!(tracing::Level::DEBUG);
    } else {
        ready!(tracing::Level::INFO);
    }
}

/// Renders on the blocking pool under the deadline, holding a render permit for as long
/// as the render thread runs. Returns the plot and how long drawing and encoding took.
async fn render(
    config: &WorkerConfig,
    slots: &RenderSlots,
    spec: &PlotSpec,
    data: PlotData,
) -> Result<(Rendered, RenderTimes), Outcome> {
    let deadline = tokio::time::Instant::now() + config.render_deadline;
    let permit = match tokio::time::timeout_at(deadline, slots.0.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_closed)) => {
            return Err(Outcome::Permanent(
                "the worker's render slots are closed".to_owned(),
            ));
        }
        Err(_) => {
            return Err(Outcome::Permanent(format!(
                "no render slot freed up within the {:?} deadline (earlier renders are still running past theirs)",
                config.render_deadline
            )));
        }
    };
    let (renderer, render_spec) = (config.renderer.clone(), spec.clone());
    let render = tokio::task::spawn_blocking(move || {
        // Released when the render returns (or unwinds), not when the deadline fires.
        let _permit = permit;
        renderer.render_timed(&render_spec, &data)
    });
    match tokio::time::timeout_at(deadline, render).await {
        Err(_) => Err(Outcome::Permanent(format!(
            "rendering took longer than the {:?} deadline",
            config.render_deadline
        ))),
        Ok(Err(join_error)) if join_error.is_panic() => {
            Err(Outcome::Panicked(panic_message(&*join_error.into_panic())))
        }
        Ok(Err(join_error)) => Err(Outcome::Permanent(format!(
            "renderer did not finish: {join_error}"
        ))),
        Ok(Ok(Err(RenderError::NoData))) => Err(Outcome::Permanent(no_data(spec))),
        Ok(Ok(Err(e))) => Err(Outcome::Permanent(e.to_string())),
        Ok(Ok(Ok(rendered))) => Ok(rendered),
    }
}

/// Ends the job `failed` with `reason` and, when the attempt recorded them, its
/// `timings`. The stored state's `attempts` is kept (at least `attempts`, this
/// delivery's count, should the state have been lost meanwhile).
async fn finish_failed(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    message: &JobMessage,
    reason: &str,
    attempts: u32,
    timings: Option<StageTimings>,
) -> Result<(), PortError> {
    let existing = ports.cache.get_state(message.id).await?;
    let mut state = base_state(message, existing);
    state.status = JobStatus::Failed;
    state.attempts = state.attempts.max(attempts);
    state.error = Some(reason.to_owned());
    if timings.is_some() {
        state.timings = timings;
    }
    state.updated_at_ms = now_ms();
    ports.cache.put_state(&state, config.state_ttl).await?;
    ports
        .events
        .publish(&PlotEvent::for_job(&state, EventKind::PlotFailed, now_ms()))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use plotq_domain::{PlotKind, ServiceName};

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

    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let literal = std::panic::catch_unwind(|| panic!("literal")).unwrap_err();
        let formatted = std::panic::catch_unwind(|| panic!("formatted {}", 7)).unwrap_err();
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(&*literal), "literal");
        assert_eq!(panic_message(&*formatted), "formatted 7");
        assert_eq!(panic_message(&*other), "panic with a non-text payload");
    }

    #[tokio::test]
    async fn catching_turns_a_panic_into_an_error() {
        let ok = catching(async { 1 }).await;
        let caught = catching(async {
            tokio::task::yield_now().await;
            panic!("after a suspension")
        })
        .await;
        assert_eq!(ok, Ok(1));
        assert_eq!(caught, Err::<(), _>("after a suspension".to_owned()));
    }
}
