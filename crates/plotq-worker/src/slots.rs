//! `RenderSlots`: a worker's render permits and its render threads, one thread per
//! permit, started with the worker and kept for its life. A render cannot be cancelled,
//! so a permit is held by the render until it really returns (see `attempt::render`).
//!
//! Renders run on the worker's own threads rather than tokio's shared blocking pool,
//! which hands each render to whichever of its threads is idle. Measured on a 2-core
//! machine (`plotq bench workers`, two workers in one process): on the pool the cores
//! were busy 1.51–1.53 of 2 (a scheduler trace showed renders woken onto the busy core
//! while the other idled), on threads of their own 1.62–1.70, and two workers went from
//! 1.62–1.65× one worker's renders to 1.79–1.95×.

use crate::config::WorkerConfig;
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::{Semaphore, oneshot};

/// A render for a render thread to run.
type Work = Box<dyn FnOnce() + Send>;

/// One worker's render permits and threads: a render holds a permit from before it
/// starts until it returns, even when its job already failed on the deadline, so the
/// worker never runs more renders at once than it has permits (and threads).
#[derive(Debug, Clone)]
pub struct RenderSlots {
    pub(crate) permits: Arc<Semaphore>,
    work: mpsc::SyncSender<Work>,
}

impl RenderSlots {
    /// `permits` render threads at most (at least one).
    pub fn new(permits: usize) -> Self {
        let permits = permits.max(1);
        // Never more queued than threads: a render is sent only under a permit.
        let (work, queue) = mpsc::sync_channel::<Work>(permits);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..permits {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("plotq-render-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next render.
                        let next = queue.lock().map(|q| q.recv());
                        match next {
                            Ok(Ok(render)) => render(),
                            // Every sender is gone: the worker is done.
                            _ => return,
                        }
                    }
                })
                .expect("a render thread starts");
        }
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            work,
        }
    }

    /// `config.prefetch` permits: one per job the worker processes at once.
    pub fn for_config(config: &WorkerConfig) -> Self {
        Self::new(config.prefetch.max(1) as usize)
    }

    /// Permits free right now (the rest are held by running renders).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `render` on a render thread; its result, or the message of its panic.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        render: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<std::thread::Result<T>> {
        let (done, result) = oneshot::channel();
        let work: Work = Box::new(move || {
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                render,
            )));
        });
        // A full queue cannot happen under a permit; a gone thread drops `done`.
        let _ = self.work.try_send(work);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;

    #[tokio::test]
    async fn a_render_thread_survives_a_panicking_render_and_renders_on() {
        let slots = RenderSlots::new(1);
        let panicked = slots.run(|| -> u32 { panic!("render double exploded") });
        assert!(panicked.await.expect("an answer").is_err());
        assert_eq!(slots.run(|| 7).await.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn renders_run_at_once_up_to_the_permits_each_on_its_own_thread() {
        let slots = RenderSlots::new(2);
        // Each render waits for the other: they finish only if both run at once.
        let barrier = Arc::new(Barrier::new(2));
        let render = |b: Arc<Barrier>| {
            move || {
                b.wait();
                std::thread::current().name().map(str::to_owned)
            }
        };
        let both = async {
            tokio::join!(
                slots.run(render(barrier.clone())),
                slots.run(render(barrier.clone()))
            )
        };
        let (a, b) = tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("two renders ran at once");
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        assert!(a.as_deref().is_some_and(|n| n.starts_with("plotq-render-")));
        assert_ne!(a, b, "on two threads");
    }
}
