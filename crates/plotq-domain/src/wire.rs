//! Wire formats: the only definition of what crosses a process boundary.
//!
//! Queue messages (`JobMessage`), events (`PlotEvent`), stored job states
//! (`encode_state`/`decode_state`) and stored view states (`encode_view_state`/
//! `decode_view_state`) are JSON objects carrying a `v` version field. A reader rejects
//! versions it does not know instead of guessing. The names of the AMQP headers plotq
//! sets on queued jobs are in [`amqp_headers`].
//!
//! Decoding validates, with the same rules as the HTTP API: a message's spec goes
//! through the rules of `PlotSpec::parse` (services, sizes, bins, title, options, range),
//! every timestamp must lie in the timestamp range (1970 to the end of year 9999), and
//! view keys must parse as `View`s. An event names 1 to `MAX_SERVICES` distinct valid
//! services (`service` being the first), a valid metric, and the canonical URLs of its
//! job; its `timings` and `stats`, when present, follow the job state's rules. Invalid
//! input is `DecodeError::Invalid`, naming every problem (up to the cap).
//!
//! Within a version, members may only be added, and only as optional ones: a reader
//! must accept what a writer of the same version wrote before the member existed (e.g.
//! `timings` and `stats` on events, `timings` on job states).
//!
//! `EventId` is the position of an event on the bus: a Redis stream id `<ms>-<seq>`,
//! ordered numerically. The ports hand out and take `EventId`s; only the Redis adapter
//! converts them to and from stream id strings (and the notifier reads a client's
//! `Last-Event-ID` with [`EventId::parse`]).

use crate::error::{Collector, FieldErrors};
use crate::job::{
    JobId, JobState, SeriesStats, StageTimings, TimeAxis, check_stats, check_time_axis,
    check_timings,
};
use crate::names::{MetricName, ServiceName};
use crate::plot::{ImageFormat, MAX_SERVICES, PlotKind, PlotSpec, RawPlotSpec};
use crate::timestamp::check_timestamp;
use crate::view::{ViewState, check_view_key};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Current version of `JobMessage`.
pub const JOB_MESSAGE_VERSION: u32 = 1;
/// Current version of `PlotEvent`.
pub const EVENT_VERSION: u32 = 1;
/// Current version of a stored `JobState` (`encode_state`).
pub const JOB_STATE_VERSION: u32 = 1;
/// Current version of a stored `ViewState` (`encode_view_state`).
pub const VIEW_STATE_VERSION: u32 = 1;

/// Names of the AMQP message headers plotq sets (and reads back) on queued jobs. Their
/// values are numbers or text; the job itself is always the body (`JobMessage`).
pub mod amqp_headers {
    /// Retries already made (an unsigned integer): set on a job scheduled for retry
    /// (`1` for the first retry) and on a dead letter (every attempt made).
    pub const ATTEMPT: &str = "x-plotq-attempt";
    /// Why a job was dead-lettered (text).
    pub const REASON: &str = "x-plotq-reason";
    /// When a job was dead-lettered, epoch milliseconds (an integer).
    pub const DEAD_AT: &str = "x-plotq-dead-at";
    /// Set by the broker itself on messages it dead-lettered (e.g. `delivery_limit`).
    pub const BROKER_DEATH_REASON: &str = "x-first-death-reason";
}

/// A plot job on the work queue. Deserialising validates (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobMessage {
    pub v: u32,
    pub id: JobId,
    pub spec: PlotSpec,
    /// End of the data window, epoch ms; fixed at request time so a re-run draws the same data.
    pub until_ms: i64,
    /// The dashboard view this job refreshes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// Whose share of the workers this job is (`Lane`): workers take held jobs from
    /// their lanes in turn, and the lane's in-flight count ends with the job. Absent in
    /// jobs of writers before lanes (they share one lane).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
}

/// A tenant's share of the queue and the workers: an opaque, fixed-size digest of the
/// tenant (so no token name travels with a job), or `views` for the refresher's
/// re-renders of watched dashboard views.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Lane(String);

/// Longest lane name a message may carry.
pub const MAX_LANE_LEN: usize = 32;

impl Lane {
    /// The lane of the refresher's view re-renders.
    pub fn views() -> Self {
        Self("views".to_owned())
    }

