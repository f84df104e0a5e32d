//! Following a file (`Tailer`): read, send each due batch through the `Sender`, keep
//! the state file (pending before sending, the new offset after the api's 2xx), see
//! rotation (rename + create, copytruncate) and drain the old file before the new one;
//! resume after a restart (`resume`); count what happened for the summary lines.

use super::position::{FileId, Position, end_of_last_line, find_by_id, new_generation};
use super::sender::{Counts, Sender};
use super::source::Source;
use crate::config::tail::TailArgs;
use anyhow::Context;
use serde_json::{Value, json};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Counters since the last summary line.
#[derive(Debug, Default)]
pub(super) struct Summary {
    batches: u64,
    counts: Counts,
    too_long: u64,
    retries: u64,
    rotations: u64,
    last_print: Option<Instant>,
    every: Duration,
}

impl Summary {
    /// Prints the line if its period has passed (or `last`, with anything to say).
    pub(super) fn print(&mut self, source: &Source, last: bool) {
        let due = self.last_print.is_none_or(|t| t.elapsed() >= self.every);
        let anything = self.batches + self.too_long + self.retries + self.rotations > 0;
        if !(anything && (due || last)) {
            return;
        }
        let c = self.counts;
        println!(
            "{}",
            json!({
                "file": source.path.display().to_string(),
                "offset": source.offset,
                "batches": self.batches,
                "lines": c.lines,
                "accepted": c.accepted,
                "skipped": c.skipped,
                "malformed": c.malformed,
                "samples": c.samples,
                "too_long": self.too_long,
                "retries": self.retries,
                "rotations": self.rotations,
            })
        );
        *self = Self {
            last_print: Some(Instant::now()),
            every: self.every,
            ..Self::default()
        };
    }
}

pub(super) struct Tailer {
    path: PathBuf,
    state_path: PathBuf,
    pub(super) current: Source,
    /// Set while `current` is a rotated-away (or truncated) file being drained: since
    /// when it was seen at its end.
    draining: Option<Drain>,
    lines_cap: usize,
    bytes_cap: usize,
    interval: Duration,
    poll: Duration,
    pub(super) summary: Summary,
}

/// What comes after the file being drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The file now at the path, from its start.
    Successor,
    /// The same file, truncated: from its start, as a new generation.
    Truncated,
}

#[derive(Debug)]
struct Drain {
    next: Next,
    /// When the drained file was last seen to grow (or the drain began).
    quiet_since: Instant,
}

