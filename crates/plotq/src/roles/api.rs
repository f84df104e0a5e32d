//! `plotq api` (`App::api`): binds, then connects MongoDB, RabbitMQ and Redis, and
//! serves ingest, plots, the dashboard and the OpenAPI document (`api_routes`, which
//! standalone serves too). Renders nothing and writes no events.

use super::adapters::{Backends, probes};
use super::{App, DEFAULT_API_ADDR, Http, openapi_document};
use crate::config::budget::limits_config;
use crate::config::cli::ApiArgs;
use axum::Router;
use plotq_api::{ApiConfig, ApiState};
use plotq_ports::{MetricStore, PlotCache, ViewRegistry};
use plotq_redis::RedisViews;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The api writes no events; its Redis adapters are built with the default history.
const DEFAULT_EVENT_HISTORY: usize = 10_000;

/// The routes of the api (the same for `api` and `standalone`): ingest, plots, the
/// dashboard and the OpenAPI document.
pub(super) fn api_routes(state: ApiState, events_url: &str) -> Router {
    plotq_api::router(state)
        .merge(plotq_api::dashboard_router(events_url))
        .merge(plotq_api::openapi_router(&openapi_document()))
}

impl App {
    /// `plotq api`: binds, then connects MongoDB, RabbitMQ and Redis.
    pub async fn api(args: ApiArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), Some(&args.api), None);
        let mut http = Http::bind(&args.http, &args.auth, limits, DEFAULT_API_ADDR, "api").await?;
        let deps = &args.rabbit.deps;
        let backends = Backends::connect(
            deps,
            &args.mongo,
            &args.rabbit,
            &args.redis,
            DEFAULT_EVENT_HISTORY,
        )
        .await?;
        let watched = backends.watched();
        // Marks when this Redis's data begins (if nothing has yet), so that a job whose
        // state goes missing later can be told lost (410) from unknown (404).
        if let Err(e) = backends
            .cache
            .data_since(plotq_ports::clock::now_ms())
            .await
        {
            tracing::warn!(error = %e, "redis not reachable yet; will keep trying");
        }
        let views =
            Arc::new(RedisViews::new(&backends.redis)?.with_max_series(args.series.max_series));
        let stop = CancellationToken::new();
        // `GET /api/v1/stats` reads as the workers do.
        let sources = args.sources.source_policy(&args.mongo.retention);
        let keep = plotq_api::reuse_horizon(&args.api.api_config(&args.cache, sources));
        let tasks = http.tasks(
            Some((
                backends.store.clone() as Arc<dyn MetricStore>,
                Some((views.clone() as Arc<dyn ViewRegistry>, keep)),
            )),
            &stop,
        );
        let common = http.common_routes(probes(&watched), None);
        let state = ApiState {
            store: backends.store,
            queue: backends.queue,
            cache: backends.cache,
            views,
            config: ApiConfig {
                // One ingest's whole write (every chunk, every rollup update) within the
                // dependency timeout, however many documents it is.
                store_timeout: Some(deps.dependency_timeout()),
                ..args.api.api_config(&args.cache, sources)
            },
        };
        let routes = api_routes(state, &args.api.events_url).merge(common);
        Ok(Self::new("api", http, routes, &watched, stop, tasks))
    }
}
