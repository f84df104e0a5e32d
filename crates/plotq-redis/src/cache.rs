//! `RedisCache`, the `PlotCache` on Redis (the twin of `plotq_ports::memory::cache`):
//! job states and images, single-flight request claims released only by their holder,
//! idempotency records, the jobs each lane has in flight, and `<ns>:since` — every key
//! with a TTL but `<ns>:since`, and the Lua scripts that make the compound steps atomic.
//! Key names are `keys.rs`'s; connecting, bounds and the breaker are `link.rs`'s.
//!
//! Job states are stored in their versioned wire form (`wire::encode_state`); a value
//! that does not decode reads as absent (and is logged). `<ns>:since` is written once,
//! so an empty Redis after a restart writes a new time, which is how a job whose state
//! was lost is told from one that never existed.

use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::link::{Link, unavailable};
use async_trait::async_trait;
use plotq_domain::wire::{decode_state, encode_state};
use plotq_domain::{JobId, JobState};
use plotq_ports::{Idempotency, IdempotentStart, LaneSlot, PlotCache, PortResult, RequestClaim};
use redis::AsyncCommands;
use std::time::Duration;

/// Job states and PNGs in Redis.
#[derive(Debug, Clone)]
pub struct RedisCache {
    conn: Link,
    keys: Keys,
}

