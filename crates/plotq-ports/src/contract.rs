//! Contract tests of the ports: behaviour every adapter keeps, written once and run by
//! the in-memory adapters' unit tests and by each real adapter's tests against its
//! server (feature `contract`; never part of a release build); `TestServer`, the
//! private server process an adapter's outage test stops and starts; and the tests' view
//! of a Redis node or cluster through `redis-cli` (`redis_cli`, `redis_info`,
//! `cluster_master_of`), for the tests that stop, restart or kill Redis nodes.

use crate::cache::{Idempotency, IdempotentStart, LaneSlot, PlotCache, RequestClaim};
use crate::store::{MetricStore, Resolution};
use crate::views::HOUR_MS;
use plotq_domain::{JobId, JobState, PlotKind, PlotSpec, ServiceName};
use std::time::Duration;

/// A queued histogram job of service `svc`.
pub fn queued_state() -> JobState {
    let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("svc").unwrap());
    JobState::queued(JobId::new_random(), spec, 1_000)
}

/// Single-flight claims: the first claim wins, a claim is released only by its holder
/// (through any replica: `other` may be a second client of the same store, or `cache`
/// itself), and releasing what nobody holds is a no-op.
pub async fn claims_are_released_only_by_their_holder(
    cache: &dyn PlotCache,
    other: &dyn PlotCache,
    key: &str,
) {
    let ttl = Duration::from_secs(30);
    let claim = |job| RequestClaim { key, job, ttl };
    let (a, b) = (JobId::new_random(), JobId::new_random());
    assert_eq!(cache.claim_request(&claim(a)).await.unwrap(), None);
    other.release_request(key, b).await.unwrap();
    assert_eq!(
        other.claim_request(&claim(b)).await.unwrap(),
        Some(a),
        "another job's release left the claim in place"
    );
    other.release_request(key, a).await.unwrap();
    assert_eq!(
        cache.claim_request(&claim(b)).await.unwrap(),
        None,
        "the holder's release freed the key"
    );
    cache.release_request("nothing-here", a).await.unwrap();
    assert_eq!(cache.claim_request(&claim(a)).await.unwrap(), Some(b));
    cache.release_request(key, b).await.unwrap();
}

/// `delete_state` forgets a job's state and keeps its image; deleting an unknown
/// state is a no-op; `put_state_if_absent` never overwrites. Returns the job's id (for an adapter's own cleanup).
pub async fn delete_state_forgets_the_state_only(cache: &dyn PlotCache) -> JobId {
    let s = queued_state();
    let ttl = Duration::from_secs(60);
    cache.put_state(&s, ttl).await.unwrap();
    cache.put_image(s.id, b"png", ttl).await.unwrap();
    cache.delete_state(s.id).await.unwrap();
    assert_eq!(cache.get_state(s.id).await.unwrap(), None);
    assert_eq!(
        cache.get_image(s.id).await.unwrap().as_deref(),
        Some(&b"png"[..])
    );
    cache.delete_state(JobId::new_random()).await.unwrap();
    // `put_state_if_absent` writes a missing state, and never over one a worker wrote.
    assert!(cache.put_state_if_absent(&s, ttl).await.unwrap());
    let mut newer = s.clone();
    newer.status = plotq_domain::JobStatus::Rendering;
    cache.put_state(&newer, ttl).await.unwrap();
    assert!(!cache.put_state_if_absent(&s, ttl).await.unwrap());
    assert_eq!(cache.get_state(s.id).await.unwrap(), Some(newer));
    cache.delete_state(s.id).await.unwrap();
    s.id
}

