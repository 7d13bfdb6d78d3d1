//! `/v1/alerts/maintenance`: planned downtime. While a window is open, no alert of its
//! target opens (a server stopped for maintenance is not `instance_down`, a node taken
//! down is not `node_offline`) and nothing of the target is notified; a window on a
//! node covers the node's servers, one with no `target_id` every target of its type.
//! Reading needs `alerts.read`, writing `alerts.write`; deleting an open window ends it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::rules::{one_of, target_in_org};
use super::store::{self, Window};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::db::{new_id, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use crate::types::Timestamp;

/// The longest window: 30 days.
const MAX_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;
/// How far ahead a window may start: a year.
const MAX_AHEAD_MS: i64 = 365 * 24 * 3600 * 1000;
/// The longest reason, in characters.
const MAX_REASON: usize = 200;

/// A new window.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowBody {
    /// The organization (the personal one by default).
    pub organization_id: Option<String>,
    /// `node` or `instance`.
    pub target_type: String,
    /// One target; null for every target of the type in the organization.
    pub target_id: Option<String>,
    /// When it opens (now by default).
    pub starts_at: Option<Timestamp>,
    /// When it closes; or give `duration_minutes` instead.
    pub ends_at: Option<Timestamp>,
    /// How long it stays open from `starts_at` (1 to 43200, 30 days).
    pub duration_minutes: Option<i64>,
    /// Why (shown on the alerts page).
    pub reason: Option<String>,
}

/// A window as shown.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowView {
    pub id: String,
    pub organization_id: String,
    pub target_type: String,
    pub target_id: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub starts_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub ends_at: i64,
    pub reason: String,
    /// Open now.
    pub active: bool,
    pub created_by: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
}

impl WindowView {
    fn of(w: Window, now: i64) -> Self {
        Self {
            active: w.starts_at <= now && now < w.ends_at,
            id: w.id,
            organization_id: w.org_id,
            target_type: w.target_type,
            target_id: w.target_id,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            reason: w.reason,
            created_by: w.created_by,
            created_at: w.created_at,
        }
    }
}

/// `{"data": [window...], "pagination": {...}}`: an organization's open and coming
/// windows, soonest first (ended ones are not listed).
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<WindowView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::AlertsRead::KEY,
    )
    .await?;
    let now = state.clock.now_ms();
    let pool = &state.db.pool;
    let rows = store::list_windows(pool, &member.org_id, now, limit, offset).await?;
    let total = store::count_windows(pool, &member.org_id, now).await?;
    Ok(AppJson(Page::new(
        rows.into_iter().map(|w| WindowView::of(w, now)).collect(),
        page,
        total,
    )))
}

/// When a body's window opens and closes, checked.
fn span(body: &WindowBody, now: i64) -> AppResult<(i64, i64)> {
    let starts_at = body.starts_at.map_or(now, Timestamp::millis);
    if starts_at > now + MAX_AHEAD_MS {
        return Err(AppError::invalid_field(
            "starts_at",
            "starts_at must be within a year",
        ));
    }
    let ends_at = match (body.ends_at, body.duration_minutes) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid_field(
                "duration_minutes",
                "give ends_at or duration_minutes, not both",
            ));
        }
        (None, None) => {
            return Err(AppError::invalid_field(
                "ends_at",
                "ends_at or duration_minutes is required",
            ));
        }
        (Some(end), None) => end.millis(),
        (None, Some(minutes)) => {
            if !(1..=MAX_WINDOW_MS / 60_000).contains(&minutes) {
                return Err(AppError::invalid_field(
                    "duration_minutes",
                    format!(
                        "duration_minutes must be between 1 and {}",
                        MAX_WINDOW_MS / 60_000
                    ),
                ));
            }
            starts_at + minutes * 60_000
        }
    };
    if ends_at <= starts_at || ends_at <= now {
        return Err(AppError::invalid_field(
            "ends_at",
            "ends_at must be after starts_at and in the future",
        ));
    }
    if ends_at - starts_at > MAX_WINDOW_MS {
        return Err(AppError::invalid_field(
            "ends_at",
            "a window lasts at most 30 days",
        ));
    }
    Ok((starts_at, ends_at))
}

/// Opens (or schedules) a window in `organization_id` (body or query).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<WindowBody>,
) -> AppResult<(StatusCode, AppJson<WindowView>)> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::AlertsWrite::KEY).await?;
    one_of("target_type", &body.target_type, &["node", "instance"])?;
    let now = state.clock.now_ms();
    let (starts_at, ends_at) = span(&body, now)?;
    let reason = body.reason.as_deref().unwrap_or("").trim().to_owned();
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "reason",
            format!("reason must be at most {MAX_REASON} characters without control characters"),
        ));
    }
    let target_id =
        target_in_org(&state, &member.org_id, &body.target_type, body.target_id).await?;
    let window = Window {
        id: new_id(),
        org_id: member.org_id.clone(),
        target_type: body.target_type,
        target_id,
        starts_at,
        ends_at,
        reason,
        created_by: Some(user.user.id.clone()),
        created_at: now,
    };
    store::insert_window(&state.db.pool, &window).await?;
    tracing::info!(window.id = %window.id, target.kind = %window.target_type, target.id = ?window.target_id, "maintenance window set");
    Ok((StatusCode::CREATED, AppJson(WindowView::of(window, now))))
}

/// One window.
pub async fn get(
    State(state): State<AppState>,
    Authorized {
        resource: window, ..
    }: Authorized<Window, perm::AlertsRead>,
) -> AppResult<AppJson<WindowView>> {
    Ok(AppJson(WindowView::of(window, state.clock.now_ms())))
}

/// Deletes a window: an open one ends now.
pub async fn delete(
    State(state): State<AppState>,
    Authorized {
        resource: window, ..
    }: Authorized<Window, perm::AlertsWrite>,
) -> AppResult<StatusCode> {
    if !store::delete_window(&state.db.pool, &window.id).await? {
        return Err(AppError::not_found("maintenance window"));
    }
    Ok(StatusCode::NO_CONTENT)
}
