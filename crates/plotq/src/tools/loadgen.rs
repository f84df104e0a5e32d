//! `plotq loadgen`: the load producer — sends generated samples (`generator`) to a plotq
//! api over HTTP, the real ingest path. Live mode paces batches at `--rate` samples/s for
//! `--duration`; `--backfill <d>` writes the last `d` of history, oldest first, as fast
//! as the api accepts. `--concurrency` requests are in flight at once. Each batch
//! carries an `Idempotency-Key`, so a retry never stores it twice; a refused batch
//! (429/503/507) is retried after its `Retry-After` (at most 5 s, at most 5 times). The
//! end returns (and `plotq loadgen` prints) one JSON summary (sent, accepted, refused by
//! status, samples/s).

use super::generator::{self, Generator};
use crate::config::tools::LoadgenArgs;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use plotq_domain::ServiceName;
use plotq_ports::clock::now_ms;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What happened to the samples sent.
#[derive(Debug, Default)]
struct Tally {
    accepted: AtomicU64,
    sent: AtomicU64,
    refused: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn refuse(&self, status: String, samples: u64) {
        *self
            .refused
            .lock()
            .expect("tally")
            .entry(status)
            .or_default() += samples;
    }
}

/// One batch to send: `(at_ms, span_ms)` of the requests it holds.
type Slot = (i64, i64);

/// Sends the load `args` describe; the summary (also what `plotq loadgen` prints).
pub async fn run(args: LoadgenArgs) -> anyhow::Result<serde_json::Value> {
    anyhow::ensure!(args.batch >= 2, "--batch must be at least 2");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(args.rate >= 1, "--rate must be at least 1");
    let services: Vec<(ServiceName, f64)> = (0..args.services.max(1))
        .map(|i| {
            let name = ServiceName::parse(&format!("{}{i}", args.service_prefix))
                .map_err(|e| anyhow::anyhow!("--service-prefix: {e}"))?;
            Ok((name, 20.0 + 15.0 * (i % 7) as f64))
        })
        .collect::<anyhow::Result<_>>()?;
    let per_service = (args.batch / 2 / services.len()).max(1);
    let samples_per_batch = (per_service * services.len() * 2) as u64;
    // The time a batch covers at the target rate.
    let span_ms = ((samples_per_batch as f64 / args.rate as f64) * 1000.0).max(1.0) as i64;
    let now = now_ms();
    let (first_ms, batches) = match args.backfill {
        Some(back) => {
            let back_ms = back.as_millis() as i64;
            (now - back_ms + span_ms, (back_ms / span_ms).max(1) as u64)
        }
        None => {
            let total = args.rate as f64 * args.duration.as_secs_f64();
            (
                now,
                (total / samples_per_batch as f64).ceil().max(1.0) as u64,
            )
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let path = if args.otlp {
        "/v1/traces"
    } else {
        "/api/v1/metrics"
    };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let otlp = args.otlp;
    let generator = Arc::new(Mutex::new(Generator::new(&services, args.seed)));
    let tally = Arc::new(Tally::default());
    let bar = ProgressBar::new(batches * samples_per_batch);
    if args.quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} samples ({per_sec}, ETA {eta}) {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    // Every batch carries `Idempotency-Key: <run>-<batch>`, so its retries are stored once.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url, generator, tally, bar, next) = (
            client.clone(),
            url.clone(),
            generator.clone(),
            tally.clone(),
            bar.clone(),
            next.clone(),
        );
        let token = args.token.clone();
        let run = run.clone();
        let live = args.backfill.is_none();
        let batch_every = Duration::from_millis(span_ms as u64);
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches {
                    break;
                }
                let slot: Slot = if live {
                    // Live: batch i is due i·span after the start.
                    let due = started + batch_every * i as u32;
                    tokio::time::sleep_until(due.into()).await;
                    (now_ms(), span_ms)
                } else {
                    (first_ms + i as i64 * span_ms, span_ms)
                };
                let body = {
                    let samples = generator.lock().await.requests(slot.0, slot.1, per_service);
                    // Shared, not copied, by every retry of the batch.
                    axum::body::Bytes::from(if otlp {
                        prost::Message::encode_to_vec(&generator::as_otlp_spans(&samples))
                    } else {
                        serde_json::to_vec(&generator::as_json(&samples))
                            .expect("samples serialise")
                    })
                };
                let key = format!("{run}-{i}");
                let body = Body {
                    bytes: body,
                    content_type: if otlp {
                        "application/x-protobuf"
                    } else {
                        "application/json"
                    },
                    key: (!otlp).then_some(key),
                };
                send(
                    &client,
                    &url,
                    token.as_deref(),
                    &body,
                    samples_per_batch,
                    &tally,
                )
                .await;
                bar.inc(samples_per_batch);
                bar.set_message(refused_message(&tally));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a loadgen task failed")?;
    }
    bar.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let summary = serde_json::json!({
        "mode": if args.backfill.is_some() { "backfill" } else { "live" },
        "services": services.len(),
        "batch": samples_per_batch,
        "concurrency": args.concurrency,
        "sent": tally.sent.load(Ordering::Relaxed),
        "accepted": accepted,
        "refused": *tally.refused.lock().expect("tally"),
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "accepted_per_sec": (accepted as f64 / elapsed).round(),
    });
    Ok(summary)
}

fn refused_message(tally: &Tally) -> String {
    let refused = tally.refused.lock().expect("tally");
    if refused.is_empty() {
        String::new()
    } else {
        format!("refused: {refused:?}")
    }
}

/// One batch as sent: its bytes, their type, and its `Idempotency-Key` (JSON only).
struct Body {
    bytes: axum::body::Bytes,
    content_type: &'static str,
    key: Option<String>,
}

/// Posts one batch; retries a refusal that says when to come back.
async fn send(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Body,
    samples: u64,
    tally: &Tally,
) {
    for attempt in 0..=5 {
        tally.sent.fetch_add(samples, Ordering::Relaxed);
        let mut request = client
            .post(url)
            .header("content-type", body.content_type)
            .body(body.bytes.clone());
        if let Some(key) = &body.key {
            request = request.header("idempotency-key", key);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => {
                tally.accepted.fetch_add(samples, Ordering::Relaxed);
                return;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                tally.refuse(status.to_string(), samples);
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                match retry_after {
                    Some(secs) if attempt < 5 && matches!(status, 429 | 503 | 507) => {
                        tokio::time::sleep(Duration::from_secs(secs.min(5))).await;
                    }
                    _ => return,
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else {
                    "connection"
                };
                tally.refuse(kind.to_owned(), samples);
                return;
            }
        }
    }
}
