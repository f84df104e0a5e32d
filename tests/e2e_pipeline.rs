//! End-to-end: ingest → queue → render → cache → notify, with every role a separate
//! `plotq` process against real RabbitMQ, Redis and the MongoDB-wire server; and the
//! same flow against `plotq standalone`.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{
    Plotq, cleanup, decode_png, namespace, require_services, samples, subscribe, wait_ready,
};

const READY: Duration = Duration::from_secs(60);
const RENDER: Duration = Duration::from_secs(60);

/// The user-visible flow, against an API base URL and an SSE URL.
async fn exercise(api: &str, events: &str, n_samples: usize) {
    let client = reqwest::Client::new();
    let mut sse = subscribe(events, None).await;

    // Ingest in batches; every batch is acknowledged with its count.
    let all = samples("checkout", n_samples, 5 * 60 * 1000);
    for batch in all.chunks(2_000) {
        let r = client
            .post(format!("{api}/api/v1/metrics"))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], batch.len());
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

    let status: Value = client
        .get(format!("{api}{location}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_roles_render_and_notify() {
    require_services();
    let ns = namespace("e2e");
    let api = Plotq::start(&["api"], &ns, &[]);
    let notifier = Plotq::start(&["notifier"], &ns, &[]);
    let _w1 = Plotq::start(&["worker"], &ns, &[]);
    let _w2 = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    exercise(
        api.base.as_deref().unwrap(),
        &notifier.url("/api/v1/events"),
        10_000,
    )
    .await;
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_renders_and_notifies() {
    let ns = namespace("sa");
    let plotq = Plotq::start(&["standalone", "--no-demo"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &plotq.url("/readyz"), READY).await;
    exercise(
        plotq.base.as_deref().unwrap(),
        &plotq.url("/api/v1/events"),
        10_000,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notifier_replica_sees_every_event() {
    require_services();
    let ns = namespace("fan");
    let api = Plotq::start(&["api"], &ns, &[]);
    let n1 = Plotq::start(&["notifier"], &ns, &[]);
    let n2 = Plotq::start(&["notifier"], &ns, &[]);
    let _w = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    for p in [&api, &n1, &n2] {
        wait_ready(&client, &p.url("/readyz"), READY).await;
    }
    let mut s1 = subscribe(&n1.url("/api/v1/events"), None).await;
    let mut s2 = subscribe(&n2.url("/api/v1/events?service=fanout"), None).await;
    let body = samples("fanout", 500, 60_000);
    assert_eq!(
        client
            .post(api.url("/api/v1/metrics"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let job: Value = client
        .post(api.url("/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "fanout", "width": 400, "height": 250}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
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
    let mut resumed = subscribe(&n2.url("/api/v1/events"), Some(&before)).await;
    let replayed = resumed
        .next_matching(Duration::from_secs(10), |e| e.data["id"] == id.as_str())
        .await;
    assert_eq!(replayed.id, e1.id);
    cleanup(&ns).await;
}

/// Every other kind through the distributed pipeline (timestamps come back from
/// MongoDB), including a comparison and an SVG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_renders_through_the_pipeline() {
    require_services();
    let ns = namespace("kinds");
    let api = Plotq::start(&["api"], &ns, &[]);
    let notifier = Plotq::start(&["notifier"], &ns, &[]);
    let _w = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    let mut sse = subscribe(&notifier.url("/api/v1/events"), None).await;
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
    assert_eq!(
        client
            .post(api.url("/api/v1/metrics"))
            .json(&batch)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
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
        let r = client
            .post(api.url("/api/v1/plots"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{request}");
        let job: Value = r.json().await.unwrap();
        let id = job["id"].as_str().unwrap().to_owned();
        let event = sse
            .next_matching(RENDER, |e| e.data["id"] == id.as_str())
            .await;
        assert_eq!(event.event, "plot.ready", "{request}: {:?}", event.data);
        let image_url = event.data["image_url"].as_str().unwrap().to_owned();
        let r = client.get(api.url(&image_url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = r.bytes().await.unwrap();
        if request["format"] == "svg" {
            assert_eq!(content_type, "image/svg+xml");
            assert!(bytes.starts_with(b"<svg"));
            let png = client
                .get(api.url(&format!("/api/v1/plots/{id}/png")))
                .send()
                .await
                .unwrap();
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
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_failing_dependency_and_nothing_is_accepted() {
    require_services();
    let ns = namespace("ready");
    // Redis on a port where nothing listens.
    let api = Plotq::start(
        &["api"],
        &ns,
        &[
            ("PLOTQ_REDIS_URL", "redis://127.0.0.1:1"),
            ("PLOTQ_DEPENDENCY_TIMEOUT_SECS", "1"),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/healthz"), READY).await;
    let r = client.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["redis"], "failing");
    assert_eq!(body["checks"]["rabbitmq"], "ok");
    assert_eq!(body["checks"]["mongodb"], "ok");
    assert_eq!(body["failing"][0]["dependency"], "redis");
    let r = client
        .post(api.url("/api/v1/plots"))
        .json(&json!({"kind": "histogram", "service": "checkout"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    cleanup(&ns).await;
}

/// Live refresh across real processes: a watched view is rendered for its first viewer,
/// re-rendered when its series gets new samples, and a new viewer gets its current image
/// at once; a view nobody watches is never rendered, though its series gets samples too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_views_refresh_and_unwatched_ones_do_not() {
    require_services();
    let ns = namespace("live");
    let fast = [("PLOTQ_REFRESH_DEBOUNCE_SECS", "1")];
    let api = Plotq::start(&["api"], &ns, &fast);
    let notifier = Plotq::start(&["notifier"], &ns, &fast);
    let _w = Plotq::start(&["worker"], &ns, &fast);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    let ingest = |service: &'static str, n: usize| {
        let client = client.clone();
        let url = api.url("/api/v1/metrics");
        async move {
            let r = client
                .post(url)
                .json(&samples(service, n, 60_000))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    ingest("watched", 300).await;
    ingest("unwatched", 300).await;
    let watched = "watched/histogram/10m/light/640x360";
    let unwatched = "unwatched/histogram/10m/light/640x360";
    // Everything on the bus, to prove the absence of the unwatched view's jobs.
    let mut all = subscribe(&notifier.url("/api/v1/events"), None).await;
    let mut viewer = subscribe(
        &notifier.url(&format!("/api/v1/events?views={watched}")),
        None,
    )
    .await;

    let first = viewer
        .next_matching(RENDER, |e| e.event == "plot.ready")
        .await;
    assert_eq!(first.data["view"], watched);
    assert_eq!(
        decode_png(
            &client
                .get(api.url(first.data["png_url"].as_str().unwrap()))
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
    ingest("watched", 100).await;
    ingest("unwatched", 100).await;
    let second = viewer
        .next_matching(RENDER, |e| {
            e.event == "plot.ready" && e.data["id"] != first.data["id"]
        })
        .await;
    assert!(second.data["at_ms"].as_i64() > first.data["at_ms"].as_i64());

    // A second viewer gets the current image at once, before any new render.
    let mut late = subscribe(
        &notifier.url(&format!("/api/v1/events?views={watched}")),
        None,
    )
    .await;
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
    cleanup(&ns).await;
}
