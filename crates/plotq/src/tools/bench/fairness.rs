//! `plotq bench fairness`: what one tenant at its full plot rate does to another
//! tenant's latencies, measured against a running api (standalone or distributed) over
//! HTTP, the path a dashboard takes.
//!
//! The quiet tenant fetches, once a second, a cached image (a past range, rendered once
//! at the start) and a fresh render (a plot nobody asked for before), each through
//! `GET /api/v1/render`, which answers with the image once it is drawn. First alone (its
//! baseline), then while the busy tenant asks for distinct renders at `--busy-rate` per
//! second. It prints one JSON line: each phase's p50/p99/max per request kind and the
//! statuses seen, and the quiet tenant's p99 ratios together / alone.
//!
//! It measures; it asserts nothing (timings on a shared machine are not tests).

use crate::config::tools::BenchFairnessArgs;
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one kind of request saw: latencies of the images, and every status.
#[derive(Default)]
struct Seen {
    ms: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
}

impl Seen {
    fn record(&mut self, status: u16, ms: f64) {
        *self.statuses.entry(status).or_default() += 1;
        if status == 200 || status == 304 {
            self.ms.push(ms);
        }
    }

    fn summary(&self) -> Value {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| -> Value {
            if ms.is_empty() {
                return Value::Null;
            }
            let i = ((ms.len() - 1) as f64 * q).round() as usize;
            json!((ms[i] * 10.0).round() / 10.0)
        };
        json!({
            "images": ms.len(),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": at(1.0),
            "statuses": self.statuses,
        })
    }

    fn p99(&self) -> Option<f64> {
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        (!ms.is_empty()).then(|| ms[((ms.len() - 1) as f64 * 0.99).round() as usize])
    }
}

struct Bench {
    client: reqwest::Client,
    url: String,
    busy: String,
    quiet: String,
    /// The cached image's query (a past range of the bench's service).
    cached: String,
    /// Makes every fresh plot new (a distinct title).
    run: String,
    /// The plot kind asked for.
    kind: String,
}

impl Bench {
    /// One `GET /api/v1/render?query` as `token`: its status and milliseconds.
    async fn render(&self, token: &str, query: &str) -> (u16, f64) {
        let started = Instant::now();
        let status = match self
            .client
            .get(format!("{}/api/v1/render?{query}", self.url))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                // The whole image, as a browser would read it.
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        };
        (status, started.elapsed().as_secs_f64() * 1000.0)
    }

    /// The quiet tenant for `secs` seconds: a cached and a fresh image each second.
    async fn quiet_tenant(&self, secs: u64, phase: &str) -> (Seen, Seen) {
        let (mut cached, mut fresh) = (Seen::default(), Seen::default());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for i in 0..secs {
            tick.tick().await;
            let (status, ms) = self.render(&self.quiet, &self.cached).await;
            cached.record(status, ms);
            let query = format!(
                "kind={}&service=bench&window=10m&width=800&height=450&title=quiet-{}-{phase}-{i}",
                self.kind, self.run
            );
            let (status, ms) = self.render(&self.quiet, &query).await;
            fresh.record(status, ms);
        }
        (cached, fresh)
    }

    /// The busy tenant at `rate` distinct renders a second until `stop`.
    async fn busy_tenant(
        self: Arc<Self>,
        rate: u32,
        stop: tokio_util::sync::CancellationToken,
    ) -> Seen {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
        let mut tasks = tokio::task::JoinSet::new();
        let mut i = 0u64;
        while !stop.is_cancelled() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            i += 1;
            let (bench, seen) = (self.clone(), seen.clone());
            tasks.spawn(async move {
                let query = format!(
                    "kind={}&service=bench&window=10m&width=800&height=450&title=busy-{}-{i}",
                    bench.kind, bench.run
                );
                let (status, ms) = bench.render(&bench.busy, &query).await;
                seen.lock().expect("seen lock").record(status, ms);
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        Arc::try_unwrap(seen)
            .ok()
            .map(|m| m.into_inner().expect("seen lock"))
            .unwrap_or_default()
    }
}

pub fn run(args: &BenchFairnessArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(args))
}

async fn measure(args: &BenchFairnessArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let url = args.url.trim_end_matches('/').to_owned();
    let now = plotq_ports::clock::now_ms();
    // Ten minutes of latencies for the bench's service (sent by the busy tenant), in
    // batches the api takes.
    let n = args.samples.max(1);
    for first in (0..n).step_by(40_000) {
        let samples: Vec<Value> = (first..(first + 40_000).min(n))
            .map(|i| {
                json!({"service": "bench", "metric": "latency_ms",
                    "value": 5.0 + f64::from(i % 97) + f64::from(i % 13) * 0.37,
                    "timestamp": now - 600_000 + i64::from(i) * 600_000 / i64::from(n)})
            })
            .collect();
        let response = client
            .post(format!("{url}/api/v1/metrics"))
            .bearer_auth(&args.busy_token)
            .json(&samples)
            .send()
            .await
            .context("cannot reach the api")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "ingest refused: HTTP {status} {}",
            text.chars().take(300).collect::<String>()
        );
    }
    let bench = Arc::new(Bench {
        client,
        url,
        busy: args.busy_token.clone(),
        quiet: args.quiet_token.clone(),
        cached: format!(
            "kind={}&service=bench&from={}&until={}&width=800&height=450",
            args.kind,
            now - 540_000,
            now - 60_000
        ),
        run: format!("{:x}", rand::random::<u32>()),
        kind: args.kind.clone(),
    });
    // The cached image is rendered once, before anything is measured.
    let (status, _) = bench.render(&bench.quiet, &bench.cached).await;
    anyhow::ensure!(
        status == 200,
        "the cached image did not render: HTTP {status}"
    );

    let (alone_cached, alone_fresh) = bench.quiet_tenant(args.alone.as_secs(), "alone").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let busy = tokio::spawn(bench.clone().busy_tenant(args.busy_rate, stop.clone()));
    // Let the busy tenant reach its steady state before measuring beside it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (together_cached, together_fresh) = bench
        .quiet_tenant(args.together.as_secs(), "together")
        .await;
    stop.cancel();
    let busy = busy.await?;
    let ratio = |together: &Seen, alone: &Seen| match (together.p99(), alone.p99()) {
        (Some(t), Some(a)) if a > 0.0 => json!((t / a * 100.0).round() / 100.0),
        _ => Value::Null,
    };
    println!(
        "{}",
        json!({
            "bench": "fairness",
            "url": bench.url,
            "busy_rate_per_s": args.busy_rate,
            "samples": n,
            "kind": bench.kind,
            "alone": {"cached": alone_cached.summary(), "fresh": alone_fresh.summary()},
            "together": {
                "cached": together_cached.summary(),
                "fresh": together_fresh.summary(),
                "busy": busy.summary(),
            },
            "quiet_p99_ratio": {
                "cached": ratio(&together_cached, &alone_cached),
                "fresh": ratio(&together_fresh, &alone_fresh),
            },
        })
    );
    Ok(())
}
