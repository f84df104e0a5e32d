//! The OpenAPI 3.1 document of the api's routes, generated from the handlers'
//! `#[utoipa::path]` annotations plus the schemas below (the JSON shapes clients see).
//! The binary merges it with the notifier's and the health routes' documents and serves
//! the result at `/api/v1/openapi.json`.
//!
//! The schema types here only describe; the handlers build the same JSON from the
//! domain types (a test in the binary's suite fuzzes the live server against this
//! document, so a drift fails CI).

#![allow(dead_code)] // reason: fields exist to be described, never read

use plotq_http::{ProblemCode, ProblemDoc, SecuritySchemes};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Milliseconds since the epoch, or an RFC 3339 string.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimestampDoc {
    Millis(i64),
    Rfc3339(String),
}

/// One sample. `service_name`/`metric_name` are accepted as aliases.
#[derive(Serialize, ToSchema)]
pub struct SampleDoc {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", example = "checkout")]
    service: String,
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", example = "latency_ms")]
    metric: String,
    /// Any finite number.
    #[schema(example = 12.5)]
    value: f64,
    /// Defaults to the time received; at most 5 minutes in the future.
    #[schema(nullable = false)]
    timestamp: Option<TimestampDoc>,
}

/// One sample, or a batch of 1 to 50,000.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SamplesDoc {
    One(SampleDoc),
    Batch(Vec<SampleDoc>),
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedDoc {
    /// How many samples were stored.
    accepted: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ServicesDoc {
    services: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketDoc {
    /// Pass as `?ticket=` on GET routes and `/api/v1/events`.
    ticket: String,
    expires_at_ms: i64,
}

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

/// A plot request. `service` or `services` (comparisons: histogram, latency_timeseries,
/// cdf); `window` or `from`/`until` (10 s to 7 d).
#[derive(Serialize, ToSchema)]
pub struct PlotSpecDoc {
    kind: KindDoc,
    #[schema(nullable = false)]
    service: Option<String>,
    #[schema(nullable = false, min_items = 1, max_items = 8)]
    services: Option<Vec<String>>,
    /// Defaults to `latency_ms` (`status_code` for status_codes and error_rate).
    #[schema(nullable = false)]
    metric: Option<String>,
    /// `10s`…`7d`, default `10m`.
    #[schema(nullable = false, example = "15m")]
    window: Option<String>,
    #[schema(nullable = false)]
    from: Option<TimestampDoc>,
    #[schema(nullable = false)]
    until: Option<TimestampDoc>,
    #[schema(nullable = false, minimum = 200, maximum = 4000)]
    width: Option<u32>,
    #[schema(nullable = false, minimum = 150, maximum = 4000)]
    height: Option<u32>,
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    bins: Option<u32>,
    #[schema(nullable = false, max_length = 120)]
    title: Option<String>,
    /// `light` or `dark`.
    #[schema(nullable = false)]
    theme: Option<String>,
    /// `png` or `svg`.
    #[schema(nullable = false)]
    format: Option<String>,
    /// Histogram and cdf only.
    #[schema(nullable = false)]
    log_x: Option<bool>,
    /// latency_timeseries only.
    #[schema(nullable = false)]
    show_max: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusDoc {
    Queued,
    Rendering,
    Done,
    Failed,
}

/// A plot job as clients see it.
#[derive(Serialize, ToSchema)]
pub struct JobStateDoc {
    /// A UUID.
    id: String,
    status: StatusDoc,
    /// Why it failed.
    #[schema(nullable = false)]
    error: Option<String>,
    /// The validated plot spec, with defaults filled in.
    spec: serde_json::Map<String, serde_json::Value>,
    until_ms: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    #[schema(nullable = false)]
    n_samples: Option<u64>,
    #[schema(nullable = false)]
    render_ms: Option<f64>,
    #[schema(nullable = false)]
    view: Option<String>,
    status_url: String,
    #[schema(nullable = false)]
    image_url: Option<String>,
    #[schema(nullable = false)]
    png_url: Option<String>,
    /// Set when an identical request's job answered this one.
    #[schema(nullable = false)]
    deduplicated: Option<bool>,
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() {}

/// The api's part of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "plotq",
        description = "High-frequency metrics in, live plots out. Errors are RFC 9457 problem+json with a stable `code`."
    ),
    paths(
        crate::routes::ingest,
        crate::routes::services,
        crate::routes::ticket,
        crate::routes::request_plot,
        crate::routes::plot_status,
        crate::routes::plot_png,
        crate::routes::plot_image,
        openapi_json,
    ),
    components(schemas(ProblemDoc, ProblemCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "metrics", description = "Ingest samples"),
        (name = "plots", description = "Plot jobs and their images"),
        (name = "auth", description = "Browser read tickets"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json` serving `document` (the merged document of the roles).
pub fn openapi_router(document: &utoipa::openapi::OpenApi) -> axum::Router {
    let json = document.to_json().expect("the OpenAPI document serialises");
    axum::Router::new().route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let json = json.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
            }
        }),
    )
}
