//! Live refresh driven by viewers: re-render a watched view when new samples arrived for
//! its series (at most once per debounce period) or before its cached image expires.
//! Views nobody watches are never re-rendered.
//!
//! Every notifier replica runs the loop; `ViewRegistry::claim` lets exactly one of them
//! enqueue a given view's refresh per debounce period. The decision itself (`due`) is a
//! pure function of the view's state, its series' watermark and the clock; a pass
//! (`refresh_due_views_at`) takes the time as an argument too, so tests drive it with a
//! `ManualClock` instead of sleeping.

use plotq_domain::wire::{EventKind, JobMessage, Lane, PlotEvent};
use plotq_domain::{JobId, JobState, JobStatus, View, ViewState};
use plotq_ports::clock::now_ms;
use plotq_ports::{EventBus, JobQueue, PlotCache, PortResult, ViewRegistry};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// When to refresh watched views.
#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// At most one refresh per view per this period.
    pub debounce: Duration,
    /// Refresh a view whose image is this old even without new data (set below the PNG
    /// TTL, so a watched view's image never expires).
    pub max_age: Duration,
    /// A queued or rendering refresh older than this is presumed lost and re-requested.
    pub stuck_after: Duration,
    /// How often watched views are checked.
    pub tick: Duration,
    /// TTL of the job states the refresher creates.
    pub state_ttl: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            debounce: Duration::from_secs(3),
            max_age: Duration::from_secs(480),
            stuck_after: Duration::from_secs(60),
            tick: Duration::from_millis(500),
            state_ttl: Duration::from_secs(3600),
        }
    }
}

/// Whether a watched view should be re-rendered now.
pub fn due(
    state: Option<&ViewState>,
    touched_ms: Option<i64>,
    now_ms: i64,
    config: &RefreshConfig,
) -> bool {
    let Some(state) = state else {
        return true; // never rendered: render it for its first viewer
    };
    let age = now_ms - state.requested_ms;
    let in_flight = matches!(state.status, JobStatus::Queued | JobStatus::Rendering);
    if in_flight {
        return age >= config.stuck_after.as_millis() as i64;
    }
    if age < config.debounce.as_millis() as i64 {
        return false;
    }
    let new_data = touched_ms.is_some_and(|t| t > state.requested_ms);
    let aging = age >= config.max_age.as_millis() as i64;
    new_data || aging
}

/// What the refresher uses.
#[derive(Clone)]
pub struct RefreshPorts {
    pub registry: Arc<dyn ViewRegistry>,
    pub queue: Arc<dyn JobQueue>,
    pub cache: Arc<dyn PlotCache>,
    pub events: Arc<dyn EventBus>,
}

/// Checks watched views every tick until `shutdown`; survives dependency outages.
pub async fn run_until_stopped(
    ports: RefreshPorts,
    config: RefreshConfig,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(config.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        if let Err(e) = refresh_due_views(&ports, &config).await {
            tracing::warn!(error = %e, "view refresh pass failed; retrying next tick");
        }
    }
    tracing::info!("refresher stopped");
}

/// One pass over the watched views, now; returns how many refreshes it queued.
pub async fn refresh_due_views(ports: &RefreshPorts, config: &RefreshConfig) -> PortResult<usize> {
    refresh_due_views_at(ports, config, now_ms()).await
}

