//! Timestamps: epoch milliseconds, UTC, bounded to what a calendar can show.
//!
//! Every timestamp this crate parses or decodes (sample timestamps, `from`/`until` of a
//! plot, the `until_ms`/`at_ms`/… fields of wire messages) lies in
//! [`MIN_TIMESTAMP_MS`]`..=`[`MAX_TIMESTAMP_MS`]: 1970-01-01T00:00:00.000Z to
//! 9999-12-31T23:59:59.999Z, the years an RFC 3339 timestamp can write. Within it, a
//! difference of two timestamps, or a timestamp minus a window, cannot overflow an `i64`.
//!
//! A sample's epoch number is read as milliseconds only when it plainly is: numbers
//! below [`MIN_EPOCH_MS`] (1973-03-03, which as seconds would be the year 5138) are
//! refused as epoch seconds, and numbers past the range that are plausible
//! microseconds or nanoseconds are refused naming that unit, instead of being stored in
//! 1970 or refused as merely out of range. RFC 3339 strings are unambiguous and take the
//! whole range.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The earliest accepted timestamp: 1970-01-01T00:00:00.000Z.
pub const MIN_TIMESTAMP_MS: i64 = 0;
/// The latest accepted timestamp: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

/// The smallest epoch number read as milliseconds (1973-03-03T09:46:40Z); anything
/// smaller is almost surely epoch seconds and is refused saying so.
pub const MIN_EPOCH_MS: i64 = 100_000_000_000;

/// The problem reported for a timestamp outside the range.
pub const OUT_OF_RANGE_PROBLEM: &str = "must be from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z \
     (epoch milliseconds 0 to 253402300799999)";

/// Accepts a timestamp inside the range.
pub fn check_timestamp(ms: i64) -> Result<i64, String> {
    if (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(OUT_OF_RANGE_PROBLEM.to_owned())
    }
}

/// The nearest timestamp inside the range (for clocks handed in by callers).
pub fn clamp_timestamp(ms: i64) -> i64 {
    ms.clamp(MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS)
}

/// RFC 3339 string or whole epoch milliseconds, inside the range.
pub fn parse_timestamp(v: &Value) -> Result<i64, String> {
    let ms = match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|dt| dt.with_timezone(&Utc).timestamp_millis())
            .map_err(|e| {
                format!(
                    "{} is not an RFC 3339 timestamp ({e})",
                    crate::error::excerpt(s)
                )
            })?,
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 => {
                // Whole but not an i64 (e.g. 1e300 or above i64::MAX): out of range.
                if (MIN_TIMESTAMP_MS as f64..=MAX_TIMESTAMP_MS as f64).contains(&f) {
                    f as i64
                } else {
                    return Err(OUT_OF_RANGE_PROBLEM.to_owned());
                }
            }
            _ => return Err("epoch timestamps must be whole milliseconds".to_owned()),
        },
        _ => return Err("must be an RFC 3339 string or epoch milliseconds".to_owned()),
    };
    check_timestamp(ms)
}

/// A sample's timestamp: [`parse_timestamp`], except that an epoch number which is
/// plainly not milliseconds is refused naming its likely unit (a sample sent in epoch
/// seconds would otherwise be stored in January 1970 and vanish with the retention).
/// Plot ranges (`from`/`until`) keep [`parse_timestamp`]: a wrong unit there shows an
/// empty plot, it loses nothing.
pub fn parse_sample_timestamp(v: &Value) -> Result<i64, String> {
    if let Value::Number(n) = v
        && let Some(problem) = n.as_f64().and_then(likely_unit)
    {
        return Err(problem);
    }
    parse_timestamp(v)
}

