//! Names of the AMQP message headers plotq sets (and reads back) on queued jobs. Their
//! values are numbers or text; the job itself is always the body (`JobMessage`).

/// Retries already made (an unsigned integer): set on a job scheduled for retry
/// (`1` for the first retry) and on a dead letter (every attempt made).
pub const ATTEMPT: &str = "x-plotq-attempt";
/// Why a job was dead-lettered (text).
pub const REASON: &str = "x-plotq-reason";
/// When a job was dead-lettered, epoch milliseconds (an integer).
pub const DEAD_AT: &str = "x-plotq-dead-at";
/// Set by the broker itself on messages it dead-lettered (e.g. `delivery_limit`).
pub const BROKER_DEATH_REASON: &str = "x-first-death-reason";
