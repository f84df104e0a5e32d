//! One line of the JSON that Caddy's `http.log.access` logger writes, parsed into an
//! [`AccessEntry`] ([`parse_line`]). Pure: no I/O, and no input makes it panic or work
//! without bound (a line is at most [`MAX_LINE_BYTES`]).
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

use chrono::DateTime;
use plotq_domain::FieldError;
use plotq_domain::error::excerpt;
use plotq_domain::sample::MAX_FUTURE_SKEW_MS;
use plotq_domain::timestamp::{
    MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, check_timestamp, clamp_timestamp,
};
use serde_json::{Map, Value};

/// Longest line accepted, in bytes (without its newline).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
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
