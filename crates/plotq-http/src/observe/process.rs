//! `ProcessInfo`: this process and its host as `sysinfo` reads them (memory, threads,
//! open files, CPUs), for the health report and the `process_*` gauges; and
//! `process_started`.

use serde::Serialize;
use std::sync::OnceLock;
use std::time::Instant;

/// This process and its host, as `sysinfo` reads them (zeros where the platform does
/// not tell).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ProcessInfo {
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_files: u64,
    pub host_memory_total_bytes: u64,
    pub host_memory_available_bytes: u64,
    pub cpus: u64,
}

impl ProcessInfo {
    /// Reads the figures (a few `/proc` reads; call off the reactor).
    pub fn read() -> Self {
        use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, RefreshKind};
        let Ok(pid) = sysinfo::get_current_pid() else {
            return Self::default();
        };
        let mut system = sysinfo::System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_tasks(),
        );
        let mut info = Self {
            host_memory_total_bytes: system.total_memory(),
            host_memory_available_bytes: system.available_memory(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
            ..Self::default()
        };
        if let Some(process) = system.process(pid) {
            info.rss_bytes = process.memory();
            info.virtual_bytes = process.virtual_memory();
            // The main thread is not among the tasks sysinfo lists.
            info.threads = process.tasks().map_or(0, |t| t.len() as u64 + 1);
            info.open_files = process.open_files().unwrap_or(0) as u64;
        }
        info
    }

    /// Sets the `process_*` gauges.
    pub(super) fn export(&self) {
        metrics::gauge!("process_resident_memory_bytes").set(self.rss_bytes as f64);
        metrics::gauge!("process_virtual_memory_bytes").set(self.virtual_bytes as f64);
        metrics::gauge!("process_threads").set(self.threads as f64);
        metrics::gauge!("process_open_fds").set(self.open_files as f64);
        metrics::gauge!("process_uptime_seconds").set(process_started().elapsed().as_secs_f64());
    }
}

/// When this process first observed itself (close enough to its start).
pub fn process_started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}
