//! `POST /v1/metrics` data points (OTLP/HTTP): gauge and sum points as samples (a
//! cumulative monotonic sum by its increase since the stream's previous point),
//! histogram and exponential-histogram points merged into the minute rollups (delta,
//! and cumulative by difference per stream, bucket by bucket), counted once however an
//! export is retried; what is not stored counted in the partial success with its
//! reason. The envelope's encodings and errors are `otlp`'s.

use crate::helpers::{App, app};
use crate::otlp::{attribute, metric_of, now_ns, number, resource};
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    metric,
};
use plotq_domain::rollup::Rollup;
use plotq_ports::faulty::Fault;
use plotq_ports::{LabelSelect, MetricStore, PortError, SeriesQuery};
use prost::Message;

/// Sends `metrics` of service `checkout`.
async fn send(app: &App, metrics: Vec<Metric>) -> crate::helpers::Answer {
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    app.post("/v1/metrics")
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
}

/// Exports `metrics` of service `checkout` (answered `200`); the partial success, if any.
async fn export(app: &App, metrics: Vec<Metric>) -> Option<ExportMetricsPartialSuccess> {
    let answer = send(app, metrics).await;
    assert_eq!(answer.status, StatusCode::OK);
    ExportMetricsServiceResponse::decode(&answer.bytes[..])
        .unwrap()
        .partial_success
}

/// The rollups of `metric` of `checkout`, every minute merged.
async fn rolled(app: &App, metric: &str) -> Rollup {
    let read = app
        .store
        .rollups(&SeriesQuery {
            service: "checkout",
            metric,
            from_ms: 0,
            until_ms: i64::MAX / 2,
            with_timestamps: false,
            select: LabelSelect::ALL,
        })
        .await
        .unwrap();
    Rollup::merged(read.minutes.iter().map(|(_, r)| r))
}

fn cumulative_sum(points: Vec<(u64, u64, f64)>) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points
            .into_iter()
            .map(|(start, at, v)| {
                let mut p = number(v, at);
                p.start_time_unix_nano = start;
                p
            })
            .collect(),
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    })
}

fn exponential(start: u64, at: u64, scale: i32, offset: i32, counts: &[u64], sum: f64) -> Metric {
    metric_of(
        "rpc.duration",
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: at,
                count: 1 + counts.iter().sum::<u64>(),
                sum: Some(sum),
                scale,
                zero_count: 1,
                positive: Some(Buckets {
                    offset,
                    bucket_counts: counts.to_vec(),
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )
}
#[tokio::test]
async fn gauge_and_sum_points_are_stored_and_the_rest_accounted_for() {
    let app = app();
    let at = now_ns() - 1_000_000_000;
    let sum = |temporality: AggregationTemporality, monotonic: bool, v: f64| {
        metric::Data::Sum(Sum {
            data_points: vec![number(v, at)],
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        })
    };
    let metrics = vec![
        metric_of(
            "queue.depth",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(3.0, at), number(5.0, at)],
            }),
        ),
        metric_of("orders", sum(AggregationTemporality::Delta, true, 7.0)),
        metric_of(
            "inflight",
            sum(AggregationTemporality::Cumulative, false, 2.0),
        ),
        metric_of(
            "orders.total",
            sum(AggregationTemporality::Cumulative, true, 99.0),
        ),
        metric_of(
            "http.server.request.duration",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: at,
                    count: 3,
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            }),
        ),
        metric_of(
            "bad name!",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(1.0, at)],
            }),
        ),
    ];
    let partial = export(&app, metrics).await.expect("a partial success");
    // Refused: the histogram without buckets or a sum, the bad name; the cumulative
    // stream of unknown start is the baseline of its next points (left out, said).
    assert_eq!(partial.rejected_data_points, 2, "{}", partial.error_message);
    for reason in [
        "neither bucket counts nor a sum",
        "bad name!",
        "first points of cumulative streams",
    ] {
        assert!(
            partial.error_message.contains(reason),
            "{}",
            partial.error_message
        );
    }
    assert_eq!(app.stored("checkout", "queue.depth").await, [3.0, 5.0]);
    assert_eq!(app.stored("checkout", "orders").await, [7.0]);
    assert_eq!(app.stored("checkout", "inflight").await, [2.0]);
    assert!(app.stored("checkout", "orders.total").await.is_empty());
}

