//! Property tests for every parser of the crate: whatever the input, parsers do not panic,
//! report at most `MAX_REPORTED_ERRORS` (+ the "stopped" entry) short problems, and what
//! they accept satisfies the rules (re-validating, round-tripping through serde and through
//! the API parser).
//!
//! Case counts scale proptest's default (256, or `PROPTEST_CASES`): ×4 for the JSON and
//! message properties (1,024 cases), ×16 for the cheap string parsers (4,096 cases); run
//! longer with e.g. `PROPTEST_CASES=10000`.

use crate::helpers::{message_json, queued};
use plotq_domain::correlation::Stat;
use plotq_domain::error::MAX_REPORTED_ERRORS;
use plotq_domain::plot::{
    BINS_RANGE, Correlation, HEIGHT_RANGE, MAX_SERVICES, MAX_TITLE_CHARS, MIN_LAYOUT, SCALE_RANGE,
    Threshold, WIDTH_RANGE,
};
use plotq_domain::sample::{MAX_FUTURE_SKEW_MS, SAMPLE_FIELDS, parse_samples, parse_samples_fast};
use plotq_domain::timestamp::{MAX_TIMESTAMP_MS, MIN_EPOCH_MS, MIN_TIMESTAMP_MS};
use plotq_domain::view::MAX_VIEW_KEY_LEN;
use plotq_domain::wire::{
    DecodeError, EventKind, JobMessage, PlotEvent, decode_state, decode_view_state, encode_state,
    encode_view_state,
};
use plotq_domain::{
    EventId, FieldErrors, ImageFormat, JobState, JobStatus, Labels, MetricName, PlotKind, PlotSpec,
    ServiceName, Theme, TimeRange, View, ViewState, Window,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};

/// Longest field path / problem any parser may report, in bytes.
const MAX_FIELD_BYTES: usize = 256;
const MAX_PROBLEM_BYTES: usize = 512;
const MIN_SPAN_MS: i64 = 10_000;
const MAX_SPAN_MS: i64 = plotq_domain::window::MAX_WINDOW_SECS as i64 * 1000;

fn config(factor: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: default.cases.saturating_mul(factor),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/domain/properties.proptest-regressions",
        ))),
        ..default
    }
}

// ---- strategies -------------------------------------------------------------------------

/// Any string, control characters and all.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?s).{0,24}",
        "[\\x00-\\x1f\\x7f]{1,4}",
        "\\PC{0,30}",
        "[a-z]{200,400}",
        Just(String::new()),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
}

fn near_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => name(),
        1 => "[A-Za-z0-9_.:/ $-]{0,70}",
        1 => any_text(),
    ]
}

/// Epoch milliseconds a client may send as a number (below `MIN_EPOCH_MS` only zero:
/// the rest reads as epoch seconds and is refused).
fn timestamp_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        MIN_EPOCH_MS..=MAX_TIMESTAMP_MS,
        Just(MIN_TIMESTAMP_MS),
        Just(MAX_TIMESTAMP_MS),
        1_700_000_000_000i64..1_900_000_000_000,
    ]
}

fn rfc3339(ms: i64, offset_min: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| {
            d.with_timezone(&offset)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_else(|| "not a date".into())
}

/// Numbers and strings that sit on or near some boundary.
fn interesting() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec![
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(i64::MIN + 1),
            json!(i64::MAX - 1),
            json!(0),
            json!(-1),
            json!(1),
            json!(-0.0),
            json!(0.5),
            json!(1e300),
            json!(-1e300),
            json!(9.3e18),
            json!(MAX_TIMESTAMP_MS),
            json!(MAX_TIMESTAMP_MS + 1),
            json!(MAX_TIMESTAMP_MS as f64),
            json!(u32::MAX),
            json!(u32::MAX as u64 + 1),
            json!(4000),
            json!(4001),
            json!(199),
            json!(1000),
            json!(1001),
            json!(""),
            json!("NaN"),
            json!("Infinity"),
            json!(null),
            json!(true),
            json!([]),
            json!({}),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        any_text().prop_map(Value::from),
        near_name().prop_map(Value::from),
        (timestamp_ms(), -1439i32..=1439).prop_map(|(ms, off)| Value::from(rfc3339(ms, off))),
        prop::collection::vec(near_name().prop_map(Value::from), 0..12).prop_map(Value::Array),
        select(PlotKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()).prop_map(Value::from),
        "(0|[1-9][0-9]{0,7})[smhdw ]?".prop_map(Value::from),
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        -1e6f64..1e6,
    ]
}

