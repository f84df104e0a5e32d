//! Caddy v2 access logs: one line of the JSON that Caddy's `http.log.access` logger
//! writes, parsed into an [`AccessEntry`], and an entry turned into plotq [`Sample`]s
//! through a [`ServiceMap`]. Pure: no I/O, and no input makes it panic or work without
//! bound (a line is at most [`MAX_LINE_BYTES`], a batch at most [`MAX_LINES`] lines).
//!
//! A line is one of three things:
//!
//! - an access entry ([`Line::Access`]): `logger` is `http.log.access` or
//!   `http.log.access.<name>` (or absent, with `msg` "handled request"), `msg` is
//!   "handled request" when present, and every field read below is valid;
//! - not an access entry ([`Line::Skipped`], with the reason): another logger (`tls`,
//!   `http.handlers.reverse_proxy`, …) or another `msg`;
//! - malformed (`Err(FieldError)`, naming the field and the problem): too long, not
//!   JSON, not an object, or an access entry with a missing or invalid field.
//!
//! Fields read (all others — `level`, `resp_headers`, `user_id`, `bytes_read`, the
//! request's headers and TLS details — are ignored):
//!
//! - `ts`: epoch seconds (a number, Caddy's default `time_format`), or a string in RFC
//!   3339 or Caddy's `iso8601` layout (`2006-01-02T15:04:05.000Z0700`); from 1970 to
//!   9999 and at most [`MAX_FUTURE_SKEW_MS`] ahead of the clock;
//! - `request.method` and `request.host` (strings; the host may be empty), and
//!   `request.uri`/`request.proto` (strings when present);
//! - `duration`: seconds (a number, Caddy's default `duration_format`), or a Go duration
//!   string (`"1.5ms"`, `"2m3.25s"`, `"350µs"`; Caddy's `duration_format string`); never
//!   negative;
//! - `status`: a whole number from 100 to 599; `size`: a whole number ≥ 0 when present.
//!
//! Each access entry becomes two samples at its `ts` ([`ServiceMap::samples`]):
//! the duration in milliseconds as [`DURATION_METRIC`] (`http_request_duration_ms`, or
//! `http_request_duration_ms.<method>` with [`ServiceMap::metric_per_method`]), and the
//! status code as [`STATUS_METRIC`]. Plot kinds read exactly one metric each, the spec's
//! `metric`; there is no companion-metric convention. `status_codes` and `error_rate`
//! default to `status_code` ([`crate::plot::DEFAULT_STATUS_METRIC`]), so the status
//! samples are written under that name and those plots work without a `metric`; the
//! latency kinds default to `latency_ms`, so their requests name
//! `"metric": "http_request_duration_ms"`.

use crate::error::{FieldError, excerpt};
use crate::names::{MetricName, ServiceName};
use crate::plot::DEFAULT_STATUS_METRIC;
use crate::sample::{MAX_BATCH, MAX_FUTURE_SKEW_MS, Sample};
use crate::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, check_timestamp, clamp_timestamp};
use chrono::DateTime;
use serde::Serialize;
use serde_json::{Map, Value};

/// Longest line accepted, in bytes (without its newline).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The metric of a request's duration, in milliseconds.
pub const DURATION_METRIC: &str = "http_request_duration_ms";
/// The metric of a request's status code: the one `status_codes` and `error_rate` read
/// by default.
pub const STATUS_METRIC: &str = DEFAULT_STATUS_METRIC;
/// Samples made from one access entry.
pub const SAMPLES_PER_ENTRY: usize = 2;
/// Most non-blank lines in one batch: their samples fit one ingest batch.
pub const MAX_LINES: usize = MAX_BATCH / SAMPLES_PER_ENTRY;
/// Most malformed lines reported (with their numbers) for one batch; the count says how
/// many there were in all.
pub const MAX_LINE_ERRORS: usize = 20;
/// Most `host=service` rules in one [`ServiceMap`].
pub const MAX_MAP_RULES: usize = 100;
/// Longest Go duration string read.
const MAX_GO_DURATION_CHARS: usize = 64;
/// The `msg` of every access entry.
pub const HANDLED_REQUEST: &str = "handled request";
/// The access loggers' name (named logs add `.<name>`).
pub const ACCESS_LOGGER: &str = "http.log.access";

