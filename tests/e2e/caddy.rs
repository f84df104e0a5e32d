//! Edge access logs end to end, against RabbitMQ, Redis and the MongoDB-wire server
//! (the harness's `TestApp`: api, workers and a notifier in process, a fresh namespace):
//!
//! - `POST /api/v1/ingest/caddy` with the fixture of real Caddy 2.7 lines
//!   (`tests/fixtures/caddy/access.log`, its timestamps moved to the last minutes): the
//!   answer counts exactly 9 accepted, 3 skipped and 4 malformed lines (lines 8, 10, 11
//!   and 12), and the store holds exactly the mapped samples — seen through the api, as
//!   the `n_samples` and statistics of histogram and status-code plots, and in
//!   `/api/v1/services`; a retry with the same `Idempotency-Key` stores nothing again,
//!   and the same key and body with another mapping is `422 idempotency_key_reused`;
//!   with rules and no default service, the scanner's request to the bare IP (line 13)
//!   is malformed (`/request/host`) and its host never becomes a service;
//! - `plotq tail` (the built binary) following a file in a temporary directory: lines
//!   appended, the file renamed and created again (with a last line written to the old
//!   one), more lines, the tailer killed with SIGKILL in the middle of a burst and
//!   started again — every line stored exactly once (count, min, max and mean of the
//!   durations, each line's duration distinct);
//! - a `plotq tail` whose requests the api refuses (401) stops with the api's problem and
//!   never prints its token.
//!
//! Waits are on conditions with deadlines: the tailer's state file saying everything up
//! to the end of the file is stored, and the plots' numbers.

use crate::support::app::{Backend, TestApp};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../fixtures/caddy/fixture.rs"]
mod fixture;
use fixture::{ACCESS_LOG as FIXTURE, shift_ts};
const DEADLINE: Duration = Duration::from_secs(60);

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Requests a plot of `service`'s `metric` over the last 15 minutes and waits for it;
/// the finished job's state.
async fn plot(app: &TestApp, kind: &str, service: &str, metric: &str) -> Value {
    let id = app
        .request_plot(&json!({"kind": kind, "service": service, "metric": metric, "window": "15m"}))
        .await;
    let job = app.wait_done(id, DEADLINE).await;
    assert_eq!(job["status"], "done", "{job}");
    job
}

/// The services `/api/v1/services` lists, but plotq's own (`plotq`: its requests,
/// observed, which may or may not have been written yet).
async fn services(app: &TestApp) -> Vec<String> {
    let services: Value = app.get("/api/v1/services").await.json().await.unwrap();
    services["services"]
        .as_array()
        .unwrap_or_else(|| panic!("{services}"))
        .iter()
        .filter_map(Value::as_str)
        .filter(|s| *s != "plotq")
        .map(str::to_owned)
        .collect()
}