/// Idempotency keys: the first request is `Fresh` and holds the key; the same body is
/// `Pending` until finished, then `Done` with its count; another body is a `Conflict`;
/// an abandoned key (its ingest failed) is `Fresh` again, and abandoning is only for
/// the body that holds it.
pub async fn idempotency_keys_replay_conflict_and_abandon(cache: &dyn PlotCache, key: &str) {
    let ingest = |fingerprint: &'static str| Idempotency {
        key,
        fingerprint,
        pending: Duration::from_secs(60),
        kept: Duration::from_secs(600),
    };
    let (aa, bb) = (ingest("aa"), ingest("bb"));
    let start = |fp: &'static str| async move { cache.begin_idempotent(&ingest(fp)).await };
    assert_eq!(start("aa").await.unwrap(), IdempotentStart::Fresh);
    assert_eq!(start("aa").await.unwrap(), IdempotentStart::Pending);
    assert_eq!(start("bb").await.unwrap(), IdempotentStart::Conflict);
    cache.abandon_idempotent(&bb).await.unwrap();
    assert_eq!(
        start("aa").await.unwrap(),
        IdempotentStart::Pending,
        "not bb's to abandon"
    );
    cache.abandon_idempotent(&aa).await.unwrap();
    assert_eq!(
        start("aa").await.unwrap(),
        IdempotentStart::Fresh,
        "a retry may run"
    );
    cache.finish_idempotent(&aa, 42).await.unwrap();
    assert_eq!(start("aa").await.unwrap(), IdempotentStart::Done(42));
    assert_eq!(start("bb").await.unwrap(), IdempotentStart::Conflict);
    cache.abandon_idempotent(&aa).await.unwrap();
    assert_eq!(
        start("aa").await.unwrap(),
        IdempotentStart::Done(42),
        "done stays done"
    );
}

/// Lanes: a lane counts at most `cap` jobs in flight (shared by every replica: `other`
/// may be a second client of the same store); counting a job again is free; an ended
/// job frees its place, and so does a lapsed lease; lanes are independent.
pub async fn lanes_count_jobs_up_to_their_cap(
    cache: &dyn PlotCache,
    other: &dyn PlotCache,
    lane: &str,
) {
    // The real clock: Redis expires the lane's key by its own (at the newest lease's end).
    let now = crate::clock::now_ms();
    let slot = |lane, id, now_ms| LaneSlot {
        lane,
        id,
        cap: 2,
        lease: Duration::from_secs(60),
        now_ms,
    };
    let (a, b, c) = (
        JobId::new_random(),
        JobId::new_random(),
        JobId::new_random(),
    );
    assert!(cache.begin_job(&slot(lane, a, now)).await.unwrap());
    assert!(other.begin_job(&slot(lane, b, now)).await.unwrap());
    assert!(
        cache.begin_job(&slot(lane, a, now)).await.unwrap(),
        "a job counted already is counted once"
    );
    assert!(!other.begin_job(&slot(lane, c, now)).await.unwrap(), "full");
    let elsewhere = format!("{lane}-other");
    assert!(cache.begin_job(&slot(&elsewhere, c, now)).await.unwrap());
    other.end_job(lane, a).await.unwrap();
    assert!(
        cache.begin_job(&slot(lane, c, now)).await.unwrap(),
        "a ended"
    );
    assert!(!cache.begin_job(&slot(lane, a, now)).await.unwrap());
    // A minute later every lease has lapsed (a job lost in a crash frees its place).
    let later = now + 60_001;
    assert!(cache.begin_job(&slot(lane, a, later)).await.unwrap());
    assert!(cache.begin_job(&slot(lane, b, later)).await.unwrap());
    for (l, id) in [(lane, a), (lane, b), (elsewhere.as_str(), c)] {
        cache.end_job(l, id).await.unwrap();
    }
    cache.end_job(lane, JobId::new_random()).await.unwrap();
}

/// A server process of a test's own (a `redis-server`, an `nx-27017`), on a free port,
/// killed when dropped: what an outage test stops and starts.
pub struct TestServer(std::process::Child);

impl TestServer {
    /// Starts `program` with `args`.
    pub fn start(program: &str, args: &[&str]) -> Self {
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} must be installed for this test: {e}"));
        Self(child)
    }

    /// A port nothing listens on now.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `redis-cli -p <port> <args…>` prints: the tests' view of one Redis node.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed for this test");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Field `field` of `INFO <section>` on the Redis at `port`, if it reports one.