/// One request, as the access log recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessEntry {
    /// When the request was handled (`ts`), epoch milliseconds.
    pub timestamp_ms: i64,
    pub method: String,
    /// As sent (`Host` header): may carry a port, may be empty.
    pub host: String,
    pub uri: Option<String>,
    pub proto: Option<String>,
    /// How long handling took, milliseconds (finite, ≥ 0).
    pub duration_ms: f64,
    /// 100 to 599.
    pub status: u16,
    /// Response body bytes, when logged.
    pub size: Option<u64>,
}

/// A line that parsed: an access entry, or something else the log holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Access(AccessEntry),
    /// Not an access entry (another logger or message); why.
    Skipped(String),
}

/// Parses one line (without its newline; a trailing `\r` is tolerated). `now_ms` bounds
/// future timestamps. A malformed line is `Err`, naming the field (`/ts`,
/// `/request/host`, …; empty for the whole line) and the problem.
pub fn parse_line(line: &[u8], now_ms: i64) -> Result<Line, FieldError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(FieldError::new(
            "",
            format!(
                "the line is {} bytes; the limit is {MAX_LINE_BYTES}",
                line.len()
            ),
        ));
    }
    let value: Value =
        serde_json::from_slice(line).map_err(|e| FieldError::new("", format!("not JSON ({e})")))?;
    let Value::Object(obj) = value else {
        return Err(FieldError::new("", "not a JSON object"));
    };
    if let Some(reason) = not_access(&obj)? {
        return Ok(Line::Skipped(reason));
    }
    let timestamp_ms = parse_ts(obj.get("ts"), now_ms)?;
    let request = match obj.get("request") {
        Some(Value::Object(r)) => r,
        Some(_) => return Err(FieldError::new("/request", "must be an object")),
        None => return Err(FieldError::new("/request", "is required")),
    };
    let method = required_string(request, "method", "/request/method")?;
    let host = required_string(request, "host", "/request/host")?;
    let uri = optional_string(request, "uri", "/request/uri")?;
    let proto = optional_string(request, "proto", "/request/proto")?;
    let duration_ms = parse_duration(obj.get("duration"))?;
    let status = parse_status(obj.get("status"))?;
    let size = match obj.get("size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| FieldError::new("/size", "must be a whole number ≥ 0"))?,
        ),
        Some(_) => return Err(FieldError::new("/size", "must be a whole number ≥ 0")),
    };
    Ok(Line::Access(AccessEntry {
        timestamp_ms,
        method,
        host,
        uri,
        proto,
        duration_ms,
        status,
        size,
    }))
}

/// Whether `logger` names an access log (`http.log.access`, `http.log.access.log0`).
pub fn is_access_logger(logger: &str) -> bool {
    logger
        .strip_prefix(ACCESS_LOGGER)
        .is_some_and(|rest| rest.is_empty() || (rest.starts_with('.') && rest.len() > 1))
}

/// `Some(reason)` when the entry is not an access entry; `Err` when `logger` or `msg`
/// has the wrong type.
fn not_access(obj: &Map<String, Value>) -> Result<Option<String>, FieldError> {
    let msg = match obj.get("msg") {
        None => None,
        Some(Value::String(m)) => Some(m.as_str()),
        Some(_) => return Err(FieldError::new("/msg", "must be a string")),
    };
    match obj.get("logger") {
        Some(Value::String(l)) if is_access_logger(l) => {}
        Some(Value::String(l)) => {
            return Ok(Some(format!("logger {} is not an access log", excerpt(l))));
        }
        Some(_) => return Err(FieldError::new("/logger", "must be a string")),
        None if msg == Some(HANDLED_REQUEST) => {}
        None => {
            return Ok(Some(format!(
                "no logger, and msg is not {HANDLED_REQUEST:?}"
            )));
        }
    }
    match msg {
        Some(m) if m != HANDLED_REQUEST => Ok(Some(format!(
            "msg {} is not {HANDLED_REQUEST:?}",
            excerpt(m)
        ))),
        _ => Ok(None),
    }
}

fn required_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, FieldError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(FieldError::new(path, "must be a string")),
        None => Err(FieldError::new(path, "is required")),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(path, "must be a string")),
    }
}

