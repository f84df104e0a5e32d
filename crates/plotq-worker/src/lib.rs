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
//! Renders run on the blocking pool, which cannot be cancelled: a render past its
//! deadline fails its job but its thread runs on. Each worker therefore has `prefetch`
//! render permits (`RenderSlots`), each held by a render thread until the render really
//! returns, so a worker never has more than `prefetch` render threads alive; a job that
//! finds no free permit within its deadline fails with a message saying so.
//!
//! This crate knows ports, not technologies.

use plotq_domain::rollup::{ROLLUP_MS, Rollup};
use plotq_domain::wire::{EventKind, JobMessage, PlotEvent};
use plotq_domain::{DataSource, JobId, JobState, JobStatus, PlotSpec, SeriesStats};
use plotq_ports::clock::now_ms;
use plotq_ports::{
    Acker, Backoff, Breaker, Delivery, EventBus, JobQueue, MetricStore, PlotCache, PortError,
    PortResult, SeriesQuery,
};
use plotq_render::{PlotData, RenderError, Rendered, SeriesData};
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unacknowledged jobs held at once; also how many render concurrently, and how many
    /// render threads the worker may have alive at most (see `RenderSlots`).
    pub prefetch: u16,
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
    /// Where raw samples stop and rollups take over (see `choose_source`).
    pub sources: SourcePolicy,
    /// The breakers of the dependencies a job needs (the store's and the cache's). While
    /// one is open, a job that needs it is held (its attempts are not spent) until the
    /// dependency is back, for at most `outage_budget`.
    pub breakers: Vec<Breaker>,
    /// Longest a job is held for a dependency that is down; past it the job is
    /// dead-lettered with the reason `dependency_unavailable` (`plotq dlq retry` brings
    /// it back).
    pub outage_budget: Duration,
}

/// When a plot is drawn from one-minute rollups instead of raw samples: windows longer
/// than `rollup_after`, windows reaching past the raw retention, and windows whose
/// rollups count more than `raw_max_samples` samples (all services together).
#[derive(Debug, Clone, Copy)]
pub struct SourcePolicy {
    pub rollup_after: Duration,
    pub raw_retention: Duration,
    pub raw_max_samples: u64,
    /// Stand-in values per series drawn from rollups (bounds the render's memory).
    pub rollup_budget: usize,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        Self {
            rollup_after: Duration::from_secs(3 * 3600),
            raw_retention: Duration::from_secs(48 * 3600),
            raw_max_samples: 5_000_000,
            rollup_budget: 250_000,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            prefetch: 2,
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
        }
    }
}

type RenderFn = dyn Fn(&PlotSpec, &PlotData) -> Result<Rendered, RenderError> + Send + Sync;

/// The function a worker renders with, called on the blocking pool.
#[derive(Clone)]
pub struct Renderer(Arc<RenderFn>);

impl Renderer {
    pub fn new(
        render: impl Fn(&PlotSpec, &PlotData) -> Result<Rendered, RenderError> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(render))
    }

    pub fn render(&self, spec: &PlotSpec, data: &PlotData) -> Result<Rendered, RenderError> {
        (self.0)(spec, data)
    }
}

impl Default for Renderer {
    /// `plotq_render::render`.
    fn default() -> Self {
        Self::new(plotq_render::render)
    }
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

