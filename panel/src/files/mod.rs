//! The files API: `/v1/instances/{id}/files...`. Each handler authorizes the caller
//! (`instances.files.read` for reads, `instances.files.write` for writes), checks the
//! query and JSON body against their `shardlyn_proto::files` types (a malformed one is
//! refused here, naming the field), then relays the request to the instance's agent
//! through the tunnel, streaming bodies both ways. The answers are documented as their
//! types (`typed`).
//! The agent owns the sandbox (paths, denylist, disk limit); its 4xx answers (with their
//! stable codes: `BAD_PATH`, `FILE_DENIED`, `PATH_ESCAPE`, `DISK_LIMIT`, `BINARY_FILE`...)
//! are handed on unchanged. The tus upload (`/files/tus`) lives in `uploads`.

mod proxy;
pub(crate) mod typed;
mod upload;

use axum::body::Body;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::HeaderMap;
use serde::Serialize;
use shardlyn_proto::agent_api::{self as api, Endpoint};
use shardlyn_proto::files::{ListQuery, PathQuery, SearchQuery};

use self::typed::{Bytes, Later, OctetStream, Relayed, Text, TextBody, Zip};
use crate::authz::{Authorized, perm};
use crate::error::{AppJson, AppQuery, AppResult};
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
        .errors(&[(416, "The requested range is outside the file")])
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

/// The documented answer of the relayed files route `E` (its JSON type) under `STATUS`.
type Answer<E, const STATUS: u16 = 200> = Relayed<<E as Endpoint>::Response, STATUS>;

/// `GET`s: the checked query relayed with an empty body.
async fn get_as<E>(
    state: &AppState,
    instance: &Instance,
    query: &E::Query,
    headers: HeaderMap,
) -> AppResult<axum::response::Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str>,
    E::Query: Serialize,
{
    proxy::relay::<E>(state, instance, query, headers, Body::empty()).await
}

async fn list(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<ListQuery>,
) -> AppResult<Answer<api::FilesList>> {
    get_as::<api::FilesList>(&state, &instance, &q, HeaderMap::new())
        .await
        .map(Into::into)
}

async fn stat(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<PathQuery>,
) -> AppResult<Answer<api::FilesStat>> {
    get_as::<api::FilesStat>(&state, &instance, &q, HeaderMap::new())
        .await
        .map(Into::into)
}

async fn search(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<SearchQuery>,
) -> AppResult<Answer<api::FilesSearch>> {
    get_as::<api::FilesSearch>(&state, &instance, &q, HeaderMap::new())
        .await
        .map(Into::into)
}

async fn read(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<PathQuery>,
) -> AppResult<Bytes<Text>> {
    get_as::<api::FilesRead>(&state, &instance, &q, HeaderMap::new())
        .await
        .map(Into::into)
}

async fn download(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<PathQuery>,
    headers: HeaderMap,
) -> AppResult<Bytes<OctetStream>> {
    let mut fwd = HeaderMap::new();
    if let Some(r) = headers.get(http::header::RANGE) {
        fwd.insert(http::header::RANGE, r.clone());
    }
    get_as::<api::FilesDownload>(&state, &instance, &q, fwd)
        .await
        .map(Into::into)
}

async fn download_zip(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesRead>,
    AppQuery(q): AppQuery<PathQuery>,
) -> AppResult<Bytes<Zip>> {
    get_as::<api::FilesDownloadZip>(&state, &instance, &q, HeaderMap::new())
        .await
        .map(Into::into)
}

/// `PUT /files/content?path=`: the raw body (streamed; the node caps it at 10 MiB).
async fn write(
    State(state): State<AppState>,
    Authorized {
        resource: instance, ..
    }: Authorized<Instance, perm::InstancesFilesWrite>,
    AppQuery(q): AppQuery<PathQuery>,
    TextBody(body): TextBody,
) -> AppResult<Answer<api::FilesWrite>> {
    proxy::relay_drained::<api::FilesWrite>(&state, &instance, &q, body)
        .await
        .map(Into::into)
}

/// JSON-bodied writes: the body, checked as `E::Request` here, relayed re-serialized.
async fn json_write<E>(
    state: &AppState,
    instance: &Instance,
    body: &E::Request,
) -> AppResult<axum::response::Response>
where
    E: for<'a> Endpoint<Params<'a> = &'a str, Query = ()>,
    E::Request: Serialize,
{
    let (headers, body) = crate::tunnel::AgentConn::json_body::<E>(body)?;
    proxy::relay::<E>(state, instance, &(), headers, body).await
}

macro_rules! json_route {
    ($name:ident, $endpoint:ty, $status:literal) => {
        async fn $name(
            State(state): State<AppState>,
            // Authorized before the body is read: a caller without the permission
            // gets 403 (or 404 outside the organization), whatever they sent.
            Authorized {
                resource: instance, ..
            }: Authorized<Instance, perm::InstancesFilesWrite>,
            body: Later<AppJson<<$endpoint as Endpoint>::Request>>,
        ) -> AppResult<Answer<$endpoint, $status>> {
            let AppJson(body) = body.read(&state).await?;
            json_write::<$endpoint>(&state, &instance, &body)
                .await
                .map(Into::into)
        }
    };
}

json_route!(delete, api::FilesDelete, 200);
json_route!(mkdir, api::FilesMkdir, 201);
json_route!(rename, api::FilesMove, 200);
json_route!(copy, api::FilesCopy, 201);
json_route!(chmod, api::FilesChmod, 200);
json_route!(compress, api::FilesCompress, 201);
json_route!(decompress, api::FilesDecompress, 200);
json_route!(pull, api::FilesPull, 201);
