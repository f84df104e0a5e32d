//! Harness for the end-to-end suites: starts real `plotq` processes (each role its own
//! OS process, port 0, a fresh namespace per test), talks to them over HTTP and SSE, and
//! cleans the namespace's broker and Redis objects afterwards.
//!
//! Services are required, never optional: a test that cannot reach RabbitMQ, Redis or
//! the MongoDB-wire server fails with a message saying which one and how to start it.

#![allow(dead_code)] // Each suite uses a different part of the harness.

use futures::StreamExt;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

pub mod app;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The suite's 3-master Redis Cluster (`tests/redis-cluster.sh`), as `PLOTQ_REDIS_URL`.
pub const REDIS_CLUSTER_URL: &str =
    "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103";

/// Fails the test unless RabbitMQ, Redis and the MongoDB-wire server accept connections.
pub fn require_services() {
    for (name, addr, hint) in [
        ("RabbitMQ", "127.0.0.1:5672", "rabbitmq-server -detached"),
        (
            "Redis",
            "127.0.0.1:6379",
            "redis-server --daemonize yes --port 6379",
        ),
        (
            "MongoDB-wire server",
            "127.0.0.1:27017",
            "nx-27017 --db memory -p 27017",
        ),
    ] {
        let addr = addr.parse().expect("valid address");
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
            panic!(
                "{name} is not reachable on {addr}; start it (`{hint}`) or run the README's test command"
            );
        }
    }
}

/// Fails the test unless every node of the suite's Redis Cluster accepts connections.
pub fn require_redis_cluster() {
    for port in [7101, 7102, 7103] {
        let addr = ([127, 0, 0, 1], port).into();
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
            panic!(
                "the Redis Cluster is not reachable on {addr}; start it (`tests/redis-cluster.sh`) or run the README's test command"
            );
        }
    }
}

/// Deletes `keys` one command each (a cluster refuses a DEL across slots) from the Redis
/// at `redis_url` — one URL, or a cluster's seed nodes separated by commas.
pub async fn delete_redis_keys(redis_url: &str, keys: &[String]) {
    async fn each(conn: &mut impl redis::aio::ConnectionLike, keys: &[String]) {
        for key in keys {
            let _: Result<(), _> = redis::cmd("DEL").arg(key).query_async(conn).await;
        }
    }
    if redis_url.contains(',') {
        if let Ok(client) = redis::cluster::ClusterClient::new(redis_url.split(','))
            && let Ok(mut conn) = client.get_async_connection().await
        {
            each(&mut conn, keys).await;
        }
    } else if let Ok(client) = redis::Client::open(redis_url)
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        each(&mut conn, keys).await;
    }
}

/// A fresh namespace, so concurrent tests and earlier runs never see each other's data.
pub fn namespace(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// One running `plotq` process; killed when dropped.
pub struct Plotq {
    child: Child,
    /// `http://127.0.0.1:<port>` for roles that serve HTTP.
    pub base: Option<String>,
    pub log: PathBuf,
}

impl Plotq {
    /// Starts `plotq <args>` in namespace `ns`. HTTP roles listen on port 0; the
    /// address is read from the line the binary prints.
    pub fn start(args: &[&str], ns: &str, env: &[(&str, &str)]) -> Self {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = log_dir().join(format!("{ns}-{}-{n}.log", args.join("_")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plotq"));
        cmd.args(args)
            .env("PLOTQ_NAMESPACE", ns)
            .env("PLOTQ_HTTP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info,plotq_worker=debug,lapin=warn")
            // Suites send hundreds of plot requests from one address in a burst; the
            // per-caller limits are tested on their own (tests pass their own env).
            .env("PLOTQ_PLOT_REQUESTS_PER_SEC", "100000")
            .env("PLOTQ_PLOT_BURST", "100000")
            .env("PLOTQ_JOBS_IN_FLIGHT_PER_CALLER", "100000")
            .env("PLOTQ_RENDER_WAITERS_PER_CALLER", "100000")
            .env("PLOTQ_VIEWS_PER_CALLER", "100000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("plotq binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        // Every role serves HTTP (a worker: health, readiness and metrics); `dlq` and
        // `token` are not roles.
        let serves_http = ["standalone", "api", "worker", "notifier"]
            .iter()
            .any(|role| args.first() == Some(role));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base = serves_http.then(|| {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!(
                        "plotq {args:?} did not start listening; log: {}",
                        log.display()
                    )
                })
        });
        Self { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.base.as_deref().expect("this role serves HTTP")
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `deadline` for the exit status.
    pub fn terminate(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Plotq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `url` until it answers 200, or fails the test at `deadline`.
pub async fn wait_ready(client: &reqwest::Client, url: &str, deadline: Duration) {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{url} not ready within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One parsed Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A live SSE subscription, parsed on a background task.
pub struct Sse {
    rx: mpsc::UnboundedReceiver<SseEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The tests' HTTP client for requests (not streams): a request that hangs fails the
/// test, naming itself, instead of waiting for the harness's cut.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(90))
        .build()
        .expect("an HTTP client")
}

/// Subscribes to `url` (optionally resuming after `last_event_id`); returns once the
/// response headers arrived, so events published afterwards are certain to be seen.
pub async fn subscribe(url: &str, last_event_id: Option<&str>) -> Sse {
    // No whole-request timeout: the stream stays open for the test's life.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut req = client.get(url).header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), req.send())
        .await
        .unwrap_or_else(|_| panic!("no SSE response headers from {url} within 30 s"))
        .expect("SSE connects");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut stream = response.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            for event in drain_sse_blocks(&mut buf) {
                assert!(
                    event.data.is_object(),
                    "event data is a JSON object: {:?}",
                    event.data
                );
                if tx.send(event).is_err() {
                    return;
                }
            }
        }
    });
    Sse { rx, task }
}

impl Sse {
    /// The next event for which `pred` holds; fails the test at `deadline`.
    pub async fn next_matching(
        &mut self,
        deadline: Duration,
        pred: impl Fn(&SseEvent) -> bool,
    ) -> SseEvent {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(ev)) if pred(&ev) => return ev,
                Ok(Some(_)) => {}
                Ok(None) => panic!("SSE stream ended"),
                Err(_) => panic!("no matching SSE event within {deadline:?}"),
            }
        }
    }

    /// Every event that arrives within `window` (for asserting absence or counts).
    pub async fn collect_for(&mut self, window: Duration) -> Vec<SseEvent> {
        let until = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout_at(until, self.rx.recv()).await {
            out.push(ev);
        }
        out
    }
}

/// Width and height of a PNG, decoding the whole image (so a corrupt one fails).
pub fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    (info.width, info.height)
}

