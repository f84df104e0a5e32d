//! `plotq notifier` (`App::notifier`): binds, then connects Redis and RabbitMQ, and
//! serves the event streams with the hub's bus reader and the refresher that queues
//! re-renders of watched views (`notifier_parts`, which standalone runs too). Renders
//! nothing and reads no samples.

use super::adapters::{self, probes, watch_rabbitmq, watch_redis_bus};
use super::{App, DEFAULT_NOTIFIER_ADDR, Http, Task};
use crate::config::budget::limits_config;
use crate::config::cache::CacheSettings;
use crate::config::cli::NotifierArgs;
use crate::config::events::EventSettings;
use axum::Router;
use futures::FutureExt;
use plotq_notifier::Hub;
use plotq_notifier::refresh::RefreshPorts;
use plotq_redis::{RedisCache, RedisEventBus, RedisViews};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The notifier's pieces (the same for `notifier` and `standalone`): the SSE routes, and
/// the hub's bus reader and the refresher as tasks.
pub(super) fn notifier_parts(
    refresh: RefreshPorts,
    events: &EventSettings,
    cache: &CacheSettings,
    stop: &CancellationToken,
) -> (Router, Vec<Task>) {
    let hub = Hub::new(
        refresh.events.clone(),
        refresh.registry.clone(),
        events.notifier_config(),
        stop.clone(),
    );
    let tail = hub.clone().run_until_stopped().map(Ok).boxed();
    let refresher = plotq_notifier::refresh::run_until_stopped(
        refresh,
        events.refresh_config(cache),
        stop.clone(),
    )
    .map(Ok)
    .boxed();
    (plotq_notifier::router(hub), vec![tail, refresher])
}

impl App {
    /// `plotq notifier`: binds, then connects Redis and RabbitMQ.
    pub async fn notifier(args: NotifierArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), None, Some(&args.events));
        let mut http = Http::bind(
            &args.http,
            &args.auth,
            limits,
            DEFAULT_NOTIFIER_ADDR,
            "notifier",
        )
        .await?;
        let redis = adapters::redis(&args.rabbit.deps, &args.redis, args.bus.event_history);
        let bus = Arc::new(RedisEventBus::new(&redis)?);
        let views = Arc::new(RedisViews::new(&redis)?.with_max_series(args.series.max_series));
        let queue = adapters::amqp(&args.rabbit).await;
        let watched = vec![watch_redis_bus(&bus, &redis), watch_rabbitmq(&queue)];
        let stop = CancellationToken::new();
        let (routes, mut tasks) = notifier_parts(
            RefreshPorts {
                registry: views,
                queue,
                cache: Arc::new(RedisCache::new(&redis)?),
                events: bus,
            },
            &args.events,
            &args.cache,
            &stop,
        );
        let routes = routes.merge(http.common_routes(probes(&watched), None));
        tasks.extend(http.tasks(None, &stop));
        Ok(Self::new("notifier", http, routes, &watched, stop, tasks))
    }
}
