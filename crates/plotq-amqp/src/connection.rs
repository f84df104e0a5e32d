//! Opening a connection to the broker: the URL may list several broker addresses
//! separated by commas (the nodes of a RabbitMQ cluster); a new connection tries them in
//! turn, starting from the last one that worked, within one connect timeout, then
//! declares the topology (`topology.rs`) on a new channel. Reconnecting after a loss is
//! the caller's (`publisher.rs`, the consumer's owner): lapin's own auto-recovery is not
//! used.

use crate::config::AmqpConfig;
use crate::redact::unavailable;
use crate::topology;
use lapin::{Channel, Connection, ConnectionProperties};
use plotq_ports::PortResult;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which broker address a new connection tries first: the last one that worked, or the
/// one after the last that failed (process-wide; every `AmqpQueue` of a process talks
/// to the same brokers).
static FIRST_ADDRESS: AtomicUsize = AtomicUsize::new(0);

/// A connection to the first broker address that accepts one, trying them in turn from
/// `FIRST_ADDRESS`, all within `config.timeout`: a node that refuses costs microseconds,
/// one that hangs spends the budget, and the next attempt starts past it.
async fn connect(config: &AmqpConfig) -> PortResult<Connection> {
    let addresses = config.addresses();
    let deadline = tokio::time::Instant::now() + config.timeout;
    let first = FIRST_ADDRESS.load(Ordering::Relaxed);
    let mut last_error = None;
    for k in 0..addresses.len() {
        let i = (first + k) % addresses.len();
        let attempt = Connection::connect(addresses[i], ConnectionProperties::default());
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(conn)) => {
                FIRST_ADDRESS.store(i, Ordering::Relaxed);
                return Ok(conn);
            }
            Ok(Err(e)) => last_error = Some(format!("connecting to broker {}: {e}", i + 1)),
            Err(_) => {
                FIRST_ADDRESS.store(i + 1, Ordering::Relaxed);
                return Err(unavailable(format!(
                    "timed out connecting to broker {}",
                    i + 1
                )));
            }
        }
        FIRST_ADDRESS.store(i + 1, Ordering::Relaxed);
    }
    Err(unavailable(
        last_error.unwrap_or_else(|| "no broker address".to_owned()),
    ))
}

/// A new connection and channel, with the topology declared.
pub(crate) async fn open(config: &AmqpConfig) -> PortResult<(Connection, Channel)> {
    let conn = connect(config).await?;
    let channel = conn.create_channel().await.map_err(unavailable)?;
    topology::declare(&channel, config).await?;
    Ok((conn, channel))
}
