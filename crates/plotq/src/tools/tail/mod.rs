//! `plotq tail FILE`: follows a Caddy access log and sends its lines, in batches, to a
//! plotq api's `POST /api/v1/ingest/caddy`, so that every line written to the file is
//! stored once — across rotations, api outages and restarts of the tailer.
//!
//! - **Position.** The state file (`--state`, default `<FILE>.plotq-tail`) holds the
//!   followed file's identity (device and inode), a generation (a random id given to each
//!   file — or each truncation of one — the tailer starts reading), and the offset up to
//!   which lines are stored. It is replaced atomically (write, fsync, rename).
//! - **Exactly once.** A batch is the bytes `[offset, end)`; its `Idempotency-Key` is
//!   `caddy-tail-<generation>-<offset>`. Before sending, the state records `end` as
//!   pending; after the api's 2xx, the offset moves to `end`. A tailer killed in between
//!   sends the very same bytes with the same key when it restarts, which the api stores
//!   once.
//! - **Rotation.** Rename + create: the path's inode changes; the old file is read to its
//!   end (and for one more poll, for a writer that had not reopened yet), its last lines
//!   sent, and only then is the new file followed, from its start. Copytruncate: the file
//!   shrinks below the offset; what was read is sent, then the file is read again from
//!   its start (lines written between the last poll and the copy are lost: that is
//!   copytruncate's race). A file rotated while the tailer was down is found again by its
//!   inode in the same directory and drained first.
//! - **Retries.** Connection errors, `5xx`, `429` and `409 idempotency_key_in_use` are
//!   retried with exponential backoff, or after `Retry-After` when the api sends one
//!   (at most a minute); the batch and its key stay the same, so nothing is lost or
//!   stored twice. Any other `4xx` stops the tailer with the api's problem.
//! - **Bounds.** A batch holds at most `--batch-lines` lines and `--batch-bytes` bytes,
//!   and is sent when full or when its first line has waited `--interval`. A line longer
//!   than the api accepts (64 KiB) is skipped here and counted as `too_long`.
//! - **Output.** One JSON summary line on stdout for the batches of the last
//!   `--summary-every` (at most one per period), and one at the end; Ctrl-C or SIGTERM
//!   stops at once (an unconfirmed batch is sent again on the next start). The token is
//!   never printed or logged.
//!
//! Files: `sender` (the api), `position` (the state file, file identities), `source`
//! (one file's bytes and batches), `follow` (the loop, rotation, resuming); the
//! arguments and their checks are `crate::config::tail`.

mod follow;
mod position;
mod sender;
mod source;

pub use crate::config::tail::TailArgs;

use follow::Tailer;
use sender::Sender;
use tokio_util::sync::CancellationToken;

/// Follows `args.file` until `shutdown` (or an api refusal, which is the error).
pub async fn run(args: TailArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    args.check()?;
    let sender = Sender::new(&args)?;
    let mut tailer = Tailer::start(&args, args.state_path())?;
    let result = tailer.follow(&sender, &shutdown).await;
    tailer.summary.print(&tailer.current, true);
    result
}

#[cfg(test)]
mod tests {
    use super::position::new_generation;
    use super::*;
    use crate::config::tail::MIN_BATCH_BYTES;
    use serde_json::json;
    use std::io::Write;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// What the fake api saw: per key, the body and how often it was sent.
    #[derive(Default)]
    struct Seen {
        bodies: std::collections::BTreeMap<String, (Vec<u8>, u32)>,
        mismatched_retries: u32,
    }

    impl Seen {
        /// The lines stored (a key's third attempt is the one answered 200).
        fn stored_lines(&self) -> Vec<String> {
            self.bodies
                .values()
                .filter(|(_, attempts)| *attempts >= 3)
                .flat_map(|(body, _)| {
                    String::from_utf8_lossy(body)
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect()
        }
    }

    /// An api that answers each new key 503, then 429 with `Retry-After: 0`, then 200.
    async fn flaky_api() -> (String, std::sync::Arc<std::sync::Mutex<Seen>>) {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
        let state = seen.clone();
        let app = axum::Router::new().route(
            "/api/v1/ingest/caddy",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = state.clone();
                async move {
                    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
                    let mut seen = seen.lock().unwrap();
                    let entry = seen.bodies.entry(key).or_insert_with(|| (body.to_vec(), 0));
                    let same = entry.0 == body.as_ref();
                    entry.1 += 1;
                    let attempt = entry.1;
                    if !same {
                        seen.mismatched_retries += 1;
                    }
                    match attempt {
                        1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                        2 => {
                            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response()
                        }
                        _ => {
                            let n = body
                                .split(|b| *b == b'\n')
                                .filter(|l| !l.is_empty())
                                .count();
                            axum::Json(json!({"lines": n, "accepted": n, "samples": 2 * n,
                                "skipped": 0, "malformed": 0, "errors": []}))
                            .into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn append(path: &Path, lines: std::ops::Range<usize>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for i in lines {
            writeln!(f, "line-{i}").unwrap();
        }
    }

    async fn wait_for(seen: &std::sync::Mutex<Seen>, n: usize) {
        let until = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().stored_lines().len() < n {
            assert!(
                Instant::now() < until,
                "{} of {n} lines stored",
                seen.lock().unwrap().stored_lines().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn retries_rotation_and_restarts_store_every_line_once() {
        let (url, seen) = flaky_api().await;
        let dir = std::env::temp_dir().join(format!("plotq-tail-{}", new_generation()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        append(&path, 0..3);
        let tail = |from_start: bool| {
            let args = TailArgs {
                file: path.clone(),
                url: url.clone(),
                token: None,
                service: None,
                map: vec!["*.example.com=web".into()],
                metric_per_method: false,
                from_start,
                state: None,
                batch_lines: 2,
                batch_bytes: MIN_BATCH_BYTES,
                interval: Duration::from_millis(50),
                poll: Duration::from_millis(20),
                summary_every: Duration::from_secs(5),
            };
            let stop = CancellationToken::new();
            (tokio::spawn(run(args, stop.clone())), stop)
        };
        let (task, stop) = tail(true);
        wait_for(&seen, 3).await;
        // Rename + create, with a last line written to the old file after the rename.
        append(&path, 3..5);
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        append(&dir.join("access.log.1"), 5..6);
        append(&path, 6..8);
        wait_for(&seen, 8).await;
        stop.cancel();
        task.await.unwrap().unwrap();
        // Lines written while stopped, and a rotation while stopped: found again.
        append(&path, 8..10);
        std::fs::rename(&path, dir.join("access.log.2")).unwrap();
        append(&path, 10..11);
        let (task, stop) = tail(false);
        wait_for(&seen, 11).await;
        stop.cancel();
        task.await.unwrap().unwrap();
        let seen = seen.lock().unwrap();
        let mut lines = seen.stored_lines();
        lines.sort_by_key(|l| l[5..].parse::<usize>().unwrap());
        let expected: Vec<String> = (0..11).map(|i| format!("line-{i}")).collect();
        assert_eq!(lines, expected);
        assert_eq!(
            seen.mismatched_retries, 0,
            "a key was sent with another body"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
