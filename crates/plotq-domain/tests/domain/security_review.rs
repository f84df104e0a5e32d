//! Regression tests for the security review's findings: bounded error bodies, bounded
//! timestamps, and validation on decode (strict event ids are tested in `wire`).

use crate::helpers::{message_json, queued};
use plotq_domain::sample::parse_samples;
use plotq_domain::wire::{JobMessage, PlotEvent, decode_state};
use plotq_domain::{PlotKind, PlotSpec, ServiceName, ViewState};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_796_000_000_000;
const CAP: usize = plotq_domain::error::MAX_REPORTED_ERRORS;

fn spec_errors(body: &Value) -> Vec<(String, String)> {
    PlotSpec::parse(body, NOW)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.field, e.problem))
        .collect()
}

// ---- 1. error bodies are bounded ---------------------------------------------------

#[test]
fn spec_with_690k_unknown_fields_reports_a_bounded_list() {
    let mut obj = Map::new();
    obj.insert("kind".into(), json!("histogram"));
    obj.insert("service".into(), json!("a"));
    for i in 0..690_000 {
        obj.insert(format!("f{i}"), Value::Null);
    }
    let errors = spec_errors(&Value::Object(obj));
    assert!(errors.len() <= CAP + 1, "{} errors", errors.len());
    let last = errors.last().unwrap();
    assert!(last.1.contains("stopped"), "{last:?}");
    let bytes: usize = errors.iter().map(|(f, p)| f.len() + p.len()).sum();
    assert!(bytes < 20_000, "{bytes} bytes of errors");
}

#[test]
fn echoed_input_is_truncated_in_fields_and_problems() {
    let huge = "x".repeat(1_000_000);
    let mut obj = Map::new();
    obj.insert(huge.clone(), json!(1));
    obj.insert("kind".into(), json!(huge.clone()));
    obj.insert("service".into(), json!("a"));
    obj.insert("window".into(), json!(huge.clone()));
    for (f, p) in spec_errors(&Value::Object(obj)) {
        assert!(
            f.len() <= 200 && p.len() <= 300,
            "{} / {}",
            f.len(),
            p.len()
        );
    }
    let err = parse_samples(
        &json!({"service": "a", "metric": "m", "value": huge.clone(), "timestamp": huge}),
        NOW,
    )
    .unwrap_err();
    for e in err.0 {
        assert!(e.problem.len() <= 300, "{}", e.problem.len());
    }
}

#[test]
fn unknown_keys_are_escaped_as_json_pointer_segments() {
    let errors = spec_errors(&json!({"kind": "cdf", "service": "a", "a/b~c": 1}));
    assert_eq!(errors[0].0, "/a~1b~0c");
}

#[test]
fn sample_batches_report_at_most_the_cap_and_say_they_stopped() {
    let batch: Vec<Value> = (0..10_000).map(|_| json!({"value": "NaN"})).collect();
    let err = parse_samples(&Value::Array(batch), NOW).unwrap_err();
    assert!(err.0.len() <= CAP + 1);
    assert!(err.0.last().unwrap().problem.contains("stopped"));
}

#[test]
fn exactly_the_cap_is_not_reported_as_stopped() {
    // 100 bad samples with one problem each: all reported, nothing was dropped.
    let batch: Vec<Value> = (0..CAP)
        .map(|_| json!({"service": "a", "metric": "m", "value": true}))
        .collect();
    let err = parse_samples(&Value::Array(batch), NOW).unwrap_err();
    assert_eq!(err.0.len(), CAP);
    assert!(!err.0.last().unwrap().problem.contains("stopped"));
}

// ---- 2. timestamps are bounded ------------------------------------------------------

#[test]
fn ranges_that_wrap_around_i64_are_rejected() {
    for (from, until) in [
        (json!(i64::MIN), json!(i64::MAX)),
        (json!(i64::MAX - 20_000), json!(i64::MAX)),
        (json!(i64::MIN), json!(i64::MIN + 20_000)),
        (json!(-20_000), json!(0)),
        (json!(253_402_300_799_999i64), json!(253_402_300_809_999i64)),
        (json!(u64::MAX), json!(u64::MAX)),
        (json!(1e300), json!(1e300)),
        (
            json!("9999-12-31T23:59:59Z"),
            json!("9999-12-31T23:59:59.999-23:00"),
        ),
    ] {
        let body = json!({"kind": "throughput", "service": "a", "from": from, "until": until});
        let errors = spec_errors(&body);
        assert!(
            errors.iter().any(|(_, p)| p.contains("253402300799999")),
            "{body} → {errors:?}"
        );
    }
}

#[test]
fn the_last_millisecond_of_year_9999_is_accepted() {
    let spec = PlotSpec::parse(
        &json!({"kind": "throughput", "service": "a",
                "from": 253_402_300_799_999i64 - 3_600_000, "until": 253_402_300_799_999i64}),
        NOW,
    )
    .unwrap();
    assert_eq!(spec.range.span_ms(), 3_600_000);
    let spec = PlotSpec::parse(
        &json!({"kind": "throughput", "service": "a", "from": 0, "until": 10_000}),
        NOW,
    )
    .unwrap();
    assert_eq!(spec.range.resolve(0), (0, 10_000));
}

