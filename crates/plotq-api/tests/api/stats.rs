//! `GET /api/v1/stats`: exact numbers per kind from known samples, the plot request's
//! validation (422 naming the field), `404` for a window without samples, the read
//! scope and service allowlists, the plot rate, and the route's place in the OpenAPI
//! document.

use crate::helpers::{App, Tokens, app, build, documented, parameter_names};
use axum::http::StatusCode;
use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_http::LimitsConfig;
use plotq_ports::MetricStore;
use plotq_ports::clock::now_ms;
use serde_json::{Value, json};

/// `values` of `service`'s `metric`, one every 100 ms ending a second ago.
async fn ingest(app: &App, service: &str, metric: &str, values: &[f64]) {
    let now = now_ms();
    let n = values.len() as i64;
    let samples: Vec<Sample> = values
        .iter()
        .enumerate()
        .map(|(i, &value)| Sample {
            service: ServiceName::parse(service).unwrap(),
            metric: MetricName::parse(metric).unwrap(),
            value,
            timestamp_ms: now - 1_000 - (n - i as i64) * 100,
            labels: plotq_domain::Labels::none(),
        })
        .collect();
    app.store.insert(&samples, None).await.unwrap();
}

/// `GET /api/v1/stats<query>`, with `token` if given.
async fn get(app: &App, query: &str, token: Option<&str>) -> (StatusCode, Value) {
    let answer = app
        .get(format!("/api/v1/stats{query}"))
        .token(token)
        .send()
        .await;
    (answer.status, answer.json())
}

#[tokio::test]
async fn latency_numbers_are_exact() {
    let app = app();
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    ingest(&app, "checkout", "latency_ms", &values).await;
    let (status, body) = get(&app, "?service=checkout&window=15m", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "histogram");
    assert_eq!(body["services"], json!(["checkout"]));
    assert_eq!(body["metric"], "latency_ms");
    assert_eq!(body["range"], "last 15m");
    assert_eq!(body["source"], json!({"kind": "exact"}));
    assert_eq!(body["samples"], 100);
    assert_eq!(
        body["until_ms"].as_i64().unwrap() - body["from_ms"].as_i64().unwrap(),
        900_000
    );
    let s = &body["stats"][0];
    assert_eq!(
        (&s["service"], &s["count"], &s["min"], &s["max"], &s["mean"]),
        (
            &json!("checkout"),
            &json!(100),
            &json!(1.0),
            &json!(100.0),
            &json!(50.5)
        )
    );
    // numpy's linear interpolation: p50 of 1..=100 is 50.5, p95 is 95.05.
    assert_eq!(s["p50"], 50.5);
    assert!((s["p95"].as_f64().unwrap() - 95.05).abs() < 1e-9);
    for extra in ["rate_per_s", "peak_rate_per_s", "codes", "error_ratio"] {
        assert!(s.get(extra).is_none(), "{extra} in {s}");
    }
}

