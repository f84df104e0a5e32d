//! Connecting the real adapters of the distributed roles (MongoDB, RabbitMQ, Redis) from
//! their settings' configurations, logging where each is (never a password), and the
//! readiness probe of each, with the breaker its background prober keeps up to date.
//! A dependency that is down at start is not fatal: readiness reports it until it answers.

use crate::config::deps::{DependencySettings, redact};
use crate::config::queue::BrokerAccess;
use crate::config::redis::RedisSettings;
use crate::config::store::MongoSettings;
use futures::FutureExt;
use plotq_amqp::AmqpQueue;
use plotq_http::Probe;
use plotq_mongo::MongoStore;
use plotq_ports::{Breaker, EventBus as _, JobQueue as _, MetricStore as _, PlotCache as _};
use plotq_redis::{RedisCache, RedisConfig};
use std::sync::Arc;

/// A readiness probe calling `ping()` on a shared adapter.
macro_rules! probe {
    ($name:literal, $adapter:expr) => {{
        let adapter = $adapter.clone();
        Probe {
            name: $name,
            check: Arc::new(move || {
                let adapter = adapter.clone();
                async move { adapter.ping().await }.boxed()
            }),
        }
    }};
}

/// A dependency a role watches: its readiness probe and its breaker.
pub(super) type Watched = (Probe, Breaker);

/// The store, the queue and the cache: what the api and a worker both reach.
pub(super) struct Backends {
    pub store: Arc<MongoStore>,
    pub queue: Arc<AmqpQueue>,
    /// The Redis adapters' configuration (one breaker for all of them).
    pub redis: RedisConfig,
    pub cache: Arc<RedisCache>,
}

impl Backends {
    /// Connects MongoDB, RabbitMQ and Redis (`event_history`: the event stream's length,
    /// for the roles that write events).
    pub async fn connect(
        deps: &DependencySettings,
        mongo_settings: &MongoSettings,
        rabbit: &BrokerAccess,
        redis_settings: &RedisSettings,
        event_history: usize,
    ) -> anyhow::Result<Self> {
        let store = mongo(deps, mongo_settings).await?;
        let queue = amqp(rabbit).await;
        let redis = redis(deps, redis_settings, event_history);
        let cache = Arc::new(RedisCache::new(&redis)?);
        Ok(Self {
            store,
            queue,
            redis,
            cache,
        })
    }

    /// The three dependencies as the role watches them.
    pub fn watched(&self) -> Vec<Watched> {
        vec![
            (probe!("mongodb", self.store), self.store.breaker().clone()),
            watch_rabbitmq(&self.queue),
            (probe!("redis", self.cache), self.redis.breaker.clone()),
        ]
    }
}

/// RabbitMQ as a role watches it.
pub(super) fn watch_rabbitmq(queue: &Arc<AmqpQueue>) -> Watched {
    (probe!("rabbitmq", queue), queue.config().breaker.clone())
}

/// Redis as a role watches it, through the event bus (the notifier's first use of it).
pub(super) fn watch_redis_bus(
    bus: &Arc<plotq_redis::RedisEventBus>,
    redis: &RedisConfig,
) -> Watched {
    (probe!("redis", bus), redis.breaker.clone())
}

/// The readiness probes of `watched`.
pub(super) fn probes(watched: &[Watched]) -> Vec<Probe> {
    watched.iter().map(|(probe, _)| probe.clone()).collect()
}

/// Connects the MongoDB store and creates its indexes (retried at the next start when
/// MongoDB is not there yet).
async fn mongo(
    deps: &DependencySettings,
    mongo: &MongoSettings,
) -> anyhow::Result<Arc<MongoStore>> {
    let config = mongo.mongo_config(deps);
    tracing::info!(url = %redact(&config.url), database = %config.database, "using mongodb");
    let store = MongoStore::new(&config).await?;
    if let Err(e) = store.ensure_indexes().await {
        // Not fatal: readiness reports MongoDB until it answers; indexes are retried at the next start.
        tracing::warn!(error = %e, "could not create indexes yet");
    }
    Ok(Arc::new(store))
}

/// The RabbitMQ queue, pinged once (it keeps trying to connect).
pub(super) async fn amqp(rabbit: &BrokerAccess) -> Arc<AmqpQueue> {
    let config = rabbit.amqp_config();
    tracing::info!(url = %redact(&rabbit.broker.amqp_url), queue = %config.queue(), "using rabbitmq");
    let queue = AmqpQueue::new(config);
    if let Err(e) = queue.ping().await {
        tracing::warn!(error = %e, "rabbitmq not reachable yet; will keep trying");
    }
    Arc::new(queue)
}

/// The Redis adapters' configuration, logged.
pub(super) fn redis(
    deps: &DependencySettings,
    redis: &RedisSettings,
    event_history: usize,
) -> RedisConfig {
    let cluster = redis.topology().is_ok_and(|t| t.is_cluster());
    tracing::info!(url = %redact(&redis.redis_url), cluster, "using redis");
    redis.redis_config(deps, event_history)
}