    /// The lane of a tenant, from its digest (lowercase hex, as `sha256_hex` gives it):
    /// its first 16 digits.
    pub fn of_digest(hex_digest: &str) -> Self {
        Self(hex_digest.chars().take(16).collect())
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        if (1..=MAX_LANE_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "a lane is 1 to {MAX_LANE_LEN} lowercase letters, digits or '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid JSON for this type: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message version {0} (this build reads version {1})")]
    UnknownVersion(u32, u32),
    /// Well-formed, but it breaks the rules (the same the API applies).
    #[error("message is invalid: {0}")]
    Invalid(FieldErrors),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// `JobMessage`'s serialised shape, before validation.
#[derive(Deserialize)]
struct RawJobMessage {
    v: u32,
    id: JobId,
    spec: RawPlotSpec,
    until_ms: i64,
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    lane: Option<String>,
}

fn check_version(errors: &mut Collector, v: u32, known: u32) {
    if v != known {
        errors.err(
            "/v",
            format!("unsupported version {v}; this build reads {known}"),
        );
    }
}

impl JobMessage {
    pub fn new(state: &JobState) -> Self {
        Self {
            v: JOB_MESSAGE_VERSION,
            id: state.id,
            spec: state.spec.clone(),
            until_ms: state.until_ms,
            view: state.view.clone(),
            lane: None,
        }
    }

    /// The same job, in `lane`.
    pub fn in_lane(mut self, lane: Lane) -> Self {
        self.lane = Some(lane);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("JobMessage serialises")
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let probe: VersionProbe = serde_json::from_slice(body)?;
        if probe.v != JOB_MESSAGE_VERSION {
            return Err(DecodeError::UnknownVersion(probe.v, JOB_MESSAGE_VERSION));
        }
        let raw: RawJobMessage = serde_json::from_slice(body)?;
        Self::from_raw(raw).map_err(DecodeError::Invalid)
    }

    fn from_raw(raw: RawJobMessage) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        check_version(&mut errors, raw.v, JOB_MESSAGE_VERSION);
        let spec = PlotSpec::from_raw(raw.spec)
            .map_err(|e| errors.extend_under(e, "/spec"))
            .ok();
        if let Err(p) = check_timestamp(raw.until_ms) {
            errors.err("/until_ms", p);
        }
        check_view_key(&mut errors, "/view", raw.view.as_deref());
        let lane = raw
            .lane
            .as_deref()
            .map(Lane::parse)
            .transpose()
            .map_err(|p| errors.err("/lane", p))
            .ok()
            .flatten();
        errors.finish()?;
        let Some(spec) = spec else {
            return Err(FieldErrors::one("/spec", "invalid plot spec"));
        };
        Ok(Self {
            v: raw.v,
            id: raw.id,
            spec,
            until_ms: raw.until_ms,
            view: raw.view,
            lane,
        })
    }
}

impl<'de> Deserialize<'de> for JobMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJobMessage::deserialize(deserializer)?;
        JobMessage::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A view's refresh was queued.
    #[serde(rename = "plot.queued")]
    PlotQueued,
    /// A worker started a view's render.
    #[serde(rename = "plot.rendering")]
    PlotRendering,
    #[serde(rename = "plot.ready")]
    PlotReady,
    #[serde(rename = "plot.failed")]
    PlotFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PlotQueued => "plot.queued",
            EventKind::PlotRendering => "plot.rendering",
            EventKind::PlotReady => "plot.ready",
            EventKind::PlotFailed => "plot.failed",
        }
    }
}

/// A "plot ready/failed" announcement, fanned out to every notifier replica.
/// Deserialising validates (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotEvent {
    pub v: u32,
    pub event: EventKind,
    pub id: JobId,
    /// The first service (the only one unless the plot compares services).
    pub service: String,
    pub services: Vec<String>,
    pub metric: String,
    pub kind: PlotKind,
    /// `last 10m`, or the absolute range.
    pub range: String,
    pub format: ImageFormat,
    /// `/api/v1/plots/{id}`.
    pub status_url: String,
    /// Where the image is, whatever its format (set on `plot.ready`): `{status_url}/image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// `{status_url}/png`, for PNG plots on `plot.ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub png_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The dashboard view the plot belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// What the plot was drawn from (on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::job::DataSource>,
    /// Where the job's last attempt spent its time (on `plot.ready`; on `plot.failed`
    /// the stages the attempt reached, when a worker recorded them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<StageTimings>,
    /// Each service's numbers in the window, as the job state has them (on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Vec<SeriesStats>>,
    /// Where the time axis is in the image (on `plot.ready` of time-axis kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_axis: Option<TimeAxis>,
    pub at_ms: i64,
}

