//! Expiry shared by the in-process ports that keep entries with a TTL (`MemoryCache`'s
//! keys and claims, `MemoryViews`' refresh claims): expiry times are epoch ms read from
//! the port's `Clock`. Part of the embedded standalone implementation, and of the
//! unit-test doubles.

use std::time::Duration;

/// `now + ttl` in epoch ms, saturating.
pub(super) fn expiry(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use crate::clock::ManualClock;
    use crate::memory::{MemoryCache, MemoryViews, test_state as state};
    use crate::{PlotCache, ViewRegistry};
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
        assert_eq!(cache.claim_request("k", a, ttl).await.unwrap(), None);
        clock.advance(Duration::from_millis(4_999));
        assert_eq!(cache.claim_request("k", b, ttl).await.unwrap(), Some(a));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            cache.claim_request("k", b, ttl).await.unwrap(),
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
