//! The edge every HTTP role puts around its routes (`harden`): problem+json for unknown
//! routes (404), wrong methods (405) and over-long URIs (414); a body read timeout; CORS
//! for a configured list of origins (never `*`); and the shared authenticator and
//! limiters in request extensions. Also `read_json`, the one way a JSON body is read:
//! `415` unless it is declared JSON (so a foreign page cannot post form data), then the
//! body limit, emptiness and syntax, each with its own code.

use crate::auth::Auth;
use crate::limits::Limits;
use crate::problem::{Problem, ProblemCode};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Settings of the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Origins allowed to call cross-origin (exact `scheme://host[:port]`); empty = none.
    pub cors_origins: Vec<String>,
    /// Longest accepted request target (path + query), bytes.
    pub max_uri_bytes: usize,
    /// How long reading a request body may take.
    pub body_read_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            max_uri_bytes: 8 * 1024,
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// What the edge shares with handlers.
#[derive(Debug, Clone)]
pub struct Edge {
    pub auth: Arc<Auth>,
    pub limits: Arc<Limits>,
    pub config: EdgeConfig,
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        ProblemCode::MethodNotAllowed,
        format!("{} does not accept {method}", uri.path()),
    )
}

/// Wraps a role's complete router with the shared edge.
pub fn harden(router: Router, edge: &Edge) -> Router {
    let max_uri = edge.config.max_uri_bytes;
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| check_uri(req, next, max_uri),
        ))
        .layer(RequestBodyTimeoutLayer::new(edge.config.body_read_timeout))
        .layer(axum::Extension(edge.auth.clone()))
        .layer(axum::Extension(edge.limits.clone()));
    match cors(&edge.config.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

async fn check_uri(req: Request, next: Next, max: usize) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > max {
        return Problem::new(
            ProblemCode::UriTooLong,
            format!("the request target is {len} bytes; the limit is {max}"),
        )
        .into_response();
    }
    next.run(req).await
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(list))
            .allow_methods([Method::GET, Method::POST, Method::HEAD])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::LOCATION, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// Checks a CORS origin setting: `scheme://host[:port]`, no path.
pub fn validate_origin(origin: &str) -> Result<(), String> {
    let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
        && !origin.ends_with('/')
        && origin
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        && HeaderValue::from_str(origin).is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{origin:?} is not an origin (scheme://host[:port], e.g. https://dash.example.com)"
        ))
    }
}

/// The media type a request declares (`Content-Type` without parameters, lowercased).
pub fn declared_media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// `415` unless the request declares a JSON body (`application/json` or `…+json`).
pub fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let declared = declared_media_type(headers);
    match declared.as_deref() {
        Some("application/json") => Ok(()),
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => Ok(()),
        Some(other) => Err(Problem::new(
            ProblemCode::UnsupportedMediaType,
            format!("the body is {other:?}; send it as application/json"),
        )),
        None => Err(Problem::new(
            ProblemCode::UnsupportedMediaType,
            "no Content-Type; send the body as application/json",
        )),
    }
}

/// Reads a JSON request body, turning every failure into a precise problem.
pub fn read_json(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, Problem> {
    let bytes = read_json_bytes(headers, body)?;
    serde_json::from_slice(&bytes).map_err(|e| Problem::malformed_json(&e))
}

/// The bytes of a request body declared as JSON, not yet parsed (415, 413, 400 for an
/// unreadable or empty body).
pub fn read_json_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Problem> {
    require_json(headers)?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                ProblemCode::BodyTooLarge,
                "the request body exceeds the configured limit; send smaller batches",
            )
        } else {
            Problem::new(ProblemCode::UnreadableBody, rejection.body_text())
        }
    })?;
    if bytes.is_empty() {
        return Err(Problem::new(
            ProblemCode::EmptyBody,
            "the request body is empty; expected JSON",
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(require_json(&h).unwrap_err().status, 415);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(require_json(&h).unwrap_err().status, 415);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        assert!(require_json(&h).is_ok());
    }

    #[test]
    fn origins() {
        assert!(validate_origin("https://dash.example.com").is_ok());
        assert!(validate_origin("http://127.0.0.1:8080").is_ok());
        for bad in ["*", "dash.example.com", "https://a/b", "https://a/"] {
            assert!(validate_origin(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod cors_tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::limits::LimitsConfig;
    use tower::ServiceExt;

    #[tokio::test]
    async fn only_configured_origins_get_cors_headers() {
        let edge = Edge {
            auth: Auth::new(AuthConfig::open()),
            limits: Limits::new(LimitsConfig::default()),
            config: EdgeConfig {
                cors_origins: vec!["https://dash.example.com".into()],
                ..EdgeConfig::default()
            },
        };
        let app = harden(
            Router::new().route("/x", axum::routing::get(|| async { "ok" })),
            &edge,
        );
        for (origin, allowed) in [
            ("https://dash.example.com", true),
            ("https://evil.example.net", false),
        ] {
            let response = app
                .clone()
                .oneshot(
                    axum::http::Request::builder()
                        .uri("/x")
                        .header("origin", origin)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let acao = response.headers().get("access-control-allow-origin");
            assert_eq!(acao.map(|v| v.to_str().unwrap()), allowed.then_some(origin));
        }
    }
}
