//! The worker's metrics (see the crate docs), written through the `metrics` facade:
//! label values come from small fixed sets only.

use plotq_domain::StageTimings;

/// Describes the metrics to the installed recorder (once per worker start).
pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "plotq_jobs_total",
        "Plot jobs ended or retried by workers, by plot kind and outcome (done, failed, retried, dead_lettered)"
    );
    describe_histogram!(
        "plotq_job_stage_seconds",
        Unit::Seconds,
        "Where done jobs spent their time, by stage (queue_wait, query, render, encode, store, total)"
    );
    describe_counter!("plotq_job_retries_total", "Job retries scheduled");
    describe_counter!(
        "plotq_job_dead_letters_total",
        "Jobs moved to the dead-letter queue, by reason"
    );
    describe_gauge!(
        "plotq_worker_jobs_held",
        "Jobs held while a dependency they need is down"
    );
    describe_counter!(
        "plotq_store_documents_read_total",
        "Stored documents (raw chunks and rollups) read for jobs"
    );
}

/// One job ended (or was scheduled for retry) with `outcome`.
pub(crate) fn job(kind: &'static str, outcome: &'static str) {
    metrics::counter!("plotq_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
}

pub(crate) fn retry() {
    metrics::counter!("plotq_job_retries_total").increment(1);
}

/// `reason`: `poison`, `exhausted`, `dependency_unavailable`, `unrecordable`,
/// `settle_panicked`.
pub(crate) fn dead_letter(reason: &'static str) {
    metrics::counter!("plotq_job_dead_letters_total", "reason" => reason).increment(1);
}

pub(crate) fn documents_read(n: u64) {
    metrics::counter!("plotq_store_documents_read_total").increment(n);
}

/// The stages of a done job, in seconds.
pub(crate) fn stages(timings: &StageTimings) {
    for (stage, ms) in timings.stages() {
        metrics::histogram!("plotq_job_stage_seconds", "stage" => stage).record(ms / 1000.0);
    }
}

/// Counts one held job for as long as it lives.
pub(crate) struct Held;

impl Held {
    pub(crate) fn start() -> Self {
        metrics::gauge!("plotq_worker_jobs_held").increment(1.0);
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics::gauge!("plotq_worker_jobs_held").decrement(1.0);
    }
}
