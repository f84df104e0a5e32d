//! One `App` per role: `App::api|worker|notifier|standalone(settings)` binds the HTTP
//! listener first (so a role that cannot listen fails before it starts anything), then
//! connects its adapters; `run_until_stopped(shutdown)` spawns its tasks and serves, and
//! stops them all together (decide to stop → tell every task → wait for each). Standalone
//! is composed from the same pieces (api routes, notifier parts, worker tasks) over the
//! in-memory ports. Also `dlq list|retry` and the merged OpenAPI document.

use crate::config::{
    ApiArgs, ApiSettings, AuthSettings, BrokerAccess, CacheSettings, Command, DependencySettings,
    DlqArgs, DlqCommand, EventBusSettings, EventSettings, HttpSettings, MongoSettings,
    NotifierArgs, RedisSettings, RetentionSettings, SourceSettings, StandaloneArgs, WorkerArgs,
    WorkerSettings, limits_config, redact,
};
use crate::demo;
use anyhow::Context;
use axum::Router;
use futures::FutureExt;
use futures::future::BoxFuture;
use plotq_amqp::{AmqpConfig, AmqpQueue};
use plotq_api::{ApiConfig, ApiState};
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_http::{Auth, Edge, HttpServer, Limits, Observer, Probe, SelfSamples};
use plotq_mongo::{MongoConfig, MongoStore};
use plotq_notifier::refresh::{RefreshConfig, RefreshPorts};
use plotq_notifier::{Hub, NotifierConfig};
use plotq_ports::memory::{
    MemoryCache, MemoryEventBus, MemoryQueue, MemoryStore, MemoryStoreConfig, MemoryViews,
};
use plotq_ports::{Breaker, EventBus, JobQueue, MetricStore, PlotCache, ViewRegistry};
use plotq_redis::{RedisCache, RedisConfig, RedisEventBus, RedisViews};
use plotq_worker::{SourcePolicy, WorkerConfig, WorkerPorts};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

const DEFAULT_API_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_NOTIFIER_ADDR: &str = "127.0.0.1:8081";
const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:8082";
/// The api writes no events; its Redis adapters are built with the default history.
const DEFAULT_EVENT_HISTORY: usize = 10_000;

/// Background probes, one task per dependency: each pings its dependency every
/// cooldown while the dependency's breaker believes it down (every five cooldowns while
/// up), so a role notices an outage without a request paying for it, and notices its
/// end without a request being the trial.
fn prober_tasks(probes: &[(Probe, Breaker)], stop: &CancellationToken) -> Vec<Task> {
    probes
        .iter()
        .map(|(probe, breaker)| {
            let (probe, breaker, stop) = (probe.clone(), breaker.clone(), stop.clone());
            async move {
                breaker
                    .keep_probing(|| (probe.check)(), stop.cancelled_owned())
                    .await;
                Ok(())
            }
            .boxed()
        })
        .collect()
}

/// Runs `command` (a role or `dlq`; `bench` and `token` run without a runtime) until
/// SIGTERM/Ctrl-C, or until one of its tasks fails (then every task is stopped and the
/// reason returned).
pub async fn run(command: Command) -> anyhow::Result<()> {
    let app = match command {
        Command::Standalone(args) => App::standalone(*args).await?,
        Command::Api(args) => App::api(*args).await?,
        Command::Worker(args) => App::worker(*args).await?,
        Command::Notifier(args) => App::notifier(*args).await?,
        Command::Bench(_) | Command::Token(_) => unreachable!("runs without a runtime"),
        Command::Dlq(command) => return dlq(command).await,
        Command::Loadgen(args) => {
            println!("{}", crate::loadgen::run(args).await?);
            return Ok(());
        }
        Command::Tail(args) => return crate::tail::run(args, crate::shutdown::on_signal()).await,
    };
    app.run_until_stopped(crate::shutdown::on_signal()).await
}