/// The problem with an epoch number that is plainly not milliseconds: seconds (below
/// [`MIN_EPOCH_MS`], fractions included), or microseconds and nanoseconds (past the
/// range, and between the years 2000 and 2200 once divided by 1,000 or 1,000,000).
/// `None` for everything else
/// (milliseconds, or numbers no unit explains, which the range check refuses).
fn likely_unit(f: f64) -> Option<String> {
    // 2000-01-01 and 2200-01-01: what a microsecond or nanosecond clock plausibly says.
    const PLAUSIBLE_MS: (f64, f64) = (946_684_800_000.0, 7_258_118_400_000.0);
    let as_ms = |factor: f64| {
        let ms = f * factor;
        chrono::DateTime::from_timestamp_millis(ms as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    if (1.0..MIN_EPOCH_MS as f64).contains(&f) {
        return Some(format!(
            "{f} looks like epoch seconds ({}); send epoch milliseconds ({}) or an RFC 3339 string",
            as_ms(1000.0),
            (f * 1000.0).round() as i64
        ));
    }
    for (unit, factor) in [("microseconds", 1e-3), ("nanoseconds", 1e-6)] {
        let ms = f * factor;
        if f > MAX_TIMESTAMP_MS as f64 && (PLAUSIBLE_MS.0..=PLAUSIBLE_MS.1).contains(&ms) {
            return Some(format!(
                "{f} looks like epoch {unit} ({}); send epoch milliseconds ({}) or an RFC 3339 string",
                as_ms(factor),
                ms.round() as i64
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_bounds_are_the_calendar_years_0_to_9999_after_1970() {
        let max = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(max.timestamp_millis(), MAX_TIMESTAMP_MS);
        assert_eq!(parse_timestamp(&json!("1970-01-01T00:00:00Z")), Ok(0));
        assert_eq!(
            parse_timestamp(&json!("9999-12-31T23:59:59.999Z")),
            Ok(MAX_TIMESTAMP_MS)
        );
        assert_eq!(
            parse_timestamp(&json!(MAX_TIMESTAMP_MS as f64)),
            Ok(MAX_TIMESTAMP_MS)
        );
        // The bounds leave room for any span and any window without overflow.
        assert!(MAX_TIMESTAMP_MS.checked_mul(2).is_some());
    }

    #[test]
    fn epoch_seconds_micro_and_nanoseconds_are_named() {
        let now_s = 1_796_000_000i64;
        for (bad, unit) in [
            (json!(now_s), "seconds"),
            (json!(now_s as f64 + 0.25), "seconds"),
            (json!(5), "seconds"),
            (json!(now_s * 1_000_000), "microseconds"),
            (json!(now_s * 1_000_000_000), "nanoseconds"),
        ] {
            let err = parse_sample_timestamp(&bad).unwrap_err();
            assert!(err.contains(unit), "{bad}: {err}");
            assert!(
                err.contains("2026-") || err.contains("1970-"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse_sample_timestamp(&json!(now_s * 1000)),
            Ok(now_s * 1000)
        );
        assert_eq!(
            parse_sample_timestamp(&json!(MIN_EPOCH_MS)),
            Ok(MIN_EPOCH_MS)
        );
        // Zero and the early years stay reachable as strings; plot ranges take any.
        assert_eq!(parse_sample_timestamp(&json!(0)), Ok(0));
        assert_eq!(
            parse_sample_timestamp(&json!("1971-01-01T00:00:00Z")),
            Ok(31_536_000_000)
        );
        assert_eq!(parse_timestamp(&json!(now_s)), Ok(now_s));
    }

    #[test]
    fn out_of_range_and_malformed_say_why() {
        for bad in [
            json!(-1),
            json!(MAX_TIMESTAMP_MS + 1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e300),
            json!(-0.5e10),
            json!("1969-12-31T23:59:59.999Z"),
            json!("9999-12-31T23:59:59.999-00:01"),
        ] {
            assert_eq!(
                parse_timestamp(&bad).unwrap_err(),
                OUT_OF_RANGE_PROBLEM,
                "{bad}"
            );
        }
        assert!(parse_timestamp(&json!(1.5)).unwrap_err().contains("whole"));
        assert!(
            parse_timestamp(&json!("yesterday"))
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(parse_timestamp(&json!(true)).is_err());
        assert!(
            parse_timestamp(&json!("x".repeat(10_000)))
                .unwrap_err()
                .len()
                < 200
        );
    }
}
