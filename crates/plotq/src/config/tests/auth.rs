//! Authentication as configured: open only on loopback unless switched off, and tokens
//! only with a shared ticket secret.

use super::api;
use crate::config::auth::AuthSettings;
use std::net::SocketAddr;

fn auth(args: &[&str]) -> AuthSettings {
    api(args).auth
}

#[test]
fn no_tokens_only_on_loopback_unless_switched_off() {
    let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert!(auth(&[]).auth_config(local).unwrap().is_open());
    let err = auth(&[]).auth_config(public).unwrap_err().to_string();
    assert!(err.contains("refusing to listen on 0.0.0.0:8080"), "{err}");
    assert!(
        auth(&["--auth", "off"])
            .auth_config(public)
            .unwrap()
            .is_open()
    );
    // A configured ticket secret is used in open mode too (api and notifier share it).
    let secret = "s".repeat(32);
    let open = auth(&["--ticket-secret", &secret])
        .auth_config(local)
        .unwrap();
    assert_eq!(open.ticket_secret, secret.as_bytes());
}

#[test]
fn tokens_need_a_shared_ticket_secret() {
    let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let line = format!("{} scopes=read", plotq_http::auth::hash_token("t"));
    let err = auth(&["--tokens", &line]).auth_config(public).unwrap_err();
    assert!(err.to_string().contains("PLOTQ_TICKET_SECRET"));
    let secret = "x".repeat(32);
    let config = auth(&["--tokens", &line, "--ticket-secret", &secret])
        .auth_config(public)
        .unwrap();
    assert_eq!(config.tokens.len(), 1);
    assert!(
        auth(&["--tokens", "sha256:zz scopes=read"])
            .auth_config(public)
            .is_err()
    );
}
