//! `Faulty<T>`: one fault-injecting wrapper for every port (feature `contract`; test
//! builds only). It delegates each call to the adapter it wraps, records the call, and
//! lets a test make chosen calls fail, fail after taking effect, wait, hang or panic —
//! instead of a hand-written double per test that re-implements every method.
//!
//! Rules match a call by method name (`"insert"`, `"points"`, `"put_state"`, `"*"` for
//! any) and optionally by its subject: the service of a store query or of a batch's first
//! sample, the key of a cache call, the job id of a state or image, the view of a
//! registry call. A rule fires every time, or the next `n` times; the first rule that
//! matches a call decides its fault. An `on_fault` hook runs whenever a rule fires (to
//! trip a breaker, count, or signal).
//!
//! ```ignore
//! let store = Arc::new(Faulty::new(MemoryStore::default()));
//! store.next("points", 2, Fault::Fail(PortError::unavailable("mongodb", "down")));
//! store.always_about("points", "boom", Fault::Panic("a bug".into()));
//! assert_eq!(store.calls("points"), 3);
//! ```

use crate::cache::{Idempotency, IdempotentStart, LaneSlot, PlotCache, RequestClaim};
use crate::error::{PortError, PortResult};
use crate::events::{EventBus, StoredEvent};
use crate::queue::{DeadLetter, JobConsumer, JobQueue};
use crate::store::{MetricStore, Points, Resolution, Rollups, SeriesQuery, StoreUsage};
use crate::views::ViewRegistry;
use async_trait::async_trait;
use plotq_domain::chunk::BatchId;
use plotq_domain::rollup::SeriesRollup;
use plotq_domain::wire::{EventId, JobMessage, PlotEvent};
use plotq_domain::{Annotation, JobId, JobState, Sample, ViewState};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to a call a rule matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Fails without running the call.
    Fail(PortError),
    /// Runs the call, then fails it: the effect happened, the answer was lost.
    FailAfter(PortError),
    /// Waits, then runs the call.
    Delay(Duration),
    /// Runs the call, then waits before answering (a reply still on its way).
    DelayAfter(Duration),
    /// Never answers (a dependency that hangs).
    Hang,
    /// Panics with this message (a bug in the adapter or below).
    Panic(String),
}

/// One rule: which calls, how often, what fault.
#[derive(Debug)]
struct Rule {
    method: &'static str,
    subject: Option<String>,
    /// `None`: every time.
    remaining: Option<u32>,
    fault: Fault,
}

impl Rule {
    fn matches(&self, method: &str, subject: Option<&str>) -> bool {
        (self.method == "*" || self.method == method)
            && self
                .subject
                .as_deref()
                .is_none_or(|wanted| subject == Some(wanted))
            && self.remaining != Some(0)
    }
}

type Hook = Arc<dyn Fn(&'static str, &Fault) + Send + Sync>;

/// A port adapter with injected faults and a record of its calls.
pub struct Faulty<T> {
    inner: T,
    rules: Mutex<Vec<Rule>>,
    /// Every call, in order: `(method, subject)`.
    log: Mutex<Vec<(&'static str, Option<String>)>>,
    hook: Mutex<Option<Hook>>,
}

impl<T> std::fmt::Debug for Faulty<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty")
            .field("rules", &self.rules.lock().expect("rules lock").len())
            .finish_non_exhaustive()
    }
}

