//! The sample generator shared by the standalone demo and `plotq loadgen`: for each
//! service, lognormal latencies (one request in a hundred on a slow path, 2.5–6× longer)
//! and a status-code mix (mostly 2xx, some 3xx/4xx) whose 5xx share rises and falls in
//! waves for one service in four, so error plots have spikes to show. Each request
//! carries the labels `route` (one of four, the first most often) and `method` (GET,
//! POST for one in four), drawn independently of its latency and status.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use plotq_domain::{Labels, MetricName, Sample, ServiceName};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

/// One generated service: its name and latency distribution.
#[derive(Debug, Clone)]
pub struct GenService {
    pub name: ServiceName,
    latency: LogNormal<f64>,
    /// Whether this service's 5xx share comes in waves.
    spiky: bool,
}

/// Generates requests (a latency and a status code each) for a set of services.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    services: Vec<GenService>,
    latency: MetricName,
    status: MetricName,
    /// Every (route, method) label set a request may carry, shared by its samples.
    label_sets: Vec<Labels>,
}

/// The routes requests are spread over, and their shares.
const ROUTES: [(&str, f64); 4] = [
    ("/api/items", 0.55),
    ("/api/cart", 0.25),
    ("/api/pay", 0.15),
    ("/healthz", 0.05),
];

impl Generator {
    /// Services given as (name, median latency in ms); `seed` fixes the sequence.
    pub fn new(services: &[(ServiceName, f64)], seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            services: services
                .iter()
                .enumerate()
                .map(|(i, (name, median))| GenService {
                    name: name.clone(),
                    latency: LogNormal::new(median.max(0.001).ln(), 0.45)
                        .expect("a finite lognormal"),
                    spiky: i % 4 == 1,
                })
                .collect(),
            latency: MetricName::parse("latency_ms").expect("valid metric"),
            status: MetricName::parse("status_code").expect("valid metric"),
            label_sets: ROUTES
                .iter()
                .flat_map(|(route, _)| {
                    ["GET", "POST"].map(|method| {
                        Labels::from_pairs([("route", *route), ("method", method)])
                            .expect("valid labels")
                    })
                })
                .collect(),
        }
    }

    /// A request's labels: a route by its share, POST one time in four.
    fn labels(&mut self) -> Labels {
        let mut pick: f64 = self.rng.random();
        let mut route = ROUTES.len() - 1;
        for (i, (_, share)) in ROUTES.iter().enumerate() {
            if pick < *share {
                route = i;
                break;
            }
            pick -= share;
        }
        let post = usize::from(self.rng.random_bool(0.25));
        self.label_sets[route * 2 + post].clone()
    }

    pub fn services(&self) -> &[GenService] {
        &self.services
    }

    /// `per_service` requests of every service, spread evenly over `(at_ms - span_ms,
    /// at_ms]`: two samples each (`latency_ms` and `status_code`).
    pub fn requests(&mut self, at_ms: i64, span_ms: i64, per_service: usize) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.services.len() * per_service * 2);
        for s in 0..self.services.len() {
            for i in 0..per_service {
                let timestamp_ms = at_ms - (i as i64 * span_ms / per_service.max(1) as i64);
                let service = &self.services[s];
                let mut value: f64 = service.latency.sample(&mut self.rng);
                if self.rng.random_bool(0.01) {
                    value *= self.rng.random_range(2.5..6.0);
                }
                let (spiky, name) = (service.spiky, service.name.clone());
                let status = status(&mut self.rng, spiky, s, timestamp_ms);
                let labels = self.labels();
                out.push(Sample {
                    service: name.clone(),
                    metric: self.latency.clone(),
                    value: (value * 100.0).round() / 100.0,
                    timestamp_ms,
                    labels: labels.clone(),
                });
                out.push(Sample {
                    service: name,
                    metric: self.status.clone(),
                    value: status,
                    timestamp_ms,
                    labels,
                });
            }
        }
        out
    }
}

impl Generator {
    /// `n` latencies of the first service only, spread evenly over `(at_ms - span_ms,
    /// at_ms]` (the storage benchmark's one series).
    pub fn latencies(&mut self, at_ms: i64, span_ms: i64, n: usize) -> Vec<Sample> {
        let service = &self.services[0];
        (0..n)
            .map(|i| {
                let mut value: f64 = service.latency.sample(&mut self.rng);
                if self.rng.random_bool(0.01) {
                    value *= self.rng.random_range(2.5..6.0);
                }
                Sample {
                    service: service.name.clone(),
                    metric: self.latency.clone(),
                    value: (value * 100.0).round() / 100.0,
                    timestamp_ms: at_ms - (i as i64 * span_ms / n.max(1) as i64),
                    labels: plotq_domain::Labels::none(),
                }
            })
            .collect()
    }
}

