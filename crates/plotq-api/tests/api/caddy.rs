//! `POST /api/v1/ingest/caddy`: the fixture of real Caddy 2.7 lines counted and stored,
//! the accepted content types (415 otherwise), the query's mapping (422 when invalid; a
//! host that no rule and no default service names is a malformed line, never a service),
//! empty and oversized bodies, `Idempotency-Key` (covering the query as well as the
//! body, and released when the client gave up), scopes and service allowlists, and the
//! route's place in the OpenAPI document.

use crate::helpers::{App, Tokens, app, build, documented, parameter_names};
use axum::http::StatusCode;
use plotq_ports::ViewRegistry;
use plotq_ports::faulty::Fault;
use serde_json::{Value, json};
use std::time::Duration;

#[path = "../../../../tests/fixtures/caddy/fixture.rs"]
mod fixture;
use fixture::{ACCESS_LOG as FIXTURE, UNMAPPED_ERRORS, shift_ts};
const NDJSON: &str = "application/x-ndjson";

/// The fixture with every numeric `ts` moved by whole seconds so that its first entry
/// lies two minutes ago (stores keep only recent raw samples).
fn recent_fixture() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    shift_ts(FIXTURE, now - 120 - 1_700_000_001)
}

/// Posts `body` as lines to the route with `query` (`?…` or empty).
async fn post_lines(app: &App, query: &str, body: &str) -> (StatusCode, Value) {
    let answer = app
        .post(format!("/api/v1/ingest/caddy{query}"))
        .lines(body.to_owned())
        .send()
        .await;
    (answer.status, answer.json())
}

/// Every service that received samples.
async fn services(app: &App) -> Vec<String> {
    app.views.services(0).await.unwrap()
}

/// `(line, field)` of each reported malformed line.
fn error_fields(body: &Value) -> Vec<(u64, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The problem of a host that no rule and no default service names.
fn unmapped(host: &str) -> String {
    format!(
        "/request/host: {host:?} matches no map rule, and no default service was given (`service=`)"
    )
}

#[tokio::test]
async fn the_fixture_is_counted_and_its_access_entries_stored() {
    let app = app();
    let fixture = recent_fixture();
    // The README's query, as written there (`=` inside the value unencoded).
    let (status, body) = post_lines(
        &app,
        "?service=edge&map=api.example.com=api,*.example.com=web",
        &fixture,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lines"], 16);
    assert_eq!(body["accepted"], 9);
    assert_eq!(body["samples"], 18);
    assert_eq!(body["skipped"], 3);
    assert_eq!(body["malformed"], 4);
    let fields = |list: &[(u64, &str)]| -> Vec<(u64, String)> {
        list.iter().map(|(l, f)| (*l, (*f).to_owned())).collect()
    };
    assert_eq!(
        error_fields(&body),
        fields(&[(8, ""), (10, "/status"), (11, "/duration"), (12, "/status")])
    );
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .starts_with("not JSON (EOF while parsing"),
        "{body}"
    );
    assert!(
        body["errors"][1]["problem"]
            .as_str()
            .unwrap()
            .starts_with("/status: must be a number"),
        "{body}"
    );
    assert_eq!(
        app.stored("api", "status_code").await,
        [200.0, 201.0, 404.0, 502.0]
    );
    assert_eq!(
        app.stored("web", "status_code").await,
        [200.0, 200.0, 304.0, 500.0]
    );
    assert_eq!(app.stored("edge", "status_code").await, [308.0]);
    let api_ms = app.stored("api", "http_request_duration_ms").await;
    let expected = [2.113004, 12.006148, 30.012875, 48.213337];
    assert_eq!(api_ms.len(), expected.len());
    for (got, want) in api_ms.iter().zip(expected) {
        assert!((got - want).abs() < 1e-9, "{api_ms:?}");
    }
    assert_eq!(
        app.stored("edge", "http_request_duration_ms").await.len(),
        1
    );
    assert_eq!(services(&app).await, ["api", "edge", "web"]);

    // Rules without a default service: the scanner's request to the bare IP (line 13)
    // is malformed, and no service is made of its host. Per-method metrics on request.
    let app = self::app();
    let (status, body) = post_lines(
        &app,
        "?map=*.example.com%3Dweb&metric_per_method=true",
        &fixture,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["lines"].clone(),
            body["accepted"].clone(),
            body["samples"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(16), json!(8), json!(16), json!(3), json!(5))
    );
    assert_eq!(
        error_fields(&body),
        fields(&[
            (8, ""),
            (10, "/status"),
            (11, "/duration"),
            (12, "/status"),
            (13, "/request/host")
        ])
    );
    assert_eq!(body["errors"][4]["problem"], unmapped("152.53.179.101"));
    for (method, n) in [("get", 4), ("head", 1), ("post", 2), ("put", 1)] {
        assert_eq!(
            app.stored("web", &format!("http_request_duration_ms.{method}"))
                .await
                .len(),
            n,
            "{method}"
        );
    }
    assert!(
        app.stored("web", "http_request_duration_ms")
            .await
            .is_empty()
    );
    assert_eq!(
        app.stored("web", "status_code").await,
        [200.0, 200.0, 200.0, 201.0, 304.0, 404.0, 500.0, 502.0]
    );
    assert_eq!(services(&app).await, ["web"]);

    // No mapping at all: every access entry is malformed, nothing is stored.
    let app = self::app();
    let (status, body) = post_lines(&app, "", &fixture).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["accepted"].clone(),
            body["samples"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(0), json!(0), json!(3), json!(13))
    );
    assert_eq!(
        error_fields(&body),
        fields(&UNMAPPED_ERRORS.map(|(line, field)| (line as u64, field)))
    );
    assert_eq!(body["errors"][0]["problem"], unmapped("shop.example.com"));
    assert_eq!(body["errors"][10]["problem"], unmapped("152.53.179.101"));
    assert!(services(&app).await.is_empty());
    for service in ["shop.example.com", "api.example.com", "152.53.179.101"] {
        assert!(app.stored(service, "status_code").await.is_empty());
    }
}

