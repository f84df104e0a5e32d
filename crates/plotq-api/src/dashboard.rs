//! The live dashboard: one HTML page, its scripts and its stylesheet, embedded in the
//! binary (no CDN; it works offline). The browser only shows images: panels subscribe
//! to their views over SSE and swap in each new render. Its Health tab (`health.js`)
//! polls `GET /api/v1/health`. The page carries its own `Content-Security-Policy`
//! (`page_policy`); the edge adds `X-Frame-Options` and `nosniff`.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

static PAGE: &str = include_str!("../assets/dashboard.html");
static SCRIPT: &str = include_str!("../assets/dashboard.js");
static STYLE: &str = include_str!("../assets/dashboard.css");
static HEALTH_SCRIPT: &str = include_str!("../assets/health.js");

fn asset(body: String, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The page's `Content-Security-Policy`: its own scripts and styles only (none inline),
/// images from itself (and the `blob:` URLs it makes of fetched renders), requests to
/// itself and to the notifier's origin when events come from elsewhere; never framed.
fn page_policy(events_url: &str) -> String {
    let events_origin = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = events_url.strip_prefix(scheme)?;
            let authority = rest.split('/').next()?;
            (!authority.is_empty()).then(|| format!(" {scheme}{authority}"))
        })
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         connect-src 'self'{events_origin}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// `GET /` (the page), `/assets/dashboard.js`, `/assets/health.js` and
/// `/assets/dashboard.css`. `events_url` is where the page subscribes to events.
pub fn dashboard_router(events_url: &str) -> Router {
    let escaped = events_url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    let page = PAGE.replace("{{EVENTS_URL}}", &escaped);
    let policy = HeaderValue::from_str(&page_policy(events_url))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"));
    Router::new()
        .route(
            "/",
            get(move || async move {
                let mut response = asset(page.clone(), "text/html; charset=utf-8");
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, policy.clone());
                response
            }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset(SCRIPT.to_owned(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/health.js",
            get(|| async { asset(HEALTH_SCRIPT.to_owned(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset(STYLE.to_owned(), "text/css; charset=utf-8") }),
        )
}
