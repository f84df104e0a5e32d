//! Service and metric names: parsed once at the edge, trusted everywhere after.
//!
//! Names end up in MongoDB filters, Redis keys, SSE filters and plot titles, so they are
//! restricted to a small, safe alphabet: 1–64 characters of `[A-Za-z0-9_.:-]`, starting
//! with a letter or digit.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_NAME_LEN: usize = 64;

fn check_name(kind: &str, raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err(format!("{kind} name must not be empty"));
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} name is {} characters long; the limit is {MAX_NAME_LEN}",
            raw.len()
        ));
    }
    if !raw.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!("{kind} name must start with a letter or digit"));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "{kind} name contains {bad:?}; allowed are letters, digits, '_', '-', '.' and ':'"
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($ty:ident, $kind:literal) => {
        #[doc = concat!("A validated ", $kind, " name.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn parse(raw: &str) -> Result<Self, String> {
                check_name($kind, raw).map(|()| Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                check_name($kind, &raw).map(|()| Self(raw))
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(ServiceName, "service");
name_type!(MetricName, "metric");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for ok in [
            "checkout",
            "payment-service",
            "api.v2",
            "latency_ms",
            "a",
            "9lives",
            "svc:eu",
        ] {
            assert!(ServiceName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        assert!(ServiceName::parse("").unwrap_err().contains("empty"));
        assert!(ServiceName::parse("-x").unwrap_err().contains("start"));
        assert!(MetricName::parse("a b").unwrap_err().contains("' '"));
        assert!(MetricName::parse("$where").is_err());
        assert!(
            MetricName::parse(&"x".repeat(65))
                .unwrap_err()
                .contains("65")
        );
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<ServiceName>("\"no/slash\"").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }
}
