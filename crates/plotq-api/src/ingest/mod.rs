//! Samples in. The ingest use case, shared by `POST /api/v1/metrics` (`metrics.rs`),
//! `POST /api/v1/ingest/caddy` (`caddy.rs`, with the Caddy access-log parser under
//! `caddy/`), the OTLP/HTTP routes `POST /v1/traces` and `/v1/metrics` (`otlp.rs`, with
//! its decoding and mapping under `otlp/`) and the standalone demo producer: store the samples, then move the
//! watermark of every series they touch ([`store_samples`]); and the write half every
//! ingest route shares ([`store_batch`]: the caller's services, the batch's spread, its
//! rate, the `Idempotency-Key`, the store).

pub mod caddy;
pub(crate) mod metrics;
pub(crate) mod otlp;

use crate::access::forbidden_services;
use crate::state::ApiState;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use plotq_domain::chunk::BatchId;
use plotq_domain::rollup::SeriesRollup;
use plotq_domain::window::format_secs;
use plotq_domain::{FieldError, Sample};
use plotq_http::{Caller, Limits, Problem, ProblemCode};
use plotq_ports::{
    Idempotency, IdempotentStart, MetricStore, PlotCache, PortError, SourcePolicy, ViewRegistry,
};
use std::sync::Arc;
use std::time::Duration;

/// Stores `samples` and `summaries` (OTLP histogram points merged into rollups) as one
/// write (the error when the store did not acknowledge them), then tells live
/// refresh which series got new samples, and the single flight of past ranges which
/// hours of them (`ViewRegistry::touch_hours`, remembered for `keep`: longer than any
/// render is reused, `plots::reuse_horizon`). That part is best effort: the samples are
/// stored, and a missed touch only delays a refresh until the image's age triggers one,
/// or serves a past range's cached image until it expires.
pub async fn store_samples(
    store: &dyn MetricStore,
    views: &dyn ViewRegistry,
    (samples, summaries): (&[Sample], &[SeriesRollup]),
    now_ms: i64,
    keep: Duration,
    batch: Option<&BatchId>,
) -> Result<(), PortError> {
    store.write(samples, summaries, batch).await?;
    let hours = plotq_ports::views::hours_touched(samples, summaries);
    if let Err(e) = views.touch_hours(&hours, now_ms, keep).await {
        tracing::warn!(error = %e, "cannot record the hours of new samples");
    }
    let series = plotq_ports::views::series_of(&hours);
    if let Err(e) = views.touch_series(&series, now_ms).await {
        tracing::warn!(error = %e, "cannot record new samples for live refresh");
    }
    Ok(())
}

/// How a batch ended up stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// By this request (or there was nothing to store).
    Now,
    /// By an earlier request with the same `Idempotency-Key` and body, which stored this
    /// many samples; nothing was written now.
    Replayed(u64),
}

