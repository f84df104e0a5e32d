//! Labels end to end through the api over the in-memory store: `labels` on the JSON
//! ingest (validated, stored as part of the series), plots and statistics filtered by
//! them and split by one of them (`group_by`, the most frequent values and `other`), the
//! per-caller cap on a series' label sets, and the parameters in the document.

use crate::helpers::{App, app, build, documented, parameter_names};
use plotq_http::LimitsConfig;
use plotq_ports::clock::now_ms;
use serde_json::{Value, json};

/// Posts `samples` (JSON objects) to `/api/v1/metrics`; the answer's status and body.
async fn post(app: &App, samples: Value) -> (u16, Value) {
    let answer = app.post("/api/v1/metrics").json(&samples).send().await;
    (answer.status.as_u16(), answer.json())
}

/// `count` samples of `checkout`'s latency with `labels`, valued `value`, in the last
/// minute.
fn batch(count: usize, value: f64, labels: Value) -> Vec<Value> {
    let now = now_ms();
    (0..count)
        .map(|i| {
            json!({"service": "checkout", "metric": "latency_ms", "value": value,
                   "timestamp": now - 2_000 - i as i64, "labels": labels})
        })
        .collect()
}

async fn stats(app: &App, query: &str) -> Value {
    let answer = app.get(format!("/api/v1/stats?{query}")).send().await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.json());
    answer.json()
}

/// Each stats series' name and count.
fn counts(body: &Value) -> Vec<(String, u64)> {
    body["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (name(s), s["count"].as_u64().unwrap()))
        .collect()
}

/// A stats entry's name: its group, `other`, or its service (no group).
fn name(s: &Value) -> String {
    match (s["group"].as_str(), s["other"].as_bool()) {
        (Some(group), None) => group.to_owned(),
        (None, Some(true)) => "other".to_owned(),
        (None, None) => s["service"].as_str().unwrap().to_owned(),
        _ => panic!("a group and other: {s}"),
    }
}

/// `labels` as a query parameter.
fn param(labels: Value) -> String {
    form_urlencoded::byte_serialize(labels.to_string().as_bytes()).collect()
}

#[tokio::test]
async fn labelled_samples_are_counted_exactly_by_filter_and_group() {
    let app = app();
    let mut samples = batch(30, 10.0, json!({"route": "/pay", "method": "POST"}));
    samples.extend(batch(20, 20.0, json!({"route": "/cart", "method": "GET"})));
    samples.extend(batch(5, 30.0, json!({"route": "/pay", "method": "GET"})));
    samples.extend(batch(7, 40.0, json!({})));
    let (status, body) = post(&app, Value::Array(samples)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 62);

    // No filter: every set of the metric as one.
    let all = stats(&app, "service=checkout").await;
    assert_eq!(counts(&all), [("checkout".to_owned(), 62)]);
    // An exact filter of one pair, and of two.
    let pay = stats(
        &app,
        &format!(
            "service=checkout&labels={}",
            param(json!({"route": "/pay"}))
        ),
    )
    .await;
    assert_eq!(counts(&pay), [("checkout".to_owned(), 35)]);
    assert_eq!(pay["stats"][0]["max"], 30.0);
    let pay_get = json!({"route": "/pay", "method": "GET"});
    let one = stats(&app, &format!("service=checkout&labels={}", param(pay_get))).await;
    assert_eq!(counts(&one), [("checkout".to_owned(), 5)]);
    // Grouped: one series per value, most samples first; the unlabelled ones are other.
    let grouped = stats(&app, "kind=cdf&service=checkout&group_by=route").await;
    assert_eq!(
        counts(&grouped),
        [
            ("/pay".to_owned(), 35),
            ("/cart".to_owned(), 20),
            ("other".to_owned(), 7)
        ]
    );
    // Grouped within a filter.
    let get_by_route = stats(
        &app,
        &format!(
            "kind=cdf&service=checkout&group_by=route&labels={}",
            param(json!({"method": "GET"}))
        ),
    )
    .await;
    assert_eq!(
        counts(&get_by_route),
        [("/cart".to_owned(), 20), ("/pay".to_owned(), 5)]
    );
    // A filter nothing matches: no data.
    let none = app
        .get(format!(
            "/api/v1/stats?service=checkout&labels={}",
            param(json!({"route": "/nowhere"}))
        ))
        .send()
        .await;
    assert_eq!(none.status, 404, "{}", none.json());
}

#[tokio::test]
async fn many_values_keep_the_most_frequent_and_fold_the_rest_into_other() {
    let app = app();
    let mut samples = Vec::new();
    // Ten routes, route k with k + 1 samples.
    for k in 0..10 {
        samples.extend(batch(k + 1, k as f64, json!({"route": format!("/r{k}")})));
    }
    let (status, body) = post(&app, Value::Array(samples)).await;
    assert_eq!(status, 200, "{body}");
    let grouped = stats(&app, "kind=histogram&service=checkout&group_by=route").await;
    let got = counts(&grouped);
    // Seven lines of their own (the most frequent) and "other" for routes 0..=2.
    assert_eq!(got.len(), 8, "{got:?}");
    assert_eq!(got[0], ("/r9".to_owned(), 10));
    assert_eq!(got[6], ("/r3".to_owned(), 4));
    assert_eq!(got[7], ("other".to_owned(), 1 + 2 + 3));
    let total: u64 = got.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 55);
}

