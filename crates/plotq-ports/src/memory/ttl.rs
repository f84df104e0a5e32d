//! Expiry shared by the in-process ports that keep entries with a TTL (`MemoryCache`'s
//! keys and claims, `MemoryViews`' refresh claims): expiry times are epoch ms read from
//! the port's `Clock`. Part of the embedded standalone implementation, and of the
//! unit-test doubles.

use std::time::Duration;

/// `now + ttl` in epoch ms, saturating.
pub(super) fn expiry(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}
