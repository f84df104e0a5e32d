//! `MemoryCache`, the in-process `PlotCache`: job states (in their wire form) and PNGs,
//! single-flight request claims released only by their holder, all expiring like
//! Redis keys by a `Clock`, and the jobs each lane has in flight (leases by the caller's
//! clock). Part of the embedded standalone implementation, and a
//! unit-test double.

use super::ttl::expiry;
use crate::cache::{Idempotency, IdempotentStart, LaneSlot, PlotCache, RequestClaim};
use crate::clock::{Clock, SystemClock};
use crate::error::PortResult;
use async_trait::async_trait;
use plotq_domain::wire::{decode_state, encode_state};
use plotq_domain::{JobId, JobState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Job states and PNGs in memory, expiring like Redis keys.
#[derive(Debug)]
pub struct MemoryCache {
    /// Key → (expiry, epoch ms; value).
    entries: Mutex<HashMap<String, (i64, Vec<u8>)>>,
    /// Lane → its jobs in flight, each with the end of its lease (epoch ms).
    lanes: Mutex<HashMap<String, HashMap<JobId, i64>>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            lanes: Mutex::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryCache {
    /// Entries expire by `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn put(&self, key: String, value: Vec<u8>, ttl: Duration) {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len().is_multiple_of(64) {
            entries.retain(|_, (expires, _)| *expires > now);
        }
        entries.insert(key, (expiry(now, ttl), value));
    }

    fn remove(&self, key: &str) {
        self.entries.lock().expect("cache lock").remove(key);
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.clock.now_ms();
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, v)| v.clone())
    }
}

#[async_trait]
impl PlotCache for MemoryCache {
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        self.put(format!("state:{}", state.id), encode_state(state), ttl);
        Ok(())
    }

    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        let key = format!("state:{}", state.id);
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.get(&key).is_some_and(|(expires, _)| *expires > now) {
            return Ok(false);
        }
        entries.insert(key, (expiry(now, ttl), encode_state(state)));
        Ok(true)
    }

    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        Ok(self
            .get(&format!("state:{id}"))
            .and_then(|b| decode_state(&b).ok()))
    }

    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        self.put(format!("img:{id}"), png.to_vec(), ttl);
        Ok(())
    }

    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        Ok(self.get(&format!("img:{id}")))
    }

    async fn claim_request(&self, claim: &RequestClaim<'_>) -> PortResult<Option<JobId>> {
        let key = format!("req:{}", claim.key);
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some((expires, holder)) = entries.get(&key)
            && *expires > now
        {
            return Ok(std::str::from_utf8(holder).ok().and_then(JobId::parse));
        }
        entries.insert(
            key,
            (expiry(now, claim.ttl), claim.job.to_string().into_bytes()),
        );
        Ok(None)
    }

    async fn replace_request(&self, claim: &RequestClaim<'_>) -> PortResult<()> {
        let holder = claim.job.to_string().into_bytes();
        self.put(format!("req:{}", claim.key), holder, claim.ttl);
        Ok(())
    }

    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        let key = format!("req:{key}");
        let mut entries = self.entries.lock().expect("cache lock");
        // An expired claim is as good as gone; a live one is removed only by its holder.
        if entries
            .get(&key)
            .is_some_and(|(_, holder)| holder.as_slice() == id.to_string().as_bytes())
        {
            entries.remove(&key);
        }
        Ok(())
    }

    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        self.remove(&format!("state:{id}"));
        Ok(())
    }

    async fn begin_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<IdempotentStart> {
        let (key, fingerprint) = (format!("idem:{}", ingest.key), ingest.fingerprint);
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some((_, stored)) = entries.get(&key).filter(|(expires, _)| *expires > now) {
            let stored = String::from_utf8_lossy(stored);
            return Ok(IdempotentStart::of_stored(&stored, fingerprint));
        }
        let pending = IdempotentStart::encode_pending(fingerprint).into_bytes();
        entries.insert(key, (expiry(now, ingest.pending), pending));
        Ok(IdempotentStart::Fresh)
    }

    async fn finish_idempotent(&self, ingest: &Idempotency<'_>, accepted: u64) -> PortResult<()> {
        let done = IdempotentStart::encode_done(ingest.fingerprint, accepted).into_bytes();
        self.put(format!("idem:{}", ingest.key), done, ingest.kept);
        Ok(())
    }

    async fn abandon_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<()> {
        let key = format!("idem:{}", ingest.key);
        let pending = IdempotentStart::encode_pending(ingest.fingerprint).into_bytes();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.get(&key).is_some_and(|(_, v)| *v == pending) {
            entries.remove(&key);
        }
        Ok(())
    }

    async fn begin_job(&self, slot: &LaneSlot<'_>) -> PortResult<bool> {
        let LaneSlot {
            lane,
            id,
            cap,
            lease,
            now_ms,
        } = *slot;
        let mut lanes = self.lanes.lock().expect("lanes lock");
        lanes.retain(|_, jobs| {
            jobs.retain(|_, until| *until > now_ms);
            !jobs.is_empty()
        });
        let jobs = lanes.entry(lane.to_owned()).or_default();
        if jobs.contains_key(&id) {
            return Ok(true);
        }
        if jobs.len() >= cap {
            if jobs.is_empty() {
                lanes.remove(lane);
            }
            return Ok(false);
        }
        jobs.insert(id, expiry(now_ms, lease));
        Ok(true)
    }

    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if let Some(jobs) = lanes.get_mut(lane) {
            jobs.remove(&id);
            if jobs.is_empty() {
                lanes.remove(lane);
            }
        }
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::queued_state as state;

    #[tokio::test]
    async fn claims_are_released_only_by_their_holder() {
        let cache = MemoryCache::default();
        crate::contract::claims_are_released_only_by_their_holder(&cache, &cache, "k").await;
    }

    #[tokio::test]
    async fn lanes_count_jobs_up_to_their_cap() {
        let cache = MemoryCache::default();
        crate::contract::lanes_count_jobs_up_to_their_cap(&cache, &cache, "lane").await;
        assert!(
            cache.lanes.lock().unwrap().is_empty(),
            "ended lanes are forgotten"
        );
    }

    #[tokio::test]
    async fn delete_state_forgets_the_state_only() {
        crate::contract::delete_state_forgets_the_state_only(&MemoryCache::default()).await;
    }

    #[tokio::test]
    async fn idempotency_keys_replay_conflict_and_abandon() {
        crate::contract::idempotency_keys_replay_conflict_and_abandon(&MemoryCache::default(), "k")
            .await;
    }

    #[tokio::test]
    async fn cache_expires_entries() {
        let cache = MemoryCache::default();
        let s = state();
        cache.put_state(&s, Duration::from_millis(0)).await.unwrap();
        assert!(cache.get_state(s.id).await.unwrap().is_none());
        cache.put_state(&s, Duration::from_secs(60)).await.unwrap();
        assert_eq!(cache.get_state(s.id).await.unwrap(), Some(s));
    }
}
