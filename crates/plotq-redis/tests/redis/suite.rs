//! The Redis adapters' suite, run on every `Target` — by `single.rs` against the single
//! Redis on 127.0.0.1:6379 and by `cluster.rs` against the 3-master Redis Cluster on
//! 127.0.0.1:7101-7103 (`suite_tests!` makes one `#[tokio::test]` of each function
//! here): TTLs on every key, stream fan-out, replay and history bound, single-flight
//! claims and their release, the bounded series list, the hours of past ranges,
//! versioned states, when the data begins. Each test
//! works in a random namespace and deletes the keys it created, one key per command (a
//! cluster refuses commands whose keys are in different slots).

use crate::helpers::{Target, config, tag};
use plotq_domain::JobId;
use plotq_domain::wire::{EventId, EventKind, PlotEvent};
use plotq_ports::contract::{self, queued_state as state};
use plotq_ports::{EventBus, PlotCache, PortError, RequestClaim};
use plotq_redis::{RedisCache, RedisEventBus};
use redis::AsyncCommands;
use std::sync::Arc;
use std::time::Duration;

/// One `#[tokio::test]` per test of the suite, against `$target` (a `Target`).
macro_rules! suite_tests {
    ($target:ty) => {
        $crate::suite::suite_tests!(
            @each $target;
            states_and_pngs_round_trip_with_ttls,
            events_fan_out_and_replay,
            history_is_bounded,
            unreachable_redis_is_unavailable_not_a_hang,
            view_leases_claims_and_states,
            single_flight_claims_are_released_only_by_their_holder,
            series_list_is_bounded_and_expires,
            past_ranges_read_their_own_hours,
            stored_states_are_versioned,
            a_probe_marks_when_the_data_begins,
        );
    };
    (@each $target:ty; $($test:ident,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                $crate::suite::$test::<$target>().await;
            }
        )*
    };
}
pub(crate) use suite_tests;

pub async fn states_and_pngs_round_trip_with_ttls<T: Target>() {
    let config = config::<T>(10);
    let cache = RedisCache::new(&config).unwrap();
    let s = state();
    cache.put_state(&s, Duration::from_secs(30)).await.unwrap();
    cache
        .put_image(s.id, b"png-bytes", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(
        cache.get_image(s.id).await.unwrap().as_deref(),
        Some(&b"png-bytes"[..])
    );
    assert_eq!(cache.get_image(JobId::new_random()).await.unwrap(), None);
    let mut conn = T::raw().await;
    let state_ttl: i64 = conn
        .ttl(format!(
            "{}:state:{}",
            config.namespace,
            tag::<T>(&s.id.to_string())
        ))
        .await
        .unwrap();
    let png_ttl: i64 = conn
        .ttl(format!(
            "{}:img:{}",
            config.namespace,
            tag::<T>(&s.id.to_string())
        ))
        .await
        .unwrap();
    assert!((1..=30).contains(&state_ttl), "state TTL {state_ttl}");
    assert!((1..=20).contains(&png_ttl), "png TTL {png_ttl}");
}

pub async fn events_fan_out_and_replay<T: Target>() {
    let config = config::<T>(100);
    let bus = Arc::new(RedisEventBus::new(&config).unwrap());
    let other_replica = RedisEventBus::new(&config).unwrap();
    let s = state();
    let first = bus
        .publish(&PlotEvent::for_job(&s, EventKind::PlotReady, 1))
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        other_replica
            .read_after(Some(first), Duration::from_secs(5))
            .await
            .unwrap()
    });
    // The blocking read is issued before this publish or after it; either way it sees it.
    let second = bus
        .publish(&PlotEvent::for_job(&s, EventKind::PlotFailed, 2))
        .await
        .unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, second);
    assert_eq!(got[0].event.event, EventKind::PlotFailed);
    assert!(second > first, "{second} after {first}");
    assert_eq!(bus.last_id().await.unwrap(), Some(second));
    let history = bus.history_after(first, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second]
    );
    let all = bus.history_after(EventId::ZERO, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [first, second]
    );
    // The ids are the stream's own: what XRANGE lists, in the same text.
    let mut conn = T::raw().await;
    let listed: redis::streams::StreamRangeReply = conn
        .xrange_all(format!("{}:events", config.namespace))
        .await
        .unwrap();
    assert_eq!(
        listed.ids.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [first.to_string(), second.to_string()]
    );
    let _: () = conn
        .del(format!("{}:events", config.namespace))
        .await
        .unwrap();
}

