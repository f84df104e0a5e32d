//! Tick positions and labels: round numbers on value axes, 1-2-5 decades on log axes,
//! calendar-aligned UTC instants on time axes, and time-bucket widths for a range.
//!
//! Bounded by construction for any input (every finite `f64`, every `i64` instant):
//! each generator returns at most its `max_ticks` (+ 2), capped at [`MAX_TICKS`], with
//! no loop whose trip count grows with the data's magnitude; spans that overflow are
//! computed in halves; labels of extreme values are scientific (`1e308`, `2.5e-310`).

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

    /// Where the ticks are, in order.
    pub fn ticks(&self) -> &[f64] {
        &self.ticks
    }

    fn fraction(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.max(SMALLEST).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            // Halves (exact) so that `v - lo` and `hi - lo` cannot overflow; for ordinary
            // values the quotient is bit for bit `(v - lo) / (hi - lo)`.
            let (v, lo, hi) = scaled_for_span(v, self.lo, self.hi);
            (v - lo) / (hi - lo)
        };
        // Far-off values map just off the plot instead of overflowing pixel coordinates.
        if t.is_nan() { 0.0 } else { t.clamp(-4.0, 5.0) }
    }
}

/// `v`, `lo` and `hi` times one power of two that keeps `hi - lo` and `v - lo` finite
/// and normal: ½ as a rule, 2^900 when `lo` and `hi` are both tiny (below 2^-800).
fn scaled_for_span(v: f64, lo: f64, hi: f64) -> (f64, f64, f64) {
    const TINY: f64 = f64::from_bits((1023 - 800) << 52);
    const UP: f64 = f64::from_bits((1023 + 900) << 52);
    let k = if lo.abs().max(hi.abs()) < TINY {
        UP
    } else {
        0.5
    };
    (v * k, lo * k, hi * k)
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

/// The smallest positive `f64` (a subnormal, 4.9e-324).
const SMALLEST: f64 = f64::from_bits(1);

/// Most ticks any generator here returns (callers ask for at most a dozen); bounds the
/// label work whatever a caller or the data asks for.
pub const MAX_TICKS: usize = 64;

/// A 1/2/5 × 10^k step that cuts `span` into at most `max_ticks` pieces; positive and
/// finite for any input (1 for a span that is not positive and finite).
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    nice_at_least(span / max_ticks.clamp(1, MAX_TICKS) as f64)
}

/// The smallest 1/2/5 × 10^k that is at least `raw` (within 1e-9), as a positive finite
/// `f64`: the smallest subnormal for a `raw` that underflowed, `f64::MAX` past 1e308.
fn nice_at_least(raw: f64) -> f64 {
    if raw.is_nan() || raw <= SMALLEST {
        return SMALLEST;
    }
    if raw > 1e308 {
        return f64::MAX;
    }
    let exponent = raw.log10().floor();
    if (-300.0..=300.0).contains(&exponent) {
        let magnitude = 10f64.powf(exponent);
        return [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw * (1.0 - 1e-9))
            .unwrap_or(10.0 * magnitude);
    }
    // Near the ends of the range 10^k itself is not representable (10^-324 is 0): read
    // each candidate as the nearest f64 to its decimal.
    let e = exponent as i32;
    [(1, e), (2, e), (5, e), (1, e + 1), (2, e + 1)]
        .iter()
        .map(|&(m, e)| decimal(m, e))
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(f64::MAX)
        .clamp(SMALLEST, f64::MAX)
}

/// The `f64` nearest to `m` × 10^`e` (0 below the subnormals, infinity above `MAX`).
fn decimal(m: u8, e: i32) -> f64 {
    format!("{m}e{e}").parse().unwrap_or(0.0)
}

