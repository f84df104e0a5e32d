//! The `PlotCache` port: job states and rendered images with a time to live,
//! single-flight request claims, idempotency keys (`IdempotentStart`, stored as
//! `wire::IdempotencyRecord`s) and each lane's jobs in flight. Implemented by
//! `plotq-redis` and `memory::MemoryCache`.

use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::wire::IdempotencyRecord;
use plotq_domain::{JobId, JobState, JobStatus};
use std::time::Duration;

/// Job states and rendered images, each with a time to live.
#[async_trait]
pub trait PlotCache: Send + Sync + 'static {
    /// Since when this cache holds what was written to it (epoch ms): a cache that lost
    /// its data (a Redis that restarted empty) answers the time it was first asked
    /// after the loss (its health probe asks, so that is the first probe after it). A
    /// job issued before that whose state is missing lost its state (`410 state_lost`)
    /// rather than never existing. Caches that cannot lose their data without the
    /// process losing its ids too answer `i64::MIN`.
    async fn data_since(&self, _now_ms: i64) -> PortResult<i64> {
        Ok(i64::MIN)
    }
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()>;
    /// Writes `state` only if the job has none yet (a worker may have written a newer
    /// one first); whether it was written.
    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool>;
    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>>;
    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()>;
    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>>;
    /// A job's state and, when it is done, its image: one round trip where the cache
    /// can (Redis: one `MGET` of the two keys, which share a slot on a cluster).
    async fn get_state_and_image(
        &self,
        id: JobId,
    ) -> PortResult<(Option<JobState>, Option<Vec<u8>>)> {
        let state = self.get_state(id).await?;
        let image = match &state {
            Some(s) if s.status == JobStatus::Done => self.get_image(id).await?,
            _ => None,
        };
        Ok((state, image))
    }
    /// Single flight: claims request `claim.key` for job `claim.job` for `claim.ttl`, or
    /// returns the job that already holds it.
    async fn claim_request(&self, claim: &RequestClaim<'_>) -> PortResult<Option<JobId>>;
    /// Points request `claim.key` at job `claim.job` (its previous job failed or expired).
    async fn replace_request(&self, claim: &RequestClaim<'_>) -> PortResult<()>;
    /// Undoes `claim_request`/`replace_request`: removes the claim on `key` only if job
    /// `id` still holds it (atomically; a claim taken over by another job stays).
    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()>;
    /// Forgets job `id`'s state (e.g. a `queued` state whose job was never published).
    async fn delete_state(&self, id: JobId) -> PortResult<()>;
    /// Starts the idempotent ingest `ingest`: `Fresh` (its key is now held as in
    /// progress, for `ingest.pending`), or what the key already holds.
    async fn begin_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<IdempotentStart>;
    /// Records that `ingest` stored `accepted` samples; kept for `ingest.kept`.
    async fn finish_idempotent(&self, ingest: &Idempotency<'_>, accepted: u64) -> PortResult<()>;
    /// Forgets `ingest` while in progress (it failed; a retry may run), and nothing else
    /// (not another body's record under the same key, not a finished one).
    async fn abandon_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<()>;
    /// Counts `slot.id` as in flight in `slot.lane` (a tenant's share of the queue) until
    /// `end_job` or for `slot.lease` at most, if the lane holds fewer than `slot.cap`
    /// unexpired jobs (atomically: every api replica shares the count); whether it was
    /// counted. A job counted already is counted once.
    async fn begin_job(&self, slot: &LaneSlot<'_>) -> PortResult<bool>;
    /// Job `id` of `lane` ended (done, failed, dead-lettered, or never queued).
    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()>;
    async fn ping(&self) -> PortResult<()>;
}

/// A single-flight claim: request `key` (a plot request's identity) held by job `job` for
/// `ttl`.
#[derive(Debug, Clone, Copy)]
pub struct RequestClaim<'a> {
    pub key: &'a str,
    pub job: JobId,
    pub ttl: Duration,
}

/// An idempotent ingest, as the cache keeps it: the caller's scoped key, the fingerprint
/// of the body sent under it, and how long its record lives while the ingest runs
/// (`pending`: a crashed api's key lapses) and once it is done (`kept`: retries within it
/// are answered as before).
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub pending: Duration,
    pub kept: Duration,
}

/// A job asking for a place in its lane's share of the queue (`PlotCache::begin_job`):
/// the lane, the job, the most jobs the lane may have in flight, how long the place is
/// held if the job's end is never seen, and the time now (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneSlot<'a> {
    pub lane: &'a str,
    pub id: JobId,
    pub cap: usize,
    pub lease: Duration,
    pub now_ms: i64,
}

