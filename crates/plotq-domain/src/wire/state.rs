//! The stored states: a job's (`encode_state`/`decode_state`) and a dashboard view's
//! (`ViewState`, `encode_view_state`/`decode_view_state`), kept as JSON in Redis and the
//! memory adapters with their version `v` first.
//!
//! `ViewState` (stored by notifiers, shared between replicas) is validated when it is
//! deserialised: `requested_ms` within the timestamp range and `last_ready` a valid
//! `plot.ready` event.

use super::codec::{DecodeError, Versioned, check_stored_version};
use super::event::{EventKind, PlotEvent, RawPlotEvent};
use crate::error::{Collector, FieldErrors};
use crate::job::{JobId, JobState, JobStatus, RawJobState};
use crate::timestamp::check_timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// Current version of a stored `JobState` (`encode_state`).
pub const JOB_STATE_VERSION: u32 = 1;
/// Current version of a stored `ViewState` (`encode_view_state`).
pub const VIEW_STATE_VERSION: u32 = 1;

/// Job states are stored as JSON (Redis values, memory cache) with `"v":
/// [`JOB_STATE_VERSION`]; one definition here.
pub fn encode_state(state: &JobState) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: JOB_STATE_VERSION,
        body: state,
    })
    .expect("JobState serialises")
}

/// Reads a stored job state, validating it (the rules are in the `job` module docs). A
/// state without `v` is read as version 1: the previous release stored states
/// unversioned, and those live at most an hour (the state TTL), so this allowance can go
/// one release later. Any other version than [`JOB_STATE_VERSION`] is
/// `DecodeError::UnknownVersion`.
pub fn decode_state(bytes: &[u8]) -> Result<JobState, DecodeError> {
    check_stored_version(bytes, JOB_STATE_VERSION)?;
    let raw: RawJobState = serde_json::from_slice(bytes)?;
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

/// Reads a stored view state, validating it (see the module docs). As with job
/// states, a missing `v` is version 1 (the previous release's states, which expire within
/// a day); any other version than [`VIEW_STATE_VERSION`] is
/// `DecodeError::UnknownVersion`.
pub fn decode_view_state(bytes: &[u8]) -> Result<ViewState, DecodeError> {
    check_stored_version(bytes, VIEW_STATE_VERSION)?;
    Ok(serde_json::from_slice(bytes)?)
}

/// What is known of a view's latest render (shared by all notifier replicas).
/// Deserialising validates (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewState {
    /// The most recent job requested for the view.
    pub job_id: JobId,
    pub status: JobStatus,
    /// When that job was requested (its data window ends here), epoch ms.
    pub requested_ms: i64,
    /// The last `plot.ready` of the view, so a new subscriber sees an image at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ready: Option<PlotEvent>,
    /// The last failure's reason, while the latest job is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `ViewState`'s serialised shape, before validation.
#[derive(Deserialize)]
struct RawViewState {
    job_id: JobId,
    status: JobStatus,
    requested_ms: i64,
    #[serde(default)]
    last_ready: Option<RawPlotEvent>,
    #[serde(default)]
    error: Option<String>,
}

impl ViewState {
    fn from_raw(raw: RawViewState) -> Result<Self, FieldErrors> {
        let mut errors = Collector::new();
        if let Err(p) = check_timestamp(raw.requested_ms) {
            errors.err("/requested_ms", p);
        }
        let last_ready = match raw.last_ready {
            None => None,
            Some(ev) => match PlotEvent::from_raw(ev) {
                Ok(ev) if ev.event == EventKind::PlotReady => Some(ev),
                Ok(_) => {
                    errors.err("/last_ready/event", "must be plot.ready");
                    None
                }
                Err(e) => {
                    errors.extend_under(e, "/last_ready");
                    None
                }
            },
        };
        errors.finish()?;
        Ok(Self {
            job_id: raw.job_id,
            status: raw.status,
            requested_ms: raw.requested_ms,
            last_ready,
            error: raw.error,
        })
    }
}

impl<'de> Deserialize<'de> for ViewState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawViewState::deserialize(deserializer)?;
        ViewState::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{SeriesStats, StageTimings};
    use crate::names::ServiceName;
    use crate::plot::{PlotKind, PlotSpec, TimeRange};
    use crate::timestamp::{MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};
    use crate::window::Window;

    fn view_state(state: &JobState) -> ViewState {
        ViewState {
            job_id: state.id,
            status: JobStatus::Done,
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
            status: JobStatus::Done,
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

    #[test]
    fn view_states_are_validated_when_read() {
        let id = JobId::new_random();
        let ok = serde_json::json!({"job_id": id, "status": "queued", "requested_ms": 5});
        assert!(serde_json::from_value::<ViewState>(ok).is_ok());
        let bad = serde_json::json!({"job_id": id, "status": "queued", "requested_ms": -5});
        let err = serde_json::from_value::<ViewState>(bad).unwrap_err();
        assert!(err.to_string().contains("/requested_ms"), "{err}");
    }

    // ---- job states, validated through their stored form ----

    #[test]
    fn data_ranges_of_valid_states_cannot_overflow() {
        let mut spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        spec.range = TimeRange::Last(Window::parse("7d").unwrap());
        for until in [MIN_TIMESTAMP_MS, MAX_TIMESTAMP_MS] {
            let state = JobState::queued(JobId::new_random(), spec.clone(), until);
            let back = decode_state(&encode_state(&state)).unwrap();
            let (from, to) = back.data_range();
            assert_eq!((to - from, to), (604_800_000, until));
        }
        // Out-of-range states are refused on decode; built in code, they saturate.
        let wild = JobState::queued(JobId::new_random(), spec, i64::MIN);
        assert!(decode_state(&encode_state(&wild)).is_err());
        assert_eq!(wild.data_range(), (i64::MIN, i64::MIN));
    }

    #[test]
    fn attempts_round_trip_and_default_to_zero_when_absent() {
        let spec = PlotSpec::new(PlotKind::Throughput, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(JobId::new_random(), spec, 1_700_000_000_000);
        // Queued: 0, not serialised, so a previous release's state looks the same.
        let queued = encode_state(&state);
        assert!(!String::from_utf8_lossy(&queued).contains("attempts"));
        assert_eq!(decode_state(&queued).unwrap().attempts, 0);
        state.attempts = 3;
        let back = decode_state(&encode_state(&state)).unwrap();
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
    ) -> Result<JobState, DecodeError> {
        let mut v: serde_json::Value = serde_json::from_slice(&encode_state(state)).unwrap();
        edit(&mut v);
        decode_state(v.to_string().as_bytes())
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
        let back = decode_state(&encode_state(&state)).unwrap();
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
        let back = decode_state(&encode_state(&failed)).unwrap();
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
            let Err(DecodeError::Invalid(errors)) = decode_edited(&state, edit) else {
                panic!("{field}: accepted");
            };
            assert_eq!(errors.0[0].field, field);
        }
        // Not a number at all: malformed.
        assert!(decode_edited(&state, |v| v["timings"]["total"] = "x".into()).is_err());
    }
}