fn worker_config(
    worker: &WorkerSettings,
    cache: &CacheSettings,
    retention: &RetentionSettings,
) -> WorkerConfig {
    WorkerConfig {
        prefetch: worker.prefetch,
        lookahead: worker.lookahead,
        png_ttl: Duration::from_secs(cache.png_ttl_secs),
        state_ttl: Duration::from_secs(cache.state.state_ttl_secs),
        render_deadline: Duration::from_secs(worker.render_deadline_secs),
        max_attempts: worker.max_attempts,
        sources: source_policy(&worker.sources, retention),
        slow_query: Duration::from_millis(worker.slow_query_ms),
        slow_render: Duration::from_millis(worker.slow_render_ms),
        ..WorkerConfig::default()
    }
}

/// Raw samples or rollups: the same policy for the workers and `GET /api/v1/stats`.
fn source_policy(sources: &SourceSettings, retention: &RetentionSettings) -> SourcePolicy {
    SourcePolicy {
        rollup_after: sources.rollup_after,
        raw_retention: retention.raw_retention,
        raw_max_samples: sources.raw_max_samples,
        ..SourcePolicy::default()
    }
}

fn api_config(api: &ApiSettings, cache: &CacheSettings) -> ApiConfig {
    ApiConfig {
        max_body_bytes: api.max_body_bytes,
        state_ttl: Duration::from_secs(cache.state.state_ttl_secs),
        image_ttl: Duration::from_secs(cache.png_ttl_secs),
        events_url: api.events_url.clone(),
        dedupe_for: Duration::from_secs(api.dedupe_secs),
        stats_slots: plotq_api::StatsSlots::new(api.stats_concurrency),
        sources: SourcePolicy::default(),
        render: plotq_api::RenderConfig {
            wait: Duration::from_millis(api.render_wait_ms),
            waiters: plotq_api::RenderConfig::waiters(api.render_waiters),
            grant_ttl: Duration::from_secs(api.grant_ttl_secs),
            grant_max_ttl: Duration::from_secs(api.grant_max_ttl_secs),
        },
        max_batch_buckets: api.max_batch_buckets,
        jobs_in_flight_per_caller: api.jobs_in_flight_per_caller,
        job_lease: Duration::from_secs(api.job_lease_secs),
        store_timeout: None,
    }
}

