//! The in-memory store's byte bound at the process boundary: `plotq standalone` with a
//! small `PLOTQ_MEMORY_STORE_MAX_BYTES`, fed batches whose every sample opens a new
//! series (the costliest shape per sample), must refuse with `507 store_full` before
//! the process's resident memory grew past twice the bound, and keep what it accepted.
//! Needs no service: standalone runs on the in-memory ports (Linux: reads `/proc`).

use crate::support::{Plotq, get_json, namespace, wait_ready};
use serde_json::Value;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(30);
/// The store's bound for the test.
const MAX_BYTES: u64 = 64 << 20;
/// Samples (each a new series) per batch: within the default per-batch bucket limit
/// (`PLOTQ_MAX_BATCH_BUCKETS`), as a tenant keeping to the limits would send them.
const BATCH: usize = 1_000;
/// A store that has not refused by then does not count its series honestly.
const MOST_SAMPLES: usize = 2_000_000;

/// `VmRSS` (resident now) and `VmHWM` (peak resident) of process `pid`, in bytes.
fn resident(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/<pid>/status of the plotq process");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A batch of `BATCH` samples, sample `i` in series (`s<first + i>`, `m`).
fn batch(first: usize) -> String {
    let mut body = String::with_capacity(BATCH * 48);
    body.push('[');
    for i in first..first + BATCH {
        if i > first {
            body.push(',');
        }
        body.push_str(&format!(r#"{{"service":"s{i}","metric":"m","value":1.0}}"#));
    }
    body.push(']');
    body
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[tokio::test]
async fn many_new_series_are_refused_before_memory_passes_twice_the_bound() {
    let started = Instant::now();
    let max_bytes = MAX_BYTES.to_string();
    let plotq = Plotq::start(
        &["standalone"],
        &namespace("mem"),
        &[
            ("PLOTQ_MEMORY_STORE_MAX_BYTES", max_bytes.as_str()),
            ("PLOTQ_NO_DEMO", "1"),
            ("PLOTQ_STANDALONE_WORKERS", "1"),
            ("PLOTQ_INGEST_SAMPLES_PER_SEC", "100000000"),
            ("PLOTQ_INGEST_BURST", "100000000"),
            // One line per request would be most of the log.
            ("RUST_LOG", "warn"),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &plotq.url("/readyz"), READY).await;
    let (baseline, _) = resident(plotq.pid());

    let mut sent = 0;
    let refused = loop {
        let r = client
            .post(plotq.url("/api/v1/metrics"))
            .header("content-type", "application/json")
            .body(batch(sent))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let (rss, _) = resident(plotq.pid());
        if status == 507 {
            break body;
        }
        assert_eq!(status, 200, "batch at s{sent}: {body}");
        sent += BATCH;
        let store = get_json(&client, &plotq.url("/readyz")).await["store"].clone();
        // Stop before a store that undercounts takes the machine's memory.
        assert!(
            rss.saturating_sub(baseline) <= 2 * MAX_BYTES,
            "after {sent} series the process grew by {:.1} MiB, over twice the bound of \
             {:.0} MiB, and the store counts {:.1} MiB",
            mib(rss - baseline),
            mib(MAX_BYTES),
            mib(store["bytes"].as_u64().unwrap()),
        );
        assert!(
            sent < MOST_SAMPLES,
            "{sent} new series accepted under a {:.0} MiB bound",
            mib(MAX_BYTES)
        );
    };
    assert_eq!(refused["code"], "store_full", "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PLOTQ_MEMORY_STORE_MAX_BYTES")),
        "{refused}"
    );

    let (rss, peak) = resident(plotq.pid());
    let store = get_json(&client, &plotq.url("/readyz")).await["store"].clone();
    let counted = store["bytes"].as_u64().unwrap();
    eprintln!(
        "refused after {sent} series; RSS grew {:.1} MiB (now), {:.1} MiB (peak); \
         the store counts {:.1} MiB of {:.0} MiB; {:.1} s",
        mib(rss - baseline),
        mib(peak - baseline),
        mib(counted),
        mib(MAX_BYTES),
        started.elapsed().as_secs_f64()
    );
    assert!(
        peak - baseline <= 2 * MAX_BYTES,
        "peak RSS grew {:.1} MiB, over twice the bound",
        mib(peak - baseline)
    );
    assert!(counted <= MAX_BYTES, "{store}");
    // (plotq also stores samples of its own requests.)
    assert!(store["samples"].as_u64().unwrap() >= sent as u64, "{store}");

    // What was accepted before the refusal is all still there.
    for service in ["s0", &format!("s{}", sent - 1)] {
        let stats = get_json(
            &client,
            &plotq.url(&format!(
                "/api/v1/stats?service={service}&metric=m&kind=histogram&window=10m"
            )),
        )
        .await;
        assert_eq!(stats["samples"], 1, "{service}: {stats}");
    }
}
