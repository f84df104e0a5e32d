//! plotq observing itself, against the real services: every role's `/metrics` parsed
//! by the reference Prometheus parser (Python's `prometheus_client`) with its key
//! series moving by exactly the known workload; `Server-Timing` on API responses; and
//! plotq plotting its own request durations (N requests → a histogram of N samples).

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const READY: Duration = Duration::from_secs(30);
const DONE: Duration = Duration::from_secs(60);

/// One parsed sample of an exposition.
#[derive(Debug, Clone)]
struct PromSample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every sample of `url`'s exposition, parsed by `prometheus_client` (which fails the
/// test on anything it cannot parse, or on a repeated family or series).
async fn scrape(client: &reqwest::Client, url: &str) -> Vec<PromSample> {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = r.text().await.unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/prometheus/parse.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse {url}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            PromSample {
                name: v["name"].as_str().unwrap().to_owned(),
                labels: v["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The value of the series `name` whose labels include `labels` (0 when absent).
fn value(samples: &[PromSample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    matching.iter().map(|s| s.value).sum()
}

fn has(samples: &[PromSample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_roles_metrics_parse_and_move_with_the_workload() {
    require_services();
    let ns = namespace("prom");
    let api = Plotq::start(&["api"], &ns, &[]);
    let worker = Plotq::start(&["worker"], &ns, &[]);
    let notifier = Plotq::start(&["notifier"], &ns, &[]);
    let client = reqwest::Client::new();
    for role in [&api, &worker, &notifier] {
        wait_ready(&client, &role.url("/readyz"), READY).await;
    }
    ingest(&client, &api, "promsvc", 200).await;

    let before = [
        scrape(&client, &api.url("/metrics")).await,
        scrape(&client, &worker.url("/metrics")).await,
        scrape(&client, &notifier.url("/metrics")).await,
    ];
    for samples in &before {
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_threads",
        ] {
            assert!(has(samples, name), "{name} missing");
        }
        assert!(value(samples, "process_resident_memory_bytes", &[]) > 1e6);
    }
    for (samples, deps) in [
        (&before[0], &["mongodb", "rabbitmq", "redis"][..]),
        (&before[1], &["mongodb", "rabbitmq", "redis"][..]),
        (&before[2], &["rabbitmq", "redis"][..]),
    ] {
        for dep in deps {
            assert_eq!(
                value(samples, "plotq_dependency_up", &[("dependency", dep)]),
                1.0,
                "{dep} up"
            );
        }
    }

    // N requests → the counter of their route and status moves by exactly N, and so
    // does the duration histogram's count.
    const N: usize = 7;
    for _ in 0..N {
        let r = client
            .get(api.url("/api/v1/services"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut sse = subscribe(&notifier.url("/api/v1/events"), None).await;
    let id = request_plot(
        &client,
        &api,
        &json!({"kind": "histogram", "service": "promsvc"}),
    )
    .await;
    sse.next_matching(DONE, |e| {
        e.event == "plot.ready" && e.data["id"] == id.as_str()
    })
    .await;

    let after = [
        scrape(&client, &api.url("/metrics")).await,
        scrape(&client, &worker.url("/metrics")).await,
        scrape(&client, &notifier.url("/metrics")).await,
    ];
    let services = [
        ("route", "/api/v1/services"),
        ("method", "GET"),
        ("status", "200"),
    ];
    for name in [
        "plotq_http_requests_total",
        "plotq_http_request_duration_seconds_count",
    ] {
        assert_eq!(
            value(&after[0], name, &services) - value(&before[0], name, &services),
            N as f64,
            "{name}"
        );
    }
    let plots = [
        ("route", "/api/v1/plots"),
        ("method", "POST"),
        ("status", "202"),
    ];
    assert_eq!(
        value(&after[0], "plotq_http_requests_total", &plots)
            - value(&before[0], "plotq_http_requests_total", &plots),
        1.0
    );
    // One render → each stage histogram's count +1, one job done.
    for stage in ["queue_wait", "query", "render", "encode", "store", "total"] {
        let labels = [("stage", stage)];
        assert_eq!(
            value(&after[1], "plotq_job_stage_seconds_count", &labels)
                - value(&before[1], "plotq_job_stage_seconds_count", &labels),
            1.0,
            "stage {stage}"
        );
    }
    let done = [("kind", "histogram"), ("outcome", "done")];
    assert_eq!(
        value(&after[1], "plotq_jobs_total", &done) - value(&before[1], "plotq_jobs_total", &done),
        1.0
    );
    // The notifier: one SSE client connected, and the ready event sent to it.
    assert_eq!(value(&after[2], "plotq_sse_clients", &[]), 1.0);
    assert!(
        value(
            &after[2],
            "plotq_sse_events_sent_total",
            &[("event", "plot.ready")]
        ) - value(
            &before[2],
            "plotq_sse_events_sent_total",
            &[("event", "plot.ready")]
        ) >= 1.0
    );
    // No label carries a job id or a raw path.
    for samples in &after {
        for s in samples {
            for v in s.labels.values() {
                assert!(!v.contains(&id), "{} carries the job id", s.name);
            }
        }
    }

    // The health report of a role with real dependencies names them with round trips.
    let health = get_json(&client, &api.url("/api/v1/health")).await;
    for dep in health["dependencies"].as_array().unwrap() {
        assert_eq!(dep["status"], "ok", "{health}");
        assert!(dep["rtt_ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(health["dependencies"].as_array().unwrap().len(), 3);
    assert!(health["requests"]["total"].as_u64().unwrap() > N as u64);
    drop(sse);
    cleanup(&ns).await;
}

/// The `Server-Timing` header's parts, by name: `(description, milliseconds)`.
fn server_timing(r: &reqwest::Response) -> BTreeMap<String, (Option<String>, f64)> {
    let raw = r
        .headers()
        .get("server-timing")
        .expect("a Server-Timing header")
        .to_str()
        .unwrap();
    raw.split(", ")
        .map(|part| {
            let mut fields = part.split(';');
            let name = fields.next().unwrap().to_owned();
            let (mut desc, mut dur) = (None, f64::NAN);
            for f in fields {
                if let Some(d) = f.strip_prefix("desc=") {
                    desc = Some(d.trim_matches('"').to_owned());
                } else if let Some(d) = f.strip_prefix("dur=") {
                    dur = d.parse().unwrap();
                }
            }
            assert!(dur.is_finite() && dur >= 0.0, "{raw}");
            (name, (desc, dur))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_responses_say_where_their_time_went() {
    require_services();
    let ns = namespace("stiming");
    let api = Plotq::start(&["api"], &ns, &[]);
    let _worker = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;

    let r = client
        .post(api.url("/api/v1/metrics"))
        .json(&samples("timed", 100, 60_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = server_timing(&r);
    assert!(t.contains_key("db"), "ingest writes to MongoDB: {t:?}");
    assert!(t.contains_key("total"));

    let r = client
        .post(api.url("/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "timed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let t = server_timing(&r);
    assert!(t.contains_key("broker") && t.contains_key("cache"), "{t:?}");
    let id = job_id(r).await;
    let done = wait_status(&client, &api, &id, DONE, |s| s["status"] == "done").await;

    let r = client
        .get(api.url(&format!("/api/v1/plots/{id}")))
        .send()
        .await
        .unwrap();
    let t = server_timing(&r);
    // The job's stages, as the worker measured them, beside the request's own parts.
    let stages = &done["timings"];
    for stage in ["queue_wait", "query", "render", "encode", "store", "total"] {
        let part = format!("job-{}", stage.replace('_', "-"));
        let (_, ms) = t.get(&part).unwrap_or_else(|| panic!("{part} in {t:?}"));
        assert!(
            (ms - stages[stage].as_f64().unwrap()).abs() < 0.01,
            "{part}: {ms} vs {stages}"
        );
    }

    let r = client
        .get(api.url(&format!("/api/v1/plots/{id}/png")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = server_timing(&r);
    assert_eq!(t["cache"].0.as_deref(), Some("hit"), "{t:?}");
    assert!(t["total"].1 >= t["cache"].1);
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plotq_plots_its_own_request_durations() {
    require_services();
    let ns = namespace("selfplot");
    // The api under observation keeps its samples under `self-<n>`; plots are asked of
    // a second api that keeps none, so the asking is not part of what is counted.
    let service = format!("self-{}", &ns[ns.len() - 6..]);
    let observed = Plotq::start(&["api"], &ns, &[("PLOTQ_SELF_SERVICE", service.as_str())]);
    let asker = Plotq::start(&["api"], &ns, &[("PLOTQ_SELF_SERVICE", "off")]);
    let _worker = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    // Readiness polls are probes: neither counted nor stored.
    wait_ready(&client, &observed.url("/readyz"), READY).await;
    wait_ready(&client, &asker.url("/readyz"), READY).await;

    const N: u64 = 40;
    let mut statuses = BTreeMap::new();
    for i in 0..N {
        let path = if i % 4 == 0 {
            "/api/v1/plots/00000000-0000-7000-8000-000000000000"
        } else {
            "/api/v1/services"
        };
        let r = client.get(observed.url(path)).send().await.unwrap();
        *statuses
            .entry(r.status().as_u16().to_string())
            .or_insert(0u64) += 1;
    }
    assert_eq!(statuses.values().sum::<u64>(), N);

    // The samples are written in batches off the request path: wait (with a deadline)
    // until a plot counts them all, then check it counts exactly those.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let id = post_plot(
            &client,
            &asker.url(""),
            &json!({"kind": "histogram", "service": service, "metric": "http_request_duration_ms"}),
        )
        .await;
        let state = wait_status(&client, &asker, &id, DONE, |s| {
            s["status"] == "done" || s["status"] == "failed"
        })
        .await;
        if state["n_samples"] == N {
            break (id, state);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plotq's own samples did not reach {N}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (id, state) = done;
    assert_eq!(state["stats"][0]["count"], N);
    assert!(state["stats"][0]["min"].as_f64().unwrap() > 0.0);
    let png = client
        .get(asker.url(&format!("/api/v1/plots/{id}/png")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (w, h) = decode_png(&png);
    assert!(w > 0 && h > 0);

    // The status codes it answered, as a status-code plot of itself counts them.
    let id = post_plot(
        &client,
        &asker.url(""),
        &json!({"kind": "status_codes", "service": service}),
    )
    .await;
    let state = wait_status(&client, &asker, &id, DONE, |s| s["status"] == "done").await;
    assert_eq!(state["n_samples"], N, "{state}");
    let codes = &state["stats"][0]["codes"];
    for (code, n) in &statuses {
        assert_eq!(codes[code], *n, "{state}");
    }
    cleanup(&ns).await;
}
