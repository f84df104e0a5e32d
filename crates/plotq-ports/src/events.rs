//! The `EventBus` port, the fan-out of plot events to every notifier with a bounded
//! shared history, and `StoredEvent` (an event with its `EventId` on the bus).
//! Implemented by `plotq-redis` and `memory::MemoryEventBus`.

use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::wire::{EventId, PlotEvent};
use std::time::Duration;

/// An event as stored on the bus: its position (unique, increasing in publish order)
/// and body.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: EventId,
    pub event: PlotEvent,
}

/// The fan-out of plot events to every notifier, with a bounded shared history. Events
/// are positioned by `EventId`s, ordered as they were published; what they look like on
/// the bus itself is the adapter's business.
/// Most events one `EventBus::read_after` returns (a reader asks again for more).
pub const READ_BATCH: usize = 512;

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Appends an event; returns its id.
    async fn publish(&self, event: &PlotEvent) -> PortResult<EventId>;
    /// Events after `after` (exclusive; `None` = only events published from now on),
    /// waiting up to `block` for the first one. At most [`READ_BATCH`] events.
    async fn read_after(
        &self,
        after: Option<EventId>,
        block: Duration,
    ) -> PortResult<Vec<StoredEvent>>;
    /// The id of the newest event, if any: where a fresh reader starts.
    async fn last_id(&self) -> PortResult<Option<EventId>>;
    /// History after `after` (exclusive; `EventId::ZERO` = all of it), oldest first, at
    /// most `max`, without waiting.
    async fn history_after(&self, after: EventId, max: usize) -> PortResult<Vec<StoredEvent>>;
    async fn ping(&self) -> PortResult<()>;
}