impl<T> Faulty<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            hook: Mutex::new(None),
        }
    }

    /// The wrapped adapter (calls on it are neither faulted nor recorded).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    fn add(
        &self,
        method: &'static str,
        subject: Option<&str>,
        remaining: Option<u32>,
        fault: Fault,
    ) {
        self.rules.lock().expect("rules lock").push(Rule {
            method,
            subject: subject.map(str::to_owned),
            remaining,
            fault,
        });
    }

    /// Every call of `method` (`"*"`: any) meets `fault`, until `clear`.
    pub fn always(&self, method: &'static str, fault: Fault) -> &Self {
        self.add(method, None, None, fault);
        self
    }

    /// Every call of `method` about `subject` meets `fault`, until `clear`.
    pub fn always_about(&self, method: &'static str, subject: &str, fault: Fault) -> &Self {
        self.add(method, Some(subject), None, fault);
        self
    }

    /// The next `n` calls of `method` meet `fault`.
    pub fn next(&self, method: &'static str, n: u32, fault: Fault) -> &Self {
        self.add(method, None, Some(n), fault);
        self
    }

    /// Runs `hook` with the method and the fault each time a rule fires.
    pub fn on_fault(&self, hook: impl Fn(&'static str, &Fault) + Send + Sync + 'static) -> &Self {
        *self.hook.lock().expect("hook lock") = Some(Arc::new(hook));
        self
    }

    /// Drops every rule: calls go through again.
    pub fn clear(&self) {
        self.rules.lock().expect("rules lock").clear();
    }

    /// How many calls of `method` were made, faulted or not.
    pub fn calls(&self, method: &str) -> usize {
        self.log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|(m, _)| *m == method)
            .count()
    }

    /// The subjects of the calls of `method`, in the order they were made.
    pub fn subjects(&self, method: &str) -> Vec<String> {
        self.log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|(m, _)| *m == method)
            .filter_map(|(_, s)| s.clone())
            .collect()
    }

    /// Records the call and takes the fault of the first rule that matches it.
    fn fault_for(&self, method: &'static str, subject: Option<&str>) -> Option<Fault> {
        self.log
            .lock()
            .expect("log lock")
            .push((method, subject.map(str::to_owned)));
        let fault = {
            let mut rules = self.rules.lock().expect("rules lock");
            let rule = rules.iter_mut().find(|r| r.matches(method, subject))?;
            if let Some(n) = &mut rule.remaining {
                *n -= 1;
            }
            rule.fault.clone()
        };
        let hook = self.hook.lock().expect("hook lock").clone();
        if let Some(hook) = hook {
            hook(method, &fault);
        }
        Some(fault)
    }

    /// Runs `call` as its rules say.
    async fn run<R>(
        &self,
        method: &'static str,
        subject: Option<&str>,
        call: impl Future<Output = PortResult<R>>,
    ) -> PortResult<R> {
        match self.fault_for(method, subject) {
            None => call.await,
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::FailAfter(e)) => {
                let _ = call.await;
                Err(e)
            }
            Some(Fault::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                call.await
            }
            Some(Fault::DelayAfter(wait)) => {
                let answer = call.await;
                tokio::time::sleep(wait).await;
                answer
            }
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Panic(message)) => panic!("{message}"),
        }
    }
}

#[async_trait]
impl<T: MetricStore> MetricStore for Faulty<T> {
    async fn write(
        &self,
        samples: &[Sample],
        summaries: &[SeriesRollup],
        batch: Option<&BatchId>,
    ) -> PortResult<()> {
        // Faults are set for "insert", the one write operation.
        let subject = samples
            .first()
            .map(|s| s.service.to_string())
            .or_else(|| summaries.first().map(|s| s.service.to_string()));
        self.run(
            "insert",
            subject.as_deref(),
            self.inner.write(samples, summaries, batch),
        )
        .await
    }
    async fn points(&self, query: &SeriesQuery<'_>) -> PortResult<Points> {
        self.run("points", Some(query.service), self.inner.points(query))
            .await
    }
    async fn rollups_at(
        &self,
        query: &SeriesQuery<'_>,
        resolution: Resolution,
    ) -> PortResult<Rollups> {
        let inner = self.inner.rollups_at(query, resolution);
        self.run("rollups", Some(query.service), inner).await
    }
    async fn label_counts(
        &self,
        query: &SeriesQuery<'_>,
        name: &str,
        resolution: Resolution,
    ) -> PortResult<Vec<(Option<String>, u64)>> {
        let inner = self.inner.label_counts(query, name, resolution);
        self.run("label_counts", Some(query.service), inner).await
    }
    async fn annotate(&self, annotation: &Annotation) -> PortResult<()> {
        self.run("annotate", None, self.inner.annotate(annotation))
            .await
    }
    async fn annotations(
        &self,
        services: &[&str],
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Vec<Annotation>> {
        let inner = self.inner.annotations(services, from_ms, until_ms);
        self.run("annotations", services.first().copied(), inner)
            .await
    }
    async fn ping(&self) -> PortResult<()> {
        self.run("ping", None, self.inner.ping()).await
    }
    fn dependency(&self) -> &'static str {
        self.inner.dependency()
    }
    fn usage(&self) -> Option<StoreUsage> {
        self.inner.usage()
    }
}

