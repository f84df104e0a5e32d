//! `RedisViews`, the `ViewRegistry` on Redis (the twin of `plotq_ports::memory::views`):
//! live refresh's shared state across notifier replicas.
//!
//! `<ns>:views` (sorted set: view → lease expiry; the key expires an hour after its
//! longest lease), `<ns>:series` (sorted set: `service\tmetric` → last ingest; at most
//! `max_series` members, the oldest-touched dropped first, members older than 8 days
//! dropped, and the key expires 8 days after the last touch), `<ns>:view:<key>` (latest
//! render of a view, its versioned wire form `wire::encode_view_state`, with a TTL; one
//! that does not decode reads as absent) and `<ns>:claim:<key>` (`SET NX PX`: one
//! refresher per debounce period across all replicas), `<ns>:hours` (sorted set:
//! `service\tmetric\thour` → when samples timed in that hour last arrived (a time
//! stamp raised above every earlier one, so it only grows), the data watermarks of past
//! ranges; members older than the `keep` they were touched with are
//! dropped, at most `HOURS_PER_SERIES × max_series` kept — past that the oldest go and
//! the member `\tdropped` takes the time, which every range's watermark counts — and
//! the key expires `keep` after the last touch; written by one script, so a drop and its
//! mark are one step).

use crate::config::RedisConfig;
use crate::keys::Keys;
use crate::link::{Link, unavailable};
use async_trait::async_trait;
use plotq_domain::ViewState;
use plotq_domain::wire::{decode_view_state, encode_view_state};
use plotq_ports::clock::now_ms;
use plotq_ports::views::{HOURS_PER_SERIES, hours_of};
use plotq_ports::{PortResult, ViewRegistry};
use redis::AsyncCommands;
use std::time::Duration;

/// Watched views, series watermarks, view states and refresh claims in Redis.
#[derive(Debug, Clone)]
pub struct RedisViews {
    conn: Link,
    keys: Keys,
    max_series: usize,
}

/// How long a view's last state is remembered after its last update.
const VIEW_STATE_TTL_SECS: u64 = 24 * 3600;
/// Series not written for this long drop out of the service list (which covers a week);
/// also the TTL of the `series` key, refreshed on every touch.
const SERIES_RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;
/// Series remembered unless `with_max_series` says otherwise.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// How long the `views` key outlives its longest lease (covers clock skew between the
/// notifiers and Redis); idle dashboards leave nothing behind for longer than this.
const VIEWS_IDLE_TTL_MS: i64 = 3600 * 1000;

/// The member of `<ns>:hours` that records when the bound last dropped an hour early.
const DROPPED_MEMBER: &str = "\tdropped";

/// `service\tmetric\thour`: one hour of one series in `<ns>:hours`.
fn hour_member(service: &str, metric: &str, hour: i64) -> String {
    format!("{service}\t{metric}\t{hour}")
}

/// KEYS[1] `<ns>:hours`; ARGV: now, horizon (members last touched before it go), bound,
/// the key's TTL in ms, then the members touched, stamped with `now` raised above the
/// highest stamp in the set (stamps only grow: a touch always moves its hours'
/// watermark, whatever the replicas' clocks). Past the bound, the oldest-touched go and
/// `\tdropped` takes the stamp: one step, so no read sees the drop without its mark.
static TOUCH_HOURS: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) >= now then
  now = tonumber(top[2]) + 1
end
local stamp = string.format('%.0f', now)
for i = 5, #ARGV do
  redis.call('ZADD', KEYS[1], stamp, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  redis.call('ZADD', KEYS[1], stamp, '	dropped')
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
",
    )
});

impl RedisViews {
    /// A registry remembering at most `DEFAULT_MAX_SERIES` series.
    pub fn new(config: &RedisConfig) -> PortResult<Self> {
        let conn = Link::new(config, Duration::ZERO)?;
        Ok(Self {
            keys: Keys::new(&config.namespace, conn.is_cluster()),
            conn,
            max_series: DEFAULT_MAX_SERIES,
        })
    }

    /// Bounds the series list to `max_series` members (at least one): past it, the
    /// oldest-touched series are dropped on the next touch.
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        self.max_series = max_series.max(1);
        self
    }
}

