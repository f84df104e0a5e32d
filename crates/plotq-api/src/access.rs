//! Who may read and write what, past the edge's authentication: `POST /api/v1/tickets`
//! (short-lived read tickets for browsers), the service allowlist checks every route
//! makes ([`may_read_services`] for a plot's services, [`forbidden_services`] for the
//! `403` naming them), and the refusal of signed claims that try to mint more
//! ([`signed_claims_mint_nothing`]).
//!
//! Tokens, tickets and grants themselves (hashing, signing, verifying, scopes) are
//! `plotq_http::auth`'s; this module only applies them to the api's resources.

use crate::openapi::TicketDoc;
use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::{FieldError, PlotSpec};
use plotq_http::{Auth, AuthProblems, Caller, Problem, ProblemCode, Scope};
use plotq_ports::clock::now_ms;
use serde_json::json;
use std::sync::Arc;

/// A short-lived read ticket for browsers (`?ticket=` on GET routes and the event stream).
#[utoipa::path(
    post, path = "/api/v1/tickets", tag = "auth",
    responses(
        (status = 200, description = "A signed read ticket", body = TicketDoc, headers(("cache-control" = String, description = "`no-store`"))),
        AuthProblems,
    ),
    security(("bearer" = ["read"]))
)]
pub(crate) async fn ticket(
    caller: Caller,
    Extension(auth): Extension<Arc<Auth>>,
) -> Result<Response, Problem> {
    caller.require(Scope::Read)?;
    let (ticket, expires_at_ms) = auth
        .issue_ticket(&caller, now_ms())
        .ok_or_else(signed_claims_mint_nothing)?;
    Ok(no_store(
        axum::Json(json!({"ticket": ticket, "expires_at_ms": expires_at_ms})).into_response(),
    ))
}

/// `response` marked `Cache-Control: no-store` (a credential in its body).
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `403`: a ticket or a link cannot mint tickets or links (they are bound to a token).
pub(crate) fn signed_claims_mint_nothing() -> Problem {
    Problem::new(
        ProblemCode::Forbidden,
        "tickets and links are minted with a token, not with another ticket or link",
    )
}

/// `403` naming the services (fields) this caller may not use.
pub(crate) fn forbidden_services(errors: Vec<FieldError>) -> Problem {
    let detail = format!(
        "this credential may not use {}",
        errors
            .iter()
            .map(|e| e.problem.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Problem {
        errors,
        ..Problem::new(ProblemCode::Forbidden, detail)
    }
}

/// `403` naming each of the spec's services the caller may not read.
pub(crate) fn may_read_services(caller: &Caller, spec: &PlotSpec) -> Result<(), Problem> {
    may_use_services(caller, &spec.services)
}

/// `403` naming each of `services` (as `/services/<i>`) the caller may not use.
pub(crate) fn may_use_services(
    caller: &Caller,
    services: &[plotq_domain::ServiceName],
) -> Result<(), Problem> {
    let denied: Vec<FieldError> = services
        .iter()
        .enumerate()
        .filter(|(_, s)| !caller.may_use_service(s.as_str()))
        .map(|(i, s)| FieldError::new(format!("/services/{i}"), s.to_string()))
        .collect();
    if denied.is_empty() {
        Ok(())
    } else {
        Err(forbidden_services(denied))
    }
}
