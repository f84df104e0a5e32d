//! plotq's own request samples: the middleware offers each answered request to a
//! `SampleSink` (a bounded queue behind a rate cap), and `SelfSamples` writes them to the
//! role's store in batches (two samples a request: its duration and its status).

use super::stats::{Seen, UNMATCHED, round2};
use axum::http::StatusCode;
use plotq_domain::{MetricName, Sample, ServiceName};
use plotq_ports::{MetricStore, ViewRegistry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The metric plotq's own request durations are stored under.
pub const SELF_DURATION_METRIC: &str = "http_request_duration_ms";
/// The metric plotq's own response status codes are stored under (what the
/// `status_codes` and `error_rate` plots read by default).
pub const SELF_STATUS_METRIC: &str = plotq_domain::plot::DEFAULT_STATUS_METRIC;

/// Where the middleware puts the role's own samples: a bounded queue behind a rate cap.
pub(super) struct SampleSink {
    tx: mpsc::Sender<Observation>,
    rate: governor::DefaultDirectRateLimiter,
    over_rate: metrics::Counter,
    dropped: metrics::Counter,
}

/// One request as its samples will say it (made into samples off the request path).
#[derive(Debug, Clone, Copy)]
struct Observation {
    ms: f64,
    status: u16,
    at_ms: i64,
}

/// Writes a role's own request samples to its store; spawn [`SelfSamples::run`].
pub struct SelfSamples {
    rx: mpsc::Receiver<Observation>,
    /// Observations per store write (two samples each).
    batch: usize,
    flush: Duration,
    service: ServiceName,
    duration: MetricName,
    status: MetricName,
}

/// A sink of `service`'s own samples and their writer: at most `queue` waiting and `rate`
/// stored a second, written `batch` at a time, none waiting longer than `flush`.
pub(super) fn channel(
    service: ServiceName,
    queue: usize,
    rate: u32,
    batch: usize,
    flush: Duration,
) -> (SampleSink, SelfSamples) {
    let (tx, rx) = mpsc::channel(queue.max(1));
    let writer = SelfSamples {
        rx,
        batch: batch.max(1),
        flush,
        service,
        duration: MetricName::parse(SELF_DURATION_METRIC).expect("a valid metric name"),
        status: MetricName::parse(SELF_STATUS_METRIC).expect("a valid metric name"),
    };
    let per_sec = std::num::NonZeroU32::new(rate.max(1)).expect("at least one");
    let sink = SampleSink {
        tx,
        rate: governor::RateLimiter::direct(governor::Quota::per_second(per_sec)),
        over_rate: metrics::counter!("plotq_self_samples_total", "outcome" => "over_rate"),
        dropped: metrics::counter!("plotq_self_samples_total", "outcome" => "dropped"),
    };
    (sink, writer)
}

impl SampleSink {
    /// Queues the samples of one answered request, unless it was refused before a
    /// handler ran, is over the rate, or the queue is full (those are counted).
    pub(super) fn offer(&self, seen: &Seen<'_>) {
        let sink = self;
        // Requests refused before a handler ran (no route, no credentials, over a
        // rate) cost the sender nothing: they must not cost the store anything either.
        if seen.route == UNMATCHED
            || matches!(
                seen.status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            )
        {
            return;
        }
        let two = std::num::NonZeroU32::new(2).expect("two");
        if !matches!(sink.rate.check_n(two), Ok(Ok(()))) {
            sink.over_rate.increment(2);
            return;
        }
        let observation = Observation {
            ms: round2(seen.ms),
            status: seen.status.as_u16(),
            at_ms: plotq_ports::clock::now_ms(),
        };
        if sink.tx.try_send(observation).is_err() {
            sink.dropped.increment(2);
        }
    }
}

impl SelfSamples {
    /// Stores the role's own samples in batches (at most `batch` a write, none waiting
    /// longer than `flush`), and marks their series touched so dashboards watching
    /// plotq refresh — and their hours, remembered for the `Duration` given with the
    /// registry (longer than any render is shared), so cached past ranges see them —
    /// until `stop`; then stores what is left.
    pub async fn run(
        mut self,
        store: Arc<dyn MetricStore>,
        views: Option<(Arc<dyn ViewRegistry>, Duration)>,
        stop: CancellationToken,
    ) {
        let views = views.as_ref().map(|(v, keep)| (v.as_ref(), *keep));
        let mut batch = Vec::with_capacity(self.batch);
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => None,
                s = self.rx.recv() => s,
            };
            let Some(first) = first else { break };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.flush;
            while batch.len() < self.batch {
                let more = tokio::select! {
                    _ = stop.cancelled() => None,
                    _ = tokio::time::sleep_until(deadline) => None,
                    s = self.rx.recv() => s,
                };
                match more {
                    Some(s) => batch.push(s),
                    None => break,
                }
            }
            self.write(&*store, views, &mut batch).await;
        }
        // Whatever is already queued is written before the role stops.
        while let Ok(s) = self.rx.try_recv() {
            batch.push(s);
            if batch.len() >= self.batch {
                self.write(&*store, views, &mut batch).await;
            }
        }
        self.write(&*store, views, &mut batch).await;
    }
}

impl SelfSamples {
    /// Stores `batch` (two samples an observation) and empties it.
    async fn write(
        &self,
        store: &dyn MetricStore,
        views: Option<(&dyn ViewRegistry, Duration)>,
        batch: &mut Vec<Observation>,
    ) {
        if batch.is_empty() {
            return;
        }
        let samples: Vec<Sample> = batch
            .drain(..)
            .flat_map(|o| {
                [(&self.duration, o.ms), (&self.status, f64::from(o.status))].map(
                    |(metric, value)| Sample {
                        service: self.service.clone(),
                        metric: metric.clone(),
                        value,
                        timestamp_ms: o.at_ms,
                        labels: plotq_domain::Labels::none(),
                    },
                )
            })
            .collect();
        let n = samples.len() as u64;
        match store.insert(&samples, None).await {
            Ok(()) => {
                metrics::counter!("plotq_self_samples_total", "outcome" => "stored").increment(n);
                if let Some((views, keep)) = views {
                    let now = plotq_ports::clock::now_ms();
                    let hours = plotq_ports::views::hours_touched(&samples, &[]);
                    let series = plotq_ports::views::series_of(&hours);
                    let touched = async {
                        views.touch_series(&series, now).await?;
                        views.touch_hours(&hours, now, keep).await
                    };
                    if let Err(e) = touched.await {
                        tracing::debug!(error = %e, "could not mark plotq's own series touched");
                    }
                }
            }
            Err(e) => {
                // Self-observation never retries into an outage: these are lost, and
                // counted.
                metrics::counter!("plotq_self_samples_total", "outcome" => "failed").increment(n);
                tracing::debug!(error = %e, n, "could not store plotq's own request samples");
            }
        }
    }
}
