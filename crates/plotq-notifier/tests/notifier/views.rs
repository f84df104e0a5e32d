//! Watched views and what they cost: a view never rendered costs one render of the
//! caller's plot budget when its stream opens (views live or rendered before cost
//! nothing), and a caller keeps a bounded number of views live.

use crate::helpers::{Fixture, problem};
use axum::http::StatusCode;
use plotq_domain::{JobId, JobStatus, ViewState};
use plotq_http::LimitsConfig;
use plotq_notifier::NotifierConfig;
use plotq_ports::ViewRegistry;

#[tokio::test]
async fn views_never_rendered_cost_the_callers_plot_budget() {
    let f = Fixture::with(
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 4,
            ..LimitsConfig::default()
        },
        NotifierConfig::default(),
    );
    // Eight views nobody ever rendered: eight renders, over the burst of four. Refused
    // before the stream starts, with nothing watched.
    let eight: Vec<String> = (0..8).map(|i| format!("new{i}")).collect();
    let eight: Vec<&str> = eight.iter().map(String::as_str).collect();
    let (status, body) = problem(f.watch(&eight, &f.reader).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(
        body["detail"].as_str().unwrap().contains("never rendered"),
        "{body}"
    );
    assert!(f.hub.watched_views().is_empty(), "nothing was watched");
    // Three fit (three renders charged), and the stream opens.
    let three = f.watch(&["a", "b", "c"], &f.reader).await;
    assert_eq!(three.status(), StatusCode::OK);
    // Two more do not (one render left) …
    let (status, _) = problem(f.watch(&["d", "e"], &f.reader).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // … but views already live here, or rendered before, cost nothing.
    for service in ["x", "y", "z", "w"] {
        let key = format!("{service}/histogram/15m/light/800x450");
        let state = ViewState {
            job_id: JobId::new_random(),
            status: JobStatus::Done,
            requested_ms: 1_000,
            last_ready: None,
            error: None,
        };
        f.views.set_view_state(&key, &state).await.unwrap();
    }
    let free = f
        .watch(&["a", "b", "c", "x", "y", "z", "w"], &f.reader)
        .await;
    assert_eq!(free.status(), StatusCode::OK);
    // Another caller has its own budget.
    let other = f
        .watch(&["team-a-1", "team-a-2", "team-a-3", "team-a-4"], &f.tenant)
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    drop((three, free, other));
}

#[tokio::test]
async fn a_caller_keeps_a_bounded_number_of_views_live() {
    let f = Fixture::with(
        LimitsConfig {
            views_per_caller: 4,
            ..LimitsConfig::default()
        },
        NotifierConfig::default(),
    );
    let a = f.watch(&["a", "b", "c"], &f.reader).await;
    assert_eq!(a.status(), StatusCode::OK);
    let same = f.watch(&["a", "b", "c", "d"], &f.reader).await;
    assert_eq!(same.status(), StatusCode::OK, "four distinct views in all");
    let (status, body) = problem(f.watch(&["e"], &f.reader).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_connections"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_VIEWS_PER_CALLER"),
        "{body}"
    );
    drop((a, same));
    let again = f.watch(&["e"], &f.reader).await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "closed streams give their views back"
    );
}
