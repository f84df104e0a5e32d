//! What a worker is given: its settings (`WorkerConfig`), its ports (`WorkerPorts`)
//! and the function it renders with (`Renderer`, timing drawing and encoding apart as
//! `RenderTimes`). Plain data and the render call; no I/O, no scheduling.

use crate::timing::{ms_between, ms_since};
use plotq_domain::PlotSpec;
use plotq_ports::window::SourcePolicy;
use plotq_ports::{Breaker, EventBus, JobQueue, MetricStore, PlotCache};
use plotq_render::{PlotData, RenderError, Rendered};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs processed at once: how many render concurrently, and how many render
    /// threads the worker has (see `RenderSlots`).
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

/// The function a worker renders with, called on its render threads: `plotq_render`'s
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

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
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
