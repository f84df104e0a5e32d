//! `Probe`, one named readiness check of a dependency, and running a role's probes at
//! once, each bounded by a timeout. `/readyz` (`health.rs`) and the health report
//! (`status.rs`) both ask through here; each logs what it found in its own way.

use futures::future::BoxFuture;
use plotq_ports::{PortError, PortResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One named readiness check.
#[derive(Clone)]
pub struct Probe {
    pub name: &'static str,
    pub check: Arc<dyn Fn() -> BoxFuture<'static, PortResult<()>> + Send + Sync>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish()
    }
}

/// How long one dependency may take to answer before it is reported failing.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What one probe found.
pub(crate) struct Probed {
    pub name: &'static str,
    /// From the start of the check to its answer (or the timeout), ms, in hundredths.
    pub rtt_ms: f64,
    pub outcome: Result<(), ProbeFailure>,
}

/// Why a probe failed.
pub(crate) enum ProbeFailure {
    /// The dependency's error.
    Failed(PortError),
    /// No answer within the timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(e) => e.fmt(f),
            Self::TimedOut(timeout) => write!(f, "no answer within {timeout:?}"),
        }
    }
}

impl Probed {
    /// What the dependency said when failing (or that it did not answer).
    pub fn problem(&self) -> Option<String> {
        self.outcome.as_ref().err().map(ToString::to_string)
    }
}

/// Runs every probe at once, each bounded by `timeout`, in the probes' order.
pub(crate) async fn probe_all(probes: &[Probe], timeout: Duration) -> Vec<Probed> {
    futures::future::join_all(probes.iter().map(|p| async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, (p.check)()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ProbeFailure::Failed(e)),
            Err(_) => Err(ProbeFailure::TimedOut(timeout)),
        };
        Probed {
            name: p.name,
            rtt_ms: (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
            outcome,
        }
    }))
    .await
}
