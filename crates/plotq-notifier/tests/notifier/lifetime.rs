//! A stream lives as long as its credential: it ends, with a last `stream.closed`
//! saying why, when its ticket expires or its token is revoked or loses a service the
//! stream uses; a stream whose services the token still has goes on.

use crate::helpers::{Fixture, Sse, ready_event};
use axum::http::StatusCode;
use plotq_http::LimitsConfig;
use plotq_http::auth::{hash_token, parse_tokens};
use plotq_notifier::NotifierConfig;
use plotq_ports::EventBus;
use std::time::Duration;

#[tokio::test]
async fn a_stream_ends_when_its_ticket_expires_saying_why() {
    let f = Fixture::new();
    let principal = f.principal(&f.reader);
    // Issued long enough ago that it has 300 ms left (tickets live 300 s here).
    let now = plotq_ports::clock::now_ms();
    let (ticket, expires) = f.auth.issue_ticket(&principal, now - 299_700).unwrap();
    assert!(expires > now);
    let stream = f
        .subscribe(&format!("/api/v1/events?ticket={ticket}"), None)
        .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let (data, ended) = Sse::new(stream)
        .until_event("stream.closed")
        .await
        .expect("the stream says it closes");
    assert_eq!(data["reason"], "credential_expired");
    assert!(ended, "and then ends");
}

#[tokio::test]
async fn a_stream_ends_when_its_token_is_revoked_or_loses_the_service() {
    let f = Fixture::with(
        LimitsConfig::default(),
        NotifierConfig {
            credential_recheck: Duration::from_millis(50),
            ..NotifierConfig::default()
        },
    );
    let reader = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    let tenant = f
        .subscribe("/api/v1/events?service=team-a-api", Some(&f.tenant))
        .await;
    let untouched = f
        .subscribe("/api/v1/events?service=team-a-web", Some(&f.tenant))
        .await;
    assert!(
        [&reader, &tenant, &untouched]
            .iter()
            .all(|r| r.status() == StatusCode::OK)
    );
    // The reader's token is removed; the tenant's narrowed to team-a-web.
    f.auth
        .replace_tokens(
            parse_tokens(&format!(
                "{} scopes=read services=team-a-web name=tenant\n{} scopes=ingest name=ingest",
                hash_token(&f.tenant),
                hash_token(&f.ingest)
            ))
            .unwrap(),
        )
        .unwrap();
    for stream in [reader, tenant] {
        let (data, ended) = Sse::new(stream)
            .until_event("stream.closed")
            .await
            .expect("the stream says it closes");
        assert_eq!(data["reason"], "credential_revoked");
        assert!(ended);
    }
    // A stream whose services the token still has goes on.
    f.hub_tailing().await;
    f.bus.publish(&ready_event("team-a-web")).await.unwrap();
    assert_eq!(Sse::new(untouched).services(1).await, ["team-a-web"]);
}
