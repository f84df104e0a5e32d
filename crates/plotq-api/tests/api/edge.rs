//! What the production edge and the error paths answer: dependency failures as `503`
//! with `Retry-After` (never 2xx), bounded error bodies, problem+json for unknown
//! routes, wrong methods and long URIs, writes from foreign pages refused, open mode
//! answering only to loopback and configured names, and `nosniff` everywhere with a
//! policy on pages and SVGs.

use crate::helpers::{app, build};
use axum::http::StatusCode;
use plotq_domain::{PlotKind, PlotSpec, ServiceName};
use plotq_http::EdgeConfig;
use plotq_ports::PortError;
use plotq_ports::faulty::Fault;
use serde_json::{Value, json};

#[tokio::test]
async fn dependency_failures_are_503_with_retry_after_never_2xx() {
    let app = app();
    // The store is down; the broker refuses the job.
    app.store.always(
        "*",
        Fault::Fail(PortError::unavailable("mongodb", "connection refused")),
    );
    app.queue.always(
        "publish",
        Fault::Fail(PortError::refused(
            "rabbitmq",
            "the job was not routed to a queue (312 NO_ROUTE)",
        )),
    );
    let answer = app
        .post("/api/v1/metrics")
        .json(&json!({"service": "a", "metric": "m", "value": 1}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers.contains_key("retry-after"));
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("mongodb")
    );
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "histogram", "service": "a"}))
        .send()
        .await;
    let body = answer.json();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "dependency_refused");
    // The broker's own words stay in the log.
    assert!(!body["detail"].as_str().unwrap().contains("NO_ROUTE"));
}

#[tokio::test]
async fn error_bodies_are_bounded_however_many_fields_are_wrong() {
    // 690,000 unknown fields (8 MB) used to produce a 226 MB answer.
    let app = build().max_body(16 * 1024 * 1024).start();
    let mut body = String::from("{\"kind\":\"histogram\",\"service\":\"a\"");
    for i in 0..690_000 {
        body.push_str(&format!(",\"f{i}\":1"));
    }
    body.push('}');
    let answer = app.post("/api/v1/plots").body(body).send().await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.bytes.len() < 64 * 1024,
        "error body is {} bytes",
        answer.bytes.len()
    );
    let problem: Value = serde_json::from_slice(&answer.bytes).unwrap();
    let errors = problem["errors"].as_array().unwrap();
    assert!(errors.len() <= plotq_domain::error::MAX_REPORTED_ERRORS + 1);
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_long_uris_answer_problem_json() {
    let app = app();
    for (method, uri, status, code) in [
        ("GET", "/nope".to_owned(), 404, "not_found"),
        (
            "DELETE",
            "/api/v1/metrics".to_owned(),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            format!("/api/v1/plots/{}", "x".repeat(9000)),
            414,
            "uri_too_long",
        ),
    ] {
        let answer = app.call(method, &uri).send().await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {}",
            &uri[..uri.len().min(40)]
        );
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert_eq!(answer.json()["code"], code);
    }
}

