//! Jobs survive crashes, poison and overload: every job that got a 202 ends `done` or
//! `failed` with a reason, and each is announced once. Real RabbitMQ, Redis and the
//! MongoDB-wire server; every role a separate `plotq` process.

use crate::support::{
    Plotq, broker_channel, cleanup, ingest, job_id, namespace, request_plot, require_services,
    run_plotq, subscribe, wait_ready, wait_status,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(60);

async fn request(client: &reqwest::Client, api: &Plotq, body: Value) -> reqwest::Response {
    client
        .post(api.url("/api/v1/plots"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_dead_lettered_and_the_worker_keeps_going() {
    require_services();
    let ns = namespace("poison");
    let api = Plotq::start(&["api"], &ns, &[]);
    let _worker = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    // Straight onto the work exchange, bypassing the API.
    let (conn, ch) = broker_channel().await;
    ch.basic_publish(
        format!("{ns}.plotq.jobs").as_str().into(),
        "plot.render".into(),
        Default::default(),
        b"{not json at all",
        Default::default(),
    )
    .await
    .unwrap();
    ingest(&client, &api, "after-poison", 200).await;
    let id = request_plot(
        &client,
        &api,
        &json!({"kind": "histogram", "service": "after-poison"}),
    )
    .await;
    wait_status(&client, &api, &id, READY, |s| s["status"] == "done").await;
    let (ok, listing) = run_plotq(&["dlq", "list"], &ns, &[]);
    assert!(ok);
    let letters: Vec<Value> = listing
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{listing}");
    assert!(
        letters[0]["reason"]
            .as_str()
            .unwrap()
            .contains("undecodable"),
        "{listing}"
    );
    let _ = conn.close(200, "bye".into()).await;
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_with_backoff_then_dead_letter_then_replay() {
    require_services();
    let ns = namespace("retry");
    let retry = [("PLOTQ_RETRY_DELAYS", "1,2"), ("PLOTQ_MAX_ATTEMPTS", "3")];
    let api = Plotq::start(&["api"], &ns, &retry);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    ingest(&client, &api, "flaky", 300).await;
    // A worker whose MongoDB is unreachable, with failing fast off (so it does not hold
    // jobs for MongoDB to come back): every attempt fails transiently.
    let mut bad_env = retry.to_vec();
    bad_env.extend([
        (
            "PLOTQ_MONGODB_URL",
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500",
        ),
        ("PLOTQ_DEPENDENCY_TIMEOUT_SECS", "1"),
        ("PLOTQ_BREAKER_FAILURES", "0"),
    ]);
    let mut bad = Plotq::start(&["worker"], &ns, &bad_env);
    let started = Instant::now();
    let id = request_plot(
        &client,
        &api,
        &json!({"kind": "histogram", "service": "flaky"}),
    )
    .await;
    let failed = wait_status(&client, &api, &id, Duration::from_secs(90), |s| {
        s["status"] == "failed"
    })
    .await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 3 attempts"),
        "{failed}"
    );
    // Three attempts with 1 s then 2 s between them.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "retried too fast: {:?}",
        started.elapsed()
    );
    // Three starts, so exactly two retries, and the failed state keeps the count.
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert!(
        bad.terminate(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );

    let (_, listing) = run_plotq(&["dlq", "list"], &ns, &[]);
    assert!(listing.contains(&id), "{listing}");
    // The fault is fixed: a healthy worker, and the operator replays the job.
    let _good = Plotq::start(&["worker"], &ns, &retry);
    let (ok, out) = run_plotq(&["dlq", "retry", &id], &ns, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("\"replayed\":1"), "{out}");
    wait_status(&client, &api, &id, READY, |s| s["status"] == "done").await;
    let (_, listing) = run_plotq(&["dlq", "list"], &ns, &[]);
    assert!(listing.trim().is_empty(), "{listing}");
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_no_job_and_each_is_announced_once() {
    require_services();
    let ns = namespace("kill");
    let api = Plotq::start(&["api"], &ns, &[]);
    let notifier = Plotq::start(&["notifier"], &ns, &[]);
    let mut victim = Plotq::start(&["worker"], &ns, &[("PLOTQ_PREFETCH", "4")]);
    let _survivor = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    ingest(&client, &api, "burst", 2000).await;
    let mut sse = subscribe(&notifier.url("/api/v1/events?service=burst"), None).await;
    let mut ids = Vec::new();
    for i in 0..200u32 {
        // Distinct sizes: distinct jobs (identical requests would share one).
        ids.push(
            request_plot(
                &client,
                &api,
                &json!({"kind": "histogram", "service": "burst", "width": 300 + i, "height": 200}),
            )
            .await,
        );
    }
    let mut ready: HashMap<String, usize> = HashMap::new();
    let deadline = Duration::from_secs(180);
    while ready.len() < ids.len() {
        let e = sse
            .next_matching(deadline, |e| e.event == "plot.ready")
            .await;
        *ready
            .entry(e.data["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if ready.len() == 20 {
            let _ = std::process::Command::new("kill")
                .args(["-9", &victim.pid().to_string()])
                .status();
            assert!(victim.terminate(Duration::from_secs(5)).is_some());
        }
    }
    // Let any late duplicate arrive before counting.
    for e in sse.collect_for(Duration::from_secs(2)).await {
        if e.event == "plot.ready" {
            *ready
                .entry(e.data["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for id in &ids {
        assert_eq!(
            ready.get(id),
            Some(&1),
            "job {id} announced {:?} times",
            ready.get(id)
        );
    }
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_queue_bound_is_refused_with_retry_after() {
    require_services();
    let ns = namespace("flood");
    // No workers: the queue only fills.
    let api = Plotq::start(&["api"], &ns, &[("PLOTQ_MAX_QUEUED_JOBS", "5")]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..40u32 {
        let r = request(
            &client,
            &api,
            json!({"kind": "histogram", "service": "flood", "width": 300 + i}),
        )
        .await;
        match r.status().as_u16() {
            202 => accepted += 1,
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                let body: Value = r.json().await.unwrap();
                assert!(body["detail"].as_str().unwrap().contains("full"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        (5..=6).contains(&accepted),
        "accepted {accepted} past a bound of 5"
    );
    assert_eq!(accepted + refused, 40);
    assert_eq!(
        client
            .get(api.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_worker_and_loses_nothing() {
    require_services();
    let ns = namespace("term");
    let api = Plotq::start(&["api"], &ns, &[]);
    let mut first = Plotq::start(&["worker"], &ns, &[("PLOTQ_PREFETCH", "4")]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    ingest(&client, &api, "term", 2000).await;
    let mut ids = Vec::new();
    for i in 0..60u32 {
        ids.push(
            request_plot(
                &client,
                &api,
                &json!({"kind": "latency_timeseries", "service": "term", "width": 300 + i}),
            )
            .await,
        );
    }
    // Once the first job is done the worker is busy; stop it mid-burst.
    wait_status(&client, &api, &ids[0], READY, |s| s["status"] == "done").await;
    let started = Instant::now();
    let status = first
        .terminate(Duration::from_secs(45))
        .expect("the worker exits within its grace");
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(35));
    // A second worker (a rolling restart) finishes whatever was left.
    let _second = Plotq::start(&["worker"], &ns, &[]);
    for id in &ids {
        wait_status(&client, &api, id, Duration::from_secs(120), |s| {
            s["status"] == "done"
        })
        .await;
    }
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_job_is_a_503_not_a_202() {
    require_services();
    let ns = namespace("noroute");
    let api = Plotq::start(&["api"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    // Someone removes the binding between the work exchange and the queue.
    let (conn, ch) = broker_channel().await;
    ch.queue_unbind(
        format!("{ns}.plotq.plot.jobs").as_str().into(),
        format!("{ns}.plotq.jobs").as_str().into(),
        "plot.render".into(),
        Default::default(),
    )
    .await
    .unwrap();
    let r = request(&client, &api, json!({"kind": "histogram", "service": "x"})).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    // The client learns that RabbitMQ refused; the broker's own words go to the log.
    assert_eq!(body["code"], "dependency_refused", "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("rabbitmq"),
        "{body}"
    );
    let _ = conn.close(200, "bye".into()).await;
    cleanup(&ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_identical_requests_render_once() {
    require_services();
    let ns = namespace("same");
    let api = Plotq::start(&["api"], &ns, &[]);
    let notifier = Plotq::start(&["notifier"], &ns, &[]);
    let _worker = Plotq::start(&["worker"], &ns, &[]);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    ingest(&client, &api, "same", 500).await;
    let mut sse = subscribe(&notifier.url("/api/v1/events?service=same"), None).await;
    let body = json!({"kind": "cdf", "service": "same", "window": "15m"});
    let answers =
        futures::future::join_all((0..100).map(|_| request(&client, &api, body.clone()))).await;
    let mut ids = std::collections::HashSet::new();
    for r in answers {
        assert!(matches!(r.status().as_u16(), 200 | 202), "{}", r.status());
        ids.insert(job_id(r).await);
    }
    assert_eq!(ids.len(), 1, "100 identical requests, {} jobs", ids.len());
    let id = ids.into_iter().next().unwrap();
    sse.next_matching(READY, |e| {
        e.event == "plot.ready" && e.data["id"] == id.as_str()
    })
    .await;
    let extra = sse.collect_for(Duration::from_millis(500)).await;
    assert!(
        extra.iter().all(|e| e.event != "plot.ready"),
        "a second render: {extra:?}"
    );
    // One render: the job was started once (and announced once, above).
    let done = wait_status(&client, &api, &id, READY, |s| s["status"] == "done").await;
    assert_eq!(done["attempts"], 1, "{done}");
    // Finished and cached: an identical request now gets the result without a render.
    let again = request(&client, &api, body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(job_id(again).await, id);
    cleanup(&ns).await;
}

/// Runs `plotq <args>` and waits (with a deadline) for it to exit; returns its status
/// and stderr. A role that cannot start must say why and exit, never hang.
fn exits_within(args: &[&str], env: &[(&str, &str)], deadline: Duration) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plotq"));
    cmd.args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("plotq starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("plotq {args:?} did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn roles_that_cannot_listen_exit_with_the_reason() {
    require_services();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for role in ["notifier", "api", "standalone"] {
        let (code, err) = exits_within(
            &[role],
            &[("PLOTQ_HTTP_ADDR", &addr), ("PLOTQ_NAMESPACE", "bindtest")],
            Duration::from_secs(20),
        );
        assert_ne!(code, 0, "{role}");
        assert!(err.contains("cannot listen on"), "{role}: {err}");
    }
    // No tokens on a public address: refused before anything starts.
    let (code, err) = exits_within(
        &["api"],
        &[("PLOTQ_HTTP_ADDR", "0.0.0.0:0")],
        Duration::from_secs(20),
    );
    assert_ne!(code, 0);
    assert!(err.contains("refusing to listen on 0.0.0.0:0"), "{err}");
}
