//! `JobQueue` on RabbitMQ: the only crate that speaks AMQP. This file only names the
//! parts; each says what it owns.
//!
//! - `config.rs`: `AmqpConfig` (where the broker is, the queue's limits) and the names
//!   and retry tiers derived from it; `check_url`.
//! - `topology.rs`: what every process declares — the work exchange and quorum queue
//!   (bounded, with a delivery limit), one delay queue per distinct retry delay, the
//!   dead-letter queue.
//! - `connection.rs`: a new connection, trying the broker addresses of a
//!   comma-separated URL in turn, with the topology declared. A lost connection is not
//!   hidden (lapin's own auto-recovery is not used): publishing reconnects on the next
//!   call, and a consumer ends so its owner can reconnect.
//! - `publisher.rs`: confirmed, `mandatory`, persistent publishing on
//!   [`PUBLISH_CHANNELS`] channels with one unconfirmed publish each, which bounds how
//!   far a flood overshoots the queue's length limit.
//! - `consumer.rs`: consumers with manual acks and a prefetch limit.
//! - `headers.rs`: the AMQP headers of retries and dead letters (no I/O).
//! - `dead_letters.rs`: listing and replaying the dead-letter queue.
//! - `queue.rs`: `AmqpQueue`, the port, each publish behind the RabbitMQ breaker.
//! - `redact.rs`: every error names `rabbitmq` and carries no credentials.

mod config;
mod connection;
mod consumer;
mod dead_letters;
mod headers;
mod publisher;
mod queue;
mod redact;
mod topology;

pub use config::{AmqpConfig, check_url};
pub use publisher::PUBLISH_CHANNELS;
pub use queue::AmqpQueue;
