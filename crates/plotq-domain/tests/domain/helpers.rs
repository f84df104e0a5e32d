//! What the domain tests share: one way to make a job's queued state, and its queue
//! message as JSON to edit before decoding.

use plotq_domain::wire::JobMessage;
use plotq_domain::{JobId, JobState, PlotSpec};
use serde_json::Value;

/// A new job of `spec` drawing the window that ends at `until_ms`, queued.
pub fn queued(spec: PlotSpec, until_ms: i64) -> JobState {
    JobState::queued(JobId::new_random(), spec, until_ms)
}

/// `state`'s queue message, encoded and read back as JSON.
pub fn message_json(state: &JobState) -> Value {
    serde_json::from_slice(&JobMessage::new(state).encode()).unwrap()
}