#[tokio::test]
async fn histograms_merge_into_the_rollups_and_cumulative_streams_count_once() {
    let app = app();
    // The streams start after the api did: their first points count whole.
    let start = now_ns();
    let (t1, t2) = (start + 1_000_000, start + 2_000_000);
    let route = vec![attribute(
        "route",
        any_value::Value::StringValue("/pay".to_owned()),
    )];
    // A delta histogram: 1 in [1, 5], 2 in (5, 10], 3 in (10, 50], 4 in (50, 60].
    let delta = metric_of(
        "payload_kb",
        metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: t1,
                count: 10,
                sum: Some(100.0),
                bucket_counts: vec![1, 2, 3, 4],
                explicit_bounds: vec![5.0, 10.0, 50.0],
                min: Some(1.0),
                max: Some(60.0),
                attributes: route.clone(),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    );
    // Bounds that do not increase, a summary: refused, saying why.
    let mut bad = delta.clone();
    if let Some(metric::Data::Histogram(h)) = &mut bad.data {
        h.data_points[0].explicit_bounds = vec![10.0, 5.0, 50.0];
    }
    bad.name = "payload_bad".to_owned();
    let summary = metric_of(
        "latency.summary",
        metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: t1,
                count: 4,
                ..Default::default()
            }],
        }),
    );
    let first = vec![
        delta,
        bad,
        summary,
        // Scale 3: 2 in bucket 18, 3 in bucket 20 (and one zero); 30 in all.
        exponential(start, t1, 3, 18, &[2, 0, 3], 30.0),
        metric_of("bytes.sent", cumulative_sum(vec![(start, t1, 40.0)])),
    ];
    let partial = export(&app, first).await.expect("a partial success");
    assert_eq!(partial.rejected_data_points, 2, "{}", partial.error_message);
    for reason in ["bounds are not finite and increasing", "summary points"] {
        assert!(
            partial.error_message.contains(reason),
            "{}",
            partial.error_message
        );
    }
    let payload = rolled(&app, "payload_kb").await;
    assert_eq!(
        (payload.count, payload.summarized, payload.min, payload.max),
        (10, 10, 1.0, 60.0)
    );
    assert!((payload.mean().unwrap() - 10.0).abs() < 1e-9);
    // The widest bucket, [1, 5]: (5 - 1) / (5 + 1), with the rollup's 1 %.
    let widest = 4.0 / 6.0;
    assert!((payload.relative_error() - (widest + 0.01 + widest * 0.01)).abs() < 1e-12);
    // No raw samples: the histogram is in the rollups only.
    assert!(app.stored("checkout", "payload_kb").await.is_empty());

    // The cumulative streams' next points, the histogram at a lowered scale (buckets 18
    // and 20 at scale 3 are 9 and 10 at scale 2): 2 more in 9, 1 in 11, 20 more in sum.
    let second = || {
        vec![
            exponential(start, t2, 2, 9, &[4, 3, 1], 50.0),
            metric_of("bytes.sent", cumulative_sum(vec![(start, t2, 100.0)])),
        ]
    };
    assert_eq!(export(&app, second()).await, None);
    // Sent again (an exporter's retry): repeats, left out and said so.
    let repeated = export(&app, second()).await.expect("a partial success");
    assert_eq!(repeated.rejected_data_points, 0);
    assert!(repeated.error_message.contains("repeats"), "{repeated:?}");

    let rpc = rolled(&app, "rpc.duration").await;
    assert_eq!((rpc.count, rpc.zeros, rpc.summarized), (9, 1, 9));
    assert!((rpc.mean().unwrap() - 50.0 / 9.0).abs() < 1e-9);
    // Scale 2's buckets are 2^(1/4) wide: (2^(1/4) - 1) / (2^(1/4) + 1) ≈ 8.6 %, and 1 %.
    let scale_2 = (2f64.powf(0.25) - 1.0) / (2f64.powf(0.25) + 1.0);
    assert!((rpc.relative_error() - (scale_2 + 0.01 + scale_2 * 0.01)).abs() < 1e-9);
    assert_eq!(app.stored("checkout", "bytes.sent").await, [40.0, 60.0]);
    // A reset (the counter restarted, lower): the new value counts whole.
    let reset = metric_of(
        "bytes.sent",
        cumulative_sum(vec![(start, t2 + 1_000_000, 7.0)]),
    );
    assert_eq!(export(&app, vec![reset]).await, None);
    assert_eq!(
        app.stored("checkout", "bytes.sent").await,
        [7.0, 40.0, 60.0]
    );
}

#[tokio::test]
async fn a_refused_export_moves_no_cumulative_stream() {
    // The store refuses the first attempt (503): the retry counts the stream's point
    // whole, once.
    let app = app();
    let start = now_ns();
    let points = || {
        vec![metric_of(
            "bytes.sent",
            cumulative_sum(vec![(start, start + 1_000_000, 40.0)]),
        )]
    };
    app.store.next(
        "insert",
        1,
        Fault::Fail(PortError::unavailable("memory store", "down")),
    );
    let refused = send(&app, points()).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.stored("checkout", "bytes.sent").await.is_empty());
    assert_eq!(export(&app, points()).await, None);
    assert_eq!(app.stored("checkout", "bytes.sent").await, [40.0]);
}
