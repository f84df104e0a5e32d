//! `StageTimings`, where one attempt at a job spent its time, and `round_ms`, the one
//! rounding of milliseconds that states, events and logs carry.

use crate::error::Collector;
use serde::{Deserialize, Serialize};

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

/// Checks a state's or event's `timings` into `errors` under `/timings`.
pub(crate) fn check_timings(errors: &mut Collector, timings: Option<&StageTimings>) {
    if let Some(Err((stage, problem))) = timings.map(StageTimings::check) {
        errors.err(format!("/timings/{stage}"), problem);
    }
}
