//! What a finished job reports beside its image, in its state and its `plot.ready`
//! event alike: each service's numbers (`SeriesStats`), what the plot was drawn from
//! (`DataSource`) and where its time axis lies in the image (`TimeAxis`), with the checks
//! a decoded state or event applies to them.

use crate::error::Collector;
use crate::names::ServiceName;
use crate::timestamp::check_timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a plot's time axis lies in its image: pixel columns `left_px` to `right_px`
/// (image pixels, `left_px < right_px`) show `from_ms` to `until_ms` (epoch ms,
/// `from_ms < until_ms`), linearly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeAxis {
    pub left_px: u32,
    pub right_px: u32,
    pub from_ms: i64,
    pub until_ms: i64,
}

impl TimeAxis {
    /// `Err(problem)` unless both spans are non-empty, the columns lie in an image no
    /// wider than the plot bounds and the times in the timestamp range.
    pub fn check(&self) -> Result<(), String> {
        if self.left_px >= self.right_px || self.right_px > crate::plot::WIDTH_RANGE.1 {
            return Err(format!(
                "left_px must be less than right_px, at most {}",
                crate::plot::WIDTH_RANGE.1
            ));
        }
        check_timestamp(self.from_ms)?;
        check_timestamp(self.until_ms)?;
        if self.from_ms >= self.until_ms {
            return Err("from_ms must be before until_ms".to_owned());
        }
        Ok(())
    }
}

/// Checks a state's or event's `time_axis` into `errors`.
pub(crate) fn check_time_axis(errors: &mut Collector, axis: Option<&TimeAxis>) {
    if let Some(Err(problem)) = axis.map(TimeAxis::check) {
        errors.err("/time_axis", problem);
    }
}

/// One service's samples in a plot's window: count, min, max and mean exact; p50, p95
/// and p99 exact from raw samples, within the rollups' accuracy from rollups.
///
/// Per kind (`series::Extras`), from the same data the plot draws: throughput also
/// carries `rate_per_s` (samples per second over the window: `count` over its seconds)
/// and `peak_rate_per_s` (the highest of the plot's time buckets); status codes and
/// error rate carry `codes` (samples per HTTP status code, `{"200": n, …}`) and
/// `error_ratio` (errors over `count`: the 5xx share for status metrics, the non-zero
/// share for flag metrics, as the error-rate plot counts them). The members a kind does
/// not carry are absent.
///
/// Unknown members are ignored (not refused), so a reader still decodes the statistics
/// of a newer worker that carry members it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    pub service: String,
    /// In a `group_by` plot, the label value this series is (absent for the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// In a `group_by` plot, whether this series is every other value (and the samples
    /// without the label).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other: bool,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rate_per_s: Option<f64>,
    /// Keys are the codes as strings in JSON (`"503"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<BTreeMap<u16, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ratio: Option<f64>,
    /// In a correlation, the metric this series is (y's, then x's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// In a correlation, on y's entry: how its statistic follows x's bucket by bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<crate::correlation::Fit>,
}

impl SeriesStats {
    pub fn of(service: &str, s: &crate::stats::Summary) -> Self {
        Self {
            service: service.to_owned(),
            group: None,
            other: false,
            count: s.n as u64,
            mean: s.mean,
            min: s.min,
            max: s.max,
            p50: s.p50,
            p95: s.p95,
            p99: s.p99,
            rate_per_s: None,
            peak_rate_per_s: None,
            codes: None,
            error_ratio: None,
            metric: None,
            correlation: None,
        }
    }

    /// As one side of a correlation: the metric it is, and on y's side the fit.
    pub fn in_correlation(self, metric: &str, fit: Option<crate::correlation::Fit>) -> Self {
        Self {
            metric: Some(metric.to_owned()),
            correlation: fit,
            ..self
        }
    }

    /// As a part of a `group_by` plot: label value `group`, or the rest (`other`).
    pub fn in_group(self, group: Option<String>, other: bool) -> Self {
        Self {
            group,
            other,
            ..self
        }
    }

    /// With the throughput numbers: samples per second over the window, and the peak of
    /// the plot's time buckets.
    pub fn with_rates(self, rate_per_s: f64, peak_rate_per_s: f64) -> Self {
        Self {
            rate_per_s: Some(rate_per_s),
            peak_rate_per_s: Some(peak_rate_per_s),
            ..self
        }
    }

