//! The part of the api the tailer talks to (`Sender`): one batch a request to
//! `POST /api/v1/ingest/caddy` with its `Idempotency-Key`, retried with backoff (or after
//! `Retry-After`) until stored, refused for good, or stopped; and `Counts`, what the api
//! said about a batch. Knows nothing of files or positions.

use crate::config::tail::TailArgs;
use anyhow::{Context, bail};
use plotq_ports::backoff::Backoff;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The part of the api the tailer talks to.
pub(super) struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    query: Vec<(&'static str, String)>,
}

/// What the api said about a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) lines: u64,
    pub(super) accepted: u64,
    pub(super) skipped: u64,
    pub(super) malformed: u64,
    pub(super) samples: u64,
}

impl Sender {
    /// The requests `args` asks for (`TailArgs::check` has checked them).
    pub(super) fn new(args: &TailArgs) -> anyhow::Result<Self> {
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
    pub(super) async fn send(
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
