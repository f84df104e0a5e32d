//! What every wire shape shares: `DecodeError`, and the version checks — a message's
//! `v` (required, checked before anything else is read), a stored value's `v` (absent in
//! values written before they carried one: version 1), and the `{"v": …, ...}` layout of
//! a stored value.

use crate::error::{Collector, FieldErrors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message is not valid JSON for this type: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported message version {0} (this build reads version {1})")]
    UnknownVersion(u32, u32),
    /// Well-formed, but it breaks the rules (the same the API applies).
    #[error("message is invalid: {0}")]
    Invalid(FieldErrors),
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

/// Decodes a message whose `v` is required: a version other than `known` is
/// `UnknownVersion` (whatever else the message holds), then the shape `R` is read and
/// `validate`d into `T` (`Invalid` naming every problem).
pub(super) fn decode_message<R: DeserializeOwned, T>(
    bytes: &[u8],
    known: u32,
    validate: impl FnOnce(R) -> Result<T, FieldErrors>,
) -> Result<T, DecodeError> {
    let probe: VersionProbe = serde_json::from_slice(bytes)?;
    if probe.v != known {
        return Err(DecodeError::UnknownVersion(probe.v, known));
    }
    let raw: R = serde_json::from_slice(bytes)?;
    validate(raw).map_err(DecodeError::Invalid)
}

/// Reports a validated shape's `v` under `/v` unless it is `known` (the serde path, which
/// has no version probe first).
pub(super) fn check_version(errors: &mut Collector, v: u32, known: u32) {
    if v != known {
        errors.err(
            "/v",
            format!("unsupported version {v}; this build reads {known}"),
        );
    }
}

/// A stored value with its version first: `{"v": 1, ...fields}`.
#[derive(Serialize)]
pub(super) struct Versioned<'a, T: Serialize> {
    pub(super) v: u32,
    #[serde(flatten)]
    pub(super) body: &'a T,
}

/// The version of a stored state, where `v` may be missing.
#[derive(Deserialize)]
struct StoredVersionProbe {
    #[serde(default)]
    v: Option<u32>,
}

/// Checks a stored state's `v` against `known`. States written before they carried a
/// version (no `v`) are version 1.
pub(super) fn check_stored_version(bytes: &[u8], known: u32) -> Result<(), DecodeError> {
    let probe: StoredVersionProbe = serde_json::from_slice(bytes)?;
    let v = probe.v.unwrap_or(1);
    if v != known {
        return Err(DecodeError::UnknownVersion(v, known));
    }
    Ok(())
}
