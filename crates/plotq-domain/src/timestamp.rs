//! Timestamps: epoch milliseconds, UTC, bounded to what a calendar can show.
//!
//! Every timestamp this crate parses or decodes (sample timestamps, `from`/`until` of a
//! plot, the `until_ms`/`at_ms`/… fields of wire messages) lies in
//! [`MIN_TIMESTAMP_MS`]`..=`[`MAX_TIMESTAMP_MS`]: 1970-01-01T00:00:00.000Z to
//! 9999-12-31T23:59:59.999Z, the years an RFC 3339 timestamp can write. Within it, a
//! difference of two timestamps, or a timestamp minus a window, cannot overflow an `i64`.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The earliest accepted timestamp: 1970-01-01T00:00:00.000Z.
pub const MIN_TIMESTAMP_MS: i64 = 0;
/// The latest accepted timestamp: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

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
