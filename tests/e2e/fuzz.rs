//! Fuzz: thousands of seeded random requests against `standalone --no-demo`, started in
//! process, and against the distributed roles (api, two workers and the notifier as
//! separate processes, on real RabbitMQ, Redis and the MongoDB-wire server).
//!
//! The generator mixes valid and invalid ingest batches (extreme values such as ±1e308,
//! ±`f64::MAX`, subnormals, ±0; bad types; out-of-range timestamps; unknown fields;
//! long names), plot requests of every kind with options at and past their bounds, job
//! reads by known, random and malformed ids, the image routes, services, health, the
//! dashboard, tickets, event streams (valid and invalid views), OpenTelemetry exports
//! (`fuzz/otlp.rs`: every metric kind, spans, label bombs, broken bodies), unknown
//! routes, wrong methods, wrong content types, empty, malformed and oversized bodies, and junk
//! credentials. The series that plots target hold extreme values: `[1, 1e270]`,
//! `[1e-300, 1]`, ±1e308/±`f64::MAX`, subnormals, only zeros, only negatives; before the
//! random requests, a fixed matrix asks for every kind over each of them (with `log_x`,
//! `show_max`, SVG and 1,000 bins), so the security review's crashes are always retried.
//!
//! Asserted, for every target:
//! - no 5xx but `503` with `Retry-After`; every 4xx/5xx is `application/problem+json`
//!   with a string `code` (and its `status`) — on the OTLP paths a `google.rpc.Status`
//!   in the request's encoding; `429` carries `Retry-After`;
//! - a request the generator built valid succeeds (2xx, or 429/503 under load) and one it
//!   built invalid gets a 4xx; `202`s name their job in `Location`; ingest counts match;
//! - every job a `202` (or a deduplicated answer) pointed at ends `done` or `failed`
//!   within a deadline, never with an internal error, and the event stream (recorded
//!   from before the first request) carries exactly one final event for it, matching
//!   its state; no job anywhere gets two final events;
//! - no process exited or logged a panic, and every HTTP role still answers `/healthz`;
//!   in process: every role's task still runs, none of its threads panicked, every HTTP
//!   role answers `/healthz`, and every role stops cleanly afterwards.
//!
//! `PLOTQ_FUZZ_REQUESTS` (default 2,000 per target; the full run is 10,000) and
//! `PLOTQ_FUZZ_SEED` (printed with every summary and failure) steer a run:
//! `PLOTQ_FUZZ_REQUESTS=10000 cargo test -p plotq --test e2e_fuzz -- --nocapture`.

mod otlp;

use crate::support::app::{Backend, Options, TestApp};
use crate::support::{
    Plotq, SseEvent, cleanup, namespace, post_samples, record_events, require_services,
    wait_finished, wait_ready,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const DEFAULT_REQUESTS: usize = 2_000;
const DEFAULT_SEED: u64 = 0x504c_4f54_515f_465a; // "PLOTQ_FZ"
const CONCURRENCY: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const READY: Duration = Duration::from_secs(60);

const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;
const DAY_MS: i64 = 86_400_000;
/// The longest window or range a plot may span (90 days).
const MAX_SPAN_MS: i64 = 90 * DAY_MS;
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

const KINDS: [&str; 7] = [
    "histogram",
    "latency_timeseries",
    "throughput",
    "status_codes",
    "error_rate",
    "heatmap",
    "cdf",
];

/// Generous limits, so rate limiting hides no behaviour.
const FUZZ_ENV: &[(&str, &str)] = &[
    ("PLOTQ_PLOT_REQUESTS_PER_SEC", "1000000"),
    ("PLOTQ_PLOT_BURST", "1000000"),
    ("PLOTQ_JOBS_IN_FLIGHT_PER_CALLER", "1000000"),
    ("PLOTQ_RENDER_WAITERS_PER_CALLER", "100000"),
    ("PLOTQ_VIEWS_PER_CALLER", "100000"),
    ("PLOTQ_INGEST_SAMPLES_PER_SEC", "100000000"),
    ("PLOTQ_INGEST_BURST", "100000000"),
    ("PLOTQ_SSE_CONNECTIONS_PER_CALLER", "10000"),
    ("RUST_LOG", "info,lapin=warn"),
];

fn requests_per_target() -> usize {
    std::env::var("PLOTQ_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_REQUESTS)
}

fn seed() -> u64 {
    std::env::var("PLOTQ_FUZZ_SEED")
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(DEFAULT_SEED)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// RFC 3339 with milliseconds for epoch milliseconds (proleptic Gregorian, years 0–9999),
/// in UTC (`Z`) or shifted to an offset of `offset_min` minutes.
fn rfc3339(ms: i64, offset_min: i64) -> String {
    let local = ms + offset_min * 60_000;
    let (secs, milli) = (local.div_euclid(1000), local.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let zone = if offset_min == 0 {
        "Z".to_owned()
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}{zone}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[test]
fn rfc3339_formats_like_the_domain_parses() {
    assert_eq!(rfc3339(1_795_341_600_123, 0), "2026-11-22T10:00:00.123Z");
    assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(MAX_TIMESTAMP_MS, 0), "9999-12-31T23:59:59.999Z");
    assert_eq!(rfc3339(0, 330), "1970-01-01T05:30:00.000+05:30");
    assert_eq!(rfc3339(951_782_400_000, 0), "2000-02-29T00:00:00.000Z");
}

// ---- The data the plots draw ---------------------------------------------------------

/// What a series' values look like.
#[derive(Debug, Clone, Copy)]
enum Family {
    Normal,
    /// `[1, 1e270]`: crashed the heatmap in the security review.
    Huge,
    /// `[1e-300, 1]`: likewise.
    Tiny,
    /// ±1e308 and ±`f64::MAX`: broke histogram, cdf and latency_timeseries.
    Max,
    Subnormal,
    Zero,
    Negative,
    Mixed,
}

const SERVICES: &[(&str, Family)] = &[
    ("fz-normal", Family::Normal),
    ("fz-huge", Family::Huge),
    ("fz-tiny", Family::Tiny),
    ("fz-max", Family::Max),
    ("fz-sub", Family::Subnormal),
    ("fz-zero", Family::Zero),
    ("fz-neg", Family::Negative),
    ("fz-mixed", Family::Mixed),
];
/// Plotted over the first ten seconds of 1970 (absolute ranges at the lower bound),
/// where it can have no samples: ingest refuses samples past the rollup retention, and
/// small epoch numbers as epoch seconds (its samples are recent).
const EPOCH_SERVICE: &str = "fz-epoch";
/// Exactly one sample, ever.
const ONE_SERVICE: &str = "fz-one";
/// Never sent anything: their plots fail with "no data".
const GHOSTS: &[&str] = &["fz-ghost-0", "fz-ghost-1", "fz-ghost-2", "fz-ghost-3"];

fn extreme() -> &'static [f64] {
    &[
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN,
        5e-324,
        -5e-324,
        f64::MIN_POSITIVE,
        1e-310,
        0.0,
        -0.0,
        1e270,
        1e-300,
        1.0,
        -1.0,
        9_007_199_254_740_993.0,
    ]
}

fn all_services() -> Vec<&'static str> {
    let mut names: Vec<&str> = SERVICES.iter().map(|(s, _)| *s).collect();
    names.extend([EPOCH_SERVICE, ONE_SERVICE]);
    names.extend(GHOSTS);
    names
}

// ---- Requests ------------------------------------------------------------------------

/// Which process a request goes to (the same one in standalone mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Api,
    Events,
}

/// What the generator knows about a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Valid by construction: 2xx (or 429/503 with Retry-After, under load).
    Success,
    /// Invalid by construction: a 4xx.
    Rejected,
    /// Either; only the general rules apply.
    Any,
}

#[derive(Debug, Clone)]
struct Req {
    what: &'static str,
    role: Role,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    expect: Expect,
    /// For valid ingest: how many samples the answer must count.
    accepted: Option<usize>,
    /// Oversized bodies: the server may close the connection before reading them.
    may_cut_off: bool,
}

impl Req {
    fn new(
        what: &'static str,
        role: Role,
        method: Method,
        path: impl Into<String>,
        expect: Expect,
    ) -> Self {
        Self {
            what,
            role,
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
            expect,
            accepted: None,
            may_cut_off: false,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, content_type: Option<&str>, body: Vec<u8>) -> Self {
        if let Some(ct) = content_type {
            self.headers.push(("content-type", ct.to_owned()));
        }
        self.body = Some(body);
        self
    }

    /// One line for reports: method, target, content type and a body excerpt.
    fn describe(&self) -> String {
        let role = match self.role {
            Role::Api => "api",
            Role::Events => "events",
        };
        let mut s = format!(
            "[{}] {} {} {}",
            self.what,
            self.method,
            role,
            excerpt(&self.path, 200)
        );
        for (k, v) in &self.headers {
            let _ = write!(s, " ({k}: {})", excerpt(v, 80));
        }
        if let Some(body) = &self.body {
            let _ = write!(
                s,
                " body({} bytes): {}",
                body.len(),
                excerpt(&String::from_utf8_lossy(body), 400)
            );
        }
        s
    }
}

fn excerpt(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialises")
}

// ---- The generator -------------------------------------------------------------------

struct Gen {
    rng: StdRng,
    /// Job ids from earlier answers (the most recent few hundred).
    known: Vec<String>,
    /// Recent valid plot requests, sent again to exercise deduplication.
    recent_plots: Vec<Vec<u8>>,
    /// The latest read ticket from `POST /api/v1/tickets`.
    ticket: Option<String>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            known: Vec::new(),
            recent_plots: Vec::new(),
            ticket: None,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    fn pick_value(&mut self, items: &[Value]) -> Value {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo..=hi)
    }

