//! Tokens: fresh ones for clients (`new_token`), what plotq stores of them
//! (`hash_token`: `sha256:<hex>`), the configured entries (`TokenEntry`, parsed by
//! `parse_tokens`) and each entry's key id, which signed claims carry; and the SHA-256
//! helpers the rest of `auth` hashes with.

use super::principal::{Scope, Scopes, ServiceAccess};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plotq_domain::wire::KEY_ID_LEN;
use sha2::{Digest, Sha256};

/// One configured token.
#[derive(Clone)]
pub struct TokenEntry {
    pub(super) hash: [u8; 32],
    /// The token's key id: 24 hex digits ([`KEY_ID_LEN`]) of a SHA-256 of its hash.
    /// Signed claims (tickets, grants) carry it, so they are bound to this very token, not
    /// to its name; it reveals nothing usable about the token (a hash of a hash of 256
    /// random bits).
    pub kid: String,
    pub name: String,
    pub scopes: Scopes,
    pub services: ServiceAccess,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print even the hash.
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("scopes", &self.scopes.names())
            .finish()
    }
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The key id of the token whose hash is `hash` (see `TokenEntry::kid`).
fn kid_of(hash: &[u8; 32]) -> String {
    let mut input = b"plotq key id\n".to_vec();
    input.extend_from_slice(hash);
    hex(&sha256(&input)[..KEY_ID_LEN / 2])
}

/// SHA-256 of `bytes`, as 64 lowercase hex digits (fingerprints of request bodies).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(raw: &str) -> Option<[u8; 32]> {
    if raw.len() != 64 || !raw.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in raw.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A fresh random token (256 bits, URL-safe) to hand to a client.
pub fn new_token() -> String {
    format!("pq_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// What plotq stores for `token`: `sha256:<hex>`.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex(&sha256(token.as_bytes())))
}

/// Parses token entries: one a line (or separated by `;`), `#` starts a comment.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>, String> {
    let mut out: Vec<TokenEntry> = Vec::new();
    for (n, line) in text.split(['\n', ';']).enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let entry = parse_token_line(line).map_err(|e| format!("token entry {}: {e}", n + 1))?;
        if out.iter().any(|e| e.name == entry.name) {
            return Err(format!("token name {:?} is used twice", entry.name));
        }
        out.push(entry);
    }
    Ok(out)
}

fn parse_token_line(line: &str) -> Result<TokenEntry, String> {
    let mut words = line.split_whitespace();
    let hash = words
        .next()
        .and_then(|w| w.strip_prefix("sha256:"))
        .and_then(unhex32)
        .ok_or("must start with sha256:<64 hex digits> (the token's hash, never the token)")?;
    let (mut scopes, mut services, mut name) = (None, ServiceAccess::all(), None);
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not key=value"))?;
        match key {
            "scopes" => {
                let list: Result<Vec<Scope>, String> = value.split(',').map(Scope::parse).collect();
                scopes = Some(Scopes::of(&list?));
            }
            "services" => {
                let patterns: Vec<String> = value.split(',').map(str::to_owned).collect();
                for p in &patterns {
                    plotq_domain::ServiceName::parse(p.strip_suffix('*').unwrap_or(p))
                        .map_err(|e| format!("services: {e}"))?;
                }
                services = ServiceAccess::only(patterns);
            }
            "name" => name = Some(value.to_owned()),
            other => return Err(format!("unknown key {other:?} (scopes, services, name)")),
        }
    }
    let scopes = scopes.ok_or("needs scopes=… (ingest, read, admin)")?;
    Ok(TokenEntry {
        kid: kid_of(&hash),
        hash,
        name: name.unwrap_or_else(|| format!("token-{}", &hex(&hash)[..8])),
        scopes,
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_entries_are_refused_with_their_line() {
        assert!(
            parse_tokens("abc scopes=read")
                .unwrap_err()
                .contains("entry 1")
        );
        let h = hash_token("x");
        assert!(parse_tokens(&h).unwrap_err().contains("scopes"));
        assert!(
            parse_tokens(&format!("{h} scopes=write"))
                .unwrap_err()
                .contains("write")
        );
        assert!(parse_tokens(&format!("{h} scopes=read name=a; {h} scopes=read name=a")).is_err());
    }
}
