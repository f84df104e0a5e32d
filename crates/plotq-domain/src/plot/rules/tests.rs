//! The rules' tests: every field's problems named, defaults, comparisons, ranges,
//! options per kind, labels and groups, and deserialising held to the rules of parse.

use super::*;
use crate::plot::Stat;
use serde_json::json;

const NOW: i64 = 1_796_000_000_000;

#[test]
fn defaults_fill_in() {
    let spec = PlotSpec::parse(&json!({"kind": "histogram", "service": "checkout"}), NOW).unwrap();
    assert_eq!(
        spec,
        PlotSpec::new(PlotKind::Histogram, ServiceName::parse("checkout").unwrap())
    );
    assert_eq!(
        spec.title(),
        "Latency Distribution for \"checkout\" (Last 10m)"
    );
    let status = PlotSpec::parse(&json!({"kind": "error_rate", "service": "a"}), NOW).unwrap();
    assert_eq!(status.metric.as_str(), "status_code");
    assert_eq!(status.title(), "Error Rate of \"a\" (Last 10m)");
}

#[test]
fn titles_name_a_metric_other_than_latency() {
    for (kind, title) in [
        (
            "histogram",
            "Distribution of payload_kb for \"a\" (Last 10m)",
        ),
        (
            "latency_timeseries",
            "payload_kb over Time for \"a\" (Last 10m)",
        ),
        ("heatmap", "payload_kb Heatmap for \"a\" (Last 10m)"),
        ("cdf", "payload_kb CDF for \"a\" (Last 10m)"),
        ("throughput", "Throughput of \"a\" (Last 10m)"),
    ] {
        let spec = PlotSpec::parse(
            &json!({"kind": kind, "service": "a", "metric": "payload_kb"}),
            NOW,
        )
        .unwrap();
        assert_eq!(spec.title(), title);
    }
}

#[test]
fn every_bad_field_is_named() {
    let err = PlotSpec::parse(
        &json!({
            "kind": "pie", "service": "", "window": "1y", "width": 10, "height": 600.5,
            "bins": 0, "colour": "red", "theme": "neon", "format": "gif"
        }),
        NOW,
    )
    .unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "/colour", "/kind", "/service", "/window", "/width", "/height", "/bins", "/theme",
            "/format"
        ]
    );
    assert!(err.0[1].problem.contains("histogram"));
}

#[test]
fn missing_required_fields() {
    let err = PlotSpec::parse(&json!({}), NOW).unwrap_err();
    assert_eq!(err.0.len(), 2);
    assert!(PlotSpec::parse(&json!([]), NOW).is_err());
}

/// The field of the first problem `PlotSpec::parse` finds in `body`.
fn first_field(body: Value) -> String {
    PlotSpec::parse(&body, NOW).unwrap_err().0[0].field.clone()
}

#[test]
fn comparisons_and_their_limits() {
    let spec = PlotSpec::parse(&json!({"kind": "cdf", "services": ["a", "b"]}), NOW).unwrap();
    assert_eq!(spec.services.len(), 2);
    assert_eq!(spec.title(), "Latency CDF for a vs b (Last 10m)");
    // Every kind compares: throughput, error rate, status codes, heatmaps, correlations.
    let spec =
        PlotSpec::parse(&json!({"kind": "error_rate", "services": ["a", "b"]}), NOW).unwrap();
    assert_eq!(spec.title(), "Error Rate of a vs b (Last 10m)");
    for kind in ["status_codes", "heatmap", "correlation"] {
        let spec = PlotSpec::parse(&json!({"kind": kind, "services": ["a", "b"]}), NOW).unwrap();
        assert_eq!(spec.services.len(), 2, "{kind}");
    }
    // Compared correlations each take their own x: another service's x is for one.
    assert_eq!(
        first_field(json!({"kind": "correlation", "services": ["a", "b"], "x_service": "c"})),
        "/x_service"
    );
    assert_eq!(
        first_field(json!({"kind": "cdf", "services": ["a", "a"]})),
        "/services/1"
    );
    assert_eq!(
        first_field(json!({"kind": "cdf", "service": "a", "services": ["b"]})),
        "/services"
    );
}