/// Any JSON value, bounded in depth and size.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        interesting(),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const SPEC_FIELDS: &[&str] = &[
    "kind", "service", "services", "metric", "window", "from", "until", "width", "height", "bins",
    "title", "theme", "format", "log_x", "show_max", "scale",
];

fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = SPEC_FIELDS
        .iter()
        .chain(SAMPLE_FIELDS.iter())
        .map(|s| s.to_string())
        .collect();
    prop_oneof![select(known), any_text()]
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (10u64..=plotq_domain::window::MAX_WINDOW_SECS).prop_map(|s| Window::from_secs(s).unwrap()),
        select(vec![
            10u64, 60, 600, 3600, 86_400, 604_800, 2_592_000, 7_776_000
        ])
        .prop_map(|s| Window::from_secs(s).unwrap()),
    ]
}

fn range() -> impl Strategy<Value = TimeRange> {
    let between = (MIN_SPAN_MS..=MAX_SPAN_MS, any::<u64>(), 0u8..4).prop_map(|(span, r, edge)| {
        let until = match edge {
            0 => span,             // from = 0
            1 => MAX_TIMESTAMP_MS, // until = the last millisecond
            _ => span + (r % (MAX_TIMESTAMP_MS - span + 1) as u64) as i64,
        };
        TimeRange::Between {
            from_ms: until - span,
            until_ms: until,
        }
    });
    prop_oneof![window().prop_map(TimeRange::Last), between]
}

/// A spec satisfying every rule, built directly (not through the parser).
fn valid_spec() -> impl Strategy<Value = PlotSpec> {
    (
        select(PlotKind::ALL),
        prop::collection::vec(name(), 1..=MAX_SERVICES),
        name(),
        range(),
        (
            WIDTH_RANGE.0..=WIDTH_RANGE.1,
            HEIGHT_RANGE.0..=HEIGHT_RANGE.1,
        ),
        BINS_RANGE.0..=BINS_RANGE.1,
        prop::option::of(prop_oneof!["\\PC{0,20}", "\\PC{120}"]),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        SCALE_RANGE.0..=SCALE_RANGE.1,
    )
        .prop_map(
            |(kind, services, metric, range, (width, height), bins, title, flags, scale)| {
                let mut names: Vec<ServiceName> = Vec::new();
                for s in services {
                    let s = ServiceName::parse(&s).unwrap();
                    if !names.contains(&s) {
                        names.push(s);
                    }
                }
                if !kind.compares() {
                    names.truncate(1);
                }
                let (dark, svg, log_x, show_max) = flags;
                let metric = MetricName::parse(&metric).unwrap();
                // A correlation's bucket cuts its range into 3 to 10,080 buckets: a
                // sixtieth of it (at least 10s), or an hour by the minute when the range
                // is too short for three whole ones.
                let mut range = range;
                let correlation = (kind == PlotKind::Correlation).then(|| {
                    let span_secs = (range.span_ms() / 1000) as u64;
                    let mut bucket = (span_secs / 60).clamp(10, 86_400);
                    if span_secs / bucket < 4 {
                        range = TimeRange::Last(Window::parse("1h").unwrap());
                        bucket = 60;
                    }
                    Correlation {
                        stat: Stat::P95,
                        x_metric: metric.clone(),
                        x_stat: if dark { Stat::Rate } else { Stat::Count },
                        x_service: None,
                        bucket: Window::from_secs(bucket).unwrap(),
                    }
                });
                // Thresholds of any finite value now and then, at negative zero too.
                let thresholds = match bins % 5 {
                    0 => vec![Threshold {
                        value: f64::from(bins) * 1.5,
                        label: "SLO".to_owned(),
                    }],
                    1 => vec![
                        Threshold {
                            value: -0.0,
                            label: "zero".to_owned(),
                        },
                        Threshold {
                            value: -f64::MAX,
                            label: "floor ≥ nothing".to_owned(),
                        },
                    ],
                    _ => Vec::new(),
                };
                PlotSpec {
                    kind,
                    correlation,
                    thresholds,
                    services: names,
                    metric,
                    range,
                    width,
                    height,
                    bins,
                    title,
                    theme: if dark { Theme::Dark } else { Theme::Light },
                    format: if svg {
                        ImageFormat::Svg
                    } else {
                        ImageFormat::Png
                    },
                    log_x: log_x && matches!(kind, PlotKind::Histogram | PlotKind::Cdf),
                    show_max: show_max && kind == PlotKind::LatencyTimeseries,
                    scale: scale
                        .min(width / MIN_LAYOUT.0)
                        .min(height / MIN_LAYOUT.1)
                        .max(1),
                    labels: plotq_domain::Labels::none(),
                    group_by: None,
                }
            },
        )
}

