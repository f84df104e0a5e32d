//! Where a job's time goes: `Stopwatch`, the stage timings of one attempt as it runs
//! (queue wait, query, render, encode, store, total), and the millisecond helpers the
//! renderer's timing shares. Measuring only; recording them is `telemetry`'s.

use plotq_domain::StageTimings;
use plotq_domain::job::round_ms;
use plotq_ports::clock::now_ms;
use std::time::Instant;

/// Milliseconds from `from` to `to`.
pub(crate) fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Milliseconds since `from`.
pub(crate) fn ms_since(from: Instant) -> f64 {
    ms_between(from, Instant::now())
}

/// The timings of one attempt as it goes: started when the attempt starts, `timings` set
/// once the job's creation time is known (its queue wait), each stage filled in as it
/// ends.
pub(crate) struct Stopwatch {
    started: Instant,
    started_ms: i64,
    timings: Option<StageTimings>,
}

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Self {
            started: Instant::now(),
            started_ms: now_ms(),
            timings: None,
        }
    }

    /// The job was created at `created_at_ms` (clocks of other processes may run ahead:
    /// never negative).
    pub(crate) fn created_at(&mut self, created_at_ms: i64) {
        let wait = self.started_ms.saturating_sub(created_at_ms).max(0) as f64;
        self.timings = Some(StageTimings {
            queue_wait_ms: wait,
            ..StageTimings::default()
        });
    }

    pub(crate) fn stage(&mut self, set: impl FnOnce(&mut StageTimings)) {
        if let Some(t) = &mut self.timings {
            set(t);
        }
    }

    /// The timings so far, rounded, with `total` from the attempt's start to now; the
    /// total is never less than the sum of the rounded stages it contains.
    pub(crate) fn snapshot(&self) -> Option<StageTimings> {
        let mut t = self.timings?;
        t.total_ms = ms_since(self.started);
        let t = t.rounded();
        let parts: f64 = [t.query_ms, t.render_ms, t.encode_ms, t.store_ms]
            .iter()
            .flatten()
            .sum();
        Some(StageTimings {
            total_ms: t.total_ms.max(round_ms(parts)),
            ..t
        })
    }
}
