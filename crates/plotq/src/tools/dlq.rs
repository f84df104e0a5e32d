//! `plotq dlq list|retry`: operator access to the dead-letter queue — print the dead
//! letters (they stay in the queue) or re-enqueue one job or all of them. Reaches
//! RabbitMQ with the same settings as the roles; renders nothing.

use crate::config::tools::{DlqArgs, DlqCommand};
use plotq_amqp::AmqpQueue;
use plotq_domain::JobId;
use plotq_domain::wire::JobMessage;
use plotq_ports::JobQueue as _;

/// Runs `plotq dlq …`.
pub async fn run(command: DlqCommand) -> anyhow::Result<()> {
    command.args().validate()?;
    match command {
        DlqCommand::List { max, broker } => {
            for letter in queue(&broker).dead_letters(max).await? {
                let job = JobMessage::decode(&letter.body).ok();
                let line = serde_json::json!({
                    "id": job.as_ref().map(|j| j.id.to_string()),
                    "service": job.as_ref().map(|j| j.spec.service().to_string()),
                    "kind": job.as_ref().map(|j| j.spec.kind.as_str()),
                    "reason": letter.reason,
                    "attempts": letter.attempts,
                    "dead_at_ms": letter.dead_at_ms,
                    "bytes": letter.body.len(),
                });
                println!("{line}");
            }
        }
        DlqCommand::Retry { id, all, broker } => {
            let id = match (id, all) {
                (_, true) => None,
                (Some(raw), false) => Some(
                    JobId::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("{raw:?} is not a job id (a UUID)"))?,
                ),
                (None, false) => anyhow::bail!("give a job id or --all"),
            };
            let n = queue(&broker).replay_dead_letters(id).await?;
            if id.is_some() && n == 0 {
                anyhow::bail!(
                    "no dead letter for job {}",
                    id.map(|i| i.to_string()).unwrap_or_default()
                );
            }
            println!("{}", serde_json::json!({"replayed": n}));
        }
    }
    Ok(())
}

/// The broker's queues as `args` reach them.
fn queue(args: &DlqArgs) -> AmqpQueue {
    AmqpQueue::new(args.rabbit.amqp_config())
}
