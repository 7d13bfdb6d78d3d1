//! S3-compatible storage from the panel: reading (downloads) and deleting archives
//! through `object_store`, and listing/creating buckets. `object_store` has no bucket
//! operations, so those two requests are signed here (AWS Signature V4, path-style,
//! [`crate::sigv4`]): a dozen lines no maintained crate offers without pulling in the
//! whole AWS SDK. Every request goes through the outbound guard
//! ([`shardlyn_net::outbound`]) and connects only to the addresses it checked.

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use super::store::Config;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The sealed part of an S3 config.
#[derive(Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Opens a config's credentials.
///
/// # Errors
/// 500 when they do not open under the master key.
pub fn credentials(state: &AppState, c: &Config) -> AppResult<Credentials> {
    if c.sealed_credentials.is_empty() {
        return Ok(Credentials::default());
    }
    let raw = crate::sealed::open(&state.master_key, &c.sealed_credentials)
        .map_err(AppError::Internal)?;
    serde_json::from_slice(&raw).map_err(|e| AppError::Internal(e.into()))
}

/// Seals credentials for storage.
#[must_use]
pub fn seal(state: &AppState, creds: &Credentials) -> String {
    crate::sealed::seal(
        &state.master_key,
        &serde_json::to_vec(creds).unwrap_or_default(),
    )
}

fn region(c: &Config) -> &str {
    if c.region.is_empty() {
        "us-east-1"
    } else {
        &c.region
    }
}

/// The wire target handed to the agent for the object `key`.
///
/// # Errors
/// As [`credentials`].
pub fn target(
    state: &AppState,
    c: &Config,
    key: &str,
) -> AppResult<shardlyn_proto::backup::Target> {
    let creds = credentials(state, c)?;
    Ok(shardlyn_proto::backup::Target::S3(
        shardlyn_proto::backup::S3Target {
            endpoint: c.endpoint.clone(),
            region: region(c).to_string(),
            bucket: c.bucket.clone(),
            key: key.to_string(),
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            part_size: u64::try_from(c.part_size).unwrap_or(0),
        },
    ))
}

/// An `object_store` client for the config's bucket, connecting only to the endpoint's
/// addresses the outbound guard checked.
///
/// # Errors
/// 422 `OUTBOUND_DENIED` (or `OUTBOUND_UNRESOLVABLE`) for a refused endpoint, 400 for
/// an unusable configuration.
pub async fn store(state: &AppState, c: &Config) -> AppResult<AmazonS3> {
    let creds = credentials(state, c)?;
    let endpoint = endpoint(c);
    let checked = state.config.outbound.resolve_url(&endpoint).await?;
    AmazonS3Builder::new()
        .with_bucket_name(&c.bucket)
        .with_region(region(c))
        .with_access_key_id(creds.access_key_id)
        .with_secret_access_key(creds.secret_access_key)
        .with_endpoint(&endpoint)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_http_connector(shardlyn_net::outbound::PinnedConnector(checked))
        .build()
        .map_err(|e| AppError::BadRequest(format!("unusable S3 configuration: {e}")))
}

/// The check made when a config is saved or handed to an agent: refuses an endpoint on
/// a refused address (the one connecting checks again, and pins it, when it connects).
///
/// # Errors
/// 422 `OUTBOUND_DENIED` or `VALIDATION_ERROR`.
pub async fn precheck(state: &AppState, c: &Config) -> AppResult<()> {
    if c.kind != "s3" {
        return Ok(());
    }
    Ok(state.config.outbound.precheck_url(&endpoint(c)).await?)
}

/// Deletes an object (a missing one is fine).
///
/// # Errors
/// 503 when the store fails.
pub async fn delete(state: &AppState, c: &Config, key: &str) -> AppResult<()> {
    match store(state, c).await?.delete(&ObjectPath::from(key)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(AppError::Unavailable(format!("S3 delete failed: {e}"))),
    }
}

/// The endpoint requests go to: the configured one, or AWS's for the region.
fn endpoint(c: &Config) -> String {
    if c.endpoint.is_empty() {
        format!("https://s3.{}.amazonaws.com", region(c))
    } else {
        c.endpoint.trim_end_matches('/').to_string()
    }
}

/// Sends a SigV4-signed path-style request.
async fn signed(
    state: &AppState,
    c: &Config,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> AppResult<(reqwest::StatusCode, String)> {
    let creds = credentials(state, c)?;
    let checked = state
        .config
        .outbound
        .resolve_url(&format!("{}{path}", endpoint(c)))
        .await?;
    let url = checked.url.clone();
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return Err(AppError::BadRequest("invalid S3 endpoint".into())),
    };
    let signed = crate::sigv4::sign(
        crate::sigv4::Request {
            method: method.as_str(),
            host: &host,
            path: url.path(),
            body: &body,
            service: "s3",
            region: region(c),
        },
        (&creds.access_key_id, &creds.secret_access_key),
        chrono::Utc::now(),
    );
    let client = checked
        .pin(reqwest::Client::builder())
        .build()
        .map_err(|e| AppError::Internal(e.into()))?;
    let response = client
        .request(method, url)
        .header("x-amz-date", signed.amz_date)
        .header("x-amz-content-sha256", signed.payload_sha256)
        .header(reqwest::header::AUTHORIZATION, signed.authorization)
        .body(body)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| AppError::Unavailable(format!("S3 endpoint unreachable: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    Ok((status, text))
}

fn s3_error(status: reqwest::StatusCode, text: &str) -> AppError {
    let code = between(text, "<Code>", "</Code>").unwrap_or("no detail");
    AppError::Unavailable(format!("S3 answered {status}: {code}"))
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// The names of the buckets the credentials can see.
///
/// # Errors
/// 503 when S3 refuses or is unreachable.
pub async fn list_buckets(state: &AppState, c: &Config) -> AppResult<Vec<String>> {
    let (status, text) = signed(state, c, reqwest::Method::GET, "/", Vec::new()).await?;
    if !status.is_success() {
        return Err(s3_error(status, &text));
    }
    let mut names = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<Bucket>") {
        rest = &rest[start + 8..];
        let Some(end) = rest.find("</Bucket>") else {
            break;
        };
        if let Some(name) = between(&rest[..end], "<Name>", "</Name>") {
            names.push(name.to_string());
        }
        rest = &rest[end..];
    }
    Ok(names)
}

/// Whether `name` is a valid S3 bucket name.
#[must_use]
pub fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Creates a bucket (an existing one of ours is fine).
///
/// # Errors
/// 400 for an invalid name, 409 when another account owns it, 503 otherwise.
pub async fn create_bucket(state: &AppState, c: &Config, name: &str) -> AppResult<()> {
    if !valid_bucket(name) {
        return Err(AppError::Validation("invalid bucket name".into()));
    }
    let body = if region(c) == "us-east-1" {
        Vec::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            region(c)
        )
        .into_bytes()
    };
    let (status, text) = signed(state, c, reqwest::Method::PUT, &format!("/{name}"), body).await?;
    if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
        return Ok(());
    }
    if text.contains("BucketAlreadyExists") {
        return Err(AppError::Conflict("the bucket name is taken".into()));
    }
    Err(s3_error(status, &text))
}
