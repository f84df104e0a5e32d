//! Wiring: each role builds its adapters from the settings, starts its tasks, serves
//! HTTP where it has any, and stops them all on shutdown (decide to stop → tell every
//! task → wait for each).

use crate::config::{Cli, Command, Common, DlqCommand, StandaloneArgs, redact};
use crate::{demo, shutdown};
use anyhow::Context;
use axum::Router;
use futures::FutureExt;
use plotq_amqp::{AmqpConfig, AmqpQueue};
use plotq_api::{ApiConfig, ApiState};
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_http::{Auth, Edge, HttpServer, Limits, Probe};
use plotq_mongo::{MongoConfig, MongoStore};
use plotq_notifier::refresh::{RefreshConfig, RefreshPorts};
use plotq_notifier::{Hub, NotifierConfig};
use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore, MemoryViews};
use plotq_ports::{EventBus, JobQueue, MetricStore, PlotCache, ViewRegistry};
use plotq_redis::{RedisCache, RedisConfig, RedisEventBus, RedisViews};
use plotq_worker::{WorkerConfig, WorkerPorts};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

const DEFAULT_API_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_NOTIFIER_ADDR: &str = "127.0.0.1:8081";

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    cli.common.validate()?;
    let shutdown = shutdown::on_signal();
    match cli.command.unwrap_or(Command::Standalone(StandaloneArgs {
        workers: 2,
        no_demo: false,
    })) {
        Command::Standalone(args) => standalone(&cli.common, args, shutdown).await,
        Command::Api => api(&cli.common, shutdown).await,
        Command::Worker => worker(&cli.common, shutdown).await,
        Command::Notifier => notifier(&cli.common, shutdown).await,
        Command::Bench(_) | Command::Token(_) => unreachable!("runs without a runtime"),
        Command::Dlq(command) => dlq(&cli.common, command).await,
    }
}

fn worker_config(common: &Common) -> WorkerConfig {
    WorkerConfig {
        prefetch: common.prefetch,
        png_ttl: Duration::from_secs(common.png_ttl_secs),
        state_ttl: Duration::from_secs(common.state_ttl_secs),
        render_deadline: Duration::from_secs(common.render_deadline_secs),
        max_attempts: common.max_attempts,
        ..WorkerConfig::default()
    }
}

fn api_config(common: &Common) -> ApiConfig {
    ApiConfig {
        max_body_bytes: common.max_body_bytes,
        state_ttl: Duration::from_secs(common.state_ttl_secs),
        events_url: common.events_url.clone(),
        dedupe_for: Duration::from_secs(common.dedupe_secs),
    }
}

fn refresh_config(common: &Common) -> RefreshConfig {
    RefreshConfig {
        debounce: Duration::from_secs(common.refresh_debounce_secs),
        // Re-render watched views before their image expires from the cache.
        max_age: Duration::from_secs(common.png_ttl_secs * 4 / 5),
        state_ttl: Duration::from_secs(common.state_ttl_secs),
        ..RefreshConfig::default()
    }
}

/// A readiness probe calling `ping()` on a shared adapter.
macro_rules! probe {
    ($name:literal, $adapter:expr) => {{
        let adapter = $adapter.clone();
        Probe {
            name: $name,
            check: Arc::new(move || {
                let adapter = adapter.clone();
                async move { adapter.ping().await }.boxed()
            }),
        }
    }};
}

async fn mongo(common: &Common) -> anyhow::Result<Arc<MongoStore>> {
    tracing::info!(url = %redact(&common.mongodb_url), database = %common.database(), "using mongodb");
    let store = MongoStore::new(&MongoConfig {
        url: common.mongodb_url.clone(),
        database: common.database(),
        timeout: common.dependency_timeout(),
    })
    .await?;
    if let Err(e) = store.ensure_indexes().await {
        // Not fatal: readiness reports MongoDB until it answers; indexes are retried at the next start.
        tracing::warn!(error = %e, "could not create indexes yet");
    }
    Ok(Arc::new(store))
}

fn amqp_config(common: &Common) -> AmqpConfig {
    AmqpConfig {
        url: common.amqp_url.clone(),
        namespace: common.scoped("."),
        max_queued_jobs: common.max_queued_jobs,
        delivery_limit: common.delivery_limit,
        timeout: common.dependency_timeout(),
        retry_delays: retry_delays(common),
    }
}

fn retry_delays(common: &Common) -> Vec<Duration> {
    common
        .retry_delays
        .iter()
        .map(|s| Duration::from_secs(*s))
        .collect()
}

