//! `plotq worker` (`App::worker`): binds (health, readiness and metrics only), then
//! connects MongoDB, RabbitMQ and Redis, and runs one rendering worker
//! (`worker_task`, which standalone runs too). Serves no API.

use super::adapters::{Backends, probes};
use super::{App, DEFAULT_WORKER_ADDR, Http, Task};
use crate::config::budget::limits_config;
use crate::config::cli::WorkerArgs;
use futures::FutureExt;
use plotq_redis::RedisEventBus;
use plotq_worker::{WorkerConfig, WorkerPorts};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A rendering worker over `ports` (the same for `worker` and `standalone`).
pub(super) fn worker_task(
    ports: WorkerPorts,
    config: WorkerConfig,
    stop: &CancellationToken,
) -> Task {
    let stop = stop.clone();
    async move {
        plotq_worker::run_until_stopped(ports, config, stop).await;
        Ok(())
    }
    .boxed()
}

impl App {
    /// `plotq worker`: binds (health, readiness and metrics only), then connects
    /// MongoDB, RabbitMQ and Redis.
    pub async fn worker(args: WorkerArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(None, None, None);
        let mut http = Http::bind(
            &args.http,
            &args.auth,
            limits,
            DEFAULT_WORKER_ADDR,
            "worker",
        )
        .await?;
        let backends = Backends::connect(
            &args.rabbit.deps,
            &args.mongo,
            &args.rabbit,
            &args.redis,
            args.bus.event_history,
        )
        .await?;
        let watched = backends.watched();
        let mut config = args
            .worker
            .worker_config(&args.cache, &args.mongo.retention);
        // A job needs the store and the cache; the broker's outages end its consumer.
        config.breakers = vec![
            backends.store.breaker().clone(),
            backends.redis.breaker.clone(),
        ];
        config.outage_budget = args.outage.outage_budget;
        let ports = WorkerPorts {
            events: Arc::new(RedisEventBus::new(&backends.redis)?),
            store: backends.store,
            queue: backends.queue,
            cache: backends.cache,
        };
        let stop = CancellationToken::new();
        let mut tasks = http.tasks(None, &stop);
        tasks.push(worker_task(ports, config, &stop));
        let routes = http.common_routes(probes(&watched), None);
        Ok(Self::new("worker", http, routes, &watched, stop, tasks))
    }
}