pub fn redis_info(port: u16, section: &str, field: &str) -> Option<String> {
    redis_cli(port, &["info", section])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

/// The port of the live master serving `key`'s hash slot, as the cluster node on `port`
/// sees it (`CLUSTER KEYSLOT`, `CLUSTER NODES`); none while the slot's master has failed
/// and no replica has taken over yet.
pub fn cluster_master_of(port: u16, key: &str) -> Option<u16> {
    let slot: u16 = redis_cli(port, &["cluster", "keyslot", key])
        .trim()
        .parse()
        .ok()?;
    redis_cli(port, &["cluster", "nodes"])
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.get(8..)?.iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()),
                     (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            });
            let live = fields[2].contains("master") && !fields[2].contains("fail");
            let addr = fields[1].split('@').next()?;
            (serves && live).then(|| addr.rsplit(':').next()?.parse().ok())?
        })
}

/// A store keeps each label set of a metric apart and reads the sets a query selects as
/// one: points, rollups merged per minute, and the samples per value of a label.
pub async fn label_sets_are_selected_counted_and_merged(store: &dyn MetricStore, service: &str) {
    use crate::store::{LabelSelect, SeriesQuery, Split};
    use plotq_domain::{Labels, MetricName, Sample};
    let minute = (crate::clock::now_ms() - 120_000) / 60_000 * 60_000;
    let sample = |value: f64, labels: &[(&str, &str)]| Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: MetricName::parse("latency_ms").unwrap(),
        value,
        timestamp_ms: minute + 1_000 + value as i64,
        labels: Labels::from_pairs(labels.iter().copied()).unwrap(),
    };
    let pay_post = [("route", "/pay"), ("method", "POST")];
    let samples = vec![
        sample(1.0, &pay_post),
        sample(2.0, &pay_post),
        sample(3.0, &pay_post),
        sample(4.0, &[("route", "/cart")]),
        sample(5.0, &[("route", "/cart")]),
        sample(6.0, &[]),
    ];
    store.insert(&samples, None).await.unwrap();
    let pay = Labels::from_pairs([("route", "/pay")]).unwrap();
    let post = Labels::from_pairs([("method", "POST")]).unwrap();
    let tops = vec!["/pay".to_owned()];
    let query = |select| SeriesQuery {
        service,
        metric: "latency_ms",
        from_ms: minute,
        until_ms: minute + 59_999,
        with_timestamps: false,
        select,
    };
    let values = |select| {
        let q = query(select);
        async move {
            let mut v = store.points(&q).await.unwrap().values;
            v.sort_by(f64::total_cmp);
            v
        }
    };
    assert_eq!(
        values(LabelSelect::ALL).await,
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert_eq!(values(LabelSelect::filtered(&pay)).await, [1.0, 2.0, 3.0]);
    assert_eq!(values(LabelSelect::filtered(&post)).await, [1.0, 2.0, 3.0]);
    let is_cart = LabelSelect {
        split: Some(("route", Split::Is("/cart"))),
        ..LabelSelect::ALL
    };
    assert_eq!(values(is_cart).await, [4.0, 5.0]);
    let rest = LabelSelect {
        split: Some(("route", Split::NoneOf(&tops))),
        ..LabelSelect::ALL
    };
    assert_eq!(
        values(rest).await,
        [4.0, 5.0, 6.0],
        "sets without the label are the rest"
    );
    // Rollups: the selected sets merged into one per minute.
    let all = store.rollups(&query(LabelSelect::ALL)).await.unwrap();
    assert_eq!(all.minutes.len(), 1);
    assert_eq!((all.minutes[0].0, all.minutes[0].1.count), (minute, 6));
    assert_eq!((all.minutes[0].1.min, all.minutes[0].1.max), (1.0, 6.0));
    let paid = store
        .rollups(&query(LabelSelect::filtered(&pay)))
        .await
        .unwrap();
    assert_eq!(paid.minutes[0].1.count, 3);
    let mean = paid.minutes[0].1.summary().unwrap().mean;
    assert!((mean - 2.0).abs() < 1e-9, "{mean}");
    // Samples per value, most first; the sets without the label as `None`.
    let counts = store
        .label_counts(&query(LabelSelect::ALL), "route", Resolution::Minute)
        .await
        .unwrap();
    assert_eq!(
        counts,
        [
            (Some("/pay".to_owned()), 3),
            (Some("/cart".to_owned()), 2),
            (None, 1)
        ]
    );
    let by_method = store
        .label_counts(
            &query(LabelSelect::filtered(&pay)),
            "method",
            Resolution::Minute,
        )
        .await
        .unwrap();
    assert_eq!(by_method, [(Some("POST".to_owned()), 3)]);
}

