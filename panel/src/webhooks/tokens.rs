//! `/v1/webhook-tokens`: an organization's webhook tokens. A token is
//! `shardlyn_whk_` + 32 random bytes (hex), shown once at creation and sealed for storage
//! (GitHub's HMAC must be recomputed with it, so a digest would not do). Every action
//! needs `webhooks.manage` in the token's organization.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::store::{self, WebhookToken};
use crate::auth::crypto::random_hex;
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, perm};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::pagination::{Page, PageParams};
use crate::sealed;
use crate::state::AppState;

/// What every webhook secret starts with.
pub const SECRET_PREFIX: &str = "shardlyn_whk_";
/// Hex characters of the secret kept in clear to find the token (`X-Gitlab-Token`).
pub const PREFIX_LEN: usize = 8;

/// The permission every webhook-token action needs.
pub const PERMISSION: &str = "webhooks.manage";

/// The prefix stored for a secret, when it has our shape.
#[must_use]
pub fn prefix_of(secret: &str) -> Option<&str> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|rest| rest.get(..PREFIX_LEN))
}

/// Where to point each provider at.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Urls {
    /// GitHub payload URL; its secret is the token's secret, content type JSON or form.
    pub github: String,
    /// GitLab URL; its secret token is the token's secret.
    pub gitlab: String,
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub prefix: String,
    pub urls: Urls,
    pub created_by: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub last_used_at: Option<i64>,
}

impl TokenView {
    fn new(state: &AppState, t: WebhookToken) -> Self {
        let base = state.base_url();
        Self {
            urls: Urls {
                github: format!("{base}/v1/webhooks/github?token={}", t.id),
                gitlab: format!("{base}/v1/webhooks/gitlab?token={}", t.id),
            },
            id: t.id,
            organization_id: t.org_id,
            name: t.name,
            prefix: t.prefix,
            created_by: t.created_by,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// `{"data": [token...], "pagination": {...}}` of one organization.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<TokenView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(&state, &user, org.organization_id.as_deref(), PERMISSION).await?;
    let rows = store::list(&state.db.pool, &member.org_id, limit, offset).await?;
    let total = store::count(&state.db.pool, &member.org_id).await?;
    let data = rows
        .into_iter()
        .map(|t| TokenView::new(&state, t))
        .collect();
    Ok(AppJson(Page::new(data, page, total)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateToken {
    name: String,
    organization_id: Option<String>,
}

/// A token just created, with its secret (shown this once).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Created {
    #[serde(flatten)]
    token: TokenView,
    secret: String,
}

/// Creates a token in `organization_id` (body or query; the personal one by default).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<CreateToken>,
) -> AppResult<(StatusCode, AppJson<Created>)> {
    let requested = crate::orgs::scope::requested_org(body.organization_id, org.organization_id)?;
    // Authorization first: a caller outside the organization learns nothing from 400s.
    let member = scoped(&state, &user, requested.as_deref(), PERMISSION).await?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    let random = random_hex(32);
    let secret = format!("{SECRET_PREFIX}{random}");
    let token = WebhookToken {
        id: new_id(),
        org_id: member.org_id,
        name: name.to_string(),
        prefix: random[..PREFIX_LEN].to_string(),
        sealed_secret: sealed::seal(&state.master_key, secret.as_bytes()),
        created_by: Some(user.user.id.clone()),
        created_at: now_ms(),
        last_used_at: None,
    };
    store::insert(&state.db.pool, &token).await?;
    Ok((
        StatusCode::CREATED,
        AppJson(Created {
            token: TokenView::new(&state, token),
            secret,
        }),
    ))
}

/// Deletes a token; deliveries signed with it are refused from then on.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: token, ..
    }: Authorized<WebhookToken, perm::WebhooksManage>,
) -> AppResult<StatusCode> {
    if !store::delete(&state.db.pool, &token.id).await? {
        return Err(AppError::not_found("webhook token"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of("shardlyn_whk_0123456789abcdef"), Some("01234567"));
        assert_eq!(prefix_of("shardlyn_whk_0123"), None);
        assert_eq!(prefix_of("other"), None);
        assert_eq!(
            prefix_of("shardlyn_whk_abcdefgé"),
            None,
            "not a char boundary"
        );
    }
}
