//! `Caller`, the authenticated caller of a request (an axum extractor): the bearer
//! token, else (on GET/HEAD) the `ticket` query parameter, asked of the role's `Auth`.

use super::authenticator::Auth;
use super::principal::Principal;
use crate::problem::{Problem, ProblemCode};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// The `ticket` query parameter, if any, percent-decoded (without parsing the rest of the
/// query as a whole).
fn ticket_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
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
    use crate::auth::authenticator::{AuthConfig, MAX_TICKET_TTL};
    use axum::http::{HeaderMap, Method};
    use std::time::Duration;

    #[test]
    fn tickets_are_percent_decoded_and_capped_in_life() {
        assert_eq!(
            ticket_param(Some("a=1&ticket=ab%2Ecd%3D&b=2")).as_deref(),
            Some("ab.cd=")
        );
        assert_eq!(ticket_param(Some("tickets=x")), None);
        let auth = Auth::new(AuthConfig {
            ticket_ttl: Duration::from_secs(86_400),
            ..AuthConfig::open()
        });
        let p = auth
            .authenticate(&HeaderMap::new(), &Method::GET, None, None, 0)
            .unwrap();
        let (_, expires) = auth.issue_ticket(&p, 0).unwrap();
        assert_eq!(expires, MAX_TICKET_TTL.as_millis() as i64);
    }
}