#[async_trait]
impl<T: JobQueue> JobQueue for Faulty<T> {
    async fn publish(&self, job: &JobMessage) -> PortResult<()> {
        let id = job.id.to_string();
        self.run("publish", Some(&id), self.inner.publish(job))
            .await
    }
    async fn retry_later(&self, body: &[u8], attempt: u32) -> PortResult<()> {
        self.run("retry_later", None, self.inner.retry_later(body, attempt))
            .await
    }
    async fn dead_letter(&self, body: &[u8], attempts: u32, reason: &str) -> PortResult<()> {
        self.run(
            "dead_letter",
            None,
            self.inner.dead_letter(body, attempts, reason),
        )
        .await
    }
    async fn dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetter>> {
        self.run("dead_letters", None, self.inner.dead_letters(max))
            .await
    }
    async fn replay_dead_letters(&self, id: Option<JobId>) -> PortResult<usize> {
        self.run(
            "replay_dead_letters",
            None,
            self.inner.replay_dead_letters(id),
        )
        .await
    }
    async fn consume(&self, prefetch: u16) -> PortResult<Box<dyn JobConsumer>> {
        self.run("consume", None, self.inner.consume(prefetch))
            .await
    }
    async fn ping(&self) -> PortResult<()> {
        self.run("ping", None, self.inner.ping()).await
    }
}

