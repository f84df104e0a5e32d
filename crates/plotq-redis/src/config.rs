//! `RedisConfig`: where Redis is, the key namespace, the bound on every call, the event
//! history kept, and the process's Redis breaker. Settings only: reading them
//! (`Topology::parse` for the URL) and connecting are elsewhere.

use plotq_ports::Breaker;
use std::time::Duration;

/// Connection settings shared by the cache, the event bus and the view registry.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// One `redis://` URL, or several separated by commas: the seed nodes of a Redis
    /// Cluster (any reachable one is enough to learn the others).
    pub url: String,
    /// Talk to a Redis Cluster even when `url` names a single seed node (several nodes
    /// always mean a cluster).
    pub cluster: bool,
    /// Prefix of every key, so deployments can share one Redis.
    pub namespace: String,
    /// Bound on each command (and on connecting).
    pub timeout: Duration,
    /// Events kept in the stream for replay (approximate, trimmed on write).
    pub event_history: usize,
    /// What this process believes about Redis; every adapter built from this config
    /// shares it (and should share it with every other Redis adapter of the process).
    pub breaker: Breaker,
}