#[test]
fn absolute_ranges() {
    let spec = PlotSpec::parse(
        &json!({"kind": "throughput", "service": "a", "from": "2026-11-22T10:00:00Z", "until": "2026-11-22T11:00:00Z"}),
        NOW,
    )
    .unwrap();
    assert_eq!(spec.range.span_ms(), 3_600_000);
    assert_eq!(
        spec.title(),
        "Throughput of \"a\" (2026-11-22 10:00 – 2026-11-22 11:00 UTC)"
    );
    assert_eq!(
        first_field(json!({"kind": "throughput", "service": "a", "from": 5, "until": 4})),
        "/until"
    );
    assert_eq!(
        first_field(json!({"kind": "throughput", "service": "a", "window": "1h", "from": 5})),
        "/window"
    );
}

#[test]
fn options_apply_to_their_kinds() {
    let err = PlotSpec::parse(
        &json!({"kind": "throughput", "service": "a", "log_x": true}),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.0[0].field, "/log_x");
    let ok = PlotSpec::parse(
        &json!({"kind": "histogram", "service": "a", "log_x": true, "theme": "dark", "format": "svg", "title": "Mine"}),
        NOW,
    )
    .unwrap();
    assert!(ok.log_x);
    assert_eq!((ok.theme, ok.format), (Theme::Dark, ImageFormat::Svg));
    assert_eq!(ok.title(), "Mine");
}

#[test]
fn spans_cannot_overflow() {
    let wild = TimeRange::Between {
        from_ms: i64::MIN,
        until_ms: i64::MAX,
    };
    assert_eq!(wild.span_ms(), i64::MAX);
    assert_eq!(
        TimeRange::Last(Window::parse("7d").unwrap()).resolve(i64::MIN),
        (i64::MIN, i64::MIN)
    );
    let err = PlotSpec::parse(
        &json!({"kind": "throughput", "service": "a", "from": i64::MIN, "until": i64::MAX}),
        NOW,
    )
    .unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["/from", "/until"]);
    assert!(err.0[0].problem.contains("9999-12-31T23:59:59.999Z"));
}

#[test]
fn labels_filter_and_group_by_one_service() {
    let spec = PlotSpec::parse(
        &json!({"kind": "histogram", "service": "a", "labels": {"route": "/pay"},
                "group_by": "method"}),
        NOW,
    )
    .unwrap();
    assert_eq!(spec.labels.get("route"), Some("/pay"));
    assert_eq!(
        spec.group_by.as_ref().map(LabelName::as_str),
        Some("method")
    );
    assert!(
        spec.title().contains("[route=/pay] by method"),
        "{}",
        spec.title()
    );
    // Serialised (and so cache keys) only when given; decoded with the same rules.
    let wire = serde_json::to_value(&spec).unwrap();
    assert_eq!(wire["labels"], json!({"route": "/pay"}));
    assert_eq!(serde_json::from_value::<PlotSpec>(wire).unwrap(), spec);
    let plain = PlotSpec::parse(&json!({"kind": "histogram", "service": "a"}), NOW).unwrap();
    let wire = serde_json::to_value(&plain).unwrap();
    assert!(wire.get("labels").is_none() && wire.get("group_by").is_none());
    for (body, field, needle) in [
        (
            json!({"kind": "correlation", "service": "a", "group_by": "route"}),
            "/group_by",
            "per label value",
        ),
        (
            json!({"kind": "cdf", "services": ["a", "b"], "group_by": "route"}),
            "/group_by",
            "one service",
        ),
        (
            json!({"kind": "cdf", "service": "a", "group_by": "route", "labels": {"route": "/x"}}),
            "/group_by",
            "also filtered",
        ),
        (
            json!({"kind": "cdf", "service": "a", "group_by": "9x"}),
            "/group_by",
            "start with",
        ),
        (
            json!({"kind": "cdf", "service": "a", "labels": {"route": ""}}),
            "/labels/route",
            "empty",
        ),
        (
            json!({"kind": "cdf", "service": "a", "labels": ["route"]}),
            "/labels",
            "object",
        ),
    ] {
        let err = PlotSpec::parse(&body, NOW).unwrap_err();
        assert_eq!(err.0[0].field, field, "{body}: {err:?}");
        assert!(err.0[0].problem.contains(needle), "{body}: {err:?}");
    }
    // A decoded spec is held to the same rules.
    let mut bad = serde_json::to_value(&spec).unwrap();
    bad["kind"] = json!("correlation");
    assert!(serde_json::from_value::<PlotSpec>(bad).is_err());
}