/// `PlotEvent`'s serialised shape, before validation.
#[derive(Deserialize)]
pub(crate) struct RawPlotEvent {
    v: u32,
    event: EventKind,
    id: JobId,
    service: String,
    services: Vec<String>,
    metric: String,
    kind: PlotKind,
    range: String,
    format: ImageFormat,
    status_url: String,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    png_url: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    source: Option<crate::job::DataSource>,
    #[serde(default)]
    timings: Option<StageTimings>,
    #[serde(default)]
    stats: Option<Vec<SeriesStats>>,
    #[serde(default)]
    time_axis: Option<TimeAxis>,
    at_ms: i64,
}

fn status_url(id: JobId) -> String {
    format!("/api/v1/plots/{id}")
}

impl PlotEvent {
    pub fn for_job(state: &JobState, event: EventKind, now_ms: i64) -> Self {
        let status_url = status_url(state.id);
        Self {
            v: EVENT_VERSION,
            event,
            id: state.id,
            service: state.spec.service().to_string(),
            services: state
                .spec
                .services
                .iter()
                .map(ToString::to_string)
                .collect(),
            metric: state.spec.metric.to_string(),
            kind: state.spec.kind,
            range: state.spec.range.label(),
            format: state.spec.format,
            image_url: (event == EventKind::PlotReady).then(|| format!("{status_url}/image")),
            png_url: (event == EventKind::PlotReady && state.spec.format == ImageFormat::Png)
                .then(|| format!("{status_url}/png")),
            status_url,
            error: state.error.clone(),
            view: state.view.clone(),
            source: (event == EventKind::PlotReady)
                .then_some(state.source)
                .flatten(),
            timings: matches!(event, EventKind::PlotReady | EventKind::PlotFailed)
                .then_some(state.timings)
                .flatten(),
            stats: (event == EventKind::PlotReady)
                .then(|| state.stats.clone())
                .flatten(),
            time_axis: (event == EventKind::PlotReady)
                .then_some(state.time_axis)
                .flatten(),
            at_ms: now_ms,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("PlotEvent serialises")
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let probe: VersionProbe = serde_json::from_slice(body)?;
        if probe.v != EVENT_VERSION {
            return Err(DecodeError::UnknownVersion(probe.v, EVENT_VERSION));
        }
        let raw: RawPlotEvent = serde_json::from_slice(body)?;
        Self::from_raw(raw).map_err(DecodeError::Invalid)
    }

    pub(crate) fn from_raw(raw: RawPlotEvent) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        check_version(&mut errors, raw.v, EVENT_VERSION);
        if !(1..=MAX_SERVICES).contains(&raw.services.len()) {
            errors.err(
                "/services",
                format!("must list 1 to {MAX_SERVICES} services"),
            );
        } else {
            for (i, s) in raw.services.iter().enumerate() {
                if let Err(p) = ServiceName::parse(s) {
                    errors.err(format!("/services/{i}"), p);
                } else if raw.services[..i].contains(s) {
                    errors.err(format!("/services/{i}"), "is listed twice");
                }
            }
            if raw.services.first() != Some(&raw.service) {
                errors.err("/service", "must be the first of services");
            }
        }
        if let Err(p) = MetricName::parse(&raw.metric) {
            errors.err("/metric", p);
        }
        let status = status_url(raw.id);
        if raw.status_url != status {
            errors.err(
                "/status_url",
                "must be /api/v1/plots/{id} of the event's job",
            );
        }
        if raw
            .image_url
            .as_ref()
            .is_some_and(|u| *u != format!("{status}/image"))
        {
            errors.err("/image_url", "must be {status_url}/image");
        }
        if raw
            .png_url
            .as_ref()
            .is_some_and(|u| *u != format!("{status}/png"))
        {
            errors.err("/png_url", "must be {status_url}/png");
        }
        check_view_key(&mut errors, "/view", raw.view.as_deref());
        if let Some(Err(p)) = raw.source.map(|s| s.check()) {
            errors.err("/source", p);
        }
        check_stats(&mut errors, raw.stats.as_deref());
        check_timings(&mut errors, raw.timings.as_ref());
        check_time_axis(&mut errors, raw.time_axis.as_ref());
        if let Err(p) = check_timestamp(raw.at_ms) {
            errors.err("/at_ms", p);
        }
        errors.finish()?;
        Ok(Self {
            v: raw.v,
            event: raw.event,
            id: raw.id,
            service: raw.service,
            services: raw.services,
            metric: raw.metric,
            kind: raw.kind,
            range: raw.range,
            format: raw.format,
            status_url: raw.status_url,
            image_url: raw.image_url,
            png_url: raw.png_url,
            error: raw.error,
            view: raw.view,
            source: raw.source,
            timings: raw.timings,
            stats: raw.stats,
            time_axis: raw.time_axis,
            at_ms: raw.at_ms,
        })
    }
}

