//! Signed claims: `payload.tag`, the payload the encoded claims in base64url and the tag
//! an HMAC-SHA256 of it under the role's key (checked in constant time); keys derived
//! from a secret per purpose; and the digest of a link's canonical query that a grant
//! carries.

use super::tokens::sha256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `payload.tag`: `claims` (encoded) in base64url, and the tag an HMAC-SHA256 of that
/// under `key`.
pub(super) fn sign(key: &[u8], claims: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(claims);
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// The encoded claims of `signed` if its tag is right (checked in constant time), else
/// `None`; the caller decodes (and validates) them.
pub(super) fn open_signed(key: &[u8], signed: &str) -> Option<Vec<u8>> {
    if signed.len() > 4096 {
        return None;
    }
    let (payload, tag) = signed.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    mac.verify_slice(&tag).ok()?;
    URL_SAFE_NO_PAD.decode(payload).ok()
}

/// A key for `purpose` derived from `secret` (HMAC-SHA256 of the purpose under it).
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// What a grant carries of the query it opens: its SHA-256, base64url.
pub(super) fn query_digest(canonical_query: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(canonical_query.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_secret() {
        let a = derive_key(b"secret", "grants");
        assert_eq!(a.len(), 32);
        assert_ne!(a, derive_key(b"secret", "tickets"));
        assert_ne!(a, derive_key(b"other", "grants"));
        assert_eq!(a, derive_key(b"secret", "grants"));
    }
}
