//! The edge every HTTP role puts around its routes (`harden`): problem+json for unknown
//! routes (404), wrong methods (405) and over-long URIs (414); a body read timeout; CORS
//! for a configured list of origins (never `*`); the shared authenticator and limiters
//! in request extensions; and the browser-facing guards:
//!
//! - **Writes from foreign pages** (`check_origin`): a write (any method but GET, HEAD,
//!   OPTIONS) whose `Origin` is neither this server's own (the `Host` it was sent to) nor
//!   a configured CORS origin is `403 origin_not_allowed` — and every write route reads
//!   its body only when declared as JSON (or NDJSON log lines), never as a type a form can
//!   send (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`), so
//!   a cross-site form gets `415` even without an `Origin`.
//! - **DNS rebinding** (`check_host`): in open mode on loopback, a request whose `Host`
//!   is not a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or a configured one
//!   (`PLOTQ_ALLOWED_HOSTS`) is `403 host_not_allowed`: a page that made its own name
//!   resolve to 127.0.0.1 reaches nothing.
//! - **Security headers** (`security_headers`): `X-Content-Type-Options: nosniff` on
//!   every answer; HTML and SVG answers get a `Content-Security-Policy` (unless the route
//!   set its own, as the dashboard does), HTML also `X-Frame-Options: DENY` and
//!   `Referrer-Policy: same-origin` (a page's URLs may carry a read ticket).
//!
//! Also `read_json`, the one way a JSON body is read: `415` unless it is declared JSON,
//! then the body limit, emptiness and syntax, each with its own code.

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
    /// The `Host` names (without port, lowercase) requests may be sent to; `None` lets
    /// any through. Set for open mode on loopback ([`loopback_hosts`] plus
    /// `PLOTQ_ALLOWED_HOSTS`), where it is what stops DNS rebinding.
    pub allowed_hosts: Option<Vec<String>>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            max_uri_bytes: 8 * 1024,
            body_read_timeout: Duration::from_secs(30),
            allowed_hosts: None,
        }
    }
}

/// The names of this machine's loopback interface, as `Host` carries them.
pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(str::to_owned)
        .collect()
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
    let checks = Arc::new(Checks {
        max_uri: edge.config.max_uri_bytes,
        hosts: edge.config.allowed_hosts.clone(),
        origins: edge.config.cors_origins.clone(),
    });
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| guard(req, next, checks.clone()),
        ))
        .layer(RequestBodyTimeoutLayer::new(edge.config.body_read_timeout))
        .layer(axum::Extension(edge.auth.clone()))
        .layer(axum::Extension(edge.limits.clone()));
    match cors(&edge.config.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// What the edge's checks compare a request with.
struct Checks {
    max_uri: usize,
    /// `EdgeConfig::allowed_hosts`.
    hosts: Option<Vec<String>>,
    /// `EdgeConfig::cors_origins`.
    origins: Vec<String>,
}

/// The edge's checks and headers in one middleware (one boxed future a request, not
/// one a check): the `Host` (`check_host`), a write's `Origin` (`check_origin`), the
/// request target's length (`check_uri`), in that order; then the security headers on
/// whatever answers, refusals included.
async fn guard(req: Request, next: Next, checks: Arc<Checks>) -> Response {
    let refused = check_host(&req, checks.hosts.as_deref())
        .or_else(|| check_origin(&req, &checks.origins))
        .or_else(|| check_uri(&req, checks.max_uri));
    let mut response = match refused {
        Some(problem) => problem.into_response(),
        None => next.run(req).await,
    };
    security_headers(response.headers_mut());
    response
}

fn check_uri(req: &Request, max: usize) -> Option<Problem> {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    (len > max).then(|| {
        Problem::new(
            ProblemCode::UriTooLong,
            format!("the request target is {len} bytes; the limit is {max}"),
        )
    })
}

/// The host name of a `Host` header value: without the port (`[::1]` keeps its
/// brackets), as sent (compare it ignoring ASCII case).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or("");
    }
    host.split(':').next().unwrap_or("")
}

fn check_host(req: &Request, allowed: Option<&[String]>) -> Option<Problem> {
    let allowed = allowed?;
    // HTTP/1.1 requests carry `Host`; HTTP/2 the authority of the URI.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let name = host_name(host);
    (!allowed.iter().any(|a| a.eq_ignore_ascii_case(name))).then(|| {
        Problem::new(
            ProblemCode::HostNotAllowed,
            format!(
                "this server answers to {} only (open mode on loopback; add names with PLOTQ_ALLOWED_HOSTS)",
                allowed.join(", ")
            ),
        )
    })
}

/// Whether `origin` (an `Origin` header value) is the origin of a request sent to `host`
/// (its `Host` header): same host and port, whatever the scheme (a proxy may end TLS).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host.trim()))
}

fn check_origin(req: &Request, allowed: &[String]) -> Option<Problem> {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !write {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?.to_str().unwrap_or("");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    (!(same_origin(origin, host) || allowed.iter().any(|a| a == origin))).then(|| {
        Problem::new(
            ProblemCode::OriginNotAllowed,
            format!(
                "writes from the page at {:?} are refused (not this server's origin, not in PLOTQ_CORS_ORIGINS)",
                origin.chars().take(128).collect::<String>()
            ),
        )
    })
}

/// The `Content-Security-Policy` of an SVG image: nothing it holds may run or load.
pub const SVG_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";
/// The policy of any other HTML answer (the dashboard sets its own): nothing may run.
const HTML_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let media = media_type(headers);
    let is = |t: &str| media.is_some_and(|m| m.eq_ignore_ascii_case(t));
    if is("image/svg+xml") {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(SVG_POLICY));
    } else if is("text/html") {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(HTML_POLICY));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
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

/// Checks a `PLOTQ_ALLOWED_HOSTS` entry: a host name or address, without port.
pub fn validate_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host == host_name(host)
        && !host.bytes().any(|b| b.is_ascii_uppercase())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (lowercase, without port, e.g. plotq.internal)"
        ))
    }
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
    media_type(headers).map(str::to_ascii_lowercase)
}

/// `Content-Type` without parameters, as sent (compare it ignoring ASCII case).
fn media_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
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
