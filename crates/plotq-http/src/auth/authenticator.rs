//! `Auth`, the authenticator a role's handlers share, and `AuthConfig`: bearer tokens
//! checked by hash, read tickets and render grants issued and verified (bound to the
//! token's key id, looked up again on every use), token entries replaced while the role
//! runs, and `recheck` for long-lived streams.

use super::principal::{Credential, Principal, Scope, Scopes, ServiceAccess};
use super::signed::{open_signed, query_digest, sign};
use super::tokens::{TokenEntry, sha256};
use crate::problem::{Problem, ProblemCode};
use axum::http::{HeaderMap, Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plotq_domain::wire::{GrantClaims, TicketClaims};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;

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

/// Longest life a read ticket may be given (`PLOTQ_TICKET_TTL_SECS`): a ticket travels
/// in URLs, so it must not outlive a working session by much.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(3600);

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
    /// Whether the role started without tokens (fixed for its life: a reload never
    /// turns authentication off or on).
    open: bool,
    /// The token entries in force (replaced whole by `replace_tokens`).
    tokens: RwLock<Arc<Vec<TokenEntry>>>,
    ticket_secret: Vec<u8>,
    ticket_ttl: Duration,
    grant_secret: Vec<u8>,
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(ProblemCode::Unauthorized, detail.to_owned())
}

/// Why a credential that once held no longer does (`Auth::recheck`), for the final
/// event of a stream it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    /// The ticket's (or link's) time is up.
    Expired,
    /// The token was removed or replaced, or lost the scope or a service it used.
    Revoked,
}

impl Lapsed {
    pub fn as_str(self) -> &'static str {
        match self {
            Lapsed::Expired => "credential_expired",
            Lapsed::Revoked => "credential_revoked",
        }
    }
}