/// Samples as the ingest API takes them (`[{service, metric, value, timestamp,
/// labels}]`, `labels` only where there are some).
pub fn as_json(samples: &[Sample]) -> serde_json::Value {
    samples
        .iter()
        .map(|s| {
            let mut sample = serde_json::json!({
                "service": s.service.as_str(),
                "metric": s.metric.as_str(),
                "value": s.value,
                "timestamp": s.timestamp_ms,
            });
            if !s.labels.is_empty() {
                sample["labels"] = serde_json::json!(s.labels);
            }
            sample
        })
        .collect()
}

/// The requests of [`Generator::requests`] (latency and status pairs) as an OTLP span
/// export, as an instrumented service sends them: one SERVER span per request of its
/// service (a resource each), lasting its latency, ending at its time, with its
/// `http.response.status_code` and its route and method (`http.route`,
/// `http.request.method`).
pub fn as_otlp_spans(samples: &[Sample]) -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    let attribute = |key: &str, value: any_value::Value| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    };
    let mut resources: Vec<ResourceSpans> = Vec::new();
    // The service of the last resource: consecutive requests of one service share it.
    let mut current: Option<&ServiceName> = None;
    for (i, pair) in samples.chunks_exact(2).enumerate() {
        let (latency, status) = (&pair[0], &pair[1]);
        if current != Some(&latency.service) {
            current = Some(&latency.service);
            resources.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute(
                        "service.name",
                        any_value::Value::StringValue(latency.service.to_string()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans::default()],
                ..Default::default()
            });
        }
        let end = latency.timestamp_ms as u64 * 1_000_000;
        let route = latency.labels.get("route").unwrap_or("/");
        let method = latency.labels.get("method").unwrap_or("GET");
        let spans = &mut resources.last_mut().expect("pushed").scope_spans[0].spans;
        spans.push(Span {
            trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("{method} {route}"),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: end.saturating_sub((latency.value * 1e6) as u64),
            end_time_unix_nano: end,
            attributes: vec![
                attribute(
                    "http.request.method",
                    any_value::Value::StringValue(method.to_owned()),
                ),
                attribute(
                    "http.route",
                    any_value::Value::StringValue(route.to_owned()),
                ),
                attribute(
                    "http.response.status_code",
                    any_value::Value::IntValue(status.value as i64),
                ),
            ],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: resources,
    }
}

/// A response status: mostly 200, some redirects and client errors; a spiky service's
/// 5xx share rises and falls over a few minutes.
fn status(rng: &mut StdRng, spiky: bool, index: usize, at_ms: i64) -> f64 {
    let wave = ((at_ms / 1000) as f64 / 180.0 + index as f64)
        .sin()
        .max(0.0);
    let p5xx = if spiky { 0.01 + 0.08 * wave } else { 0.005 };
    let r: f64 = rng.random();
    if r < p5xx {
        if r < p5xx / 3.0 { 500.0 } else { 503.0 }
    } else if r < p5xx + 0.04 {
        404.0
    } else if r < p5xx + 0.06 {
        301.0
    } else if r < p5xx + 0.12 {
        201.0
    } else {
        200.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_pairs_in_the_span_with_a_realistic_mix() {
        let services = [(ServiceName::parse("a").unwrap(), 40.0)];
        let mut g = Generator::new(&services, 7);
        let batch = g.requests(1_000_000, 10_000, 5_000);
        assert_eq!(batch.len(), 10_000);
        assert!(
            batch
                .iter()
                .all(|s| (990_000..=1_000_000).contains(&s.timestamp_ms))
        );
        let mut latencies: Vec<f64> = batch
            .iter()
            .filter(|s| s.metric.as_str() == "latency_ms")
            .map(|s| s.value)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let median = latencies[latencies.len() / 2];
        assert!((35.0..45.0).contains(&median), "median {median}");
        let ok = batch.iter().filter(|s| s.value == 200.0).count();
        assert!((4_000..4_600).contains(&ok), "{ok} of 5,000 are 200");
    }
}
