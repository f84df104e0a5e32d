//! `POST /api/v1/plots` and the job's routes: a request queued as one job (`202`), its
//! spec's problems named, the image routes following the job's state, identical
//! requests sharing one job, and a refused publish leaving no job nor state behind.

use crate::helpers::{App, Tokens, app, build};
use axum::http::StatusCode;
use plotq_api::ApiConfig;
use plotq_domain::wire::JobMessage;
use plotq_domain::{ImageFormat, JobId, JobState, JobStatus, PlotKind, PlotSpec, ServiceName};
use plotq_ports::faulty::Fault;
use plotq_ports::{JobQueue, PlotCache};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn plot_request_queues_one_job_and_answers_202() {
    let app = app();
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "histogram", "service": "checkout"}))
        .send()
        .await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        answer.headers["location"],
        format!("/api/v1/plots/{id}").as_str()
    );
    assert_eq!(body["status"], "queued");
    assert_eq!(body["spec"]["bins"], 50);
    let mut consumer = app.queue.consume(1).await.unwrap();
    let delivery = consumer.next().await.unwrap();
    let message = JobMessage::decode(&delivery.body).unwrap();
    assert_eq!(message.id.to_string(), id);
    let answer = app.get(format!("/api/v1/plots/{id}")).send().await;
    assert_eq!(
        (answer.status, answer.json()["status"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
}

#[tokio::test]
async fn invalid_specs_name_their_fields() {
    let app = app();
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "histogram", "service": "checkout", "window": "9y", "bins": -1}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_fields(), ["/window", "/bins"]);
}

/// Thresholds travel with the job (its spec echoes them, its message carries them);
/// bad ones are named by index and member; a render link takes them as a JSON array.
#[tokio::test]
async fn thresholds_are_part_of_the_plot() {
    let app = app();
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "latency_timeseries", "service": "checkout",
            "thresholds": [{"value": 250, "label": "SLO"}, {"value": 100}]}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(
        answer.json()["spec"]["thresholds"],
        json!([{"value": 250.0, "label": "SLO"}, {"value": 100.0, "label": "threshold"}])
    );
    let mut consumer = app.queue.consume(1).await.unwrap();
    let message = JobMessage::decode(&consumer.next().await.unwrap().body).unwrap();
    assert_eq!(message.spec.thresholds[0].label, "SLO");

    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "histogram", "service": "checkout",
            "thresholds": [{"value": "250"}, {"value": 1, "label": ""}, {"value": 2, "colour": "red"}]}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.error_fields(),
        [
            "/thresholds/0/value",
            "/thresholds/1/label",
            "/thresholds/2/colour"
        ]
    );
    let answer = app
        .get("/api/v1/render?kind=histogram&service=checkout&thresholds=250")
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_fields(), ["/thresholds"]);
    assert!(
        answer.json()["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .starts_with("must be an array"),
        "the value is named, not the parameter: {:?}",
        answer.json()
    );
    // A render link with valid thresholds is a plot (no worker here: it is queued, and
    // the short wait ends in 503 render_timeout, not 422).
    let answer = app
        .get("/api/v1/render?kind=histogram&service=checkout&thresholds=%5B%7B%22value%22%3A250%2C%22label%22%3A%22SLO%22%7D%5D")
        .send()
        .await;
    assert_ne!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        answer.json()
    );
}

#[tokio::test]
async fn png_answers_follow_the_job_state() {
    let app = app();
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("s").unwrap());
    let mut job = JobState::queued(JobId::new_random(), spec, 1);
    let ttl = Duration::from_secs(60);
    app.cache.put_state(&job, ttl).await.unwrap();
    let png_uri = format!("/api/v1/plots/{}/png", job.id);
    let answer = app.get(&png_uri).send().await;
    let body = answer.json();
    assert_eq!(
        (answer.status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_ready"))
    );
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(body["job"]["status"], "queued");

    job.status = JobStatus::Failed;
    job.error = Some("no data".into());
    app.cache.put_state(&job, ttl).await.unwrap();
    let answer = app.get(&png_uri).send().await;
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (StatusCode::CONFLICT, Some("plot_failed"))
    );

    job.status = JobStatus::Done;
    app.cache.put_state(&job, ttl).await.unwrap();
    let answer = app.get(&png_uri).send().await;
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (StatusCode::GONE, Some("expired"))
    );

    app.cache
        .put_image(job.id, b"\x89PNG fake", ttl)
        .await
        .unwrap();
    let answer = app.get(&png_uri).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "image/png");
    assert_eq!(answer.bytes, b"\x89PNG fake");

    let answer = app.get("/api/v1/plots/not-a-uuid").send().await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = app
        .get(format!("/api/v1/plots/{}", JobId::new_random()))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

