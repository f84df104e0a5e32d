//! `plotq bench sse`: SSE fan-out. Starts `plotq standalone --no-demo` (this binary, a
//! child process, limits raised for the clients), opens `--clients` SSE streams to it
//! from this process (raw HTTP/1.1 over tokio sockets, each read by its own task: a
//! Rust client, light enough not to be what is measured), and reads the child's RSS
//! before and after (memory per idle client). Then, `--events` times, posts a plot and
//! waits until every client has read its `plot.ready` event: the spread is each
//! client's arrival after the first client's, over every event (p50, p99, max). Client
//! and server share this machine's cores (the CPU an event cost each is printed), so
//! the client does as little as it can: a read, a timestamp into a shared list, and one
//! wake-up of the bench an event (when the last client has it), not one a client.

use crate::config::tools::BenchSseArgs;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Every client's `plot.ready` arrivals, and the bench's wake-up once `want` arrived
/// (or a client's stream ended).
#[derive(Default)]
struct Arrivals {
    times: Mutex<Vec<Instant>>,
    want: AtomicUsize,
    ended: AtomicUsize,
    enough: Notify,
}

impl Arrivals {
    fn arrived(&self, at: Instant, events: usize) {
        let mut times = self.times.lock().expect("arrivals lock");
        times.extend(std::iter::repeat_n(at, events));
        if times.len() >= self.want.load(Ordering::Relaxed) {
            self.enough.notify_one();
        }
    }
}

pub fn run(args: &BenchSseArgs) -> anyhow::Result<()> {
    super::print_line(bench(args))
}

/// The resident memory of process `pid`, in KiB.
fn rss_kb(pid: u32) -> u64 {
    let [rss] = super::memory_fields(&pid.to_string(), ["VmRSS:"]);
    rss / 1024
}

/// Opens one SSE stream; answers once its response headers arrived (status 200).
async fn subscribe(addr: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let request =
        format!("GET /api/v1/events HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the stream closed before its headers");
        head.extend_from_slice(&buf[..n]);
        anyhow::ensure!(head.len() < 16 * 1024, "headers too long");
    }
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "SSE answered {}",
        String::from_utf8_lossy(&head[..head.len().min(200)])
    );
    Ok(stream)
}

/// Reads `stream` until it closes, recording the time of each read that completes a
/// `plot.ready` event.
async fn read_events(mut stream: TcpStream, arrivals: std::sync::Arc<Arrivals>) {
    const MARK: &[u8] = b"event: plot.ready";
    let mut buf = vec![0u8; 4096];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                arrivals.ended.fetch_add(1, Ordering::Relaxed);
                arrivals.enough.notify_one();
                return;
            }
            Ok(n) => n,
        };
        let at = Instant::now();
        carry.extend_from_slice(&buf[..n]);
        let seen = carry.windows(MARK.len()).filter(|w| *w == MARK).count();
        if seen > 0 {
            arrivals.arrived(at, seen);
        }
        // Keep what may be the start of a mark split across reads.
        let keep = carry.len().min(MARK.len() - 1);
        carry.drain(..carry.len() - keep);
    }
}

