//! Relaying a files request to the agent and its answer back, streamed.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;
use shardlyn_proto::agent_api::Endpoint;

use crate::error::{AppError, AppResult};
use crate::instances::ops::power::connected;
use crate::instances::store::Instance;
use crate::state::AppState;

/// Headers of the agent's answer handed on to the caller.
const PASSED: [header::HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_DISPOSITION,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
];

/// Sends the files route `E` with the `query` and `body` the handler checked to the
/// agent of `instance` (which the handler's [`crate::authz::Authorized`] loaded), and
/// streams the answer back. The agent's 4xx (error envelope with its code) pass unchanged; a 5xx or a
/// failed tunnel is a 503.
///
/// # Errors
/// 409 `NODE_OFFLINE`, 503.
pub(crate) async fn relay<E>(
    state: &AppState,
    instance: &Instance,
    query: &E::Query,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str>,
    E::Query: Serialize,
{
    let conn = connected(state, &instance.node_id).await?;
    let upstream = conn
        .open::<E>(&instance.id.as_str(), query, headers, body)
        .await?;
    answer(upstream).await
}

/// [`relay`] of a raw body that the agent may refuse before it has read it all (the
/// editor's 10 MiB cap, the disk limit): the rest of the caller's body is then read and
/// discarded before the answer goes out, so a caller still sending reads the refusal
/// instead of a broken pipe. `unread_body` does that for bodies a handler drops; this
/// one is held by another task, so it is drained here, within the same bounds.
///
/// # Errors
/// As [`relay`].
pub(crate) async fn relay_drained<E>(
    state: &AppState,
    instance: &Instance,
    query: &E::Query,
    body: Body,
) -> AppResult<Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str>,
    E::Query: Serialize,
{
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, axum::Error>>(8);
    let (answered, mut answer_seen) = tokio::sync::watch::channel(false);
    let pump = tokio::spawn(async move {
        let mut incoming = body.into_data_stream();
        let mut forwarding = true;
        let mut left = crate::unread_body::MAX_BYTES;
        while let Some(chunk) = incoming.next().await {
            let Ok(chunk) = chunk else { break };
            if forwarding {
                let len = chunk.len();
                tokio::select! {
                    sent = tx.send(Ok(chunk)) => {
                        if sent.is_err() {
                            forwarding = false;
                            left = left.saturating_sub(len as u64);
                        }
                    }
                    // The agent answered without reading on: stop waiting for it.
                    _ = answer_seen.wait_for(|a| *a) => {
                        forwarding = false;
                        left = left.saturating_sub(len as u64);
                    }
                }
            } else {
                left = left.saturating_sub(chunk.len() as u64);
            }
            if left == 0 {
                break;
            }
        }
    });
    let forwarded = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let result = relay::<E>(state, instance, query, HeaderMap::new(), forwarded).await;
    let _ = answered.send(true);
    if result.as_ref().map_or(true, |r| !r.status().is_success()) {
        // Refused: the rest of the caller's body is read before the answer goes out.
        let _ = tokio::time::timeout(crate::unread_body::MAX_TIME, pump).await;
    }
    result
}

/// The caller's response for an agent answer.
pub(crate) async fn answer(upstream: http::Response<hyper::body::Incoming>) -> AppResult<Response> {
    let status = upstream.status();
    if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
        let (parts, body) = upstream.into_parts();
        let mut response = Body::new(body).into_response();
        *response.status_mut() = status;
        for name in PASSED {
            if let Some(v) = parts.headers.get(&name) {
                response.headers_mut().insert(name, v.clone());
            }
        }
        return Ok(response);
    }
    let bytes = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        upstream.into_body().collect(),
    )
    .await
    .map_err(|_| AppError::Unavailable("node did not answer".into()))?
    .map_err(|e| AppError::Unavailable(format!("node did not answer: {e}")))?
    .to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if status.is_client_error() && value.get("code").is_some_and(serde_json::Value::is_string) {
        return Ok((status, axum::Json(value)).into_response());
    }
    Err(AppError::Unavailable(format!(
        "node answered {status}: {}",
        value["error"].as_str().unwrap_or("no detail")
    )))
}
