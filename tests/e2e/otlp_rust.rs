//! OpenTelemetry in from the Rust SDK, end to end: `opentelemetry_sdk`'s batch span
//! processor and periodic metric reader with `opentelemetry-otlp`'s OTLP/HTTP exporters
//! (binary protobuf; spans gzipped, metrics not; delta temporality), in process, export
//! spans, a counter, a gauge and a histogram to standalone and to the distributed roles; every
//! request span is counted exactly in `GET /api/v1/stats` (latency count, status codes,
//! error ratio) and in rendered plots, as are the counter and the gauge; and by the
//! spans' labels (`route`, `method`, `status`) and the counter's attribute, filtered
//! (`labels`) and split (`group_by`), each count exact. The Python SDK's half is `otlp`.

use crate::otlp::{DONE, READY, counts, stats};
use crate::support::app::{Backend, Options, TestApp};
use async_trait::async_trait;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{
    Compression, MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData,
};
use prost::Message as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// Each HTTP attempt's bound (the exporters' own default is 10 s as well).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// SERVER spans sent (and as many INTERNAL ones), and how often `orders` is added to.
const SPANS: usize = 600;
const ORDERS: usize = 9;

/// The i-th SERVER span's route, method, status and duration (ms): a known mix.
/// The i-th value the histogram `payload_kb` records.
fn payload_of(i: usize) -> f64 {
    (3 + 7 * i) as f64
}

fn route_of(i: usize) -> &'static str {
    if i.is_multiple_of(3) { "/cart" } else { "/pay" }
}

fn method_of(i: usize) -> &'static str {
    match i % 7 {
        0..=3 => "GET",
        4 | 5 => "POST",
        _ => "PUT",
    }
}

fn status_of(i: usize) -> u16 {
    if i % 20 == 7 { 500 } else { 200 }
}

fn duration_ms_of(i: usize) -> u64 {
    1 + (i % 40) as u64
}

/// How many of the SERVER spans `keep` keeps, by `key`'s value (sorted by value).
fn expected(
    keep: impl Fn(usize) -> bool,
    key: impl Fn(usize) -> &'static str,
) -> Vec<(String, usize)> {
    let mut by = BTreeMap::<&str, usize>::new();
    for i in (0..SPANS).filter(|&i| keep(i)) {
        *by.entry(key(i)).or_default() += 1;
    }
    by.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
}

/// What the exporters and the HTTP answers reported, as the Python exporter's counts.
#[derive(Debug, Default)]
struct Tally {
    /// Spans in exports that succeeded, and export calls that failed.
    spans: AtomicUsize,
    span_failures: AtomicUsize,
    /// Metric export calls that succeeded, and those that failed.
    metric_exports: AtomicUsize,
    metric_failures: AtomicUsize,
    /// Spans and data points the answers' partial successes counted as rejected.
    rejected: AtomicUsize,
    /// Answers that were not 2xx, or whose body was no OTLP export response.
    bad_answers: AtomicUsize,
}

impl Tally {
    fn add(counter: &AtomicUsize, n: usize) {
        counter.fetch_add(n, Ordering::SeqCst);
    }

    /// The counts that must all be exact (`metric_exports` is at least one, not exact:
    /// shutdown may send one more, empty, collection).
    fn exact(&self) -> Value {
        let get = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        json!({
            "spans": get(&self.spans),
            "span_failures": get(&self.span_failures),
            "metric_failures": get(&self.metric_failures),
            "rejected": get(&self.rejected),
            "bad_answers": get(&self.bad_answers),
        })
    }
}

/// The exporters' HTTP client: the workspace's reqwest, each request run on the test's
/// runtime (the SDK's batch threads have no Tokio runtime of their own), and each
/// answer's partial success tallied.
#[derive(Debug)]
struct Transport {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    tally: Arc<Tally>,
}

