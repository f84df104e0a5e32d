//! Redis settings (`RedisSettings`: one node or a cluster's seed nodes) and what they
//! become: `plotq_redis::Topology` and `RedisConfig`. Connecting is the roles'.

use super::deps::DependencySettings;
use super::values::Validate;
use clap::Args;
use clap::builder::BoolishValueParser;
use plotq_redis::RedisConfig;

/// Redis: api, worker, notifier.
#[derive(Debug, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisSettings {
    /// Redis URL (credentials included; never logged), or a Redis Cluster's seed nodes
    /// as several URLs separated by commas
    /// (`redis://:pw@10.0.0.1:6379,redis://:pw@10.0.0.2:6379`).
    #[arg(
        long,
        env = "PLOTQ_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// Talk to a Redis Cluster (slot routing, MOVED/ASK) even when PLOTQ_REDIS_URL
    /// names one seed node, e.g. a cluster's single DNS name; several URLs always mean
    /// a cluster.
    #[arg(long, env = "PLOTQ_REDIS_CLUSTER", default_value_t = false,
          action = clap::ArgAction::Set, value_name = "BOOL",
          value_parser = BoolishValueParser::new())]
    pub redis_cluster: bool,
}

impl Validate for RedisSettings {
    fn validate(&self) -> anyhow::Result<()> {
        self.topology()?;
        Ok(())
    }
}

impl RedisSettings {
    /// One node or a cluster, as `PLOTQ_REDIS_URL` and `PLOTQ_REDIS_CLUSTER` say.
    pub fn topology(&self) -> anyhow::Result<plotq_redis::Topology> {
        plotq_redis::Topology::parse(&self.redis_url, self.redis_cluster)
            .map_err(|e| anyhow::anyhow!("PLOTQ_REDIS_URL: {e}"))
    }

    /// The Redis adapters' configuration, with a new Redis breaker; `event_history` is
    /// the event stream's length (for the roles that write events).
    pub fn redis_config(&self, deps: &DependencySettings, event_history: usize) -> RedisConfig {
        RedisConfig {
            url: self.redis_url.clone(),
            cluster: self.redis_cluster,
            namespace: deps.scoped(":"),
            timeout: deps.dependency_timeout(),
            event_history,
            breaker: deps.breaker("redis"),
        }
    }
}

/// `RedisSettings::redis_config`, under the name the tests and `plotq::app` know.
pub fn redis_config(
    deps: &DependencySettings,
    redis: &RedisSettings,
    event_history: usize,
) -> RedisConfig {
    redis.redis_config(deps, event_history)
}
