//! Tick positions and labels: round numbers on value axes, 1-2-5 decades on log axes,
//! calendar-aligned UTC instants on time axes, and time-bucket widths for a range.

use chrono::{DateTime, Utc};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// A value axis (linear or logarithmic) whose tick positions we choose ourselves:
/// round numbers, 1-2-5 decades or clock-aligned instants, never plotters' guesses.
#[derive(Debug, Clone)]
pub struct TickedAxis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl TickedAxis {
    pub fn linear(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self {
            lo,
            hi,
            log: false,
            ticks,
        }
    }

    /// A logarithmic axis; `lo` must be positive.
    pub fn log(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self {
            lo,
            hi,
            log: true,
            ticks,
        }
    }

    pub fn tick_count(&self) -> usize {
        self.ticks.len()
    }

    fn fraction(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.max(f64::MIN_POSITIVE).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        // Far-off values map just off the plot instead of overflowing pixel coordinates.
        if t.is_finite() {
            t.clamp(-4.0, 5.0)
        } else {
            0.0
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = (limit.1 - limit.0) as f64;
        limit.0 + (self.fraction(*value) * span).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// A 1/2/5 × 10^k step that cuts `span` into at most `max_ticks` pieces.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// The formatter of a value axis's tick labels.
pub type TickFormatter = Box<dyn Fn(&f64) -> String>;

/// A value x axis over `[lo, hi]` with at most `max_ticks` ticks: 1-2-5 decades on a log
/// axis, round steps on a linear one; with its label formatter.
pub fn value_axis(lo: f64, hi: f64, log: bool, max_ticks: usize) -> (TickedAxis, TickFormatter) {
    if log {
        let ticks = log_ticks(lo, hi, max_ticks);
        (
            TickedAxis::log(lo, hi, ticks),
            Box::new(|v: &f64| format_log_tick(*v)),
        )
    } else {
        let (ticks, step) = linear_ticks(lo, hi, max_ticks);
        (
            TickedAxis::linear(lo, hi, ticks),
            Box::new(move |v: &f64| format_tick(*v, step)),
        )
    }
}

/// Multiples of a nice step inside `[lo, hi]`, and the step.
pub fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let step = nice_step(hi - lo, max_ticks);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// 1, 2, 5 × 10^k inside `[lo, hi]` (`lo > 0`); only powers of ten when that is too many.
pub fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let all: Vec<f64> = (a..=b)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(within)
        .collect();
    if all.len() <= max_ticks {
        return all;
    }
    let decades: Vec<f64> = (a..=b).map(|e| 10f64.powi(e)).filter(within).collect();
    if decades.len() >= 2 {
        decades
    } else {
        all.into_iter().step_by(2).collect()
    }
}

/// A tick label with just enough decimals for `step`; thousands as `k`, millions as `M`.
pub fn format_tick(value: f64, step: f64) -> String {
    let v = if value.abs() < step.abs() * 1e-9 {
        0.0
    } else {
        value
    };
    // The suffix follows the step, so every label on one axis uses the same one.
    if v != 0.0 && step >= 1e5 {
        return trim(format!("{:.1}", v / 1e6)) + "M";
    }
    if v != 0.0 && step >= 1e3 {
        return trim(format!("{:.1}", v / 1e3)) + "k";
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()).max(0.0) as usize
    };
    format!("{v:.decimals$}")
}

/// A label for a log-axis tick (no step to go by).
pub fn format_log_tick(value: f64) -> String {
    if value >= 1.0 {
        format_tick(value, if value >= 1e4 { 1e3 } else { 1.0 })
    } else {
        trim(format!("{value:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A value with its unit, e.g. `64.12ms`.
pub fn format_value(v: f64, unit: &str) -> String {
    let s = if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s}{unit}")
}

/// Candidate time steps in milliseconds (ticks and buckets), all calendar-friendly.
const TIME_STEPS_MS: &[i64] = &[
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// The smallest calendar-friendly step that cuts `span_ms` into at most `max` pieces.
pub fn time_step(span_ms: i64, max: usize) -> i64 {
    TIME_STEPS_MS
        .iter()
        .copied()
        .find(|s| span_ms / s <= max as i64)
        .unwrap_or_else(|| {
            let day = 86_400_000;
            (span_ms / max as i64 / day + 1) * day
        })
}

/// Bucket width for time-series kinds: about a minute per bucket for an hour (seed 003),
/// at most `max_buckets` buckets for any range.
pub fn bucket_ms(span_ms: i64, max_buckets: usize) -> i64 {
    time_step(span_ms, max_buckets)
}

/// UTC tick instants aligned to a calendar-friendly step within `[from, until]`, and the
/// label format that fits the step.
pub fn time_ticks(from_ms: i64, until_ms: i64, max_ticks: usize) -> (Vec<f64>, &'static str) {
    let step = time_step(until_ms - from_ms, max_ticks.max(2));
    let first = from_ms.div_euclid(step) * step
        + if from_ms.rem_euclid(step) == 0 {
            0
        } else {
            step
        };
    let ticks = (0..)
        .map(|k| first + k * step)
        .take_while(|t| *t <= until_ms)
        .map(|t| t as f64)
        .collect();
    let spans_days = until_ms - from_ms > 86_400_000;
    let format = if step < 60_000 {
        "%H:%M:%S"
    } else if step >= 86_400_000 {
        "%b %d"
    } else if spans_days {
        "%d %H:%M"
    } else {
        "%H:%M"
    };
    (ticks, format)
}

pub fn format_time(ms: f64, format: &str) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .map(|d| d.format(format).to_string())
        .unwrap_or_default()
}

/// The unit of a metric, from its name's suffix (`latency_ms` → `ms`).
pub fn unit_of(metric: &str) -> &'static str {
    if metric.ends_with("_ms") {
        "ms"
    } else if metric.ends_with("_us") {
        "µs"
    } else if metric.ends_with("_s") || metric.ends_with("_seconds") {
        "s"
    } else if metric.ends_with("_bytes") {
        "B"
    } else {
        ""
    }
}

/// `latency_ms` → `Latency`: the metric's name without its unit suffix, capitalised.
pub fn humanize_metric(metric: &str) -> String {
    let base = ["_ms", "_us", "_seconds", "_s", "_bytes"]
        .iter()
        .find_map(|suffix| metric.strip_suffix(suffix))
        .unwrap_or(metric)
        .replace(['_', '.'], " ");
    let mut chars = base.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round() {
        assert_eq!(nice_step(100.0, 10), 10.0);
        assert_eq!(nice_step(87.0, 10), 10.0);
        assert_eq!(nice_step(0.9, 10), 0.1);
        assert_eq!(nice_step(0.0, 10), 1.0);
        assert_eq!(
            linear_ticks(2.5, 181.0, 10).0,
            vec![20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0]
        );
        assert_eq!(format_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(format_tick(1500.0, 500.0), "1500");
        assert_eq!(format_tick(20000.0, 5000.0), "20k");
        assert_eq!(format_tick(8000.0, 2000.0), "8k");
        assert_eq!(format_tick(0.0, 2000.0), "0");
        assert_eq!(format_tick(2_500_000.0, 500_000.0), "2.5M");
    }

    #[test]
    fn log_ticks_cover_decades() {
        assert_eq!(
            log_ticks(3.0, 600.0, 20),
            vec![5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        );
        assert_eq!(
            log_ticks(1.0, 1e6, 8),
            vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]
        );
    }

    #[test]
    fn time_ticks_align_to_the_clock() {
        // 10:00:07 .. 11:00:07 UTC on 2026-11-22.
        let from = 1_795_341_607_000;
        let (ticks, fmt) = time_ticks(from, from + 3_600_000, 8);
        assert_eq!(fmt, "%H:%M");
        assert_eq!(format_time(ticks[0], fmt), "10:10");
        assert!(ticks.iter().all(|t| (*t as i64) % 600_000 == 0));
        assert_eq!(
            bucket_ms(3_600_000, 60),
            60_000,
            "an hour in one-minute buckets"
        );
        assert_eq!(bucket_ms(7 * 86_400_000, 60), 10_800_000);
    }

    #[test]
    fn units_and_names() {
        assert_eq!(
            (unit_of("latency_ms"), humanize_metric("latency_ms")),
            ("ms", "Latency".to_owned())
        );
        assert_eq!(
            (unit_of("status_code"), humanize_metric("status_code")),
            ("", "Status code".to_owned())
        );
        assert_eq!(format_value(64.123, "ms"), "64.12ms");
    }
}