    fn remember(&mut self, id: String) {
        self.known.push(id);
        if self.known.len() > 500 {
            self.known.remove(0);
        }
    }

    /// A JSON content type a client may legitimately send.
    fn json_type(&mut self) -> &'static str {
        if self.chance(0.85) {
            "application/json"
        } else {
            self.pick(&[
                "application/json; charset=utf-8",
                "Application/JSON",
                "application/vnd.plotq+json",
                "application/problem+json",
            ])
        }
    }

    fn next(&mut self) -> Req {
        match self.rng.random_range(0..1000) {
            0..140 => self.ingest_valid(),
            140..200 => self.ingest_invalid(),
            200..215 => self.ingest_raw(),
            215..225 => self.ingest_unknown_field(),
            225..260 => self.plot_repeat(),
            260..450 => self.plot_valid(),
            450..580 => self.plot_invalid(),
            580..620 => self.plot_random(),
            620..667 => self.body_junk(),
            667..669 => self.body_oversize(),
            669..670 => self.many_errors(),
            670..800 => self.job_known(),
            800..840 => self.job_random(),
            840..880 => self.job_bad_id(),
            880..920 => self.read_misc(),
            920..935 => self.route_unknown(),
            935..950 => self.otlp(),
            950..975 => self.route_method(),
            975..993 => self.events(),
            _ => self.auth_junk(),
        }
    }

    // -- samples --

    fn value(&mut self, family: Family) -> f64 {
        match family {
            Family::Normal => {
                let u: f64 = self.rng.random();
                20.0 * (1.0 + 3.0 * u * u * u) + self.rng.random_range(0.0..5.0)
            }
            Family::Huge => self.pick(&[1.0, 1e270, 3.0, 1e200, 1e270]),
            Family::Tiny => self.pick(&[1e-300, 1.0, 1e-200, 0.5]),
            Family::Max => self.pick(&[1e308, -1e308, f64::MAX, f64::MIN, 1.0, -1.0, 0.0]),
            Family::Subnormal => {
                self.pick(&[5e-324, -5e-324, f64::MIN_POSITIVE, 1e-310, 0.0, -0.0])
            }
            Family::Zero => self.pick(&[0.0, -0.0]),
            Family::Negative => {
                if self.chance(0.2) {
                    self.pick(&[-1e308, f64::MIN, -5e-324])
                } else {
                    -self.rng.random_range(0.001..1e6)
                }
            }
            Family::Mixed => {
                if self.chance(0.3) {
                    self.pick(extreme())
                } else {
                    let f = self.pick(&SERVICES[..SERVICES.len() - 1]).1;
                    self.value(f)
                }
            }
        }
    }

    fn status_value(&mut self) -> f64 {
        if self.chance(0.9) {
            self.pick(&[
                200.0, 200.0, 200.0, 201.0, 204.0, 301.0, 304.0, 400.0, 401.0, 404.0, 429.0, 500.0,
                502.0, 503.0, 504.0,
            ])
        } else {
            self.pick(&[0.0, 999.0, 200.5, -1.0, 1e308, f64::MAX, 5e-324, -0.0, 1e15])
        }
    }

    /// A valid timestamp in the last few minutes (or absent), in any accepted notation.
    fn timestamp(&mut self) -> Option<Value> {
        let now = now_ms();
        let recent = now - self.int(1_000, 540_000);
        Some(match self.rng.random_range(0..100) {
            0..25 => return None,
            25..70 => json!(recent),
            70..82 => {
                let offset = self.pick(&[0, 0, 330, -480, 840, -720]);
                json!(rfc3339(recent, offset))
            }
            82..90 => json!(recent as f64),
            90..95 => json!(now - self.int(3_600_000, 6 * DAY_MS)),
            _ => json!(now + self.int(0, 60_000)),
        })
    }

    fn sample(&mut self, service: &str, metric: &str, family: Family) -> Value {
        let mut s = Map::new();
        let (skey, mkey) = if self.chance(0.1) {
            ("service_name", "metric_name")
        } else {
            ("service", "metric")
        };
        s.insert(skey.into(), json!(service));
        s.insert(mkey.into(), json!(metric));
        let value = if metric == "status_code" {
            self.status_value()
        } else {
            self.value(family)
        };
        s.insert("value".into(), json!(value));
        if let Some(ts) = self.timestamp() {
            s.insert("timestamp".into(), ts);
        }
        if self.chance(0.3) {
            let labels = self.pick_value(&[
                json!({"route": "/a"}),
                json!({"route": "/b", "method": "GET"}),
                json!({}),
            ]);
            s.insert("labels".into(), labels);
        }
        Value::Object(s)
    }

    /// A sample of a random series: mostly the plotted ones, sometimes a fresh or
    /// maximally long name.
    fn random_sample(&mut self) -> Value {
        let metric = match self.rng.random_range(0..10) {
            0..7 => "latency_ms",
            7..9 => "status_code",
            _ => "fz_other",
        };
        match self.rng.random_range(0..100) {
            0..85 => {
                let (service, family) = self.pick(SERVICES);
                self.sample(service, metric, family)
            }
            85..90 => self.sample(EPOCH_SERVICE, metric, Family::Mixed),
            90..95 => {
                let name = format!("fz-r{}", self.int(0, 50));
                self.sample(&name, metric, Family::Mixed)
            }
            _ => {
                let name = format!("L{}", "x".repeat(63));
                let metric = format!("m{}", "_".repeat(63));
                self.sample(&name, &metric, Family::Mixed)
            }
        }
    }

    /// Mostly small batches: every stored sample slows the MongoDB-wire test server's
    /// scans, and the extremes matter more than the volume.
    fn batch_len(&mut self) -> usize {
        match self.rng.random_range(0..1000) {
            0..500 => 1,
            500..900 => self.int(2, 10) as usize,
            900..995 => self.int(11, 100) as usize,
            _ => self.int(200, 500) as usize,
        }
    }

    fn ingest(&mut self, what: &'static str, body: &Value, expect: Expect) -> Req {
        let ct = if expect == Expect::Success {
            self.json_type()
        } else {
            "application/json"
        };
        Req::new(what, Role::Api, Method::POST, "/api/v1/metrics", expect)
            .body(Some(ct), json_bytes(body))
    }

    fn ingest_valid(&mut self) -> Req {
        let n = self.batch_len();
        let body = if n == 1 && self.chance(0.5) {
            self.random_sample()
        } else {
            Value::Array((0..n).map(|_| self.random_sample()).collect())
        };
        let mut req = self.ingest("ingest.valid", &body, Expect::Success);
        req.accepted = Some(n);
        req
    }

    fn bad_name(&mut self) -> Value {
        self.pick_value(&[
            json!(""),
            json!("-x"),
            json!("a b"),
            json!("ü"),
            json!("a/b"),
            json!("$where"),
            json!("x".repeat(65)),
            json!("x".repeat(20_000)),
            json!(5),
            json!(true),
            json!(["fz-normal"]),
            json!({"$ne": 1}),
        ])
    }

    /// A timestamp no plot range accepts (samples also refuse the future ones).
    fn bad_range_timestamp(&mut self) -> Value {
        self.pick_value(&[
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1e300),
            json!(-1e300),
            json!(1.5),
            json!("yesterday"),
            json!(""),
            json!(true),
            json!([]),
            json!({}),
            json!(MAX_TIMESTAMP_MS + 1),
            json!("10000-01-01T00:00:00Z"),
            json!("2026-13-01T00:00:00Z"),
            json!("1969-12-31T23:59:59Z"),
            json!("9999-12-31T23:59:59.999-00:01"),
        ])
    }

    /// A timestamp no sample accepts: out of range, malformed, or too far ahead.
    fn bad_timestamp(&mut self) -> Value {
        let now = now_ms();
        match self.rng.random_range(0..4) {
            0 => self.pick_value(&[
                json!(now + 3_600_000),
                json!(now + 301_000),
                json!(rfc3339(now + 3_600_000, 0)),
                // Epoch seconds and microseconds, and past the rollup retention.
                json!(now / 1000),
                json!(now * 1000),
                json!(rfc3339(now - 100 * DAY_MS, 0)),
            ]),
            _ => self.bad_range_timestamp(),
        }
    }

    fn ingest_invalid(&mut self) -> Req {
        let n = self.int(1, 20) as usize;
        let mut items: Vec<Value> = (0..n).map(|_| self.random_sample()).collect();
        for _ in 0..self.int(1, 3) {
            let i = self.rng.random_range(0..n);
            let Value::Object(s) = &mut items[i] else {
                continue;
            };
            match self.rng.random_range(0..9) {
                0 => {
                    let v = self.pick_value(&[
                        json!("NaN"),
                        json!("Infinity"),
                        json!("1e308"),
                        json!(true),
                        Value::Null,
                        json!({}),
                        json!([1]),
                    ]);
                    s.insert("value".into(), v);
                }
                1 => {
                    s.remove("value");
                }
                2 => {
                    let v = self.bad_timestamp();
                    s.insert("timestamp".into(), v);
                }
                3 => {
                    s.remove("service");
                    s.remove("service_name");
                }
                4 => {
                    let v = self.bad_name();
                    s.remove("service_name");
                    s.insert("service".into(), v);
                }
                5 => {
                    let v = self.bad_name();
                    s.remove("metric_name");
                    s.insert("metric".into(), v);
                }
                6 => {
                    s.insert("service".into(), Value::Null);
                    s.remove("service_name");
                }
                7 => {
                    let nine: Map<String, Value> =
                        (0..9).map(|i| (format!("l{i}"), json!("v"))).collect();
                    let v = self.pick_value(&[
                        json!({"9route": "/a"}),
                        json!({"route": ""}),
                        json!({"route": 5}),
                        json!(["route"]),
                        Value::Object(nine),
                    ]);
                    s.insert("labels".into(), v);
                }
                _ => {
                    let v = self.pick_value(&[json!(5), json!("x"), Value::Null, json!([])]);
                    items[i] = v;
                }
            }
        }
        let body = if n == 1 && items[0].is_object() && self.chance(0.5) {
            items.pop().expect("one item")
        } else if self.chance(0.03) {
            json!([])
        } else {
            Value::Array(items)
        };
        self.ingest("ingest.invalid", &body, Expect::Rejected)
    }

    /// A batch whose text holds a number JSON cannot carry (`1e400`, `NaN`, …).
    fn ingest_raw(&mut self) -> Req {
        let n = self.int(1, 5) as usize;
        let mut items: Vec<Value> = (0..n).map(|_| self.random_sample()).collect();
        let i = self.rng.random_range(0..n);
        items[i]["value"] = json!("__RAW__");
        let token = self.pick(&[
            "1e400",
            "-1e400",
            "NaN",
            "Infinity",
            "-Infinity",
            "0x10",
            "01",
            ".5",
            "1.",
            "+1",
            "1e",
            "--1",
        ]);
        let text = serde_json::to_string(&items)
            .expect("serialises")
            .replace("\"__RAW__\"", token);
        Req::new(
            "ingest.raw",
            Role::Api,
            Method::POST,
            "/api/v1/metrics",
            Expect::Rejected,
        )
        .body(Some("application/json"), text.into_bytes())
    }

    fn ingest_unknown_field(&mut self) -> Req {
        let n = self.int(1, 5) as usize;
        let mut items: Vec<Value> = (0..n).map(|_| self.random_sample()).collect();
        let (k, v) = self.pick(&[
            ("host", "web-1"),
            ("", "x"),
            ("a/b~c", "y"),
            ("unit", "ms"),
            ("__proto__", "z"),
        ]);
        items[0][k] = json!(v);
        self.ingest("ingest.unknown_field", &Value::Array(items), Expect::Any)
    }

    /// Bodies whose problems could fill a huge error list: the answer must stay small.
    fn many_errors(&mut self) -> Req {
        match self.rng.random_range(0..3) {
            0 => {
                let one = json!({"service": "fz-normal", "metric": "latency_ms", "value": 1});
                let body = Value::Array(vec![one; 50_001]);
                self.ingest("ingest.too_many", &body, Expect::Rejected)
            }
            1 => {
                let bad = json!({"service": "a b", "metric": "", "value": "NaN", "timestamp": -1});
                let body = Value::Array(vec![bad; 10_000]);
                self.ingest("ingest.many_errors", &body, Expect::Rejected)
            }
            _ => {
                let mut spec = self.plot_spec();
                for i in 0..60_000 {
                    spec.insert(format!("unknown_{i}"), json!(i));
                }
                self.plot(
                    "plot.many_fields",
                    json_bytes(&Value::Object(spec)),
                    "application/json",
                    Expect::Rejected,
                )
            }
        }
    }

    // -- plot requests --

    fn plot_service(&mut self) -> Value {
        match self.rng.random_range(0..100) {
            0..70 => {
                let all = all_services();
                json!(self.pick(&all[..all.len() - GHOSTS.len()]))
            }
            70..85 => json!(self.pick(GHOSTS)),
            85..95 => json!(format!("fz-r{}", self.int(0, 50))),
            _ => json!(format!("L{}", "x".repeat(63))),
        }
    }

    fn window(&mut self) -> &'static str {
        self.pick(&[
            "10s", "30s", "1m", "5m", "10m", "10m", "15m", "1h", "6h", "24h", "1d", "7d", "30d",
            "90d", " 10m ", "0010m", "604800s", "10080m", "168h",
        ])
    }

    fn stamp(&mut self, ms: i64) -> Value {
        if self.chance(0.5) {
            json!(ms)
        } else {
            json!(rfc3339(ms, 0))
        }
    }

    /// A valid plot spec of a random kind with random options.
    fn plot_spec(&mut self) -> Map<String, Value> {
        let kind = self.pick(&KINDS);
        // Every kind it sends compares services (correlation, which does not, is not sent).
        let compares = kind != "correlation";
        let mut o = Map::new();
        o.insert("kind".into(), json!(kind));
        if compares && self.chance(0.3) {
            let k = self.int(1, 8) as usize;
            let names: Vec<Value> = all_services()
                .choose_multiple(&mut self.rng, k)
                .map(|s| json!(s))
                .collect();
            o.insert("services".into(), Value::Array(names));
        } else {
            o.insert("service".into(), self.plot_service());
        }
        match self.rng.random_range(0..100) {
            0..60 => {}
            60..75 => {
                o.insert("metric".into(), json!("latency_ms"));
            }
            75..92 => {
                o.insert("metric".into(), json!("status_code"));
            }
            _ => {
                o.insert("metric".into(), json!("fz_other"));
            }
        }
        let now = now_ms();
        match self.rng.random_range(0..100) {
            0..50 => {
                let w = self.window();
                o.insert("window".into(), json!(w));
            }
            50..70 => {}
            70..85 => {
                let until = now - self.int(0, 60_000);
                let span = match self.rng.random_range(0..6) {
                    0 => 10_000,
                    1 => 60_000,
                    2 => 600_000,
                    3 => 3_600_000,
                    4 => MAX_SPAN_MS,
                    _ => self.int(10_000, MAX_SPAN_MS),
                };
                let (from, until) = (self.stamp(until - span), self.stamp(until));
                o.insert("from".into(), from);
                o.insert("until".into(), until);
            }
            85..92 => {
                let until = self.int(10_000, 3_600_000);
                let (from, until) = (self.stamp(0), self.stamp(until));
                o.insert("from".into(), from);
                o.insert("until".into(), until);
            }
            92..97 => {
                let from = now - self.int(60_000, 6 * DAY_MS);
                let from = self.stamp(from);
                o.insert("from".into(), from);
            }
            _ => {
                let span = self.int(10_000, 3_600_000);
                let (from, until) = (
                    self.stamp(MAX_TIMESTAMP_MS - span),
                    self.stamp(MAX_TIMESTAMP_MS),
                );
                o.insert("from".into(), from);
                o.insert("until".into(), until);
            }
        }
        for (name, lo, hi, typical) in [
            ("width", 200, 4000, (300, 1400)),
            ("height", 150, 4000, (150, 900)),
        ] {
            match self.rng.random_range(0..100) {
                0..40 => {}
                40..50 => {
                    o.insert(name.into(), json!(lo));
                }
                50..52 => {
                    o.insert(name.into(), json!(hi));
                }
                _ => {
                    let v = self.int(typical.0, typical.1);
                    o.insert(name.into(), json!(v));
                }
            }
        }
        match self.rng.random_range(0..100) {
            0..30 => {}
            30..40 => {
                o.insert("bins".into(), json!(1));
            }
            40..50 => {
                o.insert("bins".into(), json!(1000));
            }
            _ => {
                let v = self.int(1, 1000);
                o.insert("bins".into(), json!(v));
            }
        }
        if matches!(kind, "histogram" | "cdf") && self.chance(0.4) {
            let v = self.chance(0.75);
            o.insert("log_x".into(), json!(v));
        } else if self.chance(0.05) {
            o.insert("log_x".into(), json!(false));
        }
        if kind == "latency_timeseries" && self.chance(0.4) {
            let v = self.chance(0.75);
            o.insert("show_max".into(), json!(v));
        } else if self.chance(0.05) {
            o.insert("show_max".into(), json!(false));
        }
        if self.chance(0.25) {
            let t = self.pick_value(&[
                json!("p99 — 🚀 ünïcödé"),
                json!(""),
                json!("   "),
                json!("W".repeat(120)),
                json!("é".repeat(120)),
                json!("\u{200B}zero\u{200D}width\u{FEFF}"),
                json!("👩‍👩‍👧‍👦 family"),
                json!("العربية עברית"),
                json!("日本語のタイトル"),
                json!("e\u{0301}\u{0301}\u{0301}"),
                json!("<script>alert(1)</script>"),
                json!("%s %n {} \\ \" '"),
            ]);
            o.insert("title".into(), t);
        }
        if self.chance(0.3) {
            let t = self.pick(&["light", "dark"]);
            o.insert("theme".into(), json!(t));
        }
        match self.rng.random_range(0..100) {
            0..15 => {
                o.insert("format".into(), json!("svg"));
            }
            15..25 => {
                o.insert("format".into(), json!("png"));
            }
            _ => {}
        }
        if self.chance(0.08) {
            // null is the same as absent for every optional field.
            let k = self.pick(&[
                "metric", "width", "height", "bins", "title", "theme", "format", "log_x",
                "show_max", "window",
            ]);
            if k != "window" || !o.contains_key("from") {
                o.insert(k.into(), Value::Null);
            }
        }
        o
    }

    fn plot(&mut self, what: &'static str, body: Vec<u8>, ct: &str, expect: Expect) -> Req {
        Req::new(what, Role::Api, Method::POST, "/api/v1/plots", expect).body(Some(ct), body)
    }

    fn plot_valid(&mut self) -> Req {
        let body = json_bytes(&Value::Object(self.plot_spec()));
        self.recent_plots.push(body.clone());
        if self.recent_plots.len() > 20 {
            self.recent_plots.remove(0);
        }
        let ct = self.json_type();
        self.plot("plot.valid", body, ct, Expect::Success)
    }

    /// A recent valid request again: identical requests share a job.
    /// Every kind over every series of extreme values, with the options that change
    /// the axes (log_x, show_max, svg): the security review's crashes, always sent.
    fn matrix(&mut self) -> Vec<Req> {
        let mut out = Vec::new();
        for kind in KINDS {
            for &(service, _) in SERVICES {
                let mut variants = vec![json!({"kind": kind, "service": service})];
                match kind {
                    "histogram" | "cdf" => {
                        variants.push(json!({"kind": kind, "service": service, "log_x": true}))
                    }
                    "latency_timeseries" => {
                        variants.push(json!({"kind": kind, "service": service, "show_max": true}))
                    }
                    _ => {}
                }
                variants
                    .push(json!({"kind": kind, "service": service, "format": "svg", "bins": 1000}));
                for spec in variants {
                    out.push(self.plot(
                        "plot.matrix",
                        json_bytes(&spec),
                        "application/json",
                        Expect::Success,
                    ));
                }
            }
            let all: Vec<&str> = SERVICES.iter().map(|(s, _)| *s).collect();
            if matches!(kind, "histogram" | "latency_timeseries" | "cdf") {
                let spec = json!({"kind": kind, "services": all, "window": "1h"});
                out.push(self.plot(
                    "plot.matrix",
                    json_bytes(&spec),
                    "application/json",
                    Expect::Success,
                ));
            }
            let spec = json!({"kind": kind, "service": EPOCH_SERVICE, "from": 0, "until": 10_000});
            out.push(self.plot(
                "plot.matrix",
                json_bytes(&spec),
                "application/json",
                Expect::Success,
            ));
        }
        out
    }

    fn plot_repeat(&mut self) -> Req {
        if self.recent_plots.is_empty() {
            return self.plot_valid();
        }
        let body = self.pick(&self.recent_plots.clone());
        self.plot("plot.repeat", body, "application/json", Expect::Success)
    }

    fn bad_plot_number(&mut self, name: &str) -> Value {
        match name {
            "width" => self.pick_value(&[
                json!(199),
                json!(4001),
                json!(0),
                json!(-1),
                json!(1.5),
                json!("800"),
                json!(true),
                json!([800]),
                json!(u64::MAX),
                json!(1e308),
                json!(i64::MIN),
                json!(4_294_967_496u64), // 2^32 + 200: a truncating cast would accept it
            ]),
            "height" => self.pick_value(&[
                json!(149),
                json!(4001),
                json!(0),
                json!(-150),
                json!(4_294_967_896u64),
                json!("600"),
                json!(1e10),
            ]),
            _ => self.pick_value(&[
                json!(0),
                json!(1001),
                json!(-1),
                json!(4_294_967_346u64),
                json!("50"),
                json!(50.5),
            ]),
        }
    }

    /// Makes a spec invalid; every change here is refused whatever else the spec holds.
    fn corrupt_plot(&mut self, o: &mut Map<String, Value>) {
        let now = now_ms();
        let kind = o
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match self.rng.random_range(0..17) {
            0 => {
                if self.chance(0.2) {
                    o.remove("kind");
                } else {
                    let v = self.pick_value(&[
                        Value::Null,
                        json!("pie"),
                        json!("HISTOGRAM"),
                        json!(""),
                        json!("histogram "),
                        json!(7),
                        json!(["histogram"]),
                    ]);
                    o.insert("kind".into(), v);
                }
            }
            1 => {
                let v = self.bad_name();
                o.insert("service".into(), v);
            }
            2 => {
                if self.chance(0.5) {
                    o.remove("service");
                }
                let nine: Vec<Value> = (0..9).map(|i| json!(format!("fz-s{i}"))).collect();
                let v = self.pick_value(&[
                    json!([]),
                    Value::Array(nine),
                    json!(["fz-normal", "fz-normal"]),
                    json!([1]),
                    json!("fz-normal"),
                    json!([null]),
                    json!(["a b"]),
                    json!({"0": "fz-normal"}),
                ]);
                o.insert("services".into(), v);
            }
            3 => {
                let v = self.bad_name();
                o.insert("metric".into(), v);
            }
            4 => {
                let v = self.pick_value(&[
                    json!("5s"),
                    json!("9s"),
                    json!("91d"),
                    json!("1y"),
                    json!("10"),
                    json!("abc"),
                    json!(""),
                    json!(" "),
                    json!("-5m"),
                    json!("1.5h"),
                    json!("10M"),
                    json!("7d1s"),
                    json!("99999999999999999999d"),
                    json!(600),
                    json!(["10m"]),
                ]);
                o.insert("window".into(), v);
            }
            5 => {
                o.insert("window".into(), json!("10m"));
                o.insert("from".into(), json!(now - 60_000));
            }
            6 => {
                o.remove("window");
                let until = now - self.int(0, 60_000);
                let from = match self.rng.random_range(0..4) {
                    0 => until + self.int(1, MAX_SPAN_MS),
                    1 => until - self.int(0, 9_999),
                    2 => until - MAX_SPAN_MS - self.int(1, 1_000_000),
                    _ => until,
                };
                let (from, until) = (self.stamp(from), self.stamp(until));
                o.insert("from".into(), from);
                o.insert("until".into(), until);
            }
            7 => {
                o.remove("window");
                let v = self.bad_range_timestamp();
                o.insert("from".into(), v);
                o.insert("until".into(), json!(now));
            }
            8 => {
                o.remove("window");
                o.insert("from".into(), json!(now - 600_000));
                let v = self.bad_range_timestamp();
                o.insert("until".into(), v);
            }
            9 => {
                o.remove("window");
                o.remove("from");
                o.insert("until".into(), json!(now));
            }
            10..=12 => {
                let name = ["width", "height", "bins"][self.rng.random_range(0..3)];
                let v = self.bad_plot_number(name);
                o.insert(name.into(), v);
            }
            13 => {
                if matches!(kind.as_str(), "histogram" | "cdf") {
                    let v = self.pick_value(&[json!("yes"), json!(1), json!([true])]);
                    o.insert("log_x".into(), v);
                } else {
                    o.insert("log_x".into(), json!(true));
                }
                if kind == "latency_timeseries" {
                    o.insert("show_max".into(), json!("true"));
                } else if self.chance(0.5) {
                    o.insert("show_max".into(), json!(true));
                }
            }
            14 => {
                let v = self.pick_value(&[
                    json!("W".repeat(121)),
                    json!("é".repeat(121)),
                    json!("\u{7}bell"),
                    json!("line\nbreak"),
                    json!("nul\u{0}"),
                    json!("tab\there"),
                    json!("c1\u{9f}"),
                    json!(5),
                    json!(["t"]),
                ]);
                o.insert("title".into(), v);
            }
            15 => {
                if self.chance(0.5) {
                    let v = self.pick_value(&[
                        json!("blue"),
                        json!(""),
                        json!("Dark"),
                        json!(1),
                        json!(" light"),
                    ]);
                    o.insert("theme".into(), v);
                } else {
                    let v = self.pick_value(&[
                        json!("jpg"),
                        json!("SVG"),
                        json!("png "),
                        json!(1),
                        json!("gif"),
                    ]);
                    o.insert("format".into(), v);
                }
            }
            _ => {
                let k = self.pick(&["colour", "", "a/b~c", "Kind", "__proto__", "service_name"]);
                let k = if self.chance(0.1) {
                    "k".repeat(300)
                } else {
                    k.to_owned()
                };
                o.insert(k, json!(1));
            }
        }
    }

    fn plot_invalid(&mut self) -> Req {
        let mut spec = self.plot_spec();
        let n = if self.chance(0.6) { 1 } else { self.int(2, 3) };
        for _ in 0..n {
            self.corrupt_plot(&mut spec);
        }
        self.plot(
            "plot.invalid",
            json_bytes(&Value::Object(spec)),
            "application/json",
            Expect::Rejected,
        )
    }

    /// Random keys with random values, valid or not: only the general rules apply.
    fn plot_random(&mut self) -> Req {
        let pool = [
            json!("histogram"),
            json!("heatmap"),
            json!("cdf"),
            json!("fz-huge"),
            json!("fz-max"),
            json!(["fz-tiny", "fz-max"]),
            json!(["fz-huge", "fz-huge"]),
            json!("10m"),
            json!(0),
            json!(200),
            json!(4000),
            json!(1000),
            json!(-1),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(1e308),
            json!(5e-324),
            json!(-0.0),
            json!(true),
            json!(false),
            Value::Null,
            json!(""),
            json!({}),
            json!([]),
            json!("svg"),
            json!("dark"),
        ];
        let keys = [
            "kind", "service", "services", "metric", "window", "from", "until", "width", "height",
            "bins", "title", "theme", "format", "log_x", "show_max",
        ];
        let mut o = Map::new();
        if self.chance(0.8) {
            let k = self.pick(&KINDS);
            o.insert("kind".into(), json!(k));
        }
        for _ in 0..self.int(0, 8) {
            let k = self.pick(&keys);
            let v = self.pick_value(&pool);
            o.insert(k.into(), v);
        }
        self.plot(
            "plot.random",
            json_bytes(&Value::Object(o)),
            "application/json",
            Expect::Any,
        )
    }

    // -- bodies --

    fn body_junk(&mut self) -> Req {
        let path = self.pick(&["/api/v1/metrics", "/api/v1/plots"]);
        let valid = if path == "/api/v1/plots" {
            json_bytes(&Value::Object(self.plot_spec()))
        } else {
            json_bytes(&self.random_sample())
        };
        let req = Req::new("body.junk", Role::Api, Method::POST, path, Expect::Rejected);
        if self.chance(0.35) {
            // A valid body, not declared as JSON.
            let ct = self.pick(&[
                None,
                Some("text/plain"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data; boundary=x"),
                Some("application/xml"),
                Some("application/jsonx"),
                Some("json"),
                Some("application/json+foo"),
                Some("text/json"),
                Some(""),
            ]);
            return req.body(ct, valid);
        }
        let body: Vec<u8> = match self.rng.random_range(0..20) {
            0 => Vec::new(),
            1 => b"{".to_vec(),
            2 => b"[1,".to_vec(),
            3 => b"{\"kind\": histogram}".to_vec(),
            4 => b"nul".to_vec(),
            5 => b"{}}".to_vec(),
            6 => [b"\xEF\xBB\xBF".as_slice(), &valid].concat(),
            7 => vec![0xff, 0xfe, 0x00, 0x7b],
            8 => b"NaN".to_vec(),
            9 => "[".repeat(100_000).into_bytes(),
            10 => b"\"unterminated".to_vec(),
            11 => b"{\"a\":1,}".to_vec(),
            12 => b"null".to_vec(),
            13 => b"42".to_vec(),
            14 => b"\"a string\"".to_vec(),
            15 => b"true".to_vec(),
            16 => b"[]".to_vec(),
            17 => b"{}".to_vec(),
            18 => [valid.as_slice(), b" trailing"].concat(),
            _ => {
                let mut v = valid;
                v.truncate(v.len() / 2);
                v
            }
        };
        req.body(Some("application/json"), body)
    }

    fn body_oversize(&mut self) -> Req {
        let path = self.pick(&["/api/v1/metrics", "/api/v1/plots"]);
        let mut body = Vec::with_capacity(MAX_BODY_BYTES + 16);
        body.push(b'[');
        body.resize(MAX_BODY_BYTES + 1, b' ');
        body.push(b']');
        let mut req = Req::new(
            "body.oversize",
            Role::Api,
            Method::POST,
            path,
            Expect::Rejected,
        )
        .body(Some("application/json"), body);
        req.may_cut_off = true;
        req
    }

    // -- reads --

    fn image_suffix(&mut self) -> &'static str {
        self.pick(&["", "", "/png", "/image"])
    }

    fn job_known(&mut self) -> Req {
        if self.known.is_empty() {
            return self.job_random();
        }
        let id = self.known[self.rng.random_range(0..self.known.len())].clone();
        let suffix = self.image_suffix();
        let method = if self.chance(0.05) {
            Method::HEAD
        } else {
            Method::GET
        };
        let expect = if suffix.is_empty() {
            Expect::Success
        } else {
            Expect::Any
        };
        let query = self.ticket_query();
        Req::new(
            "job.known",
            Role::Api,
            method,
            format!("/api/v1/plots/{id}{suffix}{query}"),
            expect,
        )
    }

    /// Sometimes `?ticket=` with a ticket the server issued (a browser's credential).
    fn ticket_query(&mut self) -> String {
        match self.ticket.clone() {
            Some(t) if self.chance(0.2) => format!("?ticket={t}"),
            _ => String::new(),
        }
    }

    fn job_random(&mut self) -> Req {
        let id = uuid::Uuid::from_u128(self.rng.random());
        let suffix = self.image_suffix();
        Req::new(
            "job.random",
            Role::Api,
            Method::GET,
            format!("/api/v1/plots/{id}{suffix}"),
            Expect::Rejected,
        )
    }

    fn job_bad_id(&mut self) -> Req {
        let uuid = uuid::Uuid::from_u128(self.rng.random());
        let id = match self.rng.random_range(0..14) {
            0 => "abc".to_owned(),
            1 => "123".to_owned(),
            2 => format!("{uuid}0"),
            3 => uuid.simple().to_string(),
            4 => "%FF%FE".to_owned(),
            5 => "%00".to_owned(),
            6 => "..%2F..%2Fetc%2Fpasswd".to_owned(),
            7 => "%20".to_owned(),
            8 => "a".repeat(5_000),
            9 => "a".repeat(9_000),
            10 => "%C3%BC".to_owned(),
            11 => "-1".to_owned(),
            12 => format!("{uuid}%0A"),
            _ => format!("{{{uuid}}}"),
        };
        let suffix = self.image_suffix();
        Req::new(
            "job.bad_id",
            Role::Api,
            Method::GET,
            format!("/api/v1/plots/{id}{suffix}"),
            Expect::Rejected,
        )
    }

    fn read_misc(&mut self) -> Req {
        if self.chance(0.1) {
            let query = self.ticket_query();
            return Req::new(
                "read.misc",
                Role::Events,
                Method::GET,
                format!("/api/v1/events{query}"),
                Expect::Success,
            );
        }
        let (role, method, path, expect) = self.pick(&[
            (Role::Api, Method::GET, "/api/v1/services", Expect::Success),
            (Role::Api, Method::GET, "/api/v1/services", Expect::Success),
            (
                Role::Api,
                Method::GET,
                "/api/v1/services?x=1&x=2",
                Expect::Any,
            ),
            (Role::Api, Method::GET, "/healthz", Expect::Success),
            (Role::Api, Method::GET, "/readyz", Expect::Any),
            (Role::Api, Method::HEAD, "/healthz", Expect::Success),
            (
                Role::Api,
                Method::GET,
                "/api/v1/openapi.json",
                Expect::Success,
            ),
            (Role::Api, Method::GET, "/", Expect::Success),
            (
                Role::Api,
                Method::GET,
                "/?service=fz-normal&window=15m&theme=dark",
                Expect::Success,
            ),
            (
                Role::Api,
                Method::GET,
                "/?service=%3Cscript%3E&window=99y",
                Expect::Any,
            ),
            (Role::Api, Method::POST, "/api/v1/tickets", Expect::Success),
            (Role::Events, Method::GET, "/healthz", Expect::Success),
            (Role::Events, Method::GET, "/readyz", Expect::Any),
        ]);
        Req::new("read.misc", role, method, path, expect)
    }

    fn route_unknown(&mut self) -> Req {
        let id = uuid::Uuid::from_u128(self.rng.random());
        let (role, path, expect) = match self.rng.random_range(0..14) {
            0 => (Role::Api, "/api/v2/plots".to_owned(), Expect::Rejected),
            1 => (Role::Api, "/api/v1/plot".to_owned(), Expect::Rejected),
            2 => (
                Role::Api,
                format!("/api/v1/plots/{id}/thumbnail"),
                Expect::Rejected,
            ),
            3 => (
                Role::Api,
                format!("/api/v1/plots/{id}/png/x"),
                Expect::Rejected,
            ),
            4 => (
                Role::Api,
                "/api/v1/plots/a/b/c/d".to_owned(),
                Expect::Rejected,
            ),
            5 => (Role::Api, "/api/v1/metrics/".to_owned(), Expect::Any),
            6 => (Role::Api, "/api/v1/plots/".to_owned(), Expect::Any),
            7 => (
                Role::Api,
                "/%2e%2e/%2e%2e/etc/passwd".to_owned(),
                Expect::Any,
            ),
            8 => (
                Role::Api,
                format!("/{}", "x".repeat(9_000)),
                Expect::Rejected,
            ),
            9 => (Role::Api, "/favicon.ico".to_owned(), Expect::Any),
            10 => (Role::Api, "/api".to_owned(), Expect::Rejected),
            11 => (Role::Events, "/api/v1/event".to_owned(), Expect::Rejected),
            12 => (Role::Events, "/api/v2/events".to_owned(), Expect::Rejected),
            _ => (Role::Api, "/api/v1/%FF%FE".to_owned(), Expect::Rejected),
        };
        Req::new("route.unknown", role, Method::GET, path, expect)
    }

    fn route_method(&mut self) -> Req {
        let id = uuid::Uuid::from_u128(self.rng.random());
        let plot = format!("/api/v1/plots/{id}");
        let (role, method, path) = self.pick(&[
            (Role::Api, Method::GET, "/api/v1/metrics"),
            (Role::Api, Method::PUT, "/api/v1/metrics"),
            (Role::Api, Method::DELETE, "/api/v1/metrics"),
            (Role::Api, Method::PATCH, "/api/v1/metrics"),
            (Role::Api, Method::HEAD, "/api/v1/metrics"),
            (Role::Api, Method::GET, "/api/v1/plots"),
            (Role::Api, Method::PUT, "/api/v1/plots"),
            (Role::Api, Method::DELETE, "/api/v1/plots"),
            (Role::Api, Method::OPTIONS, "/api/v1/plots"),
            (Role::Api, Method::POST, "PLOT"),
            (Role::Api, Method::DELETE, "PLOT"),
            (Role::Api, Method::PUT, "PLOT"),
            (Role::Api, Method::POST, "PLOT/png"),
            (Role::Api, Method::POST, "/healthz"),
            (Role::Api, Method::DELETE, "/api/v1/services"),
            (Role::Api, Method::GET, "/api/v1/tickets"),
            (Role::Events, Method::POST, "/api/v1/events"),
            (Role::Events, Method::PUT, "/api/v1/events"),
            (Role::Events, Method::DELETE, "/readyz"),
        ]);
        let path = path.replace("PLOT", &plot);
        let mut req = Req::new("route.method", role, method.clone(), path, Expect::Rejected);
        if method != Method::HEAD && method != Method::GET && self.chance(0.5) {
            req = req.body(Some("application/json"), b"{}".to_vec());
        }
        req
    }

    fn view_key(&mut self) -> String {
        let (service, _) = self.pick(SERVICES);
        let kind = self.pick(&KINDS);
        let window = self.pick(&["5m", "15m", "1h"]);
        let theme = self.pick(&["light", "dark"]);
        format!("{service}/{kind}/{window}/{theme}/640x360")
    }

    fn events(&mut self) -> Req {
        let (query, expect) = match self.rng.random_range(0..20) {
            0..4 => (String::new(), Expect::Success),
            4..8 => (
                format!("?service={}", self.pick(SERVICES).0),
                Expect::Success,
            ),
            8 => (format!("?views={}", self.view_key()), Expect::Success),
            // The service filter is not validated (it matches nothing): either answer.
            9 => {
                let q = self.pick(&["?service=a%20b", "?service=%FF%FE", "?service="]);
                (q.to_owned(), Expect::Any)
            }
            10 => ("?views=a/b".to_owned(), Expect::Rejected),
            11 => (
                "?views=fz-normal/pie/10m/light/800x450".to_owned(),
                Expect::Rejected,
            ),
            12 => (
                "?views=fz-normal/histogram/91d/light/800x450".to_owned(),
                Expect::Rejected,
            ),
            13 => (
                "?views=fz-normal/histogram/10m/blue/800x450".to_owned(),
                Expect::Rejected,
            ),
            14 => (
                "?views=fz-normal/histogram/10m/light/99999x450".to_owned(),
                Expect::Rejected,
            ),
            15 => (format!("?views={}", "v".repeat(200)), Expect::Rejected),
            16 => {
                let many: Vec<String> = (0..33)
                    .map(|i| format!("fz-normal/histogram/{}m/light/640x360", i + 1))
                    .collect();
                (format!("?views={}", many.join(",")), Expect::Rejected)
            }
            17 => {
                let q = self.pick(&["?views=%C3%BC", "?views=%FF", "?views=,,,a"]);
                (q.to_owned(), Expect::Rejected)
            }
            18 => ("?service=a&service=b".to_owned(), Expect::Any),
            _ => ("?ticket=forged.ticket".to_owned(), Expect::Rejected),
        };
        let mut req = Req::new(
            "events",
            Role::Events,
            Method::GET,
            format!("/api/v1/events{query}"),
            expect,
        )
        .header("accept", "text/event-stream");
        if self.chance(0.2) {
            let (id, well_formed) = self.pick(&[
                ("0-0", true),
                ("99999999999999-0", true),
                ("18446744073709551615-18446744073709551615", true),
                ("garbage", false),
                ("-1", false),
                ("1-1-1", false),
                ("01-0", false),
                ("18446744073709551616-0", false),
            ]);
            if !well_formed && req.expect == Expect::Success {
                req.expect = Expect::Rejected;
            }
            req = req.header("last-event-id", id);
        }
        req
    }

    fn auth_junk(&mut self) -> Req {
        let id = uuid::Uuid::from_u128(self.rng.random());
        if self.chance(0.3) {
            let path = self.pick(&[
                "/api/v1/services?ticket=forged",
                "/api/v1/services?ticket=",
                "PLOT?ticket=a.b",
            ]);
            let path = path.replace("PLOT", &format!("/api/v1/plots/{id}"));
            return Req::new("auth.junk", Role::Api, Method::GET, path, Expect::Rejected);
        }
        let value = self.pick(&[
            "Bearer nope",
            "Basic Zm9vOmJhcg==",
            "Bearer ",
            "bearer",
            "Token x",
            "Bearer a b c",
        ]);
        let req = match self.rng.random_range(0..3) {
            0 => Req::new(
                "auth.junk",
                Role::Api,
                Method::GET,
                "/api/v1/services",
                Expect::Rejected,
            ),
            1 => {
                let spec = json_bytes(&Value::Object(self.plot_spec()));
                Req::new(
                    "auth.junk",
                    Role::Api,
                    Method::POST,
                    "/api/v1/plots",
                    Expect::Rejected,
                )
                .body(Some("application/json"), spec)
            }
            _ => Req::new(
                "auth.junk",
                Role::Events,
                Method::GET,
                "/api/v1/events",
                Expect::Rejected,
            ),
        };
        req.header("authorization", value)
    }
}

