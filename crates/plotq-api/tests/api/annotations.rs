//! `POST` and `GET /api/v1/annotations`: stored and listed by service and time, every
//! bad member named, the caller's services enforced, drawn into the statistics of time
//! plots (not of others), and a new annotation in a past range renders it again.

use crate::helpers::{Tokens, app, build, documented};
use axum::http::StatusCode;
use plotq_ports::clock::now_ms;
use serde_json::{Value, json};

#[tokio::test]
async fn annotations_are_stored_listed_and_drawn_by_time_plots() {
    let app = app();
    let now = now_ms();
    let posted = app
        .post("/api/v1/annotations")
        .json(
            &json!({"text": "deploy v42", "services": ["checkout", "payments"],
            "time": now - 600_000}),
        )
        .send()
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{:?}", posted.json());
    let stored = posted.json();
    assert_eq!(stored["text"], "deploy v42");
    assert_eq!(stored["time_ms"], now - 600_000);
    assert_eq!(stored["services"], json!(["checkout", "payments"]));
    assert_eq!(stored["id"].as_str().unwrap().len(), 36);
    // Without a time: now.
    let second = app
        .post("/api/v1/annotations")
        .json(&json!({"text": "flag on", "services": ["checkout"]}))
        .send()
        .await
        .json();
    assert!((now..=now_ms()).contains(&second["time_ms"].as_i64().unwrap()));
    let list = |query: &'static str| {
        let app = &app;
        async move { app.get(format!("/api/v1/annotations{query}")).send().await }
    };
    let texts = |body: Value| -> Vec<String> {
        body["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(list("?services=checkout").await.json()),
        ["deploy v42", "flag on"]
    );
    assert_eq!(
        texts(list("?services=payments,search").await.json()),
        ["deploy v42"]
    );
    assert!(texts(list("?services=checkout&window=5m").await.json()) == ["flag on"]);
    // Time plots of the services list them in their statistics; others do not.
    let samples: Vec<Value> = (0..20)
        .map(|i| {
            json!({"service": "checkout", "metric": "latency_ms", "value": i,
            "timestamp": now - 1_200_000 + i * 60_000})
        })
        .collect();
    app.post("/api/v1/metrics")
        .json(&json!(samples))
        .send()
        .await;
    let stats = |kind: &'static str| {
        let app = &app;
        async move {
            let answer = app
                .get(format!(
                    "/api/v1/stats?service=checkout&window=1h&kind={kind}"
                ))
                .send()
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json());
            answer.json()
        }
    };
    let timeseries = stats("latency_timeseries").await;
    assert_eq!(
        timeseries["annotations"][0]["text"], "deploy v42",
        "{timeseries}"
    );
    assert!(stats("histogram").await.get("annotations").is_none());
}

#[tokio::test]
async fn bad_annotations_are_refused_by_member() {
    let app = app();
    let post = |body: Value| {
        let app = &app;
        async move { app.post("/api/v1/annotations").json(&body).send().await }
    };
    let answer = post(json!({"text": "", "services": ["a b"], "time": "soon", "x": 1})).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["code"], "invalid_field");
    assert_eq!(
        answer.error_fields(),
        ["/x", "/text", "/services/0", "/time"]
    );
    // Older than the rollup retention: no plot would ever show it.
    let old =
        post(json!({"text": "t", "services": ["a"], "time": now_ms() - 91 * 86_400_000})).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(old.error_fields(), ["/time"]);
    // More than 5 minutes ahead: a clock or unit mistake, not a moment to mark.
    let ahead = post(json!({"text": "t", "services": ["a"], "time": now_ms() + 3_600_000})).await;
    assert_eq!(ahead.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ahead.error_fields(), ["/time"]);
    // Epoch seconds are named as such.
    let seconds = post(json!({"text": "t", "services": ["a"], "time": now_ms() / 1000})).await;
    assert_eq!(seconds.error_fields(), ["/time"]);
    let bad_list = app
        .get("/api/v1/annotations?services=&window=1y")
        .send()
        .await;
    assert_eq!(bad_list.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_list.error_fields(), ["/services/0", "/window"]);
    assert!(
        app.get("/api/v1/annotations")
            .send()
            .await
            .status
            .is_client_error()
    );
    let (post_op, _) = documented("/api/v1/annotations", "post");
    assert!(post_op["responses"]["201"].is_object(), "{post_op}");
    let (get_op, _) = documented("/api/v1/annotations", "get");
    assert!(get_op["responses"]["200"].is_object(), "{get_op}");
}