/// `(n_samples, min, max, mean)` of a finished job.
fn numbers(job: &Value) -> (u64, f64, f64, f64) {
    let stats = &job["stats"][0];
    (
        job["n_samples"].as_u64().unwrap_or(0),
        stats["min"].as_f64().unwrap_or(f64::NAN),
        stats["max"].as_f64().unwrap_or(f64::NAN),
        stats["mean"].as_f64().unwrap_or(f64::NAN),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fixture_is_counted_and_exactly_its_access_entries_are_stored() {
    let app = TestApp::spawn(Backend::Real).await;
    app.wait_ready(DEADLINE).await;
    let body = shift_ts(FIXTURE, now_secs() as i64 - 120 - 1_700_000_001);
    let url =
        app.url("/api/v1/ingest/caddy?service=edge&map=api.example.com%3Dapi,*.example.com%3Dweb");
    let post = |key: &'static str| {
        app.client
            .post(&url)
            .header("content-type", "application/x-ndjson")
            .header("idempotency-key", key)
            .body(body.clone())
            .send()
    };
    let r = post("fixture-1").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let answer: Value = r.json().await.unwrap();
    for (field, n) in [
        ("lines", 16),
        ("accepted", 9),
        ("samples", 18),
        ("skipped", 3),
        ("malformed", 4),
    ] {
        assert_eq!(answer[field], n, "{field} in {answer}");
    }
    let malformed: Vec<(u64, &str)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        malformed,
        [(8, ""), (10, "/status"), (11, "/duration"), (12, "/status")]
    );

    // Counted in Prometheus (the counters are the process's: at least this request's).
    let exposition = app.get("/metrics").await.text().await.unwrap();
    for (result, n) in [("accepted", 9), ("skipped", 3), ("malformed", 4)] {
        let counted = exposition
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("plotq_caddy_lines_total{{result=\"{result}\"}} "))
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {result} line count in /metrics:\n{exposition}"));
        assert!(counted >= n as f64, "{result}: {counted}");
    }

    // The same batch again: answered the same, stored once.
    let again = post("fixture-1").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), answer);

    // Exactly the mapped samples, as the plots count them.
    let durations = [
        ("api", 4, 2.113004, 48.213337),
        ("web", 4, 0.231129, 250.104533),
        ("edge", 1, 0.014892, 0.014892),
    ];
    for (service, n, min, max) in durations {
        let job = plot(&app, "histogram", service, "http_request_duration_ms").await;
        let (count, lo, hi, _) = numbers(&job);
        assert_eq!(count, n, "{service}: {job}");
        assert!(close(lo, min) && close(hi, max), "{service}: {job}");
    }
    let statuses = [
        ("api", 4, 201.0, 404.0 + 502.0 + 201.0 + 200.0, 502.0),
        ("web", 4, 200.0, 200.0 + 200.0 + 304.0 + 500.0, 500.0),
        ("edge", 1, 308.0, 308.0, 308.0),
    ];
    for (service, n, _, sum, max) in statuses {
        let job = plot(&app, "status_codes", service, "status_code").await;
        let (count, _, hi, mean) = numbers(&job);
        assert_eq!(count, n, "{service}: {job}");
        assert!(
            close(hi, max) && close(mean * n as f64, sum),
            "{service}: {job}"
        );
    }
    assert_eq!(services(&app).await, ["api", "edge", "web"]);

    // The same key and body with another mapping: another batch, refused.
    let remapped = app
        .client
        .post(app.url("/api/v1/ingest/caddy?service=edge&map=*.example.com%3Dweb"))
        .header("content-type", "application/x-ndjson")
        .header("idempotency-key", "fixture-1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(remapped.status(), 422);
    let problem: Value = remapped.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused", "{problem}");

    // Rules without a default service: the request to the bare IP names no service.
    let r = app
        .client
        .post(app.url("/api/v1/ingest/caddy?map=*.example.com%3Dsites"))
        .header("content-type", "application/x-ndjson")
        .header("idempotency-key", "fixture-2")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    for (field, n) in [
        ("lines", 16),
        ("accepted", 8),
        ("samples", 16),
        ("skipped", 3),
        ("malformed", 5),
    ] {
        assert_eq!(answer[field], n, "{field} in {answer}");
    }
    let last = &answer["errors"][4];
    assert_eq!(
        (last["line"].clone(), last["field"].clone()),
        (json!(13), json!("/request/host")),
        "{answer}"
    );
    assert_eq!(
        last["problem"],
        "/request/host: \"152.53.179.101\" matches no map rule, and no default service was given (`service=`)"
    );
    let job = plot(&app, "status_codes", "sites", "status_code").await;
    assert_eq!(numbers(&job).0, 8, "{job}");
    // The refused remapping (every `*.example.com` host to `web`) stored nothing: `web`
    // still holds its four (asked as another kind, so that a new job counts them).
    let job = plot(&app, "histogram", "web", "status_code").await;
    assert_eq!(numbers(&job).0, 4, "{job}");
    assert_eq!(services(&app).await, ["api", "edge", "sites", "web"]);
    app.stop().await;
}