#[tokio::test]
async fn an_unknown_method_folds_into_the_other_metric() {
    let app = app();
    let line = recent_fixture().lines().next().unwrap().to_owned();
    let brew = line.replace(r#""method":"GET""#, r#""method":"BREW""#);
    let propfind = line.replace(r#""method":"GET""#, r#""method":"propfind""#);
    assert_ne!(brew, line);
    let body = format!("{line}\n{brew}\n{propfind}\n");
    let (status, answer) = post_lines(&app, "?service=edge&metric_per_method=true", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(
        app.stored("edge", "http_request_duration_ms.get")
            .await
            .len(),
        1
    );
    assert_eq!(
        app.stored("edge", "http_request_duration_ms.other")
            .await
            .len(),
        2
    );
    for invented in ["brew", "propfind"] {
        assert!(
            app.stored("edge", &format!("http_request_duration_ms.{invented}"))
                .await
                .is_empty()
        );
    }
    assert_eq!(app.stored("edge", "status_code").await.len(), 3);
}

#[tokio::test]
async fn lines_in_any_line_content_type_anything_else_is_415() {
    let app = app();
    let line = FIXTURE.lines().next().unwrap();
    let post = |content_type: Option<&str>| {
        let call = app.post("/api/v1/ingest/caddy?service=edge").body(line);
        let call = match content_type {
            Some(content_type) => call.header("content-type", content_type),
            None => call.without("content-type"),
        };
        call.send()
    };
    for content_type in [
        "application/x-ndjson",
        "application/jsonl",
        "application/json-lines",
        "Application/X-NDJSON; charset=utf-8",
    ] {
        let answer = post(Some(content_type)).await;
        assert_eq!(
            (answer.status, answer.json()["accepted"].clone()),
            (StatusCode::OK, json!(1)),
            "{content_type}"
        );
    }
    // A content type a cross-site form or `fetch` may send without a CORS preflight
    // (`text/plain` above all) is refused, like anything else that is not lines.
    for content_type in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("multipart/form-data; boundary=x"),
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let answer = post(content_type).await;
        assert_eq!(answer.status, 415, "{content_type:?}");
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert_eq!(answer.json()["code"], "unsupported_media_type");
    }
}

#[tokio::test]
async fn empty_bodies_and_bodies_without_access_entries_are_answered_with_counts() {
    let app = app();
    let zero = json!({"lines": 0, "accepted": 0, "samples": 0, "skipped": 0, "malformed": 0, "errors": []});
    assert_eq!(
        post_lines(&app, "", "").await,
        (StatusCode::OK, zero.clone())
    );
    assert_eq!(
        post_lines(&app, "", "\n\r\n  \n").await,
        (StatusCode::OK, zero)
    );
    let (status, body) =
        post_lines(&app, "", "garbage\n{\"logger\":\"tls\",\"msg\":\"x\"}\n").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["lines"].clone(),
            body["skipped"].clone(),
            body["malformed"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!(body["errors"][0]["line"], 1);
}

#[tokio::test]
async fn bad_queries_oversized_and_overlong_bodies_are_refused_whole() {
    let app = build().max_body(64 * 1024).start();
    let fixture = recent_fixture();
    // Each query valid but for one parameter: nothing of the batch is stored.
    for (query, field) in [
        (
            "?service=bad%20name&map=api.example.com%3Dapi",
            "/query/service",
        ),
        ("?service=edge&map=nohost", "/query/map"),
        ("?service=edge&map=a%3Dbad%20name", "/query/map"),
        ("?service=edge&metric_per_method=maybe", "/query"),
    ] {
        let (status, body) = post_lines(&app, query, &fixture).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let big = fixture.repeat(40);
    let (status, body) = post_lines(&app, "?service=edge", &big).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("body_too_large"))
    );
    assert!(services(&app).await.is_empty());
    let app = build().max_body(1024 * 1024).start();
    let many = "x\n".repeat(plotq_api::caddy::MAX_LINES + 1);
    let (status, body) = post_lines(&app, "?service=edge", &many).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/body");
    assert!(services(&app).await.is_empty());
}

#[tokio::test]
async fn a_retried_batch_with_an_idempotency_key_is_stored_once() {
    let app = app();
    let fixture = recent_fixture();
    let post = |query: &str, key: &str, body: &str| {
        app.post(format!("/api/v1/ingest/caddy{query}"))
            .header("idempotency-key", key)
            .lines(body.to_owned())
            .send()
    };
    let query = "?service=edge&map=api.example.com%3Dapi";
    let first = post(query, "caddy-test-1", &fixture).await;
    let again = post(query, "caddy-test-1", &fixture).await;
    let (b1, b2) = (first.json(), again.json());
    assert_eq!(
        (first.status, again.status),
        (StatusCode::OK, StatusCode::OK),
        "{b1} {b2}"
    );
    assert_eq!(b1["accepted"], 9, "{b1}");
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(b1, b2);
    assert_eq!(app.stored("api", "status_code").await.len(), 4);
    assert_eq!(app.stored("edge", "status_code").await.len(), 5);
    let reused = |status: StatusCode, body: &Value| {
        assert_eq!(
            (status, body["code"].clone()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!("idempotency_key_reused")
            ),
            "{body}"
        );
        assert_eq!(body["errors"][0]["field"], "/headers/idempotency-key");
    };
    // Another body under the key.
    let other = fixture.lines().take(3).collect::<Vec<_>>().join("\n");
    let answer = post(query, "caddy-test-1", &other).await;
    reused(answer.status, &answer.json());
    // The same body under the key with another mapping: other samples, so another batch.
    for other_query in [
        "?service=edge&map=*.example.com%3Dweb",
        "?service=web&map=api.example.com%3Dapi",
        "?service=edge&map=api.example.com%3Dapi&metric_per_method=true",
    ] {
        let answer = post(other_query, "caddy-test-1", &fixture).await;
        reused(answer.status, &answer.json());
    }
    // Nothing of the refused requests was stored.
    assert_eq!(services(&app).await, ["api", "edge"]);
    assert_eq!(app.stored("api", "status_code").await.len(), 4);
    assert_eq!(app.stored("edge", "status_code").await.len(), 5);
    // The first mapping again is still the same batch.
    let answer = post(query, "caddy-test-1", &fixture).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["idempotent-replayed"], "true");
    assert_eq!(answer.json(), b1);
    let answer = post("", "with space", FIXTURE).await;
    assert_eq!(answer.status, 422, "{}", answer.json());
}

#[tokio::test]
async fn a_retry_after_the_client_gave_up_is_stored_at_once() {
    // `plotq tail` killed with a batch in flight: the api drops the request's handler
    // (hyper does, when the connection closes) while it takes the key or writes. The
    // same batch sent again under its key is stored now, not answered `409
    // idempotency_key_in_use` until the in-progress mark lapses (60 s).
    for hang_in in ["the key's reply", "the write"] {
        let app = app();
        if hang_in == "the key's reply" {
            // Redis took the key at once, its reply is still on the way.
            app.cache.always(
                "begin_idempotent",
                Fault::DelayAfter(Duration::from_millis(300)),
            );
        } else {
            // The first write never finishes.
            app.store.next("insert", 1, Fault::Hang);
        }
        let fixture = recent_fixture();
        let post = || {
            app.post("/api/v1/ingest/caddy?service=edge")
                .header("idempotency-key", "caddy-tail-g-0")
                .lines(fixture.clone())
                .send()
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(100), post()).await;
        assert!(gave_up.is_err(), "{hang_in}: the first request hangs");
        // Released in the background: allow it a moment, far less than the mark's 60 s.
        let until = std::time::Instant::now() + Duration::from_secs(3);
        let answer = loop {
            let answer = post().await;
            if answer.status != StatusCode::CONFLICT || std::time::Instant::now() > until {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let body = answer.json();
        assert_eq!(answer.status, StatusCode::OK, "{hang_in}: {body}");
        assert_eq!(body["accepted"], 9, "{hang_in}: {body}");
        assert_eq!(
            app.stored("edge", "status_code").await.len(),
            9,
            "{hang_in}"
        );
    }
}

#[tokio::test]
async fn the_ingest_scope_and_the_callers_services_are_required() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let send = |token: Option<&str>, query: &str| {
        app.post(format!("/api/v1/ingest/caddy{query}"))
            .token(token)
            .lines(recent_fixture())
            .send()
    };
    assert_eq!(send(None, "?service=edge").await.status, 401);
    assert_eq!(
        send(Some(&tokens.reader), "?service=edge").await.status,
        403
    );
    // A service outside the tenant's: the whole batch is refused.
    for query in [
        "?service=team-b-edge",
        "?service=team-a-edge&map=api.example.com%3Dteam-b-api",
    ] {
        let answer = send(Some(&tokens.tenant), query).await;
        let body = answer.json();
        assert_eq!(answer.status, 403, "{query}: {body}");
        assert_eq!(body["code"], "forbidden");
        assert!(
            body["detail"].as_str().unwrap().contains("team-b-"),
            "{body}"
        );
    }
    assert!(services(&app).await.is_empty());
    // Without a mapping, no line names a service: nothing to store, nothing refused.
    let answer = send(Some(&tokens.tenant), "").await;
    let body = answer.json();
    assert_eq!(answer.status, 200, "{body}");
    assert_eq!(
        (body["accepted"].clone(), body["malformed"].clone()),
        (json!(0), json!(13))
    );
    assert_eq!(
        send(Some(&tokens.tenant), "?service=team-a-edge")
            .await
            .status,
        200
    );
    assert_eq!(
        send(Some(&tokens.ingest), "?service=edge").await.status,
        200
    );
    assert_eq!(app.stored("team-a-edge", "status_code").await.len(), 9);
    assert_eq!(app.stored("edge", "status_code").await.len(), 9);
    assert_eq!(services(&app).await, ["edge", "team-a-edge"]);
}

#[test]
fn the_route_is_documented_with_its_body_and_answer() {
    let (op, doc) = documented("/api/v1/ingest/caddy", "post");
    assert!(
        op["requestBody"]["content"][NDJSON]["schema"]["type"] == "string",
        "{op}"
    );
    for status in [
        "200", "400", "401", "403", "413", "415", "422", "429", "503",
    ] {
        assert!(op["responses"][status].is_object(), "{status} in {op}");
    }
    assert_eq!(
        parameter_names(&op),
        ["service", "map", "metric_per_method", "Idempotency-Key"]
    );
    let answer = &doc["components"]["schemas"]["CaddyIngestDoc"]["properties"];
    for field in [
        "lines",
        "accepted",
        "samples",
        "skipped",
        "malformed",
        "errors",
    ] {
        assert!(answer[field].is_object(), "{field}");
    }
}
