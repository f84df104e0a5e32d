//! The domain crate's one test binary: every parser and decoder against whatever input
//! (`properties`, proptest), and the security review's regressions (`security_review`).
//! `helpers` builds the jobs both start from.

mod helpers;
mod properties;
mod security_review;
