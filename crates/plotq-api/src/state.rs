//! What every handler shares: [`ApiState`] (the ports and the settings), [`ApiConfig`]
//! with its defaults, and the per-process bounds it carries ([`StatsSlots`] for
//! `GET /api/v1/stats`, [`RenderConfig`] for `GET /api/v1/render`, the OTLP
//! cumulative streams). Near the leaf of the crate: it uses no other module of it but
//! `streams.rs`, which uses none.

use plotq_ports::{JobQueue, MetricStore, PlotCache, ViewRegistry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Settings of the API role.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted (bytes).
    pub max_body_bytes: usize,
    /// How long a job's state is kept (covers queueing plus rendering plus reading).
    pub state_ttl: Duration,
    /// How long an image stays cached (the workers' PNG lifetime).
    pub image_ttl: Duration,
    /// Identical plot requests over unchanged data share one job (see `reuse_for` in
    /// `plots.rs`); this is the least time they share it, and zero disables sharing.
    pub dedupe_for: Duration,
    /// Where the dashboard's browser subscribes to events (`/api/v1/events` when the
    /// notifier shares this origin, as in standalone mode; its URL otherwise).
    pub events_url: String,
    /// Raw samples or rollups for `GET /api/v1/stats`: the workers' policy.
    pub sources: plotq_ports::SourcePolicy,
    /// How many `GET /api/v1/stats` reads this process runs at once (a window may hold
    /// millions of raw samples); more wait briefly, then get `429`.
    pub stats_slots: StatsSlots,
    /// `GET /api/v1/render`'s wait and grants.
    pub render: RenderConfig,
    /// Most one-minute buckets (series × minute) one ingest batch may touch: each is a
    /// stored chunk and a rollup update, so this bounds a request's write amplification
    /// (`422 batch_too_spread` past it).
    pub max_batch_buckets: usize,
    /// Plot jobs one caller (tenant) may have queued or rendering at once, over every
    /// api replica (`429 too_many_jobs` past it): its bounded share of the queue, which
    /// the workers serve in turn with every other tenant's.
    pub jobs_in_flight_per_caller: usize,
    /// How long a job counts as in flight at most, when its end is never seen (a worker
    /// lost it): its place in its tenant's share is free again after this.
    pub job_lease: Duration,
    /// Longest one ingest's whole store write may take (every chunk and rollup write
    /// with the client's own retries); past it the request is answered `503` (`None`:
    /// unbounded, for the in-memory store).
    pub store_timeout: Option<Duration>,
    /// The OTLP cumulative streams this process follows (shared by clones; its bound is
    /// `PLOTQ_OTLP_MAX_STREAMS`).
    pub otlp_streams: Arc<crate::streams::Streams>,
    /// Done plots' images held in this process (shared by clones; bounded by
    /// `PLOTQ_HOT_IMAGE_BYTES`): see `hot.rs`.
    pub hot_images: crate::hot::HotImages,
}

/// Default bound of the OTLP cumulative streams one api process follows.
pub const DEFAULT_OTLP_MAX_STREAMS: usize = 100_000;

/// Default of `ApiConfig::max_batch_buckets`: a day of one series, or half a day of a
/// Caddy host's two series.
pub const DEFAULT_MAX_BATCH_BUCKETS: usize = 1_440;

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            state_ttl: Duration::from_secs(3600),
            image_ttl: Duration::from_secs(600),
            events_url: "/api/v1/events".to_owned(),
            dedupe_for: Duration::from_secs(10),
            sources: plotq_ports::SourcePolicy::default(),
            stats_slots: StatsSlots::default(),
            render: RenderConfig::default(),
            max_batch_buckets: DEFAULT_MAX_BATCH_BUCKETS,
            jobs_in_flight_per_caller: 16,
            job_lease: Duration::from_secs(120),
            store_timeout: None,
            otlp_streams: Arc::new(crate::streams::Streams::new(
                DEFAULT_OTLP_MAX_STREAMS,
                plotq_ports::clock::now_ms(),
            )),
            hot_images: crate::hot::HotImages::default(),
        }
    }
}

/// The concurrent `GET /api/v1/stats` reads of one process (shared by clones).
#[derive(Debug, Clone)]
pub struct StatsSlots(pub(crate) Arc<Semaphore>);

impl StatsSlots {
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Semaphore::new(slots.max(1))))
    }
}

impl Default for StatsSlots {
    fn default() -> Self {
        Self::new(4)
    }
}

/// `GET /api/v1/render`'s bounds and the life of its links.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Longest a request waits for its image.
    pub wait: Duration,
    /// Requests waiting at once in this process (shared by clones).
    pub waiters: Arc<Semaphore>,
    /// Life of a link minted without `ttl_secs`.
    pub grant_ttl: Duration,
    /// Longest life a link may be given.
    pub grant_max_ttl: Duration,
}

impl RenderConfig {
    pub fn waiters(n: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(n.max(1)))
    }
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(10),
            waiters: Self::waiters(256),
            grant_ttl: Duration::from_secs(7 * 86_400),
            grant_max_ttl: Duration::from_secs(90 * 86_400),
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub config: ApiConfig,
    pub store: Arc<dyn MetricStore>,
    pub queue: Arc<dyn JobQueue>,
    pub cache: Arc<dyn PlotCache>,
    pub views: Arc<dyn ViewRegistry>,
}
