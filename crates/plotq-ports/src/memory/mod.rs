//! In-process implementations of every port: the embedded standalone mode (`plotq`
//! with no external services) and fast doubles for unit tests.
//!
//! They keep the same promises as the real adapters where it matters to callers —
//! bounded memory (retention, queue bound, TTLs, history length, series-list bound),
//! inclusive data windows, retry tiers taken in order, redelivery of rejected jobs,
//! single-flight claims released only by their holder, exclusive event ids — but nothing
//! survives the process. Job and view states are kept in their wire form
//! (`wire::encode_state`, `wire::encode_view_state`), so they go through the same
//! versioning and validation as in Redis.
//!
//! Expiry (cache TTLs, view claims) and event ids follow a `Clock` (the system clock
//! unless `with_clock` gives a `ManualClock`), so tests move time instead of sleeping.
//! Event ids are made as Redis makes stream ids: `<clock ms>-<seq>`, the sequence
//! counting events within one millisecond, and never going backwards when the clock does.
//!
//! One file per port, as the port traits are (`crate::store`, `crate::queue`, …):
//! `store/` (`MemoryStore`, with its data, memory accounting and packed rollups in
//! submodules), `queue.rs` (`MemoryQueue`, its consumer and acker), `cache.rs`
//! (`MemoryCache`), `events.rs` (`MemoryEventBus`), `views.rs` (`MemoryViews`); `ttl.rs`
//! is the expiry they share (tested here, through the two ports that use it).

mod cache;
mod events;
mod queue;
mod store;
mod ttl;
mod views;

pub use cache::MemoryCache;
pub use events::MemoryEventBus;
pub use queue::MemoryQueue;
pub use store::{MemoryStore, MemoryStoreConfig};
pub use views::{DEFAULT_MAX_SERIES, MemoryViews, SERIES_RETENTION_MS};

#[cfg(test)]
mod tests {
    use super::{MemoryCache, MemoryViews};
    use crate::cache::{PlotCache, RequestClaim};
    use crate::clock::ManualClock;
    use crate::contract::queued_state as state;
    use crate::views::ViewRegistry;
    use plotq_domain::JobId;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn expiry_follows_the_clock() {
        let clock = ManualClock::new(1_000_000);
        let cache = MemoryCache::default().with_clock(Arc::new(clock.clone()));
        let s = state();
        cache.put_state(&s, Duration::from_secs(10)).await.unwrap();
        let (a, b) = (JobId::new_random(), JobId::new_random());
        let ttl = Duration::from_secs(5);
        let claim = |job| RequestClaim { key: "k", job, ttl };
        assert_eq!(cache.claim_request(&claim(a)).await.unwrap(), None);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(cache.claim_request(&claim(b)).await.unwrap(), Some(a));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            cache.claim_request(&claim(b)).await.unwrap(),
            None,
            "a's claim lapsed"
        );
        assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s.clone()));
        clock.advance(Duration::from_secs(5));
        assert_eq!(cache.get_state(s.id).await.unwrap(), None);

        let views = MemoryViews::default().with_clock(Arc::new(clock.clone()));
        let debounce = Duration::from_secs(3);
        assert!(views.claim("v", debounce).await.unwrap());
        clock.advance(Duration::from_millis(2_999));
        assert!(!views.claim("v", debounce).await.unwrap());
        clock.advance(Duration::from_millis(1));
        assert!(views.claim("v", debounce).await.unwrap());
    }
}
