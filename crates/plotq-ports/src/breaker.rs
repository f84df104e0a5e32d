//! `Breaker`: what one process believes about one dependency, as a circuit breaker
//! shared by every caller of that dependency in the process (handlers, the worker, the
//! readiness probe and the background prober).
//!
//! Closed (up) → **open** after `failures_to_open` consecutive calls that did not reach
//! the dependency, or at once when a probe (`admit_probe`) fails → after `cooldown`, the
//! next probe is the single **trial** → closed if it reached the dependency, open for
//! another `cooldown` if not. While open, `admit` answers `PortError::Unavailable`
//! naming the dependency without touching it, so a request that needs a dependency known
//! to be down is answered in microseconds rather than after the dependency timeout.
//! Requests are never the trial: a trial against a dependency that is still down can
//! take the whole timeout (MongoDB's server selection waits it out), and no user should
//! wait for it; the background prober (`keep_probing`) and readiness probes check.
//!
//! Only failures *to reach* the dependency count (refused connections, timeouts, lost
//! connections); an error the dependency answered (a full queue, a rejected command)
//! shows that it is up. Each adapter decides which is which when it settles its
//! `Ticket`. Every change of state is logged once, so a flapping dependency logs one line
//! per change, never one per request. `wait_up` lets a worker hold a job until the
//! dependency is back instead of burning the job's attempts.

use crate::clock::Clock;
use crate::error::{PortError, PortResult};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The words every refusal of an open breaker carries (defined with `PortError`, which
/// tells refusals by them).
pub use crate::error::FAILING_FAST;

/// When a breaker opens and how often it lets a trial through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive calls that did not reach the dependency before it counts as down;
    /// `0` disables the breaker (every call goes to the dependency, as without one).
    pub failures_to_open: u32,
    /// How long an open breaker fails fast before it lets one trial call through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures_to_open: 3,
            cooldown: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    /// Down; calls fail fast until `retry_at_ms`.
    Open {
        retry_at_ms: i64,
        since_ms: i64,
    },
    /// Down; one trial call is out.
    Trial {
        since_ms: i64,
    },
}

struct Inner {
    dependency: &'static str,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    up: watch::Sender<bool>,
}

/// One dependency's health, shared by clones.
#[derive(Clone)]
pub struct Breaker(Arc<Inner>);

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("dependency", &self.0.dependency)
            .field("state", &*self.lock())
            .finish()
    }
}

/// What a settled call says about the dependency.
const UNSETTLED: u8 = 0;
const REACHED: u8 = 1;
const UNREACHED: u8 = 2;

/// Permission for one call (which may issue several commands); it reports how the call
/// went when dropped. Record each command with `reached`; a ticket dropped without any
/// record (a cancelled call) counts for nothing, and a trial that counts for nothing
/// lets the next caller try at once.
#[derive(Debug)]
pub struct Ticket {
    breaker: Breaker,
    trial: bool,
    probe: bool,
    outcome: AtomicU8,
    /// When the call began: its duration goes to the request's `Server-Timing`.
    started: std::time::Instant,
}

impl Ticket {
    /// Records one command: `true` if the dependency answered (successfully or with an
    /// error of its own), `false` if it could not be reached. A call that failed to
    /// reach the dependency once counts as unreached.
    pub fn reached(&self, reached: bool) {
        let value = if reached { REACHED } else { UNREACHED };
        let _ = self
            .outcome
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |old| {
                (old != UNREACHED).then_some(value)
            });
    }

    /// Records `result` (any error counts as unreached) and passes it on: for calls
    /// whose errors all mean the dependency could not be reached.
    pub fn settle<T>(&self, result: PortResult<T>) -> PortResult<T> {
        self.reached(!matches!(result, Err(PortError::Unavailable { .. })));
        result
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let dependency = self.breaker.0.dependency;
        crate::timing::record(
            crate::timing::part_of(dependency),
            None,
            self.started.elapsed(),
        );
        match self.outcome.load(Ordering::SeqCst) {
            REACHED => self.breaker.on_reached(),
            UNREACHED => self.breaker.on_unreached(self.probe || self.trial),
            _ if self.trial => self.breaker.release_trial(),
            _ => {}
        }
    }
}

impl Breaker {
    pub fn new(dependency: &'static str, config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let (up, _) = watch::channel(true);
        metrics::gauge!("plotq_dependency_up", "dependency" => dependency).set(1.0);
        Self(Arc::new(Inner {
            dependency,
            config,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
            up,
        }))
    }

