//! The api's own settings (`ApiSettings`: ingest and plot requests, render waits, render
//! links, statistics reads, per-caller ingest limits) and what they become:
//! `plotq_api::ApiConfig` and the api's part of `plotq_http::LimitsConfig`.

use super::cache::CacheSettings;
use super::values::{self, Validate, at_least, at_least_for};
use clap::Args;
use plotq_api::ApiConfig;
use plotq_worker::SourcePolicy;
use std::time::Duration;

/// Ingest and plot requests: api, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "API")]
pub struct ApiSettings {
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PLOTQ_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Where dashboard pages subscribe to events: `/api/v1/events` when the notifier
    /// shares the page's origin (standalone, or behind one proxy), else its full URL.
    #[arg(long, env = "PLOTQ_EVENTS_URL", default_value = "/api/v1/events")]
    pub events_url: String,
    /// Identical plot requests over unchanged data share one job and its image: while it
    /// is cached (PLOTQ_PNG_TTL_SECS) for a past range, and for a window ending now while
    /// the window has moved less than one of the plot's time buckets — but at least this
    /// long. 0 disables sharing.
    #[arg(long = "dedupe-secs", env = "PLOTQ_DEDUPE_SECS", default_value = "10",
          value_name = "DURATION", value_parser = values::secs())]
    pub dedupe: Duration,
    /// Longest `GET /api/v1/render` waits for its image before answering `503` with
    /// `Retry-After` (at most 1 minute).
    #[arg(long = "render-wait-ms", env = "PLOTQ_RENDER_WAIT_MS", default_value = "10000",
          value_name = "DURATION", value_parser = values::millis())]
    pub render_wait: Duration,
    /// `GET /api/v1/render` requests one process lets wait at once (each holds a
    /// connection); more get `503 render_busy` with `Retry-After`.
    #[arg(long, env = "PLOTQ_RENDER_WAITERS", default_value_t = 256)]
    pub render_waiters: usize,
    /// Of those, how many one caller (or one render link) may have waiting; more get
    /// `429 too_many_connections`.
    #[arg(long, env = "PLOTQ_RENDER_WAITERS_PER_CALLER", default_value_t = 32)]
    pub render_waiters_per_caller: usize,
    /// Plot jobs one caller may have queued or rendering at once, counted over every api
    /// replica; more get `429 too_many_jobs`. Workers serve the callers' jobs in turn, so
    /// one caller's backlog never queues another's jobs behind it.
    #[arg(long, env = "PLOTQ_JOBS_IN_FLIGHT_PER_CALLER", default_value_t = 16)]
    pub jobs_in_flight_per_caller: usize,
    /// How long a job counts toward its caller's jobs in flight when its end is never
    /// seen (a lost job).
    #[arg(long = "job-lease-secs", env = "PLOTQ_JOB_LEASE_SECS", default_value = "120",
          value_name = "DURATION", value_parser = values::secs())]
    pub job_lease: Duration,
    /// How long a render link (`POST /api/v1/render/grants`) lives when the request
    /// names no `ttl_secs`.
    #[arg(long = "grant-ttl-secs", env = "PLOTQ_GRANT_TTL_SECS", default_value = "604800",
          value_name = "DURATION", value_parser = values::secs())]
    pub grant_ttl: Duration,
    /// The longest life a render link may be given.
    #[arg(long = "grant-max-ttl-secs", env = "PLOTQ_GRANT_MAX_TTL_SECS", default_value = "7776000",
          value_name = "DURATION", value_parser = values::secs())]
    pub grant_max_ttl: Duration,
    /// `GET /api/v1/stats` reads one process runs at once (a window may hold millions
    /// of raw samples); more wait up to 5 s, then get `429`.
    #[arg(long, env = "PLOTQ_STATS_CONCURRENCY", default_value_t = 4)]
    pub stats_concurrency: usize,
    /// Samples per second one caller (token, or client address) may ingest.
    #[arg(long, env = "PLOTQ_INGEST_SAMPLES_PER_SEC", default_value_t = 100_000)]
    pub ingest_samples_per_sec: u32,
    /// Samples one caller may send in a burst (at least the largest batch, 50,000).
    #[arg(long, env = "PLOTQ_INGEST_BURST", default_value_t = 200_000)]
    pub ingest_burst: u32,
    /// Most one-minute buckets (distinct series × minute) one ingest batch may touch
    /// (each is a stored chunk and a rollup update); more get `422 batch_too_spread`.
    #[arg(long, env = "PLOTQ_MAX_BATCH_BUCKETS", default_value_t = plotq_api::DEFAULT_MAX_BATCH_BUCKETS)]
    pub max_batch_buckets: usize,
    /// Distinct label sets one caller may write for one series (service and metric),
    /// counted by each api process; a batch past it gets `422 too_many_label_sets`.
    #[arg(long, env = "PLOTQ_MAX_LABEL_SETS", default_value_t = 1_000)]
    pub max_label_sets: usize,
    /// Cumulative OTLP streams (sums and histograms turned into deltas by difference) one
    /// api process follows; past it a new stream's points are refused in the answer's
    /// partial success (streams silent for 15 minutes make room first).
    #[arg(long, env = "PLOTQ_OTLP_MAX_STREAMS", default_value_t = plotq_api::DEFAULT_OTLP_MAX_STREAMS)]
    pub otlp_max_streams: usize,
    /// Bytes of done plots' images each api process keeps in memory, to serve them (and
    /// answer `If-None-Match` with `304`) without reading Redis; 0 turns it off.
    #[arg(long, env = "PLOTQ_HOT_IMAGE_BYTES", default_value_t = plotq_api::DEFAULT_HOT_IMAGE_BYTES)]
    pub hot_image_bytes: u64,
    /// Requests per second one render link (`GET /api/v1/render?…&grant=`) may get,
    /// whoever holds it: a link's traffic has its own budget, never its minter's.
    #[arg(long, env = "PLOTQ_GRANT_REQUESTS_PER_SEC", default_value_t = 10)]
    pub grant_requests_per_sec: u32,
    /// Requests one render link may get in a burst.
    #[arg(long, env = "PLOTQ_GRANT_BURST", default_value_t = 40)]
    pub grant_burst: u32,
    /// Annotations one caller may post a minute (and in a burst).
    #[arg(long, env = "PLOTQ_ANNOTATIONS_PER_MIN", default_value_t = 60)]
    pub annotations_per_min: u32,
}