impl Tailer {
    /// Opens the file at the position the state file records, or at its start
    /// (`--from-start`) or end.
    pub(super) fn start(args: &TailArgs, state_path: PathBuf) -> anyhow::Result<Self> {
        let path = args.file.clone();
        let saved = match std::fs::read(&state_path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| Position::from_json(&v))
                    .with_context(|| {
                        format!(
                            "{} is not a plotq tail state file (remove it to start over)",
                            state_path.display()
                        )
                    })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context(format!("cannot read {}", state_path.display())),
        };
        let (current, draining) = match saved {
            None => {
                let mut source = Source::open(&path, new_generation(), 0)?;
                if !args.from_start {
                    source.offset = end_of_last_line(&mut source.file)?;
                }
                (source, None)
            }
            Some(pos) => resume(&path, pos)?,
        };
        let tailer = Self {
            path,
            state_path,
            current,
            draining,
            lines_cap: args.batch_lines,
            bytes_cap: args.batch_bytes,
            interval: args.interval,
            poll: args.poll,
            summary: Summary {
                every: args.summary_every,
                ..Summary::default()
            },
        };
        let pending = tailer.current.forced_end;
        tailer.save(pending)?;
        tracing::info!(
            file = %tailer.current.path.display(),
            offset = tailer.current.offset,
            state = %tailer.state_path.display(),
            "following"
        );
        Ok(tailer)
    }

    fn save(&self, pending_end: Option<u64>) -> anyhow::Result<()> {
        let json = self.current.position(pending_end).to_json().to_string();
        let mut tmp = self.state_path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(json.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.state_path)
        };
        write().with_context(|| format!("cannot write {}", self.state_path.display()))
    }

    pub(super) async fn follow(
        &mut self,
        sender: &Sender,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let cap = self.bytes_cap;
        while !shutdown.is_cancelled() {
            let read = self.current.fill(cap)?;
            if self.current.drop_long_lines(&mut self.summary.too_long) {
                self.save(None)?;
                continue;
            }
            let finishing = self.draining.as_ref().is_some_and(|d| {
                read == 0 && d.quiet_since.elapsed() >= self.poll.max(Duration::from_millis(100))
            });
            if let Some(d) = &mut self.draining
                && read > 0
            {
                d.quiet_since = Instant::now();
            }
            if let Some((end, _lines)) =
                self.current
                    .due_batch(self.lines_cap, self.bytes_cap, self.interval, finishing)
            {
                if !self.send(sender, shutdown, end).await? {
                    return Ok(());
                }
                continue;
            }
            if read > 0 && self.current.buf.len() < cap {
                continue;
            }
            if finishing && self.current.buf.is_empty() {
                self.switch()?;
                continue;
            }
            if read == 0 && self.draining.is_none() {
                self.check_rotation()?;
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                () = shutdown.cancelled() => {}
            }
        }
        Ok(())
    }

    /// Sends `buf[..end]`; `false` when stopped before the api confirmed it.
    async fn send(
        &mut self,
        sender: &Sender,
        shutdown: &CancellationToken,
        end: usize,
    ) -> anyhow::Result<bool> {
        let source = &self.current;
        let pending_end = source.offset + end as u64;
        self.save(Some(pending_end))?;
        let key = format!("caddy-tail-{}-{}", source.generation, source.offset);
        let body = axum::body::Bytes::copy_from_slice(&source.buf[..end]);
        let Some(counts) = sender
            .send(body, &key, shutdown, &mut self.summary.retries)
            .await
            .with_context(|| {
                format!(
                    "lines from byte {} of {} were not stored",
                    source.offset,
                    source.path.display()
                )
            })?
        else {
            return Ok(false);
        };
        self.current.commit(end);
        self.save(None)?;
        let s = &mut self.summary;
        s.batches += 1;
        s.counts.lines += counts.lines;
        s.counts.accepted += counts.accepted;
        s.counts.skipped += counts.skipped;
        s.counts.malformed += counts.malformed;
        s.counts.samples += counts.samples;
        s.print(&self.current, false);
        Ok(true)
    }

    /// At the end of the file: has it been rotated away or truncated?
    fn check_rotation(&mut self) -> anyhow::Result<()> {
        let len = self.current.len()?;
        if len < self.current.offset + self.current.buf.len() as u64 {
            tracing::info!(file = %self.path.display(), "the file was truncated; reading it again from its start");
            self.draining = Some(Drain {
                next: Next::Truncated,
                quiet_since: Instant::now(),
            });
            return Ok(());
        }
        match std::fs::metadata(&self.path) {
            Ok(meta) if FileId::of(&meta) != self.current.id => {
                tracing::info!(file = %self.path.display(), "the file was rotated; reading the old one to its end");
                self.draining = Some(Drain {
                    next: Next::Successor,
                    quiet_since: Instant::now(),
                });
            }
            // Renamed and not created again yet: keep reading the old one.
            Ok(_) | Err(_) => {}
        }
        Ok(())
    }

    /// The drained file is done: follow what comes next.
    fn switch(&mut self) -> anyhow::Result<()> {
        let Some(drain) = self.draining.take() else {
            return Ok(());
        };
        match drain.next {
            Next::Truncated => {
                self.current.generation = new_generation();
                self.current.offset = 0;
                self.current.buf.clear();
            }
            Next::Successor => {
                self.current = match Source::open(&self.path, new_generation(), 0) {
                    Ok(source) => source,
                    Err(e) => {
                        // Gone again: wait for it (the drained file is kept meanwhile).
                        tracing::warn!(error = %e, "the rotated file's successor cannot be opened yet");
                        self.draining = Some(Drain {
                            next: Next::Successor,
                            quiet_since: Instant::now(),
                        });
                        return Ok(());
                    }
                };
            }
        }
        self.summary.rotations += 1;
        self.save(None)
    }
}

/// The source to read after a restart at `pos`, and whether it is a file to drain first.
fn resume(path: &Path, pos: Position) -> anyhow::Result<(Source, Option<Drain>)> {
    let at_path = std::fs::metadata(path).ok().map(|m| FileId::of(&m));
    let (source_path, draining) = if at_path == Some(pos.id) {
        (path.to_owned(), None)
    } else if let Some(old) = find_by_id(path, pos.id) {
        tracing::info!(old = %old.display(), "the file was rotated while stopped; draining the old one first");
        let drain = Drain {
            next: Next::Successor,
            quiet_since: Instant::now(),
        };
        (old, Some(drain))
    } else {
        tracing::warn!(
            file = %path.display(),
            "the file followed before was rotated away and is gone; reading the new one from its start"
        );
        return Ok((Source::open(path, new_generation(), 0)?, None));
    };
    let mut source = Source::open(&source_path, pos.generation, pos.offset)?;
    let len = source.len()?;
    let needed = pos.pending_end.unwrap_or(pos.offset);
    if len < needed {
        tracing::warn!(
            file = %source_path.display(),
            "the file shrank while stopped (truncated); reading it from its start"
        );
        source.generation = new_generation();
        source.offset = 0;
        return Ok((source, draining));
    }
    source.forced_end = pos.pending_end;
    Ok((source, draining))
}
