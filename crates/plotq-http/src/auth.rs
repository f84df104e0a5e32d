//! Who is calling, and what they may do: bearer tokens with scopes and service
//! allowlists, and short-lived signed read tickets for browsers.
//!
//! - **Tokens** are random strings handed to clients; plotq stores only their SHA-256
//!   (`sha256:<hex>`), from a file (`PLOTQ_TOKENS_FILE`) or the environment
//!   (`PLOTQ_TOKENS`), one entry a line: `sha256:<hex> scopes=ingest,read
//!   [services=checkout,pay*] [name=team-a]`. A presented token is hashed and compared
//!   with every entry in constant time (no early exit, `subtle`).
//! - **Scopes**: `ingest` (POST samples), `read` (request and fetch plots, list services,
//!   events), `admin` (dependency details in `/readyz`). A token may be limited to some
//!   services (exact names or `prefix*`): it then sees, requests and ingests only those —
//!   this is what keeps one tenant's plots and events from another.
//! - **Read tickets**: `EventSource` and `<img>` cannot send headers, so a caller with
//!   `read` exchanges its token for a ticket (`POST /api/v1/tickets`): an HMAC-SHA256-
//!   signed claim (name, services, expiry; read scope only) passed as `?ticket=` on GET
//!   routes. Every role that shares `PLOTQ_TICKET_SECRET` verifies it, so the api issues
//!   tickets that notifiers accept. Tickets expire in minutes and grant nothing but reads.
//! - **Render grants**: a link for `<img>` embeds outside plotq (`GET /api/v1/render?…&
//!   grant=`), minted by a caller with `read` (`POST /api/v1/render/grants`): an
//!   HMAC-SHA256-signed claim (name, services, expiry, and the SHA-256 of the link's
//!   canonical query, so it opens that one plot and nothing else) under its own key
//!   (`PLOTQ_GRANT_SECRET`; rotating it revokes every link). A grant of a token that is
//!   no longer configured is refused, so removing a token revokes its links too.
//! - **Open mode** (no tokens): everyone is `anonymous` with every scope; only allowed on
//!   loopback unless auth is switched off explicitly (checked where roles start).
//!
//! This module decides; handlers ask (`Caller::require`).

use crate::problem::{Problem, ProblemCode};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Send samples.
    Ingest,
    /// Request and fetch plots, list services, receive events.
    Read,
    /// Operator access (dependency details).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Ingest => 1,
            Scope::Read => 2,
            Scope::Admin => 4,
        }
    }

    pub fn parse(raw: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown scope {raw:?} (known: ingest, read, admin)"))
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Self(7)
    }

    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect()
    }
}

/// Which services a caller may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceAccess(Option<Vec<String>>);

impl ServiceAccess {
    pub fn all() -> Self {
        Self(None)
    }

    /// Exact names, or prefixes ending in `*`.
    pub fn only(patterns: Vec<String>) -> Self {
        Self(Some(patterns))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    pub fn allows(&self, service: &str) -> bool {
        match &self.0 {
            None => true,
            Some(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => service.starts_with(prefix),
                None => p == service,
            }),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name (`anonymous` in open mode); used in logs and as the rate key.
    pub name: String,
    pub scopes: Scopes,
    pub services: ServiceAccess,
    /// Whether this came from a read ticket rather than a token.
    pub via_ticket: bool,
    /// What rate and connection limits are counted against: the token name, or the
    /// client address when anonymous.
    pub limit_key: String,
}

impl Principal {
    /// A caller by a signed claim (ticket or grant) of token `name`: reads only.
    fn read_only(name: String, services: ServiceAccess) -> Self {
        Self {
            limit_key: format!("token:{name}"),
            name,
            scopes: Scopes::of(&[Scope::Read]),
            services,
            via_ticket: true,
        }
    }

    /// `403 forbidden` unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemCode::Forbidden,
                format!(
                    "this credential lacks the {} scope (it has: {})",
                    scope.as_str(),
                    self.scopes.names().join(", ")
                ),
            ))
        }
    }

    pub fn may_use_service(&self, service: &str) -> bool {
        self.services.allows(service)
    }
}

/// One configured token.
#[derive(Clone)]
pub struct TokenEntry {
    hash: [u8; 32],
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
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
        hash,
        name: name.unwrap_or_else(|| format!("token-{}", &hex(&hash)[..8])),
        scopes,
        services,
    })
}

