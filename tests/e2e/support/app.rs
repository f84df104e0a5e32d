//! In-process harness, in the spirit of zero-to-production's `spawn_app`: `TestApp`
//! starts the real roles (`plotq::App`) inside the test on 127.0.0.1:0, either as
//! standalone over the in-memory ports (`Backend::Memory`) or as an api, N workers and
//! M notifiers against RabbitMQ, Redis (or the suite's Redis Cluster,
//! `Options::redis_cluster`) and the MongoDB-wire server (`Backend::Real`), in a fresh
//! namespace, all on one shutdown token; with typed helpers for what the tests
//! do. The namespace's queues, exchange and unexpiring Redis keys are removed on `stop`
//! (or on drop), with the names taken from the roles' settings, not spelled out here.

use super::{Sse, subscribe};
use clap::Parser;
use plotq::app::{App, amqp_config, redis_config};
use plotq::config::{ApiArgs, Cli, Command};
use plotq_domain::JobId;
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which ports the roles run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `standalone`: one App, in-memory queue, store, cache and bus.
    Memory,
    /// api + workers + notifiers against the real services, in a fresh namespace.
    Real,
}

/// What to start, and extra command-line settings per role (as `plotq <role>` takes them).
#[derive(Debug, Clone)]
pub struct Options {
    pub workers: usize,
    pub notifiers: usize,
    pub api: Vec<&'static str>,
    pub worker: Vec<&'static str>,
    pub notifier: Vec<&'static str>,
    /// `Backend::Real` on the suite's Redis Cluster instead of the single Redis.
    pub redis_cluster: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            notifiers: 1,
            api: Vec::new(),
            worker: Vec::new(),
            notifier: Vec::new(),
            redis_cluster: false,
        }
    }
}

impl Options {
    /// The defaults with `workers` workers.
    pub fn workers(workers: usize) -> Self {
        Self {
            workers,
            ..Self::default()
        }
    }