/// One pass over the watched views as of `now` (epoch ms): leases, `due` and the jobs'
/// data windows all use it (claims lapse by the registry's own clock). Returns how many
/// refreshes it queued.
pub async fn refresh_due_views_at(
    ports: &RefreshPorts,
    config: &RefreshConfig,
    now: i64,
) -> PortResult<usize> {
    let mut queued = 0;
    for key in ports.registry.watched(now).await? {
        let Ok(view) = View::parse(&key) else {
            continue;
        };
        let spec = view.spec();
        let state = ports.registry.view_state(&key).await?;
        // A comparison is due when any of its series got new samples.
        let mut touched = None;
        for service in &spec.services {
            let t = ports
                .registry
                .series_touched(service.as_str(), spec.metric.as_str())
                .await?;
            touched = touched.max(t);
        }
        if !due(state.as_ref(), touched, now, config)
            || !ports.registry.claim(&key, config.debounce).await?
        {
            continue;
        }
        // A UUIDv7 issued at the pass, like every job's: a refresh whose state is lost
        // with the cache answers `410 state_lost`, not `404`.
        let mut job = JobState::queued(JobId::issued_at(now), spec, now);
        job.view = Some(key.clone());
        ports.cache.put_state(&job, config.state_ttl).await?;
        // Re-renders of watched views share one lane of the workers.
        ports
            .queue
            .publish(&JobMessage::new(&job).in_lane(Lane::views()))
            .await?;
        let next = ViewState {
            job_id: job.id,
            status: JobStatus::Queued,
            requested_ms: now,
            last_ready: state.and_then(|s| s.last_ready),
            error: None,
        };
        ports.registry.set_view_state(&key, &next).await?;
        ports
            .events
            .publish(&PlotEvent::for_job(&job, EventKind::PlotQueued, now))
            .await?;
        tracing::debug!(view = %key, id = %job.id, "view refresh queued");
        metrics::counter!("plotq_view_refreshes_total").increment(1);
        queued += 1;
    }
    Ok(queued)
}

