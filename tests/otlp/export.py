"""Sends spans and metrics to plotq with the OpenTelemetry Python SDK, as an instrumented
service does: a TracerProvider with a BatchSpanProcessor and the OTLP/HTTP span exporter,
and a MeterProvider with the OTLP/HTTP metric exporter (delta temporality), pointed at
plotq's /v1/traces and /v1/metrics with only an endpoint and a token.

Spans: `--spans` SERVER spans of `--service` ending within the last few seconds, the
i-th lasting 1 + i % 50 ms, the first `--errors` of them answered 500 and the rest 200,
routed `/cart` when i % 4 == 0 and `/pay` otherwise, method POST for even i and GET for
odd; plus as many INTERNAL spans (which plotq leaves out). Metrics: a counter `orders`
added 1 `--orders` times with the attribute `region` = `eu` (delta temporality), a
gauge `queue.depth` set to 7; and, with the SDK's default cumulative temporality, in
two flushes and the shutdown's export (each carrying totals since the start): an
observable counter `bytes.sent` observed at 40 then 100, a histogram `payload_kb` (the SDK's default
explicit bounds) and an exponential histogram `payload_exp`, each recording the
values 1 + i % 50 for i in range(`--orders`), the first half before the first export.

Prints one JSON line: what the exporters reported (`spans`: spans exported with
success, `span_failures` and `metric_failures`: failed export calls).
"""

import argparse
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind

results = {"spans": 0, "span_failures": 0, "metric_failures": 0}


class CountingSpanExporter(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        if result == SpanExportResult.SUCCESS:
            results["spans"] += len(spans)
        else:
            results["span_failures"] += 1
        return result


class CountingMetricExporter(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result != MetricExportResult.SUCCESS:
            results["metric_failures"] += 1
        return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True, help="plotq's base URL")
    parser.add_argument("--token")
    parser.add_argument("--service", required=True)
    parser.add_argument("--spans", type=int, default=100)
    parser.add_argument("--errors", type=int, default=0)
    parser.add_argument("--orders", type=int, default=0)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    compression = Compression.Gzip if args.gzip else Compression.NoCompression
    resource = Resource.create({"service.name": args.service})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            CountingSpanExporter(
                endpoint=f"{args.endpoint}/v1/traces",
                headers=headers,
                compression=compression,
            ),
            max_export_batch_size=512,
        )
    )
    tracer = tracer_provider.get_tracer("plotq-tests")
    now = time.time_ns()
    for i in range(args.spans):
        start = now - 5_000_000_000 + i * 1_000_000
        status = 500 if i < args.errors else 200
        route = "/cart" if i % 4 == 0 else "/pay"
        method = "POST" if i % 2 == 0 else "GET"
        span = tracer.start_span(
            f"{method} {route}",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "http.response.status_code": status,
            },
        )
        span.end(end_time=start + (1 + i % 50) * 1_000_000)
        tracer.start_span("render", kind=SpanKind.INTERNAL, start_time=start).end(
            end_time=start + 1_000
        )
    tracer_provider.force_flush()
    tracer_provider.shutdown()

    if args.orders:
        reader = PeriodicExportingMetricReader(
            CountingMetricExporter(
                endpoint=f"{args.endpoint}/v1/metrics",
                headers=headers,
                compression=compression,
                preferred_temporality={Counter: AggregationTemporality.DELTA},
            ),
            export_interval_millis=3_600_000,
        )
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[reader],
            views=[
                View(
                    instrument_name="payload_exp",
                    aggregation=ExponentialBucketHistogramAggregation(),
                ),
            ],
        )
        meter = meter_provider.get_meter("plotq-tests")
        orders = meter.create_counter("orders")
        for _ in range(args.orders):
            orders.add(1, {"region": "eu"})
        meter.create_gauge("queue.depth").set(7)
        sent = [40]
        meter.create_observable_counter(
            "bytes.sent", callbacks=[lambda _options: [Observation(sent[0])]]
        )
        payload = meter.create_histogram("payload_kb")
        payload_exp = meter.create_histogram("payload_exp")
        half = args.orders // 2
        for i in range(half):
            payload.record(1 + i % 50)
            payload_exp.record(1 + i % 50)
        meter_provider.force_flush()
        sent[0] = 100
        for i in range(half, args.orders):
            payload.record(1 + i % 50)
            payload_exp.record(1 + i % 50)
        meter_provider.force_flush()
        meter_provider.shutdown()

    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