/// Any view whose key fits (the plot rules hold: `valid_spec` builds it).
fn view() -> impl Strategy<Value = View> {
    (valid_spec(), window()).prop_filter_map("key too long", |(spec, window)| {
        // A label filter of any title text that is a label value, and a split of the
        // single-service comparing kinds half the time.
        let labels = spec
            .title
            .as_deref()
            .and_then(|t| Labels::from_pairs([("path", t)]).ok())
            .unwrap_or_default();
        let services: Vec<ServiceName> = spec.services.into_iter().take(3).collect();
        let group_by = (spec.kind.groups() && services.len() == 1 && spec.bins % 2 == 0)
            .then(|| plotq_domain::LabelName::parse("route").unwrap());
        let view = View {
            services,
            kind: spec.kind,
            metric: spec.metric,
            window,
            theme: spec.theme,
            width: spec.width,
            height: spec.height,
            log_x: spec.log_x,
            show_max: spec.show_max,
            bins: spec.bins,
            scale: spec.scale,
            labels,
            group_by,
        };
        // A correlation view's window must hold three of its minutes.
        (view.key().len() <= MAX_VIEW_KEY_LEN && view.spec().validate().is_ok()).then_some(view)
    })
}

/// The request a client would send for `spec` (what `PlotSpec::parse` reads).
fn api_json(spec: &PlotSpec) -> Value {
    let mut o = json!({
        "kind": spec.kind.as_str(),
        "metric": spec.metric.as_str(),
        "width": spec.width,
        "height": spec.height,
        "bins": spec.bins,
        "theme": if spec.theme == Theme::Dark { "dark" } else { "light" },
        "format": if spec.format == ImageFormat::Svg { "svg" } else { "png" },
        "log_x": spec.log_x,
        "show_max": spec.show_max,
        "scale": spec.scale,
    });
    if spec.services.len() == 1 {
        o["service"] = json!(spec.services[0]);
    } else {
        o["services"] = json!(spec.services);
    }
    match spec.range {
        TimeRange::Last(w) => o["window"] = json!(w.to_string()),
        TimeRange::Between { from_ms, until_ms } => {
            o["from"] = json!(from_ms);
            o["until"] = json!(until_ms);
        }
    }
    if let Some(t) = &spec.title {
        o["title"] = json!(t);
    }
    if !spec.thresholds.is_empty() {
        o["thresholds"] = json!(spec.thresholds);
    }
    if let Some(c) = &spec.correlation {
        o["stat"] = json!(c.stat.as_str());
        o["x_metric"] = json!(c.x_metric.as_str());
        o["x_stat"] = json!(c.x_stat.as_str());
        o["bucket"] = json!(c.bucket.to_string());
    }
    o
}

/// One edit of a JSON object: set a field to a random value, or remove it.
#[derive(Debug, Clone)]
enum Edit {
    Set(String, Value),
    Remove(String),
}

fn spec_edit() -> impl Strategy<Value = Edit> {
    let field = select(SPEC_FIELDS).prop_map(str::to_owned);
    prop_oneof![
        6 => (field.clone(), interesting()).prop_map(|(f, v)| Edit::Set(f, v)),
        1 => (field.clone(), any_json()).prop_map(|(f, v)| Edit::Set(f, v)),
        2 => field.prop_map(Edit::Remove),
        1 => (any_text(), interesting()).prop_map(|(f, v)| Edit::Set(f, v)),
    ]
}

fn apply(obj: &mut Map<String, Value>, edits: &[Edit]) {
    for edit in edits {
        match edit {
            Edit::Set(f, v) => {
                obj.insert(f.clone(), v.clone());
            }
            Edit::Remove(f) => {
                obj.remove(f);
            }
        }
    }
}

