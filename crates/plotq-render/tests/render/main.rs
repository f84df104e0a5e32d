//! The renderer's tests, one binary: every kind renders the image asked for, or fails
//! precisely (`images`); golden images pin the look (`golden`); measured in the pixels,
//! text, time axes and partial buckets are right (`pixels`); extreme but finite data
//! renders, with bounded work and readable labels (`extremes`); property tests over any
//! finite data and the axis and statistics functions (`properties`). `helpers` holds
//! what they share.
//!
//! `PLOTQ_DUMP_DIR=dir` keeps every rendered image for a look.

mod extremes;
mod golden;
mod helpers;
mod images;
mod pixels;
mod properties;