/// `m` × 10^`e` for log ticks: as before in the ordinary range, read from the decimal
/// near the ends (where `10f64.powi` under- or overflows).
fn decade_multiple(m: u8, e: i32) -> f64 {
    if (-300..=300).contains(&e) {
        f64::from(m) * 10f64.powi(e)
    } else {
        decimal(m, e)
    }
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

/// Multiples of a nice step inside `[lo, hi]`, and the step (positive and finite).
///
/// At most `max_ticks + 2` ticks for any input, all finite: the step is chosen from the
/// span (computed in halves when `hi - lo` overflows), tick indices are kept as `f64`
/// (no saturating cast), and the count is capped before anything is allocated.
pub fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> (Vec<f64>, f64) {
    let max_ticks = max_ticks.clamp(1, MAX_TICKS);
    // `max`/`min` also replace a NaN end with the finite extreme.
    let (lo, hi) = (lo.max(-f64::MAX), hi.min(f64::MAX));
    if lo > hi {
        return (Vec::new(), 1.0);
    }
    let span = hi - lo;
    let mut step = if span.is_finite() {
        nice_step(span, max_ticks)
    } else {
        nice_at_least((hi * 0.5 - lo * 0.5) / max_ticks as f64 * 2.0)
    };
    let cap = max_ticks + 2;
    // Rounding (subnormal steps) can leave one tick too many: try the next steps up.
    for _ in 0..4 {
        let (first, last) = ((lo / step).ceil(), (hi / step).floor());
        let count = last - first + 1.0;
        if count.is_finite() && count <= cap as f64 {
            let mut ticks: Vec<f64> = (0..count.max(0.0) as usize)
                .map(|k| (first + k as f64) * step)
                .filter(|t| t.is_finite())
                .collect();
            // Beyond 2^53 consecutive indices may round to the same tick.
            ticks.dedup();
            return (ticks, step);
        }
        step = nice_at_least(step * 1.5);
    }
    (Vec::new(), step)
}

/// 1, 2, 5 × 10^k inside `[lo, hi]` (`lo > 0`); only powers of ten when that is too
/// many; only every 2nd, 5th, 10th, … power of ten when even those are too many.
///
/// At most `max(max_ticks, 2)` ticks (never more than `max_ticks + 2`), all positive and
/// finite, for any input: exponents are clamped to the finite range (-324..=309), so the
/// work is bounded by a constant.
pub fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let max_ticks = max_ticks.clamp(1, MAX_TICKS);
    let (lo, hi) = (lo.max(SMALLEST), hi.min(f64::MAX));
    if lo > hi {
        return Vec::new();
    }
    let (a, b) = (
        lo.log10().floor().max(-324.0) as i32,
        hi.log10().ceil().min(309.0) as i32,
    );
    let within = |v: &f64| v.is_finite() && *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let decades = || (a..=b).map(|e| decade_multiple(1, e)).filter(within);
    let n_decades = decades().count();
    if n_decades <= max_ticks {
        // Few enough decades that 1-2-5 might fit (≤ 3 per decade: bounded).
        let all: Vec<f64> = (a..=b)
            .flat_map(|e| [1, 2, 5].map(|m| decade_multiple(m, e)))
            .filter(within)
            .collect();
        if all.len() <= max_ticks {
            return all;
        }
        if n_decades >= 2 {
            return decades().collect();
        }
        // Within one decade: every other of at most six.
        return all.into_iter().step_by(2).take(max_ticks.max(2)).collect();
    }
    // Too many decades: every k-th, aligned to multiples of k (1e-300, 1e-200, …), the
    // smallest k that fits. At most 634 exponents: the work is bounded by a constant.
    let exponents: Vec<i32> = (a..=b)
        .filter(|e| within(&decade_multiple(1, *e)))
        .collect();
    let every = |k: i32| exponents.iter().filter(move |e| e.rem_euclid(k) == 0);
    let k = [
        2, 3, 4, 5, 10, 20, 25, 30, 50, 100, 150, 200, 250, 300, 500, 1000,
    ]
    .into_iter()
    .find(|k| every(*k).count() <= max_ticks)
    .unwrap_or(1000);
    let thinned: Vec<f64> = every(k)
        .map(|e| decade_multiple(1, *e))
        .take(max_ticks)
        .collect();
    match (thinned.len(), exponents.first(), exponents.last()) {
        // One tick says little about hundreds of decades: show both ends instead.
        (0 | 1, Some(&first), Some(&last)) if first < last => {
            vec![decade_multiple(1, first), decade_multiple(1, last)]
        }
        _ => thinned,
    }
}

/// Whether labels at `step` (or of a value of magnitude `abs`) are written in scientific
/// notation: steps of 1e8 and up, below 1e-4, or values past 1e15 (where fixed notation
/// is unreadable); ordinary axes keep their fixed, `k` and `M` labels.
fn scientific(abs: f64, step: f64) -> bool {
    !(1e-4..1e8).contains(&step) || abs >= 1e15
}