// ---- Sending and checking ------------------------------------------------------------

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn send(client: &reqwest::Client, base: &str, req: &Req) -> Result<Answer, String> {
    let mut builder = client
        .request(req.method.clone(), format!("{base}{}", req.path))
        .timeout(REQUEST_TIMEOUT);
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = &req.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let streaming = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    // An event stream never ends: its headers are the answer.
    let body = if streaming || req.method == Method::HEAD {
        Vec::new()
    } else {
        response
            .bytes()
            .await
            .map_err(|e| error_chain(&e))?
            .to_vec()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    s
}

fn header(answer: &Answer, name: reqwest::header::HeaderName) -> Option<&str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The general rules and the generator's expectation; the problems found.
fn check(req: &Req, a: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let status = a.status;
    let content_type = header(a, CONTENT_TYPE).unwrap_or("");
    let retry_after = header(a, RETRY_AFTER).is_some();
    let readyz = req.path == "/readyz" && status == 503;
    if readyz {
        // /readyz answers 503 with its own document naming the failing dependency.
        let body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        if !body["checks"].is_object() {
            problems.push(format!("/readyz 503 without checks: {content_type}"));
        }
    } else if status >= 500 && !(status == 503 && retry_after) {
        problems.push(format!("{status} (a 5xx other than 503 with Retry-After)"));
    }
    if req.path.starts_with("/v1/") {
        // OTLP answers errors as a google.rpc.Status, not problem+json.
        problems.extend(otlp::check_status(req, status, content_type, &a.body));
    } else if status >= 400 && !readyz {
        if !content_type.starts_with("application/problem+json") {
            problems.push(format!(
                "{status} with content-type {content_type:?}, not application/problem+json"
            ));
        }
        if a.body.len() > 128 * 1024 {
            problems.push(format!("{status} problem body of {} bytes", a.body.len()));
        }
        if req.method != Method::HEAD {
            match serde_json::from_slice::<Value>(&a.body) {
                Ok(body) => {
                    if !body["code"].is_string() {
                        problems.push(format!("{status} problem without a string code"));
                    }
                    if body["status"] != json!(status) {
                        problems.push(format!("{status} problem says status {}", body["status"]));
                    }
                }
                Err(e) => problems.push(format!("{status} body is not JSON ({e})")),
            }
        }
    }
    if status == 429 && !retry_after {
        problems.push("429 without Retry-After".to_owned());
    }
    if status == 409
        && !retry_after
        && serde_json::from_slice::<Value>(&a.body).is_ok_and(|b| b["code"] == "not_ready")
    {
        problems.push("409 not_ready without Retry-After".to_owned());
    }
    let overloaded = matches!(status, 429 | 503) && retry_after;
    match req.expect {
        Expect::Success if !(200..300).contains(&status) && !overloaded => {
            problems.push(format!("{status} for a request built valid"));
        }
        Expect::Rejected if !(400..500).contains(&status) => {
            problems.push(format!("{status} for a request built invalid"));
        }
        _ => {}
    }
    if let (Some(n), 200) = (req.accepted, status) {
        let body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        if body["accepted"] != json!(n) {
            problems.push(format!("accepted {} of {n} samples", body["accepted"]));
        }
    }
    problems
}

/// An image answer is what its content type says: a whole PNG, or an SVG document.
fn check_image(a: &Answer) -> Result<(), String> {
    match header(a, CONTENT_TYPE).unwrap_or("") {
        "image/png" => {
            let decoder = png::Decoder::new(std::io::Cursor::new(&a.body));
            let mut reader = decoder
                .read_info()
                .map_err(|e| format!("PNG header: {e}"))?;
            let size = reader.output_buffer_size().ok_or("PNG without a size")?;
            let mut buf = vec![0; size];
            let info = reader
                .next_frame(&mut buf)
                .map_err(|e| format!("PNG data: {e}"))?;
            if !(200..=4000).contains(&info.width) || !(150..=4000).contains(&info.height) {
                return Err(format!("PNG of {}x{}", info.width, info.height));
            }
            Ok(())
        }
        "image/svg+xml" if a.body.starts_with(b"<svg") => Ok(()),
        other => Err(format!(
            "content-type {other:?}, {} bytes starting {:?}",
            a.body.len(),
            String::from_utf8_lossy(&a.body[..a.body.len().min(16)])
        )),
    }
}

/// A job a request was pointed at: the first request that named it.
struct Tracked {
    request: String,
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, usize>,
    by_what: BTreeMap<&'static str, BTreeMap<u16, usize>>,
    transport_errors: usize,
    cut_off: usize,
    violations: Vec<String>,
    jobs: HashMap<String, Tracked>,
    accepted_202: usize,
    deduplicated: usize,
}

impl Tally {
    fn violation(&mut self, v: String) {
        self.violations.push(v);
    }

    fn record(&mut self, fz: &mut Gen, req: &Req, answer: Result<Answer, String>) {
        let a = match answer {
            Ok(a) => a,
            Err(_) if req.may_cut_off => {
                self.cut_off += 1;
                return;
            }
            Err(e) => {
                self.transport_errors += 1;
                self.violation(format!("transport error {e} ← {}", req.describe()));
                return;
            }
        };
        *self.by_status.entry(a.status).or_default() += 1;
        *self
            .by_what
            .entry(req.what)
            .or_default()
            .entry(a.status)
            .or_default() += 1;
        for p in check(req, &a) {
            self.violation(format!(
                "{p} ← {} → {}",
                req.describe(),
                excerpt(&String::from_utf8_lossy(&a.body), 400)
            ));
        }
        if req.method == Method::POST
            && req.path == "/api/v1/plots"
            && matches!(a.status, 200 | 202)
        {
            self.plot_answer(fz, req, &a);
        }
        if req.path == "/api/v1/tickets"
            && a.status == 200
            && let Ok(body) = serde_json::from_slice::<Value>(&a.body)
        {
            match body["ticket"].as_str() {
                Some(t) => fz.ticket = Some(t.to_owned()),
                None => self.violation(format!("no ticket in {body} ← {}", req.describe())),
            }
        }
        let path = req.path.split('?').next().unwrap_or("");
        if req.what == "job.known" && req.method == Method::GET && a.status == 200 {
            if path.ends_with("/png") || path.ends_with("/image") {
                if let Err(e) = check_image(&a) {
                    self.violation(format!("bad image: {e} ← {}", req.describe()));
                }
            } else {
                let body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                let known = ["queued", "rendering", "done", "failed"];
                if !path.ends_with(body["id"].as_str().unwrap_or("?"))
                    || !known.iter().any(|s| body["status"] == *s)
                {
                    self.violation(format!("bad job state {body} ← {}", req.describe()));
                }
            }
        }
    }

    fn plot_answer(&mut self, fz: &mut Gen, req: &Req, a: &Answer) {
        let body: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let Some(id) = body["id"].as_str().map(str::to_owned) else {
            self.violation(format!(
                "{} without a job id ← {} → {body}",
                a.status,
                req.describe()
            ));
            return;
        };
        let location = header(a, LOCATION).unwrap_or("");
        if location != format!("/api/v1/plots/{id}") {
            self.violation(format!(
                "{} for job {id} with Location {location:?} ← {}",
                a.status,
                req.describe()
            ));
        }
        let deduplicated = body["deduplicated"] == json!(true);
        match (a.status, deduplicated) {
            (202, false) if body["status"] != "queued" => self.violation(format!(
                "new job {id} answered with status {} ← {}",
                body["status"],
                req.describe()
            )),
            (200, false) => self.violation(format!(
                "200 for a plot request that is not deduplicated ← {} → {body}",
                req.describe()
            )),
            _ => {}
        }
        if a.status == 202 {
            self.accepted_202 += 1;
        }
        if deduplicated {
            self.deduplicated += 1;
        }
        fz.remember(id.clone());
        self.jobs.entry(id).or_insert_with(|| Tracked {
            request: req.describe(),
        });
    }
}

// ---- Targets -------------------------------------------------------------------------

struct Target {
    name: &'static str,
    api: String,
    events: String,
    /// Roles started as processes (distributed).
    processes: Vec<Plotq>,
    /// Roles started in process (standalone), on a runtime whose threads are named
    /// [`IN_PROCESS_THREADS`], so panics on them are recorded by [`record_panics`].
    app: Option<TestApp>,
}

/// The name of the threads the in-process roles run on.
const IN_PROCESS_THREADS: &str = "plotq-fuzz-in-process";

/// Panics on threads named [`IN_PROCESS_THREADS`] since [`record_panics`] was first called.
static PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Installs (once) a panic hook that records panics on the in-process roles' threads (a
/// role's task or a render on the blocking pool), then runs the previous hook, which
/// prints them as before. The in-process counterpart of scanning a process's log.
fn record_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(IN_PROCESS_THREADS) {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(info.to_string());
            }
            previous(info);
        }));
    });
}

