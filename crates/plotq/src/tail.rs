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

use anyhow::{Context, bail};
use clap::Args;
use plotq_api::caddy::{MAX_LINE_BYTES, ServiceMap, parse_go_duration};
use plotq_domain::ServiceName;
use plotq_ports::backoff::Backoff;
use serde_json::{Value, json};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// `plotq tail`.
#[derive(Args)]
pub struct TailArgs {
    /// The Caddy access log to follow (JSON format, as the `log` directive writes it).
    pub file: PathBuf,
    /// The api's base URL.
    #[arg(long, env = "PLOTQ_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A token with the `ingest` scope, when the api requires one.
    #[arg(long, env = "PLOTQ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The service of hosts no `--map` names (without it, their lines are malformed).
    #[arg(long)]
    pub service: Option<String>,
    /// `HOST=SERVICE` or `*.SUFFIX=SERVICE` (repeatable): the service of a host.
    #[arg(long = "map", value_name = "HOST=SERVICE")]
    pub map: Vec<String>,
    /// Per-method duration metrics (`http_request_duration_ms.get`).
    #[arg(long)]
    pub metric_per_method: bool,
    /// Without a state file: send the file's existing lines too (default: only new ones).
    #[arg(long)]
    pub from_start: bool,
    /// Where the position is kept, so a restart resumes where it stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Most lines per request (at most 25000).
    #[arg(long, default_value_t = 1000)]
    pub batch_lines: usize,
    /// Most bytes per request (keep it under the api's body limit).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub batch_bytes: usize,
    /// Longest a complete line waits before its batch is sent (`500ms`, `2s`).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// How often the file is checked for new lines and rotation.
    #[arg(long, default_value = "250ms", value_parser = parse_interval)]
    pub poll: Duration,
    /// Shortest time between two summary lines.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub summary_every: Duration,
}

/// The token stays out of every `Debug` (and so out of every log line).
impl std::fmt::Debug for TailArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailArgs")
            .field("file", &self.file)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("service", &self.service)
            .field("map", &self.map)
            .field("metric_per_method", &self.metric_per_method)
            .field("from_start", &self.from_start)
            .field("state", &self.state)
            .field("batch_lines", &self.batch_lines)
            .field("batch_bytes", &self.batch_bytes)
            .field("interval", &self.interval)
            .field("poll", &self.poll)
            .field("summary_every", &self.summary_every)
            .finish()
    }
}

/// A Go-style duration (`250ms`, `1s`, `1m30s`), more than zero.
fn parse_interval(raw: &str) -> Result<Duration, String> {
    match parse_go_duration(raw) {
        Ok(ms) if ms > 0.0 && ms <= 86_400_000.0 => Ok(Duration::from_secs_f64(ms / 1000.0)),
        Ok(_) => Err(format!("{raw:?}: from 1ms to 24h")),
        Err(e) => Err(e),
    }
}

/// Largest batch: the api reads at most 25,000 lines per request.
const MAX_BATCH_LINES: usize = plotq_api::caddy::MAX_LINES;
/// Smallest `--batch-bytes`: one line of the longest length the api accepts.
const MIN_BATCH_BYTES: usize = MAX_LINE_BYTES + 1;
/// Longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Most directory entries searched for a file rotated while the tailer was down.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Follows `args.file` until `shutdown` (or an api refusal, which is the error).
pub async fn run(args: TailArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let sender = Sender::new(&args)?;
    anyhow::ensure!(
        (1..=MAX_BATCH_LINES).contains(&args.batch_lines),
        "--batch-lines must be from 1 to {MAX_BATCH_LINES}"
    );
    anyhow::ensure!(
        args.batch_bytes >= MIN_BATCH_BYTES,
        "--batch-bytes must be at least {MIN_BATCH_BYTES} (one line of the longest length the api accepts)"
    );
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut name = args.file.as_os_str().to_owned();
        name.push(".plotq-tail");
        PathBuf::from(name)
    });
    let mut tailer = Tailer::start(&args, state_path)?;
    let result = tailer.follow(&sender, &shutdown).await;
    tailer.summary.print(&tailer.current, true);
    result
}

