//! The tus 1.0.0 wire protocol (<https://tus.io/protocols/resumable-upload>): header
//! names, the version check, `Upload-Metadata`, `Upload-Expires` and the headers every
//! answer carries. Written here rather than taken from a crate: the tus server crates
//! own their storage, while here the panel speaks tus and the agent holds the bytes
//! (its offset is the truth), so only the protocol layer is ours to write.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

pub const TUS_RESUMABLE: &str = "tus-resumable";
pub const TUS_VERSION: &str = "tus-version";
pub const TUS_EXTENSION: &str = "tus-extension";
pub const TUS_MAX_SIZE: &str = "tus-max-size";
pub const TUS_CHECKSUM_ALGORITHM: &str = "tus-checksum-algorithm";
pub const UPLOAD_OFFSET: &str = "upload-offset";
pub const UPLOAD_LENGTH: &str = "upload-length";
pub const UPLOAD_DEFER_LENGTH: &str = "upload-defer-length";
pub const UPLOAD_METADATA: &str = "upload-metadata";
pub const UPLOAD_EXPIRES: &str = "upload-expires";
pub const UPLOAD_CHECKSUM: &str = "upload-checksum";

/// The one protocol version served.
pub const VERSION: &str = "1.0.0";
/// The extensions served.
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
/// Checksum algorithms of the checksum extension.
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
/// The content type of PATCH bodies.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// `Tus-Resumable: 1.0.0` on an answer (every answer but OPTIONS carries it).
pub fn with_resumable(mut r: Response) -> Response {
    r.headers_mut()
        .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    r
}

/// The 412 for a request without `Tus-Resumable: 1.0.0`, or `None` when it has it.
pub fn check_version(headers: &HeaderMap) -> Option<Response> {
    if headers.get(TUS_RESUMABLE).and_then(|v| v.to_str().ok()) == Some(VERSION) {
        return None;
    }
    let body = shardlyn_proto::ErrorBody::new(
        "TUS_VERSION",
        "unsupported or missing Tus-Resumable (this server speaks 1.0.0)",
    );
    let mut r = (StatusCode::PRECONDITION_FAILED, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    Some(with_resumable(r))
}

/// A non-negative integer header (`Upload-Length`, `Upload-Offset`): `Ok(None)` when
/// absent, `Err` when malformed.
pub fn number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| format!("{name} is not text"))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} must be a non-negative integer"));
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{name} is too large"))
}

/// Whether the request's content type is `application/offset+octet-stream`.
pub fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// `Upload-Metadata` pairs: each key with its decoded value, when it has one.
pub type Metadata = Vec<(String, Option<Vec<u8>>)>;

/// Parses `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be
/// absent); keys are unique, non-empty, without spaces or commas.
pub fn parse_metadata(text: &str) -> Result<Metadata, String> {
    let mut out: Metadata = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once(' ') {
            Some((k, v)) => (k, Some(v.trim())),
            None => (pair, None),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(format!("Upload-Metadata: bad key {key:?}"));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err(format!("Upload-Metadata: key {key} given twice"));
        }
        let value = match value {
            Some(v) if !v.is_empty() => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|_| format!("Upload-Metadata: value of {key} is not base64"))?,
            ),
            _ => None,
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The target path of an upload from its metadata: `filename` (or `name`) inside the
/// directory `path` (the root when absent); without a file name, `path` is the whole
/// target.
pub fn target_path(metadata: &[(String, Option<Vec<u8>>)]) -> Result<String, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match metadata.iter().find(|(k, _)| k == key) {
            Some((_, Some(v))) => String::from_utf8(v.clone())
                .map(Some)
                .map_err(|_| format!("Upload-Metadata: {key} is not UTF-8")),
            _ => Ok(None),
        }
    };
    let dir = text("path")?;
    let name = match text("filename")? {
        Some(n) => Some(n),
        None => text("name")?,
    };
    let path = match (dir, name) {
        (dir, Some(name)) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err("Upload-Metadata: filename must be a plain file name".into());
            }
            let dir = dir.unwrap_or_default();
            format!("{}/{name}", dir.trim_end_matches('/'))
        }
        (Some(path), None) => path,
        (None, None) => {
            return Err("Upload-Metadata must carry filename (and path) or path".into());
        }
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    if path.len() > 4096 || path.contains('\0') || path.trim_end_matches('/').is_empty() {
        return Err("invalid target path".into());
    }
    Ok(path)
}

/// An `Upload-Expires` value: RFC 9110 HTTP-date, e.g. `Wed, 25 Jun 2014 16:00:00 GMT`.
pub fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Sets a header from a string, skipping values that are not valid header text.
pub fn set(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn the_spec_metadata_example_parses() {
        // From the creation extension: `Upload-Metadata: filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential`
        let m = parse_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential")
            .expect("parses");
        assert_eq!(m[0].0, "filename");
        assert_eq!(
            m[0].1.as_deref(),
            Some(b"world_domination_plan.pdf".as_slice())
        );
        assert_eq!(m[1], ("is_confidential".to_string(), None));
        assert_eq!(
            target_path(&m).expect("target"),
            "/world_domination_plan.pdf"
        );
        assert!(parse_metadata("a !!!").is_err());
        assert!(parse_metadata("a YQ==,a YQ==").is_err());
        assert!(parse_metadata("").expect("empty").is_empty());
    }

    #[test]
    fn targets_join_path_and_filename() {
        let b = |s: &str| Some(s.as_bytes().to_vec());
        let m = vec![
            ("path".to_string(), b("/plugins/")),
            ("filename".to_string(), b("x.jar")),
        ];
        assert_eq!(target_path(&m).expect("target"), "/plugins/x.jar");
        let m = vec![("path".to_string(), b("world/level.dat"))];
        assert_eq!(target_path(&m).expect("target"), "/world/level.dat");
        let m = vec![("filename".to_string(), b("../x"))];
        assert!(target_path(&m).is_err());
        assert!(target_path(&[]).is_err());
        let m = vec![("path".to_string(), b("/"))];
        assert!(target_path(&m).is_err());
    }

    #[test]
    fn versions_numbers_and_content_types_are_checked() {
        assert!(check_version(&headers(&[("tus-resumable", "1.0.0")])).is_none());
        let r = check_version(&headers(&[("tus-resumable", "0.2.2")])).expect("412");
        assert_eq!(r.status(), 412);
        assert_eq!(r.headers()["tus-version"], "1.0.0");
        assert!(check_version(&HeaderMap::new()).is_some());
        assert_eq!(
            number(&headers(&[("upload-offset", "70")]), UPLOAD_OFFSET),
            Ok(Some(70))
        );
        assert_eq!(number(&HeaderMap::new(), UPLOAD_OFFSET), Ok(None));
        for bad in ["-1", "1e3", "", "99999999999999999999999"] {
            assert!(number(&headers(&[("upload-offset", bad)]), UPLOAD_OFFSET).is_err());
        }
        assert!(is_offset_stream(&headers(&[(
            "content-type",
            "application/offset+octet-stream"
        )])));
        assert!(!is_offset_stream(&headers(&[(
            "content-type",
            "application/json"
        )])));
    }

    #[test]
    fn expiry_dates_use_the_http_format() {
        // The spec's example: `Upload-Expires: Wed, 25 Jun 2014 16:00:00 GMT`.
        assert_eq!(
            http_date(1_403_712_000_000),
            "Wed, 25 Jun 2014 16:00:00 GMT"
        );
    }
}