impl RedisCache {
    /// Prepares the connection; it is made lazily and re-made after failures.
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        let conn = Link::new(config, Duration::ZERO)?;
        Ok(Self {
            keys: Keys::new(&config.namespace, conn.is_cluster()),
            conn,
        })
    }

    /// `SET key value NX EX ttl`: whether the key was absent (and is now set).
    async fn set_absent(
        &self,
        key: &str,
        value: impl redis::ToRedisArgs + Send + Sync,
        ttl: Duration,
    ) -> PortResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl_secs(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    /// Deletes `key` only if it still holds `value` ([`RELEASE_IF_HELD`]).
    async fn release_if_held(&self, key: String, value: String) -> PortResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("EVAL")
            .arg(RELEASE_IF_HELD)
            .arg(1)
            .arg(key)
            .arg(value)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

/// A TTL as whole seconds, at least one (`EX 0` is an error).
fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// Sets `KEYS[1]` to `ARGV[1]` unless it exists, and answers what it holds.
const SET_ONCE_AND_GET: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`: a compare-and-delete, atomic
/// because Redis runs a script without interleaving other commands.
const RELEASE_IF_HELD: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// A lane's jobs in flight (`KEYS[1]`, a sorted set of job ids by the end of their
/// lease): drops the lapsed ones (`ARGV[1]` is now), then adds job `ARGV[4]` until
/// `ARGV[2]` if it is there already or the set holds fewer than `ARGV[3]`; 1 if counted.
/// The key lives as long as its newest lease (every lease is as long).
const BEGIN_JOB: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
    return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
";

#[async_trait]
impl PlotCache for RedisCache {
    async fn data_since(&self, now_ms: i64) -> PortResult<i64> {
        let mut conn = self.conn.clone();
        let since: String = redis::cmd("EVAL")
            .arg(SET_ONCE_AND_GET)
            .arg(1)
            .arg(self.keys.since())
            .arg(now_ms)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        since
            .parse()
            .map_err(|_| unavailable(format!("the since key holds {since:?}")))
    }

    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(
            self.keys.state(state.id),
            encode_state(state),
            ttl_secs(ttl),
        )
        .await
        .map_err(unavailable)
    }

    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        self.set_absent(&self.keys.state(state.id), encode_state(state), ttl)
            .await
    }

    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = conn.get(self.keys.state(id)).await.map_err(unavailable)?;
        Ok(readable_state(id, raw))
    }

    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(self.keys.image(id), png, ttl_secs(ttl))
            .await
            .map_err(unavailable)
    }

    async fn claim_request(&self, claim: &RequestClaim<'_>) -> PortResult<Option<JobId>> {
        let key = self.keys.request(claim.key);
        if self
            .set_absent(&key, claim.job.to_string(), claim.ttl)
            .await?
        {
            return Ok(None);
        }
        let mut conn = self.conn.clone();
        let holder: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        Ok(holder.as_deref().and_then(JobId::parse))
    }

    async fn replace_request(&self, claim: &RequestClaim<'_>) -> PortResult<()> {
        let (key, holder) = (self.keys.request(claim.key), claim.job.to_string());
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(key, holder, ttl_secs(claim.ttl))
            .await
            .map_err(unavailable)
    }

    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        self.release_if_held(self.keys.request(key), id.to_string())
            .await
    }

    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(self.keys.state(id))
            .await
            .map_err(unavailable)
    }

    async fn begin_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<IdempotentStart> {
        let mut conn = self.conn.clone();
        let (key, fingerprint) = (self.keys.idempotency(ingest.key), ingest.fingerprint);
        // SET NX, else read what holds the key; a key that expired in between is tried
        // once more.
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(IdempotentStart::encode_pending(fingerprint))
                .arg("NX")
                .arg("PX")
                .arg(ingest.pending.as_millis().max(1) as u64)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if set.is_some() {
                return Ok(IdempotentStart::Fresh);
            }
            let stored: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            if let Some(stored) = stored {
                return Ok(IdempotentStart::of_stored(&stored, fingerprint));
            }
        }
        Ok(IdempotentStart::Pending)
    }

    async fn finish_idempotent(&self, ingest: &Idempotency<'_>, accepted: u64) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(
            self.keys.idempotency(ingest.key),
            IdempotentStart::encode_done(ingest.fingerprint, accepted),
            ttl_secs(ingest.kept),
        )
        .await
        .map_err(unavailable)
    }

    async fn abandon_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<()> {
        self.release_if_held(
            self.keys.idempotency(ingest.key),
            IdempotentStart::encode_pending(ingest.fingerprint),
        )
        .await
    }

    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        conn.get(self.keys.image(id)).await.map_err(unavailable)
    }

    async fn get_state_and_image(
        &self,
        id: JobId,
    ) -> PortResult<(Option<JobState>, Option<Vec<u8>>)> {
        let mut conn = self.conn.clone();
        let (state, image): (Option<Vec<u8>>, Option<Vec<u8>>) = conn
            .mget(&[self.keys.state(id), self.keys.image(id)])
            .await
            .map_err(unavailable)?;
        Ok((readable_state(id, state), image))
    }

    async fn begin_job(&self, slot: &LaneSlot<'_>) -> PortResult<bool> {
        let mut conn = self.conn.clone();
        let lease = i64::try_from(slot.lease.as_millis()).unwrap_or(i64::MAX);
        redis::cmd("EVAL")
            .arg(BEGIN_JOB)
            .arg(1)
            .arg(self.keys.lane(slot.lane))
            .arg(slot.now_ms)
            .arg(slot.now_ms.saturating_add(lease))
            .arg(slot.cap)
            .arg(slot.id.to_string())
            .query_async::<i64>(&mut conn)
            .await
            .map(|counted| counted == 1)
            .map_err(unavailable)
    }

    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        let mut conn = self.conn.clone();
        conn.zrem::<_, _, ()>(self.keys.lane(lane), id.to_string())
            .await
            .map_err(unavailable)
    }

    /// Also marks when this Redis's data begins, if nothing has yet: after a Redis
    /// restarts empty, the first probe (readiness, or a breaker's) marks it, so an id
    /// issued after that and never stored answers `404`, not `410 state_lost`.
    async fn ping(&self) -> PortResult<()> {
        self.conn.ping(&self.keys.since()).await?;
        self.data_since(plotq_ports::clock::now_ms())
            .await
            .map(drop)
    }
}

/// A stored job state, or `None` (logged) for one this version cannot read.
fn readable_state(id: JobId, raw: Option<Vec<u8>>) -> Option<JobState> {
    raw.and_then(|b| match decode_state(&b) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(%id, error = %e, "unreadable job state in redis; treating as unknown");
            None
        }
    })
}