fn refresh_config(events: &EventSettings, cache: &CacheSettings) -> RefreshConfig {
    RefreshConfig {
        debounce: Duration::from_secs(events.refresh_debounce_secs),
        // Re-render watched views before their image expires from the cache.
        max_age: Duration::from_secs(cache.png_ttl_secs * 4 / 5),
        state_ttl: Duration::from_secs(cache.state.state_ttl_secs),
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

async fn mongo(
    deps: &DependencySettings,
    mongo: &MongoSettings,
) -> anyhow::Result<Arc<MongoStore>> {
    let database = mongo.database(deps);
    tracing::info!(url = %redact(&mongo.mongodb_url), %database, "using mongodb");
    let store = MongoStore::new(&MongoConfig {
        url: mongo.mongodb_url.clone(),
        database,
        timeout: deps.dependency_timeout(),
        raw_retention: mongo.retention.raw_retention,
        rollup_retention: mongo.retention.rollup_retention,
        breaker: deps.breaker("mongodb"),
    })
    .await?;
    if let Err(e) = store.ensure_indexes().await {
        // Not fatal: readiness reports MongoDB until it answers; indexes are retried at the next start.
        tracing::warn!(error = %e, "could not create indexes yet");
    }
    Ok(Arc::new(store))
}

/// The queue settings of a role, as the AMQP adapter (and the test harness) names them.
pub fn amqp_config(rabbit: &BrokerAccess) -> AmqpConfig {
    let BrokerAccess {
        deps,
        broker,
        queue,
    } = rabbit;
    AmqpConfig {
        url: broker.amqp_url.clone(),
        namespace: deps.scoped("."),
        max_queued_jobs: queue.max_queued_jobs,
        delivery_limit: broker.delivery_limit,
        timeout: deps.dependency_timeout(),
        retry_delays: queue.retry_delays(),
        breaker: deps.breaker("rabbitmq"),
    }
}

/// `plotq dlq list|retry`: operator access to the dead-letter queue.
async fn dlq(command: DlqCommand) -> anyhow::Result<()> {
    command.args().validate()?;
    let queue_of = |args: &DlqArgs| AmqpQueue::new(amqp_config(&args.rabbit));
    match command {
        DlqCommand::List { max, broker } => {
            for letter in queue_of(&broker).dead_letters(max).await? {
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
        DlqCommand::Retry { id, all, broker } => {
            let id = match (id, all) {
                (_, true) => None,
                (Some(raw), false) => Some(
                    JobId::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("{raw:?} is not a job id (a UUID)"))?,
                ),
                (None, false) => anyhow::bail!("give a job id or --all"),
            };
            let n = queue_of(&broker).replay_dead_letters(id).await?;
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

async fn amqp(rabbit: &BrokerAccess) -> Arc<AmqpQueue> {
    let config = amqp_config(rabbit);
    tracing::info!(url = %redact(&rabbit.broker.amqp_url), queue = %config.queue(), "using rabbitmq");
    let queue = AmqpQueue::new(config);
    if let Err(e) = queue.ping().await {
        tracing::warn!(error = %e, "rabbitmq not reachable yet; will keep trying");
    }
    Arc::new(queue)
}

/// The Redis settings of a role, as the Redis adapters (and the test harness) name them.
pub fn redis_config(
    deps: &DependencySettings,
    redis: &RedisSettings,
    event_history: usize,
) -> RedisConfig {
    let cluster = redis.topology().is_ok_and(|t| t.is_cluster());
    tracing::info!(url = %redact(&redis.redis_url), cluster, "using redis");
    RedisConfig {
        url: redis.redis_url.clone(),
        cluster: redis.redis_cluster,
        namespace: deps.scoped(":"),
        timeout: deps.dependency_timeout(),
        event_history,
        breaker: deps.breaker("redis"),
    }
}

/// The bound HTTP side of a role: its listener, the shared edge (auth, limits) and how
/// it observes its requests.
struct Http {
    server: HttpServer,
    edge: Edge,
    role: &'static str,
    observer: Observer,
    /// Whether the observing middleware wraps the routes (`PLOTQ_REQUEST_METRICS`).
    observed: bool,
    /// The writer of the role's own request samples, until a role with a store takes it.
    self_samples: Option<SelfSamples>,
    /// Reading the tokens file again while the role runs (none in open mode).
    tokens_reload: Option<crate::config::TokensReload>,
}

/// Binds first, so a role that cannot listen fails before it starts anything else.
async fn bind_http(
    http: &HttpSettings,
    auth: &AuthSettings,
    limits: plotq_http::LimitsConfig,
    default: &str,
    role: &'static str,
) -> anyhow::Result<Http> {
    let addr = http.addr(default)?;
    let tokens_reload = auth.tokens_reload();
    let auth = auth.auth_config(addr)?;
    let tokens_reload = tokens_reload.filter(|_| !auth.is_open());
    let server = HttpServer::bind(addr, http.server_config())
        .await
        .with_context(|| format!("cannot listen on {addr} (PLOTQ_HTTP_ADDR)"))?;
    let local = server.local_addr();
    tracing::info!(%local, role, open = auth.is_open(), tokens = auth.tokens.len(), "listening");
    println!("plotq {role} listening on http://{local}");
    let observed = http.observe_config();
    let mut config = observed.clone().unwrap_or_default();
    // Only the roles with a metric store keep their own request samples; with request
    // observation off, the observer still answers `/api/v1/health` without statistics.
    if observed.is_none() || !matches!(role, "api" | "standalone") {
        config.self_service = None;
    }
    let (observer, self_samples) = Observer::new(role, config);
    Ok(Http {
        server,
        edge: Edge {
            config: http.edge_config(addr, &auth),
            auth: Auth::new(auth),
            limits: Limits::new(limits),
        },
        role,
        observer,
        observed: observed.is_some(),
        self_samples,
        tokens_reload,
    })
}

/// Reads the tokens file again every `reload.every` until `stop`, putting changed
/// entries in force; a file that does not read or parse keeps the entries in force (and
/// is logged).
async fn reload_tokens(
    auth: Arc<Auth>,
    reload: crate::config::TokensReload,
    stop: CancellationToken,
) {
    let mut last = crate::config::read_token_entries(Some(&reload.file), reload.inline.as_deref())
        .map(|entries| fingerprint(&entries))
        .ok();
    let mut interval = tokio::time::interval(reload.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        match crate::config::read_token_entries(Some(&reload.file), reload.inline.as_deref()) {
            Ok(entries) => {
                let now = fingerprint(&entries);
                if last.as_ref() == Some(&now) {
                    continue;
                }
                let n = entries.len();
                match auth.replace_tokens(entries) {
                    Ok(()) => {
                        tracing::info!(tokens = n, "token entries reloaded");
                        last = Some(now);
                    }
                    Err(e) => tracing::error!(error = %e, "token entries not reloaded"),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "token entries not reloaded; the previous ones stay in force")
            }
        }
    }
}

/// What tells two sets of token entries apart (names, key ids, scopes, services).
fn fingerprint(entries: &[plotq_http::auth::TokenEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {} {:?} {:?}", e.kid, e.name, e.scopes, e.services))
        .collect()
}

/// Where a role keeps its own request samples: its store, and the registry whose
/// series watermarks make dashboards watching plotq refresh.
type SelfStore = (Arc<dyn MetricStore>, Option<Arc<dyn ViewRegistry>>);

impl Http {
    /// The routes every HTTP role serves besides its own: `/healthz`, `/readyz`,
    /// `/metrics` and `/api/v1/health`.
    fn common_routes(&self, probes: Vec<Probe>, store: Option<Arc<dyn MetricStore>>) -> Router {
        plotq_http::readiness_router(probes.clone(), store)
            .merge(plotq_http::observe::metrics_router())
            .merge(plotq_http::health_router(self.observer.clone(), probes))
    }

    /// Tasks every HTTP role runs: the metrics recorder's upkeep, and the writer of its
    /// own request samples into `store` (roles without a store drop the writer, and
    /// with it the samples).
    fn tasks(&mut self, store: Option<SelfStore>, stop: &CancellationToken) -> Vec<Task> {
        let mut tasks = vec![plotq_http::observe::upkeep(stop.clone()).map(Ok).boxed()];
        if let (Some(writer), Some((store, views))) = (self.self_samples.take(), store) {
            tasks.push(writer.run(store, views, stop.clone()).map(Ok).boxed());
        }
        if let Some(reload) = self.tokens_reload.take() {
            tasks.push(
                reload_tokens(self.edge.auth.clone(), reload, stop.clone())
                    .map(Ok)
                    .boxed(),
            );
        }
        tasks
    }

    async fn serve(self, app: Router, shutdown: CancellationToken) {
        // A 5xx is logged where it is made (with its cause, once per dependency state
        // change while failing fast), and the request line by the observer.
        let app = plotq_http::harden(app, &self.edge);
        let app = if self.observed {
            self.observer.wrap(app)
        } else {
            app
        };
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

fn notifier_config(events: &EventSettings) -> NotifierConfig {
    NotifierConfig {
        max_watched_views: events.max_watched_views,
        ..NotifierConfig::default()
    }
}

/// A task of a role, not yet spawned; it watches the role's stop token.
type Task = BoxFuture<'static, anyhow::Result<()>>;

/// The routes of the api (the same for `api` and `standalone`): ingest, plots, the
/// dashboard and the OpenAPI document.
fn api_routes(state: ApiState, events_url: &str) -> Router {
    plotq_api::router(state)
        .merge(plotq_api::dashboard_router(events_url))
        .merge(plotq_api::openapi_router(&openapi_document()))
}

/// A rendering worker over `ports` (the same for `worker` and `standalone`).
fn worker_task(ports: WorkerPorts, config: WorkerConfig, stop: &CancellationToken) -> Task {
    let stop = stop.clone();
    async move {
        plotq_worker::run_until_stopped(ports, config, stop).await;
        Ok(())
    }
    .boxed()
}

/// The notifier's pieces (the same for `notifier` and `standalone`): the SSE routes, and
/// the hub's bus reader and the refresher as tasks.
fn notifier_parts(
    refresh: RefreshPorts,
    events: &EventSettings,
    cache: &CacheSettings,
    stop: &CancellationToken,
) -> (Router, Vec<Task>) {
    let hub = Hub::new(
        refresh.events.clone(),
        refresh.registry.clone(),
        notifier_config(events),
        stop.clone(),
    );
    let tail = hub.clone().run_until_stopped().map(Ok).boxed();
    let refresher = plotq_notifier::refresh::run_until_stopped(
        refresh,
        refresh_config(events, cache),
        stop.clone(),
    )
    .map(Ok)
    .boxed();
    (plotq_notifier::router(hub), vec![tail, refresher])
}

/// One role, built (listening and connected) but not yet running.
pub struct App {
    role: &'static str,
    /// The listener and the routes of an HTTP role.
    http: Option<(Http, Router)>,
    local_addr: Option<SocketAddr>,
    tasks: Vec<Task>,
    /// The role's own stop token: the hub is built with it; `run_until_stopped` cancels
    /// it when the caller's token is cancelled or a task ends.
    stop: CancellationToken,
}

impl App {
    fn new(role: &'static str, http: Option<(Http, Router)>, stop: CancellationToken) -> Self {
        let local_addr = http.as_ref().map(|(http, _)| http.server.local_addr());
        Self {
            role,
            http,
            local_addr,
            tasks: Vec::new(),
            stop,
        }
    }

    /// The address the HTTP listener is bound to (`None` for a worker).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// `plotq api`: binds, then connects MongoDB, RabbitMQ and Redis.
    pub async fn api(args: ApiArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), Some(&args.api), None);
        let http = bind_http(&args.http, &args.auth, limits, DEFAULT_API_ADDR, "api").await?;
        let store = mongo(&args.rabbit.deps, &args.mongo).await?;
        let queue = amqp(&args.rabbit).await;
        let redis = redis_config(&args.rabbit.deps, &args.redis, DEFAULT_EVENT_HISTORY);
        let cache = Arc::new(RedisCache::new(&redis)?);
        // Marks when this Redis's data begins (if nothing has yet), so that a job whose
        // state goes missing later can be told lost (410) from unknown (404).
        if let Err(e) = cache.data_since(plotq_ports::clock::now_ms()).await {
            tracing::warn!(error = %e, "redis not reachable yet; will keep trying");
        }
        let views = Arc::new(RedisViews::new(&redis)?.with_max_series(args.series.max_series));
        let watched = [
            (probe!("mongodb", store), store.breaker().clone()),
            (probe!("rabbitmq", queue), queue.config().breaker.clone()),
            (probe!("redis", cache), redis.breaker.clone()),
        ];
        let probes = watched.iter().map(|(p, _)| p.clone()).collect();
        let mut http = http;
        let stop = CancellationToken::new();
        let observe_tasks = http.tasks(
            Some((
                store.clone() as Arc<dyn MetricStore>,
                Some(views.clone() as Arc<dyn ViewRegistry>),
            )),
            &stop,
        );
        let common = http.common_routes(probes, None);
        let state = ApiState {
            store,
            queue,
            cache,
            views,
            // `GET /api/v1/stats` reads as the workers do.
            config: ApiConfig {
                sources: source_policy(&args.sources, &args.mongo.retention),
                // One ingest's whole write (every chunk, every rollup update) within the
                // dependency timeout, however many documents it is.
                store_timeout: Some(args.rabbit.deps.dependency_timeout()),
                ..api_config(&args.api, &args.cache)
            },
        };
        let routes = api_routes(state, &args.api.events_url).merge(common);
        let mut app = Self::new("api", Some((http, routes)), stop);
        app.tasks = prober_tasks(&watched, &app.stop);
        app.tasks.extend(observe_tasks);
        Ok(app)
    }

    /// `plotq worker`: binds (health, readiness and metrics only), then connects
    /// MongoDB, RabbitMQ and Redis.
    pub async fn worker(args: WorkerArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let mut http = bind_http(
            &args.http,
            &args.auth,
            limits_config(None, None, None),
            DEFAULT_WORKER_ADDR,
            "worker",
        )
        .await?;
        let redis = redis_config(&args.rabbit.deps, &args.redis, args.bus.event_history);
        let store = mongo(&args.rabbit.deps, &args.mongo).await?;
        let queue = amqp(&args.rabbit).await;
        let cache = Arc::new(RedisCache::new(&redis)?);
        let watched = [
            (probe!("mongodb", store), store.breaker().clone()),
            (probe!("rabbitmq", queue), queue.config().breaker.clone()),
            (probe!("redis", cache), redis.breaker.clone()),
        ];
        let mut config = worker_config(&args.worker, &args.cache, &args.mongo.retention);
        // A job needs the store and the cache; the broker's outages end its consumer.
        config.breakers = vec![store.breaker().clone(), redis.breaker.clone()];
        config.outage_budget = args.outage_budget;
        let ports = WorkerPorts {
            store,
            queue,
            cache,
            events: Arc::new(RedisEventBus::new(&redis)?),
        };
        let stop = CancellationToken::new();
        let observe_tasks = http.tasks(None, &stop);
        let routes = http.common_routes(watched.iter().map(|(p, _)| p.clone()).collect(), None);
        let mut app = Self::new("worker", Some((http, routes)), stop);
        app.tasks = prober_tasks(&watched, &app.stop);
        app.tasks.extend(observe_tasks);
        app.tasks.push(worker_task(ports, config, &app.stop));
        Ok(app)
    }

    /// `plotq notifier`: binds, then connects Redis and RabbitMQ.
    pub async fn notifier(args: NotifierArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), None, Some(&args.events));
        let http = bind_http(
            &args.http,
            &args.auth,
            limits,
            DEFAULT_NOTIFIER_ADDR,
            "notifier",
        )
        .await?;
        let redis = redis_config(&args.rabbit.deps, &args.redis, args.bus.event_history);
        let bus = Arc::new(RedisEventBus::new(&redis)?);
        let views = Arc::new(RedisViews::new(&redis)?.with_max_series(args.series.max_series));
        let queue = amqp(&args.rabbit).await;
        let watched = [
            (probe!("redis", bus), redis.breaker.clone()),
            (probe!("rabbitmq", queue), queue.config().breaker.clone()),
        ];
        let probes = watched.iter().map(|(p, _)| p.clone()).collect();
        let stop = CancellationToken::new();
        let (routes, tasks) = notifier_parts(
            RefreshPorts {
                registry: views,
                queue,
                cache: Arc::new(RedisCache::new(&redis)?),
                events: bus,
            },
            &args.events,
            &args.cache,
            &stop,
        );
        let mut http = http;
        let routes = routes.merge(http.common_routes(probes, None));
        let observe_tasks = http.tasks(None, &stop);
        let mut app = Self::new("notifier", Some((http, routes)), stop);
        app.tasks = tasks;
        app.tasks.extend(prober_tasks(&watched, &app.stop));
        app.tasks.extend(observe_tasks);
        Ok(app)
    }

    /// `plotq standalone`: the api and notifier routes on one listener, `workers`
    /// workers, the hub, the refresher and the demo, over the in-memory ports.
    pub async fn standalone(args: StandaloneArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), Some(&args.api), Some(&args.events));
        let http = bind_http(
            &args.http,
            &args.auth,
            limits,
            DEFAULT_API_ADDR,
            "standalone",
        )
        .await?;
        let EventBusSettings { event_history } = args.bus;
        let store: Arc<dyn MetricStore> = Arc::new(MemoryStore::new(MemoryStoreConfig {
            retention: args.retention.raw_retention,
            rollup_retention: args.retention.rollup_retention,
            max_bytes: args.memory_store_max_bytes,
            max_series: args.memory_store_max_series,
        }));
        let queue: Arc<dyn JobQueue> = Arc::new(MemoryQueue::with_retry_delays(
            args.queue.max_queued_jobs as usize,
            args.queue.retry_delays(),
        ));
        let cache: Arc<dyn PlotCache> = Arc::new(MemoryCache::default());
        let events: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new(event_history));
        let views: Arc<dyn ViewRegistry> =
            Arc::new(MemoryViews::with_max_series(args.series.max_series));
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let worker_ports = WorkerPorts {
            store: store.clone(),
            queue: queue.clone(),
            cache: cache.clone(),
            events: events.clone(),
        };
        for _ in 0..args.workers.max(1) {
            tasks.push(worker_task(
                worker_ports.clone(),
                worker_config(&args.worker, &args.cache, &args.retention),
                &stop,
            ));
        }
        let (notifier_routes, notifier_tasks) = notifier_parts(
            RefreshPorts {
                registry: views.clone(),
                queue: queue.clone(),
                cache: cache.clone(),
                events: events.clone(),
            },
            &args.events,
            &args.cache,
            &stop,
        );
        tasks.extend(notifier_tasks);
        if !args.no_demo {
            tasks.push(
                demo::run(store.clone(), views.clone(), stop.clone())
                    .map(Ok)
                    .boxed(),
            );
        }
        let mut http = http;
        tasks.extend(http.tasks(Some((store.clone(), Some(views.clone()))), &stop));
        let common = http.common_routes(Vec::new(), Some(store.clone()));
        let state = ApiState {
            store,
            queue,
            cache,
            views,
            config: ApiConfig {
                sources: worker_config(&args.worker, &args.cache, &args.retention).sources,
                ..api_config(&args.api, &args.cache)
            },
        };
        let routes = api_routes(state, &args.api.events_url)
            .merge(notifier_routes)
            .merge(common);
        let mut app = Self::new("standalone", Some((http, routes)), stop);
        app.tasks = tasks;
        Ok(app)
    }

    /// Spawns the role's tasks and serves until `shutdown` is cancelled or any task ends;
    /// then tells every task to stop and waits for each. The first task error (or panic)
    /// is returned.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            role,
            http,
            tasks,
            stop,
            ..
        } = self;
        let mut set = JoinSet::new();
        for task in tasks {
            set.spawn(task);
        }
        if let Some((http, routes)) = http {
            let stop = stop.clone();
            set.spawn(async move {
                http.serve(routes, stop).await;
                Ok(())
            });
        }
        let mut first_error = None;
        let mut record = |joined: Result<anyhow::Result<()>, tokio::task::JoinError>| {
            let error = match joined {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("a {role} task panicked: {e}"),
            };
            tracing::error!(role, error = %error, "task failed; stopping");
            first_error.get_or_insert(error);
        };
        // Decide to stop: the caller says so, or a task ended (the role is no longer whole).
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = stop.cancelled() => {}
            Some(joined) = set.join_next() => record(joined),
        }
        // Tell every task, then wait for each.
        stop.cancel();
        while let Some(joined) = set.join_next().await {
            record(joined);
        }
        tracing::info!(role, "stopped");
        first_error.map_or(Ok(()), Err)
    }
}