/// `v` in scientific notation with at most `decimals` mantissa decimals, trailing zeros
/// trimmed: `1e308`, `-1.5e308`, `2.5e-310`.
pub fn format_sci(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$e}");
    match s.split_once('e') {
        Some((mantissa, exponent)) => format!("{}e{exponent}", trim(mantissa.to_owned())),
        None => s,
    }
}

/// A tick label with just enough decimals for `step`; thousands as `k`, millions as `M`;
/// scientific (`1.5e308`, `2e-311`) for huge or tiny steps and values. Any finite input
/// gives a short label.
pub fn format_tick(value: f64, step: f64) -> String {
    let v = if value == 0.0 || value.abs() < step.abs() * 1e-9 {
        0.0
    } else {
        value
    };
    if !(v.is_finite() && step.is_finite() && step > 0.0) {
        return format_sci(v, 3);
    }
    if scientific(v.abs(), step) {
        if v == 0.0 {
            return "0".to_owned();
        }
        // Enough mantissa digits to tell ticks `step` apart.
        let digits = v.abs().log10().floor() - step.log10().floor();
        return format_sci(v, digits.clamp(0.0, 16.0) as usize);
    }
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
        (-step.log10().floor()).clamp(0.0, 17.0) as usize
    };
    format!("{v:.decimals$}")
}

/// A label for a log-axis tick (no step to go by); scientific from 1e6 up and below
/// 0.001 (`1e270`, `2e-5`: ticks are 1, 2 or 5 × 10^k, one digit says it).
pub fn format_log_tick(value: f64) -> String {
    if !(1e-3..1e6).contains(&value) {
        format_sci(value, 0)
    } else if value >= 1.0 {
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

/// A value with its unit, e.g. `64.12ms`; scientific from 1e6 up and below 0.01
/// (`1e308ms`, `2.5e-310ms`).
pub fn format_value(v: f64, unit: &str) -> String {
    // -0.0 reads as 0.
    let v = if v == 0.0 { 0.0 } else { v };
    let abs = v.abs();
    let s = if v != 0.0 && !(0.01..1e6).contains(&abs) {
        format_sci(v, 3)
    } else if abs >= 1000.0 {
        format!("{v:.0}")
    } else if abs >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s}{unit}")
}

/// `until - from` in milliseconds, 0 when reversed, `i64::MAX` when it overflows.
pub fn span_ms(from_ms: i64, until_ms: i64) -> i64 {
    until_ms.saturating_sub(from_ms).max(0)
}

/// The smallest calendar-friendly step that cuts `span_ms` into at most `max` pieces
/// (whole days past a day); positive for any input. The domain's, so the statistics'
/// time buckets are the plot's (`plotq_domain::series`).
pub fn time_step(span_ms: i64, max: usize) -> i64 {
    plotq_domain::series::time_step(span_ms, max)
}

/// Bucket width for time-series kinds: about a minute per bucket for an hour (as in the
/// status-page design document), at most `max_buckets` buckets for any range.
pub fn bucket_ms(span_ms: i64, max_buckets: usize) -> i64 {
    time_step(span_ms, max_buckets)
}

/// UTC tick instants aligned to a calendar-friendly step within `[from, until]`, and the
/// label format that fits the step. At most `max(max_ticks, 2) + 1` ticks (checked
/// arithmetic: the ends of `i64` are fine).
pub fn time_ticks(from_ms: i64, until_ms: i64, max_ticks: usize) -> (Vec<f64>, &'static str) {
    let max_ticks = max_ticks.clamp(2, MAX_TICKS);
    let span = span_ms(from_ms, until_ms);
    let step = time_step(span, max_ticks);
    let aligned = from_ms.div_euclid(step).checked_mul(step);
    let first = if from_ms.rem_euclid(step) == 0 {
        aligned
    } else {
        aligned.and_then(|t| t.checked_add(step))
    };
    let ticks = std::iter::successors(first, |t| t.checked_add(step))
        .take_while(|t| *t <= until_ms)
        .take(max_ticks + 1)
        .map(|t| t as f64)
        .collect();
    let spans_days = span > 86_400_000;
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
