//! The job queue: `QueueSettings` (bounds and retry tiers, shared by RabbitMQ and
//! standalone's in-process queue), `BrokerSettings` (RabbitMQ) and `BrokerAccess` (what
//! reaching the broker takes), with what they become: `plotq_amqp::AmqpConfig` and
//! standalone's `MemoryQueue`.

use super::deps::DependencySettings;
use super::values::{self, Validate, at_least};
use clap::Args;
use plotq_amqp::AmqpConfig;
use plotq_ports::memory::MemoryQueue;
use std::time::Duration;

/// The job queue's bounds and retry tiers: every role that declares the queues (they
/// must agree), and standalone's in-process queue.
#[derive(Debug, Args)]
#[command(next_help_heading = "Queue")]
pub struct QueueSettings {
    /// Most jobs waiting in the queue before plot requests are refused.
    #[arg(long, env = "PLOTQ_MAX_QUEUED_JOBS", default_value_t = 10_000)]
    pub max_queued_jobs: u32,
    /// Backoff before each retry of a transiently failing job (bare numbers are seconds;
    /// one retry queue per tier; the last tier repeats).
    #[arg(
        long,
        env = "PLOTQ_RETRY_DELAYS",
        default_value = "1,5,25",
        value_delimiter = ',',
        value_name = "DURATION",
        value_parser = values::secs()
    )]
    pub retry_delays: Vec<Duration>,
}

impl Validate for QueueSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least(self.max_queued_jobs, 1, "PLOTQ_MAX_QUEUED_JOBS")?;
        Ok(())
    }
}

impl QueueSettings {
    /// Standalone's in-process queue, with the same bound and retry tiers.
    pub fn memory_queue(&self) -> MemoryQueue {
        MemoryQueue::with_retry_delays(self.max_queued_jobs as usize, self.retry_delays.clone())
    }
}

/// RabbitMQ: api, worker, notifier, dlq.
#[derive(Debug, Args)]
#[command(next_help_heading = "RabbitMQ")]
pub struct BrokerSettings {
    /// RabbitMQ URL (credentials included; never logged), or the nodes of a RabbitMQ
    /// cluster as several URLs separated by commas, tried in turn.
    #[arg(
        long,
        env = "PLOTQ_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,
    /// Deliveries of one job before the broker gives up on it.
    #[arg(long, env = "PLOTQ_DELIVERY_LIMIT", default_value_t = 20)]
    pub delivery_limit: u32,
}

impl Validate for BrokerSettings {
    fn validate(&self) -> anyhow::Result<()> {
        at_least(self.delivery_limit, 1, "PLOTQ_DELIVERY_LIMIT")?;
        plotq_amqp::check_url(&self.amqp_url)
            .map_err(|e| anyhow::anyhow!("PLOTQ_AMQP_URL: {e}"))?;
        Ok(())
    }
}

/// Reaching RabbitMQ: the shared namespace and dependency timeout, the broker and the
/// work queue's limits (api, worker, notifier and `dlq`).
#[derive(Debug, Args)]
pub struct BrokerAccess {
    #[command(flatten)]
    pub deps: DependencySettings,
    #[command(flatten)]
    pub broker: BrokerSettings,
    #[command(flatten)]
    pub queue: QueueSettings,
}

impl Validate for BrokerAccess {
    fn validate(&self) -> anyhow::Result<()> {
        self.deps.validate()?;
        self.broker.validate()?;
        self.queue.validate()
    }
}

impl BrokerAccess {
    /// The queue settings of a role, as the AMQP adapter (and the test harness) names
    /// them, with a new RabbitMQ breaker.
    pub fn amqp_config(&self) -> AmqpConfig {
        let Self {
            deps,
            broker,
            queue,
        } = self;
        AmqpConfig {
            url: broker.amqp_url.clone(),
            namespace: deps.scoped("."),
            max_queued_jobs: queue.max_queued_jobs,
            delivery_limit: broker.delivery_limit,
            timeout: deps.dependency_timeout(),
            retry_delays: queue.retry_delays.clone(),
            breaker: deps.breaker("rabbitmq"),
        }
    }
}

/// `BrokerAccess::amqp_config`, under the name the tests and `plotq::app` know.
pub fn amqp_config(rabbit: &BrokerAccess) -> AmqpConfig {
    rabbit.amqp_config()
}
