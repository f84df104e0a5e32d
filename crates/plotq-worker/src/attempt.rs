//! One attempt at a job, in the order that makes a crash at any point safe: state
//! `rendering` → read the window → render (on a render thread, under the deadline and a
//! render permit) → image into the cache → state `done` → `plot.ready`. It says how the
//! attempt ended (`Outcome`); classifying that and settling the delivery is `process`'s.

use crate::config::{RenderTimes, WorkerConfig, WorkerPorts};
use crate::panic::panic_message;
use crate::slots::RenderSlots;
use crate::telemetry;
use crate::timing::{Stopwatch, ms_since};
use plotq_domain::job::round_ms;
use plotq_domain::wire::{EventKind, JobMessage, PlotEvent};
use plotq_domain::{JobState, JobStatus, PlotSpec, StageTimings};
use plotq_ports::PortError;
use plotq_ports::clock::now_ms;
use plotq_ports::window::{WindowRead, no_data, read_window};
use plotq_render::{PlotData, RenderError, Rendered, SeriesData};
use std::time::Instant;

/// How one attempt at a job ended.
pub(crate) enum Outcome {
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

/// The job's stored state, or (lost or never written) one rebuilt from its message.
pub(crate) fn base_state(message: &JobMessage, existing: Option<JobState>) -> JobState {
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
pub(crate) async fn attempt(
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
        annotations,
    } = read;
    let data = PlotData {
        from_ms,
        until_ms,
        series: series
            .into_iter()
            .map(|s| SeriesData {
                service: s.name().to_owned(),
                timestamps_ms: s.timestamps_ms,
                values: s.values,
                weight: s.weight,
            })
            .collect(),
        // What the plot was drawn from, in the image's corner.
        note: Some(source.describe(samples)),
        annotations: annotations.clone(),
    };
    // A correlation from rollups is drawn in buckets of at least their minute.
    let drawn = plotq_ports::window::as_read(spec, &source);
    let (rendered, times) = match render(config, slots, &drawn, data).await {
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
    state.text_px = Some(rendered.text_px);
    state.annotations = annotations;
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

/// Renders on a render thread under the deadline, holding a render permit for as long
/// as the render thread runs. Returns the plot and how long drawing and encoding took.
async fn render(
    config: &WorkerConfig,
    slots: &RenderSlots,
    spec: &PlotSpec,
    data: PlotData,
) -> Result<(Rendered, RenderTimes), Outcome> {
    let deadline = tokio::time::Instant::now() + config.render_deadline;
    let permit = match tokio::time::timeout_at(deadline, slots.permits.clone().acquire_owned())
        .await
    {
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
    let render = slots.run(move || {
        // Released when the render returns (or unwinds), not when the deadline fires.
        let _permit = permit;
        renderer.render_timed(&render_spec, &data)
    });
    match tokio::time::timeout_at(deadline, render).await {
        Err(_) => Err(Outcome::Permanent(format!(
            "rendering took longer than the {:?} deadline",
            config.render_deadline
        ))),
        Ok(Ok(Err(panic))) => Err(Outcome::Panicked(panic_message(&*panic))),
        Ok(Err(_gone)) => Err(Outcome::Permanent(
            "the worker's render thread is gone".to_owned(),
        )),
        Ok(Ok(Ok(Err(RenderError::NoData)))) => Err(Outcome::Permanent(no_data(spec))),
        Ok(Ok(Ok(Err(e)))) => Err(Outcome::Permanent(e.to_string())),
        Ok(Ok(Ok(Ok(rendered)))) => Ok(rendered),
    }
}