/// `ts`: epoch seconds, RFC 3339, or Caddy's `iso8601` layout; in range, not in the future.
fn parse_ts(v: Option<&Value>, now_ms: i64) -> Result<i64, FieldError> {
    let err = |p: String| FieldError::new("/ts", p);
    let ms = match v {
        None => return Err(err("is required".to_owned())),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(f64::NAN);
            let ms = (secs * 1000.0).round();
            if !(MIN_TIMESTAMP_MS as f64..=MAX_TIMESTAMP_MS as f64).contains(&ms) {
                return Err(err(format!(
                    "{secs} epoch seconds is outside 1970-01-01 to 9999-12-31"
                )));
            }
            ms as i64
        }
        Some(Value::String(s)) => {
            let parsed = DateTime::parse_from_rfc3339(s)
                .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
                .map_err(|_| {
                    err(format!(
                        "{} is neither epoch seconds nor an RFC 3339 timestamp",
                        excerpt(s)
                    ))
                })?;
            check_timestamp(parsed.timestamp_millis()).map_err(err)?
        }
        Some(_) => {
            return Err(err(
                "must be epoch seconds (a number) or an RFC 3339 string".to_owned(),
            ));
        }
    };
    // Both are within the timestamp range, so the sum cannot overflow.
    if ms > clamp_timestamp(now_ms) + MAX_FUTURE_SKEW_MS {
        return Err(err("lies more than 5 minutes in the future".to_owned()));
    }
    Ok(ms)
}

/// `duration` in milliseconds: seconds, or a Go duration string; finite and ≥ 0.
fn parse_duration(v: Option<&Value>) -> Result<f64, FieldError> {
    let err = |p: String| FieldError::new("/duration", p);
    let ms = match v {
        None => return Err(err("is required".to_owned())),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(f64::NAN);
            if secs < 0.0 {
                return Err(err(format!("must not be negative (got {secs} s)")));
            }
            secs * 1000.0
        }
        Some(Value::String(s)) => parse_go_duration(s).map_err(err)?,
        Some(_) => {
            return Err(err(
                "must be seconds (a number) or a Go duration string such as \"1.5ms\"".to_owned(),
            ));
        }
    };
    if !ms.is_finite() {
        return Err(err("is too large".to_owned()));
    }
    // -0.0 (from "-0s") is zero.
    Ok(ms.max(0.0))
}

/// A Go duration string (`time.ParseDuration`: `"300ms"`, `"1.5h"`, `"2h45m"`, `"0"`;
/// units `ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`) in milliseconds. Negative durations
/// are refused (a request does not take negative time).
pub fn parse_go_duration(s: &str) -> Result<f64, String> {
    let invalid = || format!("{} is not a Go duration (such as \"1.5ms\")", excerpt(s));
    if s.chars().count() > MAX_GO_DURATION_CHARS {
        return Err(format!(
            "a duration string of more than {MAX_GO_DURATION_CHARS} characters"
        ));
    }
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let per_unit_ms = match &rest[..unit_end] {
            "ns" => 1e-6,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            "" => return Err(format!("{}: a number without a unit", excerpt(s))),
            unit => {
                return Err(format!(
                    "{}: unknown unit {} (ns, us, ms, s, m, h)",
                    excerpt(s),
                    excerpt(unit)
                ));
            }
        };
        total += value * per_unit_ms;
        rest = &rest[unit_end..];
    }
    if negative && total > 0.0 {
        return Err(format!("must not be negative (got {})", excerpt(s)));
    }
    Ok(total)
}

fn parse_status(v: Option<&Value>) -> Result<u16, FieldError> {
    let err = |p: String| FieldError::new("/status", p);
    match v {
        None => Err(err("is required".to_owned())),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(code @ 100..=599) => Ok(code as u16),
            Some(code) => Err(err(format!(
                "{code} is not an HTTP status code (100 to 599)"
            ))),
            None => Err(err(format!(
                "{n} is not an HTTP status code (a whole number from 100 to 599)"
            ))),
        },
        Some(_) => Err(err(
            "must be a number (an HTTP status code from 100 to 599)".to_owned(),
        )),
    }
}

