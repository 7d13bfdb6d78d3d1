//! API tokens for automation: `shardlyn_api_` + 32 random bytes, shown once, stored as
//! SHA-256 and found by an 8-character prefix; deleting one revokes it at once.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::crypto::{random_hex, sha256_hex};
use crate::auth::extract::{API_TOKEN_PREFIX, SessionUser};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::routes::{Access, Routes};
use crate::state::AppState;

/// Longest lifetime a token may ask for: ten years.
const MAX_EXPIRES_IN: i64 = 10 * 365 * 24 * 3600;

/// `/v1/api-tokens`.
pub fn router() -> Routes {
    Routes::new("api-tokens")
        .get("/v1/api-tokens", Access::Session, "List tokens", list)
        .post("/v1/api-tokens", Access::Session, "Create token", create)
        .delete(
            "/v1/api-tokens/{id}",
            Access::Session,
            "Delete token",
            delete,
        )
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The first characters after `shardlyn_api_`, to tell tokens apart.
    pub prefix: String,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub expires_at: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub last_used_at: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
) -> AppResult<AppJson<Vec<TokenView>>> {
    let tokens = sqlx::query_as(
        "SELECT id, name, prefix, expires_at, created_at, last_used_at FROM api_tokens \
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(&user.user.id)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(AppJson(tokens))
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateToken {
    pub name: String,
    /// Lifetime in seconds; absent or null for a token that does not expire.
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub token: String,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub expires_at: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
}

async fn create(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppJson(body): AppJson<CreateToken>,
) -> AppResult<(StatusCode, AppJson<Created>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Validation(
            "name must be 1 to 100 characters without control characters".into(),
        ));
    }
    if let Some(secs) = body.expires_in
        && !(60..=MAX_EXPIRES_IN).contains(&secs)
    {
        return Err(AppError::Validation(format!(
            "expires_in must be between 60 and {MAX_EXPIRES_IN} seconds"
        )));
    }
    let secret = random_hex(32);
    let token = format!("{API_TOKEN_PREFIX}{secret}");
    let now = now_ms();
    let expires_at = body.expires_in.map(|s| now + s * 1000);
    let id = new_id();
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&user.user.id)
    .bind(name)
    .bind(&secret[..8])
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(expires_at)
    .execute(&state.db.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(Created {
            id,
            name: name.to_string(),
            token,
            expires_at,
            created_at: now,
        }),
    ))
}

async fn delete(
    State(state): State<AppState>,
    SessionUser(user): SessionUser,
    AppPath(id): AppPath<String>,
) -> AppResult<StatusCode> {
    let result = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&user.user.id)
        .execute(&state.db.pool)
        .await?;
    if result.rows_affected() == 0 {
        return Err(AppError::not_found("API token"));
    }
    state.auth_cache.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
