//! Where a request's time went, by part (`db`, `cache`, `broker`, or a job's stages),
//! for the HTTP `Server-Timing` header: a task-local collector the HTTP edge opens
//! around each request (`scope`), which every breaker `Ticket` (one per call to a
//! dependency) and the handlers add to. Outside a scope, recording does nothing, so the
//! adapters need not know whether they serve a request.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

tokio::task_local! {
    static TIMINGS: Arc<Mutex<Timings>>;
}

/// The parts of one request, in the order first seen; repeated parts add up.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timings {
    /// `(name, description, milliseconds)`.
    pub parts: Vec<(&'static str, Option<&'static str>, f64)>,
}

impl Timings {
    pub fn add(&mut self, name: &'static str, desc: Option<&'static str>, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        match self.parts.iter_mut().find(|(n, _, _)| *n == name) {
            Some(part) => {
                part.2 += ms;
                if desc.is_some() {
                    part.1 = desc;
                }
            }
            None => self.parts.push((name, desc, ms)),
        }
    }
}

/// Runs `fut` with a fresh collector; returns its output and what was recorded.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Timings) {
    let timings = Arc::new(Mutex::new(Timings::default()));
    let out = TIMINGS.scope(timings.clone(), fut).await;
    let recorded = timings.lock().map(|t| t.clone()).unwrap_or_default();
    (out, recorded)
}

/// Adds `elapsed` (and a description such as `hit`) to the part `name` of the current
/// request, if any.
pub fn record(name: &'static str, desc: Option<&'static str>, elapsed: Duration) {
    record_ms(name, desc, elapsed.as_secs_f64() * 1000.0);
}

/// [`record`] in milliseconds (parts measured elsewhere, e.g. a job's stages).
pub fn record_ms(name: &'static str, desc: Option<&'static str>, ms: f64) {
    let _ = TIMINGS.try_with(|t| {
        if let Ok(mut t) = t.lock() {
            t.add(name, desc, ms);
        }
    });
}

/// The part a dependency's calls are recorded under.
pub fn part_of(dependency: &'static str) -> &'static str {
    match dependency {
        "mongodb" => "db",
        "redis" => "cache",
        "rabbitmq" => "broker",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_add_up_inside_a_scope_and_are_ignored_outside() {
        record("db", None, Duration::from_millis(5));
        let ((), t) = scope(async {
            record("cache", None, Duration::from_millis(1));
            record("db", None, Duration::from_millis(2));
            record_ms("cache", Some("hit"), 0.5);
            record_ms("db", None, f64::NAN);
        })
        .await;
        assert_eq!(
            t.parts,
            vec![("cache", Some("hit"), 1.5), ("db", None, 2.0)]
        );
    }
}
