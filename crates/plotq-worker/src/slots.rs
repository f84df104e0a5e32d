//! `RenderSlots`: a worker's render permits, one per render thread it may have alive.
//! Renders run on the blocking pool, which cannot be cancelled, so a permit is held by
//! the render thread until the render really returns (see `attempt::render`).

use crate::config::WorkerConfig;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One worker's render permits: a render thread holds one from before it starts until
/// the render returns, even when its job already failed on the deadline, so the worker
/// never has more render threads alive than it has permits.
#[derive(Debug, Clone)]
pub struct RenderSlots(pub(crate) Arc<Semaphore>);

impl RenderSlots {
    /// `permits` render threads at most (at least one).
    pub fn new(permits: usize) -> Self {
        Self(Arc::new(Semaphore::new(permits.max(1))))
    }

    /// `config.prefetch` permits: one per job the worker processes at once.
    pub fn for_config(config: &WorkerConfig) -> Self {
        Self::new(config.prefetch.max(1) as usize)
    }

    /// Permits free right now (the rest are held by running renders).
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}
