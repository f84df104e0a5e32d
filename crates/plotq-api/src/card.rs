//! The image an `<img>` embed of `GET /api/v1/render` gets when there is no plot to
//! show — no data in the window, a plot that failed, an image not ready in time, an
//! expired link, a rate limit — instead of a problem+json body it cannot show (a broken
//! image). [`render_cards`] is a layer over the hardened router, so the edge's and the
//! authenticator's answers on that path are covered too.
//!
//! Chosen by the request's `Accept`: an image when it asks for images (`image/…`) at
//! least as much as for JSON — what browsers send for `<img>`
//! (`image/avif,image/webp,…,*/*;q=0.8`) — and the problem+json otherwise (`*/*`,
//! `application/json`). The card is a small SVG document drawn from a fixed template —
//! no plotting, so the api still renders nothing — at the requested size, naming what
//! happened and the problem's detail; the status stays the problem's (`409`, `503`, …:
//! not cacheable as a success, `Cache-Control: no-store`), with its `Retry-After`,
//! `X-Plotq-Problem: <code>` for scripts, and `Vary: Accept`.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use plotq_http::ProblemNote;
use serde_json::Value;

/// The path whose errors may be cards.
const PATH: &str = "/api/v1/render";
/// Longest problem body read to make a card (they are a few hundred bytes).
const MAX_PROBLEM_BYTES: usize = 64 * 1024;
/// Card size without (or with out-of-range) `width`/`height`: the plots' default.
const DEFAULT_SIZE: (u32, u32) = (1000, 600);
/// Characters of the detail shown, and per line.
const MAX_DETAIL: usize = 240;
const LINE: usize = 64;

/// Wraps `router` so that the errors of `GET /api/v1/render` are cards for clients that
/// ask for images (see the module docs).
pub fn render_cards(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(answer_with_card))
}

async fn answer_with_card(request: Request, next: Next) -> Response {
    if request.uri().path() != PATH
        || !matches!(*request.method(), Method::GET | Method::HEAD)
        || !wants_image(request.headers())
    {
        return next.run(request).await;
    }
    let size = size_of(request.uri().query().unwrap_or(""));
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem: Value = axum::body::to_bytes(body, MAX_PROBLEM_BYTES)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let note = parts.extensions.get::<ProblemNote>();
    let code = problem["code"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| note.map(|n| n.code.as_str().to_owned()))
        .unwrap_or_else(|| "error".to_owned());
    // A failed job says why in its state ("no data for checkout/latency_ms in the last 1h").
    let detail = problem["job"]["error"]
        .as_str()
        .or_else(|| problem["detail"].as_str())
        .map(str::to_owned)
        .or_else(|| note.map(|n| n.detail.clone()))
        .unwrap_or_default();
    let svg = card(size, headline(&code, &detail), &detail, &code);
    let headers = &mut parts.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.remove(header::CONTENT_LENGTH);
    if let Ok(value) = HeaderValue::from_str(&code) {
        headers.insert("x-plotq-problem", value);
    }
    Response::from_parts(parts, Body::from(svg))
}

/// Whether `Accept` asks for an image at least as much as for JSON.
fn wants_image(headers: &HeaderMap) -> bool {
    let (mut image, mut json) = (0.0f32, 0.0f32);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media.starts_with("image/") {
                image = image.max(q);
            } else if media == "application/json" || media == "application/problem+json" {
                json = json.max(q);
            }
        }
    }
    image > 0.0 && image >= json
}

/// The requested `width` and `height`, when they are sizes a plot may have.
fn size_of(query: &str) -> (u32, u32) {
    let mut size = DEFAULT_SIZE;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let Ok(n) = value.parse::<u32>() else {
            continue;
        };
        match &*name {
            "width" if (200..=4000).contains(&n) => size.0 = n,
            "height" if (150..=4000).contains(&n) => size.1 = n,
            _ => {}
        }
    }
    size
}

/// What the card says first, by the problem.
fn headline(code: &str, detail: &str) -> &'static str {
    match code {
        "plot_failed" if detail.starts_with("no data") || detail.contains(": no data") => {
            "No data in this window"
        }
        "plot_failed" => "This plot could not be drawn",
        "render_timeout" | "render_busy" => "Still drawing: reload in a moment",
        "rate_limited" | "too_many_connections" | "too_many_jobs" => {
            "Too many requests: reload in a moment"
        }
        "unauthorized" | "forbidden" | "expired" => "This link does not open this plot",
        "dependency_unavailable" | "dependency_refused" => "plotq is unavailable: reload later",
        _ => "No plot for this link",
    }
}

/// The SVG document: a light panel with the headline, the detail (wrapped, at most
/// [`MAX_DETAIL`] characters) and the problem code.
fn card((width, height): (u32, u32), headline: &str, detail: &str, code: &str) -> String {
    let detail: String = detail.chars().take(MAX_DETAIL).collect();
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in detail.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > LINE {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    // Text scales with the card, never below 12 px nor so large a line overflows it.
    let big = (f64::from(width) / 28.0).clamp(14.0, 40.0);
    let small = (big * 0.55).max(12.0);
    let (cx, mut y) = (f64::from(width) / 2.0, f64::from(height) / 2.0 - big);
    let mut text = format!(
        r##"<text x="{cx}" y="{y:.0}" font-size="{big:.0}" font-weight="600" fill="#333">{}</text>"##,
        escape(headline)
    );
    y += big * 1.2;
    for l in &lines {
        text.push_str(&format!(
            r##"<text x="{cx}" y="{y:.0}" font-size="{small:.0}" fill="#555">{}</text>"##,
            escape(l)
        ));
        y += small * 1.35;
    }
    text.push_str(&format!(
        r##"<text x="{cx}" y="{:.0}" font-size="{small:.0}" fill="#888">plotq · {}</text>"##,
        y + small * 0.5,
        escape(code)
    ));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{label}"><rect width="100%" height="100%" fill="#f6f7f9" stroke="#d0d4da"/><g font-family="DejaVu Sans, Helvetica, Arial, sans-serif" text-anchor="middle">{text}</g></svg>"##,
        label = escape(headline),
    )
}

/// `s` with the characters XML gives meaning escaped, and control characters dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn images_are_for_clients_that_ask_for_them() {
        let chromium_img = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert!(wants_image(&accept(chromium_img)));
        assert!(wants_image(&accept("image/png")));
        assert!(!wants_image(&accept("*/*")));
        assert!(!wants_image(&accept("application/json")));
        assert!(!wants_image(&accept("application/json, image/png;q=0.5")));
        assert!(!wants_image(&accept("image/png;q=0")));
        assert!(!wants_image(&HeaderMap::new()));
    }

    #[test]
    fn cards_are_well_formed_escaped_and_sized() {
        let svg = card(
            (640, 360),
            headline("plot_failed", "no data for a<b/latency_ms in the last 1h"),
            &format!("no data for a<b & \"c\"\u{7} {}", "x".repeat(1000)),
            "plot_failed",
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"width="640" height="360""#));
        assert!(svg.contains("No data in this window"));
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
        assert!(!svg.contains('\u{7}') && !svg.contains("<b"));
        assert!(svg.len() < 4_000, "{}", svg.len());
        assert_eq!(size_of("width=640&height=360"), (640, 360));
        assert_eq!(size_of("width=99999&height=x"), DEFAULT_SIZE);
    }
}
