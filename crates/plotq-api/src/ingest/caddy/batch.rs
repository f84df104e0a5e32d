//! A body of access-log lines (NDJSON) read at once ([`parse_access_log`]): every
//! non-blank line counted as accepted, skipped or malformed, the samples of the accepted
//! ones in line order, the first malformed ones reported with their line numbers. Pure,
//! and bounded: at most [`MAX_LINES`] lines, so that their samples fit one ingest batch.

use super::line::{Line, parse_line};
use super::map::{SAMPLES_PER_ENTRY, ServiceMap};
use plotq_domain::Sample;
use plotq_domain::sample::MAX_BATCH;
use serde::Serialize;

/// Most non-blank lines in one batch: their samples fit one ingest batch.
pub const MAX_LINES: usize = MAX_BATCH / SAMPLES_PER_ENTRY;
/// Most malformed lines reported (with their numbers) for one batch; the count says how
/// many there were in all.
pub const MAX_LINE_ERRORS: usize = 20;

/// A malformed line of a batch: its number (1-based, counting every line of the body)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: usize,
    /// The field (`/ts`, `/request/host`, …; empty for the whole line).
    pub field: String,
    /// `<field>: <problem>`, or the problem of the whole line.
    pub problem: String,
}

/// What a batch of lines held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessLogBatch {
    /// Non-blank lines read (= accepted + skipped + malformed).
    pub lines: usize,
    pub accepted: usize,
    pub skipped: usize,
    pub malformed: usize,
    /// [`SAMPLES_PER_ENTRY`] per accepted line, in line order.
    pub samples: Vec<Sample>,
    /// The first [`MAX_LINE_ERRORS`] malformed lines.
    pub errors: Vec<LineError>,
}

/// Parses a body of newline-separated lines (NDJSON; `\r\n` too). Blank lines are not
/// counted, but line numbers count them, so a reported number is the line in the body.
/// Malformed lines are counted and reported, never fatal; the only error is a body of
/// more than [`MAX_LINES`] non-blank lines (checked before any line is parsed).
pub fn parse_access_log(
    body: &[u8],
    map: &ServiceMap,
    now_ms: i64,
) -> Result<AccessLogBatch, String> {
    let lines = || {
        body.split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
    };
    let n = lines().count();
    if n > MAX_LINES {
        return Err(format!(
            "the body has {n} lines; the limit is {MAX_LINES} (send smaller batches)"
        ));
    }
    let mut batch = AccessLogBatch {
        lines: n,
        ..AccessLogBatch::default()
    };
    for (number, line) in lines() {
        let outcome = parse_line(line, now_ms).and_then(|parsed| match parsed {
            Line::Access(entry) => map.samples(&entry).map(Some),
            Line::Skipped(_) => Ok(None),
        });
        match outcome {
            Ok(Some(samples)) => {
                batch.accepted += 1;
                batch.samples.extend(samples);
            }
            Ok(None) => batch.skipped += 1,
            Err(e) => {
                batch.malformed += 1;
                if batch.errors.len() < MAX_LINE_ERRORS {
                    let problem = if e.field.is_empty() {
                        e.problem.clone()
                    } else {
                        e.to_string()
                    };
                    batch.errors.push(LineError {
                        line: number,
                        field: e.field,
                        problem,
                    });
                }
            }
        }
    }
    Ok(batch)
}
