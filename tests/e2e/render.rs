//! End-to-end: plots by URL (`GET /api/v1/render`) and their signed links
//! (`POST /api/v1/render/grants`), through the real roles in process
//! (`support::app::TestApp`) against RabbitMQ, Redis and the MongoDB-wire server: a PNG
//! within the bounded wait, then `304` for its ETag; the wait's bound (`503` with
//! `Retry-After` when no worker runs); links that open their own plot only, without any
//! other credential; comparison views (several services and options in a view key)
//! refreshed live over SSE.

use crate::support::app::{Backend, Options, TestApp};
use crate::support::{decode_png, samples};
use plotq_http::auth::{hash_token, new_token};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// `GET {url}` with `If-None-Match: etag` when given.
async fn get(client: &reqwest::Client, url: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    request.send().await.unwrap()
}

/// The flow a `curl` of a render URL sees, on either backend.
async fn render_then_not_modified(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            workers: 1,
            api: vec!["--render-wait-ms", "30000"],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let service = unique("render");
    app.ingest(&service, 2_000).await;
    let url = app.url(&format!(
        "/api/v1/render?kind=histogram&service={service}&window=1h&width=800&height=450"
    ));

    // The first call waits for the workers and answers the image itself.
    let first = get(&app.client, &url, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let headers = first.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "image/png");
    let etag = headers[ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let cache_control = headers[CACHE_CONTROL].to_str().unwrap();
    // One time bucket of an hour at 800 px: 60 s.
    assert_eq!(cache_control, "private, max-age=60");
    let job = headers["x-plotq-job"].to_str().unwrap().to_owned();
    let bytes = first.bytes().await.unwrap();
    assert_eq!(decode_png(&bytes), (800, 450));

    // Its statistics are the job's.
    let state: Value = app
        .get(&format!("/api/v1/plots/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(state["stats"][0]["count"], 2_000, "{state}");

    // A repeat with the ETag: 304, the same job, no body; without it, the same bytes.
    let again = get(&app.client, &url, Some(&etag)).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG].to_str().unwrap(), etag);
    assert_eq!(again.headers()["x-plotq-job"].to_str().unwrap(), job);
    assert!(again.bytes().await.unwrap().is_empty());
    let same = get(&app.client, &url, None).await;
    assert_eq!(same.headers()["x-plotq-job"].to_str().unwrap(), job);
    assert_eq!(same.bytes().await.unwrap(), bytes);

    // Another option is another plot: another job and image, sized as asked (a phone
    // at DPR 3 asks for three times the pixels of its layout).
    let sharp_url = app.url(&format!(
        "/api/v1/render?kind=histogram&service={service}&window=1h&width=1200&height=675&scale=3"
    ));
    let sharp = get(&app.client, &sharp_url, None).await;
    assert_eq!(sharp.status(), StatusCode::OK);
    assert_ne!(sharp.headers()["x-plotq-job"].to_str().unwrap(), job);
    assert_eq!(decode_png(&sharp.bytes().await.unwrap()), (1200, 675));

    // A parameter given twice is refused, naming it.
    let twice = get(&app.client, &format!("{url}&width=900"), None).await;
    assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = twice.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("width"),
        "{problem}"
    );

    // Bad parameters are named, as in a plot request.
    let bad = get(
        &app.client,
        &app.url(&format!(
            "/api/v1/render?kind=histogram&service={service}&width=9&log_x=perhaps"
        )),
        None,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = bad.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["/width", "/log_x"], "{problem}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_url_answers_a_png_then_not_modified() {
    render_then_not_modified(Backend::Real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_answers_render_urls_too() {
    render_then_not_modified(Backend::Memory).await;
}

/// With no worker running, the wait ends at its bound with `503` and `Retry-After`, and
/// the job stays queued for a worker to take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wait_is_bounded() {
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 0,
            api: vec!["--render-wait-ms", "400"],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let service = unique("unrendered");
    app.ingest(&service, 100).await;
    let started = Instant::now();
    let answer = app
        .get(&format!(
            "/api/v1/render?kind=cdf&service={service}&window=15m"
        ))
        .await;
    let waited = started.elapsed();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()[RETRY_AFTER], "1");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["code"], "render_timeout", "{problem}");
    assert_eq!(problem["job"]["status"], "queued", "{problem}");
    app.stop().await;
}