pub async fn history_is_bounded<T: Target>() {
    let config = config::<T>(10);
    let bus = RedisEventBus::new(&config).unwrap();
    let s = state();
    for _ in 0..500 {
        bus.publish(&PlotEvent::for_job(&s, EventKind::PlotReady, 1))
            .await
            .unwrap();
    }
    let mut conn = T::raw().await;
    let len: usize = conn
        .xlen(format!("{}:events", config.namespace))
        .await
        .unwrap();
    // MAXLEN ~ trims whole stream nodes (100 entries by default), never below the bound.
    assert!((10..=200).contains(&len), "stream length {len}");
    let _: () = conn
        .del(format!("{}:events", config.namespace))
        .await
        .unwrap();
}

pub async fn unreachable_redis_is_unavailable_not_a_hang<T: Target>() {
    let mut config = config::<T>(10);
    config.url = "redis://127.0.0.1:1".to_owned();
    config.timeout = Duration::from_secs(1);
    let cache = RedisCache::new(&config).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        cache.get_state(JobId::new_random()),
    )
    .await
    .expect("bounded by the configured timeout");
    assert!(matches!(result, Err(PortError::Unavailable { .. })));
}

pub async fn view_leases_claims_and_states<T: Target>() {
    use plotq_domain::{JobStatus, ViewState};
    use plotq_ports::ViewRegistry;
    use plotq_redis::RedisViews;
    let config = config::<T>(10);
    let views = RedisViews::new(&config).unwrap();
    let other_replica = RedisViews::new(&config).unwrap();
    let (a, b) = (
        "a/histogram/10m/light/800x450".to_owned(),
        "b/cdf/1h/dark/800x450".to_owned(),
    );
    let now = 1_795_000_000_000;
    views
        .watch(&[a.clone(), b.clone()], now + 30_000)
        .await
        .unwrap();
    // A shorter lease from another replica does not cut a longer one.
    other_replica
        .watch(std::slice::from_ref(&a), now + 5_000)
        .await
        .unwrap();
    assert_eq!(
        views.watched(now + 10_000).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert!(
        views.watched(now + 31_000).await.unwrap().is_empty(),
        "leases lapse"
    );

    views
        .touch_series(
            &[
                ("a".into(), "latency_ms".into()),
                ("b".into(), "status_code".into()),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        views.series_touched("a", "latency_ms").await.unwrap(),
        Some(now)
    );
    assert_eq!(views.series_touched("a", "nope").await.unwrap(), None);
    assert_eq!(
        views.services(now - 1).await.unwrap(),
        vec!["a".to_owned(), "b".to_owned()]
    );
    views
        .touch_series(&[("a".into(), "queue.depth".into())], now)
        .await
        .unwrap();
    let pair = |s: &str, m: &str| (s.to_owned(), m.to_owned());
    assert_eq!(
        views.series(now - 1).await.unwrap(),
        [
            pair("a", "latency_ms"),
            pair("a", "queue.depth"),
            pair("b", "status_code")
        ]
    );
    assert_eq!(views.services(now - 1).await.unwrap(), ["a", "b"]);

    // One claim per debounce period, across replicas.
    assert!(views.claim(&a, Duration::from_millis(300)).await.unwrap());
    assert!(
        !other_replica
            .claim(&a, Duration::from_millis(300))
            .await
            .unwrap()
    );
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while !other_replica
        .claim(&a, Duration::from_millis(300))
        .await
        .unwrap()
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the claim never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let state = ViewState {
        job_id: JobId::new_random(),
        status: JobStatus::Queued,
        requested_ms: now,
        last_ready: None,
        error: None,
    };
    views.set_view_state(&a, &state).await.unwrap();
    assert_eq!(other_replica.view_state(&a).await.unwrap(), Some(state));
    let mut conn = T::raw().await;
    // Every key written has a TTL (-1 would be "none", -2 "no such key").
    views
        .watch(std::slice::from_ref(&a), now + 30_000)
        .await
        .unwrap();
    for suffix in ["views", "series", &format!("view:{}", tag::<T>(&a))] {
        let ttl: i64 = conn
            .pttl(format!("{}:{suffix}", config.namespace))
            .await
            .unwrap();
        assert!(ttl > 0, "{suffix} has no TTL ({ttl})");
    }
    for suffix in ["views", "series", &format!("view:{}", tag::<T>(&a))] {
        let _: () = conn
            .del(format!("{}:{suffix}", config.namespace))
            .await
            .unwrap();
    }
}

pub async fn single_flight_claims_are_released_only_by_their_holder<T: Target>() {
    let config = config::<T>(10);
    let cache = RedisCache::new(&config).unwrap();
    let other_replica = RedisCache::new(&config).unwrap();
    let key = "histogram:svc:10m";
    let claim_key = format!("{}:req:{key}", config.namespace);
    let mut conn = T::raw().await;

    let probe = JobId::new_random();
    assert_eq!(
        cache
            .claim_request(&RequestClaim {
                key,
                job: probe,
                ttl: Duration::from_secs(30)
            })
            .await
            .unwrap(),
        None
    );
    let claim_ttl: i64 = conn.ttl(&claim_key).await.unwrap();
    assert!((1..=30).contains(&claim_ttl), "claim TTL {claim_ttl}");
    cache.release_request(key, probe).await.unwrap();
    assert!(!conn.exists::<_, bool>(&claim_key).await.unwrap());

    contract::claims_are_released_only_by_their_holder(&cache, &other_replica, key).await;
    assert!(!conn.exists::<_, bool>(&claim_key).await.unwrap());
    let id = contract::delete_state_forgets_the_state_only(&cache).await;
    contract::idempotency_keys_replay_conflict_and_abandon(&cache, "batch-key").await;
    contract::lanes_count_jobs_up_to_their_cap(&cache, &other_replica, "tenant-a").await;
    assert!(
        !conn
            .exists::<_, bool>(format!("{}:lane:tenant-a", config.namespace))
            .await
            .unwrap(),
        "an empty lane leaves no key"
    );
    let idem_key = format!("{}:idem:batch-key", config.namespace);
    let idem_ttl: i64 = conn.ttl(&idem_key).await.unwrap();
    assert!(
        (1..=600).contains(&idem_ttl),
        "idempotency key TTL {idem_ttl}"
    );
    let _: () = conn.del(&idem_key).await.unwrap();
    let _: () = conn
        .del(format!(
            "{}:img:{}",
            config.namespace,
            tag::<T>(&id.to_string())
        ))
        .await
        .unwrap();
}

pub async fn series_list_is_bounded_and_expires<T: Target>() {
    use plotq_ports::ViewRegistry;
    use plotq_redis::RedisViews;
    let config = config::<T>(10);
    let max = 5;
    let views = RedisViews::new(&config).unwrap().with_max_series(max);
    let series_key = format!("{}:series", config.namespace);
    let now = 1_795_000_000_000i64;
    let day = 24 * 3600 * 1000;
    // A series not touched for over 8 days is forgotten.
    views
        .touch_series(&[("stale".into(), "latency_ms".into())], now - 9 * day)
        .await
        .unwrap();
    // max + 3 series, one touch each, oldest first; then one batch of two more.
    for i in 0..max + 3 {
        views
            .touch_series(&[(format!("s{i:02}"), "latency_ms".into())], now + i as i64)
            .await
            .unwrap();
    }
    views
        .touch_series(
            &[
                ("s02".into(), "latency_ms".into()),
                ("s03".into(), "latency_ms".into()),
            ],
            now + 100,
        )
        .await
        .unwrap();
    let mut conn = T::raw().await;
    let len: usize = conn.zcard(&series_key).await.unwrap();
    assert_eq!(len, max, "only the newest {max} series remain");
    assert_eq!(
        views.services(0).await.unwrap(),
        ["s02", "s03", "s05", "s06", "s07"]
    );
    assert_eq!(
        views.series_touched("stale", "latency_ms").await.unwrap(),
        None
    );
    assert_eq!(
        views.series_touched("s00", "latency_ms").await.unwrap(),
        None
    );
    assert_eq!(
        views.series_touched("s02", "latency_ms").await.unwrap(),
        Some(now + 100)
    );
    let ttl: i64 = conn.ttl(&series_key).await.unwrap();
    assert!(
        (8 * 24 * 3600 - 60..=8 * 24 * 3600).contains(&ttl),
        "series TTL {ttl}"
    );
    let _: () = conn.del(&series_key).await.unwrap();
}

/// The data watermarks of past ranges in one script-written sorted set (the port's
/// contract), its members bounded, and the key expiring `keep` after the last touch.
pub async fn past_ranges_read_their_own_hours<T: Target>() {
    use plotq_redis::RedisViews;
    let config = config::<T>(10);
    let views = RedisViews::new(&config).unwrap().with_max_series(2);
    plotq_ports::contract::past_ranges_read_their_own_hours(&views, 2, "r-").await;
    let key = format!("{}:hours", config.namespace);
    let mut conn = T::raw().await;
    let len: usize = conn.zcard(&key).await.unwrap();
    assert!(
        len <= 2 * plotq_ports::views::HOURS_PER_SERIES + 1,
        "{len} members"
    );
    let ttl: i64 = conn.pttl(&key).await.unwrap();
    assert!((1..=3_600_000).contains(&ttl), "hours TTL {ttl} ms");
    let _: () = conn.del(&key).await.unwrap();
}

/// Stored states carry `"v": 1`; states of the previous release (no `v`) are still read,
/// states of an unknown version read as absent.
pub async fn stored_states_are_versioned<T: Target>() {
    use plotq_domain::{JobStatus, ViewState};
    use plotq_ports::ViewRegistry;
    use plotq_redis::RedisViews;
    let config = config::<T>(10);
    let cache = RedisCache::new(&config).unwrap();
    let views = RedisViews::new(&config).unwrap();
    let s = state();
    let view = "a/histogram/10m/light/800x450";
    let vs = ViewState {
        job_id: s.id,
        status: JobStatus::Queued,
        requested_ms: 1_000,
        last_ready: None,
        error: None,
    };
    cache.put_state(&s, Duration::from_secs(30)).await.unwrap();
    views.set_view_state(view, &vs).await.unwrap();
    let state_key = format!("{}:state:{}", config.namespace, tag::<T>(&s.id.to_string()));
    let view_key = format!("{}:view:{}", config.namespace, tag::<T>(view));
    let mut conn = T::raw().await;
    for key in [&state_key, &view_key] {
        let stored: Vec<u8> = conn.get(key).await.unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(json["v"], 1, "{key}");
        // As the previous release wrote it.
        json.as_object_mut().unwrap().remove("v");
        let _: () = conn.set_ex(key, json.to_string(), 30).await.unwrap();
    }
    assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(views.view_state(view).await.unwrap(), Some(vs.clone()));
    for key in [&state_key, &view_key] {
        let stored: Vec<u8> = conn.get(key).await.unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        json["v"] = 2.into();
        let _: () = conn.set_ex(key, json.to_string(), 30).await.unwrap();
    }
    assert_eq!(cache.get_state(s.id).await.unwrap(), None);
    assert_eq!(views.view_state(view).await.unwrap(), None);
    for key in [state_key, view_key] {
        let _: () = conn.del(key).await.unwrap();
    }
}

/// A health probe marks when this Redis's data begins, once: a Redis that comes back
/// empty (its `since` key gone) is marked at the next probe, not at the next time a
/// state is missing, so an id issued after it and never stored is unknown (`404`).
pub async fn a_probe_marks_when_the_data_begins<T: Target>() {
    let config = config::<T>(10);
    let cache = RedisCache::new(&config).unwrap();
    let key = format!("{}:since", config.namespace);
    let mut conn = T::raw().await;
    assert_eq!(
        marked::<T>(&mut conn, &key).await,
        None,
        "a new namespace holds no mark"
    );
    for _restart in 0..2 {
        let before = plotq_ports::clock::now_ms();
        cache.ping().await.unwrap();
        let after = plotq_ports::clock::now_ms();
        let since = marked::<T>(&mut conn, &key)
            .await
            .expect("the probe marked it");
        assert!(
            (before..=after).contains(&since),
            "{before} <= {since} <= {after}"
        );
        // Later probes and questions keep the first mark.
        cache.ping().await.unwrap();
        assert_eq!(cache.data_since(after + 60_000).await.unwrap(), since);
        assert_eq!(marked::<T>(&mut conn, &key).await, Some(since));
        // As a Redis that restarted without its data.
        let _: () = conn.del(&key).await.unwrap();
    }
}

/// What `key` (a `since` mark) holds.
async fn marked<T: Target>(conn: &mut T::Raw, key: &str) -> Option<i64> {
    let v: Option<String> = conn.get(key).await.unwrap();
    v.map(|v| v.parse().unwrap())
}