#[test]
fn sample_timestamps_outside_the_range_are_rejected() {
    for ts in [
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1e300),
    ] {
        let err = parse_samples(
            &json!({"service": "a", "metric": "m", "value": 1, "timestamp": ts}),
            i64::MAX,
        )
        .unwrap_err();
        assert!(err.0[0].problem.contains("253402300799999"), "{ts}: {err}");
    }
}

#[test]
fn huge_clocks_do_not_overflow() {
    // A sample without a timestamp at an absurd clock, and the future-skew check.
    let ok = parse_samples(
        &json!({"service": "a", "metric": "m", "value": 1, "timestamp": 1_700_000_000_000i64}),
        i64::MAX,
    );
    assert!(ok.is_ok());
    let spec = PlotSpec::parse(&json!({"kind": "histogram", "service": "a"}), i64::MIN).unwrap();
    let _ = spec.range.resolve(i64::MIN);
}

// ---- 3. decoding validates ------------------------------------------------------------

fn histogram_of_a() -> PlotSpec {
    PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap())
}

fn decode_err(msg: &Value) -> String {
    JobMessage::decode(msg.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn job_messages_are_validated_like_api_requests() {
    let ok = message_json(&queued(histogram_of_a(), NOW));
    assert!(JobMessage::decode(ok.to_string().as_bytes()).is_ok());

    let mut m = ok.clone();
    m["spec"]["services"] = json!([]);
    let e = decode_err(&m);
    assert!(e.contains("services") && e.contains("1 to 8"), "{e}");

    let mut m = ok.clone();
    m["spec"]["width"] = json!(0);
    let e = decode_err(&m);
    assert!(e.contains("width") && e.contains("200 to 4000"), "{e}");

    let mut m = ok.clone();
    m["spec"]["bins"] = json!(5000);
    let e = decode_err(&m);
    assert!(e.contains("bins") && e.contains("1 to 1000"), "{e}");

    let mut m = ok.clone();
    m["spec"]["range"] =
        json!({"between": {"from_ms": 1_500_000_000_000i64, "until_ms": 1_815_000_000_000i64}});
    let e = decode_err(&m);
    assert!(e.contains("until") && e.contains("90d"), "{e}");

    let mut m = ok.clone();
    m["spec"]["range"] = json!({"between": {"from_ms": i64::MIN, "until_ms": i64::MAX}});
    let e = decode_err(&m);
    assert!(e.contains("253402300799999"), "{e}");

    let mut m = ok.clone();
    m["spec"]["services"] = json!(["a", "b"]);
    m["spec"]["kind"] = json!("correlation");
    m["spec"]["x_service"] = json!("c");
    let e = decode_err(&m);
    assert!(e.contains("own x"), "{e}");

    let mut m = ok.clone();
    m["spec"]["services"] = json!(["a", "a"]);
    assert!(decode_err(&m).contains("twice"));

    let mut m = ok.clone();
    m["spec"]["title"] = json!("a\u{7}b");
    assert!(decode_err(&m).contains("control"));

    let mut m = ok.clone();
    m["spec"]["show_max"] = json!(true);
    assert!(decode_err(&m).contains("show_max"));

    let mut m = ok.clone();
    m["until_ms"] = json!(i64::MAX);
    assert!(decode_err(&m).contains("until_ms"));

    let mut m = ok.clone();
    m["view"] = json!("not a view");
    assert!(decode_err(&m).contains("view"));
}

#[test]
fn job_states_events_and_view_states_are_validated() {
    let state = queued(histogram_of_a(), NOW);
    let mut s: Value = serde_json::to_value(&state).unwrap();
    s["spec"]["services"] = json!([]);
    assert!(decode_state(s.to_string().as_bytes()).is_err());

    let ev = PlotEvent::for_job(&state, plotq_domain::wire::EventKind::PlotReady, NOW);
    let good: Value = serde_json::to_value(&ev).unwrap();
    assert!(PlotEvent::decode(good.to_string().as_bytes()).is_ok());
    for (field, bad) in [
        ("services", json!([])),
        ("services", json!(["a b"])),
        ("service", json!("other")),
        ("metric", json!("$where")),
        ("png_url", json!("javascript:alert(1)")),
        ("at_ms", json!(i64::MIN)),
    ] {
        let mut e = good.clone();
        e[field] = bad;
        assert!(
            PlotEvent::decode(e.to_string().as_bytes()).is_err(),
            "{field} accepted"
        );
    }

    let vs = json!({"job_id": state.id, "status": "done", "requested_ms": i64::MIN});
    assert!(serde_json::from_value::<ViewState>(vs).is_err());
    let mut bad_event = good.clone();
    bad_event["services"] = json!([]);
    let vs =
        json!({"job_id": state.id, "status": "done", "requested_ms": NOW, "last_ready": bad_event});
    assert!(serde_json::from_value::<ViewState>(vs).is_err());
    let vs = json!({"job_id": state.id, "status": "done", "requested_ms": NOW, "last_ready": good});
    assert!(serde_json::from_value::<ViewState>(vs).is_ok());
}
