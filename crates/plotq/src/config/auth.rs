//! Authentication settings (`AuthSettings`: tokens, the ticket and grant secrets, ticket
//! lifetime, reloading the tokens file) and what they become: `plotq_http::AuthConfig`,
//! checked against the rules (tokens need a shared ticket secret; no tokens only on
//! loopback unless switched off), and `TokensReload`. Reloading itself runs in the roles.

use super::values::{self, Validate, at_least_for};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The token entries of `file` and `inline` (as PLOTQ_TOKENS_FILE and PLOTQ_TOKENS).
pub fn read_token_entries(
    file: Option<&std::path::Path>,
    inline: Option<&str>,
) -> anyhow::Result<Vec<plotq_http::auth::TokenEntry>> {
    let mut text = String::new();
    if let Some(path) = file {
        text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS_FILE {}: {e}", path.display()))?;
        text.push('\n');
    }
    if let Some(inline) = inline {
        text.push_str(inline);
    }
    plotq_http::auth::parse_tokens(&text).map_err(|e| anyhow::anyhow!("PLOTQ_TOKENS(_FILE): {e}"))
}

/// Reading PLOTQ_TOKENS_FILE again while a role runs (`PLOTQ_TOKENS_RELOAD_SECS`).
#[derive(Debug, Clone)]
pub struct TokensReload {
    pub file: PathBuf,
    pub inline: Option<String>,
    pub every: Duration,
}

impl TokensReload {
    /// The entries as the file and the inline setting read now.
    pub fn read(&self) -> anyhow::Result<Vec<plotq_http::auth::TokenEntry>> {
        read_token_entries(Some(&self.file), self.inline.as_deref())
    }
}

/// Authentication: api, notifier, standalone.
#[derive(Debug, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthSettings {
    /// A file of token entries, one a line: `sha256:<hex> scopes=ingest,read
    /// [services=a,b*] [name=x]` (make them with `plotq token new`).
    #[arg(long, env = "PLOTQ_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Token entries as in PLOTQ_TOKENS_FILE, separated by `;` or newlines.
    #[arg(long, env = "PLOTQ_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// `on` (default) or `off`. With no tokens, `on` serves only loopback addresses, open;
    /// `off` serves any address with no authentication at all (behind your own gateway).
    #[arg(long, env = "PLOTQ_AUTH", default_value = "on")]
    pub auth: String,
    /// Key signing browser read tickets; every api and notifier of a deployment must share
    /// it. Required with tokens (at least 32 characters, e.g. `openssl rand -hex 32`).
    #[arg(long, env = "PLOTQ_TICKET_SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,
    /// How long a browser read ticket is valid (10 s to 1 h; an event stream
    /// opened with a ticket ends when it expires, with a final `stream.closed` event).
    #[arg(long = "ticket-ttl-secs", env = "PLOTQ_TICKET_TTL_SECS", default_value = "300",
          value_name = "DURATION", value_parser = values::secs())]
    pub ticket_ttl: Duration,
    /// How often PLOTQ_TOKENS_FILE is read again (0: only at start). A token
    /// removed or replaced in the file stops working at the next read, with its tickets,
    /// links and open event streams.
    #[arg(long = "tokens-reload-secs", env = "PLOTQ_TOKENS_RELOAD_SECS", default_value = "10",
          value_name = "DURATION", value_parser = values::secs())]
    pub tokens_reload: Duration,
    /// Key signing render links (`GET /api/v1/render?…&grant=`); every api of a
    /// deployment must share it, and changing it revokes every link. At least 32
    /// characters; unset, it is derived from PLOTQ_TICKET_SECRET (rotating that one then
    /// revokes links too).
    #[arg(long, env = "PLOTQ_GRANT_SECRET", hide_env_values = true)]
    pub grant_secret: Option<String>,
}

impl Validate for AuthSettings {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.auth == "on" || self.auth == "off",
            "PLOTQ_AUTH must be on or off"
        );
        at_least_for(
            self.ticket_ttl,
            Duration::from_secs(10),
            "PLOTQ_TICKET_TTL_SECS",
        )?;
        anyhow::ensure!(
            self.ticket_ttl <= plotq_http::auth::MAX_TICKET_TTL,
            "PLOTQ_TICKET_TTL_SECS must be at most {} (a ticket travels in URLs)",
            values::show(plotq_http::auth::MAX_TICKET_TTL)
        );
        Ok(())
    }
}

impl AuthSettings {
    /// The token entries of PLOTQ_TOKENS_FILE and PLOTQ_TOKENS, as they read now.
    pub fn read_tokens(&self) -> anyhow::Result<Vec<plotq_http::auth::TokenEntry>> {
        read_token_entries(self.tokens_file.as_deref(), self.tokens.as_deref())
    }

    /// What reloading the tokens needs: the file, the inline entries and the interval
    /// (`None` when the tokens are read only at start).
    pub fn tokens_reload(&self) -> Option<TokensReload> {
        let file = self.tokens_file.clone()?;
        (!self.tokens_reload.is_zero()).then(|| TokensReload {
            file,
            inline: self.tokens.clone(),
            every: self.tokens_reload,
        })
    }

    /// The authentication of an HTTP role listening on `addr`, checked against the
    /// rules: tokens need a shared ticket secret; no tokens is only for loopback unless
    /// `PLOTQ_AUTH=off` says so.
    pub fn auth_config(&self, addr: SocketAddr) -> anyhow::Result<plotq_http::AuthConfig> {
        let tokens = self.read_tokens()?;
        let mut config = plotq_http::AuthConfig::open();
        config.ticket_ttl = self.ticket_ttl;
        // A configured secret is used in every mode, so an api's tickets open its
        // notifiers' streams in open mode too (the dashboard always uses tickets).
        match &self.ticket_secret {
            Some(secret) if secret.len() >= 32 => config.ticket_secret = secret.as_bytes().to_vec(),
            Some(_) => anyhow::bail!("PLOTQ_TICKET_SECRET must be at least 32 characters"),
            None => {}
        }
        match (&self.grant_secret, &self.ticket_secret) {
            (Some(secret), _) if secret.len() >= 32 => {
                config.grant_secret = secret.as_bytes().to_vec()
            }
            (Some(_), _) => anyhow::bail!("PLOTQ_GRANT_SECRET must be at least 32 characters"),
            (None, Some(ticket)) => {
                config.grant_secret =
                    plotq_http::auth::derive_key(ticket.as_bytes(), "plotq render grants v1")
            }
            (None, None) => {}
        }
        if self.auth == "off" {
            anyhow::ensure!(
                tokens.is_empty(),
                "PLOTQ_AUTH=off, yet tokens are configured: remove them or switch auth on"
            );
            tracing::warn!(%addr, "authentication is off (PLOTQ_AUTH=off): every caller may do everything");
            return Ok(config);
        }
        if tokens.is_empty() {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "refusing to listen on {addr} with no tokens: configure PLOTQ_TOKENS_FILE or PLOTQ_TOKENS \
                 (plotq token new), listen on a loopback address, or set PLOTQ_AUTH=off deliberately"
            );
            return Ok(config);
        }
        // The secret itself was applied above; with tokens it is required.
        anyhow::ensure!(
            self.ticket_secret.is_some(),
            "PLOTQ_TICKET_SECRET is required when tokens are configured (every api and notifier must share it; e.g. openssl rand -hex 32)"
        );
        config.tokens = tokens;
        Ok(config)
    }
}
