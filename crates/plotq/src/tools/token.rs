//! `plotq token new`: a new random token for a client, and the entry plotq stores (its
//! hash, scopes, services and name), checked the way the server reads it. Runs without
//! a runtime; stores nothing itself.

use crate::config::tools::TokenCommand;

/// Runs `plotq token …`.
pub fn run(command: &TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::New {
        scopes,
        services,
        name,
    } = command;
    let token = plotq_http::auth::new_token();
    let mut line = format!("{} scopes={scopes}", plotq_http::auth::hash_token(&token));
    if let Some(services) = services {
        line.push_str(&format!(" services={services}"));
    }
    if let Some(name) = name {
        line.push_str(&format!(" name={name}"));
    }
    // Check the entry the way the server will read it.
    plotq_http::auth::parse_tokens(&line).map_err(|e| anyhow::anyhow!(e))?;
    println!("token (give this to the client; it is not stored anywhere): {token}");
    println!("entry (add this line to PLOTQ_TOKENS_FILE or PLOTQ_TOKENS): {line}");
    Ok(())
}