/// How a role authenticates.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Empty = open mode.
    pub tokens: Vec<TokenEntry>,
    /// HMAC key of read tickets (shared by every role of a deployment).
    pub ticket_secret: Vec<u8>,
    pub ticket_ttl: Duration,
    /// HMAC key of render grants (shared by every api of a deployment).
    pub grant_secret: Vec<u8>,
}

impl AuthConfig {
    /// Open mode with random ticket and grant keys (standalone on loopback, tests).
    pub fn open() -> Self {
        Self {
            tokens: Vec::new(),
            ticket_secret: rand::random::<[u8; 32]>().to_vec(),
            ticket_ttl: Duration::from_secs(300),
            grant_secret: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// The authenticator a role's handlers share (in request extensions).
#[derive(Debug)]
pub struct Auth {
    config: AuthConfig,
}

#[derive(Serialize, Deserialize)]
struct TicketClaims {
    /// Token name.
    n: String,
    /// Services (null = all).
    s: ServiceAccess,
    /// Expiry, epoch ms.
    e: i64,
}

/// A render grant's claims.
#[derive(Serialize, Deserialize)]
struct GrantClaims {
    /// Token name.
    n: String,
    /// Services (null = all).
    s: ServiceAccess,
    /// Expiry, epoch ms.
    e: i64,
    /// SHA-256 of the canonical query it opens (base64url).
    q: String,
}

type HmacSha256 = Hmac<Sha256>;

/// `payload.tag`, the tag an HMAC-SHA256 of the payload under `key`.
fn sign(key: &[u8], claims: &impl Serialize) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// The claims of `signed` if its tag is right (checked in constant time), else `None`.
fn open_signed<T: serde::de::DeserializeOwned>(key: &[u8], signed: &str) -> Option<T> {
    if signed.len() > 4096 {
        return None;
    }
    let (payload, tag) = signed.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    mac.verify_slice(&tag).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// A key for `purpose` derived from `secret` (HMAC-SHA256 of the purpose under it).
pub fn derive_key(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn query_digest(canonical_query: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(canonical_query.as_bytes()))
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(ProblemCode::Unauthorized, detail.to_owned())
}

impl Auth {
    pub fn new(config: AuthConfig) -> Arc<Self> {
        Arc::new(Self { config })
    }

    pub fn is_open(&self) -> bool {
        self.config.is_open()
    }

    /// Who sent this request: a bearer token, else (on GET/HEAD) a `ticket` query
    /// parameter, else anonymous in open mode; `401` otherwise.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &Method,
        ticket: Option<&str>,
        client: Option<SocketAddr>,
        now_ms: i64,
    ) -> Result<Principal, Problem> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| {
                        let (scheme, rest) = s.split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
                    })
                    .ok_or_else(|| {
                        unauthorized("the Authorization header must be `Bearer <token>`")
                    })
            })
            .transpose()?;
        if let Some(token) = bearer {
            return self.check_token(token);
        }
        if let Some(ticket) = ticket
            && (method == Method::GET || method == Method::HEAD)
        {
            return self.verify_ticket(ticket, now_ms);
        }
        if self.is_open() {
            let key = client.map_or_else(|| "anonymous".to_owned(), |a| a.ip().to_string());
            return Ok(Principal {
                name: "anonymous".to_owned(),
                scopes: Scopes::all(),
                services: ServiceAccess::all(),
                via_ticket: false,
                limit_key: key,
            });
        }
        Err(unauthorized(
            "send `Authorization: Bearer <token>` (or, for GET from a browser, ?ticket= from POST /api/v1/tickets)",
        ))
    }

    fn check_token(&self, token: &str) -> Result<Principal, Problem> {
        let presented = sha256(token.as_bytes());
        // Compare with every entry; remember a match without branching on secrets early.
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.config.tokens {
            let equal: bool = entry.hash.ct_eq(&presented).into();
            if equal {
                found = Some(entry);
            }
        }
        match found {
            Some(e) => Ok(Principal {
                name: e.name.clone(),
                scopes: e.scopes,
                services: e.services.clone(),
                via_ticket: false,
                limit_key: format!("token:{}", e.name),
            }),
            None if self.is_open() => Err(unauthorized(
                "this server has no tokens configured; send no Authorization header",
            )),
            None => Err(unauthorized("unknown or revoked token")),
        }
    }

    /// A read ticket for `principal`, valid for the configured time; with its expiry.
    pub fn issue_ticket(&self, principal: &Principal, now_ms: i64) -> (String, i64) {
        let expires = now_ms.saturating_add(self.config.ticket_ttl.as_millis() as i64);
        let claims = TicketClaims {
            n: principal.name.clone(),
            s: principal.services.clone(),
            e: expires,
        };
        (sign(&self.config.ticket_secret, &claims), expires)
    }

    fn verify_ticket(&self, ticket: &str, now_ms: i64) -> Result<Principal, Problem> {
        let claims: TicketClaims =
            open_signed(&self.config.ticket_secret, ticket).ok_or_else(|| {
                unauthorized("invalid ticket; get a new one from POST /api/v1/tickets")
            })?;
        if claims.e <= now_ms {
            return Err(unauthorized(
                "the ticket has expired; get a new one from POST /api/v1/tickets",
            ));
        }
        Ok(Principal::read_only(claims.n, claims.s))
    }

    /// A render grant for `principal` opening exactly `canonical_query`, until
    /// `expires_ms`.
    pub fn issue_grant(
        &self,
        principal: &Principal,
        canonical_query: &str,
        expires_ms: i64,
    ) -> String {
        let claims = GrantClaims {
            n: principal.name.clone(),
            s: principal.services.clone(),
            e: expires_ms,
            q: query_digest(canonical_query),
        };
        sign(&self.config.grant_secret, &claims)
    }

    /// The read-only caller a grant stands for, if it is genuine, unexpired, made for
    /// `canonical_query` and (with tokens) of a token still configured; `401` otherwise.
    pub fn verify_grant(
        &self,
        grant: &str,
        canonical_query: &str,
        now_ms: i64,
    ) -> Result<Principal, Problem> {
        let invalid = || {
            unauthorized(
                "invalid link: its grant is not genuine, was revoked, or was made for other parameters",
            )
        };
        let claims: GrantClaims =
            open_signed(&self.config.grant_secret, grant).ok_or_else(invalid)?;
        let made_for: bool = query_digest(canonical_query)
            .as_bytes()
            .ct_eq(claims.q.as_bytes())
            .into();
        if !made_for {
            return Err(invalid());
        }
        if !self.is_open() && !self.config.tokens.iter().any(|t| t.name == claims.n) {
            return Err(invalid());
        }
        if claims.e <= now_ms {
            return Err(unauthorized(
                "the link has expired; ask for a new one (POST /api/v1/render/grants)",
            ));
        }
        Ok(Principal::read_only(claims.n, claims.s))
    }
}