/// Folds a bus event into its view's state (every replica does it; it is idempotent).
pub async fn record_event(registry: &dyn ViewRegistry, event: &PlotEvent) -> PortResult<()> {
    let Some(key) = &event.view else {
        return Ok(());
    };
    let Some(mut state) = registry.view_state(key).await? else {
        return Ok(());
    };
    if state.job_id != event.id {
        return Ok(()); // an older refresh finishing late changes nothing
    }
    match event.event {
        EventKind::PlotQueued => return Ok(()),
        EventKind::PlotRendering => {
            if state.status != JobStatus::Queued {
                return Ok(());
            }
            state.status = JobStatus::Rendering;
        }
        EventKind::PlotReady => {
            state.status = JobStatus::Done;
            state.error = None;
            state.last_ready = Some(event.clone());
        }
        EventKind::PlotFailed => {
            state.status = JobStatus::Failed;
            state.error = event.error.clone();
        }
    }
    registry.set_view_state(key, &state).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryQueue, MemoryViews};

    fn state(status: JobStatus, requested_ms: i64) -> ViewState {
        ViewState {
            job_id: JobId::new_random(),
            status,
            requested_ms,
            last_ready: None,
            error: None,
        }
    }

    #[test]
    fn refresh_rules() {
        let c = RefreshConfig::default();
        let t = 1_000_000;
        assert!(due(None, None, t, &c), "first viewer gets a render");
        let done = state(JobStatus::Done, t);
        assert!(
            !due(Some(&done), None, t + 10_000, &c),
            "no new data, not old: no render"
        );
        assert!(
            !due(Some(&done), Some(t + 500), t + 1_000, &c),
            "new data inside the debounce waits"
        );
        assert!(
            due(Some(&done), Some(t + 500), t + 3_000, &c),
            "new data after the debounce renders"
        );
        assert!(
            due(Some(&done), None, t + 480_000, &c),
            "refreshed before the image expires"
        );
        let busy = state(JobStatus::Rendering, t);
        assert!(
            !due(Some(&busy), Some(t + 5_000), t + 10_000, &c),
            "one refresh in flight at a time"
        );
        assert!(
            due(Some(&busy), None, t + 60_000, &c),
            "a lost refresh is re-requested"
        );
    }

    #[tokio::test]
    async fn only_watched_views_refresh_and_claims_debounce() {
        let ports = RefreshPorts {
            registry: Arc::new(MemoryViews::default()),
            queue: Arc::new(MemoryQueue::new(100)),
            cache: Arc::new(MemoryCache::default()),
            events: Arc::new(MemoryEventBus::new(100)),
        };
        let config = RefreshConfig::default();
        let now = now_ms();
        ports
            .registry
            .touch_series(&[("a".into(), "latency_ms".into())], now)
            .await
            .unwrap();
        assert_eq!(
            refresh_due_views(&ports, &config).await.unwrap(),
            0,
            "nobody watches"
        );
        let key = "a/histogram/10m/light/800x450".to_owned();
        ports
            .registry
            .watch(std::slice::from_ref(&key), now + 30_000)
            .await
            .unwrap();
        assert_eq!(refresh_due_views(&ports, &config).await.unwrap(), 1);
        let state = ports.registry.view_state(&key).await.unwrap().unwrap();
        assert_eq!(state.status, JobStatus::Queued);
        let issued = state
            .job_id
            .issued_ms()
            .expect("a UUIDv7, issued at the pass");
        assert!((now..=now_ms()).contains(&issued), "issued at {issued}");
        // In flight: a second pass queues nothing, even with new data.
        ports
            .registry
            .touch_series(&[("a".into(), "latency_ms".into())], now + 1)
            .await
            .unwrap();
        assert_eq!(refresh_due_views(&ports, &config).await.unwrap(), 0);
        let mut consumer = ports.queue.consume(1).await.unwrap();
        let job = JobMessage::decode(&consumer.next().await.unwrap().body).unwrap();
        assert_eq!(job.view.as_deref(), Some(key.as_str()));
        assert_eq!(job.spec.width, 800);
    }

    /// A view refreshes for new data only once the debounce is over, and ages out after
    /// `max_age` without new data: driven by a manual clock, no sleeping.
    #[tokio::test]
    async fn new_data_and_age_refresh_by_the_clock() {
        use plotq_ports::{Clock, ManualClock};
        let clock = ManualClock::new(1_795_000_000_000);
        let ports = RefreshPorts {
            registry: Arc::new(MemoryViews::default().with_clock(Arc::new(clock.clone()))),
            queue: Arc::new(MemoryQueue::new(100)),
            cache: Arc::new(MemoryCache::default()),
            events: Arc::new(MemoryEventBus::new(100)),
        };
        let config = RefreshConfig::default();
        let key = "a/histogram/10m/light/800x450".to_owned();
        let series = [("a".to_owned(), "latency_ms".to_owned())];
        let start = clock.now_ms();
        let pass = |ports: &RefreshPorts| {
            let (ports, config, now) = (ports.clone(), config.clone(), clock.now_ms());
            async move { refresh_due_views_at(&ports, &config, now).await.unwrap() }
        };
        let finish = |ports: &RefreshPorts| {
            let ports = ports.clone();
            let key = key.clone();
            async move {
                let state = ports.registry.view_state(&key).await.unwrap().unwrap();
                let job = ports.cache.get_state(state.job_id).await.unwrap().unwrap();
                let ready = PlotEvent::for_job(&job, EventKind::PlotReady, job.created_at_ms);
                record_event(ports.registry.as_ref(), &ready).await.unwrap();
                state.requested_ms
            }
        };
        ports
            .registry
            .watch(std::slice::from_ref(&key), start + 3_600_000)
            .await
            .unwrap();
        assert_eq!(pass(&ports).await, 1, "first viewer: first render");
        assert_eq!(finish(&ports).await, start);

        clock.advance(Duration::from_millis(1_000));
        ports
            .registry
            .touch_series(&series, clock.now_ms())
            .await
            .unwrap();
        assert_eq!(pass(&ports).await, 0, "new data inside the debounce waits");
        clock.advance(Duration::from_millis(2_000));
        assert_eq!(
            pass(&ports).await,
            1,
            "and renders once the debounce is over"
        );
        let requested = finish(&ports).await;
        assert_eq!(
            requested,
            start + 3_000,
            "the job's window ends at the pass"
        );

        clock.advance(config.max_age - Duration::from_millis(1));
        assert_eq!(pass(&ports).await, 0, "no new data, image not old yet");
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            pass(&ports).await,
            1,
            "re-rendered before the image expires"
        );
    }
}