impl<'de> Deserialize<'de> for PlotEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPlotEvent::deserialize(deserializer)?;
        PlotEvent::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

/// A stored value with its version first: `{"v": 1, ...fields}`.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// The version of a stored state, where `v` may be missing.
#[derive(Deserialize)]
struct StoredVersionProbe {
    #[serde(default)]
    v: Option<u32>,
}

/// Checks a stored state's `v` against `known`. States written before they carried a
/// version (no `v`) are version 1.
fn check_stored_version(bytes: &[u8], known: u32) -> Result<(), DecodeError> {
    let probe: StoredVersionProbe = serde_json::from_slice(bytes)?;
    let v = probe.v.unwrap_or(1);
    if v != known {
        return Err(DecodeError::UnknownVersion(v, known));
    }
    Ok(())
}

/// Job states are stored as JSON (Redis values, memory cache) with `"v":
/// [`JOB_STATE_VERSION`]; one definition here.
pub fn encode_state(state: &JobState) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: JOB_STATE_VERSION,
        body: state,
    })
    .expect("JobState serialises")
}

/// Reads a stored job state, validating it (see the module docs). A state without `v` is
/// read as version 1: the previous release stored states unversioned, and those live at
/// most an hour (the state TTL), so this allowance can go one release later. Any other
/// version than [`JOB_STATE_VERSION`] is `DecodeError::UnknownVersion`.
pub fn decode_state(bytes: &[u8]) -> Result<JobState, DecodeError> {
    check_stored_version(bytes, JOB_STATE_VERSION)?;
    let raw: crate::job::RawJobState = serde_json::from_slice(bytes)?;
    JobState::from_raw(raw).map_err(DecodeError::Invalid)
}

/// View states are stored as JSON (Redis values, memory registry) with `"v":
/// [`VIEW_STATE_VERSION`]; one definition here.
pub fn encode_view_state(state: &ViewState) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: VIEW_STATE_VERSION,
        body: state,
    })
    .expect("ViewState serialises")
}

/// Reads a stored view state, validating it (see the `view` module docs). As with job
/// states, a missing `v` is version 1 (the previous release's states, which expire within
/// a day); any other version than [`VIEW_STATE_VERSION`] is
/// `DecodeError::UnknownVersion`.
pub fn decode_view_state(bytes: &[u8]) -> Result<ViewState, DecodeError> {
    check_stored_version(bytes, VIEW_STATE_VERSION)?;
    Ok(serde_json::from_slice(bytes)?)
}

/// The position of an event on the bus: a Redis stream id `<ms>-<seq>`. Ordered by `ms`,
/// then `seq`, as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    /// Before every event (`0-0`).
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };
    /// Longest text form: two 20-digit `u64`s and the dash.
    pub const MAX_LEN: usize = 41;

    /// Parses `<ms>-<seq>` strictly: two decimal `u64`s without sign, whitespace or
    /// leading zeros (`0` itself excepted), joined by one `-`; at most
    /// [`EventId::MAX_LEN`] bytes. So `parse(s)` accepts exactly what `Display` writes.
    pub fn parse(raw: &str) -> Option<EventId> {
        if raw.len() > Self::MAX_LEN {
            return None;
        }
        let (ms, seq) = raw.split_once('-')?;
        Some(EventId {
            ms: parse_decimal(ms)?,
            seq: parse_decimal(seq)?,
        })
    }
}

