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
//!   signed claim (the token's key id and an expiry; read scope only) passed as
//!   `?ticket=` on GET routes. Every role that shares `PLOTQ_TICKET_SECRET` verifies it,
//!   so the api issues tickets that notifiers accept. Tickets expire in minutes and grant
//!   nothing but reads.
//! - **Render grants**: a link for `<img>` embeds outside plotq (`GET /api/v1/render?…&
//!   grant=`), minted by a caller with `read` (`POST /api/v1/render/grants`): an
//!   HMAC-SHA256-signed claim (the token's key id, expiry, and the SHA-256 of the link's
//!   canonical query, so it opens that one plot and nothing else) under its own key
//!   (`PLOTQ_GRANT_SECRET`; rotating it revokes every link).
//! - **Signed claims are bound to the token, not its name**: a ticket or grant carries
//!   the token's *key id* (`TokenEntry::kid`, derived from its hash), and every use looks
//!   the token up again: a removed or rotated token (same name, new secret) revokes its
//!   tickets and links at once, and the scopes and services are always the token's
//!   current ones. Token entries can be replaced while a role runs
//!   (`Auth::replace_tokens`, from a reloaded `PLOTQ_TOKENS_FILE`); `Auth::recheck` tells
//!   a long-lived stream whether its credential still holds.
//! - **Service patterns** `prefix*` are plain string prefixes: `pay*` matches `payments`
//!   and `payroll`, and `alpha*` matches `alphabet`. End a prefix with a separator
//!   (`team-a.*`, `team-a-*`) to mean one family of services.
//! - **Open mode** (no tokens): everyone is `anonymous` with every scope; only allowed on
//!   loopback unless auth is switched off explicitly (checked where roles start).
//!
//! This module decides; handlers ask (`Caller::require`). The claims' shapes (JSON with a
//! version, validated on decode) are `plotq_domain::wire::{TicketClaims, GrantClaims}`;
//! this module signs and verifies them.
//!
//! Files: `principal.rs` (scopes, service access, `Principal`), `tokens.rs` (token
//! entries, hashes and key ids), `signed.rs` (HMAC signing of claims, derived keys),
//! `authenticator.rs` (`Auth`, `AuthConfig`: tokens, tickets, grants, rechecks),
//! `caller.rs` (the `Caller` extractor).

mod authenticator;
mod caller;
mod principal;
mod signed;
mod tokens;

pub use authenticator::{Auth, AuthConfig, Lapsed, MAX_TICKET_TTL};
pub use caller::Caller;
pub use principal::{Credential, Principal, Scope, Scopes, ServiceAccess};
pub use signed::derive_key;
pub use tokens::{TokenEntry, hash_token, new_token, parse_tokens, sha256_hex};