/// `n` lognormal-ish latency samples for `service`, spread over the last `span_ms`.
pub fn samples(service: &str, n: usize, span_ms: i64) -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // A cheap deterministic generator is enough: the test checks counts, not shapes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let value = 20.0 * (1.0 + 3.0 * u * u * u) + (i % 7) as f64;
            serde_json::json!({
                "service": service,
                "metric": "latency_ms",
                "value": value,
                "timestamp": now - 1000 - (i as i64 * span_ms / n as i64),
            })
        })
        .collect()
}

/// Removes the namespace's queues, exchange, event stream and live-refresh sets.
pub async fn cleanup(ns: &str) {
    if let Ok(conn) =
        lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default()).await
    {
        if let Ok(ch) = conn.create_channel().await {
            let mut queues = vec![
                format!("{ns}.plotq.plot.jobs"),
                format!("{ns}.plotq.plot.dead"),
            ];
            // Retry tiers of the default and the tests' PLOTQ_RETRY_DELAYS.
            for ms in [1000, 2000, 4000, 5000, 25000] {
                queues.push(format!("{ns}.plotq.plot.retry.{ms}ms"));
            }
            for q in queues {
                let _ = ch.queue_delete(q.into(), Default::default()).await;
            }
            let _ = ch
                .exchange_delete(format!("{ns}.plotq.jobs").into(), Default::default())
                .await;
        }
        let _ = conn.close(200, "bye".into()).await;
    }
    // Keys without a TTL: the event stream and the live-refresh sorted sets, on the
    // Redis or the Redis Cluster the test used.
    let keys = ["events", "series", "views"].map(|k| format!("{ns}:plotq:{k}"));
    delete_redis_keys(REDIS_URL, &keys).await;
    delete_redis_keys(REDIS_CLUSTER_URL, &keys).await;
}

