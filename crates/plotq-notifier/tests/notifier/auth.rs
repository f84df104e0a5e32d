//! Who may subscribe: a read credential (a token with the `read` scope, or a read
//! ticket), and a tenant limited to some services receives only their events and may
//! ask for nothing else.

use crate::helpers::{Fixture, Sse, problem, ready_event};
use axum::http::StatusCode;
use plotq_ports::EventBus;

#[tokio::test]
async fn events_need_a_read_credential() {
    let f = Fixture::new();
    for token in [None, Some("pq_wrong")] {
        let (status, body) = problem(f.subscribe("/api/v1/events", token).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    let (status, body) = problem(f.subscribe("/api/v1/events", Some(&f.ingest)).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let ok = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["content-type"], "text/event-stream");
    assert!(
        !ok.headers().contains_key("access-control-allow-origin"),
        "no CORS unless origins are configured"
    );
}

#[tokio::test]
async fn a_tenant_receives_only_its_services_events_and_tickets_work() {
    let f = Fixture::new();
    let principal = f.principal(&f.tenant);
    let (ticket, _) = f
        .auth
        .issue_ticket(&principal, plotq_ports::clock::now_ms())
        .unwrap();
    let tenant = f
        .subscribe(&format!("/api/v1/events?ticket={ticket}"), None)
        .await;
    assert_eq!(tenant.status(), StatusCode::OK);
    let everyone = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    f.hub_tailing().await;
    for service in ["payments", "team-a-api", "search", "team-a-web"] {
        f.bus.publish(&ready_event(service)).await.unwrap();
    }
    let all = Sse::new(everyone).services(4).await;
    assert_eq!(all, ["payments", "team-a-api", "search", "team-a-web"]);
    let own = Sse::new(tenant).services(2).await;
    assert_eq!(
        own,
        ["team-a-api", "team-a-web"],
        "never another tenant's events"
    );
    // Asking for another tenant's service or views is refused outright.
    for uri in [
        "/api/v1/events?service=payments",
        "/api/v1/events?views=payments/histogram/15m/light/800x450",
    ] {
        let (status, _) = problem(f.subscribe(uri, Some(&f.tenant)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
}
