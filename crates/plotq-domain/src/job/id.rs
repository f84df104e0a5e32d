//! `JobId`, which names a job (and its image and status), and `JobStatus`, where it is
//! in its life.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Identifies one plot job; also the key of its PNG and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A random id (a UUIDv4) for tests and fixtures: jobs are always issued with
    /// [`JobId::issued_at`] (checked by `tidy`), so a missing state can be told lost.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// A new id issued at `now_ms` (a UUIDv7: the time, then random bits), so that a
    /// job whose stored state is missing can be told apart: issued before the cache
    /// lost its data (`410 state_lost`) or never issued (`404`).
    pub fn issued_at(now_ms: i64) -> Self {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let ts =
            uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        Self(Uuid::new_v7(ts))
    }

    /// When the id was issued (epoch ms), for ids made by `issued_at`.
    pub fn issued_ms(self) -> Option<i64> {
        if self.0.get_version_num() != 7 {
            return None;
        }
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        i64::try_from(secs)
            .ok()?
            .checked_mul(1000)?
            .checked_add(i64::from(nanos / 1_000_000))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where a job is in its life. `Done` and `Failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Rendering,
    Done,
    Failed,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }

    /// The word clients see (`queued`, `rendering`, `done`, `failed`): the same as the
    /// serialised form.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Rendering => "rendering",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_carry_their_time_and_random_ones_none() {
        let id = JobId::issued_at(1_700_000_000_123);
        assert_eq!(id.issued_ms(), Some(1_700_000_000_123));
        assert_ne!(
            id,
            JobId::issued_at(1_700_000_000_123),
            "random bits differ"
        );
        assert_eq!(JobId::parse(&id.to_string()), Some(id));
        assert_eq!(JobId::new_random().issued_ms(), None);
    }

    #[test]
    fn status_words_match_the_serialised_form() {
        for status in [
            JobStatus::Queued,
            JobStatus::Rendering,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::from(status.as_str())
            );
        }
    }
}
