//! The Caddy access-log parser's unit tests and properties: lines as Caddy 2.7 writes
//! them, every malformed field named, hosts mapped to services, batches counted, the
//! fixture (`tests/fixtures/caddy/access.log`) read as the README documents it, and no
//! input that panics.

use super::*;
#[path = "../../../../../tests/fixtures/caddy/fixture.rs"]
mod fixture;
use plotq_domain::{FieldError, ServiceName};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_600_000;

/// A line as Caddy 2.7 writes it (field order and all), with `ts`, `duration`,
/// `status`, host and method filled in.
fn caddy_line(ts: &str, host: &str, method: &str, duration: &str, status: &str) -> String {
    format!(
        r#"{{"level":"info","ts":{ts},"logger":"http.log.access.log0","msg":"handled request","request":{{"remote_ip":"203.0.113.7","remote_port":"51334","client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"{method}","host":"{host}","uri":"/api/v1/items?page=2","headers":{{"User-Agent":["curl/8.4.0"],"Accept":["*/*"]}},"tls":{{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"{host}"}}}},"bytes_read":0,"user_id":"","duration":{duration},"size":5131,"status":{status},"resp_headers":{{"Server":["Caddy"],"Content-Type":["application/json"]}}}}"#
    )
}

fn entry(line: &str) -> AccessEntry {
    match parse_line(line.as_bytes(), NOW) {
        Ok(Line::Access(e)) => e,
        other => panic!("{other:?} for {line}"),
    }
}

fn malformed(line: &str) -> FieldError {
    parse_line(line.as_bytes(), NOW).expect_err(line)
}

#[test]
fn parses_a_caddy_2_7_entry() {
    let e = entry(&caddy_line(
        "1700000000.5241024",
        "shop.example.com",
        "GET",
        "0.000929675",
        "200",
    ));
    assert_eq!(e.timestamp_ms, 1_700_000_000_524);
    assert_eq!(e.method, "GET");
    assert_eq!(e.host, "shop.example.com");
    assert_eq!(e.uri.as_deref(), Some("/api/v1/items?page=2"));
    assert_eq!(e.proto.as_deref(), Some("HTTP/2.0"));
    assert!((e.duration_ms - 0.929675).abs() < 1e-9);
    assert_eq!(e.status, 200);
    assert_eq!(e.size, Some(5131));
}

#[test]
fn accepts_string_timestamps_and_go_durations() {
    let e = entry(&caddy_line(
        r#""2023-11-14T22:13:20.25Z""#,
        "a",
        "POST",
        r#""1.5ms""#,
        "503",
    ));
    assert_eq!(e.timestamp_ms, 1_700_000_000_250);
    assert_eq!(e.duration_ms, 1.5);
    // Caddy's `iso8601` time format has no colon in the offset.
    let e = entry(&caddy_line(
        r#""2023-11-14T23:13:20.000+0100""#,
        "a",
        "GET",
        r#""2m3.25s""#,
        "204",
    ));
    assert_eq!(e.timestamp_ms, 1_700_000_000_000);
    assert_eq!(e.duration_ms, 123_250.0);
}

#[test]
fn go_durations() {
    for (s, ms) in [
        ("0", 0.0),
        ("0s", 0.0),
        ("1.5ms", 1.5),
        ("350µs", 0.35),
        ("350μs", 0.35),
        ("350us", 0.35),
        ("1500000ns", 1.5),
        ("1h2m3s", 3_723_000.0),
        ("+2s", 2000.0),
        (".5s", 500.0),
        ("1.s", 1000.0),
        ("-0s", 0.0),
    ] {
        let got = parse_go_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!((got - ms).abs() < 1e-9, "{s}: {got} != {ms}");
    }
    for bad in [
        "", "-", "1", "ms", "1x", "1..5s", ".s", "-1s", "1s-2s", "1e3s",
    ] {
        assert!(parse_go_duration(bad).is_err(), "{bad}");
    }
    assert!(
        parse_go_duration(&"1".repeat(100))
            .unwrap_err()
            .contains("64")
    );
}

