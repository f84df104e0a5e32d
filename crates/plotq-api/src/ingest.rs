//! The ingest use case, shared by `POST /api/v1/metrics` and the standalone demo
//! producer: store the samples, then move the watermark of every series they touch.

use plotq_domain::Sample;
use plotq_domain::chunk::BatchId;
use plotq_ports::{MetricStore, PortError, ViewRegistry};

/// Stores `samples` (the error when the store did not acknowledge them), then tells live
/// refresh which series got new samples. That part is best effort: the samples are
/// stored, and a missed touch only delays a refresh until the image's age triggers one.
pub async fn store_samples(
    store: &dyn MetricStore,
    views: &dyn ViewRegistry,
    samples: &[Sample],
    now_ms: i64,
    batch: Option<&BatchId>,
) -> Result<(), PortError> {
    store.insert(samples, batch).await?;
    let mut series: Vec<(String, String)> = samples
        .iter()
        .map(|s| (s.service.to_string(), s.metric.to_string()))
        .collect();
    series.sort();
    series.dedup();
    if let Err(e) = views.touch_series(&series, now_ms).await {
        tracing::warn!(error = %e, "cannot record new samples for live refresh");
    }
    Ok(())
}
