//! The OpenAPI pieces every role's document shares: the problem+json schema and the
//! security schemes (bearer tokens, read tickets). Each role documents its own routes
//! next to their handlers; the binary merges the documents.

#![allow(dead_code)] // reason: fields exist to be described, never read

use crate::problem::ProblemCode;
use plotq_domain::PlotKind;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, ToSchema};

/// The plot kinds (`plotq_domain::PlotKind`), as requests and events name them: the
/// schema lists `PlotKind::ALL`, so the document cannot miss a kind.
#[derive(Serialize)]
#[serde(transparent)]
pub struct KindDoc(PlotKind);

impl utoipa::PartialSchema for KindDoc {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The plot kinds (`plotq_domain::PlotKind`), as requests and events name them.",
            ))
            .enum_values(Some(PlotKind::ALL.iter().map(|k| k.as_str())))
            .into()
    }
}

impl ToSchema for KindDoc {}

/// A correlation's statistics of a time bucket (`plotq_domain::correlation::Stat`): the
/// schema lists `Stat::ALL`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct StatDoc(plotq_domain::correlation::Stat);

impl utoipa::PartialSchema for StatDoc {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A statistic of one time bucket's samples (correlation's `stat` and `x_stat`).",
            ))
            .enum_values(Some(
                plotq_domain::correlation::Stat::ALL
                    .iter()
                    .map(|s| s.as_str()),
            ))
            .into()
    }
}

impl ToSchema for StatDoc {}

/// How a correlation's y statistic follows its x statistic bucket by bucket
/// (`plotq_domain::correlation::Fit`); the coefficients need three points with spread,
/// the line spread in x.
#[derive(Serialize, ToSchema)]
pub struct FitDoc {
    /// Buckets where both statistics have a value.
    #[schema(minimum = 0)]
    points: u64,
    #[schema(nullable = false, minimum = -1, maximum = 1)]
    pearson: Option<f64>,
    #[schema(nullable = false, minimum = -1, maximum = 1)]
    spearman: Option<f64>,
    /// The least-squares line `y = slope·x + intercept`.
    #[schema(nullable = false)]
    slope: Option<f64>,
    #[schema(nullable = false)]
    intercept: Option<f64>,
}

/// What a plot was drawn from (`plotq_domain::DataSource`).
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceDoc {
    /// Every raw sample in the window.
    Exact,
    /// Rollups: counts, min, max and mean exact, percentiles within `relative_error`.
    Rollups {
        #[schema(minimum = 1)]
        resolution_secs: u32,
        #[schema(minimum = 0, maximum = 1)]
        relative_error: f64,
    },
}

/// One service's samples in a window (`plotq_domain::SeriesStats`): count, min, max and
/// mean exact; the percentiles exact from raw samples, within ±1% from rollups (see
/// `source`). Throughput adds the rates, status codes and error rate add `codes` and
/// `error_ratio`, correlation `metric` and (on y's entry) `correlation`; other kinds
/// have none of them.
#[derive(Serialize, ToSchema)]
pub struct SeriesStatsDoc {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    service: String,
    /// In a `group_by` plot, the label value this series is (absent for the rest).
    #[schema(nullable = false, min_length = 1, max_length = 128)]
    group: Option<String>,
    /// In a `group_by` plot, `true` for the series of every other value (and the
    /// samples without the label); absent otherwise.
    #[schema(nullable = false)]
    other: Option<bool>,
    #[schema(minimum = 1)]
    count: u64,
    mean: f64,
    min: f64,
    max: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    /// Samples per second over the window (`throughput`).
    #[schema(nullable = false, minimum = 0)]
    rate_per_s: Option<f64>,
    /// The highest samples per second of the plot's time buckets (`throughput`).
    #[schema(nullable = false, minimum = 0)]
    peak_rate_per_s: Option<f64>,
    /// Samples per HTTP status code, keyed by the code (`status_codes`, `error_rate`).
    #[schema(nullable = false)]
    codes: Option<std::collections::BTreeMap<String, u64>>,
    /// Errors over `count` (`status_codes`, `error_rate`): the 5xx share for status
    /// metrics, the non-zero share for flag metrics.
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    error_ratio: Option<f64>,
    /// In a correlation, the metric this series is (y's entry first, then x's).
    #[schema(nullable = false, pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    metric: Option<String>,
    /// In a correlation, on y's entry: the fit of its statistic against x's.
    #[schema(nullable = false)]
    correlation: Option<FitDoc>,
}

