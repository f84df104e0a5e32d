//! End-to-end: ingest → queue → render → cache → notify, with the real roles started in
//! process (`support::app::TestApp`): api, workers and notifiers against real RabbitMQ,
//! Redis and the MongoDB-wire server; the flow, the fan-out to two notifiers and live
//! refresh again on a 3-master Redis Cluster; and the same flow against standalone over
//! the in-memory ports. Where the process boundary is the point (kill -9, SIGTERM, restarts)
//! the suites `e2e_faults.rs` and `e2e_restarts.rs` start `plotq` processes.

use crate::support::app::{Backend, Options, TestApp};
use crate::support::{decode_png, get_json, post_samples, samples, subscribe, wait_ready};
use clap::Parser;
use serde_json::{Value, json};
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);
const RENDER: Duration = Duration::from_secs(60);

/// The user-visible flow, against an API base URL and an SSE URL.
async fn exercise(api: &str, events: &str, n_samples: usize) {
    let client = reqwest::Client::new();
    let mut sse = subscribe(events, None).await;

    // Ingest in batches; every batch is acknowledged with its count.
    let all = samples("checkout", n_samples, 5 * 60 * 1000);
    for batch in all.chunks(2_000) {
        post_samples(&client, api, batch).await;
    }

    // A plot request is answered at once with a job id and a Location.
    let r = client
        .post(format!("{api}/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "checkout", "metric": "latency_ms", "window": "10m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["status"], "queued");
    assert_eq!(location, format!("/api/v1/plots/{id}"));

    // plot.ready arrives over SSE, naming the PNG.
    let ready = sse
        .next_matching(RENDER, |e| e.data["id"] == id.as_str())
        .await;
    assert_eq!(ready.event, "plot.ready");
    assert!(ready.id.is_some(), "every event carries an id");
    assert_eq!(ready.data["service"], "checkout");
    assert_eq!(ready.data["metric"], "latency_ms");
    assert_eq!(ready.data["kind"], "histogram");
    let png_url = ready.data["png_url"].as_str().unwrap().to_owned();
    assert_eq!(png_url, format!("/api/v1/plots/{id}/png"));

    let status = get_json(&client, &format!("{api}{location}")).await;
    assert_eq!(status["status"], "done");
    assert_eq!(status["n_samples"], n_samples);

    let r = client.get(format!("{api}{png_url}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    assert_eq!(decode_png(&png), (1000, 600));

    // No samples in the window: the job ends failed with the no-data reason of the Python prototype, once.
    let r = client
        .post(format!("{api}/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let ghost: Value = r.json().await.unwrap();
    let ghost_id = ghost["id"].as_str().unwrap().to_owned();
    let failed = sse
        .next_matching(RENDER, |e| e.data["id"] == ghost_id.as_str())
        .await;
    assert_eq!(failed.event, "plot.failed");
    assert_eq!(
        failed.data["error"],
        "no data for ghost/latency_ms in the last 10m"
    );
    let status: Value = client
        .get(format!("{api}/api/v1/plots/{ghost_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "failed");
    assert_eq!(
        status["error"],
        "no data for ghost/latency_ms in the last 10m"
    );
    let r = client
        .get(format!("{api}/api/v1/plots/{ghost_id}/png"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);

    // Unknown ids are 404 with a problem body.
    let r = client
        .get(format!("{api}/api/v1/plots/{}", uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Bad requests are rejected field by field, and nothing is queued for them.
    let r = client
        .post(format!("{api}/api/v1/plots"))
        .json(&json!({"kind": "pie", "service": "checkout", "width": 99999}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["/kind", "/width"]);
}

/// Runs `exercise` against a fresh app over `backend` with `options`.
async fn renders_and_notifies(backend: Backend, options: Options) {
    let app = TestApp::spawn_with(backend, options).await;
    app.wait_ready(READY).await;
    exercise(&app.api, &app.notifier_url(0, "/api/v1/events"), 10_000).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_roles_render_and_notify() {
    renders_and_notifies(Backend::Real, Options::default()).await;
}

/// The same flow with every role on the 3-master Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_roles_render_and_notify_on_a_redis_cluster() {
    let on_cluster = Options {
        redis_cluster: true,
        ..Options::default()
    };
    renders_and_notifies(Backend::Real, on_cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_renders_and_notifies() {
    renders_and_notifies(Backend::Memory, Options::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notifier_replica_sees_every_event() {
    fan_out(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notifier_replica_sees_every_event_on_a_redis_cluster() {
    fan_out(true).await;
}

/// Two notifiers relay the same bus event, and replay it on reconnect.
async fn fan_out(redis_cluster: bool) {
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 1,
            notifiers: 2,
            redis_cluster,
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let mut s1 = app.events_on(0, "").await;
    let mut s2 = app.events_on(1, "?service=fanout").await;
    app.ingest("fanout", 500).await;
    let id = app
        .request_plot(
            &json!({"kind": "histogram", "service": "fanout", "width": 400, "height": 250}),
        )
        .await
        .to_string();
    let e1 = s1
        .next_matching(RENDER, |e| e.data["id"] == id.as_str())
        .await;
    let e2 = s2
        .next_matching(RENDER, |e| e.data["id"] == id.as_str())
        .await;
    assert_eq!(e1.id, e2.id, "both replicas relay the same bus event");

    // A client that missed the event gets it on reconnect with Last-Event-ID.
    let before: String = {
        let first = plotq_domain::EventId::parse(e1.id.as_deref().unwrap()).unwrap();
        plotq_domain::EventId {
            ms: first.ms - 1,
            seq: 0,
        }
        .to_string()
    };
    let mut resumed = subscribe(&app.notifier_url(1, "/api/v1/events"), Some(&before)).await;
    let replayed = resumed
        .next_matching(Duration::from_secs(10), |e| e.data["id"] == id.as_str())
        .await;
    assert_eq!(replayed.id, e1.id);
    app.stop().await;
}

/// Every other kind through the distributed pipeline (timestamps come back from
/// MongoDB), including a comparison and an SVG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_renders_through_the_pipeline() {
    let app = TestApp::ready(Backend::Real, Options::workers(1), READY).await;
    let client = &app.client;
    let mut sse = app.events().await;
    let mut batch = samples("checkout", 3_000, 10 * 60 * 1000);
    batch.extend(samples("payments", 3_000, 10 * 60 * 1000));
    for (i, s) in samples("checkout", 2_000, 10 * 60 * 1000)
        .into_iter()
        .enumerate()
    {
        let mut s = s;
        s["metric"] = json!("status_code");
        s["value"] = json!([200, 200, 200, 201, 404, 500, 503][i % 7]);
        batch.push(s);
    }
    app.ingest_samples(&batch).await;
    let requests = [
        json!({"kind": "latency_timeseries", "service": "checkout", "show_max": true}),
        json!({"kind": "throughput", "service": "checkout", "theme": "dark"}),
        json!({"kind": "status_codes", "service": "checkout"}),
        json!({"kind": "error_rate", "service": "checkout"}),
        json!({"kind": "heatmap", "service": "checkout", "width": 400, "height": 250}),
        json!({"kind": "cdf", "services": ["checkout", "payments"], "log_x": true}),
        json!({"kind": "histogram", "service": "checkout", "format": "svg"}),
    ];
    for request in requests {
        let id = app.request_plot(&request).await.to_string();
        let event = sse
            .next_matching(RENDER, |e| e.data["id"] == id.as_str())
            .await;
        assert_eq!(event.event, "plot.ready", "{request}: {:?}", event.data);
        let image_url = event.data["image_url"].as_str().unwrap().to_owned();
        let r = client.get(app.url(&image_url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = r.bytes().await.unwrap();
        if request["format"] == "svg" {
            assert_eq!(content_type, "image/svg+xml");
            assert!(bytes.starts_with(b"<svg"));
            let png = app.get(&format!("/api/v1/plots/{id}/png")).await;
            assert_eq!(png.status(), 409, "an SVG plot has no PNG");
        } else {
            assert_eq!(content_type, "image/png");
            let want = (
                request["width"].as_u64().unwrap_or(1000) as u32,
                request["height"].as_u64().unwrap_or(600) as u32,
            );
            assert_eq!(decode_png(&bytes), want, "{request}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_failing_dependency_and_nothing_is_accepted() {
    // An api alone, with Redis on a port where nothing listens.
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 0,
            notifiers: 0,
            api: vec![
                "--redis-url",
                "redis://127.0.0.1:1",
                "--dependency-timeout-secs",
                "1",
            ],
            ..Options::default()
        },
    )
    .await;
    let client = &app.client;
    wait_ready(client, &app.url("/healthz"), READY).await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "failing");
    assert_eq!(body["checks"]["rabbitmq"], "ok");
    assert_eq!(body["checks"]["mongodb"], "ok");
    assert_eq!(body["failing"][0]["dependency"], "redis");
    let r = client
        .post(app.url("/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "checkout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    app.stop().await;
}

/// Live refresh through the distributed roles: a watched view is rendered for its first
/// viewer, re-rendered when its series gets new samples, and a new viewer gets its
/// current image at once; a view nobody watches is never rendered, though its series
/// gets samples too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_views_refresh_and_unwatched_ones_do_not() {
    live_refresh(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_views_refresh_on_a_redis_cluster() {
    live_refresh(true).await;
}

async fn live_refresh(redis_cluster: bool) {
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 1,
            notifier: vec!["--refresh-debounce-secs", "1"],
            redis_cluster,
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let client = &app.client;
    app.ingest("watched", 300).await;
    app.ingest("unwatched", 300).await;
    let watched = "watched/histogram/10m/light/640x360";
    let unwatched = "unwatched/histogram/10m/light/640x360";
    // Everything on the bus, to prove the absence of the unwatched view's jobs.
    let mut all = app.events().await;
    let mut viewer = app.events_on(0, &format!("?views={watched}")).await;

    let first = viewer
        .next_matching(RENDER, |e| e.event == "plot.ready")
        .await;
    assert_eq!(first.data["view"], watched);
    assert_eq!(
        decode_png(
            &client
                .get(app.url(first.data["png_url"].as_str().unwrap()))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        ),
        (640, 360)
    );

    // New samples for the watched series: a newer render follows (after the debounce).
    app.ingest("watched", 100).await;
    app.ingest("unwatched", 100).await;
    let second = viewer
        .next_matching(RENDER, |e| {
            e.event == "plot.ready" && e.data["id"] != first.data["id"]
        })
        .await;
    assert!(second.data["at_ms"].as_i64() > first.data["at_ms"].as_i64());

    // A second viewer gets the current image at once, before any new render.
    let mut late = app.events_on(0, &format!("?views={watched}")).await;
    let current = late
        .next_matching(Duration::from_secs(5), |e| e.event == "plot.ready")
        .await;
    assert_eq!(current.data["id"], second.data["id"]);

    // Over the whole exchange the unwatched view was never queued or rendered.
    let seen = all.collect_for(Duration::from_millis(200)).await;
    assert!(
        seen.iter().any(|e| e.data["view"] == watched),
        "the observer saw the watched view's events"
    );
    assert!(
        seen.iter()
            .all(|e| e.data["view"] != unwatched && e.data["service"] != "unwatched"),
        "a view with no subscribers must not be rendered"
    );
    app.stop().await;
}

/// `plotq loadgen --backfill` through the distributed roles' api: every sample sent is
/// accepted, and a long window drawn from rollups counts exactly the latencies written,
/// with the percentiles of the generator's distribution (lognormal, median 20 ms,
/// σ 0.45), as a short window drawn from raw samples has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_backfills_history_that_plots_whole() {
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            // Windows of more than 10,000 samples are drawn from rollups.
            worker: vec!["--raw-max-samples", "10000"],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let prefix = format!("lg-{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let command = plotq::config::Cli::try_parse_from([
        "plotq",
        "loadgen",
        "--url",
        &app.api,
        "--backfill",
        "10m",
        "--rate",
        "100",
        "--batch",
        "500",
        "--concurrency",
        "4",
        "--service-prefix",
        &prefix,
        "--quiet",
    ])
    .unwrap()
    .into_command();
    let plotq::config::Command::Loadgen(args) = command else {
        panic!("loadgen parses as loadgen");
    };
    let summary = plotq::loadgen::run(args).await.unwrap();
    // 10 minutes at 100 samples/s, half of them latencies.
    assert_eq!(summary["sent"], 60_000, "{summary}");
    assert_eq!(summary["accepted"], 60_000, "{summary}");
    assert_eq!(summary["refused"], json!({}), "{summary}");
    let service = format!("{prefix}0");
    let plot = |window: &str| json!({"kind": "histogram", "service": service, "window": window});
    let long = app
        .wait_done(app.request_plot(&plot("15m")).await, RENDER)
        .await;
    assert_eq!(long["status"], "done", "{long}");
    assert_eq!(long["source"]["kind"], "rollups", "{long}");
    assert_eq!(long["n_samples"], 30_000, "{long}");
    // At most one rollup document a minute per label set (loadgen's requests carry
    // 4 routes × 2 methods), never one per sample.
    assert!(long["documents_read"].as_u64().unwrap() <= 16 * 8, "{long}");
    let short = app
        .wait_done(app.request_plot(&plot("1m")).await, RENDER)
        .await;
    assert_eq!(short["source"]["kind"], "exact", "{short}");
    for state in [&long, &short] {
        let stats = &state["stats"][0];
        let (p50, p95) = (
            stats["p50"].as_f64().unwrap(),
            stats["p95"].as_f64().unwrap(),
        );
        assert!((p50 / 20.0 - 1.0).abs() < 0.1, "p50 {p50}: {state}");
        // exp(1.645 × 0.45) × 20 ms ≈ 41.9 ms.
        assert!((p95 / 41.9 - 1.0).abs() < 0.15, "p95 {p95}: {state}");
    }
    assert_eq!(long["stats"][0]["count"], 30_000, "{long}");
    app.stop().await;
}

/// `GET /api/v1/stats` reads the window the workers draw: exact numbers of known samples,
/// per kind, and the very numbers a rendered histogram's job state and `plot.ready`
/// event carry, with where the job's time went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_answer_the_numbers_a_rendered_plot_carries() {
    let app = TestApp::ready(Backend::Real, Options::workers(1), READY).await;
    let service = format!("stats-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // 600 latencies over the last two minutes, halves of whole numbers (sums are exact),
    // and 100 status codes: 86 × 200, 10 × 503, 4 × 404.
    let latencies: Vec<f64> = (0..600).map(|i| 1.5 + f64::from(i % 97) * 0.5).collect();
    let mut batch: Vec<Value> = latencies
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"service": service, "metric": "latency_ms", "value": v,
                "timestamp": now - 1_000 - i as i64 * 200})
        })
        .collect();
    batch.extend((0..100).map(|i| {
        let code = if i % 10 == 0 {
            503
        } else if i % 25 == 1 {
            404
        } else {
            200
        };
        json!({"service": service, "metric": "status_code", "value": code,
            "timestamp": now - 1_000 - i * 1_000})
    }));
    app.ingest_samples(&batch).await;
    let sent_codes: std::collections::BTreeMap<String, u64> =
        batch[600..]
            .iter()
            .fold(std::collections::BTreeMap::new(), |mut m, s| {
                *m.entry(s["value"].to_string()).or_default() += 1;
                m
            });
    let sent_errors = sent_codes.get("503").copied().unwrap_or(0);

    let stats = get_json(
        &app.client,
        &app.url(&format!("/api/v1/stats?service={service}&window=10m")),
    )
    .await;
    assert_eq!(stats["source"]["kind"], "exact", "{stats}");
    assert_eq!(stats["samples"], 600, "{stats}");
    let s = &stats["stats"][0];
    let sum: f64 = latencies.iter().sum();
    assert_eq!(s["service"], service.as_str());
    assert_eq!(s["count"], 600, "{s}");
    assert_eq!(s["mean"].as_f64(), Some(sum / 600.0), "{s}");
    assert_eq!(s["min"].as_f64(), Some(1.5), "{s}");
    assert_eq!(s["max"].as_f64(), Some(1.5 + 96.0 * 0.5), "{s}");

    // Per kind: throughput's rate over the window, status codes' counts and error share.
    let throughput = get_json(
        &app.client,
        &app.url(&format!(
            "/api/v1/stats?kind=throughput&service={service}&window=10m"
        )),
    )
    .await;
    assert_eq!(
        throughput["stats"][0]["rate_per_s"].as_f64(),
        Some(1.0),
        "{throughput}"
    );
    let status = get_json(
        &app.client,
        &app.url(&format!(
            "/api/v1/stats?kind=status_codes&service={service}&window=10m"
        )),
    )
    .await;
    assert_eq!(status["stats"][0]["codes"], json!(sent_codes), "{status}");
    assert_eq!(
        status["stats"][0]["error_ratio"].as_f64(),
        Some(sent_errors as f64 / 100.0),
        "{status}"
    );

    // A histogram of the same window: its state and its ready event carry the same numbers.
    let mut sse = app.events_on(0, &format!("?service={service}")).await;
    let id = app
        .request_plot(&json!({"kind": "histogram", "service": service, "window": "10m"}))
        .await;
    let state = app.wait_done(id, RENDER).await;
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(
        state["stats"], stats["stats"],
        "the job's numbers are the stats route's"
    );
    let t = &state["timings"];
    let stages: Vec<f64> = ["query", "render", "encode", "store"]
        .iter()
        .map(|stage| {
            t[stage]
                .as_f64()
                .unwrap_or_else(|| panic!("{stage} in {t}"))
        })
        .collect();
    let (wait, total) = (
        t["queue_wait"].as_f64().unwrap(),
        t["total"].as_f64().unwrap(),
    );
    assert!(
        stages.iter().chain([&wait, &total]).all(|ms| *ms >= 0.0),
        "{t}"
    );
    assert!(total >= stages.iter().sum::<f64>(), "{t}");
    let ready = sse
        .next_matching(RENDER, |e| e.data["id"] == id.to_string().as_str())
        .await;
    assert_eq!(ready.event, "plot.ready");
    assert_eq!(ready.data["stats"], state["stats"]);
    assert_eq!(ready.data["timings"], state["timings"]);

    // A correlation of the same samples (p95 against rate, by the minute, over the five
    // whole minutes before this one): the job fits what the stats route fits.
    let minute = now / 60_000 * 60_000;
    let (from, until) = (minute - 5 * 60_000, minute - 1);
    let correlation = get_json(
        &app.client,
        &app.url(&format!(
            "/api/v1/stats?kind=correlation&service={service}&from={from}&until={until}"
        )),
    )
    .await;
    let fit = &correlation["stats"][0]["correlation"];
    assert!(fit["points"].as_u64().unwrap() >= 1, "{correlation}");
    assert_eq!(correlation["stats"][1]["metric"], "latency_ms");
    let id = app
        .request_plot(&json!({"kind": "correlation", "service": service,
            "from": from, "until": until}))
        .await;
    let state = app.wait_done(id, RENDER).await;
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(state["stats"], correlation["stats"], "{state}");
    assert_eq!(state["spec"]["x_stat"], "rate", "{state}");
    app.stop().await;
}
