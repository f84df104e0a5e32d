//! The retention TTL indexes: made at start with the configured expiry, and changed
//! in place (the same index, the new expiry) when a process starts with another.

use crate::helpers::{config, store_with};
use plotq_ports::Resolution;
use std::time::Duration;

#[tokio::test]
async fn the_retention_ttl_index_follows_the_setting() {
    let mut config = config();
    let store = store_with(&config).await;
    let ttl_of_hi = |indexes: Vec<(Vec<String>, Option<u64>)>| {
        indexes
            .into_iter()
            .find(|(keys, _)| keys == &["hi"])
            .and_then(|(_, ttl)| ttl)
    };
    assert_eq!(
        ttl_of_hi(store.index_ttls(None).await.unwrap()),
        Some(48 * 3600)
    );
    // Restarted with another retention: the same index, the new expiry.
    config.raw_retention = Duration::from_secs(3 * 3600);
    let store = store_with(&config).await;
    let indexes = store.index_ttls(None).await.unwrap();
    assert_eq!(
        indexes.iter().filter(|(keys, _)| keys == &["hi"]).count(),
        1
    );
    assert_eq!(ttl_of_hi(indexes), Some(3 * 3600));
    let store = &store;
    let rollup_ttl = |resolution| async move {
        store
            .index_ttls(Some(resolution))
            .await
            .unwrap()
            .into_iter()
            .find(|(keys, _)| keys == &["t"])
            .and_then(|(_, ttl)| ttl)
    };
    assert_eq!(rollup_ttl(Resolution::Minute).await, Some(90 * 86_400));
    // An hour stays until its last minute leaves.
    assert_eq!(rollup_ttl(Resolution::Hour).await, Some(90 * 86_400 + 3600));
}