/// Series every plot kind can find, with the extreme values of the review.
async fn seed_data(client: &reqwest::Client, api: &str, fz: &mut Gen) {
    let now = now_ms();
    let mut batch = Vec::new();
    for &(service, family) in SERVICES {
        for i in 0..120 {
            let ts = now - 1_000 - i * 4_000;
            batch.push(json!({"service": service, "metric": "latency_ms",
                "value": fz.value(family), "timestamp": ts}));
            if i % 2 == 0 {
                batch.push(json!({"service": service, "metric": "status_code",
                    "value": fz.status_value(), "timestamp": ts}));
                batch.push(json!({"service": service, "metric": "fz_other",
                    "value": fz.value(Family::Mixed), "timestamp": ts}));
            }
        }
    }
    for i in 0..50 {
        batch.push(json!({"service": EPOCH_SERVICE, "metric": "latency_ms",
            "value": fz.value(Family::Mixed), "timestamp": now - 2_000 - i * 200}));
    }
    batch.push(
        json!({"service": ONE_SERVICE, "metric": "latency_ms", "value": 42.0,
        "timestamp": now - 5_000}),
    );
    post_samples(client, api, &batch).await;
}

fn final_events(events: &[SseEvent]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for e in events {
        if matches!(e.event.as_str(), "plot.ready" | "plot.failed")
            && let Some(id) = e.data["id"].as_str()
        {
            out.entry(id.to_owned()).or_default().push(e.event.clone());
        }
    }
    out
}

