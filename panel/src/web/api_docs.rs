//! `/docs/api`: a readable API reference rendered in the browser from
//! `/v1/openapi.json` by Redoc. Redoc's standalone bundle comes from the `aide` crate,
//! which ships it (a registry package, pinned by `Cargo.lock`); it is served from the
//! panel itself, never from a CDN, so the reference works on a panel with no internet.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of the reference: the pages' own, plus what Redoc needs
/// (styles it injects at run time, and a worker made from a blob for its search).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                       worker-src 'self' blob:; connect-src 'self'; img-src 'self' data:; \
                       font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
                       form-action 'self'";

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shardlyn API reference</title>
<script src="/docs/api/redoc.js" defer></script>
<script src="/docs/api/init.js" defer></script>
</head>
<body>
<noscript>The API reference needs JavaScript; the document itself is at <a href="/v1/openapi.json">/v1/openapi.json</a>.</noscript>
<div id="redoc" data-spec="/v1/openapi.json"></div>
</body>
</html>
"#;

const INIT: &str = "Redoc.init(document.getElementById('redoc').dataset.spec, \
                    { scrollYOffset: 0, hideDownloadButton: false }, \
                    document.getElementById('redoc'));\n";

/// Redoc's standalone bundle, taken once from the page `aide` renders around it.
fn redoc_js() -> &'static str {
    static JS: OnceLock<String> = OnceLock::new();
    JS.get_or_init(|| {
        let html = aide::redoc::Redoc::new("/v1/openapi.json").html();
        let start = html.find("<script>").map_or(0, |i| i + "<script>".len());
        let end = html.rfind("Redoc.init(").unwrap_or(html.len());
        html.get(start..end).unwrap_or_default().trim().to_owned()
    })
}

fn answer(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /docs/api`.
pub async fn page() -> Response {
    answer("text/html; charset=utf-8", PAGE, "no-cache")
}

/// `GET /docs/api/redoc.js`.
pub async fn script() -> Response {
    answer(
        "text/javascript; charset=utf-8",
        redoc_js(),
        "public, max-age=3600",
    )
}

/// `GET /docs/api/init.js`.
pub async fn init() -> Response {
    answer("text/javascript; charset=utf-8", INIT, "no-cache")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bundle_is_redoc_without_the_inline_start() {
        let js = super::redoc_js();
        assert!(js.len() > 100_000, "only {} bytes", js.len());
        assert!(!js.trim_start().starts_with('<') && !js.trim_end().ends_with("</script>"));
        assert!(js.contains("Redoc"));
    }
}
