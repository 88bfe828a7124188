//! The console's web page at `/console/`: one HTML document with its script
//! and style sheet, embedded in the binary (no CDN, no build step, works
//! offline). The page is a thin client of the JSON API under
//! `/console/api/`: everything it shows, a script can read the same way,
//! and every rule (roles, CSRF, stale decisions) is the API's.
//!
//! The script builds the page from API answers with `textContent` only, so
//! no registry value is ever parsed as HTML; the Content-Security-Policy
//! allows nothing but this origin's own script, style and API.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::ConsoleDeps;

const INDEX_HTML: &str = include_str!("web/index.html");
const CONSOLE_JS: &str = include_str!("web/console.js");
const CONSOLE_CSS: &str = include_str!("web/console.css");

/// Only this origin's script, style and API; no framing, no plug-ins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; \
base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // Revalidated on every load: a new binary's page is seen at once.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

/// Where `/console` redirects: relative, so that behind a path prefix the
/// router does not see (an API Gateway stage: the browser asks for
/// `/prod/console`, the router answers `/console`) the browser resolves it
/// to `/prod/console/` rather than to a `/console/` outside the stage. The
/// page's own links and API calls are relative to it for the same reason.
const TO_THE_PAGE: &str = "console/";

/// `/console/` and its two assets; `/console` redirects to `/console/`.
pub(crate) fn routes() -> Router<Arc<ConsoleDeps>> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent(TO_THE_PAGE) }),
        )
        .route("/console/", get(index))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for needle in ["http://", "https://", "//cdn", "<script>", "onclick="] {
            assert!(
                !INDEX_HTML.contains(needle),
                "index.html must not contain {needle}"
            );
        }
        assert!(INDEX_HTML.contains(r#"src="console.js""#));
        assert!(INDEX_HTML.contains(r#"href="console.css""#));
    }

    /// Behind a path prefix the router never sees, only relative URLs
    /// reach the console: none of the page's may start at the root.
    #[test]
    fn the_page_and_its_script_name_the_console_relatively() {
        for (name, text) in [("index.html", INDEX_HTML), ("console.js", CONSOLE_JS)] {
            for needle in [
                "src=\"/",
                "href=\"/",
                "\"/console",
                "'/console",
                "`/console",
            ] {
                assert!(!text.contains(needle), "{name} contains {needle}");
            }
        }
    }

    #[test]
    fn the_script_never_parses_registry_values_as_html() {
        for needle in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "document.write",
        ] {
            assert!(
                !CONSOLE_JS.contains(needle),
                "console.js must build the page with textContent, not {needle}"
            );
        }
    }
}
