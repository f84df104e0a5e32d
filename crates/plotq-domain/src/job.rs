//! Plot jobs: their ids, their lifecycle states, and the record clients poll.
//!
//! A `JobState` is validated when it is deserialised (it is stored as JSON and read back
//! by other processes): its spec by the same rules as `PlotSpec::parse`, its timestamps
//! (`until_ms`, `created_at_ms`, `updated_at_ms`) within the timestamp range, `render_ms`
//! and every stage of `timings` finite and not negative, `view` a valid view key, and
//! `stats` within their bounds (`SeriesStats`). Its data window is
//! `[until - window, until]` (inclusive), which cannot overflow for a valid state.
//!
//! Fields added after the first release (`attempts`, `source`, `documents_read`,
//! `stats`, `timings`, and the per-kind members of `SeriesStats`) are optional: states
//! written before they existed decode as they are.

use crate::error::{Collector, FieldErrors};
use crate::names::ServiceName;
use crate::plot::{PlotSpec, RawPlotSpec};
use crate::timestamp::check_timestamp;
use crate::view::check_view_key;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Identifies one plot job; also the key of its PNG and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// A new id issued at `now_ms` (a UUIDv7: the time, then random bits), so that a
    /// job whose stored state is missing can be told apart: issued before the cache
    /// lost its data (`410 state_lost`) or never issued (`404`).
    pub fn issued_at(now_ms: i64) -> Self {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let ts =
            uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        Self(Uuid::new_v7(ts))
    }

    /// When the id was issued (epoch ms), for ids made by `issued_at`.
    pub fn issued_ms(self) -> Option<i64> {
        if self.0.get_version_num() != 7 {
            return None;
        }
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        i64::try_from(secs)
            .ok()?
            .checked_mul(1000)?
            .checked_add(i64::from(nanos / 1_000_000))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where a job is in its life. `Done` and `Failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Rendering,
    Done,
    Failed,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }

    /// The word clients see (`queued`, `rendering`, `done`, `failed`): the same as the
    /// serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Rendering => "rendering",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }
}

/// What clients see of a job (`GET /api/v1/plots/{id}`). Deserialising validates (see
/// the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobState {
    pub id: JobId,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub spec: PlotSpec,
    /// The end of the data window (epoch ms): the window is `[until - window, until]`.
    pub until_ms: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Set when done: how many samples the plot drew.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_samples: Option<u64>,
    /// Set when done: how long the render took (milliseconds, wall clock, in the worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_ms: Option<f64>,
    /// The dashboard view this job refreshes, if a view asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// How many times a worker started this job: 0 while queued, 1 on the first render.
    /// Each start (the worker writing the `rendering` state) sets it to the larger of
    /// the stored value plus one — which counts broker redeliveries, e.g. after a worker
    /// died mid-job — and the delivery's retry count plus one — which counts retries
    /// whose earlier attempts could not store a state (Redis down) or whose state was
    /// lost. The `done` and `failed` states keep the value. Absent (0) in states written
    /// before this field existed, and not serialised while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Set when done: what the plot was drawn from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<DataSource>,
    /// Set when done: stored documents (chunks and rollups) the worker read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents_read: Option<u64>,
    /// Set when done: the numbers of each service's samples in the window, as the plot
    /// shows them (so a client can print them beside the image, or use them alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<SeriesStats>>,
    /// Where the last attempt spent its time (set when done, and on failures for the
    /// stages it reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<StageTimings>,
    /// Set when done, for plots with a time axis: where it is in the image (so a
    /// dashboard can turn a dragged span of pixels into a time range).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_axis: Option<TimeAxis>,
}

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

/// `ms` rounded to hundredths of a millisecond (what states, events and logs carry:
/// `3.71`, never `3.7124699999999997`).
pub fn round_ms(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// Where one attempt at a job spent its time, in milliseconds (rounded to hundredths):
/// `queue_wait` from the job's creation to the start of the attempt (retries and their
/// delays included), then the attempt's stages — `query` (reading the store), `render`
/// (drawing), `encode` (PNG/SVG encoding), `store` (the attempt's writes into the cache:
/// the `rendering` state and the image; the final state, which carries these timings,
/// is written right after) — and `total`, from the attempt's start to the job being
/// done (or failed), never less than the stages it contains. A stage the attempt did
/// not reach is absent. The job's `render_ms` is `render` plus `encode`.
///
/// In JSON each stage is named without its unit: `{"queue_wait": 12.5, "query": 3.2,
/// "render": 20.1, "encode": 1.4, "store": 0.8, "total": 26.0}`. Unknown members are
/// ignored, so later stages can be added within the version.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StageTimings {
    #[serde(rename = "queue_wait")]
    pub queue_wait_ms: f64,
    #[serde(rename = "query", default, skip_serializing_if = "Option::is_none")]
    pub query_ms: Option<f64>,
    #[serde(rename = "render", default, skip_serializing_if = "Option::is_none")]
    pub render_ms: Option<f64>,
    #[serde(rename = "encode", default, skip_serializing_if = "Option::is_none")]
    pub encode_ms: Option<f64>,
    #[serde(rename = "store", default, skip_serializing_if = "Option::is_none")]
    pub store_ms: Option<f64>,
    #[serde(rename = "total")]
    pub total_ms: f64,
}

impl StageTimings {
    /// Every stage rounded with [`round_ms`].
    pub fn rounded(self) -> Self {
        let r = |v: Option<f64>| v.map(round_ms);
        Self {
            queue_wait_ms: round_ms(self.queue_wait_ms),
            query_ms: r(self.query_ms),
            render_ms: r(self.render_ms),
            encode_ms: r(self.encode_ms),
            store_ms: r(self.store_ms),
            total_ms: round_ms(self.total_ms),
        }
    }

    /// `(name, milliseconds)` of every stage the attempt reached, `total` last (the
    /// names are the JSON members').
    pub fn stages(&self) -> Vec<(&'static str, f64)> {
        let mut out = vec![("queue_wait", self.queue_wait_ms)];
        for (name, ms) in [
            ("query", self.query_ms),
            ("render", self.render_ms),
            ("encode", self.encode_ms),
            ("store", self.store_ms),
        ] {
            if let Some(ms) = ms {
                out.push((name, ms));
            }
        }
        out.push(("total", self.total_ms));
        out
    }

    /// Every stage finite and not negative; the problem names the stage's member.
    pub(crate) fn check(&self) -> Result<(), (&'static str, &'static str)> {
        for (name, ms) in self.stages() {
            if !(ms.is_finite() && ms >= 0.0) {
                return Err((name, "must be a finite number of milliseconds, at least 0"));
            }
        }
        Ok(())
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
}

impl SeriesStats {
    pub fn of(service: &str, s: &crate::stats::Summary) -> Self {
        Self {
            service: service.to_owned(),
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
    /// samples": what the image's corner says.
    pub fn describe(&self, samples: u64) -> String {
        let n = thousands(samples);
        match self {
            Self::Exact => format!("exact, {n} samples"),
            Self::Rollups {
                resolution_secs,
                relative_error,
            } => {
                let res = if resolution_secs.is_multiple_of(60) {
                    format!("{}-min", resolution_secs / 60)
                } else {
                    format!("{resolution_secs}-s")
                };
                format!(
                    "from {res} rollups, percentiles ±{}%, {n} samples",
                    relative_error * 100.0
                )
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
fn thousands(n: u64) -> String {
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

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl JobState {
    pub fn queued(id: JobId, spec: PlotSpec, now_ms: i64) -> Self {
        let until_ms = spec.range.resolve(now_ms).1;
        Self {
            id,
            status: JobStatus::Queued,
            error: None,
            spec,
            until_ms,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            n_samples: None,
            render_ms: None,
            view: None,
            attempts: 0,
            source: None,
            documents_read: None,
            stats: None,
            timings: None,
            time_axis: None,
        }
    }

    /// `[from, until]` (inclusive) of the data this job draws. For a valid state (every
    /// decoded one) both ends are within 7 days of the timestamp range: no overflow.
    pub fn data_range(&self) -> (i64, i64) {
        self.spec.range.resolve(self.until_ms)
    }

    pub(crate) fn from_raw(raw: RawJobState) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        let spec = PlotSpec::from_raw(raw.spec)
            .map_err(|e| errors.extend_under(e, "/spec"))
            .ok();
        for (field, ms) in [
            ("/until_ms", raw.until_ms),
            ("/created_at_ms", raw.created_at_ms),
            ("/updated_at_ms", raw.updated_at_ms),
        ] {
            if let Err(p) = check_timestamp(ms) {
                errors.err(field, p);
            }
        }
        if raw
            .render_ms
            .is_some_and(|ms| !(ms.is_finite() && ms >= 0.0))
        {
            errors.err(
                "/render_ms",
                "must be a finite number of milliseconds, at least 0",
            );
        }
        check_view_key(&mut errors, "/view", raw.view.as_deref());
        if let Some(Err(problem)) = raw.source.map(|s| s.check()) {
            errors.err("/source", problem);
        }
        check_stats(&mut errors, raw.stats.as_deref());
        check_timings(&mut errors, raw.timings.as_ref());
        check_time_axis(&mut errors, raw.time_axis.as_ref());
        errors.finish()?;
        let Some(spec) = spec else {
            return Err(FieldErrors::one("/spec", "invalid plot spec"));
        };
        Ok(Self {
            id: raw.id,
            status: raw.status,
            error: raw.error,
            spec,
            until_ms: raw.until_ms,
            created_at_ms: raw.created_at_ms,
            updated_at_ms: raw.updated_at_ms,
            n_samples: raw.n_samples,
            render_ms: raw.render_ms,
            view: raw.view,
            attempts: raw.attempts,
            source: raw.source,
            documents_read: raw.documents_read,
            stats: raw.stats,
            timings: raw.timings,
            time_axis: raw.time_axis,
        })
    }
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

/// Checks a state's or event's `timings` into `errors` under `/timings`.
pub(crate) fn check_timings(errors: &mut Collector, timings: Option<&StageTimings>) {
    if let Some(Err((stage, problem))) = timings.map(StageTimings::check) {
        errors.err(format!("/timings/{stage}"), problem);
    }
}

/// `JobState`'s serialised shape, before validation.
#[derive(Deserialize)]
pub(crate) struct RawJobState {
    id: JobId,
    status: JobStatus,
    #[serde(default)]
    error: Option<String>,
    spec: RawPlotSpec,
    until_ms: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    #[serde(default)]
    n_samples: Option<u64>,
    #[serde(default)]
    render_ms: Option<f64>,
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    source: Option<DataSource>,
    #[serde(default)]
    documents_read: Option<u64>,
    #[serde(default)]
    stats: Option<Vec<SeriesStats>>,
    #[serde(default)]
    timings: Option<StageTimings>,
    #[serde(default)]
    time_axis: Option<TimeAxis>,
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJobState::deserialize(deserializer)?;
        JobState::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ServiceName;
    use crate::plot::{PlotKind, TimeRange};
    use crate::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
    use crate::window::Window;

    #[test]
    fn issued_ids_carry_their_time_and_random_ones_none() {
        let id = JobId::issued_at(1_700_000_000_123);
        assert_eq!(id.issued_ms(), Some(1_700_000_000_123));
        assert_ne!(
            id,
            JobId::issued_at(1_700_000_000_123),
            "random bits differ"
        );
        assert_eq!(JobId::parse(&id.to_string()), Some(id));
        assert_eq!(JobId::new_random().issued_ms(), None);
    }

    #[test]
    fn status_words_match_the_serialised_form() {
        for status in [
            JobStatus::Queued,
            JobStatus::Rendering,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
    }

    #[test]
    fn data_ranges_of_valid_states_cannot_overflow() {
        let mut spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        spec.range = TimeRange::Last(Window::parse("7d").unwrap());
        for until in [MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS] {
            let state = JobState::queued(JobId::new_random(), spec.clone(), until);
            let back = crate::wire::decode_state(&crate::wire::encode_state(&state)).unwrap();
            let (from, to) = back.data_range();
            assert_eq!((to - from, to), (604_800_000, until));
        }
        // Out-of-range states are refused on decode; built in code, they saturate.
        let wild = JobState::queued(JobId::new_random(), spec, i64::MIN);
        assert!(crate::wire::decode_state(&crate::wire::encode_state(&wild)).is_err());
        assert_eq!(wild.data_range(), (i64::MIN, i64::MIN));
    }

    #[test]
    fn attempts_round_trip_and_default_to_zero_when_absent() {
        let spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1_700_000_000_000);
        // Queued: 0, not serialised, so a previous release's state looks the same.
        let queued = crate::wire::encode_state(&state);
        assert!(!String::from_utf8_lossy(&queued).contains("attempts"));
        assert_eq!(crate::wire::decode_state(&queued).unwrap().attempts, 0);
        state.attempts = 3;
        let back = crate::wire::decode_state(&crate::wire::encode_state(&state)).unwrap();
        assert_eq!(back.attempts, 3);
    }

    fn done_state() -> JobState {
        let spec = PlotSpec::new(PlotKind::StatusCodes, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1_700_000_000_000);
        state.status = JobStatus::Done;
        state.timings = Some(StageTimings {
            queue_wait_ms: 12.5,
            query_ms: Some(3.25),
            render_ms: Some(20.0),
            encode_ms: Some(1.5),
            store_ms: Some(0.75),
            total_ms: 26.0,
        });
        let summary = crate::stats::summarize(&[200.0, 200.0, 503.0, 404.0]).unwrap();
        let codes = crate::series::code_counts(&[200.0, 200.0, 503.0, 404.0]);
        state.stats = Some(vec![SeriesStats::of("a", &summary).with_codes(codes, 1)]);
        state
    }

    /// `encode_state(state)` as JSON, `edit`ed, decoded.
    fn decode_edited(
        state: &JobState,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Result<JobState, crate::wire::DecodeError> {
        let mut v: serde_json::Value =
            serde_json::from_slice(&crate::wire::encode_state(state)).unwrap();
        edit(&mut v);
        crate::wire::decode_state(v.to_string().as_bytes())
    }

    #[test]
    fn timings_and_stats_round_trip_with_their_json_shape() {
        let state = done_state();
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(
            json["timings"],
            serde_json::json!({"queue_wait": 12.5, "query": 3.25, "render": 20.0,
                "encode": 1.5, "store": 0.75, "total": 26.0})
        );
        assert_eq!(
            json["stats"][0]["codes"],
            serde_json::json!({"200": 2, "404": 1, "503": 1})
        );
        assert_eq!(json["stats"][0]["error_ratio"], 0.25);
        assert!(json["stats"][0].get("rate_per_s").is_none());
        let back = crate::wire::decode_state(&crate::wire::encode_state(&state)).unwrap();
        assert_eq!(back, state);
        // A stage not reached is absent, and reads back absent.
        let mut failed = state.clone();
        failed.timings = Some(StageTimings {
            queue_wait_ms: 1.0,
            query_ms: Some(2.0),
            total_ms: 2.5,
            ..StageTimings::default()
        });
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json["timings"],
            serde_json::json!({"queue_wait": 1.0, "query": 2.0, "total": 2.5})
        );
        let back = crate::wire::decode_state(&crate::wire::encode_state(&failed)).unwrap();
        assert_eq!(back, failed);
    }

    #[test]
    fn states_written_before_timings_and_per_kind_stats_still_decode() {
        let state = done_state();
        let old = decode_edited(&state, |v| {
            let m = v.as_object_mut().unwrap();
            m.remove("timings");
            let stats = m["stats"][0].as_object_mut().unwrap();
            stats.remove("codes");
            stats.remove("error_ratio");
        })
        .unwrap();
        assert_eq!(old.timings, None);
        assert_eq!(old.stats.as_ref().unwrap()[0].codes, None);
        // Later stages may come: unknown members of `timings` are ignored.
        let newer = decode_edited(&state, |v| v["timings"]["upload"] = 1.0.into()).unwrap();
        assert_eq!(newer.timings, state.timings);
    }

    #[test]
    fn bad_timings_and_stats_are_refused_naming_the_member() {
        let state = done_state();
        for (edit, field) in [
            (
                Box::new(|v: &mut serde_json::Value| v["timings"]["query"] = (-1.0).into())
                    as Box<dyn FnOnce(&mut serde_json::Value)>,
                "/timings/query",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["timings"]["total"] = (-0.5).into()),
                "/timings/total",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["stats"][0]["error_ratio"] = 1.5.into()),
                "/stats/0",
            ),
            (
                Box::new(|v: &mut serde_json::Value| {
                    v["stats"][0]["codes"] = serde_json::json!({"700": 1})
                }),
                "/stats/0",
            ),
            (
                Box::new(|v: &mut serde_json::Value| {
                    v["stats"][0]["codes"] = serde_json::json!({"200": 5})
                }),
                "/stats/0",
            ),
            (
                Box::new(|v: &mut serde_json::Value| v["stats"][0]["rate_per_s"] = (-2.0).into()),
                "/stats/0",
            ),
        ] {
            let Err(crate::wire::DecodeError::Invalid(errors)) = decode_edited(&state, edit) else {
                panic!("{field}: accepted");
            };
            assert_eq!(errors.0[0].field, field);
        }
        // Not a number at all: malformed.
        assert!(decode_edited(&state, |v| v["timings"]["total"] = "x".into()).is_err());
    }

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
