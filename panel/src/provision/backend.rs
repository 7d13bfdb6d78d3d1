//! Terraform's `http` state backend, served by the panel for its own runs: the state of
//! each provision request lives in the database, sealed with the master key, and its
//! lock is a lease that lapses with the run holding it, so no lock is ever stuck.
//!
//! The protocol (Terraform's `internal/backend/remote-state/http`): `GET` answers the
//! state (204 when there is none) with its `Content-MD5`; `POST` stores it (`?ID=` names
//! the lock the writer holds); `DELETE` forgets it; the lock address takes `POST` (lock)
//! and `DELETE` (unlock) with Terraform's `LockInfo` JSON, and a lock held by someone
//! else answers 423 with the holder's `LockInfo`, which Terraform prints. Only a running
//! run of the same request gets in, with its own Basic credential (user: the run id).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::store;
use crate::auth::crypto::sha256_hex;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Largest state the backend keeps (a node's state is a few kilobytes).
const MAX_STATE_BYTES: usize = 4 * 1024 * 1024;

/// Checks the Basic credential of a run of request `id` that is still running.
async fn authorize(state: &AppState, id: &str, headers: &HeaderMap) -> AppResult<store::Run> {
    let refuse = || AppError::unauthorized("a running provisioning run's credential is required");
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(refuse)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| refuse())?;
    let decoded = String::from_utf8(decoded).map_err(|_| refuse())?;
    let (user, password) = decoded.split_once(':').ok_or_else(refuse)?;
    if user.contains('\0') {
        return Err(refuse());
    }
    let run = store::run(&state.db.pool, user).await?.ok_or_else(refuse)?;
    let matches: bool = sha256_hex(password)
        .as_bytes()
        .ct_eq(run.password_hash.as_bytes())
        .into();
    if !matches
        || run.request_id != id
        || run.status != "running"
        || run.lease_until < state.clock.now_ms()
    {
        return Err(refuse());
    }
    Ok(run)
}

/// A stored state.
#[derive(sqlx::FromRow)]
struct StoredState {
    sealed_state: String,
    md5: String,
}

/// `GET`: the state, or 204 when the request has none yet.
pub async fn get_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    authorize(&state, &id, &headers).await?;
    let row: Option<StoredState> =
        sqlx::query_as("SELECT sealed_state, md5 FROM provision_states WHERE request_id = $1")
            .bind(&id)
            .fetch_optional(&state.db.pool)
            .await?;
    let Some(row) = row else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let body =
        crate::sealed::open(&state.master_key, &row.sealed_state).map_err(AppError::Internal)?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&row.md5) {
        headers.insert("content-md5", v);
    }
    Ok(response)
}

/// `?ID=`: the lock the writer holds.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LockQuery {
    #[serde(rename = "ID")]
    pub id: Option<String>,
}

/// A live lock of a request.
#[derive(sqlx::FromRow)]
struct Held {
    lock_id: String,
    info: String,
    expires_at: i64,
}

async fn held(state: &AppState, id: &str) -> AppResult<Option<Held>> {
    let row: Option<Held> = sqlx::query_as(
        "SELECT lock_id, info, expires_at FROM provision_locks WHERE request_id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(row.filter(|h| h.expires_at >= state.clock.now_ms()))
}

/// 423 with the holder's `LockInfo`, as Terraform expects it.
fn locked(info: String) -> Response {
    (
        StatusCode::LOCKED,
        [(header::CONTENT_TYPE, "application/json")],
        info,
    )
        .into_response()
}

/// `POST`: stores the state (the writer must hold the lock when there is one).
pub async fn put_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LockQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    authorize(&state, &id, &headers).await?;
    if body.len() > MAX_STATE_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return Err(AppError::BadRequest("a Terraform state is JSON".into()));
    }
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
    if let Some(sent) = headers.get("content-md5").and_then(|v| v.to_str().ok())
        && sent != md5
    {
        return Err(AppError::BadRequest(
            "Content-MD5 does not match the body".into(),
        ));
    }
    if let Some(h) = held(&state, &id).await?
        && q.id.as_deref() != Some(h.lock_id.as_str())
    {
        return Ok(locked(h.info));
    }
    let sealed = crate::sealed::seal(&state.master_key, &body);
    let now = state.clock.now_ms();
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("DELETE FROM provision_states WHERE request_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO provision_states (request_id, sealed_state, md5, updated_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(&sealed)
    .bind(&md5)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE`: forgets the state.
pub async fn delete_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    authorize(&state, &id, &headers).await?;
    if let Some(h) = held(&state, &id).await? {
        return Ok(locked(h.info));
    }
    sqlx::query("DELETE FROM provision_states WHERE request_id = $1")
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// The `ID` of a Terraform `LockInfo`.
fn lock_id_of(body: &[u8]) -> AppResult<String> {
    let info: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| AppError::BadRequest("the lock body is Terraform's LockInfo JSON".into()))?;
    info.get("ID")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(str::to_owned)
        .ok_or_else(|| AppError::BadRequest("LockInfo needs an ID".into()))
}

/// Lock: taken when free (or its lease lapsed), 423 with the holder's info otherwise.
/// The lock lasts as long as the run's lease, which the run renews while it works.
pub async fn lock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let run = authorize(&state, &id, &headers).await?;
    if body.len() > 64 * 1024 {
        return Err(AppError::PayloadTooLarge);
    }
    let lock_id = lock_id_of(&body)?;
    let info = String::from_utf8_lossy(&body).into_owned();
    let now = state.clock.now_ms();
    let mut tx = state.db.pool.begin().await?;
    // A lapsed lock is no lock: drop it, then take the row if nobody holds it.
    sqlx::query("DELETE FROM provision_locks WHERE request_id = $1 AND expires_at < $2")
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let taken = sqlx::query(
        "INSERT INTO provision_locks (request_id, lock_id, info, run_id, expires_at) \
         SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS \
         (SELECT 1 FROM provision_locks WHERE request_id = $1)",
    )
    .bind(&id)
    .bind(&lock_id)
    .bind(&info)
    .bind(&run.id)
    .bind(run.lease_until)
    .execute(&mut *tx)
    .await;
    let taken = match taken {
        Ok(done) => done.rows_affected() == 1,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    if taken {
        tracing::info!(provision.id = %id, run.id = %run.id, "state locked");
        return Ok(StatusCode::OK.into_response());
    }
    match held(&state, &id).await? {
        Some(h) => Ok(locked(h.info)),
        None => Err(AppError::Conflict(
            "the state lock changed hands; try again".into(),
        )),
    }
}

/// Unlock: frees the lock whose `ID` the body names (a free state unlocks fine); a
/// different holder answers 423 with its info.
pub async fn unlock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    authorize(&state, &id, &headers).await?;
    let lock_id = lock_id_of(&body)?;
    if let Some(h) = held(&state, &id).await?
        && h.lock_id != lock_id
    {
        return Ok(locked(h.info));
    }
    sqlx::query("DELETE FROM provision_locks WHERE request_id = $1")
        .bind(&id)
        .execute(&state.db.pool)
        .await?;
    Ok(StatusCode::OK.into_response())
}