/// The write half of every ingest route, after its body was parsed into `samples`:
/// every sample's service must be the caller's (`403`), the batch may touch at most
/// `max_batch_buckets` one-minute buckets (`422 batch_too_spread`), the samples fit the
/// caller's rate (`429`) and its label sets per series (`422 too_many_label_sets`), then they are stored within `store_timeout` (`503`/`507` when
/// the store did not acknowledge them) — once per `key`: the same key and `body` again is [`Stored::Replayed`], the
/// same key with another body `422 idempotency_key_reused`, a key whose request is
/// still being stored `409 idempotency_key_in_use`. An empty `samples` touches no
/// dependency.
pub(crate) async fn store_batch(
    state: &ApiState,
    caller: &Caller,
    limits: &Limits,
    key: Option<&str>,
    body: &[u8],
    (samples, summaries): (&[Sample], &[SeriesRollup]),
    now: i64,
) -> Result<Stored, Problem> {
    if !caller.services.is_all() {
        let denied: Vec<FieldError> = samples
            .iter()
            .enumerate()
            .filter(|(_, s)| !caller.may_use_service(s.service.as_str()))
            .take(plotq_domain::error::MAX_REPORTED_ERRORS)
            .map(|(i, s)| FieldError::new(format!("/{i}/service"), s.service.to_string()))
            .collect();
        if !denied.is_empty() {
            return Err(forbidden_services(denied));
        }
    }
    check_spread(samples, summaries, state.config.max_batch_buckets)?;
    limits.check_ingest(&caller.limit_key, samples.len() + summaries.len())?;
    limits.check_label_sets(&caller.limit_key, samples, summaries)?;
    if samples.is_empty() && summaries.is_empty() {
        return Ok(Stored::Now);
    }
    let Some(key) = key else {
        store_within(state, samples, summaries, now, None).await?;
        return Ok(Stored::Now);
    };
    let fingerprint = plotq_http::auth::sha256_hex(body);
    // The key is the caller's own: the same key from two callers names two batches.
    let scoped = plotq_http::auth::sha256_hex(format!("{}\n{key}", caller.name).as_bytes());
    let batch_hash = plotq_http::auth::sha256_hex(format!("{scoped}\n{fingerprint}").as_bytes());
    let batch = BatchId::parse(&batch_hash[..32]).expect("32 hex digits");
    let mut held = match begin_idempotent(&state.cache, &scoped, &fingerprint).await? {
        (IdempotentStart::Fresh, Some(held)) => held,
        (IdempotentStart::Done(n), _) => return Ok(Stored::Replayed(n)),
        // (`Fresh` always comes with its key.)
        (IdempotentStart::Pending | IdempotentStart::Fresh, _) => {
            return Err(Problem::new(
                ProblemCode::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is being stored; retry shortly",
            )
            .with_retry_after(1));
        }
        (IdempotentStart::Conflict, _) => {
            return Err(Problem {
                errors: vec![FieldError::new(
                    "/headers/idempotency-key",
                    "was used for a different body within 24 h",
                )],
                ..Problem::new(
                    ProblemCode::IdempotencyKeyReused,
                    "this Idempotency-Key was sent with a different body within 24 h; use a new key for new samples",
                )
            });
        }
    };
    let stored = store_within(state, samples, summaries, now, Some(&batch)).await;
    if let Err(e) = stored {
        // Nothing is acknowledged: a retry with the key may run (and the store writes
        // whatever this attempt wrote at most once).
        if let Err(release) = state
            .cache
            .abandon_idempotent(&ingest(&scoped, &fingerprint))
            .await
        {
            tracing::warn!(error = %release, "cannot release an idempotency key; its retries wait for it to lapse");
        }
        held.settled = true;
        return Err(e.into());
    }
    let n = samples.len() as u64;
    if let Err(e) = state
        .cache
        .finish_idempotent(&ingest(&scoped, &fingerprint), n)
        .await
    {
        // Stored all the same: a retry after the pending mark lapses stores nothing again.
        tracing::warn!(error = %e, "cannot record a finished idempotent ingest");
    }
    held.settled = true;
    Ok(Stored::Now)
}

/// `422 sample_too_old` naming every sample older than the rollup retention: nothing of
/// it would be kept, so it is refused rather than answered "accepted" and lost.
pub(crate) fn check_age(
    samples: &[Sample],
    now: i64,
    sources: &SourcePolicy,
) -> Result<(), Problem> {
    let horizon = horizon(now, sources.rollup_retention);
    let old: Vec<FieldError> = samples
        .iter()
        .enumerate()
        .filter(|(_, s)| s.timestamp_ms < horizon)
        .take(plotq_domain::error::MAX_REPORTED_ERRORS)
        .map(|(i, _)| {
            FieldError::new(
                format!("/{i}/timestamp"),
                format!(
                    "is older than the rollup retention ({}, PLOTQ_ROLLUP_RETENTION): nothing of it would be kept",
                    format_secs(sources.rollup_retention.as_secs())
                ),
            )
        })
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    Err(Problem {
        errors: old,
        ..Problem::new(
            ProblemCode::SampleTooOld,
            "samples older than the rollup retention would be deleted at once; nothing was stored",
        )
    })
}

/// How many of `samples` are older than the raw retention: stored, but kept only in the
/// one-minute rollups (every window reaching that far back is drawn from them), which
/// the ingest answers report as `rollup_only`.
pub(crate) fn rollup_only(samples: &[Sample], now: i64, sources: &SourcePolicy) -> u64 {
    let horizon = horizon(now, sources.raw_retention);
    samples.iter().filter(|s| s.timestamp_ms < horizon).count() as u64
}