#[async_trait]
impl HttpClient for Transport {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let traces = request.uri().path().ends_with("/v1/traces");
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let (status, headers) = (response.status(), response.headers().clone());
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await??;
        let rejected = if !status.is_success() {
            None
        } else if traces {
            ExportTraceServiceResponse::decode(body.as_ref())
                .ok()
                .map(|r| r.partial_success.map_or(0, |p| p.rejected_spans))
        } else {
            ExportMetricsServiceResponse::decode(body.as_ref())
                .ok()
                .map(|r| r.partial_success.map_or(0, |p| p.rejected_data_points))
        };
        match rejected {
            Some(n) => Tally::add(&self.tally.rejected, n as usize),
            None => Tally::add(&self.tally.bad_answers, 1),
        }
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// The OTLP span exporter, counting what it exported (the Python `CountingSpanExporter`).
#[derive(Debug)]
struct CountingSpans(SpanExporter, Arc<Tally>);

impl opentelemetry_sdk::trace::SpanExporter for CountingSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.0.export(batch).await;
        match result {
            Ok(()) => Tally::add(&self.1.spans, n),
            Err(_) => Tally::add(&self.1.span_failures, 1),
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// The OTLP metric exporter, counting its exports (the Python `CountingMetricExporter`).
#[derive(Debug)]
struct CountingMetrics(MetricExporter, Arc<Tally>);

impl PushMetricExporter for CountingMetrics {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.0.export(metrics).await;
        match result {
            Ok(()) => Tally::add(&self.1.metric_exports, 1),
            Err(_) => Tally::add(&self.1.metric_failures, 1),
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.0.temporality()
    }
}

/// Exports with the SDK to `api` as an instrumented service `service` does, blocking
/// until the providers are shut down (so: off the runtime, whose `runtime` handle runs
/// the HTTP requests). What was tallied, and the providers' own results.
fn export(api: &str, service: &str, runtime: tokio::runtime::Handle) -> (Arc<Tally>, Value) {
    let tally = Arc::new(Tally::default());
    let transport = || Transport {
        client: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .expect("a reqwest client"),
        runtime: runtime.clone(),
        tally: tally.clone(),
    };
    let resource = Resource::builder_empty()
        .with_service_name(service.to_owned())
        .build();

    let spans = SpanExporter::builder()
        .with_http()
        .with_http_client(transport())
        .with_endpoint(format!("{api}/v1/traces"))
        .with_protocol(Protocol::HttpBinary)
        .with_compression(Compression::Gzip)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .expect("the span exporter builds");
    // A queue for every span, so none is dropped while the worker thread exports.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(4 * SPANS)
        .with_max_export_batch_size(512)
        .build();
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(
            BatchSpanProcessor::builder(CountingSpans(spans, tally.clone()))
                .with_batch_config(batch)
                .build(),
        )
        .build();
    let tracer = tracer_provider.tracer("plotq-tests");
    let now = SystemTime::now();
    for i in 0..SPANS {
        let start = now - Duration::from_secs(5) + Duration::from_millis(i as u64);
        let (route, method) = (route_of(i), method_of(i));
        let mut span = tracer
            .span_builder(format!("{method} {route}"))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", route),
                KeyValue::new("http.response.status_code", i64::from(status_of(i))),
            ])
            .start(&tracer);
        span.end_with_timestamp(start + Duration::from_millis(duration_ms_of(i)));
        let mut internal = tracer
            .span_builder("render")
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .start(&tracer);
        internal.end_with_timestamp(start + Duration::from_micros(1));
    }
    // Shutdown exports what is queued and waits for it up to the deadline given
    // (`force_flush` waits a fixed 5 s in this SDK version, short for a loaded CI host).
    let traces = tracer_provider.shutdown_with_timeout(DONE);