#[test]
fn other_loggers_and_messages_are_skipped() {
    for line in [
        r#"{"level":"info","ts":1700000000.1,"logger":"tls.obtain","msg":"certificate obtained successfully","identifier":"example.com"}"#,
        r#"{"level":"error","ts":1700000000.1,"logger":"http.log.error","msg":"dial tcp 127.0.0.1:9000: connect: connection refused","request":{"method":"GET","host":"a"},"duration":0.001,"status":502}"#,
        r#"{"level":"info","ts":1700000000.1,"logger":"http.log.access.log0","msg":"something else"}"#,
        r#"{"level":"info","ts":1700000000.1,"msg":"serving initial configuration"}"#,
        r#"{"level":"info","ts":1700000000.1,"logger":"http.log.accessory","msg":"handled request"}"#,
    ] {
        assert!(
            matches!(parse_line(line.as_bytes(), NOW), Ok(Line::Skipped(_))),
            "{line}"
        );
    }
    // No logger, but the access message: an access entry.
    entry(
        r#"{"ts":1700000000,"msg":"handled request","request":{"method":"GET","host":"a"},"duration":0.1,"status":200}"#,
    );
}

#[test]
fn malformed_lines_name_the_field() {
    let ok = |ts: &str, d: &str, s: &str| caddy_line(ts, "a", "GET", d, s);
    for (line, field, problem) in [
        (ok("1700000000", "-0.5", "200"), "/duration", "negative"),
        (
            ok("1700000000", r#""-3ms""#, "200"),
            "/duration",
            "negative",
        ),
        (
            ok("1700000000", r#""fast""#, "200"),
            "/duration",
            "Go duration",
        ),
        (ok("1700000000", "true", "200"), "/duration", "seconds"),
        (ok("1700000000", "0.1", r#""200""#), "/status", "number"),
        (ok("1700000000", "0.1", "0"), "/status", "100 to 599"),
        (ok("1700000000", "0.1", "200.5"), "/status", "whole"),
        (ok("\"yesterday\"", "0.1", "200"), "/ts", "RFC 3339"),
        (ok("-5", "0.1", "200"), "/ts", "outside"),
        (ok("1e300", "0.1", "200"), "/ts", "outside"),
        (ok("1800000000", "0.1", "200"), "/ts", "future"),
        (ok("null", "0.1", "200"), "/ts", "epoch seconds"),
        (ok("1700000000", "1e306", "200"), "/duration", "too large"),
    ] {
        let e = malformed(&line);
        assert_eq!(e.field, field, "{line}: {e}");
        assert!(e.problem.contains(problem), "{line}: {e}");
    }
    let missing_status = r#"{"level":"info","ts":1700000000.1,"logger":"http.log.access","msg":"handled request","request":{"method":"GET","host":"a"},"duration":0.1}"#;
    assert_eq!(
        malformed(missing_status).to_string(),
        "/status: is required"
    );
    let no_request = r#"{"ts":1700000000.1,"logger":"http.log.access","msg":"handled request","duration":0.1,"status":200}"#;
    assert_eq!(malformed(no_request).field, "/request");
    let host_number = r#"{"ts":1700000000.1,"logger":"http.log.access","request":{"method":"GET","host":7},"duration":0.1,"status":200}"#;
    assert_eq!(
        malformed(host_number).to_string(),
        "/request/host: must be a string"
    );
    assert!(
        malformed(r#"{"ts":1700000000.1,"logger":"http.log.acc"#)
            .problem
            .contains("EOF")
    );
    assert_eq!(malformed("[1,2]").problem, "not a JSON object");
    assert_eq!(malformed(r#"{"logger":5}"#).field, "/logger");
    let long = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_LINE_BYTES));
    assert!(malformed(&long).problem.contains("limit"));
}

/// The problem of a host that no rule names, without a default service.
fn unmapped(host: &str) -> String {
    format!("{host:?} matches no map rule, and no default service was given (`service=`)")
}

#[test]
fn hosts_map_to_services() {
    let mut map = ServiceMap::new(None);
    map.add_rules("api.example.com=api, *.example.com=web,*.eu.example.com=eu")
        .unwrap();
    assert_eq!(map.rules(), 3);
    fn service_of(map: &ServiceMap, host: &str) -> Result<String, String> {
        map.service_for(host).map(|s| s.to_string())
    }
    let service = |host: &str| service_of(&map, host);
    assert_eq!(service("api.example.com").unwrap(), "api");
    assert_eq!(service("API.Example.com:8443").unwrap(), "api");
    assert_eq!(service("shop.example.com").unwrap(), "web");
    assert_eq!(service("a.b.eu.example.com.").unwrap(), "eu");
    // A wildcard matches subdomains only; a host no rule names has no service (hosts
    // are the client's to choose: they never name services by themselves).
    assert_eq!(service("example.com"), Err(unmapped("example.com")));
    assert_eq!(service("Other_Host.io"), Err(unmapped("other_host.io")));
    assert_eq!(service("[::1]:8080"), Err(unmapped("::1")));
    assert_eq!(service("-weird host!"), Err(unmapped("-weird host!")));
    assert_eq!(
        service(""),
        Err("is empty, and no default service was given".to_owned())
    );
    assert_eq!(service("***"), Err(unmapped("***")));
    // A long host is echoed cut short.
    let long = service(&"x".repeat(300)).unwrap_err();
    assert!(
        long.starts_with(&format!("\"{}\"…", "x".repeat(40))),
        "{long}"
    );
    assert!(long.ends_with("matches no map rule, and no default service was given (`service=`)"));
    // With a default service, it takes every host no rule names (the empty one too);
    // rules still win.
    map.default_service = Some(ServiceName::parse("edge").unwrap());
    let service = |host: &str| service_of(&map, host);
    assert_eq!(service("").unwrap(), "edge");
    assert_eq!(service("example.com").unwrap(), "edge");
    assert_eq!(service("152.53.179.101").unwrap(), "edge");
    assert_eq!(service("api.example.com").unwrap(), "api");
    assert_eq!(service("shop.example.com").unwrap(), "web");
    // No rules and no default: no host has a service.
    for host in ["example.com", "api.example.com", "localhost:80"] {
        assert!(ServiceMap::default().service_for(host).is_err(), "{host}");
    }
    for bad in ["nohost", "=svc", "a=bad name", "*.=x", "a b=c", "*=x"] {
        assert!(ServiceMap::default().add_rule(bad).is_err(), "{bad}");
    }
    let mut full = ServiceMap::default();
    for i in 0..MAX_MAP_RULES {
        full.add_rule(&format!("h{i}=s")).unwrap();
    }
    assert!(
        full.add_rule("one.more=s")
            .unwrap_err()
            .contains("more than")
    );
}

#[test]
fn an_unmapped_host_without_a_default_service_is_a_malformed_line() {
    let e = entry(&caddy_line(
        "1700000000",
        "Scanner.Example.net:443",
        "GET",
        "0.25",
        "404",
    ));
    let mut map = ServiceMap::default();
    map.add_rule("*.example.com=web").unwrap();
    let err = map.samples(&e).unwrap_err();
    assert_eq!(err.field, "/request/host");
    assert_eq!(err.problem, unmapped("scanner.example.net"));
    let empty = entry(&caddy_line("1700000000", "", "GET", "0.25", "404"));
    let err = map.samples(&empty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/request/host: is empty, and no default service was given"
    );
    // In a batch: counted as malformed and reported with its line and field, while
    // the mapped line beside it is stored.
    let mapped = caddy_line("1700000000", "shop.example.com", "GET", "0.1", "200");
    let body = format!(
        "{mapped}\n{}\n",
        caddy_line("1700000000", "203.0.113.9", "GET", "0.1", "200")
    );
    let batch = parse_access_log(body.as_bytes(), &map, NOW).unwrap();
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (2, 1, 0, 1)
    );
    assert_eq!(batch.samples.len(), 2);
    assert!(batch.samples.iter().all(|s| s.service.as_str() == "web"));
    assert_eq!(
        batch.errors,
        [LineError {
            line: 2,
            field: "/request/host".into(),
            problem: format!("/request/host: {}", unmapped("203.0.113.9")),
        }]
    );
    // A default service takes it.
    map.default_service = Some(ServiceName::parse("edge").unwrap());
    let batch = parse_access_log(body.as_bytes(), &map, NOW).unwrap();
    assert_eq!((batch.accepted, batch.malformed), (2, 0));
    assert_eq!(batch.samples[2].service.as_str(), "edge");
}

#[test]
fn entries_become_a_duration_and_a_status_sample() {
    let e = entry(&caddy_line(
        "1700000000",
        "Shop.Example.com",
        "GET",
        "0.25",
        "404",
    ));
    let mut map = ServiceMap::default();
    map.add_rule("shop.example.com=shop").unwrap();
    let [duration, status] = map.samples(&e).unwrap();
    assert_eq!(duration.service.as_str(), "shop");
    assert_eq!(duration.metric.as_str(), "http_request_duration_ms");
    assert_eq!(duration.value, 250.0);
    assert_eq!(duration.timestamp_ms, 1_700_000_000_000);
    assert_eq!(status.service.as_str(), "shop");
    assert_eq!(status.metric.as_str(), "status_code");
    assert_eq!(status.value, 404.0);
    assert_eq!(status.timestamp_ms, 1_700_000_000_000);
    map.metric_per_method = true;
    assert_eq!(
        map.samples(&e).unwrap()[0].metric.as_str(),
        "http_request_duration_ms.get"
    );
    assert_eq!(map.samples(&e).unwrap()[1].metric.as_str(), "status_code");
    assert_eq!(map.duration_metric("").as_str(), DURATION_METRIC);
}

#[test]
fn methods_fold_into_a_fixed_set_of_metrics() {
    let mut map = ServiceMap::default();
    // Without `metric_per_method`, one metric whatever the method.
    for method in ["GET", "PROPFIND", ""] {
        assert_eq!(map.duration_metric(method).as_str(), DURATION_METRIC);
    }
    map.metric_per_method = true;
    for (method, suffix) in [
        ("GET", "get"),
        ("get", "get"),
        ("POST", "post"),
        ("PUT", "put"),
        ("DELETE", "delete"),
        ("Patch", "patch"),
        ("HEAD", "head"),
        ("OPTIONS", "options"),
        // Anything else (WebDAV, typos, scanners' inventions) is `.other`.
        ("PROPFIND", "other"),
        ("CONNECT", "other"),
        ("TRACE", "other"),
        ("G E T", "other"),
        ("GET\n", "other"),
        ("ünïcode", "other"),
    ] {
        assert_eq!(
            map.duration_metric(method).as_str(),
            format!("{DURATION_METRIC}.{suffix}"),
            "{method:?}"
        );
    }
    assert_eq!(
        map.duration_metric(&"VERY-LONG.METHOD".repeat(9)).as_str(),
        "http_request_duration_ms.other"
    );
    // An empty method is the plain metric.
    assert_eq!(map.duration_metric("").as_str(), DURATION_METRIC);
    // Through a line: an unknown method folds to `.other`, the status metric is plain.
    let e = entry(&caddy_line("1700000000", "a", "BREW", "0.002", "418"));
    map.default_service = Some(ServiceName::parse("edge").unwrap());
    let [duration, status] = map.samples(&e).unwrap();
    assert_eq!(duration.metric.as_str(), "http_request_duration_ms.other");
    assert_eq!(duration.value, 2.0);
    assert_eq!(status.metric.as_str(), "status_code");
    assert_eq!(status.value, 418.0);
}

#[test]
fn batches_count_every_line_and_number_the_bad_ones() {
    let good = caddy_line("1700000000", "a.example.com", "GET", "0.1", "200");
    let body = format!(
        "{good}\r\n\n{}\n{{\"ts\":1\n   \n{good}\n",
        r#"{"level":"info","ts":1700000000.1,"logger":"admin","msg":"stopped previous server"}"#
    );
    let mut map = ServiceMap::default();
    map.add_rule("*.example.com=web").unwrap();
    let batch = parse_access_log(body.as_bytes(), &map, NOW).unwrap();
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (4, 2, 1, 1)
    );
    assert_eq!(batch.samples.len(), 4);
    assert!(batch.samples.iter().all(|s| s.service.as_str() == "web"));
    assert_eq!(batch.errors.len(), 1);
    assert_eq!(batch.errors[0].line, 4);
    assert_eq!(batch.errors[0].field, "");
    // The same body without a rule for its host: its access entries are malformed.
    let batch = parse_access_log(body.as_bytes(), &ServiceMap::default(), NOW).unwrap();
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (4, 0, 1, 3)
    );
    assert!(batch.samples.is_empty());
    let errors: Vec<(usize, &str)> = batch
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(1, "/request/host"), (4, ""), (6, "/request/host")]
    );
    let empty = parse_access_log(b"", &ServiceMap::default(), NOW).unwrap();
    assert_eq!(empty, AccessLogBatch::default());
    let many = "x\n".repeat(MAX_LINE_ERRORS + 5);
    let batch = parse_access_log(many.as_bytes(), &ServiceMap::default(), NOW).unwrap();
    assert_eq!(batch.malformed, MAX_LINE_ERRORS + 5);
    assert_eq!(batch.errors.len(), MAX_LINE_ERRORS);
    let too_many = "{}\n".repeat(MAX_LINES + 1);
    assert!(
        parse_access_log(too_many.as_bytes(), &ServiceMap::default(), NOW)
            .unwrap_err()
            .contains("limit")
    );
}

