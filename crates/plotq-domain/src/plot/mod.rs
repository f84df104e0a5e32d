//! Plot specs: what a client may ask to have drawn, with defaults and bounds.
//!
//! `PlotSpec::parse` turns a client's JSON object into a validated spec, naming every
//! bad field (at most [`MAX_REPORTED_ERRORS`](crate::error::MAX_REPORTED_ERRORS), then a
//! "stopped checking" entry). Deserialising a `PlotSpec` (a queue message, a stored job
//! state) applies the very same rules: both paths read the fields into a `Draft` and
//! one function, `validate`, holds every rule:
//!
//! - `services`: 1 to [`MAX_SERVICES`], distinct, valid names; several only for kinds that
//!   compare ([`PlotKind::compares`]). A client uses `service` for one and `services` for a
//!   comparison (for kinds that do not compare, `services` is refused outright).
//! - `width`, `height`, `bins` within [`WIDTH_RANGE`], [`HEIGHT_RANGE`], [`BINS_RANGE`].
//! - `scale`: device pixels per layout pixel, within [`SCALE_RANGE`]: a `width`×`height`
//!   image drawn with `scale` 3 is laid out as a (`width`/3)×(`height`/3) one (type,
//!   lines, tick budgets) with three times the pixels, for screens with that
//!   `devicePixelRatio`; the layout size must be at least [`MIN_LAYOUT`].
//! - `title`: at most [`MAX_TITLE_CHARS`] characters, no control characters.
//! - `log_x` only for histogram and cdf; `show_max` only for latency_timeseries.
//! - `thresholds`: at most [`MAX_THRESHOLDS`], each a finite value with a label
//!   ([`Threshold`]).
//! - `stat`, `x_metric`, `x_stat`, `x_service` and `bucket` only for correlation (which
//!   defaults them: p95 against the rate of the same metric, by the minute); `bucket` a
//!   duration from 10s to 1d cutting the range into
//!   [`MIN_POINTS`] to [`MAX_POINTS`] buckets; x not the very series and
//!   statistic y is.
//! - the range: a [`Window`] (10s to 90d), or absolute `from`/`until` timestamps within
//!   [`MIN_TIMESTAMP_MS`](crate::timestamp::MIN_TIMESTAMP_MS)`..=`
//!   [`MAX_TIMESTAMP_MS`](crate::timestamp::MAX_TIMESTAMP_MS) spanning 10s to 90d (checked
//!   subtraction; `until` defaults to now). Data windows are inclusive: `[from, until]`.
//!
//! Everything downstream (queue message, renderer, cache key) takes the parsed spec and
//! never re-validates; a spec built in code with `PlotSpec::new` and edited fields can be
//! checked with [`PlotSpec::validate`].
//!
//! Files: `kind.rs` (the kinds, themes and image formats), `range.rs` (`TimeRange`),
//! `spec.rs` (`PlotSpec`, its bounds and defaults, and its title), `rules.rs` (reading a
//! client's JSON or a serialised spec into a `Draft`, and `validate`, every rule),
//! `view.rs` (`View`: a plot named by a dashboard's key), `stat.rs` (`Stat`, a
//! correlation's statistic of a time bucket), `threshold.rs` (`Threshold`).

mod kind;
mod range;
mod rules;
mod spec;
mod stat;
mod threshold;
pub(crate) mod view;

pub use kind::{DEFAULT_METRIC, DEFAULT_STATUS_METRIC, ImageFormat, PlotKind, Theme};
pub use range::TimeRange;
pub(crate) use spec::RawPlotSpec;
pub use spec::{
    BINS_RANGE, Correlation, DEFAULT_BINS, DEFAULT_BUCKET_SECS, DEFAULT_HEIGHT, DEFAULT_STAT,
    DEFAULT_WIDTH, DEFAULT_X_STAT, HEIGHT_RANGE, MAX_SERVICES, MAX_TITLE_CHARS, MIN_LAYOUT,
    PlotSpec, SCALE_RANGE, WIDTH_RANGE,
};
pub use stat::{MAX_POINTS, MIN_POINTS, Stat};
pub use threshold::{
    DEFAULT_THRESHOLD_LABEL, MAX_THRESHOLD_LABEL_CHARS, MAX_THRESHOLDS, Threshold,
};
