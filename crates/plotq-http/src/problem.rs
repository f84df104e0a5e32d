//! RFC 9457 problem details: the one error type of every plotq HTTP role, and
//! `ProblemCode`, the closed list of machine-readable codes clients branch on (each with
//! its status and title, so a code always means the same answer on every role).
//!
//! `errors` lists per-field problems for validation failures. 5xx bodies are opaque
//! about internals: they name the dependency that failed, never its reply text, URL or
//! error chain (those are logged).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::{FieldError, FieldErrors};
use plotq_ports::PortError;
use serde::Serialize;

/// Declares `ProblemCode` from one table: each code's variant, its name (the serialised
/// form clients branch on), its status and its title.
macro_rules! problem_codes {
    ($($variant:ident = $code:literal, $status:ident, $title:literal;)+) => {
        /// Every problem code plotq answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode {
            $($variant,)+
        }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(Self::$variant,)+];

            /// `(code, status, title)`: the table every role answers from.
            pub fn describe(self) -> (&'static str, StatusCode, &'static str) {
                match self {
                    $(Self::$variant => ($code, StatusCode::$status, $title),)+
                }
            }
        }
    };
}

problem_codes! {
    MalformedJson = "malformed_json", BAD_REQUEST, "Malformed JSON";
    EmptyBody = "empty_body", BAD_REQUEST, "Empty body";
    UnreadableBody = "unreadable_body", BAD_REQUEST, "Unreadable body";
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE, "Body too large";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "Unsupported media type";
    InvalidField = "invalid_field", UNPROCESSABLE_ENTITY, "Invalid field";
    InvalidId = "invalid_id", BAD_REQUEST, "Invalid job id";
    NotFound = "not_found", NOT_FOUND, "Not found";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "Method not allowed";
    UriTooLong = "uri_too_long", URI_TOO_LONG, "URI too long";
    Unauthorized = "unauthorized", UNAUTHORIZED, "Authentication required";
    Forbidden = "forbidden", FORBIDDEN, "Not allowed";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "Rate limit exceeded";
    TooManyConnections = "too_many_connections", TOO_MANY_REQUESTS, "Too many connections";
    NotReady = "not_ready", CONFLICT, "Plot not ready";
    PlotFailed = "plot_failed", CONFLICT, "Plot failed";
    WrongFormat = "wrong_format", CONFLICT, "Wrong image format";
    Expired = "expired", GONE, "Plot expired";
    StateLost = "state_lost", GONE, "Job state lost";
    DependencyUnavailable = "dependency_unavailable", SERVICE_UNAVAILABLE, "Dependency unavailable";
    DependencyRefused = "dependency_refused", SERVICE_UNAVAILABLE, "Dependency refused the request";
    StoreFull = "store_full", INSUFFICIENT_STORAGE, "Sample store full";
    IdempotencyKeyInUse = "idempotency_key_in_use", CONFLICT, "Idempotency key in use";
    IdempotencyKeyReused = "idempotency_key_reused", UNPROCESSABLE_ENTITY, "Idempotency key reused";
    RenderTimeout = "render_timeout", SERVICE_UNAVAILABLE, "Plot not rendered in time";
    RenderBusy = "render_busy", SERVICE_UNAVAILABLE, "Too many renders waiting";
    OriginNotAllowed = "origin_not_allowed", FORBIDDEN, "Origin not allowed";
    HostNotAllowed = "host_not_allowed", FORBIDDEN, "Host not allowed";
    TooManyJobs = "too_many_jobs", TOO_MANY_REQUESTS, "Too many plot jobs in flight";
    BatchTooSpread = "batch_too_spread", UNPROCESSABLE_ENTITY, "Batch spread over too many time buckets";
    SampleTooOld = "sample_too_old", UNPROCESSABLE_ENTITY, "Sample older than the retention";
    TooManyLabelSets = "too_many_label_sets", UNPROCESSABLE_ENTITY, "Too many label sets for one series";
    Internal = "internal", INTERNAL_SERVER_ERROR, "Internal server error";
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        self.describe().0
    }

    pub fn status(self) -> StatusCode {
        self.describe().1
    }
}

/// A problem+json response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub title: &'static str,
    pub status: u16,
    pub code: ProblemCode,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
    /// Extra members (e.g. the job state for a PNG that is not ready).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<serde_json::Value>>,
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        let (_, status, title) = code.describe();
        Self {
            title,
            status: status.as_u16(),
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            extra: None,
        }
    }

    /// `422 invalid_field` listing every field at fault.
    pub fn invalid(errors: FieldErrors) -> Self {
        let detail = errors.to_string();
        Self {
            errors: errors.0,
            ..Self::new(ProblemCode::InvalidField, detail)
        }
    }

    /// `422 invalid_field` for one field (query parameters, headers).
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        Self::invalid(FieldErrors::one(field, problem))
    }

    pub fn malformed_json(e: &serde_json::Error) -> Self {
        Self::new(
            ProblemCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::NotFound, detail)
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }
}

impl From<PortError> for Problem {
    fn from(e: PortError) -> Self {
        // The error (with the dependency's own words) goes to the log; the client learns
        // which dependency failed and that nothing was accepted. Refusals while a
        // dependency is known down are not logged one by one: its breaker logged the
        // outage once.
        if e.is_failing_fast() {
            tracing::debug!(error = %e, "dependency known down");
        } else {
            tracing::warn!(error = %e, "dependency failed");
        }
        let dependency = e.dependency();
        match &e {
            PortError::Unavailable { .. } => Self::new(
                ProblemCode::DependencyUnavailable,
                format!("{dependency} is unavailable; nothing was accepted, retry later"),
            ),
            PortError::Refused { .. } => Self::new(
                ProblemCode::DependencyRefused,
                format!(
                    "{dependency} refused the request (full, or cannot route it); nothing was accepted, retry later"
                ),
            ),
            PortError::Full { detail, .. } => {
                return Self::new(
                    ProblemCode::StoreFull,
                    format!(
                        "the {dependency} is at its size bound ({detail}); nothing was accepted. \
                         Space returns as retention drops old samples"
                    ),
                )
                .with_retry_after(60);
            }
        }
        .with_retry_after(5)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::to_value(&self).expect("problem serialises");
        body["type"] = format!("https://plotq.dev/problems/{}", self.code.as_str()).into();
        let body = serde_json::to_vec(&body).expect("problem serialises");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // For the request statistics (`observe`): which problem a response was.
        let mut detail = self.detail;
        if detail.len() > MAX_NOTED_DETAIL {
            let mut end = MAX_NOTED_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        response.extensions_mut().insert(ProblemNote {
            code: self.code,
            detail,
        });
        response
    }
}

/// Longest problem detail kept in a response's [`ProblemNote`].
const MAX_NOTED_DETAIL: usize = 200;

/// What a problem response was (code, and the detail it told the client), attached to
/// the response for the request statistics.
#[derive(Debug, Clone)]
pub struct ProblemNote {
    pub code: ProblemCode,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialise_as_their_names() {
        let mut seen = std::collections::HashSet::new();
        for code in ProblemCode::ALL {
            assert!(seen.insert(code.as_str()), "{code:?} repeated");
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }

    #[test]
    fn five_hundreds_do_not_leak_dependency_text() {
        let p = Problem::from(PortError::refused(
            "rabbitmq",
            "PRECONDITION_FAILED amqp://guest:secret@host",
        ));
        assert_eq!(p.status, 503);
        assert!(!p.detail.contains("secret") && !p.detail.contains("PRECONDITION"));
        assert!(p.detail.starts_with("rabbitmq"));
    }
}
