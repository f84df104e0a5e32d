//! Plot jobs: their ids, their lifecycle states, and the record clients poll.
//!
//! A `JobState` is validated when it is deserialised (it is stored as JSON and read back
//! by other processes): its spec by the same rules as `PlotSpec::parse`, its timestamps
//! (`until_ms`, `created_at_ms`, `updated_at_ms`) within the timestamp range, `render_ms`
//! and every stage of `timings` finite and not negative, `view` a valid view key, and
//! `stats` within their bounds (`SeriesStats`). Its data window is
//! `[until - window, until]` (inclusive), which cannot overflow for a valid state.
//!
//! Fields added after the first release (`attempts`, `source`, `documents_read`,
//! `stats`, `timings`, and the per-kind members of `SeriesStats`) are optional: states
//! written before they existed decode as they are.
//!
//! Files: `id.rs` (`JobId`, `JobStatus`), `state.rs` (`JobState` and its validation),
//! `report.rs` (what a finished job reports beside its image: `SeriesStats`,
//! `DataSource`, `TimeAxis`), `timings.rs` (`StageTimings`, `round_ms`). The stored form
//! of a state (versioned) is `wire::encode_state`/`wire::decode_state`.

mod id;
mod report;
mod state;
mod timings;

pub use id::{JobId, JobStatus};
pub use report::{DataSource, SeriesStats, TimeAxis, thousands};
pub(crate) use report::{check_stats, check_time_axis};
pub use state::JobState;
pub(crate) use state::{RawJobState, check_text_px};
pub(crate) use timings::check_timings;
pub use timings::{StageTimings, round_ms};