#[tokio::test]
async fn writes_from_pages_of_other_origins_are_refused_and_store_nothing() {
    let allowed = "https://dash.example.com";
    let app = build()
        .edge(EdgeConfig {
            cors_origins: vec![allowed.to_owned()],
            ..EdgeConfig::default()
        })
        .start();
    let sample = json!({"service": "a", "metric": "latency_ms", "value": 1});
    let line = r#"{"level":"info","ts":1795000000.5,"logger":"http.log.access","msg":"handled request","request":{"host":"a.example.com","method":"GET","uri":"/"},"duration":0.01,"status":200}"#;
    for (origin, accepted) in [
        ("https://evil.example.net", false),
        ("null", false),
        ("http://plotq.local:8080.evil.example.net", false),
        ("http://plotq.local:8080", true), // its own origin (Host below)
        (allowed, true),
    ] {
        let answer = app
            .post("/api/v1/metrics")
            .header("host", "plotq.local:8080")
            .header("origin", origin)
            .json(&sample)
            .send()
            .await;
        let caddy = app
            .post("/api/v1/ingest/caddy?service=a")
            .header("host", "plotq.local:8080")
            .header("origin", origin)
            .lines(line)
            .send()
            .await;
        if accepted {
            assert_eq!(
                (answer.status, caddy.status),
                (StatusCode::OK, StatusCode::OK),
                "{origin}"
            );
        } else {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{origin}");
            assert_eq!(caddy.status, StatusCode::FORBIDDEN, "{origin}");
            assert_eq!(answer.headers["content-type"], "application/problem+json");
            assert_eq!(answer.json()["code"], "origin_not_allowed", "{origin}");
        }
        // Reads are not writes: an <img> of another site may load plots it may see.
        let answer = app
            .get("/api/v1/services")
            .header("host", "plotq.local:8080")
            .header("origin", origin)
            .send()
            .await;
        assert_eq!(answer.status, StatusCode::OK, "GET from {origin}");
    }
    assert_eq!(
        app.stored("a", "latency_ms").await.len(),
        2,
        "only the two allowed writes"
    );
    // A form post without Origin (an old browser) is still refused by its content type.
    let answer = app
        .post("/api/v1/ingest/caddy?service=a")
        .header("content-type", "text/plain")
        .body(line)
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn open_mode_on_loopback_answers_only_to_loopback_and_configured_names() {
    let mut hosts = plotq_http::edge::loopback_hosts();
    hosts.push("plotq.internal".to_owned());
    let app = build()
        .edge(EdgeConfig {
            allowed_hosts: Some(hosts),
            ..EdgeConfig::default()
        })
        .start();
    for (host, allowed) in [
        ("127.0.0.1:8080", true),
        ("localhost:8080", true),
        ("LOCALHOST", true),
        ("[::1]:8080", true),
        ("plotq.internal:8080", true),
        ("rebind.evil.example.net:8080", false),
        ("127.0.0.1.evil.example.net", false),
        ("localhost.evil.example.net:8080", false),
    ] {
        let answer = app
            .get("/api/v1/services")
            .header("host", host)
            .send()
            .await;
        if allowed {
            assert_eq!(answer.status, StatusCode::OK, "{host}");
        } else {
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{host}");
            assert_eq!(answer.json()["code"], "host_not_allowed", "{host}");
        }
        let answer = app
            .post("/api/v1/metrics")
            .header("host", host)
            .json(&json!({"service": "a", "metric": "latency_ms", "value": 1}))
            .send()
            .await;
        assert_eq!(answer.status.is_success(), allowed, "POST to {host}");
    }
    assert_eq!(app.stored("a", "latency_ms").await.len(), 5);
}

#[tokio::test]
async fn every_answer_is_nosniff_and_pages_and_svgs_carry_a_policy() {
    let app = build()
        .dashboard("http://127.0.0.1:8081/api/v1/events")
        .start();
    let answer = app.get("/api/v1/services").send().await;
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    let answer = app.get("/api/v1/nope").send().await;
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    let answer = app.get("/").send().await;
    assert_eq!(answer.status, StatusCode::OK);
    let h = &answer.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "connect-src 'self' http://127.0.0.1:8081",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    // An SVG plot: scripts it might hold never run (served through the same edge).
    let mut spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
    spec.format = plotq_domain::ImageFormat::Svg;
    let job = app
        .done_job(spec, b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        .await;
    let answer = app
        .get(format!("/api/v1/plots/{}/image", job.id))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "image/svg+xml");
    let csp = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
}

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_whole() {
    let app = build().dashboard("/api/v1/events").start();
    let script = app.get("/assets/dashboard.js").send().await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers["cache-control"], "no-cache");
    let text = String::from_utf8(script.bytes).unwrap();
    // Both of its files, in order: the view's names first, then what uses them.
    let view = text.find("function readView()").expect("view.js");
    let feeds = text.find("// Live panels").expect("feeds.js");
    assert!(view < feeds);
    assert!(text.ends_with("start();\n"));
    for (uri, content_type) in [
        ("/assets/health.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard.css", "text/css; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let answer = app.get(uri).send().await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert_eq!(answer.headers["content-type"], content_type, "{uri}");
    }
}