/// `GET /api/v1/plots/{id}`: its status code and its body.
pub async fn job_state(client: &reqwest::Client, api: &Plotq, id: &str) -> (u16, Value) {
    let r = client
        .get(api.url(&format!("/api/v1/plots/{id}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// Polls a job's status until `done(status)` holds; fails the test at `deadline`.
pub async fn wait_status(
    client: &reqwest::Client,
    api: &Plotq,
    id: &str,
    deadline: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let (status, body) = job_state(client, api, id).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "job {id} did not reach the expected status within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `plotq <args>` to completion in namespace `ns`; returns (success, stdout).
pub fn run_plotq(args: &[&str], ns: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plotq"));
    cmd.args(args)
        .env("PLOTQ_NAMESPACE", ns)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("plotq runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Posts `n` samples of `service` (spread over two minutes) and expects them accepted.
pub async fn ingest(client: &reqwest::Client, api: &Plotq, service: &str, n: usize) {
    post_samples(client, &api.url(""), &samples(service, n, 120_000)).await;
}

/// Posts `samples` as one batch to `{base}/api/v1/metrics`; expects 200 with every
/// sample accepted.
pub async fn post_samples(client: &reqwest::Client, base: &str, samples: &[Value]) {
    let r = client
        .post(format!("{base}/api/v1/metrics"))
        .json(samples)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "ingest: {}", r.text().await.unwrap());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], samples.len());
}

/// `GET url`, decoded as JSON (whatever the status).
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The job id of a plot request's answer (`202` or a deduplicated `200`).
pub async fn job_id(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON job");
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id in {body}"))
        .to_owned()
}

/// Posts the plot request `body` to `api`, expects `202 Accepted`, and returns the job id.
pub async fn request_plot(client: &reqwest::Client, api: &Plotq, body: &Value) -> String {
    post_plot(client, &api.url(""), body).await
}

/// Posts the plot request `body` to `{base}/api/v1/plots`, expects `202 Accepted`, and
/// returns the job id.
pub async fn post_plot(client: &reqwest::Client, base: &str, body: &Value) -> String {
    let r = client
        .post(format!("{base}/api/v1/plots"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "plot request {body}");
    job_id(r).await
}

/// A channel on the test broker, for tests that act on it behind plotq's back.
pub async fn broker_channel() -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ accepts connections");
    let channel = conn.create_channel().await.expect("a channel opens");
    (conn, channel)
}

// ---- Additions for the fuzz suite (e2e_fuzz.rs); the helpers above are unchanged. ----

impl Plotq {
    /// The exit status if the process has ended (it should not have), without waiting.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// Every event of an SSE stream, recorded on a background task that reconnects with
/// `Last-Event-ID` when the stream ends (so the bus's replay fills any gap), for
/// counting events after the fact.
pub struct EventRecorder {
    events: std::sync::Arc<std::sync::Mutex<Vec<SseEvent>>>,
    reconnects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Parses the complete `\n\n`-terminated blocks at the front of `buf` (removing them);
/// keep-alive comments and blocks without data are skipped.
fn drain_sse_blocks(buf: &mut String) -> Vec<SseEvent> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if data.is_empty() {
            continue;
        }
        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
        out.push(SseEvent { id, event, data });
    }
    out
}

/// Starts recording `url`; returns once the first connection's headers arrived, so every
/// event published afterwards is recorded.
pub async fn record_events(url: &str) -> EventRecorder {
    async fn connect(
        client: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, String> {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("SSE answered {}", response.status()));
        }
        Ok(response)
    }
    let client = reqwest::Client::new();
    let first = connect(&client, url, None)
        .await
        .unwrap_or_else(|e| panic!("SSE {url} connects: {e}"));
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reconnects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (sink, count, url) = (events.clone(), reconnects.clone(), url.to_owned());
    let task = tokio::spawn(async move {
        let mut response = Some(first);
        let mut last_id: Option<String> = None;
        loop {
            let Some(r) = response.take() else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                response = connect(&client, &url, last_id.as_deref()).await.ok();
                continue;
            };
            let mut stream = r.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                let parsed = drain_sse_blocks(&mut buf);
                if let Some(id) = parsed.iter().rev().find_map(|e| e.id.clone()) {
                    last_id = Some(id);
                }
                sink.lock().expect("events lock").extend(parsed);
            }
        }
    });
    EventRecorder {
        events,
        reconnects,
        task,
    }
}

impl EventRecorder {
    /// The events recorded so far, in arrival order.
    pub fn snapshot(&self) -> Vec<SseEvent> {
        self.events.lock().expect("events lock").clone()
    }

    /// How many times the stream had to be reopened.
    pub fn reconnects(&self) -> usize {
        self.reconnects.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Polls `GET {base}/api/v1/plots/{id}` until the job is `done` or `failed`; its state,
/// or what it last was when `deadline` passed (the error names it).
pub async fn wait_finished(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    deadline: Duration,
) -> Result<Value, String> {
    let until = tokio::time::Instant::now() + deadline;
    let mut last;
    loop {
        match client
            .get(format!("{base}/api/v1/plots/{id}"))
            .timeout(Duration::from_secs(30))
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status();
                match r.json::<Value>().await {
                    Ok(body) if status == 200 => {
                        if matches!(body["status"].as_str(), Some("done" | "failed")) {
                            return Ok(body);
                        }
                        last = format!("status {}", body["status"]);
                    }
                    Ok(body) => last = format!("HTTP {status}: {body}"),
                    Err(e) => last = format!("HTTP {status}, unreadable body: {e}"),
                }
            }
            Err(e) => last = format!("request failed: {e}"),
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!(
                "job {id} not finished within {deadline:?}; last seen: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
