//! Dependencies go away and come back: RabbitMQ, Redis and the MongoDB-wire server each
//! stop in the middle of a burst of 200 plot requests (after the 40th, back after the
//! 120th). Requests that need the stopped dependency are refused with 503 (never a 202
//! that is then lost) — in milliseconds once the outage is known, measured side by side
//! with failing fast turned off — every job that got a 202 ends `done` and is announced
//! once, and no plotq process needs a restart. Redis restarts keeping its data (as in
//! production) and restarts empty; a master of a 3-master Redis Cluster restarts; MongoDB stops while ingest and renders are in flight,
//! briefly and for longer than the workers' outage budget. Each test brings its service
//! back even when it fails (a guard), and the tests of this binary run one at a time
//! (they share the machine's services).

use crate::support::{
    Plotq, cleanup, ingest, job_id, namespace, record_events, request_plot, require_services,
    wait_ready, wait_status,
};
use plotq_ports::contract::{TestServer, cluster_master_of, redis_cli, redis_info};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(60);
const DONE: Duration = Duration::from_secs(180);
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// The workers' outage budget where a test outlasts it: only "past the budget" matters.
const OUTAGE_BUDGET: &str = "10s";

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .is_ok_and(|s| s.success())
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
}

fn wait_port(port: u16, open: bool, deadline: Duration) {
    let until = std::time::Instant::now() + deadline;
    while port_open(port) != open {
        assert!(
            std::time::Instant::now() < until,
            "port {port} did not become {}",
            if open { "open" } else { "closed" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `restart` when dropped, so a failing test still leaves the service running.
struct Restore(&'static str, Box<dyn Fn()>);

impl Drop for Restore {
    fn drop(&mut self) {
        (self.1)();
        eprintln!("{} restored", self.0);
    }
}

fn start_rabbitmq() {
    sh("rabbitmqctl -q start_app >/dev/null 2>&1 || rabbitmq-server -detached");
    wait_port(5672, true, Duration::from_secs(120));
}

fn start_redis() {
    if !port_open(6379) {
        sh(
            "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no >/dev/null",
        );
    }
    wait_port(6379, true, Duration::from_secs(30));
}

async fn post_plot(client: &reqwest::Client, api: &Plotq, i: u32) -> reqwest::Response {
    client
        .post(api.url("/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "restart", "width": 300 + i, "height": 200}))
        .send()
        .await
        .unwrap()
}

/// Waits until every job of `ids` is `done`; their final states.
async fn all_done(client: &reqwest::Client, api: &Plotq, ids: &[String]) -> Vec<Value> {
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        states.push(wait_status(client, api, id, DONE, |s| s["status"] == "done").await);
    }
    states
}

/// A MongoDB-wire server of a test's own, on a free port and a file (so a restart keeps
/// the data): a `TestServer` it kills to stop and starts again on the same file.
struct PrivateMongo {
    dir: std::path::PathBuf,
    port: u16,
    server: std::sync::Mutex<Option<TestServer>>,
}

impl PrivateMongo {
    fn new() -> Self {
        let port = TestServer::free_port();
        let dir = std::env::temp_dir().join(format!("plotq-nx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let this = Self {
            dir,
            port,
            server: std::sync::Mutex::new(None),
        };
        this.start();
        this
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    fn start(&self) {
        let (db, pid) = (self.dir.join("restart.db"), self.dir.join("nx.pid"));
        let server = TestServer::start(
            "nx-27017",
            &[
                "--db",
                &db.display().to_string(),
                "-p",
                &self.port.to_string(),
                "--pid-file",
                &pid.display().to_string(),
            ],
        );
        *self.server.lock().unwrap() = Some(server);
        wait_port(self.port, true, Duration::from_secs(60));
    }

    fn stop(&self) {
        drop(self.server.lock().unwrap().take());
        wait_port(self.port, false, Duration::from_secs(30));
    }
}

impl Drop for PrivateMongo {
    fn drop(&mut self) {
        drop(self.server.lock().unwrap().take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the Redis on `port` writes its snapshot (`CONFIG GET dir`; Redis 7 refuses to
/// change it at run time).
fn redis_dir(port: u16) -> std::path::PathBuf {
    let text = redis_cli(port, &["config", "get", "dir"]);
    let dir = text.lines().nth(1).expect("redis names its dir").trim();
    std::path::PathBuf::from(dir)
}

/// `SHUTDOWN SAVE` of the Redis on `port` (whose snapshot goes to `dir`), as a Redis
/// with RDB/AOF persistence stops; waits until the process is gone, not only deaf: the
/// snapshot is complete once it has exited.
fn shutdown_saving(port: u16, dir: &std::path::Path) {
    let pid = info_field(port, "process_id");
    let _ = std::fs::remove_file(dir.join("dump.rdb"));
    sh(&format!(
        "redis-cli -p {port} shutdown save >/dev/null 2>&1"
    ));
    let until = Instant::now() + Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < until, "redis {port} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the suite's Redis keeping its data on disk; the directory holding the snapshot.
fn stop_redis_saving() -> std::path::PathBuf {
    let dir = redis_dir(6379);
    shutdown_saving(6379, &dir);
    assert!(
        dir.join("dump.rdb").exists(),
        "no snapshot in {}",
        dir.display()
    );
    dir
}

/// Starts Redis again on the snapshot `stop_redis_saving` left in `dir`, then removes
/// the file (the suite's Redis keeps nothing on disk).
fn start_redis_from(dir: &std::path::Path) {
    sh(&format!(
        "cd {} && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no >/dev/null",
        dir.display()
    ));
    wait_port(6379, true, Duration::from_secs(30));
    // Redis listens before it has loaded the snapshot (and answers `LOADING` until it
    // has): the file goes only once it is read.
    let until = Instant::now() + Duration::from_secs(30);
    while redis_cli(6379, &["ping"]).trim() != "PONG" {
        assert!(Instant::now() < until, "redis did not load its snapshot");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(dir.join("dump.rdb"));
}

/// The burst-with-restart scenario: 200 plot requests one after another, 50 ms apart
/// (a dashboard's pace, not a tight loop: an api learns that a dependency is back
/// within its breaker's one-second cooldown), `stop` after the 40th, `start` after the
/// 120th. Each answer is a 202 (kept) or a 503 with Retry-After and the dependency's
/// name. Returns the accepted ids and how many were accepted after the restart.
async fn burst_with_restart(
    client: &reqwest::Client,
    api: &Plotq,
    dependency: &str,
    stop: impl FnOnce(),
    start: impl FnOnce(),
) -> (Vec<String>, u32) {
    let (mut accepted, mut after_restart) = (Vec::new(), 0);
    let (mut stop, mut start) = (Some(stop), Some(start));
    for i in 0..200u32 {
        if i == 40 {
            (stop.take().unwrap())();
        }
        if i == 120 {
            (start.take().unwrap())();
        }
        let pace = tokio::time::sleep(Duration::from_millis(50));
        let r = post_plot(client, api, i).await;
        match r.status().as_u16() {
            202 => {
                accepted.push(job_id(r).await);
                if i >= 120 {
                    after_restart += 1;
                }
            }
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                let body = r.text().await.unwrap();
                assert!(body.contains(dependency), "request {i}: {body}");
            }
            other => panic!("request {i}: unexpected status {other}"),
        }
        pace.await;
    }
    (accepted, after_restart)
}

/// Every id of `ids` announced `plot.ready` exactly once on `events`, waiting (under
/// `DONE`) for the announcements still on their way.
async fn announced_once(events: &crate::support::EventRecorder, ids: &[String]) {
    let until = Instant::now() + DONE;
    loop {
        let snapshot = events.snapshot();
        let count = |id: &String| {
            snapshot
                .iter()
                .filter(|e| e.event == "plot.ready" && e.data["id"] == id.as_str())
                .count()
        };
        let twice: Vec<&String> = ids.iter().filter(|id| count(id) > 1).collect();
        assert!(twice.is_empty(), "announced more than once: {twice:?}");
        let missing = ids.iter().filter(|id| count(id) == 0).count();
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < until, "{missing} jobs never announced");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the scenario against a fresh api, two workers and a notifier at the default
/// settings (plus `env`): no accepted job lost, none announced twice, in under two
/// minutes.
async fn restart_scenario(
    name: &str,
    dependency: &str,
    env: &[(&str, &str)],
    stop: impl FnOnce(),
    start: impl FnOnce(),
) {
    restart_scenario_in(&namespace(name), dependency, env, stop, start).await;
}

/// `restart_scenario` in the namespace `ns`.
async fn restart_scenario_in(
    ns: &str,
    dependency: &str,
    env: &[(&str, &str)],
    stop: impl FnOnce(),
    start: impl FnOnce(),
) {
    let ns = ns.to_owned();
    let api = Plotq::start(&["api"], &ns, env);
    let _w1 = Plotq::start(&["worker"], &ns, env);
    let _w2 = Plotq::start(&["worker"], &ns, env);
    let notifier = Plotq::start(&["notifier"], &ns, env);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    ingest(&client, &api, "restart", 1000).await;
    let events = record_events(&notifier.url("/api/v1/events?service=restart")).await;
    let started = Instant::now();
    let (accepted, after_restart) =
        burst_with_restart(&client, &api, dependency, stop, start).await;
    all_done(&client, &api, &accepted).await;
    announced_once(&events, &accepted).await;
    let took = started.elapsed();
    eprintln!(
        "{dependency} restart: {} accepted ({after_restart} after the restart), {} refused, \
         all done and announced once in {took:?}",
        accepted.len(),
        200 - accepted.len()
    );
    assert!(
        after_restart >= 40,
        "{after_restart} of 80 accepted after the restart"
    );
    assert!(took < Duration::from_secs(120), "took {took:?}");
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_during_a_burst() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let _restore = Restore("rabbitmq", Box::new(start_rabbitmq));
    restart_scenario(
        "rmq",
        "rabbitmq",
        &[],
        || {
            assert!(sh("rabbitmqctl -q stop_app >/dev/null"));
            wait_port(5672, false, Duration::from_secs(30));
        },
        start_rabbitmq,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeping_its_data_during_a_burst_loses_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let _restore = Restore("redis", Box::new(start_redis));
    let dir = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (saved, restored) = (dir.clone(), dir.clone());
    restart_scenario(
        "redis-save",
        "redis",
        &[],
        move || *saved.lock().unwrap() = Some(stop_redis_saving()),
        move || start_redis_from(restored.lock().unwrap().as_ref().unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_restart_during_a_burst() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let mongo = std::sync::Arc::new(PrivateMongo::new());
    let url = mongo.url();
    let (a, b) = (mongo.clone(), mongo.clone());
    // Plot jobs are accepted while MongoDB is down (they need RabbitMQ and Redis); the
    // workers hold them until it is back.
    restart_scenario(
        "mongo",
        "mongodb",
        &[("PLOTQ_MONGODB_URL", url.as_str())],
        move || a.stop(),
        move || b.start(),
    )
    .await;
}

/// A master of the suite's Redis Cluster (`tests/redis-cluster.sh`): its port and the
/// config file it was started from (which it names itself, so this works whichever
/// checkout started the cluster).
#[derive(Clone)]
struct ClusterNode {
    port: u16,
    config: std::path::PathBuf,
}

/// Field `field` of `INFO server` on the Redis at `port`.
fn info_field(port: u16, field: &str) -> String {
    redis_info(port, "server", field).unwrap_or_else(|| panic!("redis {port} reports no {field}"))
}

impl ClusterNode {
    const PORTS: [u16; 3] = [7101, 7102, 7103];

    /// The master serving `key`'s hash slot.
    fn serving(key: &str) -> Self {
        let port = cluster_master_of(Self::PORTS[0], key)
            .unwrap_or_else(|| panic!("no live master serves {key}'s slot"));
        Self {
            port,
            config: info_field(port, "config_file").into(),
        }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.config
            .parent()
            .expect("the node's directory")
            .to_owned()
    }

    /// `SHUTDOWN SAVE`, as a master with persistence stops; waits for the process to exit.
    fn stop_saving(&self) {
        shutdown_saving(self.port, &self.dir());
    }

    /// Starts the node from its config (unless it is up) and waits until it has loaded
    /// its snapshot and every node reports the cluster healthy again; the snapshot then
    /// goes (the suite's cluster keeps nothing on disk).
    /// Never panics (it also runs from a guard while a failed test unwinds): says what
    /// went wrong instead.
    fn start(&self) -> Result<(), String> {
        if !port_open(self.port)
            && !sh(&format!(
                "redis-server {} >/dev/null",
                self.config.display()
            ))
        {
            return Err(format!(
                "redis-server {} did not start",
                self.config.display()
            ));
        }
        let until = Instant::now() + Duration::from_secs(60);
        while !Self::PORTS.iter().all(|&p| {
            redis_cli(p, &["cluster", "info"]).contains("cluster_state:ok")
                && redis_cli(p, &["ping"]).trim() == "PONG"
        }) {
            if Instant::now() > until {
                return Err("the Redis Cluster did not recover within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(self.dir().join("dump.rdb"));
        Ok(())
    }
}

/// The burst scenario on the 3-master Redis Cluster: api, workers and notifier are
/// started with the cluster's seed nodes, and the master restarted in the middle is the
/// one holding the namespace's event stream (the notifier's blocking read goes with it);
/// it keeps its data, as a master with persistence does. It is down for about 4 s, past
/// the cluster's node timeout (2 s), so the whole cluster goes to `cluster_state:fail`
/// and back. No accepted job is lost or announced twice and no plotq process needs a
/// restart. The node is started again even when the test fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_master_restart_during_a_burst_loses_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    crate::support::require_redis_cluster();
    let ns = namespace("cluster");
    let node = ClusterNode::serving(&format!("{ns}:plotq:events"));
    let restore = node.clone();
    let _restore = Restore(
        "redis cluster node",
        Box::new(move || {
            if let Err(e) = restore.start() {
                eprintln!("restoring the cluster node: {e}");
            }
        }),
    );
    let (stop, start) = (node.clone(), node.clone());
    eprintln!("restarting the cluster master on {}", node.port);
    restart_scenario_in(
        &ns,
        "redis",
        &[("PLOTQ_REDIS_URL", crate::support::REDIS_CLUSTER_URL)],
        move || stop.stop_saving(),
        move || start.start().expect("the cluster node starts again"),
    )
    .await;
}

/// A Redis that comes back empty: jobs still in RabbitMQ complete and write their state
/// again; a finished job whose state vanished answers `410 state_lost`, never `404`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_its_data_answers_410_for_lost_states() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let ns = namespace("redis");
    let api = Plotq::start(&["api"], &ns, &[]);
    let _worker = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    ingest(&client, &api, "restart", 1000).await;
    let mut accepted = Vec::new();
    for i in 0..30 {
        let r = post_plot(&client, &api, i).await;
        assert_eq!(r.status(), 202);
        accepted.push(job_id(r).await);
    }
    {
        let _restore = Restore("redis", Box::new(start_redis));
        sh("redis-cli -p 6379 shutdown nosave >/dev/null 2>&1");
        wait_port(6379, false, Duration::from_secs(10));
        for i in 100..105 {
            assert_eq!(post_plot(&client, &api, i).await.status(), 503);
        }
    }
    wait_ready(&client, &api.url("/readyz"), READY).await;
    // An id issued after the restart and never stored is unknown, even asked before any
    // state was found missing: readiness probed Redis, which marked when its data begins.
    let r = client
        .get(api.url(&format!(
            "/api/v1/plots/{}",
            plotq_domain::JobId::issued_at(plotq_ports::clock::now_ms())
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let until = Instant::now() + DONE;
    let (mut done, mut lost) = (0, 0);
    for id in &accepted {
        loop {
            let (status, body) = crate::support::job_state(&client, &api, id).await;
            match status {
                200 if body["status"] == "done" => {
                    done += 1;
                    break;
                }
                200 => {}
                410 => {
                    assert_eq!(body["code"], "state_lost", "{body}");
                    lost += 1;
                    break;
                }
                other => panic!("job {id}: {other} (a job accepted before the restart)"),
            }
            assert!(Instant::now() < until, "job {id} never finished");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!("after an empty restart: {done} done, {lost} lost (410), 0 unknown");
    cleanup(&ns).await;
}

/// One request of an outage measurement.
#[derive(Clone)]
enum Call {
    Get(String),
    Post(String, Value, Option<String>),
}

/// Sends `n` requests cycling through `calls`, `concurrency` at a time; each must be a
/// 503 with Retry-After naming `dependency`. Their latencies, sorted.
async fn outage_latencies(
    client: &reqwest::Client,
    api: &Plotq,
    calls: &[Call],
    n: usize,
    concurrency: usize,
    dependency: &'static str,
) -> Vec<Duration> {
    use futures::StreamExt;
    let mut times: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let call = calls[i % calls.len()].clone();
            let client = client.clone();
            let base = api.url("");
            async move {
                let request = match &call {
                    Call::Get(path) => client.get(format!("{base}{path}")),
                    Call::Post(path, body, key) => {
                        let r = client.post(format!("{base}{path}")).json(body);
                        match key {
                            Some(k) => r.header("idempotency-key", format!("{k}-{i}")),
                            None => r,
                        }
                    }
                };
                let started = Instant::now();
                let r = request.send().await.unwrap();
                let took = started.elapsed();
                let status = r.status();
                let retry_after = r.headers().contains_key("retry-after");
                let body = r.text().await.unwrap();
                let what = match &call {
                    Call::Get(path) | Call::Post(path, ..) => path.clone(),
                };
                assert_eq!(status, 503, "{what}: {body}");
                assert!(retry_after, "{what}: no Retry-After");
                assert!(body.contains(dependency), "{what}: {body}");
                took
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    times.sort();
    times
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Waits until `/readyz` of `api` reports `dependency` failing.
async fn wait_detected(client: &reqwest::Client, api: &Plotq, dependency: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let r = client.get(api.url("/readyz")).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        if body["checks"][dependency] == "failing" {
            return;
        }
        assert!(
            Instant::now() < until,
            "{dependency} never reported failing: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With each dependency stopped in turn, requests needing it are answered `503` within
/// milliseconds once the outage is known (p99 ≤ 100 ms over 200 requests), and within
/// the dependency timeout with failing fast off (`PLOTQ_BREAKER_FAILURES=0`, the
/// "before"), measured side by side at the default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_answered_in_milliseconds_once_detected() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let mongo = PrivateMongo::new();
    let mongo_url = mongo.url();
    let ns = namespace("fast");
    let env = [("PLOTQ_MONGODB_URL", mongo_url.as_str())];
    let off_env = [
        ("PLOTQ_MONGODB_URL", mongo_url.as_str()),
        ("PLOTQ_BREAKER_FAILURES", "0"),
    ];
    let on = Plotq::start(&["api"], &ns, &env);
    let off = Plotq::start(&["api"], &ns, &off_env);
    let _worker = Plotq::start(&["worker"], &ns, &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &on.url("/readyz"), READY).await;
    wait_ready(&client, &off.url("/readyz"), READY).await;
    ingest(&client, &on, "fast", 500).await;
    let id = request_plot(
        &client,
        &on,
        &json!({"kind": "histogram", "service": "fast"}),
    )
    .await;
    wait_status(&client, &on, &id, DONE, |s| s["status"] == "done").await;

    let plot = json!({"kind": "histogram", "service": "fast", "width": 400});
    let batch = Value::Array(crate::support::samples("fast", 10, 1000));
    let redis_calls = [
        Call::Post("/api/v1/plots".into(), plot.clone(), None),
        Call::Get(format!("/api/v1/plots/{id}")),
        Call::Get(format!("/api/v1/plots/{id}/png")),
        Call::Get("/api/v1/services".into()),
        Call::Post("/api/v1/metrics".into(), batch.clone(), Some("k".into())),
    ];
    let rabbit_calls = [Call::Post("/api/v1/plots".into(), plot.clone(), None)];
    let mongo_calls = [Call::Post("/api/v1/metrics".into(), batch.clone(), None)];
    let mut table = Vec::new();
    let mut measure = async |dependency: &'static str, how: &str, calls: &[Call]| {
        wait_detected(&client, &on, dependency).await;
        let after = outage_latencies(&client, &on, calls, 200, 10, dependency).await;
        let before = outage_latencies(&client, &off, calls, 40, 20, dependency).await;
        table.push(format!(
            "| {dependency} {how} | {:?} / {:?} | {:?} / {:?} |",
            quantile(&before, 0.5),
            quantile(&before, 0.99),
            quantile(&after, 0.5),
            quantile(&after, 0.99)
        ));
        assert!(
            quantile(&after, 0.99) <= Duration::from_millis(100),
            "{dependency}: p99 {:?} once detected",
            quantile(&after, 0.99)
        );
        // Before detection (and with failing fast off) a call still ends within the
        // dependency timeout (5 s by default), with room for a loaded machine.
        assert!(
            quantile(&before, 1.0) <= Duration::from_secs(7),
            "{before:?}"
        );
    };
    {
        let _restore = Restore("redis", Box::new(start_redis));
        sh("redis-cli -p 6379 shutdown nosave >/dev/null 2>&1");
        wait_port(6379, false, Duration::from_secs(10));
        measure("redis", "stopped", &redis_calls).await;
    }
    wait_ready(&client, &on.url("/readyz"), READY).await;
    wait_ready(&client, &off.url("/readyz"), READY).await;
    {
        // Hung rather than stopped (as behind a network partition): connections are
        // accepted and nothing answers, so every call without the breaker waits for
        // its timeout.
        let pid: u32 = info_field(6379, "process_id")
            .parse()
            .expect("a process id");
        let resume = move || {
            sh(&format!("kill -CONT {pid}"));
        };
        let _restore = Restore("redis (resumed)", Box::new(resume));
        assert!(sh(&format!("kill -STOP {pid}")));
        measure("redis", "hung", &redis_calls).await;
    }
    wait_ready(&client, &on.url("/readyz"), READY).await;
    wait_ready(&client, &off.url("/readyz"), READY).await;
    {
        let _restore = Restore("rabbitmq", Box::new(start_rabbitmq));
        assert!(sh("rabbitmqctl -q stop_app >/dev/null"));
        wait_port(5672, false, Duration::from_secs(30));
        measure("rabbitmq", "stopped", &rabbit_calls).await;
    }
    wait_ready(&client, &on.url("/readyz"), READY).await;
    wait_ready(&client, &off.url("/readyz"), READY).await;
    mongo.stop();
    measure("mongodb", "stopped", &mongo_calls).await;
    mongo.start();
    eprintln!(
        "503 latency while down, p50 / p99\n| dependency | failing fast off (before) | on (after) |\n|---|---|---|\n{}",
        table.join("\n")
    );
    // Back: the same api serves again without a restart.
    wait_ready(&client, &on.url("/readyz"), READY).await;
    // The log tells each outage once (down, back), not once per refused request: over
    // 800 refusals and readiness polls, a handful of warnings.
    let log = on.log_text();
    let loud = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    let downs = |dependency: &str| {
        log.lines()
            .filter(|l| l.contains("dependency down") && l.contains(&format!("\"{dependency}\"")))
            .count()
    };
    eprintln!("api log while failing fast: {loud} warnings and errors");
    assert_eq!(downs("redis"), 2, "{log}");
    assert_eq!(downs("rabbitmq"), 1, "{log}");
    assert_eq!(downs("mongodb"), 1, "{log}");
    assert!(loud <= 40, "{loud} warnings and errors:\n{log}");
    cleanup(&ns).await;
}

/// What the ingest client of `mongodb_outages_while_ingest_and_renders_are_in_flight`
/// saw: batches accepted, refusals (each a batch to send again), and answer times.
#[derive(Default)]
struct IngestLog {
    accepted: u32,
    refused_times: Vec<Duration>,
    slowest: Duration,
}

/// The samples of batch `k`: 200 values spread over the two minutes before `now_ms`.
fn inflight_batch(k: u32, now_ms: i64) -> Value {
    Value::Array(
        (0..200)
            .map(|i| {
                json!({
                    "service": "inflight",
                    "metric": "latency_ms",
                    "value": 10.0 + f64::from((k * 7 + i) % 90),
                    "timestamp": now_ms - 1_000 - i64::from(i) * 600,
                })
            })
            .collect(),
    )
}

async fn send_batch(client: &reqwest::Client, base: &str, k: u32, body: &Value) -> (u16, Duration) {
    let started = Instant::now();
    let r = client
        .post(format!("{base}/api/v1/metrics"))
        .header("idempotency-key", format!("inflight-{k}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 503 {
        assert!(r.headers().contains_key("retry-after"));
        assert!(r.text().await.unwrap().contains("mongodb"));
    }
    (status, started.elapsed())
}

/// MongoDB stops while ingest batches (each with an `Idempotency-Key`) and renders are
/// in flight: once for a few seconds, once for longer than the workers' outage budget
/// (`OUTAGE_BUDGET`, 10 s here; two minutes by default). Ingest answers 503 quickly and
/// accepts nothing meanwhile; a client sending its refused batches again with the same keys ends with
/// every sample stored exactly once; every accepted plot ends `done` — the short outage's
/// by themselves (held, then run), the long one's after `plotq dlq retry --all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_outages_while_ingest_and_renders_are_in_flight() {
    let _serial = ONE_AT_A_TIME.lock().await;
    require_services();
    let mongo = PrivateMongo::new();
    let url = mongo.url();
    let ns = namespace("inflight");
    let env = [("PLOTQ_MONGODB_URL", url.as_str())];
    let api = Plotq::start(&["api"], &ns, &env);
    // A short outage budget: the long outage only needs to outlast it.
    let _worker = Plotq::start(
        &["worker"],
        &ns,
        &[env[0], ("PLOTQ_OUTAGE_BUDGET", OUTAGE_BUDGET)],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    let first_ms = plotq_ports::clock::now_ms();
    let stop = tokio_util::sync::CancellationToken::new();
    // A client that sends a batch every 50 ms and, when one is refused, sends the same
    // batch again (same key, same body) 200 ms later until it is taken; once told to
    // stop, it still sends its last batch until it is taken.
    let ingest_task = tokio::spawn({
        let (client, api_url, stop) = (client.clone(), api.url(""), stop.clone());
        async move {
            let mut log = IngestLog::default();
            let mut k = 0;
            let mut body = inflight_batch(k, plotq_ports::clock::now_ms());
            let until = Instant::now() + Duration::from_secs(600);
            loop {
                let (status, took) = send_batch(&client, &api_url, k, &body).await;
                log.slowest = log.slowest.max(took);
                match status {
                    200 => {
                        log.accepted += 1;
                        if stop.is_cancelled() {
                            return log;
                        }
                        k += 1;
                        body = inflight_batch(k, plotq_ports::clock::now_ms());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    503 => {
                        log.refused_times.push(took);
                        assert!(Instant::now() < until, "batch {k} never taken");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    other => panic!("batch {k}: {other}"),
                }
            }
        }
    });
    let plots_task = tokio::spawn({
        let (client, api_url, stop) = (client.clone(), api.url(""), stop.clone());
        async move {
            let mut ids = Vec::new();
            let mut i = 0u32;
            while !stop.is_cancelled() {
                let r = client
                    .post(format!("{api_url}/api/v1/plots"))
                    .json(&json!({"kind": "histogram", "service": "inflight", "width": 300 + (i % 500)}))
                    .send()
                    .await
                    .unwrap();
                // MongoDB is not needed to accept a plot: every request is taken.
                assert_eq!(r.status(), 202);
                ids.push(job_id(r).await);
                i += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            ids
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    mongo.stop(); // a few seconds: within the outage budget
    tokio::time::sleep(Duration::from_secs(5)).await;
    mongo.start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    mongo.stop(); // past the outage budget (10 s), by 6 s
    tokio::time::sleep(Duration::from_secs(16)).await;
    mongo.start();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let mut log = ingest_task.await.unwrap();
    let plots = plots_task.await.unwrap();
    let refused = log.refused_times.len();

    // Ingest during the outages: refused, and fast once the outage was known.
    log.refused_times.sort();
    let p99 = quantile(&log.refused_times, 0.99);
    eprintln!(
        "ingest: {} batches accepted, {refused} answers 503 (p50 {:?}, p99 {p99:?}, slowest answer {:?})",
        log.accepted,
        quantile(&log.refused_times, 0.5),
        log.slowest
    );
    assert!(refused >= 20, "the outages refused {refused} sends");
    // Only the first few sends of each outage wait (up to the timeout) before it is
    // known; the rest are refused at once.
    let p95 = quantile(&log.refused_times, 0.95);
    assert!(p95 <= Duration::from_millis(100), "p95 {p95:?}");
    assert!(
        log.slowest <= Duration::from_secs(7),
        "an answer took {:?}",
        log.slowest
    );
    // Every sample of every batch stored exactly once: an exact plot over all of them.
    let id = request_plot(
        &client,
        &api,
        &json!({"kind": "histogram", "service": "inflight",
                "from": first_ms - 300_000, "until": plotq_ports::clock::now_ms() + 1_000}),
    )
    .await;
    let state = wait_status(&client, &api, &id, DONE, |s| s["status"] == "done").await;
    assert_eq!(
        state["n_samples"].as_u64(),
        Some(u64::from(log.accepted) * 200),
        "{state}"
    );
    // Plots: the long outage's held jobs were dead-lettered as dependency_unavailable;
    // the operator replays them, and every accepted plot ends done.
    let (_, letters) = crate::support::run_plotq(&["dlq", "list"], &ns, &[]);
    assert!(letters.contains("dependency_unavailable"), "{letters}");
    let (ok, out) = crate::support::run_plotq(&["dlq", "retry", "--all"], &ns, &[]);
    assert!(ok, "{out}");
    let states = all_done(&client, &api, &plots).await;
    eprintln!(
        "plots: {} accepted, all done ({} dead-lettered and replayed)",
        states.len(),
        letters.lines().count()
    );
    drop(mongo);
    cleanup(&ns).await;
}