/// A store merges summaries (`Rollup::from_buckets`, OTLP histogram points) into the
/// minute rollups of their series, in the same write as samples and with no raw samples
/// of their own: counted once per write, summarized, their error kept, and merged with
/// the minute's samples and other sets on read.
pub async fn summaries_merge_into_the_rollups(store: &dyn MetricStore, service: &str) {
    use crate::store::{LabelSelect, SeriesQuery};
    use plotq_domain::rollup::{Rollup, SeriesRollup, SummaryBucket};
    use plotq_domain::{Labels, MetricName, Sample};
    let minute = (crate::clock::now_ms() - 180_000) / 60_000 * 60_000;
    let metric = MetricName::parse("payload_kb").unwrap();
    let pay = Labels::from_pairs([("route", "/pay")]).unwrap();
    let bucket = |lower, upper, count| SummaryBucket {
        lower,
        upper,
        count,
        open: false,
    };
    // 3 in (5, 10], 2 in (100, 250], summing to 400.
    let histogram = Rollup::from_buckets(
        &[bucket(5.0, 10.0, 3), bucket(100.0, 250.0, 2)],
        Some(400.0),
        Some(6.0),
        Some(240.0),
    )
    .unwrap();
    let summary = |minute_ms| SeriesRollup {
        service: ServiceName::parse(service).unwrap(),
        metric: metric.clone(),
        labels: pay.clone(),
        minute_ms,
        rollup: histogram.clone(),
    };
    let sample = Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: metric.clone(),
        value: 50.0,
        timestamp_ms: minute + 30_000,
        labels: Labels::none(),
    };
    // One write of a sample and two summaries (one minute apart); then a summary alone.
    store
        .write(
            std::slice::from_ref(&sample),
            &[summary(minute), summary(minute + 60_000)],
            None,
        )
        .await
        .unwrap();
    store.write(&[], &[summary(minute)], None).await.unwrap();
    let query = |select, until_ms| SeriesQuery {
        service,
        metric: "payload_kb",
        from_ms: minute,
        until_ms,
        with_timestamps: false,
        select,
    };
    let read = store
        .rollups(&query(LabelSelect::ALL, minute + 119_999))
        .await
        .unwrap();
    let counts: Vec<(i64, u64, u64)> = read
        .minutes
        .iter()
        .map(|(t, r)| (*t, r.count, r.summarized))
        .collect();
    assert_eq!(counts, [(minute, 11, 10), (minute + 60_000, 5, 5)]);
    let first = &read.minutes[0].1;
    assert_eq!((first.min, first.max), (6.0, 240.0));
    assert!((first.mean().unwrap() - 850.0 / 11.0).abs() < 1e-9);
    // (MongoDB keeps the error in parts per billion, rounded up.)
    let kept = first.summary_error - histogram.summary_error;
    assert!((0.0..1e-9).contains(&kept), "{kept}");
    first.validate().unwrap();
    // Only the sample is a raw point; the label filter reads the summaries' set.
    let points = store
        .points(&query(LabelSelect::ALL, minute + 119_999))
        .await
        .unwrap();
    assert_eq!(points.values, [50.0]);
    let paid = store
        .rollups(&query(LabelSelect::filtered(&pay), minute + 59_999))
        .await
        .unwrap();
    assert_eq!(paid.minutes[0].1.count, 10);
    let counted = store
        .label_counts(
            &query(LabelSelect::ALL, minute + 119_999),
            "route",
            Resolution::Minute,
        )
        .await
        .unwrap();
    assert_eq!(counted, [(Some("/pay".to_owned()), 15), (None, 1)]);
}