    let metrics = MetricExporter::builder()
        .with_http()
        .with_http_client(transport())
        .with_endpoint(format!("{api}/v1/metrics"))
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .with_temporality(Temporality::Delta)
        .build()
        .expect("the metric exporter builds");
    // An hour's interval: only the flush below exports.
    let reader = PeriodicReader::builder(CountingMetrics(metrics, tally.clone()))
        .with_interval(Duration::from_secs(3600))
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader)
        .build();
    let meter = meter_provider.meter("plotq-tests");
    let orders = meter.u64_counter("orders").build();
    for _ in 0..ORDERS {
        orders.add(1, &[KeyValue::new("region", "eu")]);
    }
    meter.u64_gauge("queue.depth").build().record(7, &[]);
    // A histogram (the SDK's default bounds), merged into the rollups.
    let payload = meter.f64_histogram("payload_kb").build();
    for i in 0..ORDERS {
        payload.record(payload_of(i), &[KeyValue::new("region", "eu")]);
    }
    // The flush waits for its export (no timeout of its own; the exporter's bounds it).
    let flushed = meter_provider.force_flush();
    let metrics_shutdown = meter_provider.shutdown();

    let results = json!({
        "traces_shutdown": format!("{traces:?}"),
        "metrics_flush": format!("{flushed:?}"),
        "metrics_shutdown": format!("{metrics_shutdown:?}"),
    });
    (tally, results)
}

/// `/api/v1/stats` of `query` with the filter `labels`.
async fn stats_with(app: &TestApp, query: &str, labels: Value) -> Value {
    let labels: String = form_urlencoded::byte_serialize(labels.to_string().as_bytes()).collect();
    stats(app, &format!("{query}&labels={labels}")).await
}

/// `counts`, sorted by series name (the order of grouped series is not what is tested).
fn sorted(body: &Value) -> Vec<(String, usize)> {
    let mut counts = counts(body);
    counts.sort();
    counts
}

/// Renders `request` and answers the finished job's state.
async fn plot(app: &TestApp, request: Value) -> Value {
    let id = app.request_plot(&request).await;
    let state = app.wait_done(id, DONE).await;
    assert_eq!(state["status"], "done", "{state}");
    state
}