#[tokio::test]
async fn each_kind_adds_its_numbers_and_comparisons_list_every_service() {
    let app = app();
    ingest(&app, "checkout", "latency_ms", &[10.0; 600]).await;
    ingest(&app, "payments", "latency_ms", &[30.0, 50.0]).await;
    let codes: Vec<f64> = (0..100)
        .map(|i| match i % 20 {
            0 => 500.0,
            1 => 503.0,
            2 => 404.0,
            _ => 200.0,
        })
        .collect();
    ingest(&app, "checkout", "status_code", &codes).await;

    let (status, body) = get(&app, "?kind=throughput&service=checkout&window=10m", None).await;
    assert_eq!(status, 200, "{body}");
    let s = &body["stats"][0];
    assert_eq!(s["rate_per_s"], 1.0, "600 samples over 600 s");
    // One a 100 ms: a whole 10 s bucket of the plot holds 100, 10 per second.
    assert!(
        (s["peak_rate_per_s"].as_f64().unwrap() - 10.0).abs() < 1e-9,
        "{s}"
    );

    for kind in ["status_codes", "error_rate"] {
        let (status, body) = get(&app, &format!("?kind={kind}&service=checkout"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["metric"], "status_code", "the kind's default metric");
        let s = &body["stats"][0];
        assert_eq!(s["codes"], json!({"200": 85, "404": 5, "500": 5, "503": 5}));
        assert_eq!(s["error_ratio"], 0.1);
        assert!(s.get("rate_per_s").is_none());
    }

    let (status, body) = get(
        &app,
        "?kind=cdf&services=checkout,payments,ghost&window=1h",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["services"], json!(["checkout", "payments", "ghost"]));
    let stats = body["stats"].as_array().unwrap();
    assert_eq!(
        stats.len(),
        2,
        "services without samples are left out: {body}"
    );
    assert_eq!(
        (&stats[1]["service"], &stats[1]["mean"]),
        (&json!("payments"), &json!(40.0))
    );
}

/// Ten whole minutes ending at least a minute ago: minute `k` holds `(k + 1) · 10`
/// samples of `checkout`'s latency, all `100 + 10k` ms, and `payments` 10 status codes,
/// `9 - k` of them errors: fewer errors as checkout's load rises.
#[tokio::test]
async fn correlations_fit_their_statistics_bucket_by_bucket() {
    let app = app();
    // On an even minute, so the 2-minute buckets below are whole too.
    let from = now_ms() / 120_000 * 120_000 - 12 * 60_000;
    let mut latencies = Vec::new();
    let mut codes = Vec::new();
    for k in 0..10i64 {
        let count = (k + 1) * 10;
        for i in 0..count {
            let at = from + k * 60_000 + i * 60_000 / count;
            latencies.push((at, 100.0 + 10.0 * k as f64));
            // payments: 10 requests a minute, 9 - k of them errors.
            if i < 10 {
                codes.push((at, if i < 9 - k { 503.0 } else { 200.0 }));
            }
        }
    }
    let sample = |service: &str, metric: &str, (timestamp_ms, value): (i64, f64)| Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: MetricName::parse(metric).unwrap(),
        value,
        timestamp_ms,
        labels: plotq_domain::Labels::none(),
    };
    let mut samples: Vec<Sample> = latencies
        .iter()
        .map(|p| sample("checkout", "latency_ms", *p))
        .collect();
    samples.extend(codes.iter().map(|p| sample("payments", "status_code", *p)));
    app.store.insert(&samples, None).await.unwrap();
    let range = format!("from={from}&until={}", from + 10 * 60_000 - 1);

    // p95 latency against the request rate: y = 100 + 10k, x = (k + 1) / 6 per second,
    // so y = 90 + 60x exactly, and both coefficients are 1.
    let (status, body) = get(
        &app,
        &format!("?kind=correlation&service=checkout&{range}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stats = body["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 2, "y's and x's entries: {body}");
    assert_eq!(
        (&stats[0]["metric"], &stats[1]["metric"]),
        (&json!("latency_ms"), &json!("latency_ms"))
    );
    assert_eq!(stats[0]["count"], 550);
    let fit = &stats[0]["correlation"];
    assert_eq!(fit["points"], 10, "{fit}");
    for (member, want) in [
        ("pearson", 1.0),
        ("spearman", 1.0),
        ("slope", 60.0),
        ("intercept", 90.0),
    ] {
        let got = fit[member].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{member}: {got} in {fit}");
    }
    assert!(stats[1].get("correlation").is_none());

    // Another service's error rate against this one's count: errors fall as load rises.
    let (status, body) = get(
        &app,
        &format!(
            "?kind=correlation&service=payments&metric=status_code&stat=error_rate&x_service=checkout&x_metric=latency_ms&x_stat=count&bucket=2m&{range}"
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fit = &body["stats"][0]["correlation"];
    assert_eq!(fit["points"], 5, "ten minutes in 2-minute buckets: {fit}");
    assert!(
        (fit["pearson"].as_f64().unwrap() + 1.0).abs() < 1e-9,
        "{fit}"
    );
    assert_eq!(body["stats"][1]["service"], "checkout");

    // A bucket the range cannot hold three of, and options of another kind, are named.
    let (status, body) = get(
        &app,
        &format!("?kind=correlation&service=checkout&bucket=5m&{range}"),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/bucket");
    let (status, body) = get(&app, "?kind=histogram&service=checkout&x_stat=rate", None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/x_stat");
    assert_eq!(body["errors"][0]["problem"], "applies to correlation only");
}

#[tokio::test]
async fn absolute_ranges_are_read_like_plot_requests() {
    let app = app();
    ingest(&app, "checkout", "latency_ms", &[4.0, 8.0]).await;
    let until = now_ms();
    let from = until - 60_000;
    let (status, body) = get(
        &app,
        &format!("?service=checkout&from={from}&until={until}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["from_ms"].as_i64(), body["until_ms"].as_i64()),
        (Some(from), Some(until))
    );
    assert_eq!(body["stats"][0]["mean"], 6.0);
}

#[tokio::test]
async fn bad_parameters_are_named_as_in_plot_requests() {
    let app = app();
    for (query, fields) in [
        ("?kind=pie&service=checkout", vec!["/kind"]),
        ("?service=bad%20name&window=1y", vec!["/service", "/window"]),
        ("", vec!["/service"]),
        ("?service=a&services=b", vec!["/services"]),
        (
            "?kind=correlation&services=a,b&x_service=c",
            vec!["/x_service"],
        ),
        ("?service=a&window=10m&from=0", vec!["/window"]),
        ("?service=a&from=yesterday", vec!["/from"]),
    ] {
        let (status, body) = get(&app, query, None).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["code"], "invalid_field");
        let named: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{query}: {body}");
    }
    // The very words of the plot request's problem.
    let (_, stats) = get(&app, "?service=a&window=1y", None).await;
    let plot = plotq_domain::PlotSpec::parse(
        &json!({"kind": "histogram", "service": "a", "window": "1y"}),
        now_ms(),
    )
    .unwrap_err();
    assert_eq!(stats["errors"][0]["problem"], plot.0[0].problem.as_str());
    // Parameters a plot request does not have are refused, not ignored.
    let (status, body) = get(&app, "?service=a&widht=3", None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/widht", "{body}");
}

#[tokio::test]
async fn no_samples_is_404_with_the_workers_words() {
    let app = app();
    let (status, body) = get(&app, "?service=ghost", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
    assert_eq!(
        body["detail"],
        "no data for ghost/latency_ms in the last 10m"
    );
}

#[tokio::test]
async fn the_read_scope_the_callers_services_and_the_plot_rate_apply() {
    let tokens = Tokens::new();
    let (ingest_only, reader, tenant) = (&tokens.ingest, &tokens.reader, &tokens.tenant);
    let app = build()
        .tokens(&tokens.lines())
        .limits(LimitsConfig {
            plot_requests_per_sec: 1,
            plot_burst: 3,
            ..LimitsConfig::default()
        })
        .start();
    ingest(&app, "team-a-web", "latency_ms", &[1.0]).await;
    assert_eq!(get(&app, "?service=team-a-web", None).await.0, 401);
    assert_eq!(
        get(&app, "?service=team-a-web", Some(ingest_only)).await.0,
        403
    );
    let (status, body) = get(&app, "?kind=cdf&services=team-a-web,other", Some(tenant)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["field"], "/services/1");
    assert_eq!(get(&app, "?service=team-a-web", Some(tenant)).await.0, 200);
    // The reader's burst of three plot requests, then its rate.
    for _ in 0..3 {
        assert_eq!(get(&app, "?service=team-a-web", Some(reader)).await.0, 200);
    }
    let (status, body) = get(&app, "?service=team-a-web", Some(reader)).await;
    assert_eq!(status, 429, "{body}");
}

#[test]
fn the_route_is_documented_with_every_answer() {
    let (op, doc) = documented("/api/v1/stats", "get");
    let statuses: Vec<&str> = op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(statuses, ["200", "401", "403", "404", "422", "429", "503"]);
    assert_eq!(
        parameter_names(&op),
        [
            "kind",
            "service",
            "services",
            "metric",
            "window",
            "from",
            "until",
            "labels",
            "group_by",
            "stat",
            "x_metric",
            "x_stat",
            "x_service",
            "bucket",
            "ticket"
        ]
    );
    let stats = &doc["components"]["schemas"]["SeriesStatsDoc"]["properties"];
    for member in [
        "count",
        "mean",
        "rate_per_s",
        "peak_rate_per_s",
        "codes",
        "error_ratio",
    ] {
        assert!(stats.get(member).is_some(), "{member}");
    }
    assert!(doc["components"]["schemas"]["TimingsDoc"]["properties"]["queue_wait"].is_object());
}

/// A 90-day window (the longest) is read from hour rollups: one document an hour, its
/// counts, extremes and mean exact, the source saying so; 91 days is refused by name.
#[tokio::test]
async fn ninety_day_windows_read_one_document_an_hour() {
    let app = app();
    let now = now_ms();
    let hour = 3_600_000;
    // One sample every hour of the last 89 days (values 1..=24 by hour of the day), all
    // past the raw retention but the last two days': rollups hold them.
    let samples: Vec<Sample> = (1..=89 * 24)
        .map(|h| Sample {
            service: ServiceName::parse("checkout").unwrap(),
            metric: MetricName::parse("latency_ms").unwrap(),
            value: (h % 24 + 1) as f64,
            timestamp_ms: now - h * hour,
            labels: plotq_domain::Labels::none(),
        })
        .collect();
    app.store.insert(&samples, None).await.unwrap();
    let (status, body) = get(&app, "?service=checkout&window=90d&kind=throughput", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"]["kind"], "rollups", "{body}");
    assert_eq!(body["source"]["resolution_secs"], 3_600, "{body}");
    assert_eq!(body["samples"], 89 * 24);
    let documents = body["documents_read"].as_u64().unwrap();
    assert!((89 * 24..=90 * 24 + 1).contains(&documents), "{documents}");
    let s = &body["stats"][0];
    assert_eq!(
        (&s["count"], &s["min"], &s["max"]),
        (&json!(89 * 24), &json!(1.0), &json!(24.0))
    );
    assert!((s["mean"].as_f64().unwrap() - 12.5).abs() < 1e-9, "{s}");
    // A sample an hour: the mean rate over 90 days is 89/90 of one an hour.
    let rate = s["rate_per_s"].as_f64().unwrap();
    assert!(
        (rate - 89.0 * 24.0 / (90.0 * 86_400.0)).abs() < 1e-9,
        "{rate}"
    );
    let (status, body) = get(&app, "?service=checkout&window=91d", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("between 10s and 90d"), "{body}");
}

/// Status codes, heatmaps and correlations compare services too: one entry each, with
/// its own codes; a correlation a pair of entries (y with its fit, x) each.
#[tokio::test]
async fn status_codes_heatmaps_and_correlations_compare_services() {
    let app = app();
    ingest(
        &app,
        "checkout",
        "status_code",
        &[200.0, 200.0, 503.0, 404.0],
    )
    .await;
    ingest(&app, "payments", "status_code", &[200.0, 500.0]).await;
    let (status, body) = get(&app, "?kind=status_codes&services=checkout,payments", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["stats"][0]["codes"],
        json!({"200": 2, "404": 1, "503": 1})
    );
    assert_eq!(body["stats"][1]["codes"], json!({"200": 1, "500": 1}));
    assert_eq!(body["stats"][1]["error_ratio"], 0.5);
    ingest(&app, "checkout", "latency_ms", &[1.0, 2.0]).await;
    ingest(&app, "payments", "latency_ms", &[3.0]).await;
    let (status, body) = get(&app, "?kind=heatmap&services=checkout,payments", None).await;
    assert_eq!(status, 200, "{body}");
    let counts: Vec<&Value> = body["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["count"])
        .collect();
    assert_eq!(counts, [&json!(2), &json!(1)]);
    let (status, body) = get(
        &app,
        "?kind=correlation&services=checkout,payments&x_stat=count&stat=max&bucket=10s&window=1m",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entries = body["stats"].as_array().unwrap();
    let services: Vec<&str> = entries
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        ["checkout", "checkout", "payments", "payments"],
        "{body}"
    );
    assert!(entries[0]["correlation"].is_object() && entries[2]["correlation"].is_object());
    assert!(entries[1].get("correlation").is_none(), "{body}");
    // Another service's x is for one service only.
    let (status, body) = get(
        &app,
        "?kind=correlation&services=checkout,payments&x_service=search",
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "/x_service", "{body}");
}
