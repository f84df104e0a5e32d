//! `PortError`, why a port call failed in the terms a caller branches on (`Unavailable`
//! = retry later, `Refused` = the dependency said no, `Full` = a store at its bound),
//! and `PortResult`. A leaf: every port and adapter uses it.

/// The words every refusal of an open breaker carries (adapters that wrap the refusal in
/// their client library's error keep them), by which [`PortError::is_failing_fast`] tells
/// a dependency known down (not called) from a failed call.
pub const FAILING_FAST: &str = "failing fast";

/// Why a port call failed, in the terms a caller branches on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    /// The dependency cannot be reached or timed out; retrying later may succeed.
    #[error("{dependency} is unavailable: {detail}")]
    Unavailable {
        dependency: &'static str,
        detail: String,
    },
    /// The dependency answered but refused the request (full queue, unroutable message).
    #[error("{dependency} refused the request: {detail}")]
    Refused {
        dependency: &'static str,
        detail: String,
    },
    /// A store is at its configured size bound; nothing was written. Space comes back as
    /// retention drops old data (or when the operator raises the bound).
    #[error("{dependency} is full: {detail}")]
    Full {
        dependency: &'static str,
        detail: String,
    },
}

impl PortError {
    pub fn unavailable(dependency: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            dependency,
            detail: detail.to_string(),
        }
    }

    pub fn refused(dependency: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Refused {
            dependency,
            detail: detail.to_string(),
        }
    }

    /// Whether this is a breaker's refusal (the dependency is known down and was not
    /// called), rather than a failed call.
    pub fn is_failing_fast(&self) -> bool {
        matches!(self, Self::Unavailable { detail, .. } if detail.contains(FAILING_FAST))
    }

    pub fn dependency(&self) -> &'static str {
        match self {
            Self::Unavailable { dependency, .. }
            | Self::Refused { dependency, .. }
            | Self::Full { dependency, .. } => dependency,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;
