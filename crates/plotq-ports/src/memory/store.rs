//! `MemoryStore`, the in-process `MetricStore`: samples per series in arrival order,
//! bounded by a per-series cap and a retention window, read back over inclusive windows.
//! Part of the embedded standalone implementation, and a unit-test double.

use crate::{MetricStore, Points, PortResult};
use async_trait::async_trait;
use plotq_domain::Sample;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Samples kept per series in memory; the oldest go first.
const MAX_SAMPLES_PER_SERIES: usize = 2_000_000;
/// Samples older than this are dropped (the longest plot window).
const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

type SeriesKey = (String, String);

/// Samples in memory, per series in arrival order.
#[derive(Debug, Default)]
pub struct MemoryStore {
    series: Mutex<HashMap<SeriesKey, VecDeque<(i64, f64)>>>,
}

#[async_trait]
impl MetricStore for MemoryStore {
    async fn insert(&self, samples: &[Sample]) -> PortResult<()> {
        let mut series = self.series.lock().expect("store lock");
        for s in samples {
            let rows = series
                .entry((s.service.to_string(), s.metric.to_string()))
                .or_default();
            rows.push_back((s.timestamp_ms, s.value));
            let newest = s.timestamp_ms.max(rows.back().map_or(0, |r| r.0));
            while rows.len() > MAX_SAMPLES_PER_SERIES
                || rows.front().is_some_and(|r| r.0 < newest - RETENTION_MS)
            {
                rows.pop_front();
            }
        }
        Ok(())
    }

    async fn points(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
        with_timestamps: bool,
    ) -> PortResult<Points> {
        let series = self.series.lock().expect("store lock");
        let mut out = Points::default();
        if let Some(rows) = series.get(&(service.to_owned(), metric.to_owned())) {
            for &(ts, v) in rows
                .iter()
                .filter(|(ts, _)| (from_ms..=until_ms).contains(ts))
            {
                out.values.push(v);
                if with_timestamps {
                    out.timestamps_ms.push(ts);
                }
            }
        }
        Ok(out)
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::ServiceName;

    fn sample(value: f64, timestamp_ms: i64) -> Sample {
        Sample {
            service: ServiceName::parse("svc").unwrap(),
            metric: plotq_domain::MetricName::parse("latency_ms").unwrap(),
            value,
            timestamp_ms,
        }
    }

    #[tokio::test]
    async fn points_include_both_ends_of_the_window() {
        let store = MemoryStore::default();
        let samples: Vec<Sample> = (0..10).map(|i| sample(i as f64, 1_000 * i)).collect();
        store.insert(&samples).await.unwrap();
        let got = store
            .points("svc", "latency_ms", 2_000, 5_000, true)
            .await
            .unwrap();
        // A sample at exactly `until` is drawn, as one at exactly `from` is.
        assert_eq!(got.values, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(got.timestamps_ms, vec![2_000, 3_000, 4_000, 5_000]);
    }
}