/// `now` minus `retention`, in epoch milliseconds.
pub(crate) fn horizon(now: i64, retention: Duration) -> i64 {
    now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

/// `422 batch_too_spread` when `samples` touch more than `max` one-minute buckets (each
/// distinct series and minute is a chunk to write and a rollup to update).
fn check_spread(samples: &[Sample], summaries: &[SeriesRollup], max: usize) -> Result<(), Problem> {
    let buckets = plotq_domain::chunk::count_buckets(samples, summaries, max.saturating_add(1));
    if buckets <= max {
        return Ok(());
    }
    Err(Problem {
        errors: vec![FieldError::new(
            "",
            format!("touches more than {max} one-minute buckets (series × minute)"),
        )],
        ..Problem::new(
            ProblemCode::BatchTooSpread,
            format!(
                "this batch touches more than {max} one-minute buckets of its series (PLOTQ_MAX_BATCH_BUCKETS); \
                 send samples spread over a long time in several batches, each over fewer minutes"
            ),
        )
    })
}

/// `store_samples` bounded by the api's `store_timeout`: past it the request ends `503`
/// (whatever the store wrote meanwhile is written once again only under the same
/// `Idempotency-Key`).
async fn store_within(
    state: &ApiState,
    samples: &[Sample],
    summaries: &[SeriesRollup],
    now: i64,
    batch: Option<&BatchId>,
) -> Result<(), PortError> {
    let write = store_samples(
        state.store.as_ref(),
        state.views.as_ref(),
        (samples, summaries),
        now,
        crate::plots::reuse_horizon(&state.config),
        batch,
    );
    match state.config.store_timeout {
        None => write.await,
        Some(limit) => tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| {
                Err(PortError::unavailable(
                    state.store.dependency(),
                    format!("the write did not finish within {limit:?}"),
                ))
            }),
    }
}

/// Takes `scoped` as in progress for `fingerprint`; when it was free
/// ([`IdempotentStart::Fresh`]), the request now holds it. The command runs in a task of its own: a request dropped
/// meanwhile (its client went away) never receives the key, which is then released.
async fn begin_idempotent(
    cache: &Arc<dyn PlotCache>,
    scoped: &str,
    fingerprint: &str,
) -> Result<(IdempotentStart, Option<HeldKey>), PortError> {
    let (answer, asked) = tokio::sync::oneshot::channel();
    let (cache, scoped, fingerprint) = (cache.clone(), scoped.to_owned(), fingerprint.to_owned());
    tokio::spawn(async move {
        let start = cache.begin_idempotent(&ingest(&scoped, &fingerprint)).await;
        let held = matches!(start, Ok(IdempotentStart::Fresh)).then(|| HeldKey {
            cache,
            scoped,
            fingerprint,
            settled: false,
        });
        // Not delivered (the request was dropped): `held` drops here or with the
        // receiver, and releases the key.
        let _ = answer.send(start.map(|start| (start, held)));
    });
    asked.await.unwrap_or_else(|_| {
        Err(PortError::unavailable(
            "redis",
            "the idempotency check stopped",
        ))
    })
}

/// A key [`store_batch`] holds as in progress. Dropped before it was settled (finished
/// or abandoned) — the client went away and its handler was dropped mid-write — it is
/// released in the background, as after a failed write: the client's retry is stored at
/// once instead of being answered `409` until the mark lapses, and whatever the dropped
/// request wrote is stored at most once all the same (ids derive from key and body).
struct HeldKey {
    cache: Arc<dyn PlotCache>,
    scoped: String,
    fingerprint: String,
    settled: bool,
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.cache.clone();
        let (scoped, fingerprint) = (
            std::mem::take(&mut self.scoped),
            std::mem::take(&mut self.fingerprint),
        );
        runtime.spawn(async move {
            if let Err(e) = cache.abandon_idempotent(&ingest(&scoped, &fingerprint)).await {
                tracing::warn!(error = %e, "cannot release the idempotency key of a dropped request; its retries wait for it to lapse");
            }
        });
    }
}

/// Marks an answer to a retried `Idempotency-Key` (`Idempotent-Replayed: true`).
pub(crate) fn mark_replayed(response: &mut Response) {
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
}

/// How long a retried batch is recognised by its `Idempotency-Key`.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// The cache's view of the idempotent ingest under `scoped` of a body with `fingerprint`.
fn ingest<'a>(scoped: &'a str, fingerprint: &'a str) -> Idempotency<'a> {
    Idempotency {
        key: scoped,
        fingerprint,
        pending: IDEMPOTENCY_PENDING,
        kept: IDEMPOTENCY_TTL,
    }
}
/// How long a key stays "in progress" if its request never finishes (a crashed api).
const IDEMPOTENCY_PENDING: Duration = Duration::from_secs(60);
/// The `Idempotency-Key` header of the ingest routes, in the document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // reason: describes the header for the document; read by `idempotency_key`
pub(crate) struct IdempotencyKeyHeader {
    /// Makes a retried batch safe: the same key and body within 24 h is answered as before (`Idempotent-Replayed: true`) and stored once; the same key with another body is `422 idempotency_key_reused`
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    key: Option<String>,
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The `Idempotency-Key` header, if any: 1 to 255 visible ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.as_bytes();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(Problem::invalid_field(
            "/headers/idempotency-key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (e.g. a UUID)"),
        ));
    }
    Ok(Some(String::from_utf8_lossy(key).into_owned()))
}