/// The Rust SDK's spans and metrics, counted exactly by `/api/v1/stats` and by plots.
async fn spans_and_metrics_are_counted_exactly(backend: Backend) {
    let app = TestApp::ready(backend, Options::workers(1), READY).await;
    let service = format!(
        "otel-rs-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (api, name, runtime) = (
        app.api.clone(),
        service.clone(),
        tokio::runtime::Handle::current(),
    );
    let (tally, results) = tokio::time::timeout(
        DONE,
        tokio::task::spawn_blocking(move || export(&api, &name, runtime)),
    )
    .await
    .expect("the SDK shut down within the deadline")
    .expect("the export thread did not panic");
    // Every export succeeded and was stored whole: the SERVER spans and as many INTERNAL
    // ones were sent, nothing was rejected; the providers' shutdown and flush succeeded.
    assert_eq!(
        tally.exact(),
        json!({"spans": 2 * SPANS, "span_failures": 0, "metric_failures": 0,
               "rejected": 0, "bad_answers": 0}),
        "{results}"
    );
    assert!(
        tally.metric_exports.load(Ordering::SeqCst) >= 1,
        "{results}"
    );
    assert_eq!(
        results,
        json!({"traces_shutdown": "Ok(())", "metrics_flush": "Ok(())",
               "metrics_shutdown": "Ok(())"})
    );

    let window = format!("?service={service}&window=10m");
    let latency = stats(&app, &window).await;
    let s = &latency["stats"][0];
    assert_eq!(s["count"], SPANS, "{latency}");
    // Durations 1..=40 ms: the INTERNAL spans (1 µs) were left out.
    assert_eq!(
        (s["min"].as_f64(), s["max"].as_f64()),
        (Some(1.0), Some(40.0)),
        "{latency}"
    );
    let errors = (0..SPANS).filter(|&i| status_of(i) == 500).count();
    let codes = stats(&app, &format!("{window}&kind=status_codes")).await;
    assert_eq!(
        codes["stats"][0]["codes"],
        json!({"200": SPANS - errors, "500": errors}),
        "{codes}"
    );
    assert_eq!(
        codes["stats"][0]["error_ratio"],
        json!(errors as f64 / SPANS as f64),
        "{codes}"
    );

    // The delta counter: one point, the sum of its adds; the gauge: its value.
    let counter = stats(&app, &format!("{window}&metric=orders")).await;
    assert_eq!(
        (&counter["stats"][0]["count"], &counter["stats"][0]["max"]),
        (&json!(1), &json!(ORDERS as f64)),
        "{counter}"
    );
    let eu = stats_with(
        &app,
        &format!("{window}&metric=orders"),
        json!({"region": "eu"}),
    )
    .await;
    assert_eq!(
        (&eu["stats"][0]["count"], &eu["stats"][0]["max"]),
        (&json!(1), &json!(ORDERS as f64)),
        "{eu}"
    );
    let gauge = stats(&app, &format!("{window}&metric=queue.depth")).await;
    assert_eq!(
        (&gauge["stats"][0]["count"], &gauge["stats"][0]["max"]),
        (&json!(1), &json!(7.0)),
        "{gauge}"
    );
    // The histogram: every value counted, its sum (mean) and extremes exact (a delta
    // point's min and max), its percentiles within the error the answer states.
    let payload = stats(&app, &format!("{window}&metric=payload_kb")).await;
    let p = &payload["stats"][0];
    let values: Vec<f64> = (0..ORDERS).map(payload_of).collect();
    let mean = values.iter().sum::<f64>() / ORDERS as f64;
    assert_eq!(p["count"], ORDERS, "{payload}");
    assert_eq!(
        (&p["min"], &p["max"]),
        (&json!(values[0]), &json!(values[ORDERS - 1]))
    );
    assert!(
        (p["mean"].as_f64().unwrap_or(0.0) - mean).abs() < 1e-9,
        "{payload}"
    );
    assert_eq!(payload["source"]["kind"], "rollups", "{payload}");
    let error = payload["source"]["relative_error"].as_f64().unwrap_or(0.0);
    let exact_p50 = values[(ORDERS - 1) / 2];
    let p50 = p["p50"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (p50 - exact_p50).abs() <= error * exact_p50.max(p50),
        "{payload}"
    );

    // By label: filtered, split, and both.
    let all = |_| true;
    let pays = stats_with(&app, &window, json!({"route": "/pay"})).await;
    assert_eq!(
        pays["stats"][0]["count"],
        (0..SPANS).filter(|&i| route_of(i) == "/pay").count(),
        "{pays}"
    );
    let by_route = stats(&app, &format!("{window}&group_by=route")).await;
    assert_eq!(sorted(&by_route), expected(all, route_of), "{by_route}");
    let by_method = stats(&app, &format!("{window}&kind=cdf&group_by=method")).await;
    assert_eq!(sorted(&by_method), expected(all, method_of), "{by_method}");
    let pay_methods = stats_with(
        &app,
        &format!("{window}&group_by=method"),
        json!({"route": "/pay"}),
    )
    .await;
    assert_eq!(
        sorted(&pay_methods),
        expected(|i| route_of(i) == "/pay", method_of),
        "{pay_methods}"
    );
    let failed = stats_with(
        &app,
        &format!("{window}&kind=status_codes"),
        json!({"status": "500"}),
    )
    .await;
    assert_eq!(
        failed["stats"][0]["codes"],
        json!({"500": errors}),
        "{failed}"
    );

    // Plots count the spans as the stats do: all of them, and one line per method of
    // the /pay requests.
    let state = plot(
        &app,
        json!({"kind": "histogram", "service": service, "window": "10m"}),
    )
    .await;
    assert_eq!(state["stats"][0]["count"], SPANS, "{state}");
    let state = plot(
        &app,
        json!({"kind": "latency_timeseries", "service": service, "window": "10m",
               "labels": {"route": "/pay"}, "group_by": "method"}),
    )
    .await;
    assert_eq!(
        sorted(&state),
        expected(|i| route_of(i) == "/pay", method_of),
        "{state}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_rust_sdk_exports_to_standalone() {
    spans_and_metrics_are_counted_exactly(Backend::Memory).await;
}

#[tokio::test]
async fn the_rust_sdk_exports_to_the_distributed_roles() {
    crate::support::require_services();
    spans_and_metrics_are_counted_exactly(Backend::Real).await;
}