/// Signed links: minted with a token, they open their own plot with no other
/// credential (as an `<img>` in a wiki would), and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_open_their_plot_only() {
    let token = new_token();
    let tokens: &'static str = Box::leak(
        format!(
            "{} scopes=read,ingest services=linked-* name=team",
            hash_token(&token)
        )
        .into_boxed_str(),
    );
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 1,
            api: vec![
                "--tokens",
                tokens,
                "--ticket-secret",
                "render-test-ticket-secret-0123456789abcdef",
            ],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let client = &app.client;
    let service = unique("linked");
    let sent = client
        .post(app.url("/api/v1/metrics"))
        .bearer_auth(&token)
        .json(&samples(&service, 500, 60_000))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let query = format!("kind=histogram&service={service}&window=15m&width=600&height=340");

    // Without a credential the render URL is refused; a grant needs a token.
    let bare = get(client, &app.url(&format!("/api/v1/render?{query}")), None).await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let mint = |body: Value, bearer: Option<&str>| {
        let mut request = client.post(app.url("/api/v1/render/grants")).json(&body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(
        mint(json!({"query": query}), None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Only for the token's services, and only for a valid plot.
    let foreign = mint(
        json!({"query": "kind=histogram&service=elsewhere&window=15m"}),
        Some(&token),
    )
    .await
    .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let invalid = mint(json!({"query": format!("{query}&bins=0")}), Some(&token))
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = invalid.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "/query/bins", "{problem}");
    let too_long = mint(
        json!({"query": query, "ttl_secs": 10 * 365 * 86_400}),
        Some(&token),
    )
    .await
    .unwrap();
    assert_eq!(too_long.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let minted = mint(json!({"query": query, "ttl_secs": 3_600}), Some(&token))
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::OK);
    assert_eq!(minted.headers()[CACHE_CONTROL], "no-store");
    let link: Value = minted.json().await.unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with("/api/v1/render?") && url.contains("&grant="),
        "{url}"
    );
    let expires = link["expires_at_ms"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now + 3_500_000..=now + 3_700_000).contains(&expires),
        "{link}"
    );

    // The link alone (no token, no ticket) opens the plot.
    let opened = get(client, &app.url(url), None).await;
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(decode_png(&opened.bytes().await.unwrap()), (600, 340));
    // Its grant opens nothing else: not another size, not another service.
    let grant = link["grant"].as_str().unwrap();
    for other in [
        format!("kind=histogram&service={service}&window=15m&width=601&height=340"),
        "kind=histogram&service=linked-other&window=15m&width=600&height=340".to_owned(),
    ] {
        let refused = get(
            client,
            &app.url(&format!("/api/v1/render?{other}&grant={grant}")),
            None,
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{other}");
    }
    // A tampered grant is refused.
    let tampered = url
        .replace("&grant=e", "&grant=f")
        .replace("&grant=f", "&grant=g");
    assert_eq!(
        get(client, &app.url(&tampered), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

/// A comparison view with options (`a~b/latency_timeseries/…/max.dpr2`) is watched and
/// refreshed like any other: its `plot.ready` carries both services' statistics and
/// where its time axis lies in the image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparison_views_render_live() {
    let app = TestApp::spawn_with(
        Backend::Real,
        Options {
            workers: 1,
            notifier: vec!["--refresh-debounce-secs", "1"],
            ..Options::default()
        },
    )
    .await;
    app.wait_ready(READY).await;
    let (a, b) = (unique("cmp-a"), unique("cmp-b"));
    app.ingest(&a, 300).await;
    app.ingest(&b, 200).await;
    let view = format!("{a}~{b}/latency_timeseries/15m/light/1200x676/max.dpr2");
    let mut events = app
        .events_on(0, &format!("?views={}", urlencode(&view)))
        .await;
    let ready = events
        .next_matching(Duration::from_secs(60), |e| {
            e.event == "plot.ready" && e.data["view"] == view.as_str()
        })
        .await;
    let stats = ready.data["stats"].as_array().unwrap();
    let counts: Vec<(&str, u64)> = stats
        .iter()
        .map(|s| (s["service"].as_str().unwrap(), s["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        counts,
        [(a.as_str(), 300), (b.as_str(), 200)],
        "{}",
        ready.data
    );
    let axis = &ready.data["time_axis"];
    let (left, right) = (
        axis["left_px"].as_u64().unwrap(),
        axis["right_px"].as_u64().unwrap(),
    );
    assert!(left < right && right <= 1200, "{axis}");
    let span = axis["until_ms"].as_i64().unwrap() - axis["from_ms"].as_i64().unwrap();
    assert!((15 * 60_000..=16 * 60_000).contains(&span), "{axis}");
    let png = app
        .get(ready.data["png_url"].as_str().unwrap())
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(decode_png(&png), (1200, 676));
    app.stop().await;
}

fn urlencode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
