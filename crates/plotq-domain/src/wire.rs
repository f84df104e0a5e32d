//! Wire formats: the only definition of what crosses a process boundary.
//!
//! Queue messages (`JobMessage`) and events (`PlotEvent`) are JSON objects carrying a
//! `v` version field. A reader rejects versions it does not know instead of guessing.

use crate::job::{JobId, JobState};
use crate::plot::{ImageFormat, PlotKind, PlotSpec};
use serde::{Deserialize, Serialize};

/// Current version of `JobMessage`.
pub const JOB_MESSAGE_VERSION: u32 = 1;
/// Current version of `PlotEvent`.
pub const EVENT_VERSION: u32 = 1;

/// A plot job on the work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub v: u32,
    pub id: JobId,
    pub spec: PlotSpec,
    /// End of the data window, epoch ms; fixed at request time so a re-run draws the same data.
    pub until_ms: i64,
    /// The dashboard view this job refreshes, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub view: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid JSON for this type: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message version {0} (this build reads version {1})")]
    UnknownVersion(u32, u32),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

impl JobMessage {
    pub fn new(state: &JobState) -> Self {
        Self {
            v: JOB_MESSAGE_VERSION,
            id: state.id,
            spec: state.spec.clone(),
            until_ms: state.until_ms,
            view: state.view.clone(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("JobMessage serialises")
    }

    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let probe: VersionProbe = serde_json::from_slice(body)?;
        if probe.v != JOB_MESSAGE_VERSION {
            return Err(DecodeError::UnknownVersion(probe.v, JOB_MESSAGE_VERSION));
        }
        Ok(serde_json::from_slice(body)?)
    }
}

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub status_url: String,
    /// Where the image is, whatever its format (set on `plot.ready`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub png_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The dashboard view the plot belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub view: Option<String>,
    pub at_ms: i64,
}

impl PlotEvent {
    pub fn for_job(state: &JobState, event: EventKind, now_ms: i64) -> Self {
        let status_url = format!("/api/v1/plots/{}", state.id);
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
        Ok(serde_json::from_slice(body)?)
    }
}

/// Job states are stored as JSON (Redis values, memory cache); one definition here.
pub fn encode_state(state: &JobState) -> Vec<u8> {
    serde_json::to_vec(state).expect("JobState serialises")
}

pub fn decode_state(bytes: &[u8]) -> Result<JobState, DecodeError> {
    Ok(serde_json::from_slice(bytes)?)
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
}