impl Validate for ApiSettings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (Duration::from_millis(1)..=Duration::from_secs(60)).contains(&self.render_wait),
            "PLOTQ_RENDER_WAIT_MS must be 1ms to 1m"
        );
        at_least(self.render_waiters, 1, "PLOTQ_RENDER_WAITERS")?;
        at_least(
            self.render_waiters_per_caller,
            1,
            "PLOTQ_RENDER_WAITERS_PER_CALLER",
        )?;
        at_least(
            self.jobs_in_flight_per_caller,
            1,
            "PLOTQ_JOBS_IN_FLIGHT_PER_CALLER",
        )?;
        at_least_for(
            self.job_lease,
            Duration::from_secs(10),
            "PLOTQ_JOB_LEASE_SECS",
        )?;
        at_least_for(
            self.grant_ttl,
            Duration::from_secs(60),
            "PLOTQ_GRANT_TTL_SECS",
        )?;
        anyhow::ensure!(
            self.grant_max_ttl >= self.grant_ttl,
            "PLOTQ_GRANT_MAX_TTL_SECS must be at least PLOTQ_GRANT_TTL_SECS"
        );
        anyhow::ensure!(
            self.ingest_burst as usize >= plotq_domain::sample::MAX_BATCH,
            "PLOTQ_INGEST_BURST must be at least the largest batch ({})",
            plotq_domain::sample::MAX_BATCH
        );
        at_least(self.max_batch_buckets, 1, "PLOTQ_MAX_BATCH_BUCKETS")?;
        at_least(self.max_label_sets, 1, "PLOTQ_MAX_LABEL_SETS")?;
        at_least(self.otlp_max_streams, 1, "PLOTQ_OTLP_MAX_STREAMS")?;
        for (value, name) in [
            (self.ingest_samples_per_sec, "PLOTQ_INGEST_SAMPLES_PER_SEC"),
            (self.grant_requests_per_sec, "PLOTQ_GRANT_REQUESTS_PER_SEC"),
            (self.grant_burst, "PLOTQ_GRANT_BURST"),
            (self.annotations_per_min, "PLOTQ_ANNOTATIONS_PER_MIN"),
        ] {
            at_least(value, 1, name)?;
        }
        Ok(())
    }
}

impl ApiSettings {
    /// The api's configuration, with `sources` for `GET /api/v1/stats` (which must read
    /// as the workers do) and no store timeout (the distributed api sets its own).
    pub fn api_config(&self, cache: &CacheSettings, sources: SourcePolicy) -> ApiConfig {
        ApiConfig {
            max_body_bytes: self.max_body_bytes,
            state_ttl: cache.state.state_ttl,
            image_ttl: cache.png_ttl,
            events_url: self.events_url.clone(),
            dedupe_for: self.dedupe,
            stats_slots: plotq_api::StatsSlots::new(self.stats_concurrency),
            sources,
            render: plotq_api::RenderConfig {
                wait: self.render_wait,
                waiters: plotq_api::RenderConfig::waiters(self.render_waiters),
                grant_ttl: self.grant_ttl,
                grant_max_ttl: self.grant_max_ttl,
            },
            max_batch_buckets: self.max_batch_buckets,
            jobs_in_flight_per_caller: self.jobs_in_flight_per_caller,
            job_lease: self.job_lease,
            store_timeout: None,
            otlp_streams: std::sync::Arc::new(plotq_api::OtlpStreams::new(
                self.otlp_max_streams,
                plotq_ports::clock::now_ms(),
            )),
            hot_images: plotq_api::HotImages::new(self.hot_image_bytes),
        }
    }

    /// The api's per-caller limits: ingest, render links and render waiters.
    pub fn limit(&self, limits: &mut plotq_http::LimitsConfig) {
        limits.ingest_samples_per_sec = self.ingest_samples_per_sec;
        limits.label_sets_per_series = self.max_label_sets;
        limits.ingest_burst = self.ingest_burst;
        limits.grant_requests_per_sec = self.grant_requests_per_sec;
        limits.grant_burst = self.grant_burst;
        limits.annotations_per_min = self.annotations_per_min;
        limits.render_waiters_per_caller = self.render_waiters_per_caller;
    }
}
