//! One file being read (`Source`): the bytes read past the stored offset, the batches
//! due from them (whole lines within both caps, or the pending batch byte for byte) and
//! lines too long to send skipped to their newline. Sends nothing; saves nothing.

use super::position::{FileId, Position};
use crate::config::tail::LONGEST_LINE;
use anyhow::Context;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One file being read.
pub(super) struct Source {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) id: FileId,
    pub(super) generation: String,
    /// Everything before is stored (or skipped).
    pub(super) offset: u64,
    /// Bytes `[offset, offset + buf.len())`, read and not yet stored.
    pub(super) buf: Vec<u8>,
    /// The first batch must end here (a batch sent before a restart, unconfirmed).
    pub(super) forced_end: Option<u64>,
    /// Inside a line too long to send: drop bytes up to its newline.
    pub(super) skipping: bool,
    /// When the first complete line in `buf` was seen.
    pub(super) waiting_since: Option<Instant>,
}

impl Source {
    pub(super) fn open(path: &Path, generation: String, offset: u64) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let id = FileId::of(&file.metadata()?);
        Ok(Self {
            file,
            path: path.to_owned(),
            id,
            generation,
            offset,
            buf: Vec::new(),
            forced_end: None,
            skipping: false,
            waiting_since: None,
        })
    }

    pub(super) fn position(&self, pending_end: Option<u64>) -> Position {
        Position {
            id: self.id,
            generation: self.generation.clone(),
            offset: self.offset,
            pending_end,
        }
    }

    pub(super) fn len(&self) -> anyhow::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Reads what was appended, up to `cap` buffered bytes; how many bytes were read.
    pub(super) fn fill(&mut self, cap: usize) -> anyhow::Result<usize> {
        // A batch pending from before a restart is re-sent whole, whatever the cap is now.
        let pending = self
            .forced_end
            .and_then(|end| usize::try_from(end.saturating_sub(self.offset)).ok())
            .unwrap_or(0);
        let cap = cap.max(pending);
        let mut total = 0;
        let mut chunk = vec![0; 64 * 1024];
        while self.buf.len() < cap {
            let want = chunk.len().min(cap - self.buf.len());
            self.file
                .seek(SeekFrom::Start(self.offset + self.buf.len() as u64))?;
            let n = self.file.read(&mut chunk[..want])?;
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            total += n;
        }
        Ok(total)
    }

    /// Drops lines too long to send (counted in `too_long`); `true` when it dropped bytes.
    pub(super) fn drop_long_lines(&mut self, too_long: &mut u64) -> bool {
        let mut dropped = false;
        loop {
            if self.skipping {
                let through = match memchr(&self.buf) {
                    Some(nl) => {
                        self.skipping = false;
                        nl + 1
                    }
                    None => self.buf.len(),
                };
                self.buf.drain(..through);
                self.offset += through as u64;
                dropped |= through > 0;
                if self.skipping {
                    return dropped;
                }
            }
            let first_line = memchr(&self.buf).unwrap_or(self.buf.len());
            if first_line <= LONGEST_LINE || self.forced_end.is_some() {
                return dropped;
            }
            tracing::warn!(
                offset = self.offset,
                "a line longer than {LONGEST_LINE} bytes is skipped"
            );
            *too_long += 1;
            self.skipping = true;
        }
    }

    /// The batch to send now, `(end, lines)` within `buf`, if one is due. `all`: send
    /// every buffered byte, the last partial line too (the file will not grow any more).
    pub(super) fn due_batch(
        &mut self,
        lines_cap: usize,
        bytes_cap: usize,
        interval: Duration,
        all: bool,
    ) -> Option<(usize, usize)> {
        if let Some(end) = self.forced_end {
            let len = usize::try_from(end - self.offset).ok()?;
            return (self.buf.len() >= len).then(|| (len, count_lines(&self.buf[..len])));
        }
        let (mut end, mut lines) = (0, 0);
        let mut full = false;
        while let Some(nl) = memchr(&self.buf[end..]) {
            if lines == lines_cap || end + nl + 1 > bytes_cap {
                full = true;
                break;
            }
            end += nl + 1;
            lines += 1;
        }
        // A buffer read up to the cap is as full as it gets.
        full |= lines > 0 && self.buf.len() >= bytes_cap;
        if all && !full && end < self.buf.len() && self.buf.len() <= bytes_cap {
            // The partial last line of a file that is done.
            return Some((self.buf.len(), lines + 1));
        }
        if lines == 0 {
            self.waiting_since = None;
            return None;
        }
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        (full || lines == lines_cap || all || since.elapsed() >= interval).then_some((end, lines))
    }

    /// The batch `[0, end)` of `buf` is stored: move past it.
    pub(super) fn commit(&mut self, end: usize) {
        self.buf.drain(..end);
        self.offset += end as u64;
        self.forced_end = None;
        self.waiting_since = None;
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::tail::position::new_generation;

    fn source_with(buf: &[u8]) -> Source {
        let file = File::open("/dev/null").expect("/dev/null");
        Source {
            id: FileId::of(&file.metadata().unwrap()),
            file,
            path: PathBuf::from("/dev/null"),
            generation: "g".into(),
            offset: 100,
            buf: buf.to_vec(),
            forced_end: None,
            skipping: false,
            waiting_since: None,
        }
    }

    #[test]
    fn batches_take_whole_lines_within_both_caps() {
        let mut s = source_with(b"aa\nbb\ncc\ndd");
        let wait = Duration::from_secs(3600);
        // Full by lines: sent at once.
        assert_eq!(s.due_batch(2, 100, wait, false), Some((6, 2)));
        // Full by bytes (the next line would pass the cap).
        assert_eq!(s.due_batch(10, 7, wait, false), Some((6, 2)));
        // Not full, not waited long: nothing yet; once waited: the whole lines.
        assert_eq!(s.due_batch(10, 100, wait, false), None);
        assert_eq!(s.due_batch(10, 100, Duration::ZERO, false), Some((9, 3)));
        // A file that is done: the partial last line too.
        assert_eq!(s.due_batch(10, 100, wait, true), Some((11, 4)));
        // An unconfirmed batch from before a restart is sent again byte for byte.
        s.forced_end = Some(103);
        assert_eq!(s.due_batch(1, 100, wait, false), Some((3, 1)));
        s.commit(3);
        assert_eq!(
            (s.offset, s.buf.as_slice(), s.forced_end),
            (103, &b"bb\ncc\ndd"[..], None)
        );
    }

    #[test]
    fn a_pending_batch_is_buffered_whole_whatever_the_cap() {
        let dir = std::env::temp_dir().join(format!("plotq-tail-{}", new_generation()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        // 10 lines of 10 bytes: `line-0000\n` …
        let text: String = (0..10).map(|i| format!("line-{i:04}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        // Unconfirmed before a restart: 7 lines from byte 10, more than the cap (25) now.
        let mut s = Source::open(&path, "g".into(), 10).unwrap();
        s.forced_end = Some(80);
        assert_eq!(s.fill(25).unwrap(), 70);
        assert_eq!(s.buf, text.as_bytes()[10..80]);
        // Sent again byte for byte, whatever the caps are now.
        let wait = Duration::from_secs(3600);
        assert_eq!(s.due_batch(2, 25, wait, false), Some((70, 7)));
        s.commit(70);
        assert_eq!((s.offset, s.buf.len(), s.forced_end), (80, 0, None));
        // Then the cap holds again.
        assert_eq!(s.fill(15).unwrap(), 15);
        assert_eq!(s.buf, text.as_bytes()[80..95]);
        assert_eq!(s.fill(15).unwrap(), 0);
        assert_eq!(s.fill(100).unwrap(), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_newline() {
        let mut long = vec![b'x'; LONGEST_LINE + 10];
        long.extend_from_slice(b"\nok\n");
        let mut s = source_with(&long);
        let mut too_long = 0;
        assert!(s.drop_long_lines(&mut too_long));
        assert_eq!((too_long, s.buf.as_slice()), (1, &b"ok\n"[..]));
        assert_eq!(s.offset, 100 + LONGEST_LINE as u64 + 11);
        // A long line whose end has not been read yet: dropped as it arrives.
        let mut s = source_with(&vec![b'y'; LONGEST_LINE + 1]);
        assert!(s.drop_long_lines(&mut too_long));
        assert!(s.skipping && s.buf.is_empty());
        s.buf.extend_from_slice(b"yyy\nnext\n");
        assert!(s.drop_long_lines(&mut too_long));
        assert_eq!(
            (too_long, s.buf.as_slice(), s.skipping),
            (2, &b"next\n"[..], false)
        );
    }
}
