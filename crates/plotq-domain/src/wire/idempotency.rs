//! `IdempotencyRecord`, what an ingest's `Idempotency-Key` holds in the cache (a Redis
//! value, or the memory cache's): the body's fingerprint, and whether its ingest is
//! still running (`pending`) or stored how many samples (`done`).
//!
//! Written as JSON with its version first: `{"v":1,"state":"pending","fingerprint":"…"}`
//! or `{"v":1,"state":"done","fingerprint":"…","accepted":42}`. The encoding is exact (the
//! same record always encodes to the same bytes), because adapters compare a stored
//! value with `encode()` to release only the key they hold.
//!
//! Compatibility: the previous release stored `p:<fingerprint>` and
//! `d:<fingerprint>:<accepted>`, kept for up to a day (the done records' TTL). `decode`
//! still reads that form, so a retry across the upgrade is answered as before; only the
//! JSON form is written. The old form can stop being read one release later.
//!
//! A fingerprint is 1 to [`MAX_FINGERPRINT_LEN`] printable ASCII characters (plotq's are
//! the 64 hex digits of a SHA-256).

use super::codec::{DecodeError, check_version, decode_message};
use crate::error::{Collector, FieldErrors};
use serde::{Deserialize, Serialize};

/// Current version of `IdempotencyRecord`.
pub const IDEMPOTENCY_RECORD_VERSION: u32 = 1;
/// Longest fingerprint a record may carry.
pub const MAX_FINGERPRINT_LEN: usize = 128;

/// What an idempotency key holds (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyRecord {
    /// The ingest of the body with this fingerprint is running.
    Pending { fingerprint: String },
    /// The body with this fingerprint was stored: `accepted` samples.
    Done { fingerprint: String, accepted: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RecordState {
    Pending,
    Done,
}

/// The stored shape, before validation (and, borrowed, what `encode` writes).
#[derive(Serialize, Deserialize)]
struct RawRecord<F> {
    v: u32,
    state: RecordState,
    fingerprint: F,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted: Option<u64>,
}

impl IdempotencyRecord {
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Pending { fingerprint } | Self::Done { fingerprint, .. } => fingerprint,
        }
    }

    /// The stored form (JSON, version first).
    pub fn encode(&self) -> String {
        let (state, accepted) = match self {
            Self::Pending { .. } => (RecordState::Pending, None),
            Self::Done { accepted, .. } => (RecordState::Done, Some(*accepted)),
        };
        serde_json::to_string(&RawRecord {
            v: IDEMPOTENCY_RECORD_VERSION,
            state,
            fingerprint: self.fingerprint(),
            accepted,
        })
        .expect("IdempotencyRecord serialises")
    }

    /// Reads a stored record: the JSON form of any version this build knows, or the
    /// previous release's `p:`/`d:` form (see the module docs).
    pub fn decode(stored: &[u8]) -> Result<Self, DecodeError> {
        match stored {
            [b'p', b':', ..] | [b'd', b':', ..] => Self::decode_unversioned(stored),
            _ => decode_message(stored, IDEMPOTENCY_RECORD_VERSION, Self::from_raw),
        }
    }

    fn from_raw(raw: RawRecord<String>) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        check_version(&mut errors, raw.v, IDEMPOTENCY_RECORD_VERSION);
        check_fingerprint(&mut errors, &raw.fingerprint);
        let record = match (raw.state, raw.accepted) {
            (RecordState::Pending, None) => Some(Self::Pending {
                fingerprint: raw.fingerprint,
            }),
            (RecordState::Done, Some(accepted)) => Some(Self::Done {
                fingerprint: raw.fingerprint,
                accepted,
            }),
            (RecordState::Pending, Some(_)) => {
                errors.err("/accepted", "only a done record counts accepted samples");
                None
            }
            (RecordState::Done, None) => {
                errors.err("/accepted", "a done record counts its accepted samples");
                None
            }
        };
        errors.finish()?;
        record.ok_or_else(|| FieldErrors::one("", "invalid idempotency record"))
    }

    /// `p:<fingerprint>` or `d:<fingerprint>:<accepted>`, as the previous release wrote.
    fn decode_unversioned(stored: &[u8]) -> Result<Self, DecodeError> {
        let invalid = || {
            DecodeError::Invalid(FieldErrors::one(
                "",
                "not an idempotency record (p:<fingerprint> or d:<fingerprint>:<accepted>)",
            ))
        };
        let text = std::str::from_utf8(stored).map_err(|_| invalid())?;
        let record = if let Some(fingerprint) = text.strip_prefix("p:") {
            Self::Pending {
                fingerprint: fingerprint.to_owned(),
            }
        } else {
            let (fingerprint, accepted) = text
                .strip_prefix("d:")
                .and_then(|rest| rest.rsplit_once(':'))
                .ok_or_else(invalid)?;
            Self::Done {
                fingerprint: fingerprint.to_owned(),
                accepted: accepted.parse().map_err(|_| invalid())?,
            }
        };
        let mut errors = Collector::new();
        check_fingerprint(&mut errors, record.fingerprint());
        errors.finish().map_err(DecodeError::Invalid)?;
        Ok(record)
    }
}