/// Failure reasons, with numbers blanked so similar ones group.
fn reason_group(reason: &str) -> String {
    let mut s: String = reason
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    if let Some(i) = s.find(" in the ") {
        s.truncate(i);
    }
    excerpt(&s, 90)
}

/// A violation's gist for grouping: words with digits (ids, sizes, times, tickets)
/// blanked.
fn shape(violation: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for c in violation.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            word.push(c);
            continue;
        }
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(&word);
        }
        word.clear();
        out.push(c);
    }
    excerpt(&out, 240)
}

/// Reasons a job may not fail for: crashes, unbounded renders, or giving up on healthy
/// dependencies — never the input's fault.
fn is_crash(reason: &str) -> bool {
    [
        "internal error",
        "panic",
        "drawing failed",
        "renderer did not finish",
        "took longer than",
        "render slot",
        "gave up after",
    ]
    .iter()
    .any(|p| reason.contains(p))
}

async fn fuzz(target: &mut Target) {
    let n = requests_per_target();
    let seed = seed();
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let mut fz = Gen::new(seed);
    let recorder = record_events(&format!("{}/api/v1/events", target.events)).await;
    seed_data(&client, &target.api, &mut fz).await;

    // The requests, CONCURRENCY at a time.
    let mut tally = Tally::default();
    let mut in_flight = FuturesUnordered::new();
    let base_of = |role: Role| match role {
        Role::Api => target.api.clone(),
        Role::Events => target.events.clone(),
    };
    let sending = Instant::now();
    let mut matrix = fz.matrix();
    let n_matrix = matrix.len();
    for i in 0..n_matrix + n {
        if in_flight.len() >= CONCURRENCY
            && let Some((req, answer)) = in_flight.next().await
        {
            tally.record(&mut fz, &req, answer);
        }
        let req = if i < n_matrix {
            matrix.remove(0)
        } else {
            fz.next()
        };
        let (client, base) = (client.clone(), base_of(req.role));
        in_flight.push(async move {
            let answer = send(&client, &base, &req).await;
            (req, answer)
        });
    }
    while let Some((req, answer)) = in_flight.next().await {
        tally.record(&mut fz, &req, answer);
    }
    let send_time = sending.elapsed();

    // Every job a request was pointed at ends done or failed.
    let draining = Instant::now();
    let deadline = Duration::from_secs(120) + Duration::from_millis(100) * tally.jobs.len() as u32;
    let until = tokio::time::Instant::now() + deadline;
    let ids: Vec<String> = tally.jobs.keys().cloned().collect();
    let finals: Vec<(String, Result<Value, String>)> = futures::stream::iter(ids)
        .map(|id| {
            let (client, api) = (client.clone(), target.api.clone());
            async move {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                let state = wait_finished(&client, &api, &id, left).await;
                (id, state)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let drain_time = draining.elapsed();
    let mut states: HashMap<String, Value> = HashMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (id, state) in finals {
        match state {
            Ok(state) => {
                if state["status"] == "failed" {
                    let reason = state["error"].as_str().unwrap_or("(no reason)").to_owned();
                    if is_crash(&reason) {
                        tally.violation(format!(
                            "job {id} failed with a crash: {reason} ← {}",
                            tally.jobs[&id].request
                        ));
                    }
                    *reasons.entry(reason_group(&reason)).or_default() += 1;
                }
                states.insert(id, state);
            }
            Err(e) => {
                let request = &tally.jobs[&id].request;
                tally.violation(format!("{e} ← {request}"));
            }
        }
    }

    // Each of them got exactly one final event, matching its state; nothing got two.
    let waiting = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let seen = final_events(&recorder.snapshot());
        if tally.jobs.keys().all(|id| seen.contains_key(id))
            || tokio::time::Instant::now() >= waiting
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // late duplicates
    let events = recorder.snapshot();
    let seen = final_events(&events);
    for (id, tracked) in &tally.jobs {
        let got = seen.get(id).cloned().unwrap_or_default();
        let want = match states.get(id).map(|s| s["status"].clone()) {
            Some(s) if s == "done" => Some("plot.ready"),
            Some(s) if s == "failed" => Some("plot.failed"),
            _ => None,
        };
        if got.len() != 1 {
            tally.violations.push(format!(
                "job {id} has {} final events {got:?} ← {}",
                got.len(),
                tracked.request
            ));
        } else if let Some(want) = want
            && got[0] != want
        {
            tally.violations.push(format!(
                "job {id} is {} but its event is {} ← {}",
                states[id]["status"], got[0], tracked.request
            ));
        }
    }
    for (id, got) in &seen {
        if got.len() > 1 && !tally.jobs.contains_key(id) {
            tally.violations.push(format!(
                "job {id} (not requested by the fuzz) has final events {got:?}"
            ));
        }
    }

    // Nothing crashed: every process is alive, answers /healthz and logged no panic.
    for p in &mut target.processes {
        if let Some(status) = p.exit_status() {
            tally.violations.push(format!(
                "process exited with {status}; log: {}",
                p.log.display()
            ));
            continue;
        }
        if p.base.is_some() {
            let r = client.get(p.url("/healthz")).send().await;
            if !r.as_ref().is_ok_and(|r| r.status() == 200) {
                tally.violations.push(format!(
                    "{} /healthz: {:?}",
                    p.url(""),
                    r.map(|r| r.status())
                ));
            }
        }
        let log = p.log_text();
        for line in log
            .lines()
            .filter(|l| {
                l.contains("panicked at")
                    || l.contains("panic while")
                    || l.contains("task panicked")
            })
            .take(5)
        {
            tally.violations.push(format!(
                "panic in {}: {}",
                p.log.display(),
                excerpt(line, 600)
            ));
        }
    }

    // Nothing crashed in process: every role's task is still running, the HTTP roles
    // answer /healthz, and no thread of theirs panicked.
    if let Some(app) = &target.app {
        if !app.all_running() {
            tally
                .violations
                .push("an in-process role's task ended during the fuzz".to_owned());
        }
        for base in std::iter::once(&app.api).chain(&app.notifiers) {
            let r = client.get(format!("{base}/healthz")).send().await;
            if !r.as_ref().is_ok_and(|r| r.status() == 200) {
                tally
                    .violations
                    .push(format!("{base} /healthz: {:?}", r.map(|r| r.status())));
            }
        }
        let panics = std::mem::take(&mut *PANICS.lock().unwrap_or_else(|e| e.into_inner()));
        for panic in panics.iter().take(5) {
            tally
                .violations
                .push(format!("panic in process: {}", excerpt(panic, 600)));
        }
    }

    // The summary.
    let done = states.values().filter(|s| s["status"] == "done").count();
    let failed = states.values().filter(|s| s["status"] == "failed").count();
    let mut summary = format!(
        "fuzz {}: seed {seed:#x}, {n} random requests (+{n_matrix} fixed) in {:.1}s ({:.0}/s), jobs drained in {:.1}s, total {:.1}s\n",
        target.name,
        send_time.as_secs_f64(),
        (n + n_matrix) as f64 / send_time.as_secs_f64(),
        drain_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    let _ = writeln!(
        summary,
        "  by status: {:?}; transport errors {}, oversized bodies cut off {}",
        tally.by_status, tally.transport_errors, tally.cut_off
    );
    for (what, statuses) in &tally.by_what {
        let _ = writeln!(summary, "    {what:<22} {statuses:?}");
    }
    let _ = writeln!(
        summary,
        "  jobs: {} tracked ({} answers 202, {} deduplicated): {done} done, {failed} failed, {} unfinished",
        tally.jobs.len(),
        tally.accepted_202,
        tally.deduplicated,
        tally.jobs.len() - done - failed,
    );
    // Which kinds were drawn, and how many of those drew the extreme series.
    let extreme: Vec<&str> = SERVICES
        .iter()
        .filter(|(_, f)| !matches!(f, Family::Normal))
        .map(|(s, _)| *s)
        .collect();
    let mut drawn: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for state in states.values().filter(|s| s["status"] == "done") {
        let kind = state["spec"]["kind"].as_str().unwrap_or("?").to_owned();
        let services = state["spec"]["services"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let entry = drawn.entry(kind).or_default();
        entry.0 += 1;
        if services
            .iter()
            .any(|s| extreme.contains(&s.as_str().unwrap_or("")))
        {
            entry.1 += 1;
        }
    }
    let _ = writeln!(
        summary,
        "  drawn (done, of which over extreme series): {drawn:?}"
    );
    let mut reasons: Vec<(usize, String)> = reasons.into_iter().map(|(r, c)| (c, r)).collect();
    reasons.sort_by(|a, b| b.cmp(a));
    for (count, reason) in reasons.iter().take(12) {
        let _ = writeln!(summary, "    {count:>5}× {reason}");
    }
    let _ = writeln!(
        summary,
        "  events: {} recorded, {} final, {} stream reconnects",
        events.len(),
        seen.values().map(Vec::len).sum::<usize>(),
        recorder.reconnects()
    );
    println!("{summary}");
    if !tally.violations.is_empty() {
        // Alike violations (same problem, same kind of request) are shown once, counted.
        let mut groups: Vec<(String, usize, &String)> = Vec::new();
        for v in &tally.violations {
            let key = shape(v.split(" → ").next().unwrap_or(v));
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some(group) => group.1 += 1,
                None => groups.push((key, 1, v)),
            }
        }
        panic!(
            "fuzz {} (seed {seed:#x}; rerun with PLOTQ_FUZZ_SEED={seed:#x} PLOTQ_FUZZ_REQUESTS={n}): {} violations of {} kinds:\n{}\n\n{summary}",
            target.name,
            tally.violations.len(),
            groups.len(),
            groups
                .iter()
                .take(40)
                .map(|(_, count, example)| format!("- {count}× {example}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

/// Standalone, started in process; the runtime is built here so its threads carry
/// [`IN_PROCESS_THREADS`] and a panic on any of them is a violation.
#[test]
fn fuzz_standalone() {
    record_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(IN_PROCESS_THREADS)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let app = TestApp::spawn_with(
            Backend::Memory,
            Options {
                // Generous limits, so rate limiting hides no behaviour (the harness lifts
                // the plot-request limits to 100,000 per second and burst).
                api: vec![
                    "--ingest-samples-per-sec",
                    "100000000",
                    "--ingest-burst",
                    "100000000",
                    "--sse-connections-per-caller",
                    "10000",
                ],
                ..Options::default()
            },
        )
        .await;
        app.wait_ready(READY).await;
        let mut target = Target {
            name: "standalone",
            api: app.api.clone(),
            events: app.notifiers[0].clone(),
            processes: Vec::new(),
            app: Some(app),
        };
        fuzz(&mut target).await;
        // Every role stops cleanly when asked (a panicked or failed task fails here).
        target.app.take().expect("the app").stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_distributed_roles() {
    require_services();
    let ns = namespace("fzd");
    // One deployment: the api and the notifier share the ticket key (as README says), so
    // a ticket from the api opens the notifier's stream.
    let mut env = FUZZ_ENV.to_vec();
    env.push(("PLOTQ_TICKET_SECRET", "fuzz-ticket-secret-0123456789abcdef"));
    let api = Plotq::start(&["api"], &ns, &env);
    let notifier = Plotq::start(&["notifier"], &ns, &env);
    let w1 = Plotq::start(&["worker"], &ns, &env);
    let w2 = Plotq::start(&["worker"], &ns, &env);
    let client = reqwest::Client::new();
    wait_ready(&client, &api.url("/readyz"), READY).await;
    wait_ready(&client, &notifier.url("/readyz"), READY).await;
    let mut target = Target {
        name: "distributed",
        api: api.base.clone().unwrap(),
        events: notifier.base.clone().unwrap(),
        processes: vec![api, notifier, w1, w2],
        app: None,
    };
    // Clean up even when the fuzz fails: run it as a task and inspect its result.
    let outcome = tokio::spawn(async move {
        fuzz(&mut target).await;
        target
    })
    .await;
    cleanup(&ns).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