/// The authenticated caller of a request (extractor). `401` when credentials are
/// missing or wrong; each handler then `require`s the scope it needs.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// The `ticket` query parameter, if any (without parsing the rest of the query).
fn ticket_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "ticket")
        .map(|(_, v)| v.to_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let auth = parts
            .extensions
            .get::<Arc<Auth>>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("no authenticator installed on this router");
                Problem::new(ProblemCode::Internal, "internal error")
            })?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ticket = ticket_param(parts.uri.query());
        auth.authenticate(
            &parts.headers,
            &parts.method,
            ticket.as_deref(),
            client,
            plotq_ports::clock::now_ms(),
        )
        .map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth_with(lines: &str) -> Arc<Auth> {
        Auth::new(AuthConfig {
            tokens: parse_tokens(lines).unwrap(),
            ticket_secret: b"k".to_vec(),
            ticket_ttl: Duration::from_secs(60),
            grant_secret: b"g".to_vec(),
        })
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn tokens_are_checked_by_hash_with_scopes_and_services() {
        let (a, b) = (new_token(), new_token());
        let auth = auth_with(&format!(
            "# comment\n{} scopes=ingest,read services=checkout,pay* name=team-a\n{} scopes=admin",
            hash_token(&a),
            hash_token(&b)
        ));
        let p = auth
            .authenticate(&bearer(&a), &Method::POST, None, None, 0)
            .unwrap();
        assert_eq!(p.name, "team-a");
        assert!(p.require(Scope::Ingest).is_ok());
        assert_eq!(p.require(Scope::Admin).unwrap_err().status, 403);
        assert!(p.may_use_service("checkout") && p.may_use_service("payments"));
        assert!(!p.may_use_service("search"));
        let q = auth
            .authenticate(&bearer(&b), &Method::GET, None, None, 0)
            .unwrap();
        assert!(q.require(Scope::Admin).is_ok() && q.require(Scope::Read).is_err());
        for bad in [bearer("wrong"), HeaderMap::new()] {
            let e = auth
                .authenticate(&bad, &Method::POST, None, None, 0)
                .unwrap_err();
            assert_eq!(e.status, 401);
        }
    }

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

    #[test]
    fn tickets_grant_read_only_until_they_expire_and_cannot_be_forged() {
        let token = new_token();
        let auth = auth_with(&format!(
            "{} scopes=read,ingest services=checkout name=t",
            hash_token(&token)
        ));
        let p = auth
            .authenticate(&bearer(&token), &Method::POST, None, None, 0)
            .unwrap();
        let (ticket, expires) = auth.issue_ticket(&p, 1_000);
        assert_eq!(expires, 61_000);
        let q = auth
            .authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 2_000)
            .unwrap();
        assert!(q.via_ticket && q.require(Scope::Read).is_ok());
        assert!(q.require(Scope::Ingest).is_err(), "tickets only read");
        assert!(!q.may_use_service("search"));
        // Not on writes, not after expiry, not when tampered with, not with another key.
        assert!(
            auth.authenticate(&HeaderMap::new(), &Method::POST, Some(&ticket), None, 2_000)
                .is_err()
        );
        assert!(
            auth.authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 61_000)
                .is_err()
        );
        let mut forged = ticket.clone();
        forged.replace_range(0..1, if &ticket[0..1] == "e" { "f" } else { "e" });
        assert!(
            auth.authenticate(&HeaderMap::new(), &Method::GET, Some(&forged), None, 2_000)
                .is_err()
        );
        let other = Auth::new(AuthConfig {
            ticket_secret: b"other".to_vec(),
            ..AuthConfig::open()
        });
        assert!(
            other
                .authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 2_000)
                .is_err()
        );
    }

    #[test]
    fn grants_open_one_query_until_expiry_rotation_or_token_removal() {
        let token = new_token();
        let lines = format!(
            "{} scopes=read services=checkout name=t",
            hash_token(&token)
        );
        let auth = auth_with(&lines);
        let p = auth
            .authenticate(&bearer(&token), &Method::POST, None, None, 0)
            .unwrap();
        let query = "kind=histogram&service=checkout&window=1h";
        let grant = auth.issue_grant(&p, query, 10_000);
        let q = auth.verify_grant(&grant, query, 9_999).unwrap();
        assert!(q.require(Scope::Read).is_ok() && q.require(Scope::Ingest).is_err());
        assert!(q.may_use_service("checkout") && !q.may_use_service("search"));
        assert_eq!(q.limit_key, "token:t");
        // Not for other parameters, not once expired, not tampered with.
        assert!(
            auth.verify_grant(&grant, "kind=histogram&service=checkout&window=2h", 1)
                .is_err()
        );
        let expired = auth.verify_grant(&grant, query, 10_000).unwrap_err();
        assert!(expired.detail.contains("expired"), "{expired:?}");
        let mut forged = grant.clone();
        forged.replace_range(0..1, if &grant[0..1] == "e" { "f" } else { "e" });
        assert!(auth.verify_grant(&forged, query, 1).is_err());
        // A ticket is not a grant, nor a grant a ticket (separate keys).
        let (ticket, _) = auth.issue_ticket(&p, 0);
        assert!(auth.verify_grant(&ticket, query, 1).is_err());
        assert!(
            auth.authenticate(&HeaderMap::new(), &Method::GET, Some(&grant), None, 1)
                .is_err()
        );
        // Rotating the grant key revokes it; so does removing the token.
        let rotated = Auth::new(AuthConfig {
            tokens: parse_tokens(&lines).unwrap(),
            grant_secret: b"rotated".to_vec(),
            ..AuthConfig::open()
        });
        assert!(rotated.verify_grant(&grant, query, 1).is_err());
        let other_token = auth_with(&format!("{} scopes=read name=u", hash_token(&new_token())));
        assert!(other_token.verify_grant(&grant, query, 1).is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_secret() {
        let a = derive_key(b"secret", "grants");
        assert_eq!(a.len(), 32);
        assert_ne!(a, derive_key(b"secret", "tickets"));
        assert_ne!(a, derive_key(b"other", "grants"));
        assert_eq!(a, derive_key(b"secret", "grants"));
    }

    #[test]
    fn open_mode_is_anonymous_with_every_scope() {
        let auth = Auth::new(AuthConfig::open());
        let p = auth
            .authenticate(
                &HeaderMap::new(),
                &Method::POST,
                None,
                Some("10.1.2.3:5".parse().unwrap()),
                0,
            )
            .unwrap();
        assert!(Scope::ALL.iter().all(|s| p.require(*s).is_ok()));
        assert_eq!(p.limit_key, "10.1.2.3");
    }
}
