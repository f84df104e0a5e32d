//! The OpenAPI pieces every role's document shares: the problem+json schema and the
//! security schemes (bearer tokens, read tickets). Each role documents its own routes
//! next to their handlers; the binary merges the documents.

#![allow(dead_code)] // reason: fields exist to be described, never read

use crate::problem::ProblemCode;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, ToSchema};

/// The plot kinds (`plotq_domain::PlotKind`), as requests and events name them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindDoc {
    Histogram,
    LatencyTimeseries,
    Throughput,
    StatusCodes,
    ErrorRate,
    Heatmap,
    Cdf,
}

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

/// `401` and `403`: the problems of every authenticated operation.
#[derive(IntoResponses)]
pub enum AuthProblems {
    /// Missing or unknown credential.
    #[response(
        status = 401,
        description = "Missing or unknown credential",
        content_type = "application/problem+json"
    )]
    Unauthorized(ProblemDoc),
    /// The credential lacks the scope or a service.
    #[response(
        status = 403,
        description = "Credential lacks the scope or a service",
        content_type = "application/problem+json"
    )]
    Forbidden(ProblemDoc),
}

/// `400`, `413`, `415` and `422`: the problems of an operation that reads a JSON body.
#[derive(IntoResponses)]
pub enum JsonBodyProblems {
    /// The body is not JSON, is empty or could not be read.
    #[response(
        status = 400,
        description = "Malformed, empty or unreadable body",
        content_type = "application/problem+json"
    )]
    Malformed(ProblemDoc),
    /// The body is over the configured limit.
    #[response(
        status = 413,
        description = "Body over the configured limit",
        content_type = "application/problem+json"
    )]
    TooLarge(ProblemDoc),
    /// The body is not declared as JSON.
    #[response(
        status = 415,
        description = "Body not declared as JSON",
        content_type = "application/problem+json"
    )]
    UnsupportedMediaType(ProblemDoc),
    /// The body is JSON but invalid; every bad field is named and nothing is done.
    #[response(
        status = 422,
        description = "Invalid body (every bad field named); nothing done",
        content_type = "application/problem+json"
    )]
    Invalid(ProblemDoc),
}

/// `429` with `Retry-After`: over this caller's rate.
#[derive(IntoResponses)]
pub enum RateLimited {
    /// Over this caller's rate.
    #[response(
        status = 429,
        description = "Over this caller's rate",
        content_type = "application/problem+json",
        headers(("retry-after" = u64, description = "Seconds to wait"))
    )]
    TooManyRequests(ProblemDoc),
}

/// `503` with `Retry-After`: a dependency is unavailable; nothing was done.
#[derive(IntoResponses)]
pub enum Unavailable {
    /// A dependency is unavailable.
    #[response(
        status = 503,
        description = "A dependency (MongoDB, RabbitMQ, Redis) unavailable or the queue full; nothing done",
        content_type = "application/problem+json",
        headers(("retry-after" = u64, description = "Seconds to wait"))
    )]
    ServiceUnavailable(ProblemDoc),
}

/// `400 invalid_id` and `404`: the problems of an operation on one job.
#[derive(IntoResponses)]
pub enum JobReadProblems {
    /// The path does not hold a job id.
    #[response(
        status = 400,
        description = "Not a job id",
        content_type = "application/problem+json"
    )]
    InvalidId(ProblemDoc),
    /// No such job, or not this caller's.
    #[response(
        status = 404,
        description = "Unknown, expired, or another tenant's job",
        content_type = "application/problem+json"
    )]
    NotFound(ProblemDoc),
}