#[tokio::test]
async fn bad_labels_are_named_and_nothing_is_stored() {
    let app = app();
    let mut samples = batch(2, 1.0, json!({"route": "/ok"}));
    samples.push(
        json!({"service": "checkout", "metric": "latency_ms", "value": 1,
                        "labels": {"9route": "/x", "method": "", "ok": 7}}),
    );
    let nine: serde_json::Map<String, Value> =
        (0..9).map(|i| (format!("l{i}"), json!("v"))).collect();
    samples
        .push(json!({"service": "checkout", "metric": "latency_ms", "value": 1, "labels": nine}));
    let answer = app
        .post("/api/v1/metrics")
        .json(&Value::Array(samples))
        .send()
        .await;
    assert_eq!(answer.status, 422, "{}", answer.json());
    assert_eq!(
        answer.error_fields(),
        [
            "/2/labels/9route",
            "/2/labels/method",
            "/2/labels/ok",
            "/3/labels"
        ]
    );
    assert!(app.stored("checkout", "latency_ms").await.is_empty());
    // `tags` is still refused by name, pointing at `labels`.
    let (status, body) = post(
        &app,
        json!({"service": "checkout", "metric": "latency_ms", "value": 1, "tags": {"a": "b"}}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("labels"),
        "{body}"
    );
}

#[tokio::test]
async fn a_series_takes_so_many_label_sets_from_one_caller() {
    let app = build()
        .limits(LimitsConfig {
            label_sets_per_series: 3,
            ..LimitsConfig::default()
        })
        .start();
    let mut samples = Vec::new();
    for route in ["/a", "/b", "/c"] {
        samples.extend(batch(2, 1.0, json!({"route": route})));
    }
    let (status, body) = post(&app, Value::Array(samples)).await;
    assert_eq!(status, 200, "{body}");
    // Known sets, unlabelled samples and other metrics still go in.
    let (status, _) = post(&app, Value::Array(batch(1, 1.0, json!({"route": "/a"})))).await;
    assert_eq!(status, 200);
    // A batch with a fourth set is refused whole, naming its first sample past the cap.
    let mut bomb = batch(1, 1.0, json!({"route": "/b"}));
    bomb.extend(batch(1, 1.0, json!({"route": "/d"})));
    let (status, body) = post(&app, Value::Array(bomb)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "too_many_label_sets");
    assert_eq!(body["errors"][0]["field"], "/1/labels");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("PLOTQ_MAX_LABEL_SETS"),
        "{body}"
    );
    assert_eq!(app.stored("checkout", "latency_ms").await.len(), 7);
}

#[tokio::test]
async fn plots_take_labels_and_group_by_and_their_rules() {
    let app = app();
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "latency_timeseries", "service": "checkout",
                      "labels": {"method": "GET"}, "group_by": "route"}))
        .send()
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    let job = answer.json();
    assert_eq!(job["spec"]["labels"], json!({"method": "GET"}));
    assert_eq!(job["spec"]["group_by"], "route");
    let answer = app
        .post("/api/v1/plots")
        .json(&json!({"kind": "correlation", "service": "checkout", "group_by": "route"}))
        .send()
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["errors"][0]["field"], "/group_by");
    let answer = app
        .get("/api/v1/render?kind=histogram&service=checkout&labels=route")
        .send()
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json()["errors"][0]["field"], "/labels");
}

#[test]
fn the_parameters_and_fields_are_documented() {
    let (op, _) = documented("/api/v1/render", "get");
    let names = parameter_names(&op);
    assert!(
        names.contains(&"labels") && names.contains(&"group_by"),
        "{names:?}"
    );
    let (_, doc) = documented("/api/v1/metrics", "post");
    let labels = &doc["components"]["schemas"]["Labels"];
    assert_eq!(labels["maxProperties"], 8, "{labels}");
    assert!(doc["components"]["schemas"]["SampleDoc"]["properties"]["labels"].is_object());
}
