//! Plot jobs: their ids, their lifecycle states, and the record clients poll.
//!
//! A `JobState` is validated when it is deserialised (it is stored as JSON and read back
//! by other processes): its spec by the same rules as `PlotSpec::parse`, its timestamps
//! (`until_ms`, `created_at_ms`, `updated_at_ms`) within the timestamp range, `render_ms`
//! finite and not negative, and `view` a valid view key. Its data window is
//! `[until - window, until]` (inclusive), which cannot overflow for a valid state.

use crate::error::{Collector, FieldErrors};
use crate::names::ServiceName;
use crate::plot::{PlotSpec, RawPlotSpec};
use crate::timestamp::check_timestamp;
use crate::view::check_view_key;
use serde::{Deserialize, Deserializer, Serialize};
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
}

/// One service's samples in a plot's window: count, min, max and mean exact; p50, p95
/// and p99 exact from raw samples, within the rollups' accuracy from rollups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesStats {
    pub service: String,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
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
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        let numbers = [self.mean, self.min, self.max, self.p50, self.p95, self.p99];
        if ServiceName::parse(&self.service).is_err() {
            Err("stats name an invalid service")
        } else if !numbers.iter().all(|v| v.is_finite()) || self.min > self.max {
            Err("stats must be finite numbers with min <= max")
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
        if let Some(stats) = &raw.stats {
            if stats.len() > crate::plot::MAX_SERVICES {
                errors.err("/stats", "more entries than a plot has services");
            }
            for (i, s) in stats.iter().enumerate() {
                if let Err(problem) = s.check() {
                    errors.err(format!("/stats/{i}"), problem);
                }
            }
        }
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
        })
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
}
