//! What one request may ask for: well-formed parameters (`422` otherwise), and at most
//! so many streams per caller and views live in the process (`429` beyond).

use crate::helpers::{Fixture, problem};
use axum::http::StatusCode;
use plotq_http::LimitsConfig;
use plotq_notifier::NotifierConfig;

#[tokio::test]
async fn bad_parameters_are_422_problems() {
    let f = Fixture::new();
    let too_many: Vec<String> = (0..33)
        .map(|i| format!("s{i}/histogram/15m/light/800x450"))
        .collect();
    for uri in [
        "/api/v1/events?views=not-a-view".to_owned(),
        format!("/api/v1/events?views={}", too_many.join(",")),
    ] {
        let (status, body) = problem(f.subscribe(&uri, Some(&f.reader)).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
        );
    }
    let (status, body) = problem(
        f.subscribe_after("/api/v1/events", &f.reader, "garbage")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "Last-Event-ID");
}

#[tokio::test]
async fn streams_per_caller_and_live_views_are_limited() {
    let f = Fixture::with(
        LimitsConfig {
            sse_connections_per_caller: 2,
            ..LimitsConfig::default()
        },
        NotifierConfig {
            max_watched_views: 3,
            ..NotifierConfig::default()
        },
    );
    let a = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    let b = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let (status, body) = problem(f.subscribe("/api/v1/events", Some(&f.reader)).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_connections"))
    );
    // Another caller has its own allowance; a closed stream frees its slot.
    let c = f
        .subscribe(
            "/api/v1/events?views=team-a-x/histogram/15m/light/800x450,team-a-x/cdf/15m/light/800x450",
            Some(&f.tenant),
        )
        .await;
    assert_eq!(c.status(), StatusCode::OK);
    drop(a);
    let d = f.watch(&["team-a-x"], &f.reader).await;
    assert_eq!(
        d.status(),
        StatusCode::OK,
        "watching an already-live view adds nothing"
    );
    let (status, _) = problem(f.watch(&["a", "b"], &f.tenant).await).await;
    // The tenant may not watch a/b at all: 403 comes before the view limit.
    assert_eq!(status, StatusCode::FORBIDDEN);
    drop(b);
    let (status, body) = problem(f.watch(&["a", "b"], &f.reader).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "2 live + 2 new > 3");
    assert!(body["detail"].as_str().unwrap().contains("views"));
    drop((c, d));
}