#[async_trait]
impl ViewRegistry for RedisViews {
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()> {
        if views.is_empty() {
            return Ok(());
        }
        let key = self.keys.views();
        let mut cmd = redis::cmd("ZADD");
        // GT: a replica with a shorter lease never cuts another replica's longer one.
        cmd.arg(&key).arg("GT");
        for v in views {
            cmd.arg(until_ms).arg(v);
        }
        // The key lives until an hour past the longest lease: NX gives a fresh key its
        // TTL, GT only ever lengthens it (another replica's longer lease is never cut).
        let ttl_ms = (until_ms - now_ms()).max(0) + VIEWS_IDLE_TTL_MS;
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .add_command(cmd)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("NX")
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .arg("GT")
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let key = self.keys.views();
        let (_, live): ((), Vec<String>) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_ms)
            .cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(live)
    }

    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()> {
        if series.is_empty() {
            return Ok(());
        }
        let key = self.keys.series();
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&key);
        for (service, metric) in series {
            cmd.arg(now_ms).arg(format!("{service}\t{metric}"));
        }
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .add_command(cmd)
            // Series not touched within the retention are forgotten...
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({}", now_ms - SERIES_RETENTION_MS))
            // ...and past the bound the oldest-touched go (rank 0 = lowest score).
            .cmd("ZREMRANGEBYRANK")
            .arg(&key)
            .arg(0)
            .arg(-(self.max_series as i64) - 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(SERIES_RETENTION_MS)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>> {
        let mut conn = self.conn.clone();
        let score: Option<f64> = conn
            .zscore(self.keys.series(), format!("{service}\t{metric}"))
            .await
            .map_err(unavailable)?;
        Ok(score.map(|s| s as i64))
    }

    async fn touch_hours(
        &self,
        hours: &[(String, String, i64)],
        now_ms: i64,
        keep: Duration,
    ) -> PortResult<()> {
        if hours.is_empty() {
            return Ok(());
        }
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX).max(1);
        let bound = self.max_series.saturating_mul(HOURS_PER_SERIES);
        let mut invocation = TOUCH_HOURS.key(self.keys.hours());
        invocation
            .arg(now_ms)
            .arg(now_ms.saturating_sub(keep_ms))
            .arg(bound)
            .arg(keep_ms);
        for (service, metric, hour) in hours {
            invocation.arg(hour_member(service, metric, *hour));
        }
        let mut conn = self.conn.clone();
        invocation
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn range_touched(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Option<i64>> {
        let Some(hours) = hours_of(from_ms, until_ms) else {
            return self.series_touched(service, metric).await;
        };
        let mut cmd = redis::cmd("ZMSCORE");
        cmd.arg(self.keys.hours());
        for hour in hours {
            cmd.arg(hour_member(service, metric, hour));
        }
        cmd.arg(DROPPED_MEMBER);
        let mut conn = self.conn.clone();
        let scores: Vec<Option<f64>> = cmd.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(scores.into_iter().flatten().map(|s| s as i64).max())
    }

    async fn series(&self, since_ms: i64) -> PortResult<Vec<(String, String)>> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn
            .zrangebyscore(self.keys.series(), since_ms, "+inf")
            .await
            .map_err(unavailable)?;
        // Members are `service<TAB>metric` (see `touch_series`).
        let mut out: Vec<(String, String)> = members
            .into_iter()
            .filter_map(|m| {
                m.split_once('\t')
                    .map(|(service, metric)| (service.to_owned(), metric.to_owned()))
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>> {
        let mut conn = self.conn.clone();
        let raw: Option<Vec<u8>> = conn
            .get(self.keys.view_state(view))
            .await
            .map_err(unavailable)?;
        Ok(raw.and_then(|b| match decode_view_state(&b) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(view, error = %e, "unreadable view state in redis; treating as unknown");
                None
            }
        }))
    }

    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()> {
        let mut conn = self.conn.clone();
        let json = encode_view_state(state);
        conn.set_ex::<_, _, ()>(self.keys.view_state(view), json, VIEW_STATE_TTL_SECS)
            .await
            .map_err(unavailable)
    }

    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.keys.claim(view))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }
}
