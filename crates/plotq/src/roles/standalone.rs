//! `plotq standalone` (`App::standalone`, and plain `plotq`): the api and notifier routes
//! on one listener, the workers, the hub, the refresher and the demo producer, over the
//! in-memory ports, composed from the same pieces as the distributed roles. Needs no
//! external service.

use super::api::api_routes;
use super::notifier::notifier_parts;
use super::worker::worker_task;
use super::{App, DEFAULT_API_ADDR, Http, Task, demo};
use crate::config::budget::limits_config;
use crate::config::cli::StandaloneArgs;
use futures::FutureExt;
use plotq_api::ApiState;
use plotq_notifier::refresh::RefreshPorts;
use plotq_ports::memory::{MemoryCache, MemoryEventBus, MemoryStore, MemoryViews};
use plotq_ports::{EventBus, JobQueue, MetricStore, PlotCache, ViewRegistry};
use plotq_worker::WorkerPorts;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl App {
    /// `plotq standalone`: the api and notifier routes on one listener, `workers`
    /// workers, the hub, the refresher and the demo, over the in-memory ports.
    pub async fn standalone(args: StandaloneArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let limits = limits_config(Some(&args.budget), Some(&args.api), Some(&args.events));
        let mut http = Http::bind(
            &args.http,
            &args.auth,
            limits,
            DEFAULT_API_ADDR,
            "standalone",
        )
        .await?;
        let store: Arc<dyn MetricStore> = Arc::new(MemoryStore::new(
            args.memory.memory_store_config(&args.retention),
        ));
        let queue: Arc<dyn JobQueue> = Arc::new(args.queue.memory_queue());
        let cache: Arc<dyn PlotCache> = Arc::new(MemoryCache::default());
        let events: Arc<dyn EventBus> = Arc::new(MemoryEventBus::new(args.bus.event_history));
        let views: Arc<dyn ViewRegistry> =
            Arc::new(MemoryViews::with_max_series(args.series.max_series));
        let stop = CancellationToken::new();
        let worker_ports = WorkerPorts {
            store: store.clone(),
            queue: queue.clone(),
            cache: cache.clone(),
            events: events.clone(),
        };
        let worker_config = args.worker.worker_config(&args.cache, &args.retention);
        let mut tasks: Vec<Task> = (0..args.standalone.workers.max(1))
            .map(|_| worker_task(worker_ports.clone(), worker_config.clone(), &stop))
            .collect();
        let (notifier_routes, notifier_tasks) = notifier_parts(
            RefreshPorts {
                registry: views.clone(),
                queue: queue.clone(),
                cache: cache.clone(),
                events,
            },
            &args.events,
            &args.cache,
            &stop,
        );
        tasks.extend(notifier_tasks);
        // How long the hours of new samples are remembered (past ranges' watermarks).
        let keep =
            plotq_api::reuse_horizon(&args.api.api_config(&args.cache, worker_config.sources));
        if !args.standalone.no_demo {
            tasks.push(
                demo::run(store.clone(), views.clone(), keep, stop.clone())
                    .map(Ok)
                    .boxed(),
            );
        }
        tasks.extend(http.tasks(Some((store.clone(), Some((views.clone(), keep)))), &stop));
        let common = http.common_routes(Vec::new(), Some(store.clone()));
        let state = ApiState {
            store,
            queue,
            cache,
            views,
            config: args.api.api_config(&args.cache, worker_config.sources),
        };
        let routes = api_routes(state, &args.api.events_url)
            .merge(notifier_routes)
            .merge(common);
        Ok(Self::new("standalone", http, routes, &[], stop, tasks))
    }
}
