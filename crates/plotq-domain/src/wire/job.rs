//! `JobMessage`, a plot job on the work queue, and its `Lane`: whose share of the queue
//! and the workers it is.

use super::codec::{DecodeError, check_version, decode_message};
use crate::error::{Collector, FieldErrors};
use crate::job::{JobId, JobState};
use crate::plot::view::check_view_key;
use crate::plot::{PlotSpec, RawPlotSpec};
use crate::timestamp::check_timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// Current version of `JobMessage`.
pub const JOB_MESSAGE_VERSION: u32 = 1;

/// A plot job on the work queue. Deserialising validates (see the `wire` module docs).
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
        decode_message(body, JOB_MESSAGE_VERSION, Self::from_raw)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::ServiceName;
    use crate::plot::PlotKind;

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
}
