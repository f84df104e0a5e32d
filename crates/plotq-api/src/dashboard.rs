//! The live dashboard: one HTML page, its scripts and its stylesheet, embedded in the
//! binary (no CDN; it works offline). The browser only shows images: panels subscribe
//! to their views over SSE and swap in each new render. Its Health tab (`health.js`)
//! polls `GET /api/v1/health`. The page carries its own `Content-Security-Policy`
//! (`page_policy`); the edge adds `X-Frame-Options` and `nosniff`.
//!
//! The page's script is served as one `/assets/dashboard.js`, written as two files:
//! `assets/dashboard/view.js` (the view and its URL, the panels, their numbers as text,
//! drag-to-zoom and custom ranges) then `assets/dashboard/feeds.js` (live panels over
//! SSE, fixed ranges through `GET /api/v1/render`, copied links, and the start).
//!
//! Each route is registered with its entry in the OpenAPI document (`routes`); the
//! router is separate from the api's because the binary serves it only where the
//! dashboard is wanted.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

static PAGE: &str = include_str!("../assets/dashboard.html");
/// One script in two files (one scope: the second uses the first's names).
static SCRIPT: &str = concat!(
    include_str!("../assets/dashboard/view.js"),
    include_str!("../assets/dashboard/feeds.js")
);
static STYLE: &str = include_str!("../assets/dashboard.css");
static HEALTH_SCRIPT: &str = include_str!("../assets/health.js");

fn asset(body: impl IntoResponse, content_type: &'static str) -> Response {
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

/// The page as served for one events URL: its HTML and its policy.
#[derive(Clone)]
struct Page {
    html: Bytes,
    policy: HeaderValue,
}

impl Page {
    fn new(events_url: &str) -> Self {
        let escaped = events_url
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        let html = PAGE.replace("{{EVENTS_URL}}", &escaped);
        let policy = HeaderValue::from_str(&page_policy(events_url)).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")
        });
        Self {
            html: Bytes::from(html),
            policy,
        }
    }
}

/// The live dashboard (`dashboard_router`).
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String,
        headers(("cache-control" = String, description = "`no-cache`")))))]
async fn dashboard_page(State(page): State<Page>) -> Response {
    let mut response = asset(page.html, "text/html; charset=utf-8");
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, page.policy);
    response
}

/// The dashboard's script.
#[utoipa::path(get, path = "/assets/dashboard.js", tag = "dashboard",
    responses((status = 200, description = "The dashboard's script", content_type = "text/javascript", body = String,
        headers(("cache-control" = String, description = "`no-cache`")))))]
async fn dashboard_script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// The dashboard's Health tab script.
#[utoipa::path(get, path = "/assets/health.js", tag = "dashboard",
    responses((status = 200, description = "The dashboard's Health tab script", content_type = "text/javascript", body = String,
        headers(("cache-control" = String, description = "`no-cache`")))))]
async fn dashboard_health_script() -> Response {
    asset(HEALTH_SCRIPT, "text/javascript; charset=utf-8")
}

/// The dashboard's stylesheet.
#[utoipa::path(get, path = "/assets/dashboard.css", tag = "dashboard",
    responses((status = 200, description = "The dashboard's stylesheet", content_type = "text/css", body = String,
        headers(("cache-control" = String, description = "`no-cache`")))))]
async fn dashboard_style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

/// The dashboard's routes, each with its entry in the document.
fn routes() -> OpenApiRouter<Page> {
    OpenApiRouter::default()
        .routes(routes!(dashboard_page))
        .routes(routes!(dashboard_script))
        .routes(routes!(dashboard_health_script))
        .routes(routes!(dashboard_style))
}

/// The document's entries of the dashboard's routes.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// `GET /` (the page), `/assets/dashboard.js`, `/assets/health.js` and
/// `/assets/dashboard.css`. `events_url` is where the page subscribes to events.
pub fn dashboard_router(events_url: &str) -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(Page::new(events_url))
}
