//! The operations console (DESIGN §7): one HTML page, a script and a style
//! sheet, compiled into the binary so it works on a network without a CDN
//! or a separate install. The page is a shell: every figure and message it
//! shows comes from the same JSON API the CLI uses (behind the token when
//! one is set), so the shell itself is served to anyone and holds no data.
//! Each page of the console has its own URL, so links can go into tickets.

mod overview;
mod rates;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AdminState;

pub use overview::overview;
pub use rates::Rates;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// Only the page's own script, styles and API; no framing (the buttons act
/// on dead letters, so no other site may overlay them).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's pages (all the same shell, which reads its URL) and assets.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(page))
        .route("/messages", get(page))
        .route("/messages/{id}", get(page))
        .route("/dead-letters", get(page))
        .route("/dead-letters/{connector}", get(page))
        .route("/console/console.js", get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }))
        .route("/console/console.css", get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }))
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small, and served over loopback: always fresh beats a stale console after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Search URLs can carry patient IDs: never pass them on.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