/// A `plotq tail` process, killed (SIGKILL) when dropped.
struct Tailer {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Tailer {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], run: usize) -> Self {
        let stdout = dir.join(format!("tail-{run}.out"));
        let stderr = dir.join(format!("tail-{run}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plotq"));
        cmd.arg("tail")
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("PLOTQ_TOKEN")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().expect("plotq tail starts"),
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits up to `deadline` for the process to end on its own.
    fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One access entry as Caddy 2.7 writes it: line `i` took `i + 1` ms.
fn access_line(i: usize) -> String {
    format!(
        r#"{{"level":"info","ts":{ts:.7},"logger":"http.log.access.log0","msg":"handled request","request":{{"remote_ip":"198.51.100.23","remote_port":"41342","client_ip":"198.51.100.23","proto":"HTTP/1.1","method":"GET","host":"tail.example.com","uri":"/item/{i}","headers":{{"User-Agent":["curl/8.4.0"],"Accept":["*/*"]}}}},"bytes_read":0,"user_id":"","duration":{d},"size":17,"status":200,"resp_headers":{{"Server":["Caddy"],"Content-Type":["application/json"]}}}}"#,
        ts = now_secs(),
        d = (i + 1) as f64 / 1000.0,
    )
}

fn append(path: &Path, lines: std::ops::Range<usize>) {
    use std::io::Write;
    let mut text = String::new();
    for i in lines {
        text.push_str(&access_line(i));
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Waits until the tailer's state says every line of the file now at `log` is stored
/// (its inode, its length, nothing pending).
async fn wait_caught_up(log: &Path, state: &Path, tailer: &Tailer) {
    use std::os::unix::fs::MetadataExt;
    let until = Instant::now() + DEADLINE;
    loop {
        let meta = std::fs::metadata(log).unwrap();
        let saved: Value = std::fs::read(state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if saved["ino"] == meta.ino()
            && saved["offset"] == meta.len()
            && saved["pending_end"].is_null()
        {
            return;
        }
        assert!(
            Instant::now() < until,
            "the tailer did not catch up with {} ({} bytes): state {saved}\n{}",
            log.display(),
            meta.len(),
            tailer.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts that lines `0..n` are stored exactly once each.
async fn assert_stored_once(app: &TestApp, n: usize) {
    let job = plot(app, "histogram", "tail", "http_request_duration_ms").await;
    let (count, min, max, mean) = numbers(&job);
    assert_eq!(count, n as u64, "{job}");
    // Durations 1..=n ms, each once: a duplicate or a gap moves the mean or the ends.
    assert!(close(min, 1.0) && close(max, n as f64), "{job}");
    assert!(close(mean, (n as f64 + 1.0) / 2.0), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plotq_tail_stores_every_line_once_across_rotation_and_restarts() {
    let app = TestApp::spawn(Backend::Real).await;
    app.wait_ready(DEADLINE).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("caddy-{}", app.ns));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let state = dir.join("access.log.state");
    let (log_arg, state_arg) = (log.display().to_string(), state.display().to_string());
    let args = [
        log_arg.as_str(),
        "--url",
        app.api.as_str(),
        "--map",
        "*.example.com=tail",
        "--state",
        state_arg.as_str(),
        "--from-start",
        "--batch-lines",
        "7",
        "--interval",
        "100ms",
        "--poll",
        "50ms",
        "--summary-every",
        "1s",
    ];

    append(&log, 0..20);
    let tailer = Tailer::start(&dir, &args, &[], 1);
    wait_caught_up(&log, &state, &tailer).await;
    assert_stored_once(&app, 20).await;

    // Rename + create; the writer's last line lands in the old file after the rename.
    append(&log, 20..30);
    std::fs::rename(&log, dir.join("access.log.1")).unwrap();
    append(&dir.join("access.log.1"), 30..35);
    append(&log, 35..45);
    wait_caught_up(&log, &state, &tailer).await;
    assert_stored_once(&app, 45).await;

    // Killed in the middle of a burst (SIGKILL: no chance to tidy up), lines written
    // while it is down, then started again: it resumes, sending any unconfirmed batch
    // again under the same key.
    append(&log, 45..245);
    let mut tailer = tailer;
    // Killed while a batch is sent and unconfirmed, when that can be caught in time.
    let until = Instant::now() + Duration::from_secs(5);
    let mut in_flight = Value::Null;
    while Instant::now() < until {
        let saved: Value = std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if !saved["pending_end"].is_null() && saved["offset"].as_u64() > Some(0) {
            in_flight = saved;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    tailer.child.kill().unwrap();
    tailer.child.wait().unwrap();
    println!("killed with a batch in flight: {in_flight}");
    append(&log, 245..250);
    let tailer = Tailer::start(&dir, &args, &[], 2);
    wait_caught_up(&log, &state, &tailer).await;
    assert_stored_once(&app, 250).await;

    // Its summaries are one JSON object per line.
    drop(tailer);
    let out = std::fs::read_to_string(dir.join("tail-2.out")).unwrap();
    for line in out.lines() {
        let summary: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(summary["batches"].is_u64(), "{line}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plotq_tail_stops_on_a_refusal_and_never_prints_its_token() {
    let app = TestApp::spawn(Backend::Real).await;
    app.wait_ready(DEADLINE).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("caddy-{}", app.ns));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    append(&log, 0..3);
    let log_arg = log.display().to_string();
    // Open mode refuses every credential sent (401): a refusal that retrying cannot fix.
    let token = "plotq-tail-secret-token-0123456789";
    let mut tailer = Tailer::start(
        &dir,
        &[
            &log_arg,
            "--url",
            &app.api,
            "--from-start",
            "--interval",
            "50ms",
        ],
        &[("PLOTQ_TOKEN", token)],
        1,
    );
    let status = tailer
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the tailer kept going after a 401\n{}", tailer.output()));
    let output = tailer.output();
    assert!(!status.success(), "{output}");
    assert!(output.contains("401"), "{output}");
    assert!(!output.contains(token), "the token was printed:\n{output}");
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}