/// `plotq dlq list|retry`: operator access to the dead-letter queue.
async fn dlq(common: &Common, command: DlqCommand) -> anyhow::Result<()> {
    let queue = AmqpQueue::new(amqp_config(common));
    match command {
        DlqCommand::List { max } => {
            for letter in queue.dead_letters(max).await? {
                let job = JobMessage::decode(&letter.body).ok();
                let line = serde_json::json!({
                    "id": job.as_ref().map(|j| j.id.to_string()),
                    "service": job.as_ref().map(|j| j.spec.service().to_string()),
                    "kind": job.as_ref().map(|j| j.spec.kind.as_str()),
                    "reason": letter.reason,
                    "attempts": letter.attempts,
                    "dead_at_ms": letter.dead_at_ms,
                    "bytes": letter.body.len(),
                });
                println!("{line}");
            }
        }
        DlqCommand::Retry { id, all } => {
            let id = match (id, all) {
                (_, true) => None,
                (Some(raw), false) => Some(
                    JobId::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("{raw:?} is not a job id (a UUID)"))?,
                ),
                (None, false) => anyhow::bail!("give a job id or --all"),
            };
            let n = queue.replay_dead_letters(id).await?;
            if id.is_some() && n == 0 {
                anyhow::bail!(
                    "no dead letter for job {}",
                    id.map(|i| i.to_string()).unwrap_or_default()
                );
            }
            println!("{}", serde_json::json!({"replayed": n}));
        }
    }
    Ok(())
}

async fn amqp(common: &Common) -> Arc<AmqpQueue> {
    tracing::info!(url = %redact(&common.amqp_url), queue = %amqp_config(common).queue(), "using rabbitmq");
    let queue = AmqpQueue::new(amqp_config(common));
    if let Err(e) = queue.ping().await {
        tracing::warn!(error = %e, "rabbitmq not reachable yet; will keep trying");
    }
    Arc::new(queue)
}

fn redis_config(common: &Common) -> RedisConfig {
    RedisConfig {
        url: common.redis_url.clone(),
        namespace: common.scoped(":"),
        timeout: common.dependency_timeout(),
        event_history: common.event_history,
    }
}

/// The bound HTTP side of a role: its listener and the shared edge (auth, limits).
struct Http {
    server: HttpServer,
    edge: Edge,
    role: &'static str,
}

/// Binds first, so a role that cannot listen fails before it starts anything else.
async fn bind_http(common: &Common, default: &str, role: &'static str) -> anyhow::Result<Http> {
    let addr = addr_or(common, default);
    let auth = common.auth_config(addr)?;
    let server = HttpServer::bind(addr, common.server_config())
        .await
        .with_context(|| format!("cannot listen on {addr} (PLOTQ_HTTP_ADDR)"))?;
    let local = server.local_addr();
    tracing::info!(%local, role, open = auth.is_open(), tokens = auth.tokens.len(), "listening");
    println!("plotq {role} listening on http://{local}");
    Ok(Http {
        server,
        edge: Edge {
            auth: Auth::new(auth),
            limits: Limits::new(common.limits_config()),
            config: common.edge_config(),
        },
        role,
    })
}

impl Http {
    async fn serve(self, app: Router, shutdown: CancellationToken) {
        let app = plotq_http::harden(app, &self.edge)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        self.server.run_until_stopped(app, shutdown).await;
        tracing::info!(role = self.role, "http server stopped");
    }
}

/// The OpenAPI document of every route plotq serves (api, events, health).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = plotq_api::ApiDoc::openapi();
    document.merge(plotq_notifier::openapi::NotifierDoc::openapi());
    document.merge(plotq_http::HealthApiDoc::openapi());
    document
}

fn addr_or(common: &Common, default: &str) -> SocketAddr {
    common
        .http_addr
        .unwrap_or_else(|| default.parse().expect("default address parses"))
}

async fn api(common: &Common, shutdown: CancellationToken) -> anyhow::Result<()> {
    let http = bind_http(common, DEFAULT_API_ADDR, "api").await?;
    let store = mongo(common).await?;
    let queue = amqp(common).await;
    let cache = Arc::new(RedisCache::new(&redis_config(common))?);
    let views =
        Arc::new(RedisViews::new(&redis_config(common))?.with_max_series(common.max_series));
    let probes = vec![
        probe!("mongodb", store),
        probe!("rabbitmq", queue),
        probe!("redis", cache),
    ];
    let state = ApiState {
        store,
        queue,
        cache,
        views,
        config: api_config(common),
    };
    let app = plotq_api::router(state)
        .merge(plotq_api::dashboard_router(&common.events_url))
        .merge(plotq_api::openapi_router(&openapi_document()))
        .merge(plotq_http::readiness_router(probes));
    http.serve(app, shutdown).await;
    Ok(())
}

