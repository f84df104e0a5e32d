//! The claims of plotq's signed credentials: a read ticket's (`TicketClaims`) and a
//! render grant's (`GrantClaims`). `plotq_http::auth` signs and verifies them
//! (HMAC-SHA256 over the encoded claims, which travel base64url-encoded in URLs); this
//! module owns only their shape: compact JSON with a version `v`, validated on decode.
//!
//! - `k`: the key id of the token the claim is bound to ([`KEY_ID_LEN`] lowercase hex
//!   digits), or empty in open mode (no tokens).
//! - `e`: the expiry, epoch ms, within the timestamp range (constructors clamp it there).
//! - `q` (grants only): the SHA-256 of the canonical query the link opens, base64url
//!   without padding ([`QUERY_DIGEST_LEN`] characters).
//!
//! Unknown members are refused: nobody but plotq writes claims, and a claim that says
//! more than this build understands must not be half-read.
//!
//! Version 1 is the first versioned form. A claim without `v`, as the previous release
//! issued them, is refused (`DecodeError::Malformed`), so its holder must get a new one:
//! a read ticket lives at most an hour, and render links have to be minted again after
//! this upgrade anyway, since the key id (`k`) was added to their claims in this release.

use super::codec::{DecodeError, check_version, decode_message};
use crate::error::Collector;
use crate::timestamp::{check_timestamp, clamp_timestamp};
use serde::{Deserialize, Serialize};

/// Current version of `TicketClaims`.
pub const TICKET_CLAIMS_VERSION: u32 = 1;
/// Current version of `GrantClaims`.
pub const GRANT_CLAIMS_VERSION: u32 = 1;
/// Length of a token's key id: hex digits of 12 bytes.
pub const KEY_ID_LEN: usize = 24;
/// Length of a query digest: a SHA-256 (32 bytes) in base64url without padding.
pub const QUERY_DIGEST_LEN: usize = 43;

/// A read ticket's claims (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketClaims {
    pub v: u32,
    /// The token's key id (empty in open mode).
    #[serde(rename = "k")]
    pub kid: String,
    /// Expiry, epoch ms.
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

/// A render grant's claims (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantClaims {
    pub v: u32,
    /// The token's key id (empty in open mode).
    #[serde(rename = "k")]
    pub kid: String,
    /// Expiry, epoch ms.
    #[serde(rename = "e")]
    pub expires_ms: i64,
    /// SHA-256 of the canonical query it opens (base64url, no padding).
    #[serde(rename = "q")]
    pub query_digest: String,
}

/// `TicketClaims`' serialised shape, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTicketClaims {
    v: u32,
    k: String,
    e: i64,
}

/// `GrantClaims`' serialised shape, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrantClaims {
    v: u32,
    k: String,
    e: i64,
    q: String,
}

impl TicketClaims {
    /// The claims of a ticket of the token with key id `kid` (empty in open mode), until
    /// `expires_ms` (clamped into the timestamp range).
    pub fn new(kid: String, expires_ms: i64) -> Self {
        Self {
            v: TICKET_CLAIMS_VERSION,
            kid,
            expires_ms: clamp_timestamp(expires_ms),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("TicketClaims serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_message(bytes, TICKET_CLAIMS_VERSION, |raw: RawTicketClaims| {
            let mut errors = Collector::new();
            check_version(&mut errors, raw.v, TICKET_CLAIMS_VERSION);
            check_kid_and_expiry(&mut errors, &raw.k, raw.e);
            errors.finish()?;
            Ok(Self {
                v: raw.v,
                kid: raw.k,
                expires_ms: raw.e,
            })
        })
    }
}

