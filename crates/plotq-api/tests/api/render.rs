//! `GET /api/v1/render` and its signed links: a link spends its own budget (never its
//! minter's) and identical requests share one job, and answers shared with an earlier
//! job cost no budget; an `<img>` gets every error as an SVG card, other clients as
//! problem+json. No worker runs here, so a render that is queued answers `503
//! render_timeout` once its short wait is over.

use crate::helpers::{App, build};
use axum::http::StatusCode;
use plotq_api::{ApiConfig, RenderConfig};
use plotq_http::LimitsConfig;
use plotq_http::auth::{hash_token, new_token};
use serde_json::{Value, json};
use std::time::Duration;

/// An api with one `read` token named `name` and `limits`, whose renders wait 20 ms.
fn with_reader(name: &str, limits: LimitsConfig) -> (App, String) {
    let token = new_token();
    let app = build()
        .tokens(&format!("{} scopes=read name={name}", hash_token(&token)))
        .limits(limits)
        .config(ApiConfig {
            render: RenderConfig {
                wait: Duration::from_millis(20),
                ..RenderConfig::default()
            },
            ..ApiConfig::default()
        })
        .start();
    (app, token)
}

#[tokio::test]
async fn a_link_spends_its_own_budget_never_its_minters() {
    let (app, token) = with_reader(
        "minter",
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 3,
            grant_requests_per_sec: 1,
            grant_burst: 5,
            ..LimitsConfig::default()
        },
    );
    let answer = app
        .post("/api/v1/render/grants")
        .token(Some(&token))
        .json(&json!({"query": "kind=histogram&service=a&window=1h"}))
        .send()
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let url = answer.json()["url"].as_str().unwrap().to_owned();
    // Anyone hammering the link: its own burst, then 429 — one job for all of it.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let answer = app.get(&url).send().await;
        let code = answer.json()["code"].clone();
        codes.push((
            answer.status.as_u16(),
            code.as_str().unwrap_or("").to_owned(),
        ));
    }
    let limited = codes
        .iter()
        .filter(|(s, c)| *s == 429 && c == "rate_limited")
        .count();
    assert_eq!(limited, 12 - 5, "{codes:?}");
    assert_eq!(
        app.queue.inner().depth(),
        1,
        "identical requests share one job"
    );
    // The minter still has its whole budget for its own plots.
    for i in 0..2 {
        let answer = app
            .post("/api/v1/plots")
            .token(Some(&token))
            .json(&json!({"kind": "histogram", "service": "a", "title": format!("own {i}")}))
            .send()
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "own plot {i}");
    }
}

#[tokio::test]
async fn answers_shared_with_an_earlier_job_cost_no_budget() {
    let (app, token) = with_reader(
        "reader",
        LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 2,
            ..LimitsConfig::default()
        },
    );
    let plot = |body: Value| {
        app.post("/api/v1/plots")
            .token(Some(&token))
            .json(&body)
            .send()
    };
    let spec = json!({"kind": "histogram", "service": "a", "window": "1h"});
    for _ in 0..10 {
        let answer = plot(spec.clone()).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.json());
    }
    for _ in 0..10 {
        let answer = app
            .get("/api/v1/render?kind=histogram&service=a&window=1h&width=800")
            .token(Some(&token))
            .send()
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting, not refused"
        );
    }
    assert_eq!(
        app.queue.inner().depth(),
        2,
        "one job for the POSTs, one for the render URL"
    );
    // A render that is really queued is charged: the burst of 2 is spent.
    let answer = plot(json!({"kind": "cdf", "service": "a"})).await;
    assert_eq!(
        (answer.status, answer.json()["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

/// What a browser's `<img>` sends.
const IMG_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

#[tokio::test]
async fn embeds_get_their_errors_as_cards_and_other_clients_as_problems() {
    let (app, token) = with_reader("embed", LimitsConfig::default());
    let query = "/api/v1/render?kind=histogram&service=checkout&window=1h&width=640&height=360";
    // No token, not yet rendered, a bad parameter: each a card at the link's size.
    for (uri, token, status, code, says) in [
        (
            query.to_owned(),
            None,
            401,
            "unauthorized",
            "This link does not open this plot",
        ),
        (
            query.to_owned(),
            Some(token.as_str()),
            503,
            "render_timeout",
            "Still drawing",
        ),
        (
            format!("{query}&bins=0"),
            Some(token.as_str()),
            422,
            "invalid_field",
            "No plot for this link",
        ),
    ] {
        let answer = app
            .get(uri.clone())
            .token(token)
            .header("accept", IMG_ACCEPT)
            .send()
            .await;
        let svg = String::from_utf8_lossy(&answer.bytes).into_owned();
        assert_eq!(answer.status.as_u16(), status, "{uri}: {svg}");
        assert_eq!(answer.headers["content-type"], "image/svg+xml", "{uri}");
        assert_eq!(answer.headers["cache-control"], "no-store", "{uri}");
        assert_eq!(answer.headers["x-plotq-problem"], code, "{uri}");
        assert!(svg.starts_with("<svg ") && svg.contains(r#"width="640" height="360""#));
        assert!(svg.contains(says), "{uri}: {svg}");
        if status == 503 {
            assert!(answer.headers.contains_key("retry-after"), "{uri}");
        }
        // The same request from a client that does not ask for images: problem+json.
        let plain = app.get(uri.clone()).token(token).send().await;
        assert_eq!(plain.status.as_u16(), status, "{uri}");
        assert_eq!(plain.json()["code"], code, "{uri}");
    }
}