/// A canonical decimal `u64`: digits only, no leading zero unless it is `0`.
fn parse_decimal(raw: &str) -> Option<u64> {
    let canonical = !raw.is_empty()
        && raw.bytes().all(|b| b.is_ascii_digit())
        && (raw == "0" || !raw.starts_with('0'));
    canonical.then(|| raw.parse().ok()).flatten()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl std::str::FromStr for EventId {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        EventId::parse(raw).ok_or_else(|| {
            format!(
                "event id {} must look like <ms>-<seq>, e.g. 1700000000000-0",
                crate::error::excerpt(raw)
            )
        })
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ServiceName;

    #[test]
    fn job_message_round_trips_and_rejects_unknown_versions() {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        let state = JobState::queued(JobId::new_random(), spec, 1000);
        let msg = JobMessage::new(&state);
        assert_eq!(JobMessage::decode(&msg.encode()).unwrap(), msg);
        let mut v: serde_json::Value = serde_json::from_slice(&msg.encode()).unwrap();
        v["v"] = 99.into();
        let err = JobMessage::decode(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::UnknownVersion(99, 1)));
        assert!(JobMessage::decode(b"not json").is_err());
    }

    #[test]
    fn ready_event_names_the_png() {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        let state = JobState::queued(JobId::new_random(), spec, 1000);
        let ev = PlotEvent::for_job(&state, EventKind::PlotReady, 2000);
        let json: serde_json::Value = serde_json::from_slice(&ev.encode()).unwrap();
        assert_eq!(json["event"], "plot.ready");
        assert_eq!(json["png_url"], format!("/api/v1/plots/{}/png", state.id));
        assert_eq!(PlotEvent::decode(&ev.encode()).unwrap(), ev);
    }

    #[test]
    fn ready_and_failed_events_carry_timings_and_ready_ones_stats() {
        let spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1000);
        let timings = StageTimings {
            queue_wait_ms: 4.0,
            query_ms: Some(1.25),
            render_ms: Some(7.5),
            encode_ms: Some(0.5),
            store_ms: Some(0.25),
            total_ms: 9.75,
        };
        let summary = crate::stats::summarize(&[1.0, 2.0]).unwrap();
        state.timings = Some(timings);
        state.stats = Some(vec![SeriesStats::of("a", &summary).with_rates(0.2, 1.5)]);
        let ready = PlotEvent::for_job(&state, EventKind::PlotReady, 2000);
        assert_eq!(ready.timings, Some(timings));
        assert_eq!(ready.stats, state.stats);
        let json: serde_json::Value = serde_json::from_slice(&ready.encode()).unwrap();
        assert_eq!(json["timings"]["total"], 9.75);
        assert_eq!(json["stats"][0]["peak_rate_per_s"], 1.5);
        assert_eq!(PlotEvent::decode(&ready.encode()).unwrap(), ready);
        let failed = PlotEvent::for_job(&state, EventKind::PlotFailed, 2000);
        assert_eq!(
            (failed.timings, failed.stats.as_ref()),
            (Some(timings), None)
        );
        let queued = PlotEvent::for_job(&state, EventKind::PlotQueued, 2000);
        assert_eq!((queued.timings, queued.stats.as_ref()), (None, None));
        // Events written before the members existed decode; bad values are refused.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("timings");
        old.as_object_mut().unwrap().remove("stats");
        assert_eq!(
            PlotEvent::decode(old.to_string().as_bytes())
                .unwrap()
                .timings,
            None
        );
        let mut bad = json.clone();
        bad["timings"]["render"] = f64::MAX.into();
        bad["timings"]["encode"] = (-1.0).into();
        bad["stats"][0]["rate_per_s"] = (-3.0).into();
        let Err(DecodeError::Invalid(errors)) = PlotEvent::decode(bad.to_string().as_bytes())
        else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/stats/0", "/timings/encode"]);
    }

    #[test]
    fn event_ids_parse_strictly_and_order_numerically() {
        let id = EventId::parse("1700000000000-10").unwrap();
        assert_eq!(
            id,
            EventId {
                ms: 1_700_000_000_000,
                seq: 10
            }
        );
        assert_eq!(id.to_string(), "1700000000000-10");
        assert!(id > EventId::parse("1700000000000-9").unwrap());
        assert!(EventId::parse("1700000000001-0").unwrap() > id);
        assert!(EventId::ZERO < id);
        assert_eq!(EventId::parse("0-0"), Some(EventId::ZERO));
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(max.len(), EventId::MAX_LEN);
        assert_eq!(
            EventId::parse(&max),
            Some(EventId {
                ms: u64::MAX,
                seq: u64::MAX
            })
        );
        for bad in [
            "",
            "-",
            "1",
            "1-",
            "-1",
            "+1-0",
            "1-+0",
            "-1-0",
            " 1-0",
            "1-0 ",
            "1 -0",
            "1--0",
            "1-0-0",
            "01-0",
            "1-00",
            "18446744073709551616-0",
            "0-18446744073709551616",
            "1_0-0",
            "\u{ff11}-0",
            "0x1-0",
            "garbage",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(EventId::parse(&format!("{}-0", "1".repeat(100))), None);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"1700000000000-10\"");
        assert_eq!(
            serde_json::from_str::<EventId>("\"1700000000000-10\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<EventId>("\"x\"").is_err());
        assert_eq!("5-6".parse::<EventId>(), Ok(EventId { ms: 5, seq: 6 }));
    }

    #[test]
    fn decoding_names_every_problem_under_its_path() {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        let state = JobState::queued(JobId::new_random(), spec, 1000);
        let mut v: serde_json::Value =
            serde_json::from_slice(&JobMessage::new(&state).encode()).unwrap();
        v["spec"]["services"] = serde_json::json!([]);
        v["spec"]["width"] = 0.into();
        v["until_ms"] = (-1).into();
        let Err(DecodeError::Invalid(errors)) = JobMessage::decode(v.to_string().as_bytes()) else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/spec/services", "/spec/width", "/until_ms"]);
        // The serde path (used by anyone deserialising directly) applies the same rules.
        let err = serde_json::from_value::<JobMessage>(v)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/spec/services: must list 1 to 8 services"),
            "{err}"
        );
    }

    fn view_state(state: &JobState) -> ViewState {
        ViewState {
            job_id: state.id,
            status: crate::JobStatus::Done,
            requested_ms: 1000,
            last_ready: Some(PlotEvent::for_job(state, EventKind::PlotReady, 2000)),
            error: None,
        }
    }

    /// `encode` output as JSON, with `edit` applied, back to bytes.
    fn edited(
        bytes: &[u8],
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        edit(v.as_object_mut().unwrap());
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn stored_states_carry_a_version_and_unknown_ones_are_refused() {
        let spec = PlotSpec::new(PlotKind::Cdf, ServiceName::parse("a").unwrap());
        let state = JobState::queued(JobId::new_random(), spec, 1000);
        let vs = view_state(&state);
        /// Decodes and compares with what was encoded.
        type Check<'a> = &'a dyn Fn(&[u8]) -> Result<(), DecodeError>;
        let cases: [(Vec<u8>, Check); 2] = [
            (encode_state(&state), &|b| {
                decode_state(b).map(|got| assert_eq!(got, state))
            }),
            (encode_view_state(&vs), &|b| {
                decode_view_state(b).map(|got| assert_eq!(got, vs))
            }),
        ];
        for (bytes, decode) in cases {
            // Version 1, written first.
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["v"], 1);
            assert!(
                bytes.starts_with(br#"{"v":1,"#),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            decode(&bytes).unwrap();
            // No `v`: a state of the previous release, read as version 1.
            decode(&edited(&bytes, |m| {
                m.remove("v");
            }))
            .unwrap();
            // A version this build does not know.
            let err = decode(&edited(&bytes, |m| {
                m.insert("v".into(), 2.into());
            }))
            .unwrap_err();
            assert!(matches!(err, DecodeError::UnknownVersion(2, 1)), "{err}");
            // Not a number: malformed, not guessed at.
            let err = decode(&edited(&bytes, |m| {
                m.insert("v".into(), "1".into());
            }))
            .unwrap_err();
            assert!(matches!(err, DecodeError::Malformed(_)), "{err}");
        }
        // The state a client polls is not the stored form: no `v` in it.
        assert!(serde_json::to_value(&state).unwrap().get("v").is_none());
    }

    #[test]
    fn states_and_view_states_round_trip() {
        let spec = PlotSpec::new(PlotKind::Cdf, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1000);
        state.view = Some("a/cdf/10m/light/800x450".into());
        state.render_ms = Some(1.5);
        assert_eq!(decode_state(&encode_state(&state)).unwrap(), state);
        let ready = PlotEvent::for_job(&state, EventKind::PlotReady, 2000);
        let vs = ViewState {
            job_id: state.id,
            status: crate::JobStatus::Done,
            requested_ms: 1000,
            last_ready: Some(ready),
            error: None,
        };
        assert_eq!(decode_view_state(&encode_view_state(&vs)).unwrap(), vs);
        let mut not_ready = vs.clone();
        not_ready.last_ready = Some(PlotEvent::for_job(&state, EventKind::PlotFailed, 2000));
        let err = decode_view_state(&encode_view_state(&not_ready)).unwrap_err();
        assert!(err.to_string().contains("plot.ready"), "{err}");
        state.render_ms = Some(-1.0);
        assert!(decode_state(&encode_state(&state)).is_err());
    }
}
