//! The OpenAPI pieces every role's document shares: the problem+json schema and the
//! security schemes (bearer tokens, read tickets). Each role documents its own routes
//! next to their handlers; the binary merges the documents.

#![allow(dead_code)] // reason: fields exist to be described, never read

use crate::problem::ProblemCode;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

/// One problem with one field.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorDoc {
    /// JSON pointer of the field, e.g. `/3/value`.
    field: String,
    /// What is wrong, in words.
    problem: String,
}

/// RFC 9457 problem details (`application/problem+json`).
#[derive(Serialize, ToSchema)]
pub struct ProblemDoc {
    /// `https://plotq.dev/problems/<code>`.
    #[schema(
        example = "https://plotq.dev/problems/invalid_field",
        pattern = "^https://plotq\\.dev/problems/[a-z_]+$"
    )]
    r#type: String,
    /// The code's title (the same for every answer with this code).
    title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    code: ProblemCode,
    /// What went wrong, in words.
    detail: String,
    /// The fields at fault (validation and permission problems); never empty when sent.
    #[schema(nullable = false, min_items = 1)]
    errors: Option<Vec<FieldErrorDoc>>,
    /// The job's state (as `GET /api/v1/plots/{id}` shows it), for `not_ready` and
    /// `plot_failed`.
    #[schema(nullable = false)]
    job: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Adds the `bearer` and `ticket` security schemes.
#[derive(Debug)]
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token with scopes ingest, read and/or admin (README: Security)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A short-lived read ticket from POST /api/v1/tickets (for EventSource and <img>)",
            ))),
        );
    }
}