/// A store keeps hour rollups beside the minute ones, written with them: an hour's
/// rollup is the merge of its minutes' (samples, summaries and label sets alike), a batch
/// with an id retried is counted once in both, and label counts read by the hour equal
/// those read by the minute.
pub async fn hours_are_the_merge_of_their_minutes(store: &dyn MetricStore, service: &str) {
    use crate::store::{LabelSelect, SeriesQuery};
    use plotq_domain::chunk::BatchId;
    use plotq_domain::rollup::{Rollup, SeriesRollup, SummaryBucket};
    use plotq_domain::{Labels, MetricName, Sample};
    let hour = Resolution::Hour.start_of(crate::clock::now_ms()) - 3 * HOUR_MS;
    let metric = MetricName::parse("latency_ms").unwrap();
    let pay = Labels::from_pairs([("route", "/pay")]).unwrap();
    // Two hours: samples every 37 s (two label sets), the last hour's first minute
    // in a batch with an id written twice, and one summary.
    let sample = |i: i64| Sample {
        service: ServiceName::parse(service).unwrap(),
        metric: metric.clone(),
        value: 1.0 + (i % 97) as f64 * 3.5,
        timestamp_ms: hour + i * 37_000,
        labels: if i % 3 == 0 {
            pay.clone()
        } else {
            Labels::none()
        },
    };
    let samples: Vec<Sample> = (0..190).map(sample).collect();
    store.insert(&samples, None).await.unwrap();
    let batch = BatchId::parse(&"cd".repeat(16)).unwrap();
    let retried: Vec<Sample> = (0..5)
        .map(|i| Sample {
            value: 1_000.0 + i as f64,
            timestamp_ms: hour + HOUR_MS + i * 1_000,
            ..sample(i)
        })
        .collect();
    for _ in 0..2 {
        store.insert(&retried, Some(&batch)).await.unwrap();
    }
    let histogram = Rollup::from_buckets(
        &[SummaryBucket {
            lower: 5.0,
            upper: 10.0,
            count: 4,
            open: false,
        }],
        None,
        None,
        None,
    )
    .unwrap();
    let summary = SeriesRollup {
        service: ServiceName::parse(service).unwrap(),
        metric: metric.clone(),
        labels: pay.clone(),
        minute_ms: hour + 30 * 60_000,
        rollup: histogram,
    };
    store.write(&[], &[summary], None).await.unwrap();
    for select in [LabelSelect::ALL, LabelSelect::filtered(&pay)] {
        let query = SeriesQuery {
            service,
            metric: "latency_ms",
            from_ms: hour,
            until_ms: hour + 2 * HOUR_MS - 1,
            with_timestamps: false,
            select,
        };
        let minutes = store.rollups_at(&query, Resolution::Minute).await.unwrap();
        let hours = store.rollups_at(&query, Resolution::Hour).await.unwrap();
        assert_eq!(
            hours.docs_read as usize,
            2 * (1 + usize::from(select.is_all()))
        );
        let starts: Vec<i64> = hours.minutes.iter().map(|(t, _)| *t).collect();
        assert_eq!(starts, [hour, hour + HOUR_MS]);
        for (start, rollup) in &hours.minutes {
            let merged = Rollup::merged(
                minutes
                    .minutes
                    .iter()
                    .filter(|(t, _)| Resolution::Hour.start_of(*t) == *start)
                    .map(|(_, r)| r),
            );
            let key = |r: &Rollup| {
                (
                    r.count,
                    r.min,
                    r.max,
                    r.positive.clone(),
                    r.codes.clone(),
                    r.summarized,
                )
            };
            assert_eq!(key(rollup), key(&merged), "hour {start}");
            let (a, b) = (rollup.mean().unwrap(), merged.mean().unwrap());
            assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} {b}");
            rollup.validate().unwrap();
        }
        let total: u64 = hours.minutes.iter().map(|(_, r)| r.count).sum();
        let expected = if select.is_all() {
            190 + 5 + 4
        } else {
            64 + 2 + 4
        };
        assert_eq!(total, expected, "the retried batch counted once");
        let by = |resolution| store.label_counts(&query, "route", resolution);
        assert_eq!(
            by(Resolution::Hour).await.unwrap(),
            by(Resolution::Minute).await.unwrap()
        );
    }
}

