//! plotq's pure core: the vocabulary every other crate speaks.
//!
//! Owns metric samples and their parsing, service/metric names, plot specs and their
//! validation, job ids and states, exact statistics and binning, and the versioned wire
//! formats that cross process boundaries. It does no I/O and knows no async runtime:
//! nothing here can fail because of the outside world, and its tests need nothing running.
//!
//! Rules that hold across the crate: every parser reports at most
//! [`error::MAX_REPORTED_ERRORS`] problems (then says it stopped); every timestamp parsed
//! or decoded lies in [`timestamp::MIN_TIMESTAMP_MS`]`..=`[`timestamp::MAX_TIMESTAMP_MS`]
//! (1970 to the end of year 9999); and everything that crosses a process boundary
//! ([`wire`]) is validated on decode by the same rules the HTTP API applies.

pub mod annotation;
pub mod chunk;
pub mod correlation;
pub mod error;
pub mod job;
pub mod labels;
pub mod names;
pub mod plot;
pub mod rollup;
pub mod sample;
pub mod series;
pub mod stats;
pub mod timestamp;
pub mod view;
pub mod window;
pub mod wire;

pub use annotation::Annotation;
pub use error::{FieldError, FieldErrors};
pub use job::{DataSource, JobId, JobState, JobStatus, SeriesStats, StageTimings, TimeAxis};
pub use labels::{LabelName, Labels};
pub use names::{MetricName, ServiceName};
pub use plot::{ImageFormat, PlotKind, PlotSpec, Theme, TimeRange};
pub use sample::Sample;
pub use view::{View, ViewState};
pub use window::Window;
pub use wire::EventId;