/// `from`/`until` around the edges of the allowed spans (or anywhere at all).
fn span_edge() -> impl Strategy<Value = (i64, i64)> {
    let delta = prop_oneof![
        select(vec![
            -1,
            0,
            1,
            MIN_SPAN_MS - 1,
            MIN_SPAN_MS,
            MAX_SPAN_MS,
            MAX_SPAN_MS + 1,
            i64::MAX,
            i64::MIN,
        ]),
        any::<i64>(),
    ];
    let start = prop_oneof![
        timestamp_ms(),
        select(vec![
            i64::MIN,
            i64::MAX,
            -MIN_SPAN_MS,
            MAX_TIMESTAMP_MS - MIN_SPAN_MS + 1
        ]),
    ];
    (start, delta).prop_map(|(from, delta)| (from, from.saturating_add(delta)))
}

/// Titles at the edges: a control character inside, or about `MAX_TITLE_CHARS` long.
fn title_edge() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,10}[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]\\PC{0,10}",
        "\\PC{119,122}",
        "[é€𝄞]{119,122}",
    ]
}

/// A valid request with a few fields changed, removed or added.
fn near_valid_spec_json() -> impl Strategy<Value = Value> {
    (
        valid_spec(),
        prop::collection::vec(spec_edit(), 0..4),
        prop::option::weighted(0.25, span_edge()),
        prop::option::weighted(0.15, title_edge()),
    )
        .prop_map(|(spec, edits, span, title)| {
            let Value::Object(mut obj) = api_json(&spec) else {
                unreachable!()
            };
            if let Some(title) = title {
                obj.insert("title".into(), json!(title));
            }
            if let Some((from, until)) = span {
                obj.remove("window");
                obj.insert("from".into(), json!(from));
                obj.insert("until".into(), json!(until));
            }
            apply(&mut obj, &edits);
            Value::Object(obj)
        })
}

fn near_valid_sample() -> impl Strategy<Value = Value> {
    let field = select(&SAMPLE_FIELDS[..]).prop_map(str::to_owned);
    let edit = prop_oneof![
        3 => (field.clone(), interesting()).prop_map(|(f, v)| Edit::Set(f, v)),
        1 => field.prop_map(Edit::Remove),
        1 => (any_text(), interesting()).prop_map(|(f, v)| Edit::Set(f, v)),
    ];
    (
        name(),
        name(),
        finite_f64(),
        prop::option::of(timestamp_ms()),
        prop_oneof![
            4 => Just(Vec::new()),
            1 => prop::collection::vec(edit, 1..3),
        ],
        prop::option::of(labels_json()),
    )
        .prop_map(|(service, metric, value, ts, edits, labels)| {
            let mut o = Map::new();
            o.insert("service".into(), json!(service));
            o.insert("metric".into(), json!(metric));
            o.insert("value".into(), json!(value));
            if let Some(ts) = ts {
                o.insert("timestamp".into(), json!(ts));
            }
            if let Some(labels) = labels {
                o.insert("labels".into(), labels);
            }
            apply(&mut o, &edits);
            Value::Object(o)
        })
}

/// A sample's `labels`: usually one of a few valid sets (as batches repeat them), else
/// any names and values, up to past the count limit.
fn labels_json() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        4 => select(vec!["route", "method", "status", "_x", "a1"]).prop_map(str::to_owned),
        1 => any_text(),
    ];
    let value = prop_oneof![
        4 => select(vec!["/pay", "GET", "200", "x y"]).prop_map(str::to_owned),
        1 => any_text(),
    ];
    prop_oneof![
        3 => select(vec![
            json!({"route": "/pay"}),
            json!({"route": "/cart", "method": "GET"}),
            json!({}),
        ]),
        1 => prop::collection::btree_map(name, value, 0..10).prop_map(|m| json!(m)),
    ]
}

fn now_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => timestamp_ms(),
        1 => any::<i64>(),
        1 => select(vec![i64::MIN, i64::MAX, -1, MAX_TIMESTAMP_MS + 1]),
    ]
}

// ---- checks -----------------------------------------------------------------------------

fn check_errors(errors: &FieldErrors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty());
    prop_assert!(
        errors.0.len() <= MAX_REPORTED_ERRORS + 1,
        "{} errors",
        errors.0.len()
    );
    for (i, e) in errors.0.iter().enumerate() {
        prop_assert!(e.field.len() <= MAX_FIELD_BYTES, "field {:?}", e.field);
        prop_assert!(
            e.problem.len() <= MAX_PROBLEM_BYTES,
            "problem {:?}",
            e.problem
        );
        if e.is_stop_marker() {
            prop_assert_eq!(
                i,
                MAX_REPORTED_ERRORS,
                "the stop marker comes last, at the cap"
            );
        }
    }
    Ok(())
}

