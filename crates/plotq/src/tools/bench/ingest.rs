//! `plotq bench ingest`: what an ingested sample costs the api, by format. It starts a
//! standalone plotq (this binary, on a free loopback port, with the ingest rate limit
//! out of the way), then sends the same generated requests — `--requests` per body, a
//! latency and a status each — as JSON samples to `/api/v1/metrics` and as OTLP spans
//! (protobuf, one SERVER span per request, as an SDK exports them) to `/v1/traces`,
//! format after format for `--rounds` rounds. The api's CPU time is read from
//! `/proc/<pid>/stat` around each phase, so the figure — samples stored per api
//! core-second — does not depend on how much of the two cores the load generator took.
//! One JSON line: each format's totals and OTLP's rate as a share of JSON's.
//!
//! It measures; it asserts nothing (timings on a shared machine are not tests).

use super::super::generator::{self, Generator};
use crate::config::tools::BenchIngestArgs;
use anyhow::Context;
use plotq_domain::ServiceName;
use plotq_ports::clock::now_ms;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A format's totals over every round.
#[derive(Default)]
struct Totals {
    samples: u64,
    refused: u64,
    wall_s: f64,
    api_cpu_s: f64,
}

impl Totals {
    fn summary(&self) -> Value {
        json!({
            "samples": self.samples,
            "refused_requests": self.refused,
            "samples_per_s": (self.samples as f64 / self.wall_s).round(),
            "api_cpu_s": (self.api_cpu_s * 100.0).round() / 100.0,
            "samples_per_api_core_s": self.per_core_s().round(),
        })
    }

    fn per_core_s(&self) -> f64 {
        self.samples as f64 / self.api_cpu_s.max(1e-9)
    }
}

/// The standalone plotq under load; killed on drop.
struct Standalone {
    child: Child,
    url: String,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Standalone {
    fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(std::env::current_exe()?)
            .args(["standalone", "--http-addr", &format!("127.0.0.1:{port}")])
            .env("PLOTQ_INGEST_SAMPLES_PER_SEC", "1000000000")
            .env("PLOTQ_INGEST_BURST", "1000000000")
            .env("RUST_LOG", "warn")
            .env("PLOTQ_NO_DEMO", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting plotq standalone")?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The api's CPU seconds so far (user + system).
    fn cpu_s(&self) -> anyhow::Result<f64> {
        super::cpu_seconds(&self.child.id().to_string())
    }
}

/// Runs `plotq bench ingest`.
pub fn run(args: &BenchIngestArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(measure(args))?;
    println!("{result}");
    Ok(())
}

async fn measure(args: &BenchIngestArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(args.requests >= 1 && args.connections >= 1 && args.secs >= 1);
    let api = Standalone::start()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", api.url)).send().await
            && r.status().is_success()
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "plotq standalone did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same requests in both formats, each format its own service.
    let bodies = |service: &str, otlp: bool| -> anyhow::Result<Vec<axum::body::Bytes>> {
        let name = ServiceName::parse(service).map_err(anyhow::Error::msg)?;
        let mut generator = Generator::new(&[(name, 40.0)], 7);
        (0..16)
            .map(|i| {
                let samples = generator.requests(now_ms() - i * 1_000, 1_000, args.requests);
                Ok(axum::body::Bytes::from(if otlp {
                    prost::Message::encode_to_vec(&generator::as_otlp_spans(&samples))
                } else {
                    serde_json::to_vec(&generator::as_json(&samples))?
                }))
            })
            .collect()
    };
    let formats = [
        (
            "json",
            "/api/v1/metrics",
            "application/json",
            bodies("bench-json", false)?,
        ),
        (
            "otlp",
            "/v1/traces",
            "application/x-protobuf",
            bodies("bench-otlp", true)?,
        ),
    ];
    let mut totals = [Totals::default(), Totals::default()];
    for _ in 0..args.rounds {
        for (i, (_, path, content_type, bodies)) in formats.iter().enumerate() {
            let url = format!("{}{path}", api.url);
            let cpu_before = api.cpu_s()?;
            let started = Instant::now();
            let (stored, refused) = load(&client, &url, content_type, bodies, args).await;
            totals[i].wall_s += started.elapsed().as_secs_f64();
            totals[i].api_cpu_s += api.cpu_s()? - cpu_before;
            totals[i].samples += stored;
            totals[i].refused += refused;
        }
    }
    Ok(json!({
        "bench": "ingest",
        "requests_per_body": args.requests,
        "samples_per_body": args.requests * 2,
        "connections": args.connections,
        "rounds": args.rounds,
        "secs_per_round": args.secs,
        "json": totals[0].summary(),
        "otlp": totals[1].summary(),
        "otlp_vs_json_per_api_core_s": ((totals[1].per_core_s() / totals[0].per_core_s()) * 1000.0).round() / 1000.0,
    }))
}

/// `--connections` senders posting `bodies` in turn for `--secs`: samples stored, and
/// requests refused.
async fn load(
    client: &reqwest::Client,
    url: &str,
    content_type: &'static str,
    bodies: &[axum::body::Bytes],
    args: &BenchIngestArgs,
) -> (u64, u64) {
    let stored = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.secs);
    let per_body = (args.requests * 2) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let (client, url, stored, refused) = (
            client.clone(),
            url.to_owned(),
            stored.clone(),
            refused.clone(),
        );
        let bodies = bodies.to_vec();
        tasks.spawn(async move {
            let mut i = c;
            while Instant::now() < until {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let ok = client
                    .post(&url)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    stored.fetch_add(per_body, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (
        stored.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}
