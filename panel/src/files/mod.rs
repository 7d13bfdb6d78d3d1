//! The files API: `/v1/instances/{id}/files...`. Each handler authorizes the caller
//! (`instances.files.read` for reads, `instances.files.write` for writes), then relays
//! the request to the instance's agent through the tunnel, streaming bodies both ways.
//! The agent owns the sandbox (paths, denylist, disk limit); its 4xx answers (with their
//! stable codes: `BAD_PATH`, `FILE_DENIED`, `PATH_ESCAPE`, `DISK_LIMIT`, `BINARY_FILE`...)
//! are handed on unchanged. The tus upload (`/files/tus`) lives in `uploads`.

mod proxy;
mod upload;

use axum::body::Body;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::Value;
use shardlyn_proto::agent_api::{self as api, Endpoint, Relayed};

use crate::authz::{Authorized, perm};
use crate::error::{AppJson, AppResult};
use crate::instances::store::Instance;
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// The files routes.
pub fn router() -> Routes {
    let u = Access::User;
    Routes::new("files")
        .get(
            "/v1/instances/{id}/files",
            u,
            "List a directory (paged)",
            list,
        )
        .delete("/v1/instances/{id}/files", u, "Delete files", delete)
        .get(
            "/v1/instances/{id}/files/content",
            u,
            "Read a text file",
            read,
        )
        .put(
            "/v1/instances/{id}/files/content",
            u,
            "Write a text file",
            write,
        )
        .get(
            "/v1/instances/{id}/files/download",
            u,
            "Download a file (Range)",
            download,
        )
        .post(
            "/v1/instances/{id}/files/upload",
            u,
            "Upload files (multipart, streamed)",
            // Exempt from the global body limit: streamed to the node, bounded by
            // `instances.upload_max_bytes` and the server's disk limit.
            upload::upload.layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .post(
            "/v1/instances/{id}/files/mkdir",
            u,
            "Create a directory",
            mkdir,
        )
        .post("/v1/instances/{id}/files/move", u, "Move or rename", rename)
        .get(
            "/v1/instances/{id}/files/download-zip",
            u,
            "Download a directory as zip",
            download_zip,
        )
        .get(
            "/v1/instances/{id}/files/stat",
            u,
            "One entry's details",
            stat,
        )
        .get(
            "/v1/instances/{id}/files/search",
            u,
            "Search files by name",
            search,
        )
        .post(
            "/v1/instances/{id}/files/copy",
            u,
            "Copy a file or directory",
            copy,
        )
        .post(
            "/v1/instances/{id}/files/chmod",
            u,
            "Change permissions",
            chmod,
        )
        .post(
            "/v1/instances/{id}/files/compress",
            u,
            "Create an archive",
            compress,
        )
        .post(
            "/v1/instances/{id}/files/decompress",
            u,
            "Extract an archive",
            decompress,
        )
        .post(
            "/v1/instances/{id}/files/pull",
            u,
            "Download a URL into the files",
            pull,
        )
}

/// `GET`s relayed as they are (query string included).
async fn get_as<E>(
    state: &AppState,
    instance: &Instance,
    uri: &Uri,
    headers: HeaderMap,
) -> AppResult<Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str, Query = Relayed>,
{
    proxy::relay::<E>(state, instance, uri.query(), headers, Body::empty()).await
}

async fn list(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as::<api::FilesList>(&state, &instance, &uri, HeaderMap::new()).await
}

async fn stat(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as::<api::FilesStat>(&state, &instance, &uri, HeaderMap::new()).await
}

async fn search(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as::<api::FilesSearch>(&state, &instance, &uri, HeaderMap::new()).await
}

async fn read(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as::<api::FilesRead>(&state, &instance, &uri, HeaderMap::new()).await
}

async fn download(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
    headers: HeaderMap,
) -> AppResult<Response> {
    let mut fwd = HeaderMap::new();
    if let Some(r) = headers.get(http::header::RANGE) {
        fwd.insert(http::header::RANGE, r.clone());
    }
    get_as::<api::FilesDownload>(&state, &instance, &uri, fwd).await
}

async fn download_zip(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as::<api::FilesDownloadZip>(&state, &instance, &uri, HeaderMap::new()).await
}

/// `PUT /files/content?path=`: the raw body (streamed; the node caps it at 10 MiB).
async fn write(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesWrite>,
    uri: Uri,
    body: Body,
) -> AppResult<Response> {
    proxy::relay::<api::FilesWrite>(&state, &instance, uri.query(), HeaderMap::new(), body).await
}

/// JSON-bodied writes: the body is checked as JSON here, then relayed.
async fn json_write<E>(state: &AppState, instance: &Instance, body: &Value) -> AppResult<Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str, Query = Relayed>,
{
    let bytes = serde_json::to_vec(body).map_err(|e| crate::error::AppError::Internal(e.into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    proxy::relay::<E>(state, instance, None, headers, Body::from(bytes)).await
}

macro_rules! json_route {
    ($name:ident, $endpoint:ty) => {
        async fn $name(
            State(state): State<AppState>,
            // Authorized before the body is read: a caller without the permission
            // gets 403 (or 404 outside the organization), whatever they sent.
            Authorized {
                resource: instance, ..
            }: Authorized<Instance, perm::InstancesFilesWrite>,
            request: axum::extract::Request,
        ) -> AppResult<Response> {
            let AppJson(body) =
                <AppJson<Value> as axum::extract::FromRequest<AppState>>::from_request(
                    request, &state,
                )
                .await?;
            json_write::<$endpoint>(&state, &instance, &body).await
        }
    };
}

json_route!(delete, api::FilesDelete);
json_route!(mkdir, api::FilesMkdir);
json_route!(rename, api::FilesMove);
json_route!(copy, api::FilesCopy);
json_route!(chmod, api::FilesChmod);
json_route!(compress, api::FilesCompress);
json_route!(decompress, api::FilesDecompress);
json_route!(pull, api::FilesPull);
