//! `EventId`, the position of an event on the bus: a Redis stream id `<ms>-<seq>`,
//! ordered numerically. The ports hand out and take `EventId`s; only the Redis adapter
//! converts them to and from stream id strings (and the notifier reads a client's
//! `Last-Event-ID` with [`EventId::parse`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The position of an event on the bus: a Redis stream id `<ms>-<seq>`. Ordered by `ms`,
/// then `seq`, as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    /// Before every event (`0-0`).
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };
    /// Longest text form: two 20-digit `u64`s and the dash.
    pub const MAX_LEN: usize = 41;

    /// Parses `<ms>-<seq>` strictly: two decimal `u64`s without sign, whitespace or
    /// leading zeros (`0` itself excepted), joined by one `-`; at most
    /// [`EventId::MAX_LEN`] bytes. So `parse(s)` accepts exactly what `Display` writes.
    pub fn parse(raw: &str) -> Option<EventId> {
        if raw.len() > Self::MAX_LEN {
            return None;
        }
        let (ms, seq) = raw.split_once('-')?;
        Some(EventId {
            ms: parse_decimal(ms)?,
            seq: parse_decimal(seq)?,
        })
    }
}

/// A canonical decimal `u64`: digits only, no leading zero unless it is `0`.
fn parse_decimal(raw: &str) -> Option<u64> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl std::str::FromStr for EventId {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        EventId::parse(raw).ok_or_else(|| {
            format!(
                "event id {} must look like <ms>-<seq>, e.g. 1700000000000-0",
                crate::error::excerpt(raw)
            )
        })
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_strictly_and_order_numerically() {
        let id = EventId::parse("1700000000000-10").unwrap();
        assert_eq!(
            id,
            EventId {
                ms: 1_700_000_000_000,
                seq: 10
            }
        );
        assert_eq!(id.to_string(), "1700000000000-10");
        assert!(id > EventId::parse("1700000000000-9").unwrap());
        assert!(EventId::parse("1700000000001-0").unwrap() > id);
        assert!(EventId::ZERO < id);
        assert_eq!(EventId::parse("0-0"), Some(EventId::ZERO));
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(max.len(), EventId::MAX_LEN);
        assert_eq!(
            EventId::parse(&max),
            Some(EventId {
                ms: u64::MAX,
                seq: u64::MAX
            })
        );
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "+1-0",
            "1-+0",
            "-1-0",
            " 1-0",
            "1-0 ",
            "1 -0",
            "1--0",
            "1-0-0",
            "01-0",
            "1-00",
            "18446744073709551616-0",
            "0-18446744073709551616",
            "1_0-0",
            "\u{ff11}-0",
            "0x1-0",
            "garbage",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(EventId::parse(&format!("{}-0", "1".repeat(100))), None);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"1700000000000-10\"");
        assert_eq!(
            serde_json::from_str::<EventId>("\"1700000000000-10\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<EventId>("\"x\"").is_err());
        assert_eq!("5-6".parse::<EventId>(), Ok(EventId { ms: 5, seq: 6 }));
    }
}