impl GrantClaims {
    /// The claims of a link of the token with key id `kid` (empty in open mode) opening
    /// the query whose digest is `query_digest`, until `expires_ms` (clamped into the
    /// timestamp range).
    pub fn new(kid: String, expires_ms: i64, query_digest: String) -> Self {
        Self {
            v: GRANT_CLAIMS_VERSION,
            kid,
            expires_ms: clamp_timestamp(expires_ms),
            query_digest,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("GrantClaims serialise")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_message(bytes, GRANT_CLAIMS_VERSION, |raw: RawGrantClaims| {
            let mut errors = Collector::new();
            check_version(&mut errors, raw.v, GRANT_CLAIMS_VERSION);
            check_kid_and_expiry(&mut errors, &raw.k, raw.e);
            let digest_shaped = raw.q.len() == QUERY_DIGEST_LEN
                && raw
                    .q
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !digest_shaped {
                errors.err(
                    "/q",
                    format!("must be {QUERY_DIGEST_LEN} base64url characters (a SHA-256)"),
                );
            }
            errors.finish()?;
            Ok(Self {
                v: raw.v,
                kid: raw.k,
                expires_ms: raw.e,
                query_digest: raw.q,
            })
        })
    }
}

/// The rules both claims share: `k` a key id or empty, `e` a timestamp.
fn check_kid_and_expiry(errors: &mut Collector, kid: &str, expires_ms: i64) {
    let kid_shaped = kid.is_empty()
        || (kid.len() == KEY_ID_LEN
            && kid
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if !kid_shaped {
        errors.err(
            "/k",
            format!("must be empty or {KEY_ID_LEN} lowercase hex digits (a key id)"),
        );
    }
    if let Err(p) = check_timestamp(expires_ms) {
        errors.err("/e", p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::MAX_TIMESTAMP_MS;

    const KID: &str = "0123456789abcdef01234567";
    const DIGEST: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    /// `bytes` as JSON, `edit`ed, back to bytes.
    fn edited(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn claims_round_trip_compactly_with_their_version_first() {
        let ticket = TicketClaims::new(KID.to_owned(), 61_000);
        assert_eq!(
            String::from_utf8(ticket.encode()).unwrap(),
            format!(r#"{{"v":1,"k":"{KID}","e":61000}}"#)
        );
        assert_eq!(TicketClaims::decode(&ticket.encode()).unwrap(), ticket);
        let grant = GrantClaims::new(String::new(), 10_000, DIGEST.to_owned());
        assert_eq!(
            String::from_utf8(grant.encode()).unwrap(),
            format!(r#"{{"v":1,"k":"","e":10000,"q":"{DIGEST}"}}"#)
        );
        assert_eq!(GrantClaims::decode(&grant.encode()).unwrap(), grant);
        // Expiries are clamped into the timestamp range, so what is signed decodes.
        let far = TicketClaims::new(KID.to_owned(), i64::MAX);
        assert_eq!(far.expires_ms, MAX_TIMESTAMP_MS);
        assert!(TicketClaims::decode(&far.encode()).is_ok());
    }

    #[test]
    fn claims_of_the_previous_release_and_unknown_versions_are_refused() {
        let ticket = TicketClaims::new(KID.to_owned(), 61_000).encode();
        let grant = GrantClaims::new(KID.to_owned(), 61_000, DIGEST.to_owned()).encode();
        let unversioned = |b: &[u8]| {
            edited(b, |v| {
                v.as_object_mut().unwrap().remove("v");
            })
        };
        let v2 = |b: &[u8]| edited(b, |v| v["v"] = 2.into());
        assert!(matches!(
            TicketClaims::decode(&unversioned(&ticket)),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            GrantClaims::decode(&unversioned(&grant)),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            TicketClaims::decode(&v2(&ticket)),
            Err(DecodeError::UnknownVersion(2, 1))
        ));
        assert!(matches!(
            GrantClaims::decode(&v2(&grant)),
            Err(DecodeError::UnknownVersion(2, 1))
        ));
        // A ticket is not a grant, nor a grant a ticket.
        assert!(GrantClaims::decode(&ticket).is_err());
        assert!(TicketClaims::decode(&grant).is_err(), "unknown member q");
    }

    #[test]
    fn bad_members_are_refused_naming_each() {
        let grant = GrantClaims::new(KID.to_owned(), 61_000, DIGEST.to_owned()).encode();
        let bad = edited(&grant, |v| {
            v["k"] = "ABCDEF".into();
            v["e"] = (-1).into();
            v["q"] = "not a digest".into();
        });
        let Err(DecodeError::Invalid(errors)) = GrantClaims::decode(&bad) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/k", "/e", "/q"]);
        let ticket = TicketClaims::new(KID.to_owned(), 61_000).encode();
        let upper = edited(&ticket, |v| v["k"] = KID.to_uppercase().into());
        assert!(matches!(
            TicketClaims::decode(&upper),
            Err(DecodeError::Invalid(_))
        ));
        let extra = edited(&ticket, |v| v["s"] = "admin".into());
        assert!(matches!(
            TicketClaims::decode(&extra),
            Err(DecodeError::Malformed(_))
        ));
    }
}