/// The fixture's lines by number: `(line, field)` of each malformed one.
fn fixture_errors(batch: &AccessLogBatch) -> Vec<(usize, &str)> {
    batch
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect()
}

#[test]
fn the_fixture_parses_as_documented() {
    let fixture = fixture::ACCESS_LOG;
    // The README's query: `service=edge&map=api.example.com=api,*.example.com=web`.
    let mut map = ServiceMap::new(Some(ServiceName::parse("edge").unwrap()));
    map.add_rules("api.example.com=api,*.example.com=web")
        .unwrap();
    let batch =
        parse_access_log(fixture.as_bytes(), &map, i64::MAX).expect("the fixture is one batch");
    assert_eq!(batch.lines, fixture.lines().count());
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (16, 9, 3, 4)
    );
    assert_eq!(batch.samples.len(), 2 * batch.accepted);
    assert_eq!(
        fixture_errors(&batch),
        [(8, ""), (10, "/status"), (11, "/duration"), (12, "/status")]
    );
    let mut services: Vec<&str> = batch.samples.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    assert_eq!(services, ["api", "edge", "web"]);

    // Rules without a default: the scanner's request to the bare IP (line 13) names
    // no service.
    let mut map = ServiceMap::default();
    map.add_rules("api.example.com=api,*.example.com=web")
        .unwrap();
    let batch = parse_access_log(fixture.as_bytes(), &map, i64::MAX).unwrap();
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (16, 8, 3, 5)
    );
    assert_eq!(
        fixture_errors(&batch),
        [
            (8, ""),
            (10, "/status"),
            (11, "/duration"),
            (12, "/status"),
            (13, "/request/host")
        ]
    );
    assert_eq!(
        batch.errors[4].problem,
        format!("/request/host: {}", unmapped("152.53.179.101"))
    );

    // No mapping at all: every access entry is malformed; lines with another fault
    // report that one (it is found first).
    let batch = parse_access_log(fixture.as_bytes(), &ServiceMap::default(), i64::MAX).unwrap();
    assert_eq!(
        (batch.lines, batch.accepted, batch.skipped, batch.malformed),
        (16, 0, 3, 13)
    );
    assert!(batch.samples.is_empty());
    assert_eq!(fixture_errors(&batch), fixture::UNMAPPED_ERRORS);
}