async fn bench(args: &BenchSseArgs) -> anyhow::Result<serde_json::Value> {
    let addr = format!("127.0.0.1:{}", args.port);
    let base = format!("http://{addr}");
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["standalone", "--no-demo"])
        .env("PLOTQ_HTTP_ADDR", &addr)
        .env("RUST_LOG", "error")
        .env(
            "PLOTQ_SSE_CONNECTIONS_PER_CALLER",
            (args.clients + 100).to_string(),
        )
        .env("PLOTQ_MAX_CONNECTIONS", (args.clients + 1_000).to_string())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "plotq did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = plotq_ports::clock::now_ms();
    let samples: Vec<_> = (0..1_000)
        .map(|i| json!({"service": "bench", "metric": "latency_ms", "value": 10 + i % 90, "timestamp": now - 1_000 - i}))
        .collect();
    http.post(format!("{base}/api/v1/metrics"))
        .json(&samples)
        .send()
        .await?
        .error_for_status()?;
    let rss_before = rss_kb(pid);

    // Open every stream, 256 at a time (the listener's backlog).
    let arrivals = std::sync::Arc::new(Arrivals::default());
    let mut opened = 0;
    let open_started = Instant::now();
    while opened < args.clients {
        let batch = (args.clients - opened).min(256);
        let streams = futures::future::try_join_all((0..batch).map(|_| subscribe(&addr))).await?;
        for stream in streams {
            tokio::spawn(read_events(stream, arrivals.clone()));
        }
        opened += batch;
    }
    let open_s = open_started.elapsed().as_secs_f64();
    // Let the server settle its per-stream buffers before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kb(pid);

    // What the events cost each side in CPU (the server's and this bench's, which share
    // the cores): a spread is at least their sum over the cores.
    let server_cpu_before = super::cpu_seconds(&pid.to_string())?;
    let bench_cpu_before = super::cpu_seconds("self")?;
    let mut spreads_ms = Vec::with_capacity(args.clients * args.events);
    let mut firsts_ms = Vec::new();
    for k in 0..args.events {
        arrivals
            .want
            .store(args.clients * (k + 1), Ordering::Relaxed);
        let asked = Instant::now();
        let plot = json!({"kind": "histogram", "service": "bench", "width": 400 + k as u32 * 8});
        http.post(format!("{base}/api/v1/plots"))
            .json(&plot)
            .send()
            .await?
            .error_for_status()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let got = loop {
            let got = arrivals.times.lock().expect("arrivals lock").len();
            let ended = arrivals.ended.load(Ordering::Relaxed);
            anyhow::ensure!(ended == 0, "{ended} client streams closed");
            if got >= args.clients * (k + 1) {
                break got;
            }
            let wait = tokio::time::timeout_at(deadline, arrivals.enough.notified()).await;
            anyhow::ensure!(
                wait.is_ok(),
                "event {k}: {} of {} clients got it within 60 s",
                got - args.clients * k,
                args.clients
            );
        };
        anyhow::ensure!(
            got == args.clients * (k + 1),
            "event {k}: {got} arrivals where {} were expected (a client got an event twice)",
            args.clients * (k + 1)
        );
        let times = arrivals.times.lock().expect("arrivals lock")[args.clients * k..].to_vec();
        let first = *times.iter().min().expect("clients");
        firsts_ms.push(first.duration_since(asked).as_secs_f64() * 1e3);
        spreads_ms.extend(
            times
                .iter()
                .map(|a| a.duration_since(first).as_secs_f64() * 1e3),
        );
    }
    spreads_ms.sort_by(f64::total_cmp);
    let q = |p: f64| spreads_ms[((spreads_ms.len() - 1) as f64 * p).round() as usize];
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let per_event_ms = |before: f64, now: f64| round((now - before) * 1e3 / args.events as f64);
    let server_cpu_ms = per_event_ms(server_cpu_before, super::cpu_seconds(&pid.to_string())?);
    let bench_cpu_ms = per_event_ms(bench_cpu_before, super::cpu_seconds("self")?);
    child.kill().await.ok();
    Ok(json!({
        "clients": args.clients,
        "events": args.events,
        "open_s": round(open_s),
        "server_rss_kb_before": rss_before,
        "server_rss_kb_after": rss_after,
        "server_kb_per_client": round((rss_after.saturating_sub(rss_before)) as f64 / args.clients as f64),
        "spread_after_first_ms": {"p50": round(q(0.5)), "p99": round(q(0.99)), "max": round(q(1.0))},
        "first_after_request_ms": firsts_ms.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        // CPU an event cost (its render included), in ms: the server, and this bench's
        // clients (their reads, the ACKs those send back through the loopback).
        "server_cpu_ms_per_event": server_cpu_ms,
        "bench_cpu_ms_per_event": bench_cpu_ms,
    }))
}
