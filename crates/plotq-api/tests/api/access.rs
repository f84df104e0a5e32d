//! Authentication and scopes: every route needs a token with its scope, readiness
//! details are for admins, read tickets open images for browsers and nothing else, and
//! tickets and links die with the token that minted them (even under the same name).

use crate::helpers::{Tokens, build};
use axum::http::StatusCode;
use plotq_domain::{JobId, PlotKind, PlotSpec, ServiceName};
use plotq_http::Probe;
use plotq_http::auth::{hash_token, new_token, parse_tokens};
use plotq_ports::PortError;
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::test]
async fn every_route_needs_a_token_with_its_scope() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1});
    let spec = json!({"kind": "histogram", "service": "a"});
    let id = JobId::new_random();
    let routes: Vec<(&str, String, Option<&Value>, &str)> = vec![
        ("POST", "/api/v1/metrics".into(), Some(&sample), "ingest"),
        ("POST", "/api/v1/plots".into(), Some(&spec), "read"),
        ("GET", format!("/api/v1/plots/{id}"), None, "read"),
        ("GET", format!("/api/v1/plots/{id}/png"), None, "read"),
        ("GET", format!("/api/v1/plots/{id}/image"), None, "read"),
        ("GET", "/api/v1/services".into(), None, "read"),
        ("POST", "/api/v1/tickets".into(), None, "read"),
    ];
    for (method, uri, body, scope) in &routes {
        let send = |token: Option<&str>| {
            let call = app.call(method, uri).token(token);
            let call = match body {
                Some(body) => call.json(body),
                None => call,
            };
            call.send()
        };
        for token in [None, Some("pq_wrong")] {
            let answer = send(token).await;
            assert_eq!(
                answer.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}"
            );
            assert_eq!(answer.json()["code"], "unauthorized");
        }
        let without = if *scope == "ingest" {
            &tokens.reader
        } else {
            &tokens.ingest
        };
        let answer = send(Some(without)).await;
        let problem = answer.json();
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{method} {uri} without {scope}"
        );
        assert_eq!(problem["code"], "forbidden");
        assert!(problem["detail"].as_str().unwrap().contains(scope));
    }
    assert_eq!(
        app.stored("a", "latency_ms").await.len(),
        0,
        "nothing stored without ingest"
    );
    let answer = app
        .post("/api/v1/metrics")
        .token(Some(&tokens.ingest))
        .json(&sample)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = app
        .post("/api/v1/plots")
        .token(Some(&tokens.reader))
        .json(&spec)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn readiness_details_are_for_admins_only() {
    let tokens = Tokens::new();
    let failing = Probe {
        name: "redis",
        check: Arc::new(|| {
            Box::pin(async {
                Err(PortError::unavailable(
                    "redis",
                    "connect to 10.0.0.7:6379 refused",
                ))
            })
        }),
    };
    let app = build()
        .tokens(&tokens.lines())
        .probes(vec![failing])
        .start();
    for (token, detailed) in [
        (None, false),
        (Some(tokens.reader.as_str()), false),
        (Some(tokens.admin.as_str()), true),
    ] {
        let answer = app.get("/readyz").token(token).send().await;
        let body = answer.json();
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["redis"], "failing", "everyone learns which");
        assert_eq!(body["failing"][0]["dependency"], "redis");
        let text = body.to_string();
        assert_eq!(text.contains("10.0.0.7"), detailed, "{token:?}: {text}");
    }
}

#[tokio::test]
async fn read_tickets_open_images_for_browsers_and_nothing_else() {
    let tokens = Tokens::new();
    let app = build().tokens(&tokens.lines()).start();
    let spec = PlotSpec::new(
        PlotKind::Histogram,
        ServiceName::parse("team-a-web").unwrap(),
    );
    let job = app.done_job(spec, b"\x89PNG").await;
    let answer = app
        .post("/api/v1/tickets")
        .token(Some(&tokens.tenant))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let ticket = answer.json()["ticket"].as_str().unwrap().to_owned();
    let png = format!("/api/v1/plots/{}/png?ticket={ticket}", job.id);
    let answer = app.get(png).send().await;
    assert_eq!(
        (answer.status, answer.bytes.as_slice()),
        (StatusCode::OK, &b"\x89PNG"[..])
    );
    // A ticket does not write, and a tampered one is refused.
    let answer = app
        .post(format!("/api/v1/plots?ticket={ticket}"))
        .json(&json!({"kind": "histogram", "service": "team-a-web"}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let forged = format!("/api/v1/plots/{}/png?ticket=x{ticket}", job.id);
    assert_eq!(
        app.get(forged).send().await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tickets_and_links_die_with_their_token_even_under_the_same_name() {
    let (old, new) = (new_token(), new_token());
    let entry = |token: &str, scopes: &str| {
        format!(
            "{} scopes={scopes} services=team-a-* name=team-a",
            hash_token(token)
        )
    };
    let app = build().tokens(&entry(&old, "read,ingest")).start();
    let answer = app.post("/api/v1/tickets").token(Some(&old)).send().await;
    assert_eq!(answer.status, StatusCode::OK);
    let ticket = answer.json()["ticket"].as_str().unwrap().to_owned();
    let query = "kind=histogram&service=team-a-api&window=1h";
    let answer = app
        .post("/api/v1/render/grants")
        .token(Some(&old))
        .json(&json!({"query": query}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let link = answer.json()["url"].as_str().unwrap().to_owned();
    let services = format!("/api/v1/services?ticket={ticket}");
    assert_eq!(app.get(&services).send().await.status, StatusCode::OK);
    // A percent-encoded ticket is the same ticket.
    let encoded = format!("/api/v1/services?ticket={}", ticket.replace('.', "%2E"));
    assert_eq!(app.get(encoded).send().await.status, StatusCode::OK);

    // Rotated: the same name, a new secret. The old token's ticket and link are dead.
    let rotate = |lines: String| {
        app.edge
            .auth
            .replace_tokens(parse_tokens(&lines).unwrap())
            .unwrap()
    };
    rotate(entry(&new, "read,ingest"));
    let answer = app.get(&services).send().await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["code"], "unauthorized");
    assert_eq!(app.get(&link).send().await.status, StatusCode::UNAUTHORIZED);

    // The new token's ticket works until the token loses `read`.
    let answer = app.post("/api/v1/tickets").token(Some(&new)).send().await;
    let services = format!(
        "/api/v1/services?ticket={}",
        answer.json()["ticket"].as_str().unwrap()
    );
    assert_eq!(app.get(&services).send().await.status, StatusCode::OK);
    rotate(entry(&new, "ingest"));
    assert_eq!(
        app.get(&services).send().await.status,
        StatusCode::UNAUTHORIZED
    );
}