impl Auth {
    pub fn new(config: AuthConfig) -> Arc<Self> {
        Arc::new(Self {
            open: config.is_open(),
            tokens: RwLock::new(Arc::new(config.tokens)),
            ticket_secret: config.ticket_secret,
            ticket_ttl: config.ticket_ttl.min(MAX_TICKET_TTL),
            grant_secret: config.grant_secret,
        })
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    fn tokens(&self) -> Arc<Vec<TokenEntry>> {
        self.tokens.read().expect("tokens lock").clone()
    }

    /// Puts `tokens` in force (a reloaded `PLOTQ_TOKENS_FILE`): a removed or replaced
    /// token stops working at once, with its tickets and links. Refused (the old entries
    /// stay) when it would switch open mode on or off.
    pub fn replace_tokens(&self, tokens: Vec<TokenEntry>) -> Result<(), String> {
        if tokens.is_empty() != self.open {
            return Err(if self.open {
                "this role started without tokens (open mode); restart it to turn authentication on"
                    .to_owned()
            } else {
                "refusing to drop every token (that would be open mode); keep at least one entry"
                    .to_owned()
            });
        }
        *self.tokens.write().expect("tokens lock") = Arc::new(tokens);
        Ok(())
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
                credential: Credential::Open,
                limit_key: key.clone(),
                tenant: key,
            });
        }
        Err(unauthorized(
            "send `Authorization: Bearer <token>` (or, for GET from a browser, ?ticket= from POST /api/v1/tickets)",
        ))
    }

    /// The entry whose hash is `presented`, compared with every entry in constant time.
    fn entry_by_hash(&self, presented: &[u8; 32]) -> Option<TokenEntry> {
        let tokens = self.tokens();
        let mut found: Option<&TokenEntry> = None;
        for entry in tokens.iter() {
            let equal: bool = entry.hash.ct_eq(presented).into();
            if equal {
                found = Some(entry);
            }
        }
        found.cloned()
    }

    /// The entry with key id `kid`, compared with every entry in constant time.
    fn entry_by_kid(&self, kid: &str) -> Option<TokenEntry> {
        let tokens = self.tokens();
        let mut found: Option<&TokenEntry> = None;
        for entry in tokens.iter() {
            let equal: bool = entry.kid.as_bytes().ct_eq(kid.as_bytes()).into();
            if equal {
                found = Some(entry);
            }
        }
        found.cloned()
    }

    fn check_token(&self, token: &str) -> Result<Principal, Problem> {
        match self.entry_by_hash(&sha256(token.as_bytes())) {
            Some(e) => Ok(Principal {
                limit_key: format!("token:{}", e.name),
                tenant: format!("token:{}", e.name),
                credential: Credential::Token { kid: e.kid },
                name: e.name,
                scopes: e.scopes,
                services: e.services,
            }),
            None if self.is_open() => Err(unauthorized(
                "this server has no tokens configured; send no Authorization header",
            )),
            None => Err(unauthorized("unknown or revoked token")),
        }
    }

    /// The read-only caller a signed claim of key id `kid` stands for: the token as it is
    /// configured now (its name and current services), if it still exists and still has
    /// the `read` scope; anonymous with every service in open mode.
    fn claim_holder(&self, kid: &str) -> Option<(String, ServiceAccess)> {
        if self.is_open() {
            return Some(("anonymous".to_owned(), ServiceAccess::all()));
        }
        let entry = self.entry_by_kid(kid)?;
        entry
            .scopes
            .contains(Scope::Read)
            .then_some((entry.name, entry.services))
    }

    /// A read ticket for `principal`, valid for the configured time; with its expiry.
    /// `None` when the caller has no token to bind it to (a ticket's holder).
    pub fn issue_ticket(&self, principal: &Principal, now_ms: i64) -> Option<(String, i64)> {
        let kid = self.kid_of_principal(principal)?;
        let expires = now_ms.saturating_add(self.ticket_ttl.as_millis() as i64);
        let claims = TicketClaims::new(kid, expires);
        Some((
            sign(&self.ticket_secret, &claims.encode()),
            claims.expires_ms,
        ))
    }

    /// The key id signed claims of `principal` carry: its token's (empty in open mode);
    /// `None` for a caller that is itself a signed claim's holder.
    fn kid_of_principal(&self, principal: &Principal) -> Option<String> {
        match &principal.credential {
            Credential::Open => Some(String::new()),
            Credential::Token { kid } => Some(kid.clone()),
            Credential::Ticket { .. } | Credential::Grant { .. } => None,
        }
    }

    fn verify_ticket(&self, ticket: &str, now_ms: i64) -> Result<Principal, Problem> {
        let invalid =
            || unauthorized("invalid or revoked ticket; get a new one from POST /api/v1/tickets");
        let claims = open_signed(&self.ticket_secret, ticket)
            .and_then(|payload| TicketClaims::decode(&payload).ok())
            .ok_or_else(invalid)?;
        if claims.expires_ms <= now_ms {
            return Err(unauthorized(
                "the ticket has expired; get a new one from POST /api/v1/tickets",
            ));
        }
        let (name, services) = self.claim_holder(&claims.kid).ok_or_else(invalid)?;
        let key = format!("token:{name}");
        Ok(Principal {
            limit_key: key.clone(),
            tenant: key,
            name,
            scopes: Scopes::of(&[Scope::Read]),
            services,
            credential: Credential::Ticket {
                kid: claims.kid,
                expires_ms: claims.expires_ms,
            },
        })
    }

    /// A render grant for `principal` opening exactly `canonical_query`, until
    /// `expires_ms`; `None` when the caller has no token to bind it to.
    pub fn issue_grant(
        &self,
        principal: &Principal,
        canonical_query: &str,
        expires_ms: i64,
    ) -> Option<String> {
        let claims = GrantClaims::new(
            self.kid_of_principal(principal)?,
            expires_ms,
            query_digest(canonical_query),
        );
        Some(sign(&self.grant_secret, &claims.encode()))
    }

    /// The read-only caller a grant stands for, if it is genuine, unexpired, made for
    /// `canonical_query` and of a token still configured with `read` (its current
    /// services); `401` otherwise. Its rate key is the link's own (`grant:<digest>`),
    /// its tenant the minting token's.
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
        let claims = open_signed(&self.grant_secret, grant)
            .and_then(|payload| GrantClaims::decode(&payload).ok())
            .ok_or_else(invalid)?;
        let made_for: bool = query_digest(canonical_query)
            .as_bytes()
            .ct_eq(claims.query_digest.as_bytes())
            .into();
        if !made_for {
            return Err(invalid());
        }
        let (name, services) = self.claim_holder(&claims.kid).ok_or_else(invalid)?;
        if claims.expires_ms <= now_ms {
            return Err(unauthorized(
                "the link has expired; ask for a new one (POST /api/v1/render/grants)",
            ));
        }
        // One budget per link: the digest of the grant itself (a new link is a new key).
        let link = &URL_SAFE_NO_PAD.encode(sha256(grant.as_bytes()))[..22];
        Ok(Principal {
            limit_key: format!("grant:{link}"),
            tenant: if self.is_open() {
                "anonymous".to_owned()
            } else {
                format!("token:{name}")
            },
            name,
            scopes: Scopes::of(&[Scope::Read]),
            services,
            credential: Credential::Grant {
                kid: claims.kid,
                expires_ms: claims.expires_ms,
            },
        })
    }

    /// Whether `principal`'s credential still holds at `now_ms`, for a stream it opened
    /// long ago: a ticket or link still unexpired, its token still configured with `read`
    /// and every service in `uses` still allowed. `Err` says why not.
    pub fn recheck(&self, principal: &Principal, uses: &[&str], now_ms: i64) -> Result<(), Lapsed> {
        let (kid, expires_ms) = match &principal.credential {
            Credential::Open => return Ok(()),
            Credential::Token { kid } => (kid, None),
            Credential::Ticket { kid, expires_ms } | Credential::Grant { kid, expires_ms } => {
                (kid, Some(*expires_ms))
            }
        };
        if expires_ms.is_some_and(|e| e <= now_ms) {
            return Err(Lapsed::Expired);
        }
        if self.is_open() {
            return Ok(()); // no tokens to revoke: only expiry ends a claim
        }
        let Some(entry) = self.entry_by_kid(kid) else {
            return Err(Lapsed::Revoked);
        };
        let scopes_held = if principal.via_signed_claim() {
            entry.scopes.contains(Scope::Read)
        } else {
            Scope::ALL
                .iter()
                .all(|s| !principal.scopes.contains(*s) || entry.scopes.contains(*s))
        };
        if !scopes_held || !uses.iter().all(|s| entry.services.allows(s)) {
            return Err(Lapsed::Revoked);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::{hash_token, new_token, parse_tokens};
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
    fn tickets_grant_read_only_until_they_expire_and_cannot_be_forged() {
        let token = new_token();
        let auth = auth_with(&format!(
            "{} scopes=read,ingest services=checkout name=t",
            hash_token(&token)
        ));
        let p = auth
            .authenticate(&bearer(&token), &Method::POST, None, None, 0)
            .unwrap();
        let (ticket, expires) = auth.issue_ticket(&p, 1_000).unwrap();
        assert_eq!(expires, 61_000);
        let q = auth
            .authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 2_000)
            .unwrap();
        assert!(q.via_signed_claim() && q.require(Scope::Read).is_ok());
        assert!(
            auth.issue_ticket(&q, 2_000).is_none(),
            "a ticket does not mint tickets"
        );
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
        let grant = auth.issue_grant(&p, query, 10_000).unwrap();
        let q = auth.verify_grant(&grant, query, 9_999).unwrap();
        assert!(q.require(Scope::Read).is_ok() && q.require(Scope::Ingest).is_err());
        assert!(q.may_use_service("checkout") && !q.may_use_service("search"));
        assert!(q.via_grant());
        assert!(
            q.limit_key.starts_with("grant:"),
            "a link has its own budget: {}",
            q.limit_key
        );
        assert_eq!(q.tenant, "token:t", "its renders are its minter's");
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
        let (ticket, _) = auth.issue_ticket(&p, 0).unwrap();
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
    fn claims_follow_the_token_itself_not_its_name() {
        let (old, new) = (new_token(), new_token());
        let auth = auth_with(&format!(
            "{} scopes=read,ingest services=checkout,search name=team",
            hash_token(&old)
        ));
        let p = auth
            .authenticate(&bearer(&old), &Method::GET, None, None, 0)
            .unwrap();
        let (ticket, _) = auth.issue_ticket(&p, 0).unwrap();
        let query = "kind=histogram&service=search&window=1h";
        let grant = auth.issue_grant(&p, query, 60_000).unwrap();
        let ticket_holder =
            || auth.authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 1);
        assert!(ticket_holder().unwrap().may_use_service("search"));
        assert_eq!(
            auth.recheck(&ticket_holder().unwrap(), &["search"], 1),
            Ok(())
        );

        // The token loses a service: its claims lose it too, at once.
        auth.replace_tokens(
            parse_tokens(&format!(
                "{} scopes=read services=checkout name=team",
                hash_token(&old)
            ))
            .unwrap(),
        )
        .unwrap();
        let narrowed = ticket_holder().unwrap();
        assert!(narrowed.may_use_service("checkout") && !narrowed.may_use_service("search"));
        assert!(
            !auth
                .verify_grant(&grant, query, 1)
                .unwrap()
                .may_use_service("search")
        );
        assert_eq!(auth.recheck(&p, &["search"], 1), Err(Lapsed::Revoked));
        assert_eq!(
            auth.recheck(&p, &["checkout"], 1),
            Err(Lapsed::Revoked),
            "the token lost the ingest scope this caller had"
        );

        // Rotated: the same name with a new secret. The old token's claims are dead.
        auth.replace_tokens(
            parse_tokens(&format!(
                "{} scopes=read,ingest name=team",
                hash_token(&new)
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(ticket_holder().unwrap_err().status, 401);
        assert_eq!(auth.verify_grant(&grant, query, 1).unwrap_err().status, 401);
        assert_eq!(auth.recheck(&narrowed, &[], 1), Err(Lapsed::Revoked));
        assert_eq!(
            auth.authenticate(&bearer(&old), &Method::GET, None, None, 1)
                .unwrap_err()
                .status,
            401
        );

        // A token without `read` any more opens no claims of its own.
        let p = auth
            .authenticate(&bearer(&new), &Method::GET, None, None, 0)
            .unwrap();
        let (ticket, expires) = auth.issue_ticket(&p, 0).unwrap();
        auth.replace_tokens(
            parse_tokens(&format!("{} scopes=ingest name=team", hash_token(&new))).unwrap(),
        )
        .unwrap();
        assert!(
            auth.authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 1)
                .is_err()
        );
        // And expiry is its own reason.
        auth.replace_tokens(
            parse_tokens(&format!("{} scopes=read name=team", hash_token(&new))).unwrap(),
        )
        .unwrap();
        let holder = auth
            .authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 1)
            .unwrap();
        assert_eq!(auth.recheck(&holder, &[], expires), Err(Lapsed::Expired));
        // Reloads never switch open mode on or off.
        assert!(auth.replace_tokens(Vec::new()).is_err());
        assert!(
            Auth::new(AuthConfig::open())
                .replace_tokens(parse_tokens(&format!("{} scopes=read", hash_token(&new))).unwrap())
                .is_err()
        );
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
        // Its tickets hold until they expire (there is no token to revoke).
        let (ticket, expires) = auth.issue_ticket(&p, 0).unwrap();
        let holder = auth
            .authenticate(&HeaderMap::new(), &Method::GET, Some(&ticket), None, 1)
            .unwrap();
        assert_eq!(auth.recheck(&holder, &["any"], expires - 1), Ok(()));
        assert_eq!(
            auth.recheck(&holder, &["any"], expires),
            Err(Lapsed::Expired)
        );
    }
}