/// A plot of a past range is shared for as long as no sample timed inside that range
/// arrives, however much newer data flows meanwhile (its cache key is the range's data
/// watermark, by the hour): four requests with new samples of the series between them
/// are one job; a late sample inside the range makes the next request a new one. A
/// window reaching now still moves with every new sample.
#[tokio::test]
async fn past_ranges_are_shared_while_newer_data_flows() {
    let app = app();
    let now = plotq_ports::clock::now_ms();
    let hour = 3_600_000;
    // Two hours ago, one hour long, on hour boundaries.
    let from = (now / hour - 3) * hour;
    let until = from + hour - 1;
    let ingest = |at: i64| {
        let app = &app;
        async move {
            let answer = app
                .post("/api/v1/metrics")
                .json(&json!({"service": "checkout", "metric": "latency_ms",
                    "value": 42.0, "timestamp": at}))
                .send()
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json());
        }
    };
    let request = |body: Value| {
        let app = &app;
        async move {
            let answer = app.post("/api/v1/plots").json(&body).send().await;
            assert!(answer.status.is_success(), "{:?}", answer.json());
            answer.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let past = json!({"kind": "histogram", "service": "checkout", "from": from, "until": until});
    ingest(from + 60_000).await;
    let mut jobs = std::collections::BTreeSet::new();
    for i in 0..4 {
        jobs.insert(request(past.clone()).await);
        // New samples of the series, timed now: outside the range.
        ingest(plotq_ports::clock::now_ms() - i).await;
    }
    assert_eq!(jobs.len(), 1, "4 requests over unchanged data, one render");
    // A late sample inside the range: the picture changes, so does the job.
    ingest(from + 120_000).await;
    jobs.insert(request(past.clone()).await);
    assert_eq!(jobs.len(), 2, "a sample inside the range renders it again");
    // A window reaching now moves with every new sample (the series' watermark is the
    // arrival's millisecond: the next sample arrives in a later one).
    let live = json!({"kind": "histogram", "service": "checkout", "window": "1h"});
    let first = request(live.clone()).await;
    let asked = plotq_ports::clock::now_ms();
    while plotq_ports::clock::now_ms() <= asked {
        tokio::task::yield_now().await;
    }
    ingest(plotq_ports::clock::now_ms()).await;
    assert_ne!(request(live).await, first);
}

#[tokio::test]
async fn identical_concurrent_requests_share_one_job() {
    let app = app();
    let body = json!({"kind": "histogram", "service": "checkout", "window": "5m"});
    let calls = (0..100).map(|_| app.post("/api/v1/plots").json(&body).send());
    let answers = futures::future::join_all(calls).await;
    let bodies: Vec<Value> = answers.iter().map(|a| a.json()).collect();
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .zip(&bodies)
        .map(|(answer, body)| {
            assert_eq!(answer.status, StatusCode::ACCEPTED);
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one job for 100 identical requests");
    assert_eq!(
        bodies.iter().filter(|b| b["deduplicated"] == true).count(),
        99
    );
    // Exactly one job was queued.
    let mut consumer = app.queue.consume(1).await.unwrap();
    assert!(consumer.next().await.is_some());
    let nothing_else = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await;
    assert!(nothing_else.is_err(), "a second job was queued");
    // A different spec is a different job.
    let other = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "histogram", "service": "checkout", "window": "6m"}))
        .send()
        .await
        .json();
    assert!(!ids.contains(other["id"].as_str().unwrap()));
}

/// Makes `app`'s queue refuse every job (it is full), each after 20 ms: slow enough that
/// concurrent identical requests overlap a refused publish.
fn fill_queue(app: &App) {
    while app.queue.inner().publish_raw(b"a job ahead").is_ok() {}
    app.queue
        .always("publish", Fault::Delay(Duration::from_millis(20)));
}

