//! Replay: a client reconnecting with `Last-Event-ID` gets what it missed from the bus,
//! once, then live events, with no gap and no duplicate.

use crate::helpers::{Fixture, Sse, ready_event};
use axum::http::StatusCode;
use plotq_ports::EventBus;

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_once_then_live_events() {
    let f = Fixture::new();
    f.hub_tailing().await;
    let mut ids = Vec::new();
    for service in ["s1", "s2", "s3"] {
        ids.push(f.bus.publish(&ready_event(service)).await.unwrap());
    }
    // The client saw s1 (its `id:` is the bus's `EventId`) and reconnects.
    let response = f
        .subscribe_after("/api/v1/events", &f.reader, &ids[0].to_string())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Sse::new(response);
    assert_eq!(stream.ids(2).await.len(), 2);
    ids.push(f.bus.publish(&ready_event("s4")).await.unwrap());
    let got = stream.ids(3).await;
    // Replayed s2 and s3, then live s4; the hub's relay of s2 and s3 is not repeated.
    let want: Vec<(String, String)> = ids[1..]
        .iter()
        .zip(["s2", "s3", "s4"])
        .map(|(id, s)| (id.to_string(), s.to_owned()))
        .collect();
    assert_eq!(got, want);
}