fn arb_host() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}"
}

/// A duration as a Go string, and its milliseconds.
fn arb_go_duration() -> impl Strategy<Value = (String, f64)> {
    (0u64..5, 0u64..60, 0u64..60_000, 0u64..1000).prop_map(|(h, m, ms, us)| {
        let text = format!("{h}h{m}m{}.{:03}s{us}µs", ms / 1000, ms % 1000);
        let total = (h * 3600 + m * 60) as f64 * 1000.0 + ms as f64 + us as f64 / 1000.0;
        (text, total)
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_line(&bytes, NOW);
        let batch = parse_access_log(&bytes, &ServiceMap::default(), NOW).unwrap();
        prop_assert_eq!(batch.lines, batch.accepted + batch.skipped + batch.malformed);
        prop_assert_eq!(batch.samples.len(), 2 * batch.accepted);
        prop_assert_eq!(batch.errors.len(), batch.malformed.min(MAX_LINE_ERRORS));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}", now in any::<i64>()) {
        let _ = parse_line(s.as_bytes(), now);
        let _ = parse_go_duration(&s);
        let _ = normalize_host(&s);
        let _ = ServiceMap::default().add_rules(&s);
        let _ = ServiceMap::default().service_for(&s);
    }

    #[test]
    fn any_method_is_one_of_eight_duration_metrics(method in ".{0,40}") {
        let mut map = ServiceMap::default();
        map.metric_per_method = true;
        let metric = map.duration_metric(&method);
        let suffix = metric.as_str().strip_prefix("http_request_duration_ms.");
        if method.is_empty() {
            prop_assert_eq!(metric.as_str(), DURATION_METRIC);
        } else {
            prop_assert!(
                matches!(
                    suffix,
                    Some("get" | "post" | "put" | "delete" | "patch" | "head" | "options" | "other")
                ),
                "{:?} -> {}", method, metric
            );
        }
    }

    #[test]
    fn damaged_real_lines_never_panic(
        cut in 0usize..700,
        at in 0usize..700,
        junk in "[\\PC]{0,3}",
        now in any::<i64>(),
    ) {
        let line = caddy_line("1700000000.25", "a.example.com", "GET", "0.0123", "201");
        let cut = line.get(..cut.min(line.len())).unwrap_or(&line);
        let _ = parse_line(cut.as_bytes(), now);
        let at = (0..=at.min(line.len())).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
        let spliced = format!("{}{junk}{}", &line[..at], &line[at..]);
        let _ = parse_line(spliced.as_bytes(), now);
    }

    #[test]
    fn valid_lines_round_trip_duration_status_and_time(
        ts_ms in 0i64..NOW,
        duration_ms in 0.0f64..10_000_000.0,
        status in 100u16..=599,
        host in arb_host(),
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        go in arb_go_duration(),
        as_string in any::<bool>(),
    ) {
        let ts = serde_json::to_string(&(ts_ms as f64 / 1000.0)).unwrap();
        let (duration, expected_ms) = if as_string {
            (format!("\"{}\"", go.0), go.1)
        } else {
            (serde_json::to_string(&(duration_ms / 1000.0)).unwrap(), duration_ms)
        };
        let line = caddy_line(&ts, &host, method, &duration, &status.to_string());
        let e = entry(&line);
        prop_assert_eq!(e.timestamp_ms, ts_ms);
        prop_assert_eq!(e.status, status);
        prop_assert!((e.duration_ms - expected_ms).abs() <= 1e-9 * expected_ms.max(1.0),
            "{} != {}", e.duration_ms, expected_ms);
        // Only a rule (or a default service) gives a host its service.
        let unmapped = ServiceMap::default().samples(&e).unwrap_err();
        prop_assert_eq!(unmapped.field, "/request/host");
        let mut map = ServiceMap::default();
        map.add_rule(&format!("{host}=mapped")).unwrap();
        let [d, s] = map.samples(&e).unwrap();
        prop_assert_eq!(d.service.as_str(), "mapped");
        prop_assert_eq!(s.service.as_str(), "mapped");
        prop_assert_eq!(d.value, e.duration_ms);
        prop_assert_eq!(s.value, f64::from(status));
        prop_assert_eq!(s.timestamp_ms, ts_ms);
    }
}
