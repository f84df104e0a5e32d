//! Plot jobs: their ids, their lifecycle states, and the record clients poll.

use crate::plot::PlotSpec;
use serde::{Deserialize, Serialize};
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
}

/// What clients see of a job (`GET /api/v1/plots/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub id: JobId,
    pub status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    pub spec: PlotSpec,
    /// The end of the data window (epoch ms): the window is `[until - window, until)`.
    pub until_ms: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Set when done: how many samples the plot drew.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n_samples: Option<u64>,
    /// Set when done: how long the render took (milliseconds, wall clock, in the worker).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub render_ms: Option<f64>,
    /// The dashboard view this job refreshes, if a view asked for it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub view: Option<String>,
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
        }
    }

    /// `[from, until)` of the data this job draws.
    pub fn data_range(&self) -> (i64, i64) {
        self.spec.range.resolve(self.until_ms)
    }
}
