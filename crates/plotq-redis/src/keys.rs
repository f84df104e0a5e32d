//! `Keys`: the name of every key plotq writes, all under the namespace prefix, in one
//! place. Pure naming: what each key holds, and its TTL, is said by the adapter that
//! writes it (`cache.rs`, `events.rs`, `views.rs`).
//!
//! - `<ns>:state:<id>` (job state JSON), `<ns>:img:<id>` (image bytes),
//!   `<ns>:req:<key>` (single-flight claim: request key → job id), `<ns>:idem:<key>`
//!   (idempotency record), `<ns>:lane:<lane>` (a lane's jobs in flight) and
//!   `<ns>:since` (when this Redis's data begins): `RedisCache`.
//! - `<ns>:events`, the capped stream: `RedisEventBus`.
//! - `<ns>:views` (watched views), `<ns>:series` (series watermarks),
//!   `<ns>:view:<view>` (a view's latest render) and `<ns>:claim:<view>` (its refresh
//!   claim): `RedisViews`.
//!
//! On a Redis Cluster, keys used together share a hash slot through a `{…}` hash tag
//! (on a cluster only, so a single Redis keeps the key names of earlier releases): a
//! job's state and image (`<ns>:state:{<id>}`, `<ns>:img:{<id>}`), a view's state and
//! refresh claim (`{<view>}`). Every command and atomic pipeline touches one key, so
//! none crosses slots; the event stream is one key, so it lives on one master.

use plotq_domain::JobId;

/// Key names under one namespace, hash-tagged on a cluster.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    /// Keys used together get a hash tag only on a cluster.
    cluster: bool,
}

impl Keys {
    pub(crate) fn new(namespace: &str, cluster: bool) -> Self {
        Self {
            prefix: namespace.to_owned(),
            cluster,
        }
    }

    fn plain(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// `<ns>:<family>:<text>`, `text` as a hash tag on a cluster (`{text}`: the slot is
    /// computed from it alone), as it is on a single Redis.
    fn tagged(&self, family: &str, text: &str) -> String {
        if self.cluster {
            format!("{}:{family}:{{{text}}}", self.prefix)
        } else {
            format!("{}:{family}:{text}", self.prefix)
        }
    }

    /// A job's state; on a cluster in the slot of `{<id>}`, with its image.
    pub(crate) fn state(&self, id: JobId) -> String {
        self.tagged("state", &id.to_string())
    }

    /// A job's image; on a cluster in the slot of `{<id>}`, with its state.
    pub(crate) fn image(&self, id: JobId) -> String {
        self.tagged("img", &id.to_string())
    }

    /// The single-flight claim of a request key.
    pub(crate) fn request(&self, key: &str) -> String {
        self.plain(&format!("req:{key}"))
    }

    /// The idempotency record of an ingest key.
    pub(crate) fn idempotency(&self, key: &str) -> String {
        self.plain(&format!("idem:{key}"))
    }

    /// The sorted set of a lane's jobs in flight (one key per command: no hash tag).
    pub(crate) fn lane(&self, lane: &str) -> String {
        self.plain(&format!("lane:{lane}"))
    }

    /// The sorted set of series hours → when samples timed in them last arrived (one
    /// key per command: no hash tag).
    pub(crate) fn hours(&self) -> String {
        self.plain("hours")
    }

    /// When this Redis's data begins.
    pub(crate) fn since(&self) -> String {
        self.plain("since")
    }

    /// The capped event stream.
    pub(crate) fn events(&self) -> String {
        self.plain("events")
    }

    /// Watched views and their lease expiries.
    pub(crate) fn views(&self) -> String {
        self.plain("views")
    }

    /// Series and their last ingest.
    pub(crate) fn series(&self) -> String {
        self.plain("series")
    }

    /// A view's latest render; on a cluster in the slot of `{<view>}`, with its claim.
    pub(crate) fn view_state(&self, view: &str) -> String {
        self.tagged("view", view)
    }

    /// A view's refresh claim; on a cluster in the slot of `{<view>}`, with its state.
    pub(crate) fn claim(&self, view: &str) -> String {
        self.tagged("claim", view)
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;
    use plotq_domain::JobId;

    #[test]
    fn a_single_redis_keeps_the_plain_names() {
        let keys = Keys::new("ns", false);
        let id = JobId::new_random();
        assert_eq!(keys.state(id), format!("ns:state:{id}"));
        assert_eq!(keys.image(id), format!("ns:img:{id}"));
        assert_eq!(keys.view_state("a/cdf"), "ns:view:a/cdf");
        assert_eq!(keys.claim("a/cdf"), "ns:claim:a/cdf");
        assert_eq!(keys.request("k"), "ns:req:k");
        assert_eq!(keys.idempotency("k"), "ns:idem:k");
        assert_eq!(keys.lane("t"), "ns:lane:t");
        assert_eq!(
            [keys.since(), keys.events(), keys.views(), keys.series()],
            ["ns:since", "ns:events", "ns:views", "ns:series"]
        );
    }

    #[test]
    fn on_a_cluster_keys_used_together_share_a_hash_tag() {
        let keys = Keys::new("ns", true);
        let id = JobId::new_random();
        assert_eq!(keys.state(id), format!("ns:state:{{{id}}}"));
        assert_eq!(keys.image(id), format!("ns:img:{{{id}}}"));
        assert_eq!(keys.view_state("a/cdf"), "ns:view:{a/cdf}");
        assert_eq!(keys.claim("a/cdf"), "ns:claim:{a/cdf}");
        // One key per command: these need no tag.
        assert_eq!(keys.request("k"), "ns:req:k");
        assert_eq!(keys.lane("t"), "ns:lane:t");
        assert_eq!(keys.events(), "ns:events");
    }
}