/// A store keeps annotations: read back by any of their services within a window
/// (both ends included), the latest `MAX_DRAWN` in time order, one stored twice (a
/// retry) kept once.
pub async fn annotations_are_kept_by_service_and_time(store: &dyn MetricStore, prefix: &str) {
    use plotq_domain::Annotation;
    use plotq_domain::annotation::MAX_DRAWN;
    let now = (crate::clock::now_ms() / 1_000) * 1_000;
    let (a, b) = (format!("{prefix}-a"), format!("{prefix}-b"));
    let note = |i: i64, text: &str, services: &[&str]| Annotation {
        id: format!("{prefix}-{i}"),
        time_ms: now - 3_600_000 + i * 60_000,
        text: text.to_owned(),
        services: services
            .iter()
            .map(|s| ServiceName::parse(s).unwrap())
            .collect(),
    };
    store.annotate(&note(0, "deploy v1", &[&a])).await.unwrap();
    store
        .annotate(&note(1, "deploy v2", &[&a, &b]))
        .await
        .unwrap();
    // Stored again (a retried request): stored once.
    for _ in 0..2 {
        store.annotate(&note(2, "flag on", &[&b])).await.unwrap();
    }
    let texts = |found: Vec<Annotation>| found.into_iter().map(|a| a.text).collect::<Vec<_>>();
    let window = (now - 3_600_000, now);
    let of = |services: Vec<String>| async move {
        let services: Vec<&str> = services.iter().map(String::as_str).collect();
        store
            .annotations(&services, window.0, window.1)
            .await
            .unwrap()
    };
    assert_eq!(texts(of(vec![a.clone()]).await), ["deploy v1", "deploy v2"]);
    assert_eq!(texts(of(vec![b.clone()]).await), ["deploy v2", "flag on"]);
    let both = of(vec![a.clone(), b.clone()]).await;
    assert_eq!(texts(both.clone()), ["deploy v1", "deploy v2", "flag on"]);
    assert_eq!(both[1].services.len(), 2, "{both:?}");
    // Both ends of the window are included; a minute later is out.
    let at = |from: i64, until: i64| {
        let a = a.clone();
        async move { store.annotations(&[a.as_str()], from, until).await.unwrap() }
    };
    assert_eq!(
        texts(at(now - 3_540_000, now - 3_540_000).await),
        ["deploy v2"]
    );
    assert!(at(now - 3_539_000, now).await.is_empty());
    // The latest MAX_DRAWN of many.
    for i in 10..10 + MAX_DRAWN as i64 + 5 {
        let at = Annotation {
            time_ms: now - 1_800_000 + i * 1_000,
            ..note(i, &format!("n{i}"), &[&a])
        };
        store.annotate(&at).await.unwrap();
    }
    let many = of(vec![a.clone()]).await;
    assert_eq!(many.len(), MAX_DRAWN);
    assert_eq!(
        many.last().unwrap().text,
        format!("n{}", 9 + MAX_DRAWN as i64 + 5)
    );
    assert!(many.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
}

/// The data watermarks of past ranges (`touch_hours`, `range_touched`), on a registry
/// bounded to `max_series` series (at most `HOURS_PER_SERIES` hours each): a range reads
/// the latest arrival of samples timed inside it, by the hour, never one of newer
/// samples; an hour is forgotten `keep` after its last touch; when the bound drops hours
/// early, every range reads as touched then; ranges past `MAX_RANGE_HOURS` read the
/// series' own watermark. Series names start with `prefix` (a fresh one per run).
pub async fn past_ranges_read_their_own_hours(
    views: &dyn crate::ViewRegistry,
    max_series: usize,
    prefix: &str,
) {
    use crate::views::{HOUR_MS, HOURS_PER_SERIES, MAX_RANGE_HOURS};
    let keep = Duration::from_secs(3600);
    let t0 = 1_795_000_000_000_i64 / HOUR_MS * HOUR_MS;
    let svc = format!("{prefix}a");
    let hour = |s: &str, h: i64| (s.to_owned(), "latency_ms".to_owned(), t0 + h * HOUR_MS);
    // Samples of hours 0 and 1 arrive at t0 + 2h; of hour 1 again, and 2, a minute later.
    let now = t0 + 2 * HOUR_MS;
    views
        .touch_hours(&[hour(&svc, 0), hour(&svc, 1)], now, keep)
        .await
        .unwrap();
    views
        .touch_hours(&[hour(&svc, 1), hour(&svc, 2)], now + 60_000, keep)
        .await
        .unwrap();
    let touched = |from: i64, until: i64| views.range_touched(&svc, "latency_ms", from, until);
    // Hour 0 alone: only its own arrival; newer data elsewhere does not move it.
    assert_eq!(touched(t0, t0 + HOUR_MS - 1).await.unwrap(), Some(now));
    assert_eq!(
        touched(t0 + 10, t0 + 2 * HOUR_MS - 1).await.unwrap(),
        Some(now + 60_000),
        "the latest of the hours a range spans"
    );
    assert_eq!(
        touched(t0 - 5 * HOUR_MS, t0 - 1).await.unwrap(),
        None,
        "no arrival in those hours"
    );
    assert_eq!(
        views
            .range_touched(&svc, "status_code", t0, t0 + HOUR_MS)
            .await
            .unwrap(),
        None,
        "another metric of the service"
    );
    // A touch from a replica whose clock is behind (or whose write finished late) still
    // moves the watermark of its hours: stamps only grow.
    views
        .touch_hours(&[hour(&svc, 0)], now - 10_000, keep)
        .await
        .unwrap();
    assert_eq!(
        touched(t0, t0 + HOUR_MS - 1).await.unwrap(),
        Some(now + 60_001)
    );
    // Touched again past `keep`: the hours last stamped before it go.
    let later = now + 60_001 + 3_600_000 + 1;
    views
        .touch_hours(&[hour(&svc, 2)], later, keep)
        .await
        .unwrap();
    assert_eq!(touched(t0, t0 + 2 * HOUR_MS - 1).await.unwrap(), None);
    assert_eq!(
        touched(t0 + 2 * HOUR_MS, t0 + 3 * HOUR_MS - 1)
            .await
            .unwrap(),
        Some(later)
    );
    // Past the bound: the oldest hours go, and every range reads as touched then.
    let bound = max_series * HOURS_PER_SERIES;
    let other = format!("{prefix}b");
    let many: Vec<(String, String, i64)> = (0..bound as i64 + 2)
        .map(|h| hour(&other, 100 + h))
        .collect();
    views.touch_hours(&many, later + 1, keep).await.unwrap();
    assert_eq!(
        touched(t0 - 5 * HOUR_MS, t0 - 1).await.unwrap(),
        Some(later + 1),
        "an early drop counts as a touch of every range"
    );
    // Longer than MAX_RANGE_HOURS: the series' own watermark.
    views
        .touch_series(&[(svc.clone(), "latency_ms".into())], later + 2)
        .await
        .unwrap();
    assert_eq!(
        touched(t0 - MAX_RANGE_HOURS * HOUR_MS, t0).await.unwrap(),
        Some(later + 2)
    );
}
