//! The thin HTTP API: ingest samples, accept plot requests as queued jobs, serve job
//! states and images, list services, answer a window's statistics, issue browser read
//! tickets, serve plots by URL, the live dashboard page and the OpenAPI document.
//!
//! It never renders: a plot request is answered `202` as soon as the job is durably
//! queued, and only `GET /api/v1/render` waits for the workers, for a bounded time and
//! a bounded number of requests at once (the one image it makes is a fixed SVG card
//! saying why there is no plot, for `<img>` embeds). Authentication, limits, problem+json and health
//! come from `plotq-http`, shared with the notifier. The router is a plain function of
//! its state so tests can drive it in-process and binaries can merge it with others.
//!
//! Where things are (each module uses only those listed before it):
//!
//! - `streams.rs` — the OTLP cumulative streams' state (`OtlpStreams`);
//! - `hot.rs` — [`HotImages`]: done plots' images held in process, by digest;
//! - `state.rs` — [`ApiState`], [`ApiConfig`] and the per-process bounds it carries;
//! - `card.rs` — [`render_cards`]: the SVG an `<img>` embed gets for a render's error;
//! - `openapi.rs` — the document's schemas and its route (`GET /api/v1/openapi.json`);
//! - `query.rs` — `PlotQuery`, a plot as query parameters (render and stats);
//! - `access.rs` — `POST /api/v1/tickets` and the service allowlist checks;
//! - `services.rs` — `GET /api/v1/services`;
//! - `plots.rs` — `POST /api/v1/plots`, job states and images, and how a plot request
//!   becomes a job (single flight, charging, queueing; [`reuse_for`]);
//! - `render.rs` — `GET /api/v1/render` and `POST /api/v1/render/grants`;
//! - `stats.rs` — `GET /api/v1/stats`;
//! - `annotations.rs` — `POST` and `GET /api/v1/annotations` (marked moments that time
//!   plots draw);
//! - `ingest/` — the write path of samples ([`store_samples`], `store_batch`,
//!   idempotency), `POST /api/v1/metrics` (`metrics.rs`) and `POST /api/v1/ingest/caddy`
//!   (`caddy.rs`, with the pure Caddy access-log parser, [`caddy`], under `caddy/`),
//!   and OTLP/HTTP `POST /v1/traces` and `/v1/metrics` (`otlp.rs`, its decoding and
//!   mapping of spans and data points under `otlp/`);
//! - `dashboard.rs` — the dashboard page and its assets;
//! - here — every route of the api in one table ([`router`]), each registered with its
//!   entry in the OpenAPI document, which [`ApiDoc`] builds from the same table.

mod access;
mod annotations;
mod card;
mod dashboard;
mod hot;
mod ingest;
pub mod openapi;
mod plots;
mod query;
mod render;
mod services;
mod state;
mod stats;
mod streams;

pub use card::render_cards;
pub use dashboard::dashboard_router;
pub use hot::{DEFAULT_HOT_IMAGE_BYTES, HotImages};
pub use ingest::caddy;
pub use ingest::otlp::otlp_statuses;
pub use ingest::store_samples;
pub use openapi::openapi_router;
pub use plots::{reuse_for, reuse_horizon};
pub use state::{
    ApiConfig, ApiState, DEFAULT_MAX_BATCH_BUCKETS, DEFAULT_OTLP_MAX_STREAMS, RenderConfig,
    StatsSlots,
};
pub use streams::Streams as OtlpStreams;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of the api, each with its entry in the OpenAPI document.
fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(openapi::ApiInfo::openapi())
        .routes(routes!(ingest::metrics::ingest))
        .routes(routes!(ingest::caddy::ingest_caddy))
        .routes(routes!(ingest::otlp::traces))
        .routes(routes!(ingest::otlp::metrics))
        .routes(routes!(services::services))
        .routes(routes!(stats::stats))
        .routes(routes!(annotations::annotate, annotations::list))
        .routes(routes!(access::ticket))
        .routes(routes!(plots::request_plot))
        .routes(routes!(plots::plot_status))
        .routes(routes!(plots::plot_png))
        .routes(routes!(plots::plot_image))
        .routes(routes!(render::render))
        .routes(routes!(render::grant))
}

/// The `/api/v1` router (metrics, plots, services, tickets, stats, render) and OTLP's
/// `/v1/traces` and `/v1/metrics`. It expects the shared edge (`plotq_http::harden`)
/// around it, which installs the authenticator and limits, and [`otlp_statuses`] around
/// that, which answers the OTLP paths' errors as `google.rpc.Status`.
pub fn router(state: ApiState) -> Router {
    let limit = state.config.max_body_bytes;
    let (routes, _) = api_routes().split_for_parts();
    routes
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(state))
}

/// The api's OpenAPI document: every route of [`router`], of [`dashboard_router`] and
/// of [`openapi_router`].
#[derive(Debug)]
pub struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        let mut document = api_routes().into_openapi();
        document.merge(openapi::served());
        document.merge(dashboard::document());
        document.merge(ingest::otlp::StatusSchemas::openapi());
        document
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_schema_it_references() {
        let json = ApiDoc::openapi().to_json().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in json.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced, not defined"
            );
        }
    }
}