#[tokio::test]
async fn scopes_and_services_apply() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let post = |token: &str, services: Value| {
        let app = &app;
        let token = token.to_owned();
        async move {
            app.post("/api/v1/annotations")
                .token(Some(&token))
                .json(&json!({"text": "deploy", "services": services}))
                .send()
                .await
        }
    };
    assert_eq!(
        post(&tokens.reader, json!(["a"])).await.status,
        StatusCode::FORBIDDEN
    );
    let foreign = post(&tokens.tenant, json!(["team-a-web", "other"])).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(foreign.error_fields(), ["/services/1"]);
    assert_eq!(
        post(&tokens.tenant, json!(["team-a-web"])).await.status,
        StatusCode::CREATED
    );
    let list = |token: &str, query: &str| {
        app.get(format!("/api/v1/annotations{query}"))
            .token(Some(token))
            .send()
    };
    assert_eq!(
        list(&tokens.ingest, "?services=team-a-web").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        list(&tokens.tenant, "?services=other").await.status,
        StatusCode::FORBIDDEN
    );
    let listed = list(&tokens.tenant, "?services=team-a-web").await.json();
    assert_eq!(
        listed["annotations"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    // An annotation of another tenant's service too: the tenant sees only its own name.
    let both = post(&tokens.ingest, json!(["team-a-web", "partner-secret"])).await;
    assert_eq!(both.status, StatusCode::CREATED);
    let listed = list(&tokens.tenant, "?services=team-a-web").await.json();
    assert!(!listed.to_string().contains("partner-secret"), "{listed}");
    assert_eq!(listed["annotations"][1]["services"], json!(["team-a-web"]));
}

#[tokio::test]
async fn annotations_have_their_own_rate() {
    let app = build()
        .limits(plotq_http::LimitsConfig {
            annotations_per_min: 2,
            ..plotq_http::LimitsConfig::default()
        })
        .start();
    let post = || {
        app.post("/api/v1/annotations")
            .json(&json!({"text": "deploy", "services": ["a"]}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(post().await.status, StatusCode::CREATED);
    }
    let refused = post().await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(refused.json()["code"], "rate_limited");
}

#[tokio::test]
async fn an_annotation_in_a_past_range_renders_it_again() {
    let app = app();
    let now = now_ms();
    let hour = 3_600_000;
    let from = (now / hour - 3) * hour;
    let until = from + hour - 1;
    app.post("/api/v1/metrics")
        .json(
            &json!({"service": "checkout", "metric": "latency_ms", "value": 1.0,
            "timestamp": from + 60_000}),
        )
        .send()
        .await;
    let request = |kind: &'static str| {
        let app = &app;
        async move {
            let body = json!({"kind": kind, "service": "checkout", "from": from, "until": until});
            app.post("/api/v1/plots").json(&body).send().await.json()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (series, histogram) = (
        request("latency_timeseries").await,
        request("histogram").await,
    );
    assert_eq!(
        request("latency_timeseries").await,
        series,
        "unchanged: shared"
    );
    let answer = app
        .post("/api/v1/annotations")
        .json(&json!({"text": "deploy", "services": ["checkout"], "time": from + 1_800_000}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_ne!(
        request("latency_timeseries").await,
        series,
        "a new annotation in its range"
    );
    assert_eq!(
        request("histogram").await,
        histogram,
        "no time axis: still shared"
    );
}