    /// A breaker on the system clock.
    pub fn system(dependency: &'static str, config: BreakerConfig) -> Self {
        Self::new(dependency, config, Arc::new(crate::clock::SystemClock))
    }

    pub fn dependency(&self) -> &'static str {
        self.0.dependency
    }

    pub fn config(&self) -> BreakerConfig {
        self.0.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written (every
        // update is one assignment), so a poisoned lock is still sound to use.
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the dependency is believed up (closed).
    pub fn is_up(&self) -> bool {
        matches!(*self.lock(), State::Closed { .. })
    }

    /// Permission for a call, or `Unavailable` at once while the dependency is down and
    /// no trial is due.
    pub fn admit(&self) -> PortResult<Ticket> {
        self.admit_as(false)
    }

    /// Like `admit`, for a health probe: a probe that cannot reach the dependency opens
    /// the breaker at once.
    pub fn admit_probe(&self) -> PortResult<Ticket> {
        self.admit_as(true)
    }

    fn admit_as(&self, probe: bool) -> PortResult<Ticket> {
        let now = self.0.clock.now_ms();
        let mut state = self.lock();
        let trial = match *state {
            State::Closed { .. } => false,
            _ if self.0.config.failures_to_open == 0 => false,
            State::Open {
                retry_at_ms,
                since_ms,
            } if probe && now >= retry_at_ms => {
                *state = State::Trial { since_ms };
                true
            }
            State::Open { retry_at_ms, .. } => {
                let wait_ms = (retry_at_ms - now).max(0);
                return Err(self.fail_fast(format!("next check within {wait_ms} ms")));
            }
            State::Trial { .. } => return Err(self.fail_fast("a check is under way".into())),
        };
        Ok(Ticket {
            breaker: self.clone(),
            trial,
            probe,
            outcome: AtomicU8::new(UNSETTLED),
            started: std::time::Instant::now(),
        })
    }

    fn fail_fast(&self, next: String) -> PortError {
        PortError::unavailable(
            self.0.dependency,
            format!("{FAILING_FAST}: it did not answer recently ({next})"),
        )
    }

    fn on_reached(&self) {
        let now = self.0.clock.now_ms();
        let mut state = self.lock();
        let down_since = match *state {
            State::Closed { .. } => None,
            State::Open { since_ms, .. } | State::Trial { since_ms } => Some(since_ms),
        };
        *state = State::Closed { failures: 0 };
        drop(state);
        if let Some(since) = down_since {
            tracing::info!(
                dependency = self.0.dependency,
                down_for_ms = now - since,
                "dependency answers again"
            );
            self.0.up.send_replace(true);
            metrics::gauge!("plotq_dependency_up", "dependency" => self.0.dependency).set(1.0);
            metrics::counter!("plotq_dependency_recoveries_total", "dependency" => self.0.dependency)
                .increment(1);
        }
    }

    fn on_unreached(&self, opens_at_once: bool) {
        let config = self.0.config;
        if config.failures_to_open == 0 {
            return;
        }
        let now = self.0.clock.now_ms();
        let retry_at_ms = now.saturating_add(config.cooldown.as_millis() as i64);
        let mut state = self.lock();
        match *state {
            State::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= config.failures_to_open || opens_at_once {
                    *state = State::Open {
                        retry_at_ms,
                        since_ms: now,
                    };
                    drop(state);
                    tracing::warn!(
                        dependency = self.0.dependency,
                        failures,
                        "dependency down; failing fast and checking it every {} ms",
                        config.cooldown.as_millis()
                    );
                    self.0.up.send_replace(false);
                    metrics::gauge!("plotq_dependency_up", "dependency" => self.0.dependency)
                        .set(0.0);
                } else {
                    *state = State::Closed { failures };
                }
            }
            State::Open { since_ms, .. } | State::Trial { since_ms } => {
                *state = State::Open {
                    retry_at_ms,
                    since_ms,
                };
            }
        }
    }

    fn release_trial(&self) {
        let mut state = self.lock();
        if let State::Trial { since_ms } = *state {
            *state = State::Open {
                retry_at_ms: i64::MIN,
                since_ms,
            };
        }
    }

    /// Waits until the dependency is believed up, at most `within`; whether it is.
    /// Someone must be calling it meanwhile (the background prober does).
    pub async fn wait_up(&self, within: Duration) -> bool {
        let mut up = self.0.up.subscribe();
        tokio::time::timeout(within, up.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Probes the dependency with `ping` every `cooldown` while it is believed down (and
    /// every `5 × cooldown` while up, so an outage is noticed without waiting for a
    /// request) until `stop` resolves. `ping` must go through `admit_probe`.
    pub async fn keep_probing<F, Fut>(&self, ping: F, stop: impl std::future::Future<Output = ()>)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = PortResult<()>>,
    {
        let mut stop = std::pin::pin!(stop);
        let cooldown = self.0.config.cooldown.max(Duration::from_millis(10));
        let mut up = self.0.up.subscribe();
        loop {
            if self.is_up() {
                // Up: a check every five cooldowns, or sooner when calls find it down.
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(cooldown * 5) => {}
                    _ = up.wait_for(|up| !*up) => continue,
                }
            } else {
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(cooldown) => {}
                }
            }
            let _ = ping().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn breaker(clock: &ManualClock) -> Breaker {
        Breaker::new(
            "redis",
            BreakerConfig {
                failures_to_open: 3,
                cooldown: Duration::from_secs(1),
            },
            Arc::new(clock.clone()),
        )
    }

    fn fail(b: &Breaker) {
        b.admit().unwrap().reached(false);
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        fail(&b);
        fail(&b);
        b.admit().unwrap().reached(true);
        fail(&b);
        fail(&b);
        assert!(b.is_up(), "a success in between resets the count");
        fail(&b);
        assert!(!b.is_up());
        let e = b.admit().unwrap_err();
        assert_eq!(e.dependency(), "redis");
        assert!(matches!(e, PortError::Unavailable { .. }));
    }

    #[test]
    fn a_failed_probe_opens_at_once() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        b.admit_probe().unwrap().reached(false);
        assert!(!b.is_up());
    }

    #[test]
    fn errors_the_dependency_answered_keep_it_up() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        for _ in 0..10 {
            let t = b.admit().unwrap();
            let _ = t.settle::<()>(Err(PortError::refused("redis", "no")));
        }
        assert!(b.is_up());
    }

    #[test]
    fn after_the_cooldown_one_probe_is_the_trial_and_requests_still_fail_fast() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        b.admit_probe().unwrap().reached(false);
        clock.advance(Duration::from_millis(999));
        assert!(b.admit_probe().is_err(), "still cooling down");
        clock.advance(Duration::from_millis(1));
        assert!(b.admit().is_err(), "a request is never the trial");
        let trial = b.admit_probe().expect("the trial");
        assert!(b.admit().is_err(), "requests fail fast during the trial");
        assert!(b.admit_probe().is_err(), "only one trial at a time");
        trial.reached(false);
        drop(trial);
        assert!(
            b.admit_probe().is_err(),
            "a failed trial opens it for another cooldown"
        );
        clock.advance(Duration::from_secs(1));
        b.admit_probe().unwrap().reached(true);
        assert!(b.is_up());
        assert!(b.admit().is_ok());
    }

    #[test]
    fn a_cancelled_trial_lets_the_next_probe_try() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        b.admit_probe().unwrap().reached(false);
        clock.advance(Duration::from_secs(1));
        drop(b.admit_probe().unwrap()); // cancelled: nothing recorded
        let next = b.admit_probe().expect("tried again at once");
        next.reached(true);
        drop(next);
        assert!(b.is_up());
    }

    #[test]
    fn one_unreached_command_makes_the_call_unreached() {
        let clock = ManualClock::new(0);
        let b = Breaker::new(
            "mongodb",
            BreakerConfig {
                failures_to_open: 1,
                cooldown: Duration::from_secs(1),
            },
            Arc::new(clock.clone()),
        );
        let t = b.admit().unwrap();
        t.reached(false);
        t.reached(true);
        drop(t);
        assert!(!b.is_up());
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let clock = ManualClock::new(0);
        let b = Breaker::new(
            "rabbitmq",
            BreakerConfig {
                failures_to_open: 0,
                cooldown: Duration::from_secs(1),
            },
            Arc::new(clock),
        );
        for _ in 0..10 {
            b.admit_probe().unwrap().reached(false);
        }
        assert!(b.is_up());
    }

    #[tokio::test]
    async fn waiters_wake_when_the_dependency_is_back() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        b.admit_probe().unwrap().reached(false);
        assert!(!b.wait_up(Duration::from_millis(20)).await);
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.wait_up(Duration::from_secs(30)).await }
        });
        clock.advance(Duration::from_secs(1));
        b.admit_probe().unwrap().reached(true);
        assert!(waiter.await.unwrap());
    }
}
