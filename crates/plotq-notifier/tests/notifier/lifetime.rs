//! A stream lives as long as its credential: it ends, with a last `stream.closed`
//! saying why, when its ticket expires or its token is revoked or loses a service the
//! stream uses; a stream whose services the token still has goes on. Meanwhile it sends
//! a keep-alive comment every `keep_alive`, and it ends when the process shuts down.

use crate::helpers::{Fixture, Sse, ready_event};
use axum::http::StatusCode;
use plotq_http::auth::{hash_token, parse_tokens};
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
    let f = Fixture::with_notifier(|c| c.credential_recheck = Duration::from_millis(50));
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

#[tokio::test]
async fn a_stream_sends_a_keep_alive_comment_every_interval_events_or_not() {
    let f = Fixture::with_notifier(|c| c.keep_alive = Duration::from_millis(50));
    let response = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Sse::new(response);
    assert!(
        stream.keep_alives(2).await >= 2,
        "an idle stream is kept alive"
    );
    f.hub_tailing().await;
    f.bus.publish(&ready_event("checkout")).await.unwrap();
    assert_eq!(
        stream.ids(1).await.len(),
        1,
        "events go on between comments"
    );
    assert!(stream.keep_alives(4).await >= 4, "and so do the comments");
}

#[tokio::test]
async fn every_stream_ends_when_the_process_shuts_down() {
    let f = Fixture::new();
    let open = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    let watching = f.watch(&["checkout"], &f.reader).await;
    assert!(
        [&open, &watching]
            .iter()
            .all(|r| r.status() == StatusCode::OK)
    );
    f.shutdown.cancel();
    assert!(Sse::new(open).ends().await, "an open stream ends");
    assert!(
        Sse::new(watching).ends().await,
        "a stream watching views ends"
    );
    // One that opens while the process stops ends too, rather than holding the drain.
    let late = f.subscribe("/api/v1/events", Some(&f.reader)).await;
    if late.status() == StatusCode::OK {
        assert!(
            Sse::new(late).ends().await,
            "a stream opened after shutdown ends"
        );
    }
}
