//! Organization invitations: invite by email, list and revoke pending invites, accept
//! (also during `invite_only` registration). The token travels only by mail; the
//! database keeps its SHA-256.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sqlx::AnyConnection;

use super::invite_store::{self, Invite};
use super::permissions::{Role, authorize};
use super::store;
use crate::auth::crypto::{normalize_email, random_hex, sha256_hex};
use crate::auth::extract::CurrentUser;
use crate::billing::limits::{self, Ask, Limit};
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::mailer::Template;
use crate::state::AppState;

/// How long an invitation stays valid.
const INVITE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct InviteRequest {
    // Optional at parse time so a caller outside the organization gets its 404 first.
    email: Option<String>,
    role: Option<String>,
}

/// Invites an email address to the organization and mails it a single-use link.
pub async fn invite(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
    AppJson(body): AppJson<InviteRequest>,
) -> AppResult<(StatusCode, AppJson<Invite>)> {
    let me = authorize(&state, &user, &org_id, "members.invite").await?;
    let email = normalize_email(body.email.as_deref().unwrap_or_default())?;
    let role = Role::parse(body.role.as_deref().unwrap_or("viewer"))?;
    if role == Role::Owner && me.role != Role::Owner {
        return Err(AppError::Forbidden(
            "only an owner can invite someone as owner".into(),
        ));
    }
    if invite_store::email_is_member(&state.db.pool, &org_id, &email).await? {
        return Err(AppError::Conflict(
            "this email already belongs to a member of the organization".into(),
        ));
    }
    let org = store::find(&state.db.pool, &org_id)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    let token = random_hex(32);
    let now = now_ms();
    let invite = Invite {
        id: new_id(),
        org_id: org_id.clone(),
        email,
        role: role.as_str().into(),
        expires_at: now + INVITE_TTL_MS,
        created_at: now,
        invited_by: Some(user.user.id.clone()),
    };
    // A seat for the invite: members and pending invites (this address's earlier invite,
    // replaced, aside) must fit the plan, with the organization held.
    let mut tx = limits::lock(&state, &org_id).await?;
    invite_store::delete_unaccepted_for_email(&mut *tx, &org_id, &invite.email).await?;
    limits::check(&mut tx, &state, &org_id, &[Ask::new(Limit::Members, 1)]).await?;
    invite_store::insert(&mut *tx, &invite, &sha256_hex(&token)).await?;
    tx.commit().await?;

    let link = format!("{}/invites/{token}", state.base_url());
    let inviter = if user.user.name.is_empty() {
        user.user.email.clone()
    } else {
        format!("{} ({})", user.user.name, user.user.email)
    };
    state.mailer.send_template(
        &invite.email,
        &Template::OrgInvite {
            org_name: org.name.clone(),
            inviter,
            role: invite.role.clone(),
            link,
            token,
            expires_at: rfc3339(invite.expires_at),
        },
    );
    Ok((StatusCode::CREATED, AppJson(invite)))
}

/// The organization's pending invitations (never their tokens).
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(org_id): AppPath<String>,
) -> AppResult<AppJson<Vec<Invite>>> {
    authorize(&state, &user, &org_id, "members.invite").await?;
    Ok(AppJson(
        invite_store::pending(&state.db.pool, &org_id, now_ms()).await?,
    ))
}

/// Revokes an invitation.
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath((org_id, invite_id)): AppPath<(String, String)>,
) -> AppResult<StatusCode> {
    authorize(&state, &user, &org_id, "members.invite").await?;
    if invite_store::delete(&state.db.pool, &org_id, &invite_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("invite"))
    }
}

/// The pending invitation `token` opens.
///
/// # Errors
/// Database failures.
pub async fn find_pending(state: &AppState, token: &str) -> AppResult<Option<Invite>> {
    Ok(
        invite_store::find_pending_by_token_hash(&state.db.pool, &sha256_hex(token), now_ms())
            .await?,
    )
}

/// Whether an account's email is the one `invite` was sent to.
#[must_use]
pub fn email_matches(invite: &Invite, account_email: &str) -> bool {
    normalize_email(account_email).is_ok_and(|e| e == invite.email)
}

/// Consumes `invite` for `user_id` and adds them with the invited role (an existing
/// membership is left as it is). `false` when the invite was used or expired meanwhile.
/// `conn` is the transaction of [`limits::lock`] on the invite's organization: the new
/// member must fit the plan's `members` cap.
///
/// # Errors
/// 402 `PLAN_LIMIT` when the organization has no seat left; database failures.
pub async fn consume(
    conn: &mut AnyConnection,
    state: &AppState,
    invite: &Invite,
    user_id: &str,
) -> AppResult<bool> {
    if !invite_store::mark_accepted(&mut *conn, &invite.id, user_id, now_ms()).await? {
        return Ok(false);
    }
    // Refused: the caller drops the transaction, so the invite stays pending.
    seat_left(&mut *conn, state, &invite.org_id).await?;
    invite_store::add_member_if_absent(&mut *conn, &invite.org_id, user_id, &invite.role).await?;
    Ok(true)
}

/// Refuses (402 `PLAN_LIMIT`) one more member of `org_id` past its plan's `members`
/// cap. At accept only members count: the invite being accepted held its seat, and the
/// other pending ones are served in the order they are accepted.
async fn seat_left(conn: &mut AnyConnection, state: &AppState, org_id: &str) -> AppResult<()> {
    let Some(plan) = limits::plan_for(&mut *conn, state, org_id).await? else {
        return Ok(());
    };
    let Some(cap) = Limit::Members.cap(&plan.limits) else {
        return Ok(());
    };
    let members = invite_store::member_count(conn, org_id).await?;
    if members < cap {
        return Ok(());
    }
    Err(AppError::PlanLimit {
        limit: Limit::Members.key(),
        usage: members,
        cap,
        message: format!(
            "the organization's {} plan allows {cap} member(s) and it has {members}: \
             ask its owner to free a seat or upgrade the plan",
            plan.name
        ),
    })
}

/// Joins the caller to the organization of an invitation sent to their email.
pub async fn accept(
    State(state): State<AppState>,
    user: CurrentUser,
    AppPath(token): AppPath<String>,
) -> AppResult<AppJson<store::OrgWithRole>> {
    let invite = find_pending(&state, &token)
        .await?
        .ok_or_else(|| AppError::not_found("invite"))?;
    if !email_matches(&invite, &user.user.email) {
        return Err(AppError::Forbidden(
            "this invite was sent to another email address; sign in with that account to accept it"
                .into(),
        ));
    }
    if store::member_role(&state.db.pool, &invite.org_id, &user.user.id)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(
            "you are already a member of this organization".into(),
        ));
    }
    let mut tx = limits::lock(&state, &invite.org_id).await?;
    if !consume(&mut tx, &state, &invite, &user.user.id).await? {
        return Err(AppError::not_found("invite"));
    }
    tx.commit().await?;
    crate::readcache::changed();
    store::find_for_member(&state.db.pool, &invite.org_id, &user.user.id)
        .await?
        .map(AppJson)
        .ok_or_else(|| AppError::not_found("organization"))
}