#[test]
fn deserialising_applies_the_rules_of_parse() {
    let spec = PlotSpec::parse(
        &json!({"kind": "latency_timeseries", "services": ["a", "b"], "show_max": true,
                "from": 1_000_000, "until": 1_060_000, "title": "t"}),
        NOW,
    )
    .unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        serde_json::from_value::<PlotSpec>(json.clone()).unwrap(),
        spec
    );
    for (field, bad, problem) in [
        ("services", json!(["a", "a"]), "twice"),
        (
            "services",
            json!(["a", "b", "c", "d", "e", "f", "g", "h", "i"]),
            "1 to 8",
        ),
        ("x_service", json!("c"), "applies to correlation only"),
        ("height", json!(100), "150 to 4000"),
        ("bins", json!(0), "1 to 1000"),
        ("title", json!("x".repeat(121)), "120"),
        ("log_x", json!(true), "histogram and cdf"),
        (
            "range",
            json!({"between": {"from_ms": 0, "until_ms": 9_999}}),
            "10s and 90d",
        ),
        ("range", json!({"last": "91d"}), "between 10s and 90d"),
        ("metric", json!("a b"), "' '"),
    ] {
        let mut bad_spec = json.clone();
        bad_spec[field] = bad;
        let err = serde_json::from_value::<PlotSpec>(bad_spec).unwrap_err();
        assert!(err.to_string().contains(problem), "{field}: {err}");
    }
}

#[test]
fn specs_built_in_code_can_be_validated() {
    let mut spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
    assert_eq!(spec.validate(), Ok(()));
    spec.width = 10;
    spec.services.clear();
    let err = spec.validate().unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["/services", "/width"]);
}

#[test]
fn unknown_fields_list_the_known_ones_once() {
    let err =
        PlotSpec::parse(&json!({"kind": "cdf", "service": "a", "x": 1, "y": 2}), NOW).unwrap_err();
    assert!(err.0[0].problem.contains("known fields: kind"));
    assert_eq!(err.0[1].problem, "unknown field");
}