fn check_fingerprint(errors: &mut Collector, fingerprint: &str) {
    if !(1..=MAX_FINGERPRINT_LEN).contains(&fingerprint.len())
        || !fingerprint.bytes().all(|b| b.is_ascii_graphic())
    {
        errors.err(
            "/fingerprint",
            format!("must be 1 to {MAX_FINGERPRINT_LEN} printable ASCII characters"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(fp: &str) -> IdempotencyRecord {
        IdempotencyRecord::Pending {
            fingerprint: fp.to_owned(),
        }
    }

    fn done(fp: &str, accepted: u64) -> IdempotencyRecord {
        IdempotencyRecord::Done {
            fingerprint: fp.to_owned(),
            accepted,
        }
    }

    #[test]
    fn records_round_trip_in_one_exact_form() {
        assert_eq!(
            pending("aa").encode(),
            r#"{"v":1,"state":"pending","fingerprint":"aa"}"#
        );
        assert_eq!(
            done("aa", 42).encode(),
            r#"{"v":1,"state":"done","fingerprint":"aa","accepted":42}"#
        );
        for record in [
            pending("aa"),
            done("bb", 0),
            done(&"f".repeat(64), u64::MAX),
        ] {
            let stored = record.encode();
            assert_eq!(
                IdempotencyRecord::decode(stored.as_bytes()).unwrap(),
                record
            );
            assert_eq!(
                IdempotencyRecord::decode(stored.as_bytes())
                    .unwrap()
                    .encode(),
                stored,
                "the same bytes again"
            );
        }
    }

    #[test]
    fn records_of_the_previous_release_still_decode() {
        let fp = "9f".repeat(32);
        assert_eq!(
            IdempotencyRecord::decode(format!("p:{fp}").as_bytes()).unwrap(),
            pending(&fp)
        );
        assert_eq!(
            IdempotencyRecord::decode(format!("d:{fp}:42").as_bytes()).unwrap(),
            done(&fp, 42)
        );
        for bad in [
            "p:".to_owned(),
            format!("d:{fp}"),
            format!("d:{fp}:-1"),
            format!("d:{fp}:x"),
            "d::5".to_owned(),
            format!("p:{}", "a".repeat(MAX_FINGERPRINT_LEN + 1)),
            "p:a b".to_owned(),
            "x:aa".to_owned(),
            String::new(),
        ] {
            assert!(
                IdempotencyRecord::decode(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_and_unknown_records_are_refused() {
        let refused = [
            r#"{"v":2,"state":"pending","fingerprint":"aa"}"#,
            r#"{"state":"pending","fingerprint":"aa"}"#,
            r#"{"v":1,"state":"pending","fingerprint":"aa","accepted":1}"#,
            r#"{"v":1,"state":"done","fingerprint":"aa"}"#,
            r#"{"v":1,"state":"done","fingerprint":"","accepted":1}"#,
            r#"{"v":1,"state":"lost","fingerprint":"aa"}"#,
        ];
        for stored in refused {
            assert!(
                IdempotencyRecord::decode(stored.as_bytes()).is_err(),
                "{stored}"
            );
        }
        assert!(matches!(
            IdempotencyRecord::decode(refused[0].as_bytes()),
            Err(DecodeError::UnknownVersion(2, 1))
        ));
        let Err(DecodeError::Invalid(errors)) = IdempotencyRecord::decode(refused[4].as_bytes())
        else {
            panic!("accepted");
        };
        assert_eq!(errors.0[0].field, "/fingerprint");
    }
}
