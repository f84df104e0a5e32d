//! `POST /api/v1/metrics`: single samples and batches stored, bad batches refused whole,
//! malformed, empty, oversized and non-JSON bodies, `Idempotency-Key` (a retry stored
//! once, even after a write that failed once it had taken effect), and a full store.

use crate::helpers::{app, build};
use axum::http::StatusCode;
use plotq_ports::faulty::Fault;
use plotq_ports::memory::{MemoryStore, MemoryStoreConfig};
use plotq_ports::{MetricStore, PortError, SeriesQuery};
use serde_json::{Value, json};

/// `n` samples of service `a`'s `latency_ms`.
fn batch(n: usize) -> Value {
    json!(
        (0..n)
            .map(|i| json!({"service": "a", "metric": "latency_ms", "value": i}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn ingest_accepts_single_and_batch() {
    let app = app();
    let answer = app
        .post("/api/v1/metrics")
        .json(&json!({"service": "a", "metric": "latency_ms", "value": 1.5}))
        .send()
        .await;
    assert_eq!(
        (answer.status, &answer.json()["accepted"]),
        (StatusCode::OK, &json!(1))
    );
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({"service_name": "a", "metric_name": "latency_ms", "value": i}))
        .collect();
    let answer = app.post("/api/v1/metrics").json(&json!(batch)).send().await;
    assert_eq!(
        (answer.status, &answer.json()["accepted"]),
        (StatusCode::OK, &json!(10))
    );
    assert_eq!(app.stored("a", "latency_ms").await.len(), 11);
}

#[tokio::test]
async fn bad_batches_are_rejected_whole_and_store_nothing() {
    let app = app();
    let answer = app
        .post("/api/v1/metrics")
        .json(&json!([{"service": "a", "metric": "latency_ms", "value": 1}, {"service": "a", "metric": "latency_ms", "value": "NaN"}]))
        .send()
        .await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "invalid_field");
    assert_eq!(body["errors"][0]["field"], "/1/value");
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("finite")
    );
    assert_eq!(app.stored("a", "latency_ms").await.len(), 0);
}

#[tokio::test]
async fn malformed_empty_and_oversized_bodies() {
    let app = build().max_body(1000).start();
    let answer = app
        .post("/api/v1/metrics")
        .body("{\"service\": ")
        .send()
        .await;
    let body: Value = serde_json::from_slice(&answer.bytes).unwrap();
    assert_eq!(
        (answer.status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let answer = app.post("/api/v1/plots").body("").send().await;
    let body: Value = serde_json::from_slice(&answer.bytes).unwrap();
    assert_eq!(
        (answer.status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_body"))
    );
    let answer = app.post("/api/v1/metrics").json(&batch(100)).send().await;
    let body: Value = serde_json::from_slice(&answer.bytes).unwrap();
    assert_eq!(
        (answer.status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
}

#[tokio::test]
async fn json_routes_refuse_other_content_types() {
    let app = app();
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1});
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ] {
        let call = app.post("/api/v1/metrics").json(&sample);
        let call = match content_type {
            Some(content_type) => call.header("content-type", content_type),
            None => call.without("content-type"),
        };
        let answer = call.send().await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert_eq!(answer.json()["code"], "unsupported_media_type");
    }
    assert_eq!(app.stored("a", "latency_ms").await.len(), 0);
}

#[tokio::test]
async fn a_retried_batch_with_an_idempotency_key_is_stored_once() {
    let app = app();
    let keyed = |key: &str, body: &Value| {
        app.post("/api/v1/metrics")
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let batch = batch(50);
    let answer = keyed("k-1", &batch).await;
    assert_eq!(
        (answer.status, &answer.json()["accepted"]),
        (StatusCode::OK, &json!(50))
    );
    assert!(!answer.headers.contains_key("idempotent-replayed"));
    for _ in 0..2 {
        let answer = keyed("k-1", &batch).await;
        assert_eq!(
            (answer.status, &answer.json()["accepted"]),
            (StatusCode::OK, &json!(50))
        );
        assert_eq!(answer.headers["idempotent-replayed"], "true");
    }
    assert_eq!(app.stored("a", "latency_ms").await.len(), 50);
    // The same key with another body is refused, and stores nothing.
    let other = json!([{"service": "a", "metric": "latency_ms", "value": 1}]);
    let answer = keyed("k-1", &other).await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    assert_eq!(app.stored("a", "latency_ms").await.len(), 50);
    // Another key is another batch.
    assert_eq!(keyed("k-2", &batch).await.status, StatusCode::OK);
    assert_eq!(app.stored("a", "latency_ms").await.len(), 100);
    // Keys are checked like any field.
    for bad in ["", &"x".repeat(256), "has space"] {
        let answer = keyed(bad, &batch).await;
        let body = answer.json();
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {body}"
        );
        assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    }
    assert_eq!(app.stored("a", "latency_ms").await.len(), 100);
}

#[tokio::test]
async fn a_batch_whose_write_failed_after_storing_is_not_counted_twice_on_retry() {
    let app = app();
    // The write was acknowledged but the answer lost, or the raw samples were written
    // and the rollups were not: the store wrote, then reported a failure, once.
    app.store.next(
        "insert",
        1,
        Fault::FailAfter(PortError::unavailable("mongodb", "connection reset")),
    );
    let keyed = || {
        app.post("/api/v1/metrics")
            .header("idempotency-key", "retry-me")
            .json(&batch(20))
            .send()
    };
    assert_eq!(keyed().await.status, StatusCode::SERVICE_UNAVAILABLE);
    // The client was told nothing was accepted, and retries with the same key.
    let answer = keyed().await;
    assert_eq!(
        (answer.status, &answer.json()["accepted"]),
        (StatusCode::OK, &json!(20))
    );
    assert_eq!(app.stored("a", "latency_ms").await.len(), 20, "stored once");
    let rollups = app
        .store
        .rollups(&SeriesQuery {
            service: "a",
            metric: "latency_ms",
            from_ms: 0,
            until_ms: i64::MAX,
            with_timestamps: false,
            select: plotq_ports::LabelSelect::ALL,
        })
        .await
        .unwrap();
    let counted: u64 = rollups.minutes.iter().map(|(_, r)| r.count).sum();
    assert_eq!(counted, 20, "and counted once");
}

#[tokio::test]
async fn a_full_store_refuses_ingest_with_507_and_keeps_what_it_had() {
    // One batch of 200 samples holds 3,216 bytes of the store (chunk, minute and hour
    // rollups and the series' bookkeeping, as counted); a second's chunk (~180 bytes)
    // would take it past 3,300.
    let app = build()
        .store(MemoryStore::new(MemoryStoreConfig {
            max_bytes: 3_300,
            ..Default::default()
        }))
        .start();
    let ingest = || app.post("/api/v1/metrics").json(&batch(200)).send();
    assert_eq!(ingest().await.status, StatusCode::OK);
    let answer = ingest().await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["code"], "store_full");
    assert!(answer.headers.contains_key("retry-after"));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_MEMORY_STORE_MAX_BYTES"),
        "{body}"
    );
    assert_eq!(
        app.stored("a", "latency_ms").await.len(),
        200,
        "the accepted batch is intact"
    );
}

#[tokio::test]
async fn nothing_sent_is_silently_lost_seconds_unknown_fields_and_expired_samples() {
    let app = app();
    let now = plotq_ports::clock::now_ms();
    let day = 24 * 3_600_000;
    for (sample, field, says) in [
        // Epoch seconds would land in 1970 and vanish: refused naming the unit.
        (
            json!({"service": "a", "metric": "m", "value": 1, "timestamp": now / 1000}),
            "/timestamp",
            "epoch seconds",
        ),
        // Labels are not kept yet: refused by name, never dropped.
        (
            json!({"service": "a", "metric": "m", "value": 1, "tags": {"route": "/pay"}}),
            "/tags",
            "labels",
        ),
        // Past the rollup retention (90 days) nothing would be kept.
        (
            json!({"service": "a", "metric": "m", "value": 1, "timestamp": now - 91 * day}),
            "/0/timestamp",
            "rollup retention",
        ),
    ] {
        let answer = app.post("/api/v1/metrics").json(&sample).send().await;
        let body = answer.json();
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        assert!(
            body["errors"][0]["problem"]
                .as_str()
                .unwrap()
                .contains(says),
            "{body}"
        );
    }
    assert!(app.stored("a", "m").await.is_empty());
    // Older than the raw retention (48 h) but within the rollups': stored, and said so.
    let answer = app
        .post("/api/v1/metrics")
        .json(&json!([
            {"service": "a", "metric": "m", "value": 1, "timestamp": now - 3 * day},
            {"service": "a", "metric": "m", "value": 2, "timestamp": now - 60_000},
        ]))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({"accepted": 2, "rollup_only": 1}));
    let answer = app
        .post("/api/v1/metrics")
        .json(&json!({"service": "a", "metric": "m", "value": 3}))
        .send()
        .await;
    assert_eq!(answer.json(), json!({"accepted": 1}));
}
