//! `plotq bench render|store|fairness|ingest|workers|chunks|sse`: the benchmarks, one file each
//! (`render`: drawing and encoding in process; `store`: plots through a worker over the
//! in-memory store; `fairness`: two tenants against a running api; `ingest`: JSON
//! samples against OTLP spans, per api core-second, through a standalone plotq it
//! starts; `workers`: one worker against more on a pre-filled queue, standalone; `chunks`:
//! the chunk formats' size and speed; `sse`: one event to many SSE clients). Each prints one JSON line and asserts nothing. They run without the roles' runtime (each builds what it needs).

pub mod chunks;
pub mod fairness;
pub mod ingest;
pub mod render;
pub mod sse;
pub mod store;
pub mod workers;

use crate::config::tools::BenchCommand;

/// Runs `plotq bench …`.
pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Render(args) => render::run(args),
        BenchCommand::Store(args) => store::run(args),
        BenchCommand::Fairness(args) => fairness::run(args),
        BenchCommand::Ingest(args) => ingest::run(args),
        BenchCommand::Workers(args) => workers::run(args),
        BenchCommand::Chunks(args) => chunks::run(args),
        BenchCommand::Sse(args) => sse::run(args),
    }
}

/// Runs a benchmark's future on a runtime of its own and prints the JSON line it makes.
fn print_line(
    bench: impl std::future::Future<Output = anyhow::Result<serde_json::Value>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = runtime.block_on(bench)?;
    println!("{line}");
    Ok(())
}

/// Fields of `/proc/<process>/status` (`process`: a pid, or `self`), in bytes: e.g.
/// `VmRSS:` and `VmHWM:`, resident and peak resident memory (Linux; 0 when unreadable).
fn memory_fields<const N: usize>(process: &str, names: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    })
}

/// CPU seconds process `process` (a pid, or `self`) has used so far, user and system
/// (Linux's `/proc/<process>/stat`, in its clock ticks of 1/100 s).
fn cpu_seconds(process: &str) -> anyhow::Result<f64> {
    use anyhow::Context;
    const TICKS_PER_SEC: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').context("a /proc stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("utime/stime")?.parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SEC)
}
