//! plotq's pure core: the vocabulary every other crate speaks.
//!
//! Owns metric samples and their parsing, service/metric names, plot specs and their
//! validation, job ids and states, exact statistics and binning, and the versioned wire
//! formats that cross process boundaries. It does no I/O and knows no async runtime:
//! nothing here can fail because of the outside world, and its tests need nothing running.

pub mod error;
pub mod job;
pub mod names;
pub mod plot;
pub mod sample;
pub mod stats;
pub mod view;
pub mod window;
pub mod wire;

pub use error::{FieldError, FieldErrors};
pub use job::{JobId, JobState, JobStatus};
pub use names::{MetricName, ServiceName};
pub use plot::{ImageFormat, PlotKind, PlotSpec, Theme, TimeRange};
pub use sample::Sample;
pub use view::{View, ViewState};
pub use window::Window;