#[test]
fn correlations_default_their_axes_and_check_them() {
    let spec = PlotSpec::parse(
        &json!({"kind": "correlation", "service": "checkout", "window": "1h"}),
        NOW,
    )
    .unwrap();
    let c = spec.correlation.as_ref().unwrap();
    assert_eq!(
        (c.stat, c.x_stat, c.x_metric.as_str(), c.bucket.secs()),
        (Stat::P95, Stat::Rate, "latency_ms", 60)
    );
    assert_eq!(
        spec.title(),
        "p95 of latency_ms vs rate of latency_ms (/s) for \"checkout\" (Last 1h)"
    );
    // The members serialise flat, and read back through the same rules.
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        (&json["stat"], &json["x_stat"], &json["bucket"]),
        (&json!("p95"), &json!("rate"), &json!("1m"))
    );
    assert_eq!(serde_json::from_value::<PlotSpec>(json).unwrap(), spec);
    // Another service's error rate, every member given.
    let spec = PlotSpec::parse(
        &json!({"kind": "correlation", "service": "checkout", "metric": "status_code",
            "stat": "error_rate", "x_service": "edge", "x_metric": "latency_ms",
            "x_stat": "p99", "bucket": "5m", "window": "1d"}),
        NOW,
    )
    .unwrap();
    assert_eq!(
        spec.title(),
        "error rate of status_code (%) vs p99 of latency_ms of \"edge\" for \"checkout\" (Last 1d)"
    );
    // Other kinds have none of them; a histogram's JSON has no correlation member.
    let histogram = PlotSpec::parse(&json!({"kind": "histogram", "service": "a"}), NOW).unwrap();
    assert!(
        serde_json::to_value(&histogram)
            .unwrap()
            .get("stat")
            .is_none()
    );
}

#[test]
fn correlation_problems_are_named() {
    let problems = |body: serde_json::Value| -> Vec<(String, String)> {
        PlotSpec::parse(&body, NOW)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.field, e.problem))
            .collect()
    };
    let got = problems(json!({"kind": "correlation", "service": "a", "stat": "p42",
        "x_stat": 3, "bucket": "2d", "x_service": ""}));
    let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["/stat", "/x_stat", "/x_service", "/bucket"],
        "{got:?}"
    );
    assert!(got[0].1.contains("count, rate, mean"), "{got:?}");
    assert_eq!(got[1].1, "must be a string");
    assert_eq!(got[3].1, "must be a duration from 10s to 1d, e.g. 1m");
    // Too few or too many whole buckets for the range: a 3-minute window ending at any
    // moment holds two whole minutes at the least.
    let got = problems(json!({"kind": "correlation", "service": "a", "window": "3m"}));
    assert_eq!(got[0].0, "/bucket");
    assert!(
        got[0]
            .1
            .contains("3 to 10080 whole buckets; this one holds 2"),
        "{got:?}"
    );
    assert!(
        PlotSpec::parse(
            &json!({"kind": "correlation", "service": "a", "window": "4m"}),
            NOW
        )
        .is_ok()
    );
    let got = problems(
        json!({"kind": "correlation", "service": "a", "window": "7d",
        "bucket": "10s"}),
    );
    assert!(got[0].1.contains("holds 60480"), "{got:?}");
    // An absolute range counts its whole buckets exactly: 10:00:30–10:03:30 holds two.
    let t = 1_795_341_600_000_i64; // a whole hour
    let got = problems(json!({"kind": "correlation", "service": "a",
        "from": t + 30_000, "until": t + 210_000}));
    assert!(got[0].1.contains("holds 2"), "{got:?}");
    assert!(
        PlotSpec::parse(
            &json!({"kind": "correlation", "service": "a",
        "from": t, "until": t + 180_000}),
            NOW
        )
        .is_ok()
    );
    // x the very statistic of the very series y is.
    let got = problems(json!({"kind": "correlation", "service": "a", "x_stat": "p95"}));
    assert_eq!(got[0].0, "/x_stat");
    // Its own service as x_service is the same series too.
    let got = problems(
        json!({"kind": "correlation", "service": "a", "x_service": "a",
        "x_stat": "p95"}),
    );
    assert_eq!(got[0].0, "/x_stat");
    // Members of a correlation on another kind, and services to compare.
    let got = problems(json!({"kind": "cdf", "service": "a", "stat": "p95", "bucket": "1m"}));
    assert_eq!(
        got,
        [
            ("/stat".to_owned(), "applies to correlation only".to_owned()),
            (
                "/bucket".to_owned(),
                "applies to correlation only".to_owned()
            )
        ]
    );
    let got = problems(json!({"kind": "correlation", "services": ["a", "b"], "x_service": "c"}));
    assert_eq!(got[0].0, "/x_service");
}