/// The part of the api the tailer talks to.
struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    query: Vec<(&'static str, String)>,
}

/// What the api said about a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    lines: u64,
    accepted: u64,
    skipped: u64,
    malformed: u64,
    samples: u64,
}

impl Sender {
    fn new(args: &TailArgs) -> anyhow::Result<Self> {
        // Checked here with the api's own rules, so a typo stops the tailer at once.
        let default = args
            .service
            .as_deref()
            .map(ServiceName::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--service: {e}"))?;
        let mut map = ServiceMap::new(default);
        for rule in &args.map {
            anyhow::ensure!(!rule.contains(','), "--map {rule:?}: one rule per --map");
            map.add_rule(rule)
                .map_err(|e| anyhow::anyhow!("--map: {e}"))?;
        }
        let mut query = Vec::new();
        if let Some(service) = &args.service {
            query.push(("service", service.clone()));
        }
        if !args.map.is_empty() {
            query.push(("map", args.map.join(",")));
        }
        if args.metric_per_method {
            query.push(("metric_per_method", "true".to_owned()));
        }
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            url: format!("{}/api/v1/ingest/caddy", args.url.trim_end_matches('/')),
            token: args.token.clone(),
            query,
        })
    }

    /// Sends one batch until the api stored it (`Some`), or `shutdown` (`None`); an
    /// error when the api refused it for good.
    async fn send(
        &self,
        body: axum::body::Bytes,
        key: &str,
        shutdown: &CancellationToken,
        retries: &mut u64,
    ) -> anyhow::Result<Option<Counts>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let mut request = self
                .client
                .post(&self.url)
                .query(&self.query)
                .header("content-type", "application/x-ndjson")
                .header("idempotency-key", key)
                .body(body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = tokio::select! {
                r = request.send() => r,
                () = shutdown.cancelled() => return Ok(None),
            };
            let wait = match response {
                Ok(r) if r.status().is_success() => {
                    let body: Value = tokio::select! {
                        b = r.json() => b.context("the api's answer is not JSON")?,
                        () = shutdown.cancelled() => return Ok(None),
                    };
                    let n = |k: &str| body[k].as_u64().unwrap_or(0);
                    if let Some(first) = body["errors"].as_array().and_then(|e| e.first()) {
                        tracing::warn!(
                            malformed = n("malformed"),
                            first_line = %first["line"],
                            problem = %first["problem"],
                            "the batch had malformed lines (numbered within the batch)"
                        );
                    }
                    return Ok(Some(Counts {
                        lines: n("lines"),
                        accepted: n("accepted"),
                        skipped: n("skipped"),
                        malformed: n("malformed"),
                        samples: n("samples"),
                    }));
                }
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                    let problem: Value = r.json().await.unwrap_or(Value::Null);
                    let code = problem["code"].as_str().unwrap_or("").to_owned();
                    let transient = status.is_server_error()
                        || status.as_u16() == 429
                        || code == "idempotency_key_in_use";
                    if !transient {
                        let detail = problem["detail"].as_str().unwrap_or("");
                        let hint = if status.as_u16() == 413 {
                            " (lower --batch-bytes below the api's body limit)"
                        } else {
                            ""
                        };
                        bail!(
                            "the api refused a batch: HTTP {status} {code}: {detail}{hint}; stopping"
                        );
                    }
                    tracing::warn!(%status, code, "the api could not take the batch now; retrying");
                    retry_after.unwrap_or_else(|| backoff.next_delay())
                }
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "cannot reach the api; retrying");
                    backoff.next_delay()
                }
            };
            *retries += 1;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return Ok(None),
            }
        }
    }
}

/// Which file: device and inode (on Unix; elsewhere rotation is seen only by shrinking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Self {
        Self { dev: 0, ino: 0 }
    }
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    id: FileId,
    generation: String,
    /// Lines before this offset are stored (or were skipped as too long).
    offset: u64,
    /// A batch `[offset, pending_end)` was sent and not yet confirmed.
    pending_end: Option<u64>,
}

