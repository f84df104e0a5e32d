//! Wall-clock time, behind a port so tests can hold it still: `Clock` (`now_ms`),
//! `SystemClock` (the real one), `ManualClock` (set and advanced by a test), and
//! [`now_ms`], the one place production code reads the wall clock.
//!
//! Times are epoch milliseconds as `i64`, the unit of every timestamp plotq stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The wall clock, epoch milliseconds. A time before 1970 (a badly set clock) reads 0.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now, in epoch milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock ([`now_ms`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to. Clones share the same time, so a test keeps
/// one and hands another to the code under test.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `now_ms` until it is set or advanced.
    pub fn new(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    /// Sets the time (backwards too: a wall clock may jump).
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_move_only_when_told_and_clones_share_the_time() {
        let clock = ManualClock::new(1_000);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now_ms(), 1_000);
        assert_eq!(shared.now_ms(), 1_000, "time stands still");
        clock.advance(Duration::from_millis(250));
        assert_eq!(shared.now_ms(), 1_250);
        clock.set(500);
        assert_eq!(shared.now_ms(), 500, "set may go backwards");
        clock.advance(Duration::MAX);
        assert_eq!(shared.now_ms(), i64::MAX, "advancing saturates");
        assert_eq!(ManualClock::default().now_ms(), 0);
    }

    #[test]
    fn the_system_clock_is_the_wall_clock() {
        let before = now_ms();
        let read = SystemClock.now_ms();
        assert!(before <= read && read <= now_ms());
        // After 2020-01-01: a real epoch time, in milliseconds.
        assert!(read > 1_577_836_800_000, "{read}");
    }
}