#[async_trait]
impl<T: PlotCache> PlotCache for Faulty<T> {
    async fn data_since(&self, now_ms: i64) -> PortResult<i64> {
        self.run("data_since", None, self.inner.data_since(now_ms))
            .await
    }
    async fn put_state(&self, state: &JobState, ttl: Duration) -> PortResult<()> {
        let id = state.id.to_string();
        self.run("put_state", Some(&id), self.inner.put_state(state, ttl))
            .await
    }
    async fn put_state_if_absent(&self, state: &JobState, ttl: Duration) -> PortResult<bool> {
        let id = state.id.to_string();
        self.run(
            "put_state_if_absent",
            Some(&id),
            self.inner.put_state_if_absent(state, ttl),
        )
        .await
    }
    async fn get_state(&self, id: JobId) -> PortResult<Option<JobState>> {
        let subject = id.to_string();
        self.run("get_state", Some(&subject), self.inner.get_state(id))
            .await
    }
    async fn put_image(&self, id: JobId, png: &[u8], ttl: Duration) -> PortResult<()> {
        let subject = id.to_string();
        self.run(
            "put_image",
            Some(&subject),
            self.inner.put_image(id, png, ttl),
        )
        .await
    }
    async fn get_image(&self, id: JobId) -> PortResult<Option<Vec<u8>>> {
        let subject = id.to_string();
        self.run("get_image", Some(&subject), self.inner.get_image(id))
            .await
    }
    async fn get_state_and_image(
        &self,
        id: JobId,
    ) -> PortResult<(Option<JobState>, Option<Vec<u8>>)> {
        let subject = id.to_string();
        let inner = self.inner.get_state_and_image(id);
        self.run("get_state_and_image", Some(&subject), inner).await
    }
    async fn claim_request(&self, claim: &RequestClaim<'_>) -> PortResult<Option<JobId>> {
        let inner = self.inner.claim_request(claim);
        self.run("claim_request", Some(claim.key), inner).await
    }
    async fn replace_request(&self, claim: &RequestClaim<'_>) -> PortResult<()> {
        let inner = self.inner.replace_request(claim);
        self.run("replace_request", Some(claim.key), inner).await
    }
    async fn release_request(&self, key: &str, id: JobId) -> PortResult<()> {
        self.run(
            "release_request",
            Some(key),
            self.inner.release_request(key, id),
        )
        .await
    }
    async fn delete_state(&self, id: JobId) -> PortResult<()> {
        let subject = id.to_string();
        self.run("delete_state", Some(&subject), self.inner.delete_state(id))
            .await
    }
    async fn begin_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<IdempotentStart> {
        let call = self.inner.begin_idempotent(ingest);
        self.run("begin_idempotent", Some(ingest.key), call).await
    }
    async fn finish_idempotent(&self, ingest: &Idempotency<'_>, accepted: u64) -> PortResult<()> {
        let call = self.inner.finish_idempotent(ingest, accepted);
        self.run("finish_idempotent", Some(ingest.key), call).await
    }
    async fn abandon_idempotent(&self, ingest: &Idempotency<'_>) -> PortResult<()> {
        let call = self.inner.abandon_idempotent(ingest);
        self.run("abandon_idempotent", Some(ingest.key), call).await
    }
    async fn begin_job(&self, slot: &LaneSlot<'_>) -> PortResult<bool> {
        let call = self.inner.begin_job(slot);
        self.run("begin_job", Some(slot.lane), call).await
    }
    async fn end_job(&self, lane: &str, id: JobId) -> PortResult<()> {
        self.run("end_job", Some(lane), self.inner.end_job(lane, id))
            .await
    }
    async fn ping(&self) -> PortResult<()> {
        self.run("ping", None, self.inner.ping()).await
    }
}

#[async_trait]
impl<T: EventBus> EventBus for Faulty<T> {
    async fn publish(&self, event: &PlotEvent) -> PortResult<EventId> {
        let id = event.id.to_string();
        self.run("publish", Some(&id), self.inner.publish(event))
            .await
    }
    async fn read_after(
        &self,
        after: Option<EventId>,
        block: Duration,
    ) -> PortResult<Vec<StoredEvent>> {
        self.run("read_after", None, self.inner.read_after(after, block))
            .await
    }
    async fn last_id(&self) -> PortResult<Option<EventId>> {
        self.run("last_id", None, self.inner.last_id()).await
    }
    async fn history_after(&self, after: EventId, max: usize) -> PortResult<Vec<StoredEvent>> {
        self.run("history_after", None, self.inner.history_after(after, max))
            .await
    }
    async fn ping(&self) -> PortResult<()> {
        self.run("ping", None, self.inner.ping()).await
    }
}