/// What an idempotency key holds when an ingest starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotentStart {
    /// Nobody used the key: go on (it is now held as in progress).
    Fresh,
    /// The same body was stored: answer as before, with this many samples accepted.
    Done(u64),
    /// The same body is being stored by another request.
    Pending,
    /// The key was used for another body.
    Conflict,
}

impl IdempotentStart {
    /// What a store keeps for a key whose ingest is in progress (the stored form of
    /// `IdempotencyRecord::Pending`; see `wire::IdempotencyRecord`).
    pub fn encode_pending(fingerprint: &str) -> String {
        IdempotencyRecord::Pending {
            fingerprint: fingerprint.to_owned(),
        }
        .encode()
    }

    /// What a store keeps for a key whose ingest stored `accepted` samples
    /// (`IdempotencyRecord::Done`).
    pub fn encode_done(fingerprint: &str, accepted: u64) -> String {
        IdempotencyRecord::Done {
            fingerprint: fingerprint.to_owned(),
            accepted,
        }
        .encode()
    }

    /// What a stored record means for a request with `fingerprint`: `Conflict` for
    /// another body's, `Done` or `Pending` for this body's, and `Pending` for a value that
    /// is no record (so a corrupt entry delays rather than admits). Records of the
    /// previous release (`p:`/`d:`) are read too (`IdempotencyRecord::decode`).
    pub fn of_stored(stored: &str, fingerprint: &str) -> Self {
        match IdempotencyRecord::decode(stored.as_bytes()) {
            Err(_) => Self::Pending,
            Ok(record) if record.fingerprint() != fingerprint => Self::Conflict,
            Ok(IdempotencyRecord::Done { accepted, .. }) => Self::Done(accepted),
            Ok(IdempotencyRecord::Pending { .. }) => Self::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_records_answer_by_fingerprint_old_forms_included() {
        let fp = "ab".repeat(32);
        let pending = IdempotentStart::encode_pending(&fp);
        let done = IdempotentStart::encode_done(&fp, 7);
        assert_eq!(
            IdempotentStart::of_stored(&pending, &fp),
            IdempotentStart::Pending
        );
        assert_eq!(
            IdempotentStart::of_stored(&done, &fp),
            IdempotentStart::Done(7)
        );
        for stored in [&pending, &done] {
            assert_eq!(
                IdempotentStart::of_stored(stored, "other"),
                IdempotentStart::Conflict
            );
        }
        // What the previous release stored still answers the same.
        assert_eq!(
            IdempotentStart::of_stored(&format!("d:{fp}:7"), &fp),
            IdempotentStart::Done(7)
        );
        assert_eq!(
            IdempotentStart::of_stored(&format!("p:{fp}"), &fp),
            IdempotentStart::Pending
        );
        assert_eq!(
            IdempotentStart::of_stored(&format!("p:{fp}"), "other"),
            IdempotentStart::Conflict
        );
        // A corrupt value delays; it never admits.
        for corrupt in ["", "garbage", "d:x", "{\"v\":1}"] {
            assert_eq!(
                IdempotentStart::of_stored(corrupt, &fp),
                IdempotentStart::Pending,
                "{corrupt:?}"
            );
        }
    }
}