    /// The extra settings of a role: `role`'s own, and the Redis Cluster's address when
    /// the roles run on it.
    fn of(&self, role: &[&'static str]) -> Vec<&'static str> {
        let mut extra = role.to_vec();
        if self.redis_cluster {
            extra.extend(["--redis-url", super::REDIS_CLUSTER_URL]);
        }
        extra
    }
}

/// The names a namespace owns on the broker and in Redis, from the api's settings.
struct Owned {
    amqp_url: String,
    redis_url: String,
    queues: Vec<String>,
    exchange: String,
    redis_keys: Vec<String>,
}

/// Running roles and a client for them; stopped (and the namespace cleaned) on drop.
pub struct TestApp {
    pub ns: String,
    /// `http://127.0.0.1:<port>` of the api (standalone: the one listener).
    pub api: String,
    /// Base URLs of the notifiers (standalone: the one listener).
    pub notifiers: Vec<String>,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    owned: Option<Owned>,
}

/// Settings of `plotq <role>` in namespace `ns` on 127.0.0.1:0, plus `extra` flags.
fn parse(role: &str, ns: &str, extra: &[&str]) -> Command {
    let mut argv = vec!["plotq", role];
    if role != "standalone" {
        argv.extend(["--namespace", ns]);
    }
    // Every role serves HTTP (a worker: health, readiness and metrics).
    argv.extend(["--http-addr", "127.0.0.1:0"]);
    if role == "api" || role == "standalone" || role == "notifier" {
        // Suites send plot requests (and open views) from one address in a burst; the
        // per-caller limits are tested on their own.
        argv.extend([
            "--plot-requests-per-sec",
            "100000",
            "--plot-burst",
            "100000",
        ]);
    }
    if role == "api" || role == "standalone" {
        argv.extend([
            "--jobs-in-flight-per-caller",
            "100000",
            "--render-waiters-per-caller",
            "100000",
        ]);
    }
    if role == "notifier" || role == "standalone" {
        argv.extend(["--views-per-caller", "100000"]);
    }
    argv.extend_from_slice(extra);
    Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .into_command()
}

fn owned_by(args: &ApiArgs) -> Owned {
    let amqp = amqp_config(&args.rabbit);
    let mut queues = vec![amqp.queue(), amqp.dead_queue()];
    queues.extend(amqp.retry_queues());
    let redis = redis_config(&args.rabbit.deps, &args.redis, 0);
    // The keys without a TTL: the event stream and the live-refresh sorted sets.
    let redis_keys = ["events", "series", "views"]
        .iter()
        .map(|suffix| format!("{}:{suffix}", redis.namespace))
        .collect();
    Owned {
        amqp_url: args.rabbit.broker.amqp_url.clone(),
        redis_url: args.redis.redis_url.clone(),
        queues,
        exchange: amqp.exchange(),
        redis_keys,
    }
}

impl TestApp {
    /// Starts the default roles (standalone, or api + 2 workers + 1 notifier).
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    /// [`TestApp::spawn_with`], then [`TestApp::wait_ready`] within `deadline`.
    pub async fn ready(backend: Backend, options: Options, deadline: Duration) -> Self {
        let app = Self::spawn_with(backend, options).await;
        app.wait_ready(deadline).await;
        app
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Self {
        let ns = super::namespace(match backend {
            Backend::Memory => "mem",
            Backend::Real => "app",
        });
        let shutdown = CancellationToken::new();
        let mut apps = Vec::new();
        let (api, notifiers, owned);
        match backend {
            Backend::Memory => {
                let workers = options.workers.max(1).to_string();
                let mut extra = vec!["--no-demo", "--workers", workers.as_str()];
                extra.extend(options.api.iter().chain(&options.notifier).copied());
                let Command::Standalone(args) = parse("standalone", &ns, &extra) else {
                    unreachable!()
                };
                let app = App::standalone(*args).await.expect("standalone starts");
                api = base(&app);
                notifiers = vec![api.clone()];
                owned = None;
                apps.push(app);
            }
            Backend::Real => {
                super::require_services();
                if options.redis_cluster {
                    super::require_redis_cluster();
                }
                let Command::Api(args) = parse("api", &ns, &options.of(&options.api)) else {
                    unreachable!()
                };
                owned = Some(owned_by(&args));
                let app = App::api(*args).await.expect("api starts");
                api = base(&app);
                apps.push(app);
                let mut urls = Vec::new();
                for _ in 0..options.notifiers {
                    let Command::Notifier(args) =
                        parse("notifier", &ns, &options.of(&options.notifier))
                    else {
                        unreachable!()
                    };
                    let app = App::notifier(*args).await.expect("notifier starts");
                    urls.push(base(&app));
                    apps.push(app);
                }
                notifiers = urls;
                for _ in 0..options.workers {
                    let Command::Worker(args) = parse("worker", &ns, &options.of(&options.worker))
                    else {
                        unreachable!()
                    };
                    apps.push(App::worker(*args).await.expect("worker starts"));
                }
            }
        }
        let tasks = apps
            .into_iter()
            .map(|app| tokio::spawn(app.run_until_stopped(shutdown.clone())))
            .collect();
        Self {
            ns,
            api,
            notifiers,
            client: super::http_client(),
            shutdown,
            tasks,
            owned,
        }
    }

    /// `{api}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// `{notifier i}{path}`.
    pub fn notifier_url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.notifiers[i])
    }

    /// Waits until the api and every notifier answer `/readyz` with 200.
    pub async fn wait_ready(&self, deadline: Duration) {
        for base in std::iter::once(&self.api).chain(&self.notifiers) {
            super::wait_ready(&self.client, &format!("{base}/readyz"), deadline).await;
        }
    }

    /// Posts `n` samples of `service` spread over the last `span_ms`; expects all accepted.
    pub async fn ingest_over(&self, service: &str, n: usize, span_ms: i64) {
        let batch = super::samples(service, n, span_ms);
        self.ingest_samples(&batch).await;
    }

    /// Posts `n` samples of `service` spread over the last minute; expects all accepted.
    pub async fn ingest(&self, service: &str, n: usize) {
        self.ingest_over(service, n, 60_000).await;
    }

    /// Posts `samples` as one batch; expects 200 and all of them accepted.
    pub async fn ingest_samples(&self, samples: &[Value]) {
        super::post_samples(&self.client, &self.api, samples).await;
    }

    /// Posts a plot request; expects 202 and returns the job's id.
    pub async fn request_plot(&self, request: &Value) -> JobId {
        let id = super::post_plot(&self.client, &self.api, request).await;
        JobId::parse(&id).expect("the id is a UUID")
    }

    /// Polls the job until it is `done` or `failed`; its state. Fails the test at `deadline`.
    pub async fn wait_done(&self, id: JobId, deadline: Duration) -> Value {
        super::wait_finished(&self.client, &self.api, &id.to_string(), deadline)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET {api}{path}`: status and body bytes.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Every event, from the first notifier.
    pub async fn events(&self) -> Sse {
        self.events_on(0, "").await
    }

    /// Events from notifier `i` with `query` (e.g. `?service=x`).
    pub async fn events_on(&self, i: usize, query: &str) -> Sse {
        subscribe(
            &self.notifier_url(i, &format!("/api/v1/events{query}")),
            None,
        )
        .await
    }

    /// Whether every role's task is still running (none has returned or panicked).
    pub fn all_running(&self) -> bool {
        self.tasks.iter().all(|task| !task.is_finished())
    }

    /// Stops every role (cancel → wait for each) and removes the namespace.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            task.await
                .expect("a role does not panic")
                .expect("a role stops cleanly");
        }
        if let Some(owned) = self.owned.take() {
            cleanup(&owned).await;
        }
    }
}

/// The base URL of an HTTP role.
fn base(app: &App) -> String {
    format!("http://{}", app.local_addr().expect("an HTTP role"))
}

async fn cleanup(owned: &Owned) {
    if let Ok(conn) =
        lapin::Connection::connect(&owned.amqp_url, lapin::ConnectionProperties::default()).await
    {
        if let Ok(ch) = conn.create_channel().await {
            for q in &owned.queues {
                let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
            }
            let _ = ch
                .exchange_delete(owned.exchange.as_str().into(), Default::default())
                .await;
        }
        let _ = conn.close(200, "bye".into()).await;
    }
    super::delete_redis_keys(&owned.redis_url, &owned.redis_keys).await;
}

/// A test that ends early (a failed assertion) drops the app without `stop`: the token is
/// cancelled, so every role stops on its own; its tasks cannot be awaited here (a drop
/// cannot await, and blocking inside the test's runtime could deadlock it), and they
/// need not be: the test's runtime aborts whatever is left when the test returns. The
/// namespace is removed on a thread with its own runtime.
impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(owned) = self.owned.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(cleanup(&owned));
                }
            })
            .join();
        }
    }
}
