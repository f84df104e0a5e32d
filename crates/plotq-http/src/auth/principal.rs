//! Who a caller is and what it may do: `Scope`s (ingest, read, admin) and sets of them,
//! `ServiceAccess` (all services, or exact names and `prefix*` patterns), how it proved
//! itself (`Credential`), and `Principal`, the authenticated caller handlers ask.

use crate::problem::{Problem, ProblemCode};
use serde::{Deserialize, Serialize};

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

    /// Exact names, or prefixes ending in `*` (plain string prefixes: end one with a
    /// separator, `team-a.*`, to mean one family of names).
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

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Open mode: nobody is asked.
    Open,
    /// A bearer token (its key id).
    Token { kid: String },
    /// A read ticket of a token, until `expires_ms`.
    Ticket { kid: String, expires_ms: i64 },
    /// A render grant (a signed link) of a token, until `expires_ms`.
    Grant { kid: String, expires_ms: i64 },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name (`anonymous` in open mode); used in logs.
    pub name: String,
    pub scopes: Scopes,
    pub services: ServiceAccess,
    /// What proved it (a long-lived stream re-checks it: `Auth::recheck`).
    pub credential: Credential,
    /// What rate and connection limits are counted against: `token:<name>`, the client
    /// address when anonymous, or `grant:<digest>` for a signed link (a link's traffic
    /// has its own budget, never its minter's).
    pub limit_key: String,
    /// Whose work this is, for the per-tenant shares of the queue, the render waiters
    /// and the workers (`token:<name>`, or the client address when anonymous; a signed
    /// link's renders are its minter's).
    pub tenant: String,
}

impl Principal {
    /// Whether this came from a read ticket or a render grant rather than a token.
    pub fn via_signed_claim(&self) -> bool {
        matches!(
            self.credential,
            Credential::Ticket { .. } | Credential::Grant { .. }
        )
    }

    /// Whether this is a render grant's (a signed link's) holder.
    pub fn via_grant(&self) -> bool {
        matches!(self.credential, Credential::Grant { .. })
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