#[tokio::test]
async fn a_refused_publish_leaves_no_job_behind_for_later_requests() {
    let full = app();
    fill_queue(&full);
    let spec = json!({"kind": "histogram", "service": "a", "window": "5m"});
    for _ in 0..3 {
        let answer = full.post("/api/v1/plots").json(&spec).send().await;
        let body = answer.json();
        // Never a 202 (deduplicated or not) pointing at a job that was never queued.
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(answer.headers.contains_key("retry-after"));
        assert_ne!(body["deduplicated"], true);
    }
    // Nor when identical requests arrive while a refused publish is still in flight.
    let together = (0..10).map(|_| full.post("/api/v1/plots").json(&spec).send());
    for answer in futures::future::join_all(together).await {
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.json()
        );
    }
    // Once the queue takes jobs again, the same request is queued for real.
    let working = build().cache(full.cache.clone()).start();
    let answer = working.post("/api/v1/plots").json(&spec).send().await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_ne!(
        answer.json()["deduplicated"],
        true,
        "pointed at a job that never existed"
    );
}

#[tokio::test]
async fn a_refused_publish_leaves_no_orphan_state() {
    let app = app();
    fill_queue(&app);
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "cdf", "service": "b"}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let mut written = app.cache.subjects("put_state");
    written.extend(app.cache.subjects("put_state_if_absent"));
    assert!(
        written.is_empty(),
        "no state is written for a job the broker did not take: {written:?}"
    );
}

/// A done plot's image is served from the api's memory once read: later requests, and
/// their `If-None-Match` revalidations (`304`, no body), make no cache call at all; a
/// caller limited to other services still gets `404`, from memory too; an SVG plot's
/// `/png` is still `409 wrong_format`. With the hot cache off, each request reads the
/// cache once, the state and the image together.
#[tokio::test]
async fn done_images_are_served_from_memory_with_etags() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("shop").unwrap());
    let job = app.done_job(spec.clone(), b"\x89PNG hot").await;
    let uri = format!("/api/v1/plots/{}/png", job.id);
    let reader = Some(tokens.reader.as_str());
    let cache_calls = || {
        ["get_state", "get_image", "get_state_and_image"]
            .map(|m| app.cache.calls(m))
            .iter()
            .sum::<usize>()
    };

    let first = app.get(&uri).token(reader).send().await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.bytes, b"\x89PNG hot");
    assert_eq!(
        app.cache.calls("get_state_and_image"),
        1,
        "one read on a miss"
    );
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");

    let before = cache_calls();
    let again = app.get(&uri).token(reader).send().await;
    assert_eq!(
        (again.status, again.bytes.as_slice()),
        (StatusCode::OK, &b"\x89PNG hot"[..])
    );
    assert_eq!(again.headers["etag"], etag.as_str());
    let revalidated = app
        .get(&uri)
        .token(reader)
        .header("if-none-match", &format!("\"other\", {etag}"))
        .send()
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes.is_empty());
    assert_eq!(revalidated.headers["etag"], etag.as_str());
    let stale = app
        .get(&uri)
        .token(reader)
        .header("if-none-match", "\"other\"")
        .send()
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    let image = app
        .get(format!("/api/v1/plots/{}/image", job.id))
        .token(reader)
        .send()
        .await;
    assert_eq!(image.status, StatusCode::OK);
    let tenant = app.get(&uri).token(Some(&tokens.tenant)).send().await;
    assert_eq!(tenant.status, StatusCode::NOT_FOUND, "another tenant's job");
    assert_eq!(cache_calls(), before, "served from memory only");

    let mut svg_spec = spec.clone();
    svg_spec.format = ImageFormat::Svg;
    let svg = app.done_job(svg_spec, b"<svg/>").await;
    let svg_uri = format!("/api/v1/plots/{}/png", svg.id);
    for _ in 0..2 {
        let answer = app.get(&svg_uri).token(reader).send().await;
        assert_eq!(answer.json()["code"], "wrong_format");
    }

    let off = build()
        .config(ApiConfig {
            hot_images: plotq_api::HotImages::new(0),
            ..ApiConfig::default()
        })
        .start();
    let job = off.done_job(spec, b"\x89PNG cold").await;
    let uri = format!("/api/v1/plots/{}/png", job.id);
    for _ in 0..3 {
        assert_eq!(off.get(&uri).send().await.status, StatusCode::OK);
    }
    assert_eq!(off.cache.calls("get_state_and_image"), 3);
}