/// How an access entry's host becomes a service: the first of
///
/// 1. a rule for the host: an exact host (`api.example.com=api`) wins over a wildcard
///    (`*.example.com=web`, which matches every subdomain of `example.com` but not
///    `example.com` itself), and of two wildcards the longer suffix wins;
/// 2. the default service, when there is one;
/// 3. none: the line is malformed (hosts are chosen by whoever sends the edge a
///    request, so they never name services by themselves).
///
/// Hosts are compared lowercased, without a port and a trailing dot ([`normalize_host`]).
/// With `metric_per_method`, the duration metric carries the method
/// (`http_request_duration_ms.get`); the status metric never does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceMap {
    exact: Vec<(String, ServiceName)>,
    /// `(".example.com", service)`, longest suffix first.
    suffixes: Vec<(String, ServiceName)>,
    pub default_service: Option<ServiceName>,
    pub metric_per_method: bool,
}

impl ServiceMap {
    /// No rules; `default_service` for every host, if given.
    pub fn new(default_service: Option<ServiceName>) -> Self {
        Self {
            default_service,
            ..Self::default()
        }
    }

    /// How many `host=service` rules it has.
    pub fn rules(&self) -> usize {
        self.exact.len() + self.suffixes.len()
    }

    /// Adds one `host=service` or `*.suffix=service` rule (at most [`MAX_MAP_RULES`]).
    pub fn add_rule(&mut self, rule: &str) -> Result<(), String> {
        if self.rules() >= MAX_MAP_RULES {
            return Err(format!("more than {MAX_MAP_RULES} rules"));
        }
        let Some((host, service)) = rule.split_once('=') else {
            return Err(format!("{} is not host=service", excerpt(rule)));
        };
        let service =
            ServiceName::parse(service.trim()).map_err(|p| format!("{}: {p}", excerpt(rule)))?;
        let host = host.trim().to_ascii_lowercase();
        let valid_host = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"=,*/".contains(&b))
        };
        match host.strip_prefix("*.") {
            Some(suffix) if valid_host(suffix) => {
                let suffix = format!(".{}", suffix.trim_end_matches('.'));
                self.suffixes.retain(|(s, _)| *s != suffix);
                self.suffixes.push((suffix, service));
                self.suffixes
                    .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
            }
            None if valid_host(&host) => {
                let host = normalize_host(&host);
                self.exact.retain(|(h, _)| *h != host);
                self.exact.push((host, service));
            }
            _ => {
                return Err(format!(
                    "{}: the host must be a host name or *.suffix",
                    excerpt(rule)
                ));
            }
        }
        Ok(())
    }

    /// Adds comma-separated rules (`a.example.com=a,*.example.com=web`); empty items are
    /// ignored.
    pub fn add_rules(&mut self, rules: &str) -> Result<(), String> {
        for rule in rules.split(',').filter(|r| !r.trim().is_empty()) {
            self.add_rule(rule)?;
        }
        Ok(())
    }

    /// The service of `host` (as logged), or why there is none.
    pub fn service_for(&self, host: &str) -> Result<ServiceName, String> {
        let host = normalize_host(host);
        if let Some((_, service)) = self.exact.iter().find(|(h, _)| *h == host) {
            return Ok(service.clone());
        }
        if let Some((_, service)) = self
            .suffixes
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
        {
            return Ok(service.clone());
        }
        if let Some(service) = &self.default_service {
            return Ok(service.clone());
        }
        // Hosts are written by whoever sends the edge a request: a service per unknown
        // host would let scanners create services without bound. Only rules name them.
        Err(if host.is_empty() {
            "is empty, and no default service was given".to_owned()
        } else {
            format!(
                "{} matches no map rule, and no default service was given (`service=`)",
                excerpt(&host)
            )
        })
    }

    /// The duration metric of requests with `method`.
    pub fn duration_metric(&self, method: &str) -> MetricName {
        let plain = || MetricName::parse(DURATION_METRIC).expect("a valid metric name");
        if !self.metric_per_method {
            return plain();
        }
        // A fixed set: methods are the client's to invent, metric names must stay few.
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => "get",
            "POST" => "post",
            "PUT" => "put",
            "DELETE" => "delete",
            "PATCH" => "patch",
            "HEAD" => "head",
            "OPTIONS" => "options",
            "" => return plain(),
            _ => "other",
        };
        MetricName::parse(&format!("{DURATION_METRIC}.{method}"))
            .expect("letters, digits, '_' and '-' after a valid prefix, within the length")
    }

    /// The samples of one access entry: its duration and its status, at its `ts`.
    pub fn samples(&self, entry: &AccessEntry) -> Result<[Sample; SAMPLES_PER_ENTRY], FieldError> {
        let service = self
            .service_for(&entry.host)
            .map_err(|p| FieldError::new("/request/host", p))?;
        Ok([
            Sample {
                service: service.clone(),
                metric: self.duration_metric(&entry.method),
                value: entry.duration_ms,
                timestamp_ms: entry.timestamp_ms,
            },
            Sample {
                service,
                metric: MetricName::parse(STATUS_METRIC).expect("a valid metric name"),
                value: f64::from(entry.status),
                timestamp_ms: entry.timestamp_ms,
            },
        ])
    }
}

