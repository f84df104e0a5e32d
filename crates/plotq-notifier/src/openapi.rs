//! The notifier's part of the OpenAPI document: `/api/v1/events` and the payloads of the
//! events it streams (`PlotEvent` from `plotq-domain::wire`, and `view.state`).
//!
//! The enums below are inlined where they are used, so they add no component names that
//! could clash with the api's when the binary merges the documents.

#![allow(dead_code)] // reason: fields exist to be described, never read

use plotq_http::{KindDoc, ProblemDoc, SecuritySchemes};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

#[derive(Serialize, ToSchema)]
enum EventKind {
    /// A view's refresh was queued.
    #[serde(rename = "plot.queued")]
    Queued,
    /// A worker started a view's render.
    #[serde(rename = "plot.rendering")]
    Rendering,
    #[serde(rename = "plot.ready")]
    Ready,
    #[serde(rename = "plot.failed")]
    Failed,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ImageFormat {
    Png,
    Svg,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum JobStatus {
    Queued,
    Rendering,
    Done,
    Failed,
}

/// `plot.ready`, `plot.failed`, `plot.queued`, `plot.rendering` (the `data:` of the event).
#[derive(Serialize, ToSchema)]
pub struct PlotEventDoc {
    /// Format version (1).
    #[schema(minimum = 1, maximum = 1)]
    v: u32,
    #[schema(inline)]
    event: EventKind,
    /// The job id.
    #[schema(format = "uuid")]
    id: String,
    /// The first (for most kinds the only) service.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    service: String,
    /// Every service of the plot (1 to 8).
    #[schema(min_items = 1, max_items = 8)]
    services: Vec<String>,
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
    metric: String,
    #[schema(inline)]
    kind: KindDoc,
    /// `last 10m`, or the absolute range.
    range: String,
    #[schema(inline)]
    format: ImageFormat,
    /// `/api/v1/plots/{id}`.
    status_url: String,
    /// `/api/v1/plots/{id}/image` (`plot.ready`).
    #[schema(nullable = false)]
    image_url: Option<String>,
    /// `/api/v1/plots/{id}/png` (`plot.ready` of PNG plots).
    #[schema(nullable = false)]
    png_url: Option<String>,
    /// Why it failed (`plot.failed`).
    #[schema(nullable = false)]
    error: Option<String>,
    /// The dashboard view the plot belongs to, if any.
    #[schema(nullable = false)]
    view: Option<String>,
    /// What the plot was drawn from (`plot.ready`).
    #[schema(nullable = false)]
    source: Option<plotq_http::SourceDoc>,
    /// Where the job's last attempt spent its time (`plot.ready`; `plot.failed` the
    /// stages its attempt reached).
    #[schema(nullable = false)]
    timings: Option<plotq_http::TimingsDoc>,
    /// Each service's numbers in the window, as the job state has them (`plot.ready`).
    #[schema(nullable = false, max_items = 8)]
    stats: Option<Vec<plotq_http::SeriesStatsDoc>>,
    /// The image's smallest text, image pixels (`plot.ready`).
    #[schema(nullable = false, minimum = 1, maximum = 4000)]
    text_px: Option<u32>,
    /// When the event happened, epoch ms.
    at_ms: i64,
}

/// `view.state`: a watched view's current state, sent first to a new subscriber.
#[derive(Serialize, ToSchema)]
pub struct ViewStateEventDoc {
    /// The view key (`service/kind/window/theme/WIDTHxHEIGHT`).
    view: String,
    #[schema(inline)]
    status: JobStatus,
    /// The view's latest job.
    #[schema(format = "uuid")]
    id: String,
    /// Why the latest job failed; `null` unless it did.
    #[schema(required = true)]
    error: Option<String>,
    /// When the latest job was requested, epoch ms.
    requested_ms: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ClosedReason {
    /// The ticket the stream was opened with expired: get a new one.
    CredentialExpired,
    /// The token was removed or replaced, or lost a scope or service the stream used.
    CredentialRevoked,
}

/// `stream.closed`: the last event of a stream whose credential lapsed.
#[derive(Serialize, ToSchema)]
pub struct StreamClosedDoc {
    #[schema(inline)]
    reason: ClosedReason,
}

/// The event payloads, security schemes and tag of the notifier's document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(PlotEventDoc, ViewStateEventDoc, StreamClosedDoc, ProblemDoc)),
    modifiers(&SecuritySchemes),
    tags((name = "events", description = "Server-Sent Events"))
)]
struct NotifierParts;

/// The notifier's part of the OpenAPI document: its route, as the router registers it
/// (so the route is documented exactly when it is served), and its payloads.
#[derive(Debug)]
pub struct NotifierDoc;

impl OpenApi for NotifierDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        let mut document = NotifierParts::openapi();
        document.merge(crate::routes().into_openapi());
        document
    }
}