/// Everything a spec accepted by any path must satisfy.
fn check_accepted_spec(spec: &PlotSpec) -> Result<(), TestCaseError> {
    prop_assert_eq!(spec.validate(), Ok(()));
    prop_assert!((1..=MAX_SERVICES).contains(&spec.services.len()));
    prop_assert!(spec.services.len() == 1 || spec.kind.compares());
    prop_assert!((WIDTH_RANGE.0..=WIDTH_RANGE.1).contains(&spec.width));
    prop_assert!((HEIGHT_RANGE.0..=HEIGHT_RANGE.1).contains(&spec.height));
    prop_assert!((BINS_RANGE.0..=BINS_RANGE.1).contains(&spec.bins));
    if let Some(t) = &spec.title {
        prop_assert!(t.chars().count() <= MAX_TITLE_CHARS);
        prop_assert!(!t.chars().any(char::is_control));
    }
    if let TimeRange::Between { from_ms, until_ms } = spec.range {
        for ts in [from_ms, until_ms] {
            prop_assert!((MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ts));
        }
    }
    prop_assert!((MIN_SPAN_MS..=MAX_SPAN_MS).contains(&spec.range.span_ms()));
    // serde round trip (the queue and cache path) …
    let bytes = serde_json::to_vec(spec).unwrap();
    prop_assert_eq!(&serde_json::from_slice::<PlotSpec>(&bytes).unwrap(), spec);
    // … and the API's own parser agree.
    prop_assert_eq!(&PlotSpec::parse(&api_json(spec), 0).unwrap(), spec);
    let _ = spec.title();
    Ok(())
}

