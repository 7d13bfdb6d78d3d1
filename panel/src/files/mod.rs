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
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;

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
async fn get_as(
    state: &AppState,
    instance: &Instance,
    rest: &str,
    uri: &Uri,
    headers: HeaderMap,
) -> AppResult<Response> {
    proxy::relay(
        state,
        instance,
        Method::GET,
        rest,
        uri.query(),
        headers,
        Body::empty(),
    )
    .await
}

async fn list(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as(&state, &instance, "/files", &uri, HeaderMap::new()).await
}

async fn stat(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as(&state, &instance, "/files/stat", &uri, HeaderMap::new()).await
}

async fn search(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as(&state, &instance, "/files/search", &uri, HeaderMap::new()).await
}

async fn read(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as(&state, &instance, "/files/content", &uri, HeaderMap::new()).await
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
    get_as(&state, &instance, "/files/download", &uri, fwd).await
}

async fn download_zip(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    uri: Uri,
) -> AppResult<Response> {
    get_as(
        &state,
        &instance,
        "/files/download-zip",
        &uri,
        HeaderMap::new(),
    )
    .await
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
    proxy::relay(
        &state,
        &instance,
        Method::PUT,
        "/files/content",
        uri.query(),
        HeaderMap::new(),
        body,
    )
    .await
}

/// JSON-bodied writes: the body is checked as JSON here, then relayed.
async fn json_write(
    state: &AppState,
    instance: &Instance,
    method: Method,
    rest: &str,
    body: &Value,
) -> AppResult<Response> {
    let bytes = serde_json::to_vec(body).map_err(|e| crate::error::AppError::Internal(e.into()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    proxy::relay(
        state,
        instance,
        method,
        rest,
        None,
        headers,
        Body::from(bytes),
    )
    .await
}

macro_rules! json_route {
    ($name:ident, $method:expr, $rest:literal) => {
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
            json_write(&state, &instance, $method, $rest, &body).await
        }
    };
}

json_route!(delete, Method::DELETE, "/files");
json_route!(mkdir, Method::POST, "/files/mkdir");
json_route!(rename, Method::POST, "/files/move");
json_route!(copy, Method::POST, "/files/copy");
json_route!(chmod, Method::POST, "/files/chmod");
json_route!(compress, Method::POST, "/files/compress");
json_route!(decompress, Method::POST, "/files/decompress");
json_route!(pull, Method::POST, "/files/pull");
