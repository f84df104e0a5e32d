//! Tenancy and limits: a tenant sees and writes only its services (another tenant's job
//! is an unknown one), callers over their rate get `429` with `Retry-After`, and a
//! caller has a bounded share of the queue, in its own lane.

use crate::helpers::{Tokens, build};
use axum::http::StatusCode;
use plotq_api::ApiConfig;
use plotq_domain::wire::JobMessage;
use plotq_http::LimitsConfig;
use plotq_http::auth::{hash_token, new_token};
use plotq_ports::{JobQueue, PlotCache};
use serde_json::{Value, json};

#[tokio::test]
async fn tenants_see_only_their_services() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let tenant = Some(tokens.tenant.as_str());
    // The tenant cannot write or request other services' data.
    let answer = app
        .post("/api/v1/metrics")
        .token(tenant)
        .json(
            &json!([{"service": "team-a-api", "metric": "latency_ms", "value": 1},
               {"service": "payments", "metric": "latency_ms", "value": 1}]),
        )
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["errors"][0]["field"], "/1/service");
    assert_eq!(
        app.stored("team-a-api", "latency_ms").await.len(),
        0,
        "rejected whole"
    );
    let answer = app
        .post("/api/v1/plots")
        .token(tenant)
        .json(&json!({"kind": "cdf", "services": ["team-a-api", "payments"]}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Another tenant's job is indistinguishable from an unknown one.
    let answer = app
        .post("/api/v1/plots")
        .token(Some(&tokens.reader))
        .json(&json!({"kind": "histogram", "service": "payments"}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let other = answer.json();
    let other_id = other["id"].as_str().unwrap();
    for suffix in ["", "/png", "/image"] {
        let answer = app
            .get(format!("/api/v1/plots/{other_id}{suffix}"))
            .token(tenant)
            .send()
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{suffix}");
        assert_eq!(answer.json()["code"], "not_found");
    }
    // Its own plots work, and the service list is filtered.
    let answer = app
        .post("/api/v1/plots")
        .token(tenant)
        .json(&json!({"kind": "histogram", "service": "team-a-api"}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let own = answer.json();
    let answer = app
        .get(format!("/api/v1/plots/{}", own["id"].as_str().unwrap()))
        .token(tenant)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    for (token, service) in [(&tokens.tenant, "team-a-api"), (&tokens.ingest, "payments")] {
        let sample = json!({"service": service, "metric": "latency_ms", "value": 1});
        let answer = app
            .post("/api/v1/metrics")
            .token(Some(token))
            .json(&sample)
            .send()
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let listed = |token: &str| app.get("/api/v1/services").token(Some(token)).send();
    let tenants = listed(&tokens.tenant).await.json();
    assert_eq!(tenants["services"], json!(["team-a-api"]));
    // Each service's metrics, filtered alike.
    assert_eq!(tenants["metrics"], json!({"team-a-api": ["latency_ms"]}));
    let readers = listed(&tokens.reader).await.json();
    assert_eq!(readers["services"], json!(["payments", "team-a-api"]));
    assert_eq!(
        readers["metrics"],
        json!({"payments": ["latency_ms"], "team-a-api": ["latency_ms"]})
    );
}

#[tokio::test]
async fn callers_over_their_rate_get_429_with_retry_after() {
    let tokens = Tokens::new();
    let app = build()
        .tokens(&tokens.lines())
        .limits(LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 3,
            ingest_samples_per_sec: 1,
            ingest_burst: 10,
            ..LimitsConfig::default()
        })
        .start();
    let plot = |token: &str, body: Value| {
        app.post("/api/v1/plots")
            .token(Some(token))
            .json(&body)
            .send()
    };
    let spec = |i: usize| json!({"kind": "histogram", "service": "a", "title": format!("t{i}")});
    for i in 0..3 {
        let answer = plot(&tokens.reader, spec(i)).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let answer = plot(&tokens.reader, spec(9)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.json()["code"], "rate_limited");
    // Another caller has its own budget.
    let answer = plot(
        &tokens.tenant,
        json!({"kind": "histogram", "service": "team-a-x"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let batch: Vec<Value> = (0..11)
        .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
        .collect();
    let answer = app
        .post("/api/v1/metrics")
        .token(Some(&tokens.ingest))
        .json(&json!(batch))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.stored("a", "latency_ms").await.len(),
        0,
        "a refused batch stores nothing"
    );
}

#[tokio::test]
async fn a_caller_has_a_bounded_share_of_the_queue() {
    let (busy, quiet) = (new_token(), new_token());
    let app = build()
        .tokens(&format!(
            "{} scopes=read name=busy\n{} scopes=read name=quiet",
            hash_token(&busy),
            hash_token(&quiet)
        ))
        .config(ApiConfig {
            jobs_in_flight_per_caller: 3,
            ..ApiConfig::default()
        })
        .start();
    let plot = |token: &str, i: usize| {
        app.post("/api/v1/plots")
            .token(Some(token))
            .json(&json!({"kind": "histogram", "service": "a", "title": format!("t{i}")}))
            .send()
    };
    for i in 0..3 {
        assert_eq!(plot(&busy, i).await.status, StatusCode::ACCEPTED);
    }
    let answer = plot(&busy, 3).await;
    let problem = answer.json();
    assert_eq!(
        (answer.status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_jobs")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_JOBS_IN_FLIGHT_PER_CALLER")
    );
    // A refused request shares an existing job when it can: identical requests are free.
    let answer = plot(&busy, 0).await;
    assert_eq!(
        (answer.status, answer.json()["deduplicated"].as_bool()),
        (StatusCode::ACCEPTED, Some(true))
    );
    // Another caller has its own share.
    assert_eq!(plot(&quiet, 9).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.queue.inner().depth(), 4);
    // Each job carries its caller's lane; one ending (as a worker ends it) frees a place.
    let mut consumer = app.queue.consume(10).await.unwrap();
    let mut lanes = Vec::new();
    for _ in 0..4 {
        let message = JobMessage::decode(&consumer.next().await.unwrap().body).unwrap();
        lanes.push((message.lane.clone().expect("a lane"), message.id));
    }
    let busy_lane = lanes[0].0.clone();
    assert!(lanes[..3].iter().all(|(lane, _)| *lane == busy_lane));
    assert_ne!(lanes[3].0, busy_lane, "the other caller's lane");
    assert!(!busy_lane.as_str().contains("busy"), "lanes name no token");
    app.cache
        .end_job(busy_lane.as_str(), lanes[0].1)
        .await
        .unwrap();
    assert_eq!(plot(&busy, 4).await.status, StatusCode::ACCEPTED);
}
