//! The notifier's part of the OpenAPI document: `/api/v1/events` and the payloads of the
//! events it streams (`PlotEvent` from `plotq-domain::wire`, and `view.state`).

#![allow(dead_code)] // reason: fields exist to be described, never read

use plotq_http::{ProblemDoc, SecuritySchemes};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// `plot.ready`, `plot.failed`, `plot.queued`, `plot.rendering` (the `data:` of the event).
#[derive(Serialize, ToSchema)]
pub struct PlotEventDoc {
    /// Format version (1).
    v: u32,
    /// `plot.ready`, `plot.failed`, `plot.queued` or `plot.rendering`.
    event: String,
    /// The job id (a UUID).
    id: String,
    service: String,
    services: Vec<String>,
    metric: String,
    kind: String,
    /// `last 10m`, or the absolute range.
    range: String,
    /// `png` or `svg`.
    format: String,
    status_url: String,
    #[schema(nullable = false)]
    image_url: Option<String>,
    #[schema(nullable = false)]
    png_url: Option<String>,
    #[schema(nullable = false)]
    error: Option<String>,
    #[schema(nullable = false)]
    view: Option<String>,
    at_ms: i64,
}

/// `view.state`: a watched view's current state, sent first to a new subscriber.
#[derive(Serialize, ToSchema)]
pub struct ViewStateEventDoc {
    view: String,
    /// `queued`, `rendering`, `done` or `failed`.
    status: String,
    id: Option<String>,
    error: Option<String>,
    requested_ms: i64,
}

#[derive(OpenApi)]
#[openapi(
    paths(crate::events),
    components(schemas(PlotEventDoc, ViewStateEventDoc, ProblemDoc)),
    modifiers(&SecuritySchemes),
    tags((name = "events", description = "Server-Sent Events"))
)]
pub struct NotifierDoc;
