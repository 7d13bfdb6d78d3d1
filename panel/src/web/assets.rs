//! The stylesheet and ES modules of `templates/web/static/`, embedded in the binary.
//! Pages link them as `/static/{file}?v={version}`, the version being a hash of every
//! asset: such a URL never changes content, so it is cached for a year; other URLs are
//! cached briefly and revalidated with an `ETag`.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::WebError;

/// `(file name, content type, bytes)`.
pub(super) const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../templates/web/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/app.js"),
    ),
    (
        "ansi.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/ansi.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/console.js"),
    ),
    (
        "instance_tabs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/instance_tabs.js"),
    ),
    (
        "http.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/http.js"),
    ),
    (
        "rules.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/rules.js"),
    ),
    (
        "dialog.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/dialog.js"),
    ),
    (
        "tus.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/tus.js"),
    ),
    (
        "files.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/files.js"),
    ),
    (
        "backups.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/backups.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/settings.js"),
    ),
    (
        "schedules.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/schedules.js"),
    ),
    (
        "instance_new.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/instance_new.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/live.js"),
    ),
    (
        "migrate.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/migrate.js"),
    ),
    (
        "admin_audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/admin_audit.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../templates/web/static/favicon.svg"),
    ),
    (
        "copy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/copy.js"),
    ),
    (
        "forms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/forms.js"),
    ),
    (
        "choice.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/choice.js"),
    ),
    (
        "provision.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/provision.js"),
    ),
    (
        "dns.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/dns.js"),
    ),
    (
        "dns_auto.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/dns_auto.js"),
    ),
    (
        "dns_address.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/dns_address.js"),
    ),
    (
        "billing.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/billing.js"),
    ),
    (
        "term.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/term.js"),
    ),
    (
        "shell.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/shell.js"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../templates/web/static/player.js"),
    ),
    // xterm.js 5.5.0 and @xterm/addon-fit 0.10.0 (MIT licence, copyright the xterm.js
    // authors), installed by `panel/build.rs` from `web/package-lock.json`. Both are UMD
    // scripts (not ES modules): pages load them with classic `<script>` tags, and they
    // set `window.Terminal` and `window.FitAddon.FitAddon`.
    (
        "xterm.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/web/node_modules/@xterm/xterm/lib/xterm.js"
        )),
    ),
    (
        "xterm.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/web/node_modules/@xterm/xterm/css/xterm.css"
        )),
    ),
    (
        "addon-fit.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/web/node_modules/@xterm/addon-fit/lib/addon-fit.js"
        )),
    ),
];

/// A hash of every asset, computed once.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, bytes) in FILES {
        hash.update(name.as_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..6])
});

/// The version appended to asset URLs.
#[must_use]
pub fn version() -> &'static str {
    VERSION.as_str()
}

#[derive(Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

/// `GET /static/{file}`.
pub async fn serve(
    Path(file): Path<String>,
    query: Result<axum::extract::Query<AssetQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let (_, content_type, bytes) = FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(WebError::not_found)?;
    let etag = format!("\"{}\"", version());
    let immutable = query.is_ok_and(|q| q.v.as_deref() == Some(version()));
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300, must-revalidate"
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            *bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_embedded_and_versioned() {
        assert_eq!(version().len(), 12);
        for (name, _, bytes) in FILES {
            assert!(!bytes.is_empty(), "{name} is empty");
        }
    }

    /// Every file of `templates/web/static/` is embedded: a template or a module that
    /// names one (`/static/x.js`, `./x.js`) finds it served.
    #[test]
    fn every_static_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/web/static");
        let on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("static dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(on_disk.len() > 10, "{on_disk:?}");
        for name in on_disk {
            assert!(
                FILES.iter().any(|(f, _, _)| *f == name),
                "templates/web/static/{name} is not in FILES"
            );
        }
    }
}
