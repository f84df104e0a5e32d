//! Hot images: the bounded in-process cache that lets an api replica serve a done
//! plot's image, and answer `If-None-Match` with `304`, without a Redis round trip.
//!
//! Two maps, both bounded: done jobs (their state, for the tenancy and format checks,
//! and their image's SHA-256) by job id, and image bytes by that digest — so jobs whose
//! images are identical share one copy, and the `ETag` is the digest. What a done job
//! holds never changes (its state and image are written once, when it is done), so a
//! copy is never stale; it is dropped when its image's time in the cache
//! (`ApiConfig::image_ttl` after the job was done) is over, as Redis drops the image,
//! or earlier when the bytes bound (`PLOTQ_HOT_IMAGE_BYTES`; 0 turns the cache off)
//! needs room. A miss reads the state and the image in one round trip
//! (`PlotCache::get_state_and_image`) and fills both maps.
//!
//! Counted in `/metrics`: `plotq_hot_images_bytes` and `plotq_hot_images_entries`
//! (bytes and images held), `plotq_hot_image_requests_total{result}` (`hit`,
//! `not_modified`, `miss`).

use bytes::Bytes;
use moka::sync::Cache;
use plotq_domain::{JobId, JobState};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Default of `PLOTQ_HOT_IMAGE_BYTES`: 64 MiB, ~4,000 dashboard-sized PNGs.
pub const DEFAULT_HOT_IMAGE_BYTES: u64 = 64 << 20;
/// What a done job's entry is counted as (its state's JSON is ~1–3 KB).
const JOB_ENTRY_BYTES: u32 = 2_048;

/// A done job as the hot cache keeps it.
#[derive(Debug)]
pub struct HotJob {
    pub state: JobState,
    /// The SHA-256 of its image.
    pub digest: [u8; 32],
    /// The `ETag` of its image: the digest's first 128 bits in hex, quoted.
    pub etag: String,
    /// When its image leaves the cache (epoch ms).
    expires_at_ms: i64,
}

/// The in-process cache of done jobs and their images; clones share it.
#[derive(Clone)]
pub struct HotImages {
    jobs: Option<Cache<JobId, Arc<HotJob>>>,
    images: Option<Cache<[u8; 32], Bytes>>,
}

impl std::fmt::Debug for HotImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotImages")
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Default for HotImages {
    fn default() -> Self {
        Self::new(DEFAULT_HOT_IMAGE_BYTES)
    }
}

impl HotImages {
    /// A cache of at most `max_bytes` of images (and as many again of done jobs'
    /// states, counted at 2 KB each); 0 keeps nothing.
    pub fn new(max_bytes: u64) -> Self {
        if max_bytes == 0 {
            return Self {
                jobs: None,
                images: None,
            };
        }
        let images = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &[u8; 32], bytes: &Bytes| {
                u32::try_from(bytes.len()).unwrap_or(u32::MAX).max(1)
            })
            .build();
        let jobs = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &JobId, _: &Arc<HotJob>| JOB_ENTRY_BYTES)
            .build();
        Self {
            jobs: Some(jobs),
            images: Some(images),
        }
    }

    /// Done job `id`, if held and its image has not expired.
    pub fn job(&self, id: JobId, now_ms: i64) -> Option<Arc<HotJob>> {
        let jobs = self.jobs.as_ref()?;
        let job = jobs.get(&id)?;
        if job.expires_at_ms <= now_ms {
            jobs.invalidate(&id);
            return None;
        }
        Some(job)
    }

    /// The image of `job`, if held.
    pub fn image(&self, job: &HotJob) -> Option<Bytes> {
        self.images.as_ref()?.get(&job.digest)
    }

    /// Keeps done job `state` and its `image`, until `expires_at_ms`; answers the entry
    /// (also when the cache is off, for the `ETag`).
    pub fn insert(&self, state: JobState, image: Bytes, expires_at_ms: i64) -> Arc<HotJob> {
        let digest: [u8; 32] = Sha256::digest(&image).into();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let etag = format!("\"{hex}\"");
        let job = Arc::new(HotJob {
            state,
            digest,
            etag,
            expires_at_ms,
        });
        if let (Some(jobs), Some(images)) = (&self.jobs, &self.images) {
            images.insert(digest, image);
            jobs.insert(job.state.id, job.clone());
            // moka counts writes and evictions lazily: settle them so the gauges (and
            // `bytes`) are true after each insert (a miss, so rare on a hot path).
            images.run_pending_tasks();
            metrics::gauge!("plotq_hot_images_bytes").set(images.weighted_size() as f64);
            metrics::gauge!("plotq_hot_images_entries").set(images.entry_count() as f64);
        }
        job
    }

    /// Bytes of images held (as of the last insert's settling).
    pub fn bytes(&self) -> u64 {
        self.images.as_ref().map_or(0, |c| c.weighted_size())
    }
}

/// Whether an `If-None-Match` header value names `etag` (or is `*`).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotq_domain::{PlotKind, PlotSpec, ServiceName};

    fn done(id: JobId) -> JobState {
        let spec = PlotSpec::new(PlotKind::Histogram, ServiceName::parse("a").unwrap());
        let mut state = JobState::queued(id, spec, 1_000);
        state.status = plotq_domain::JobStatus::Done;
        state
    }

    #[test]
    fn identical_images_are_held_once_and_expire_with_the_cache() {
        let hot = HotImages::new(1 << 20);
        let (a, b) = (JobId::new_random(), JobId::new_random());
        let png = Bytes::from(vec![7u8; 10_000]);
        let first = hot.insert(done(a), png.clone(), 5_000);
        let second = hot.insert(done(b), png.clone(), 5_000);
        assert_eq!(first.etag, second.etag);
        assert_eq!(hot.image(&hot.job(a, 4_999).unwrap()), Some(png.clone()));
        assert_eq!(
            hot.bytes(),
            10_000,
            "one copy of the bytes, counted at once"
        );
        assert!(hot.job(b, 5_000).is_none(), "expired with the image's TTL");
        assert!(hot.job(b, 1_000).is_none(), "and forgotten");
    }

    #[test]
    fn the_bound_holds_and_zero_keeps_nothing() {
        let hot = HotImages::new(50_000);
        for i in 0..20u8 {
            hot.insert(
                done(JobId::new_random()),
                Bytes::from(vec![i; 10_000]),
                i64::MAX,
            );
        }
        assert!(hot.bytes() <= 50_000, "{} bytes", hot.bytes());
        let off = HotImages::new(0);
        let id = JobId::new_random();
        let job = off.insert(done(id), Bytes::from_static(b"png"), i64::MAX);
        assert!(off.job(id, 0).is_none() && off.image(&job).is_none());
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let etag = "\"0123\"";
        assert!(matches("\"0123\"", etag));
        assert!(matches("\"x\", W/\"0123\"", etag));
        assert!(matches("*", etag));
        assert!(!matches("\"0124\"", etag));
        assert!(!matches("0123", etag));
    }
}
