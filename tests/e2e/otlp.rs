//! OpenTelemetry in, end to end: the OpenTelemetry Python SDK (`tests/otlp/export.py`,
//! its BatchSpanProcessor and OTLP/HTTP exporters, gzip on) exports spans and metrics
//! to standalone and to the distributed roles, and every request span is counted
//! exactly — in `GET /api/v1/stats` (latency count, status codes, error ratio) and in a
//! rendered plot's statistics — as are the counter and the gauge it exports; and by the
//! spans' labels (`route`, `method`, `status`) and the counter's attribute, filtered
//! (`labels`) and split (`group_by`), each count exact; and the cumulative streams (a
//! counter, a histogram and an exponential histogram over three exports) counted once.

use crate::support::app::{Backend, Options, TestApp};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::process::Command;

pub(crate) const READY: Duration = Duration::from_secs(30);
pub(crate) const DONE: Duration = Duration::from_secs(60);

/// Runs the SDK exporter against `app` (a child process awaited, so the roles running in
/// this test's runtime keep serving it); what it reported, and what it logged.
async fn export(
    app: &TestApp,
    service: &str,
    spans: usize,
    errors: usize,
    orders: usize,
) -> (Value, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/otlp/export.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--endpoint", &app.api, "--service", service, "--gzip"])
        .args([
            "--spans",
            &spans.to_string(),
            "--errors",
            &errors.to_string(),
        ])
        .args(["--orders", &orders.to_string()])
        .output()
        .await
        .expect("python3 runs (tests/run.sh installs tests/otlp/requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the exporter failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let reported: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (reported, stderr)
}

pub(crate) async fn stats(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/stats{query}")).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// The SDK's spans and metrics, counted exactly by `/api/v1/stats` and by a plot.
async fn spans_and_metrics_are_counted_exactly(backend: Backend) {
    let app = TestApp::ready(backend, Options::workers(1), READY).await;
    let service = format!("otel-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (spans, errors, orders) = (700, 35, 12);
    let (reported, logged) = export(&app, &service, spans, errors, orders).await;
    // Every export succeeded: the SERVER spans and as many INTERNAL ones were sent.
    assert_eq!(
        reported,
        json!({"spans": 2 * spans, "span_failures": 0, "metric_failures": 0}),
        "{logged}"
    );

    let latency = stats(&app, &format!("?service={service}&window=10m")).await;
    let s = &latency["stats"][0];
    assert_eq!(s["count"], spans, "{latency}");
    // Durations 1..=50 ms: the INTERNAL spans (1 µs) were left out.
    assert_eq!(
        (s["min"].as_f64(), s["max"].as_f64()),
        (Some(1.0), Some(50.0)),
        "{latency}"
    );
    let codes = stats(
        &app,
        &format!("?kind=status_codes&service={service}&window=10m"),
    )
    .await;
    assert_eq!(
        codes["stats"][0]["codes"],
        json!({"200": spans - errors, "500": errors}),
        "{codes}"
    );
    assert_eq!(
        codes["stats"][0]["error_ratio"],
        json!(errors as f64 / spans as f64)
    );

    let counter = stats(
        &app,
        &format!("?service={service}&metric=orders&window=10m"),
    )
    .await;
    assert_eq!(
        (&counter["stats"][0]["count"], &counter["stats"][0]["max"]),
        (&json!(1), &json!(orders as f64)),
        "{counter}"
    );
    let gauge = stats(
        &app,
        &format!("?service={service}&metric=queue.depth&window=10m"),
    )
    .await;
    assert_eq!(gauge["stats"][0]["max"], json!(7.0), "{gauge}");
    // Cumulative streams, by difference: the observable counter's 40, then 100 (since
    // the start) twice (the shutdown's last export) are 40, 60 and 0: 100 in all.
    let sent = stats(
        &app,
        &format!("?service={service}&metric=bytes.sent&window=10m"),
    )
    .await;
    let s = &sent["stats"][0];
    let total = s["mean"].as_f64().unwrap_or(0.0) * s["count"].as_f64().unwrap_or(0.0);
    assert!(
        s["count"] == 3 && s["max"] == 60.0 && (total - 100.0).abs() < 1e-9,
        "{sent}"
    );
    // The histograms' values (1 + i % 50), recorded over two cumulative exports, are
    // counted once each, their mean exact; their percentiles within the stated error.
    let values: Vec<f64> = (0..orders).map(|i| (1 + i % 50) as f64).collect();
    let mean = values.iter().sum::<f64>() / orders as f64;
    // (The SDK's default bounds start 0, 5, 10: a value in (0, 5] may be anywhere in it,
    // stated as the whole value; the exponential histogram's buckets are a few % wide.)
    for (metric, widest) in [("payload_kb", 1.0), ("payload_exp", 0.05)] {
        let h = stats(
            &app,
            &format!("?service={service}&metric={metric}&window=10m"),
        )
        .await;
        let s = &h["stats"][0];
        assert_eq!(s["count"], orders, "{metric}: {h}");
        let got = s["mean"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (got - mean).abs() < 1e-9,
            "{metric}: mean {got} vs {mean}: {h}"
        );
        let error = h["source"]["relative_error"].as_f64().unwrap_or(0.0);
        assert!(
            h["source"]["kind"] == "rollups" && error > 0.01 && error <= widest,
            "{metric}: {h}"
        );
    }

    // A plot of the spans counts them as the stats do.
    let id = app
        .request_plot(&json!({"kind": "histogram", "service": service, "window": "10m"}))
        .await;
    let state = app.wait_done(id, DONE).await;
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(state["stats"][0]["count"], spans, "{state}");

    // By label: span i is routed /cart when i % 4 == 0, its method POST when i is even.
    let cart = spans.div_ceil(4);
    // `/api/v1/stats` of `query` with the filter `labels`.
    let by_labels = |query: String, labels: Value| {
        let labels: String =
            form_urlencoded::byte_serialize(labels.to_string().as_bytes()).collect();
        let app = &app;
        async move { stats(app, &format!("{query}&labels={labels}")).await }
    };
    let carts = by_labels(
        format!("?service={service}&window=10m"),
        json!({"route": "/cart"}),
    )
    .await;
    assert_eq!(carts["stats"][0]["count"], cart, "{carts}");
    let gets = by_labels(
        format!("?kind=cdf&service={service}&window=10m&group_by=route"),
        json!({"method": "GET"}),
    )
    .await;
    assert_eq!(counts(&gets), [("/pay".to_owned(), spans / 2)], "{gets}");
    let failed = by_labels(
        format!("?kind=status_codes&service={service}&window=10m"),
        json!({"status": "500"}),
    )
    .await;
    assert_eq!(
        failed["stats"][0]["codes"],
        json!({"500": errors}),
        "{failed}"
    );
    let eu = by_labels(
        format!("?service={service}&metric=orders&window=10m"),
        json!({"region": "eu"}),
    )
    .await;
    assert_eq!(eu["stats"][0]["max"], json!(orders as f64), "{eu}");
    // A plot with one curve per route counts each route's spans.
    let id = app
        .request_plot(
            &json!({"kind": "latency_timeseries", "service": service, "window": "10m",
                              "group_by": "route"}),
        )
        .await;
    let state = app.wait_done(id, DONE).await;
    assert_eq!(state["status"], "done", "{state}");
    assert_eq!(
        counts(&state),
        [
            ("/pay".to_owned(), spans - cart),
            ("/cart".to_owned(), cart)
        ],
        "{state}"
    );
    app.stop().await;
}

/// Each series' name and count in `stats` (a job's or `GET /api/v1/stats`'s).
pub(crate) fn counts(body: &Value) -> Vec<(String, usize)> {
    body["stats"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|s| {
            let name = match (s["group"].as_str(), s["other"].as_bool()) {
                (Some(group), _) => group.to_owned(),
                (None, Some(true)) => "other".to_owned(),
                _ => s["service"].as_str().unwrap_or_default().to_owned(),
            };
            (name, s["count"].as_u64().unwrap_or(0) as usize)
        })
        .collect()
}

#[tokio::test]
async fn the_python_sdk_exports_to_standalone() {
    spans_and_metrics_are_counted_exactly(Backend::Memory).await;
}

#[tokio::test]
async fn the_python_sdk_exports_to_the_distributed_roles() {
    crate::support::require_services();
    spans_and_metrics_are_counted_exactly(Backend::Real).await;
}