impl Position {
    fn to_json(&self) -> Value {
        json!({
            "v": 1,
            "dev": self.id.dev,
            "ino": self.id.ino,
            "generation": self.generation,
            "offset": self.offset,
            "pending_end": self.pending_end,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
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

fn new_generation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One file being read.
struct Source {
    file: File,
    path: PathBuf,
    id: FileId,
    generation: String,
    /// Everything before is stored (or skipped).
    offset: u64,
    /// Bytes `[offset, offset + buf.len())`, read and not yet stored.
    buf: Vec<u8>,
    /// The first batch must end here (a batch sent before a restart, unconfirmed).
    forced_end: Option<u64>,
    /// Inside a line too long to send: drop bytes up to its newline.
    skipping: bool,
    /// When the first complete line in `buf` was seen.
    waiting_since: Option<Instant>,
}

impl Source {
    fn open(path: &Path, generation: String, offset: u64) -> anyhow::Result<Self> {
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

    fn position(&self, pending_end: Option<u64>) -> Position {
        Position {
            id: self.id,
            generation: self.generation.clone(),
            offset: self.offset,
            pending_end,
        }
    }

    fn len(&self) -> anyhow::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Reads what was appended, up to `cap` buffered bytes; how many bytes were read.
    fn fill(&mut self, cap: usize) -> anyhow::Result<usize> {
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
    fn drop_long_lines(&mut self, too_long: &mut u64) -> bool {
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
            if first_line <= MAX_LINE_BYTES || self.forced_end.is_some() {
                return dropped;
            }
            tracing::warn!(
                offset = self.offset,
                "a line longer than {MAX_LINE_BYTES} bytes is skipped"
            );
            *too_long += 1;
            self.skipping = true;
        }
    }

    /// The batch to send now, `(end, lines)` within `buf`, if one is due. `all`: send
    /// every buffered byte, the last partial line too (the file will not grow any more).
    fn due_batch(
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
    fn commit(&mut self, end: usize) {
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

/// Counters since the last summary line.
#[derive(Debug, Default)]
struct Summary {
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
    fn print(&mut self, source: &Source, last: bool) {
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

struct Tailer {
    path: PathBuf,
    state_path: PathBuf,
    current: Source,
    /// Set while `current` is a rotated-away (or truncated) file being drained: since
    /// when it was seen at its end.
    draining: Option<Drain>,
    lines_cap: usize,
    bytes_cap: usize,
    interval: Duration,
    poll: Duration,
    summary: Summary,
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
    fn start(args: &TailArgs, state_path: PathBuf) -> anyhow::Result<Self> {
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

    async fn follow(
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

/// The file in `path`'s directory with identity `id`, if any.
fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
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
fn end_of_last_line(file: &mut File) -> anyhow::Result<u64> {
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
        let mut long = vec![b'x'; MAX_LINE_BYTES + 10];
        long.extend_from_slice(b"\nok\n");
        let mut s = source_with(&long);
        let mut too_long = 0;
        assert!(s.drop_long_lines(&mut too_long));
        assert_eq!((too_long, s.buf.as_slice()), (1, &b"ok\n"[..]));
        assert_eq!(s.offset, 100 + MAX_LINE_BYTES as u64 + 11);
        // A long line whose end has not been read yet: dropped as it arrives.
        let mut s = source_with(&vec![b'y'; MAX_LINE_BYTES + 1]);
        assert!(s.drop_long_lines(&mut too_long));
        assert!(s.skipping && s.buf.is_empty());
        s.buf.extend_from_slice(b"yyy\nnext\n");
        assert!(s.drop_long_lines(&mut too_long));
        assert_eq!(
            (too_long, s.buf.as_slice(), s.skipping),
            (2, &b"next\n"[..], false)
        );
    }

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

    #[test]
    fn intervals_are_go_durations() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("48h").is_err());
    }
}