// ---- properties -------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(4))]

    #[test]
    fn spec_parse_on_any_json(body in any_json(), now in now_ms()) {
        match PlotSpec::parse(&body, now) {
            Ok(spec) => check_accepted_spec(&spec)?,
            Err(e) => check_errors(&e)?,
        }
    }

    #[test]
    fn spec_parse_on_near_valid_requests(body in near_valid_spec_json(), now in now_ms()) {
        match PlotSpec::parse(&body, now) {
            Ok(spec) => check_accepted_spec(&spec)?,
            Err(e) => check_errors(&e)?,
        }
    }

    #[test]
    fn spec_parse_on_objects_with_many_unknown_fields(
        n in 0usize..400,
        base in near_valid_spec_json(),
    ) {
        let Value::Object(mut obj) = base else { unreachable!() };
        for i in 0..n {
            obj.insert(format!("extra{i}"), json!(i));
        }
        match PlotSpec::parse(&Value::Object(obj), 0) {
            Ok(spec) => { prop_assert_eq!(n, 0); check_accepted_spec(&spec)?; }
            Err(e) => {
                check_errors(&e)?;
                if n > MAX_REPORTED_ERRORS {
                    prop_assert!(e.0.last().unwrap().is_stop_marker());
                }
            }
        }
    }

    #[test]
    fn valid_specs_pass_every_path(spec in valid_spec(), now in timestamp_ms(), ev in select(vec![
        EventKind::PlotQueued, EventKind::PlotRendering, EventKind::PlotReady, EventKind::PlotFailed,
    ])) {
        check_accepted_spec(&spec)?;
        let mut state = queued(spec, now);
        state.view = Some("a/histogram/24h/dark/800x450".into());
        let (from, until) = state.data_range();
        prop_assert!(until - from >= MIN_SPAN_MS);
        prop_assert_eq!(&decode_state(&encode_state(&state)).unwrap(), &state);
        let msg = JobMessage::new(&state);
        prop_assert_eq!(&JobMessage::decode(&msg.encode()).unwrap(), &msg);
        let event = PlotEvent::for_job(&state, ev, now);
        prop_assert_eq!(&PlotEvent::decode(&event.encode()).unwrap(), &event);
        let view_state = ViewState {
            job_id: state.id,
            status: JobStatus::Done,
            requested_ms: now,
            last_ready: (ev == EventKind::PlotReady).then_some(event),
            error: None,
        };
        prop_assert_eq!(decode_view_state(&encode_view_state(&view_state)).unwrap(), view_state);
    }

    #[test]
    fn samples_on_any_json(body in any_json(), now in now_ms()) {
        check_samples(&body, now)?;
    }

    #[test]
    fn samples_on_near_valid_batches(
        items in prop_oneof![
            prop::collection::vec(near_valid_sample(), 0..6),
            prop::collection::vec(near_valid_sample(), 0..300),
        ],
        single in any::<bool>(),
        now in now_ms(),
    ) {
        let body = match (single, items.first()) {
            (true, Some(first)) => first.clone(),
            _ => Value::Array(items),
        };
        check_samples(&body, now)?;
    }

    #[test]
    fn job_message_decode_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_decoded(&bytes)?;
    }

    #[test]
    fn job_message_decode_on_mutated_messages(
        spec in valid_spec(),
        until in timestamp_ms(),
        edits in prop::collection::vec((select(MESSAGE_PATHS), prop::option::of(prop_oneof![interesting(), any_json()])), 1..4),
        span in prop::option::weighted(0.25, span_edge()),
        title in prop::option::weighted(0.15, title_edge()),
        byte_edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..3),
    ) {
        let mut msg = message_json(&queued(spec, until));
        if let Some((from_ms, until_ms)) = span {
            msg["spec"]["range"] = json!({"between": {"from_ms": from_ms, "until_ms": until_ms}});
        }
        if let Some(title) = title {
            msg["spec"]["title"] = json!(title);
        }
        for (path, value) in &edits {
            edit_path(&mut msg, path, value.clone());
        }
        let mut bytes = msg.to_string().into_bytes();
        check_decoded(&bytes)?;
        for (at, byte, op) in byte_edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        check_decoded(&bytes)?;
        // Events and states decode without panicking too.
        let _ = PlotEvent::decode(&bytes);
        let _ = decode_state(&bytes);
        let _ = decode_view_state(&bytes);
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn view_parse_on_any_string(raw in prop_oneof![
        any_text(),
        (near_name(), any_text(), "[0-9a-z ]{0,6}", any_text(), "[0-9x+ ]{0,12}")
            .prop_map(|(a, b, c, d, e)| format!("{a}/{b}/{c}/{d}/{e}")),
        (name(), select(PlotKind::ALL), "(0|[1-9][0-9]{0,7})[smhd]", select(vec!["light", "dark", "neon"]), "[0-9]{1,5}x[0-9]{1,5}")
            .prop_map(|(a, k, w, t, s)| format!("{a}/{}/{w}/{t}/{s}", k.as_str())),
    ]) {
        match View::parse(&raw) {
            Ok(v) => prop_assert_eq!(View::parse(&v.key()).unwrap(), v),
            Err(problem) => prop_assert!(problem.len() <= MAX_PROBLEM_BYTES, "{}", problem),
        }
    }

    #[test]
    fn views_round_trip(v in view()) {
        prop_assert_eq!(View::parse(&v.key()).unwrap(), v);
    }

    #[test]
    fn window_parse_on_any_string(raw in prop_oneof![any_text(), "[0-9 ]{0,25}[smhdw]{0,2}"]) {
        match Window::parse(&raw) {
            Ok(w) => prop_assert_eq!(Window::parse(&w.to_string()).unwrap(), w),
            Err(problem) => prop_assert!(problem.len() <= MAX_PROBLEM_BYTES, "{}", problem),
        }
    }

    #[test]
    fn event_id_parse_on_any_string(raw in prop_oneof![
        any_text(),
        "[0-9]{0,22}-[0-9]{0,22}",
        "[-+ 0-9]{0,45}",
    ]) {
        if let Some(id) = EventId::parse(&raw) {
            // Strict: only the canonical form is accepted.
            prop_assert_eq!(id.to_string(), raw);
        }
    }

    #[test]
    fn event_ids_round_trip_and_order_like_pairs(a in any::<(u64, u64)>(), b in any::<(u64, u64)>()) {
        let (x, y) = (EventId { ms: a.0, seq: a.1 }, EventId { ms: b.0, seq: b.1 });
        prop_assert_eq!(EventId::parse(&x.to_string()), Some(x));
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        prop_assert!(EventId::ZERO <= x);
    }
}

