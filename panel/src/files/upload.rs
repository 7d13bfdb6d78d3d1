//! `POST /v1/instances/{id}/files/upload?path=DIR`: multipart upload, each file part
//! streamed to the agent as it arrives (never buffered whole). The route is exempt from
//! the global body limit; `instances.upload_max_bytes` bounds each file and the node
//! enforces the server's disk limit (a refused or broken upload leaves no partial file).

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::files::{Uploaded, Written};

use super::proxy;
use super::typed::{Later, Relayed, UploadForm};
use crate::authz::{Authorized, perm};
use crate::error::{AppError, AppQuery, AppResult};
use crate::instances::Instance;
use crate::instances::ops::power::connected;
use crate::respond::Created;
use crate::state::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct UploadQuery {
    /// Directory to upload into (`directory` is accepted too, as in Pterodactyl).
    #[serde(default, alias = "directory")]
    path: String,
}

/// The last component of a client file name; `None` when nothing usable is left.
fn base_name(name: &str) -> Option<&str> {
    let n = name.rsplit(['/', '\\']).next()?.trim();
    (!n.is_empty() && n != "." && n != "..").then_some(n)
}

pub(super) async fn upload(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesWrite>,
    AppQuery(q): AppQuery<UploadQuery>,
    form: Later<UploadForm>,
) -> AppResult<Relayed<Uploaded, 201>> {
    // Authorized before the body is looked at.
    let mut multipart = <Multipart as axum::extract::FromRequest<AppState>>::from_request(
        form.into_inner(),
        &state,
    )
    .await
    .map_err(|e| AppError::BadRequest(format!("multipart: {}", e.body_text())))?;
    let outcome = match connected(&state, &instance.node_id).await {
        Ok(conn) => {
            let target = Target {
                conn: &conn,
                instance: &instance.id,
                dir: q.path.trim_end_matches('/'),
                max: state.config.instances.upload_max_bytes,
            };
            send_parts(&mut multipart, &target).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Sent::Files(files)) if files.is_empty() => {
            Err(AppError::BadRequest("no file part in the upload".into()))
        }
        Ok(Sent::Files(files)) => Ok(Created(Uploaded { files }).into_response().into()),
        // What the client still sends of a refused upload is read before the refusal
        // goes out, by `unread_body` once this drops the multipart stream.
        Ok(Sent::Refused(response)) => Ok(response.into()),
        Err(e) => Err(e),
    }
}

/// Where the parts go.
struct Target<'a> {
    conn: &'a crate::tunnel::AgentConn,
    instance: &'a str,
    dir: &'a str,
    max: u64,
}

/// How the parts went: every file written, or the node's refusal of one.
enum Sent {
    Files(Vec<Written>),
    Refused(Response),
}

/// Streams each file part to the node, stopping at the first refusal.
async fn send_parts(multipart: &mut Multipart, to: &Target<'_>) -> AppResult<Sent> {
    let mut files: Vec<Written> = Vec::new();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| AppError::BadRequest(format!("multipart: {e}")))?;
        let Some(mut field) = field else { break };
        let Some(name) = field.file_name().and_then(base_name).map(str::to_owned) else {
            continue; // not a file part
        };
        let target = format!("{}/{name}", to.dir);
        let query = api::FilePath { path: target };
        // Pump the part into a channel the tunnel request reads from, in this task
        // (the field borrows the multipart stream).
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let send = to
            .conn
            .open::<api::FilesUpload>(&to.instance, &query, HeaderMap::new(), body);
        let max = to.max;
        let pump = async move {
            let mut total = 0u64;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        total += chunk.len() as u64;
                        if total > max {
                            let _ = tx.send(Err(std::io::Error::other("too large"))).await;
                            return Err(AppError::PayloadTooLarge);
                        }
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Ok(()); // the agent stopped reading: its answer says why
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return Err(AppError::BadRequest(format!("multipart: {e}")));
                    }
                }
            }
        };
        let (sent, pumped) = tokio::join!(send, pump);
        pumped?;
        let response = proxy::answer(sent?).await?;
        if !response.status().is_success() {
            return Ok(Sent::Refused(response));
        }
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .map_err(|e| AppError::Unavailable(format!("node did not answer: {e}")))?;
        let written = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::Unavailable(format!("node answered an unreadable upload: {e}"))
        })?;
        files.push(written);
    }
    Ok(Sent::Files(files))
}
