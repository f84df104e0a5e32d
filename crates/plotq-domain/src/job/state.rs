//! `JobState`, what clients see of a job (`GET /api/v1/plots/{id}`), and its
//! validation when it is deserialised (see the `job` module docs for the rules).

use super::id::{JobId, JobStatus};
use super::report::{DataSource, SeriesStats, TimeAxis, check_stats, check_time_axis};
use super::timings::{StageTimings, check_timings};
use crate::annotation::Annotation;
use crate::error::{Collector, FieldErrors};
use crate::plot::view::check_view_key;
use crate::plot::{PlotSpec, RawPlotSpec};
use crate::timestamp::check_timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// What clients see of a job (`GET /api/v1/plots/{id}`). Deserialising validates (see
/// the `job` module docs).
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
    /// Set when done: the size of the image's smallest text, image pixels (a client
    /// showing the image `w` CSS pixels wide sees it `text_px · w / width` CSS pixels
    /// tall).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_px: Option<u32>,
    /// Set when done, for plots with a time axis: the annotations drawn on it (the
    /// latest `annotation::MAX_DRAWN` of its services in its window, in time order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
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
            text_px: None,
            annotations: Vec::new(),
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
        check_text_px(&mut errors, raw.text_px);
        check_annotations(&mut errors, &raw.annotations);
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
            text_px: raw.text_px,
            annotations: raw.annotations,
        })
    }
}

/// Checks a state's annotations: at most `MAX_DRAWN`, each as the API checks it.
fn check_annotations(errors: &mut Collector, annotations: &[Annotation]) {
    if annotations.len() > crate::annotation::MAX_DRAWN {
        errors.err(
            "/annotations",
            format!("at most {} annotations", crate::annotation::MAX_DRAWN),
        );
    }
    for (i, a) in annotations.iter().enumerate() {
        if let Err(problem) = a.validate() {
            errors.err(format!("/annotations/{i}"), problem);
        }
    }
}

/// Checks a state's or event's `text_px`: a type size an image of the plot bounds has.
pub(crate) fn check_text_px(errors: &mut Collector, text_px: Option<u32>) {
    if text_px.is_some_and(|px| !(1..=crate::plot::HEIGHT_RANGE.1).contains(&px)) {
        errors.err(
            "/text_px",
            "must be a pixel size from 1 to the image height bound",
        );
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
    #[serde(default)]
    text_px: Option<u32>,
    #[serde(default)]
    annotations: Vec<Annotation>,
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawJobState::deserialize(deserializer)?;
        JobState::from_raw(raw).map_err(serde::de::Error::custom)
    }
}