    /// With the status numbers: samples per code, and `errors` of the `count` samples
    /// as the error ratio.
    pub fn with_codes(self, codes: BTreeMap<u16, u64>, errors: u64) -> Self {
        let error_ratio = if self.count == 0 {
            0.0
        } else {
            (errors.min(self.count) as f64 / self.count as f64).clamp(0.0, 1.0)
        };
        Self {
            codes: Some(codes),
            error_ratio: Some(error_ratio),
            ..self
        }
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let numbers = [self.mean, self.min, self.max, self.p50, self.p95, self.p99];
        let rates = [self.rate_per_s, self.peak_rate_per_s];
        if ServiceName::parse(&self.service).is_err() {
            Err("stats name an invalid service")
        } else if self
            .group
            .as_deref()
            .is_some_and(|g| crate::labels::check_label_value(g).is_err())
            || (self.other && self.group.is_some())
        {
            Err("stats name an invalid group")
        } else if !numbers.iter().all(|v| v.is_finite()) || self.min > self.max {
            Err("stats must be finite numbers with min <= max")
        } else if !rates.iter().flatten().all(|r| r.is_finite() && *r >= 0.0) {
            Err("rates must be finite numbers, at least 0")
        } else if self
            .error_ratio
            .is_some_and(|r| !(r.is_finite() && (0.0..=1.0).contains(&r)))
        {
            Err("error_ratio must be a number from 0 to 1")
        } else if let Some(codes) = &self.codes
            && (codes.keys().any(|c| !(100..=599).contains(c))
                || codes
                    .values()
                    .try_fold(0u64, |a, n| a.checked_add(*n))
                    .is_none_or(|sum| sum > self.count))
        {
            Err("codes must be HTTP status codes (100 to 599) counting at most count samples")
        } else if self
            .metric
            .as_deref()
            .is_some_and(|m| crate::names::MetricName::parse(m).is_err())
        {
            Err("stats name an invalid metric")
        } else if self.correlation.is_some_and(|c| c.check().is_err()) {
            Err("correlation coefficients must lie in [-1, 1] and its line be finite")
        } else {
            Ok(())
        }
    }
}

/// What a plot was drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// Every raw sample in the window.
    Exact,
    /// Rollups of `resolution_secs`: counts, min, max and mean exact, percentiles within
    /// `relative_error` (the window widened to whole rollups at both ends).
    Rollups {
        resolution_secs: u32,
        relative_error: f64,
    },
}

impl DataSource {
    /// One-minute rollups at the rollup accuracy.
    pub fn minute_rollups() -> Self {
        Self::Rollups {
            resolution_secs: (crate::rollup::ROLLUP_MS / 1000) as u32,
            relative_error: crate::rollup::RELATIVE_ACCURACY,
        }
    }

    /// "exact, 1,204,311 samples" or "from 1-min rollups, percentiles ±1%, 288,000,000
    /// samples" (or "from 1-hour rollups, …"): what the image's corner says.
    pub fn describe(&self, samples: u64) -> String {
        let n = thousands(samples);
        match self {
            Self::Exact => format!("exact, {n} samples"),
            Self::Rollups {
                resolution_secs,
                relative_error,
            } => {
                let res = if resolution_secs.is_multiple_of(3600) {
                    format!("{}-hour", resolution_secs / 3600)
                } else if resolution_secs.is_multiple_of(60) {
                    format!("{}-min", resolution_secs / 60)
                } else {
                    format!("{resolution_secs}-s")
                };
                // Rounded up to a tenth of a percent (±1%, ±43.9%).
                let percent = (relative_error * 1000.0).ceil() / 10.0;
                format!("from {res} rollups, percentiles ±{percent}%, {n} samples")
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match self {
            Self::Exact => Ok(()),
            Self::Rollups {
                resolution_secs,
                relative_error,
            } => {
                if *resolution_secs == 0 || !(0.0..=1.0).contains(relative_error) {
                    Err("rollups need a resolution of at least 1 s and an error in [0, 1]")
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Checks a state's or event's `stats` (at most a plot's services, each valid) into
/// `errors` under `/stats`.
pub(crate) fn check_stats(errors: &mut Collector, stats: Option<&[SeriesStats]>) {
    let Some(stats) = stats else { return };
    if stats.len() > crate::plot::MAX_SERVICES {
        errors.err("/stats", "more entries than a plot has services");
    }
    for (i, s) in stats.iter().enumerate() {
        if let Err(problem) = s.check() {
            errors.err(format!("/stats/{i}"), problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::timings::{StageTimings, round_ms};

    #[test]
    fn stats_extras_per_kind() {
        let summary = crate::stats::summarize(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        let plain = SeriesStats::of("a", &summary);
        assert_eq!((plain.rate_per_s, plain.codes.as_ref()), (None, None));
        let rates = plain.clone().with_rates(0.5, 2.0);
        assert_eq!(
            (rates.rate_per_s, rates.peak_rate_per_s),
            (Some(0.5), Some(2.0))
        );
        let codes = plain.with_codes(BTreeMap::new(), 9);
        assert_eq!(codes.error_ratio, Some(1.0), "clamped to the count");
        assert!(codes.check().is_ok() && rates.check().is_ok());
        assert_eq!(round_ms(3.7124699999999997), 3.71);
        let t = StageTimings {
            queue_wait_ms: 0.123_456,
            render_ms: Some(2.005_1),
            total_ms: 9.999_9,
            ..StageTimings::default()
        }
        .rounded();
        assert_eq!(
            (t.queue_wait_ms, t.render_ms, t.total_ms),
            (0.12, Some(2.01), 10.0)
        );
    }
}