    /// `config.prefetch` permits: one per job the worker may hold.
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
    // One set of permits for the worker's life: render threads of a lost connection's
    // jobs may still be running when the worker consumes again.
    let slots = RenderSlots::for_config(&config);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while !shutdown.is_cancelled() {
        let consumer = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = ports.queue.consume(config.prefetch) => c,
        };
        let mut consumer = match consumer {
            Ok(c) => {
                backoff.reset();
                tracing::info!(prefetch = config.prefetch, "worker consuming");
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
        loop {
            while let Some(ended) = in_flight.try_join_next() {
                log_task_end(ended);
            }
            // Never hold more tasks than the prefetch allows; the broker enforces it too.
            if in_flight.len() >= config.prefetch.max(1) as usize {
                if let Some(ended) = in_flight.join_next().await {
                    log_task_end(ended);
                }
                continue;
            }
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => None,
                d = consumer.next() => {
                    if d.is_none() {
                        tracing::warn!("job consumer closed; reconnecting");
                    }
                    d
                }
            };
            let Some(delivery) = delivery else { break };
            let ports = ports.clone();
            let config = config.clone();
            let slots = slots.clone();
            in_flight.spawn(async move { process(&ports, &config, &slots, delivery).await });
        }
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
            dead_letter_or_drop(ports, delivery, settle, delivery.attempt, &reason, None).await;
            return;
        }
    };
    let id = message.id;
    let held_since = Instant::now();
    let outcome = loop {
        if let Some(down) = hold(config, held_since, id).await {
            // The dependency stayed down past the budget: the job waits in the dead-letter
            // queue for `plotq dlq retry`, its attempts unspent.
            let reason = format!(
                "dependency_unavailable: {down} did not answer for {} s",
                config.outage_budget.as_secs()
            );
            let attempts = delivery.attempt + 1;
            give_up(ports, config, delivery, settle, &message, attempts, &reason).await;
            return;
        }
        let outcome = catching(attempt(
            ports,
            config,
            slots,
            &message,
            delivery.redelivered,
            delivery.attempt + 1,
        ))
        .await
        .unwrap_or_else(Outcome::Panicked);
        match &outcome {
            // Failed because a dependency is down (known now): hold the job and run it
            // again once the dependency is back, rather than spending an attempt.
            Outcome::Transient(e) if down(config, e.dependency()) => continue,
            _ => break outcome,
        }
    };
    match outcome {
        Outcome::Done => settle.ack(Some(id)).await,
        Outcome::Permanent(reason) => {
            tracing::info!(%id, %reason, "job failed permanently");
            fail_and_ack(ports, config, delivery, settle, &message, &reason).await;
        }
        Outcome::Panicked(panic) => {
            tracing::error!(%id, %panic, "panic while processing a job; failing it");
            let reason = format!("internal error while rendering: {panic}");
            fail_and_ack(ports, config, delivery, settle, &message, &reason).await;
        }
        Outcome::Transient(e) => {
            let attempt = delivery.attempt + 1;
            if attempt >= config.max_attempts {
                let reason = format!("gave up after {attempt} attempts: {e}");
                give_up(ports, config, delivery, settle, &message, attempt, &reason).await;
            } else {
                tracing::warn!(%id, error = %e, attempt, "transient failure; retrying later");
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
/// when it is.
async fn hold(config: &WorkerConfig, since: Instant, id: JobId) -> Option<&'static str> {
    let mut logged = false;
    loop {
        let breaker = config.breakers.iter().find(|b| !b.is_up())?;
        let left = config.outage_budget.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Some(breaker.dependency());
        }
        if !logged {
            tracing::info!(%id, dependency = breaker.dependency(), "holding job until the dependency is back");
            logged = true;
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

/// Ends the job `failed` with `reason` and acks; requeues if the failure cannot be
/// recorded yet, and dead-letters the message if recording it panics.
async fn fail_and_ack(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    reason: &str,
) {
    let id = message.id;
    match catching(finish_failed(
        ports,
        config,
        message,
        reason,
        delivery.attempt + 1,
    ))
    .await
    {
        Ok(Ok(())) => settle.ack(Some(id)).await,
        Ok(Err(e)) => requeue(config, settle, &e, id).await,
        Err(panic) => {
            tracing::error!(%id, %panic, "panic while recording a failed job; dead-lettering it");
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
async fn give_up(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    delivery: &Delivery,
    settle: &Settle<'_>,
    message: &JobMessage,
    attempts: u32,
    reason: &str,
) {
    let id = message.id;
    tracing::error!(%id, %reason, "dead-lettering job");
    match catching(finish_failed(ports, config, message, reason, attempts)).await {
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
    existing.unwrap_or_else(|| JobState {
        until_ms: message.until_ms,
        view: message.view.clone(),
        ..JobState::queued(message.id, message.spec.clone(), message.until_ms)
    })
}

async fn attempt(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    slots: &RenderSlots,
    message: &JobMessage,
    redelivered: bool,
    this_attempt: u32,
) -> Outcome {
    let existing = match ports.cache.get_state(message.id).await {
        Ok(s) => s,
        Err(e) => return Outcome::Transient(e),
    };
    if redelivered && existing.as_ref().is_some_and(|s| s.status.is_final()) {
        // Finished by a worker that died before its ack: nothing left to do.
        tracing::info!(id = %message.id, "redelivered job already finished; acking");
        return Outcome::Done;
    }
    let mut state = base_state(message, existing);
    state.status = JobStatus::Rendering;
    // See `JobState::attempts`: redeliveries (stored count) and retries (the delivery's).
    state.attempts = state.attempts.saturating_add(1).max(this_attempt);
    state.updated_at_ms = now_ms();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    if state.view.is_some() {
        // Dashboards show a panel's progress; plain API jobs do not need the extra event.
        let event = PlotEvent::for_job(&state, EventKind::PlotRendering, now_ms());
        if let Err(e) = ports.events.publish(&event).await {
            return Outcome::Transient(e);
        }
    }
    let spec = &message.spec;
    let (from_ms, until_ms) = spec.range.resolve(message.until_ms);
    let Read {
        data,
        source,
        samples,
        documents,
        stats,
    } = match read_data(ports, &config.sources, spec, from_ms, until_ms).await {
        Ok(read) => read,
        Err(e) => return Outcome::Transient(e),
    };
    if data.series.iter().all(|s| s.values.is_empty()) {
        return Outcome::Permanent(no_data(spec));
    }
    let (rendered, render_ms) = match render(config, slots, spec, data).await {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    if let Err(e) = ports
        .cache
        .put_image(message.id, &rendered.bytes, config.png_ttl)
        .await
    {
        return Outcome::Transient(e);
    }
    state.status = JobStatus::Done;
    state.error = None;
    state.n_samples = Some(samples.unwrap_or(rendered.n_samples as u64));
    state.source = Some(source);
    state.documents_read = Some(documents);
    state.stats = Some(stats);
    state.render_ms = Some((render_ms * 100.0).round() / 100.0);
    state.updated_at_ms = now_ms();
    if let Err(e) = ports.cache.put_state(&state, config.state_ttl).await {
        return Outcome::Transient(e);
    }
    let event = PlotEvent::for_job(&state, EventKind::PlotReady, now_ms());
    if let Err(e) = ports.events.publish(&event).await {
        return Outcome::Transient(e);
    }
    tracing::info!(id = %message.id, n = rendered.n_samples, render_ms, bytes = rendered.bytes.len(), "plot ready");
    Outcome::Done
}

/// What a job read from the store.
struct Read {
    data: PlotData,
    source: DataSource,
    /// The exact sample count, when drawn from rollups (their stand-ins are fewer).
    samples: Option<u64>,
    /// Stored documents (chunks and rollups) read.
    documents: u64,
    /// Each service's numbers in the window (services without samples left out).
    stats: Vec<SeriesStats>,
}

/// The plot's data and what it came from.
async fn read_data(
    ports: &WorkerPorts,
    policy: &SourcePolicy,
    spec: &PlotSpec,
    from_ms: i64,
    until_ms: i64,
) -> PortResult<Read> {
    let queries: Vec<SeriesQuery<'_>> = spec
        .services
        .iter()
        .map(|service| SeriesQuery {
            service: service.as_str(),
            metric: spec.metric.as_str(),
            from_ms,
            until_ms,
            with_timestamps: spec.kind.needs_timestamps(),
        })
        .collect();
    let window_ms = until_ms.saturating_sub(from_ms);
    let raw_horizon = now_ms() - policy.raw_retention.as_millis() as i64;
    // The rollups also count the window's samples cheaply (one document a minute).
    let mut rollups = Vec::with_capacity(queries.len());
    for q in &queries {
        rollups.push(ports.store.rollups(q).await?);
    }
    let estimated: u64 = rollups
        .iter()
        .flat_map(|r| r.minutes.iter().map(|(_, m)| m.count))
        .sum();
    let mut documents: u64 = rollups.iter().map(|r| r.docs_read).sum();
    let by_rollups = window_ms > policy.rollup_after.as_millis() as i64
        || from_ms < raw_horizon
        || estimated > policy.raw_max_samples;
    let mut series = Vec::with_capacity(queries.len());
    if by_rollups {
        let mut total = 0u64;
        let mut stats = Vec::new();
        for (q, read) in queries.iter().zip(&rollups) {
            if let Some(summary) = Rollup::merged(read.minutes.iter().map(|(_, r)| r)).summary() {
                stats.push(SeriesStats::of(q.service, &summary));
            }
            let stand_in = stand_ins(&read.minutes, policy.rollup_budget);
            total += stand_in.1;
            series.push(SeriesData {
                service: q.service.to_owned(),
                ..stand_in.0
            });
        }
        let source = DataSource::minute_rollups();
        let data = PlotData {
            from_ms,
            until_ms,
            series,
            note: Some(source.describe(total)),
        };
        return Ok(Read {
            data,
            source,
            samples: Some(total),
            documents,
            stats,
        });
    }
    let mut total = 0u64;
    let mut stats = Vec::new();
    for q in &queries {
        let points = ports.store.points(q).await?;
        documents += points.chunks_read;
        total += points.values.len() as u64;
        if let Some(summary) = plotq_domain::stats::summarize(&points.values) {
            stats.push(SeriesStats::of(q.service, &summary));
        }
        series.push(SeriesData {
            service: q.service.to_owned(),
            timestamps_ms: points.timestamps_ms,
            values: points.values,
            weight: 1.0,
        });
    }
    let source = DataSource::Exact;
    let data = PlotData {
        from_ms,
        until_ms,
        series,
        note: Some(source.describe(total)),
    };
    Ok(Read {
        data,
        source,
        samples: None,
        documents,
        stats,
    })
}

/// At most about `budget` stand-in values for the minutes' samples, each minute's
/// spread over its minute (in an order that does not follow their values), all of one
/// weight; and the exact number of samples they stand for.
fn stand_ins(minutes: &[(i64, Rollup)], budget: usize) -> (SeriesData, u64) {
    let total: u64 = minutes.iter().map(|(_, r)| r.count).sum();
    let weight = (total as f64 / budget.max(1) as f64).max(1.0);
    let mut data = SeriesData {
        weight,
        ..SeriesData::default()
    };
    for (minute, rollup) in minutes {
        let values = rollup.stand_ins(weight);
        let k = values.len().max(1) as i64;
        for (j, v) in values.into_iter().enumerate() {
            // A stride coprime with most k scatters the sorted values over the minute.
            let slot = (j as i64 * 7_919) % k;
            data.timestamps_ms.push(minute + slot * ROLLUP_MS / k);
            data.values.push(v);
        }
    }
    (data, total)
}

/// Renders on the blocking pool under the deadline, holding a render permit for as long
/// as the render thread runs. Returns the plot and its render time in milliseconds.
async fn render(
    config: &WorkerConfig,
    slots: &RenderSlots,
    spec: &PlotSpec,
    data: PlotData,
) -> Result<(Rendered, f64), Outcome> {
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
    let started = Instant::now();
    let (renderer, render_spec) = (config.renderer.clone(), spec.clone());
    let render = tokio::task::spawn_blocking(move || {
        // Released when the render returns (or unwinds), not when the deadline fires.
        let _permit = permit;
        renderer.render(&render_spec, &data)
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
        Ok(Ok(Ok(rendered))) => Ok((rendered, started.elapsed().as_secs_f64() * 1000.0)),
    }
}

/// Seed 000's "no data" case, e.g. `no data for checkout/latency_ms in the last 10m`.
fn no_data(spec: &PlotSpec) -> String {
    let services: Vec<&str> = spec.services.iter().map(|s| s.as_str()).collect();
    format!(
        "no data for {}/{} in the {}",
        services.join(","),
        spec.metric,
        spec.range.label()
    )
}

/// Ends the job `failed` with `reason`. The stored state's `attempts` is kept (at least
/// `attempts`, this delivery's count, should the state have been lost meanwhile).
async fn finish_failed(
    ports: &WorkerPorts,
    config: &WorkerConfig,
    message: &JobMessage,
    reason: &str,
    attempts: u32,
) -> Result<(), PortError> {
    let existing = ports.cache.get_state(message.id).await?;
    let mut state = base_state(message, existing);
    state.status = JobStatus::Failed;
    state.attempts = state.attempts.max(attempts);
    state.error = Some(reason.to_owned());
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
