//! One `App` per role: `App::api|worker|notifier|standalone(settings)` (one file each)
//! binds the HTTP listener first (so a role that cannot listen fails before it starts
//! anything), then connects its adapters; `run_until_stopped(shutdown)` spawns its tasks
//! and serves, and stops them all together (decide to stop → tell every task → wait for
//! each). Standalone is composed from the same pieces (api routes, notifier parts,
//! worker tasks) over the in-memory ports.
//!
//! Here: the `App` type and its run, the HTTP wiring every role shares (`Http`: bind,
//! edge, observation, the tokens reload, the common routes), the background probes and
//! the merged OpenAPI document. Connecting the real adapters is `adapters`; the standalone
//! demo producer is `demo`. What each setting means, and the libraries' configurations
//! made from them, are `crate::config`'s.

mod adapters;
mod api;
mod demo;
mod notifier;
mod standalone;
mod worker;

use crate::config::auth::{AuthSettings, TokensReload};
use crate::config::http::HttpSettings;
use adapters::Watched;
use anyhow::Context;
use axum::Router;
use futures::FutureExt;
use futures::future::BoxFuture;
use plotq_http::{Auth, Edge, HttpServer, Limits, Observer, Probe, SelfSamples};
use plotq_ports::{MetricStore, ViewRegistry};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

const DEFAULT_API_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_NOTIFIER_ADDR: &str = "127.0.0.1:8081";
const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:8082";

/// A task of a role, not yet spawned; it watches the role's stop token.
type Task = BoxFuture<'static, anyhow::Result<()>>;

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
    /// An HTTP role serving `routes`, with its `tasks` and a background prober for each
    /// dependency it `watched`, all on `stop`.
    fn new(
        role: &'static str,
        http: Http,
        routes: Router,
        watched: &[Watched],
        stop: CancellationToken,
        mut tasks: Vec<Task>,
    ) -> Self {
        tasks.extend(prober_tasks(watched, &stop));
        Self {
            role,
            local_addr: Some(http.server.local_addr()),
            http: Some((http, routes)),
            tasks,
            stop,
        }
    }

    /// The address the HTTP listener is bound to (every role listens: a worker for its
    /// health, readiness and metrics).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
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

/// The OpenAPI document of every route plotq serves (api, events, health).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = plotq_api::ApiDoc::openapi();
    document.merge(plotq_notifier::openapi::NotifierDoc::openapi());
    document.merge(plotq_http::HealthApiDoc::openapi());
    document
}

/// Background probes, one task per dependency: each pings its dependency every
/// cooldown while the dependency's breaker believes it down (every five cooldowns while
/// up), so a role notices an outage without a request paying for it, and notices its
/// end without a request being the trial.
fn prober_tasks(watched: &[Watched], stop: &CancellationToken) -> Vec<Task> {
    watched
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
    tokens_reload: Option<TokensReload>,
}

/// Where a role keeps its own request samples: its store, and the registry whose
/// series watermarks make dashboards watching plotq refresh.
/// Where a role stores its own samples, and the registry (with how long it remembers
/// the hours of new samples, `plotq_api::reuse_horizon`) that hears of them.
type SelfStore = (
    Arc<dyn MetricStore>,
    Option<(Arc<dyn ViewRegistry>, std::time::Duration)>,
);

impl Http {
    /// Binds first, so a role that cannot listen fails before it starts anything else.
    async fn bind(
        http: &HttpSettings,
        auth: &AuthSettings,
        limits: plotq_http::LimitsConfig,
        default: &str,
        role: &'static str,
    ) -> anyhow::Result<Self> {
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
        Ok(Self {
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
        // change while failing fast), and the request line by the observer. The OTLP
        // paths answer every error (the edge's too) as a `google.rpc.Status`; on a role
        // without them, an exporter sent there gets its 404 so.
        // `GET /api/v1/render` answers `<img>` embeds' errors as an image saying why.
        let app = plotq_api::otlp_statuses(plotq_http::harden(app, &self.edge));
        let app = plotq_api::render_cards(app);
        let app = if self.observed {
            self.observer.wrap(app)
        } else {
            app
        };
        self.server.run_until_stopped(app, shutdown).await;
        tracing::info!(role = self.role, "http server stopped");
    }
}

/// Reads the tokens file again every `reload.every` until `stop`, putting changed
/// entries in force; a file that does not read or parse keeps the entries in force (and
/// is logged).
async fn reload_tokens(auth: Arc<Auth>, reload: TokensReload, stop: CancellationToken) {
    let mut last = reload.read().map(|entries| fingerprint(&entries)).ok();
    let mut interval = tokio::time::interval(reload.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        match reload.read() {
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