/// A host as rules compare it: lowercased, without a port (`example.com:8443`,
/// `[::1]:8080`) or IPv6 brackets, without a trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    bare.trim_end_matches('.').to_ascii_lowercase()
}

/// A malformed line of a batch: its number (1-based, counting every line of the body)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: usize,
    /// The field (`/ts`, `/request/host`, …; empty for the whole line).
    pub field: String,
    /// `<field>: <problem>`, or the problem of the whole line.
    pub problem: String,
}

/// What a batch of lines held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessLogBatch {
    /// Non-blank lines read (= accepted + skipped + malformed).
    pub lines: usize,
    pub accepted: usize,
    pub skipped: usize,
    pub malformed: usize,
    /// [`SAMPLES_PER_ENTRY`] per accepted line, in line order.
    pub samples: Vec<Sample>,
    /// The first [`MAX_LINE_ERRORS`] malformed lines.
    pub errors: Vec<LineError>,
}

/// Parses a body of newline-separated lines (NDJSON; `\r\n` too). Blank lines are not
/// counted, but line numbers count them, so a reported number is the line in the body.
/// Malformed lines are counted and reported, never fatal; the only error is a body of
/// more than [`MAX_LINES`] non-blank lines (checked before any line is parsed).
pub fn parse_access_log(
    body: &[u8],
    map: &ServiceMap,
    now_ms: i64,
) -> Result<AccessLogBatch, String> {
    let lines = || {
        body.split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
    };
    let n = lines().count();
    if n > MAX_LINES {
        return Err(format!(
            "the body has {n} lines; the limit is {MAX_LINES} (send smaller batches)"
        ));
    }
    let mut batch = AccessLogBatch {
        lines: n,
        ..AccessLogBatch::default()
    };
    for (number, line) in lines() {
        let outcome = parse_line(line, now_ms).and_then(|parsed| match parsed {
            Line::Access(entry) => map.samples(&entry).map(Some),
            Line::Skipped(_) => Ok(None),
        });
        match outcome {
            Ok(Some(samples)) => {
                batch.accepted += 1;
                batch.samples.extend(samples);
            }
            Ok(None) => batch.skipped += 1,
            Err(e) => {
                batch.malformed += 1;
                if batch.errors.len() < MAX_LINE_ERRORS {
                    let problem = if e.field.is_empty() {
                        e.problem.clone()
                    } else {
                        e.to_string()
                    };
                    batch.errors.push(LineError {
                        line: number,
                        field: e.field,
                        problem,
                    });
                }
            }
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(
            long.ends_with("matches no map rule, and no default service was given (`service=`)")
        );
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
        let fixture = include_str!("../../../tests/fixtures/caddy/access.log");
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
        let host = "/request/host";
        assert_eq!(
            fixture_errors(&batch),
            [
                (1, host),
                (2, host),
                (3, host),
                (5, host),
                (7, host),
                (8, ""),
                (9, host),
                (10, "/status"),
                (11, "/duration"),
                (12, "/status"),
                (13, host),
                (15, host),
                (16, host)
            ]
        );
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
            let map = ServiceMap { metric_per_method: true, ..ServiceMap::default() };
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
}