fn check_samples(body: &Value, now: i64) -> Result<(), TestCaseError> {
    let clock = now.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS);
    // Where the fast path answers, it answers what the JSON-value path does with the
    // same bytes (as the api parses them).
    let bytes = serde_json::to_vec(body).unwrap();
    if let Some(fast) = parse_samples_fast(&bytes, now) {
        let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
        let slow = parse_samples(&reparsed, now);
        prop_assert!(
            slow.is_ok(),
            "fast accepted what the value path refuses: {body}"
        );
        let slow = slow.unwrap();
        prop_assert_eq!(fast.len(), slow.len());
        for (f, s) in fast.iter().zip(&slow) {
            prop_assert_eq!(
                (
                    &f.service,
                    &f.metric,
                    f.value.to_bits(),
                    f.timestamp_ms,
                    &f.labels
                ),
                (
                    &s.service,
                    &s.metric,
                    s.value.to_bits(),
                    s.timestamp_ms,
                    &s.labels
                )
            );
        }
    }
    match parse_samples(body, now) {
        Ok(samples) => {
            prop_assert!(!samples.is_empty());
            for s in &samples {
                prop_assert!(s.value.is_finite());
                prop_assert!((MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&s.timestamp_ms));
                prop_assert!(s.timestamp_ms <= clock + MAX_FUTURE_SKEW_MS);
                // Re-validates: the sample, written back as a request, parses the same.
                let again = parse_samples(
                    &json!({"service": s.service, "metric": s.metric, "value": s.value,
                            "timestamp": s.timestamp_ms, "labels": s.labels}),
                    now,
                )
                .unwrap();
                prop_assert_eq!(&again[0].service, &s.service);
                prop_assert_eq!(&again[0].metric, &s.metric);
                prop_assert_eq!(again[0].timestamp_ms, s.timestamp_ms);
                prop_assert_eq!(&again[0].labels, &s.labels);
                prop_assert!(s.labels.len() <= plotq_domain::labels::MAX_LABELS);
                prop_assert_eq!(Labels::from_key(&s.labels.key()).unwrap(), s.labels.clone());
                prop_assert!((again[0].value - s.value).abs() <= s.value.abs() * 1e-15);
            }
        }
        Err(e) => check_errors(&e)?,
    }
    Ok(())
}

/// Decoding arbitrary bytes never panics; what it accepts passes the API's rules.
fn check_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    match JobMessage::decode(bytes) {
        Ok(m) => {
            check_accepted_spec(&m.spec)?;
            prop_assert!((MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&m.until_ms));
            if let Some(v) = &m.view {
                prop_assert!(View::parse(v).is_ok());
            }
            let state = JobState::queued(m.id, m.spec.clone(), m.until_ms);
            let _ = state.data_range();
            prop_assert_eq!(JobMessage::decode(&m.encode()).unwrap(), m);
        }
        Err(DecodeError::Invalid(e)) => check_errors(&e)?,
        Err(_) => {}
    }
    Ok(())
}

const MESSAGE_PATHS: &[&str] = &[
    "v",
    "id",
    "until_ms",
    "view",
    "spec",
    "spec/kind",
    "spec/services",
    "spec/services/0",
    "spec/services/1",
    "spec/metric",
    "spec/range",
    "spec/range/last",
    "spec/range/between",
    "spec/range/between/from_ms",
    "spec/range/between/until_ms",
    "spec/width",
    "spec/height",
    "spec/bins",
    "spec/title",
    "spec/theme",
    "spec/format",
    "spec/log_x",
    "spec/show_max",
];

/// Sets (or with `None` removes) the value at a `/`-separated path, creating objects on
/// the way.
fn edit_path(root: &mut Value, path: &str, value: Option<Value>) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().unwrap();
    let mut at = root;
    for p in parts {
        if !at.is_object() && !at.is_array() {
            *at = json!({});
        }
        at = match at {
            Value::Array(items) => match p.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            Value::Object(o) => o.entry(p).or_insert_with(|| json!({})),
            _ => return,
        };
    }
    match (at, value) {
        (Value::Object(o), Some(v)) => {
            o.insert(last.to_owned(), v);
        }
        (Value::Object(o), None) => {
            o.remove(last);
        }
        (Value::Array(items), v) => {
            if let Ok(i) = last.parse::<usize>() {
                match v {
                    Some(v) if i < items.len() => items[i] = v,
                    Some(v) => items.push(v),
                    None if i < items.len() => {
                        items.remove(i);
                    }
                    None => {}
                }
            }
        }
        (other, Some(v)) => *other = json!({ last: v }),
        (_, None) => {}
    }
}
