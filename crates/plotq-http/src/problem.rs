//! RFC 9457 problem details: the one error type of the HTTP API.
//!
//! `code` is a stable machine-readable identifier clients branch on; `errors` lists
//! per-field problems for validation failures. 5xx bodies are deliberately opaque about
//! internals (the detail is logged, not sent), except naming which dependency failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_domain::{FieldError, FieldErrors};
use plotq_ports::PortError;
use serde::Serialize;

/// A problem+json response.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after_secs: Option<u32>,
    /// Extra members (e.g. the job state for a PNG that is not ready).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<serde_json::Value>>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
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

    pub fn invalid(errors: FieldErrors) -> Self {
        let detail = errors.to_string();
        Self {
            errors: errors.0,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "Invalid field",
                detail,
            )
        }
    }

    pub fn malformed_json(e: &serde_json::Error) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "Malformed JSON",
            format!("the body is not valid JSON: {e}"),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }
}

impl From<PortError> for Problem {
    fn from(e: PortError) -> Self {
        tracing::warn!(error = %e, "dependency failed");
        match &e {
            PortError::Unavailable { dependency, .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency_unavailable",
                "Dependency unavailable",
                format!("{dependency} is unavailable; nothing was accepted, retry later"),
            )
            .with_retry_after(5),
            PortError::Refused { dependency, detail } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency_refused",
                "Dependency refused the request",
                format!("{dependency}: {detail}; nothing was accepted, retry later"),
            )
            .with_retry_after(5),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::to_value(&self).expect("problem serialises");
        body["type"] = format!("https://plotq.dev/problems/{}", self.code).into();
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
        response
    }
}