async fn worker(common: &Common, shutdown: CancellationToken) -> anyhow::Result<()> {
    let redis = redis_config(common);
    let ports = WorkerPorts {
        store: mongo(common).await?,
        queue: amqp(common).await,
        cache: Arc::new(RedisCache::new(&redis)?),
        events: Arc::new(RedisEventBus::new(&redis)?),
    };
    plotq_worker::run_until_stopped(ports, worker_config(common), shutdown).await;
    Ok(())
}

fn notifier_config(common: &Common) -> NotifierConfig {
    NotifierConfig {
        max_watched_views: common.max_watched_views,
        ..NotifierConfig::default()
    }
}

async fn notifier(common: &Common, shutdown: CancellationToken) -> anyhow::Result<()> {
    let http = bind_http(common, DEFAULT_NOTIFIER_ADDR, "notifier").await?;
    let redis = redis_config(common);
    let bus = Arc::new(RedisEventBus::new(&redis)?);
    let views = Arc::new(RedisViews::new(&redis)?.with_max_series(common.max_series));
    let queue = amqp(common).await;
    let hub = Hub::new(
        bus.clone(),
        views.clone(),
        notifier_config(common),
        shutdown.clone(),
    );
    let tail = tokio::spawn(hub.clone().run_until_stopped());
    let refresher = tokio::spawn(plotq_notifier::refresh::run_until_stopped(
        RefreshPorts {
            registry: views,
            queue: queue.clone(),
            cache: Arc::new(RedisCache::new(&redis)?),
            events: bus.clone(),
        },
        refresh_config(common),
        shutdown.clone(),
    ));
    let probes = vec![probe!("redis", bus), probe!("rabbitmq", queue)];
    let app = plotq_notifier::router(hub).merge(plotq_http::readiness_router(probes));
    http.serve(app, shutdown.clone()).await;
    shutdown.cancel();
    tail.await.ok();
    refresher.await.ok();
    Ok(())
}

async fn standalone(
    common: &Common,
    args: StandaloneArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let http = bind_http(common, DEFAULT_API_ADDR, "standalone").await?;
    let store: Arc<dyn MetricStore> = Arc::new(MemoryStore::default());
    let queue: Arc<dyn JobQueue> = Arc::new(MemoryQueue::with_retry_delays(
        common.max_queued_jobs as usize,
        retry_delays(common),
    ));
    let cache: Arc<dyn PlotCache> = Arc::new(MemoryCache::default());
    let events: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new(common.event_history));
    let views: Arc<dyn ViewRegistry> = Arc::new(MemoryViews::with_max_series(common.max_series));
    let mut tasks = JoinSet::new();
    let worker_ports = WorkerPorts {
        store: store.clone(),
        queue: queue.clone(),
        cache: cache.clone(),
        events: events.clone(),
    };
    for _ in 0..args.workers.max(1) {
        tasks.spawn(plotq_worker::run_until_stopped(
            worker_ports.clone(),
            worker_config(common),
            shutdown.clone(),
        ));
    }
    let hub = Hub::new(
        events.clone(),
        views.clone(),
        notifier_config(common),
        shutdown.clone(),
    );
    tasks.spawn(hub.clone().run_until_stopped());
    tasks.spawn(plotq_notifier::refresh::run_until_stopped(
        RefreshPorts {
            registry: views.clone(),
            queue: queue.clone(),
            cache: cache.clone(),
            events: events.clone(),
        },
        refresh_config(common),
        shutdown.clone(),
    ));
    if !args.no_demo {
        tasks.spawn(demo::run(store.clone(), views.clone(), shutdown.clone()));
    }
    let state = ApiState {
        store,
        queue,
        cache,
        views,
        config: api_config(common),
    };
    let app = plotq_api::router(state)
        .merge(plotq_api::dashboard_router(&common.events_url))
        .merge(plotq_api::openapi_router(&openapi_document()))
        .merge(plotq_notifier::router(hub))
        .merge(plotq_http::readiness_router(Vec::new()));
    http.serve(app, shutdown.clone()).await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