/// Where a job's last attempt spent its time (`plotq_domain::StageTimings`), in
/// milliseconds rounded to hundredths; a stage the attempt did not reach is absent.
#[derive(Serialize, ToSchema)]
pub struct TimingsDoc {
    /// From the job's creation to the start of this attempt, ms.
    #[schema(minimum = 0)]
    queue_wait: f64,
    /// Reading the window from the store, ms.
    #[schema(nullable = false, minimum = 0)]
    query: Option<f64>,
    /// Drawing the plot, ms.
    #[schema(nullable = false, minimum = 0)]
    render: Option<f64>,
    /// Encoding the image (PNG or SVG), ms.
    #[schema(nullable = false, minimum = 0)]
    encode: Option<f64>,
    /// Writing the `rendering` state and the image into the cache, ms.
    #[schema(nullable = false, minimum = 0)]
    store: Option<f64>,
    /// From the start of this attempt to the job done (or failed), ms.
    #[schema(minimum = 0)]
    total: f64,
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

/// Adds the `bearer`, `ticket` and `grant` security schemes.
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
        components.add_security_scheme(
            "grant",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "grant",
                "A signed, read-only, expiring link's grant from POST /api/v1/render/grants, valid for exactly the parameters it was minted with",
            ))),
        );
    }
}

/// Declares a set of problem+json responses (`IntoResponses`) from one line each:
/// `Variant = status: "description"`, optionally followed by `with "<header>"` for a
/// header that says how many seconds to wait (`retry-after`).
macro_rules! problem_responses {
    ($(#[$meta:meta])* $name:ident {
        $($variant:ident = $status:literal : $description:literal $(with $header:literal)?;)+
    }) => {
        $(#[$meta])*
        #[derive(IntoResponses)]
        pub enum $name {
            $(
                #[doc = $description]
                #[response(
                    status = $status,
                    description = $description,
                    content_type = "application/problem+json"
                    $(, headers(($header = u64, description = "Seconds to wait")))?
                )]
                $variant(ProblemDoc),
            )+
        }
    };
}

problem_responses! {
    /// `401` and `403`: the problems of every authenticated operation.
    AuthProblems {
        Unauthorized = 401: "Missing or unknown credential";
        Forbidden = 403: "Credential lacks the scope or a service";
    }
}

problem_responses! {
    /// `400`, `413`, `415` and `422`: the problems of an operation that reads a JSON body.
    JsonBodyProblems {
        Malformed = 400: "Malformed, empty or unreadable body";
        TooLarge = 413: "Body over the configured limit";
        UnsupportedMediaType = 415: "Body not declared as JSON";
        Invalid = 422: "Invalid body (every bad field named); nothing done";
    }
}

problem_responses! {
    /// `429` with `Retry-After`: over this caller's rate.
    RateLimited {
        TooManyRequests = 429: "Over this caller's rate" with "retry-after";
    }
}

problem_responses! {
    /// `503` with `Retry-After`: a dependency is unavailable; nothing was done.
    Unavailable {
        ServiceUnavailable = 503:
            "A dependency (MongoDB, RabbitMQ, Redis) unavailable or the queue full; nothing done"
            with "retry-after";
    }
}

problem_responses! {
    /// `507` with `Retry-After`: the sample store is at its size bound; nothing was stored.
    StoreFull {
        InsufficientStorage = 507:
            "The sample store is at its configured size bound (standalone's memory store); nothing stored"
            with "retry-after";
    }
}

problem_responses! {
    /// `409 idempotency_key_in_use` with `Retry-After`: a request with the same key is
    /// being stored.
    IdempotencyInUse {
        Conflict = 409: "A request with this Idempotency-Key is being stored; retry shortly" with "retry-after";
    }
}

problem_responses! {
    /// `400 invalid_id` and `404`: the problems of an operation on one job.
    JobReadProblems {
        InvalidId = 400: "Not a job id";
        NotFound = 404: "Unknown, expired, or another tenant's job";
    }
}
