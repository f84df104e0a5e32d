//! Where the tailer is: a file's identity (`FileId`: device and inode), the state file's
//! content (`Position`: identity, generation, offset, the batch pending confirmation) and
//! the generations that key idempotent batches; and finding a file again after a restart
//! (`find_by_id`, a rotated file by its inode) or where a new one's whole lines end.

use serde_json::{Value, json};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most directory entries searched for a file rotated while the tailer was down.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Which file: device and inode (on Unix; elsewhere rotation is seen only by shrinking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    pub(super) dev: u64,
    pub(super) ino: u64,
}

impl FileId {
    #[cfg(unix)]
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    pub(super) fn of(_meta: &std::fs::Metadata) -> Self {
        Self { dev: 0, ino: 0 }
    }
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) id: FileId,
    pub(super) generation: String,
    /// Lines before this offset are stored (or were skipped as too long).
    pub(super) offset: u64,
    /// A batch `[offset, pending_end)` was sent and not yet confirmed.
    pub(super) pending_end: Option<u64>,
}

impl Position {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "v": 1,
            "dev": self.id.dev,
            "ino": self.id.ino,
            "generation": self.generation,
            "offset": self.offset,
            "pending_end": self.pending_end,
        })
    }

    pub(super) fn from_json(v: &Value) -> Option<Self> {
        if v["v"] != 1 {
            return None;
        }
        let generation = v["generation"].as_str()?;
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let offset = v["offset"].as_u64()?;
        let pending_end = match &v["pending_end"] {
            Value::Null => None,
            end => Some(end.as_u64().filter(|e| *e > offset)?),
        };
        Some(Self {
            id: FileId {
                dev: v["dev"].as_u64()?,
                ino: v["ino"].as_u64()?,
            },
            generation: generation.to_owned(),
            offset,
            pending_end,
        })
    }
}

pub(super) fn new_generation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The file in `path`'s directory with identity `id`, if any.
pub(super) fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
    if cfg!(not(unix)) {
        return None;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::read_dir(dir)
        .ok()?
        .take(MAX_DIR_ENTRIES)
        .filter_map(Result::ok)
        .find(|entry| {
            std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file() && FileId::of(&m) == id)
        })
        .map(|entry| entry.path())
}

/// The offset just past the file's last newline (where the next whole line begins).
pub(super) fn end_of_last_line(file: &mut File) -> anyhow::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(nl) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + nl as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bad_ones_are_refused() {
        let pos = Position {
            id: FileId { dev: 7, ino: 99 },
            generation: "abc123".into(),
            offset: 42,
            pending_end: Some(50),
        };
        assert_eq!(Position::from_json(&pos.to_json()), Some(pos.clone()));
        let mut v = pos.to_json();
        v["pending_end"] = json!(10);
        assert_eq!(Position::from_json(&v), None);
        v["pending_end"] = Value::Null;
        v["generation"] = json!("../x");
        assert_eq!(Position::from_json(&v), None);
        assert_eq!(Position::from_json(&json!({"v": 2})), None);
    }

    #[test]
    fn new_files_start_after_their_last_whole_line() {
        let dir = std::env::temp_dir().join(format!("plotq-tail-{}", new_generation()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        for (content, end) in [("", 0), ("abc", 0), ("a\nb\n", 4), ("a\nbc", 2)] {
            std::fs::write(&path, content).unwrap();
            let mut f = File::open(&path).unwrap();
            assert_eq!(end_of_last_line(&mut f).unwrap(), end, "{content:?}");
        }
        let id = FileId::of(&std::fs::metadata(&path).unwrap());
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        assert_eq!(find_by_id(&path, id), Some(dir.join("a.log.1")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