#[async_trait]
impl<T: ViewRegistry> ViewRegistry for Faulty<T> {
    async fn watch(&self, views: &[String], until_ms: i64) -> PortResult<()> {
        self.run("watch", None, self.inner.watch(views, until_ms))
            .await
    }
    async fn watched(&self, now_ms: i64) -> PortResult<Vec<String>> {
        self.run("watched", None, self.inner.watched(now_ms)).await
    }
    async fn touch_series(&self, series: &[(String, String)], now_ms: i64) -> PortResult<()> {
        let subject = series.first().map(|(s, _)| s.clone());
        self.run(
            "touch_series",
            subject.as_deref(),
            self.inner.touch_series(series, now_ms),
        )
        .await
    }
    async fn series_touched(&self, service: &str, metric: &str) -> PortResult<Option<i64>> {
        self.run(
            "series_touched",
            Some(service),
            self.inner.series_touched(service, metric),
        )
        .await
    }
    async fn touch_hours(
        &self,
        hours: &[(String, String, i64)],
        now_ms: i64,
        keep: Duration,
    ) -> PortResult<()> {
        let subject = hours.first().map(|(s, _, _)| s.clone());
        self.run(
            "touch_hours",
            subject.as_deref(),
            self.inner.touch_hours(hours, now_ms, keep),
        )
        .await
    }
    async fn range_touched(
        &self,
        service: &str,
        metric: &str,
        from_ms: i64,
        until_ms: i64,
    ) -> PortResult<Option<i64>> {
        self.run(
            "range_touched",
            Some(service),
            self.inner.range_touched(service, metric, from_ms, until_ms),
        )
        .await
    }
    async fn series(&self, since_ms: i64) -> PortResult<Vec<(String, String)>> {
        self.run("series", None, self.inner.series(since_ms)).await
    }
    async fn view_state(&self, view: &str) -> PortResult<Option<ViewState>> {
        self.run("view_state", Some(view), self.inner.view_state(view))
            .await
    }
    async fn set_view_state(&self, view: &str, state: &ViewState) -> PortResult<()> {
        self.run(
            "set_view_state",
            Some(view),
            self.inner.set_view_state(view, state),
        )
        .await
    }
    async fn claim(&self, view: &str, ttl: Duration) -> PortResult<bool> {
        self.run("claim", Some(view), self.inner.claim(view, ttl))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryCache, MemoryStore};
    use plotq_domain::{MetricName, ServiceName};

    fn sample(service: &str) -> Sample {
        Sample {
            service: ServiceName::parse(service).unwrap(),
            metric: MetricName::parse("m").unwrap(),
            value: 1.0,
            timestamp_ms: crate::clock::now_ms(),
            labels: plotq_domain::Labels::none(),
        }
    }

    fn query(service: &str) -> SeriesQuery<'_> {
        SeriesQuery {
            service,
            metric: "m",
            from_ms: 0,
            until_ms: i64::MAX,
            with_timestamps: false,
            select: crate::store::LabelSelect::ALL,
        }
    }

    #[tokio::test]
    async fn rules_fire_as_many_times_as_asked_on_the_calls_they_name() {
        let store = Faulty::new(MemoryStore::default());
        let down = PortError::unavailable("mongodb", "down");
        store.next("points", 2, Fault::Fail(down.clone()));
        store.always_about("points", "boom", Fault::Panic("a bug".into()));
        let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = fired.clone();
        store.on_fault(move |_, _| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        store.insert(&[sample("a")], None).await.unwrap();
        assert!(store.points(&query("a")).await.is_err());
        assert!(store.points(&query("a")).await.is_err());
        assert_eq!(store.points(&query("a")).await.unwrap().values.len(), 1);
        assert_eq!(fired.load(std::sync::atomic::Ordering::SeqCst), 2);
        let panicked = tokio::spawn(async move { store.points(&query("boom")).await }).await;
        assert!(panicked.unwrap_err().is_panic());
    }

    #[tokio::test]
    async fn a_call_failed_after_it_ran_took_effect_and_calls_are_recorded() {
        let cache = Faulty::new(MemoryCache::default());
        let state = crate::contract::queued_state();
        cache.next(
            "put_state",
            1,
            Fault::FailAfter(PortError::unavailable("redis", "reply lost")),
        );
        assert!(
            cache
                .put_state(&state, Duration::from_secs(60))
                .await
                .is_err()
        );
        assert_eq!(
            cache.get_state(state.id).await.unwrap(),
            Some(state.clone())
        );
        assert_eq!(cache.subjects("put_state"), [state.id.to_string()]);
        assert_eq!(cache.calls("get_state"), 1);
        cache.always("*", Fault::Fail(PortError::unavailable("redis", "down")));
        assert!(cache.get_state(state.id).await.is_err());
        cache.clear();
        assert!(cache.get_state(state.id).await.is_ok());
    }
}
