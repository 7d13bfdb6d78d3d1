//! `/v1/alerts`: the alerts rules raised, filtered; acknowledgement (who and when),
//! silencing, and the unread count (alerts fired since the caller last marked them seen,
//! not acknowledged, across the organizations where the caller holds `alerts.read`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::store::{self, Alert, Filter};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::db::ts;
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::permissions::load_membership;
use crate::orgs::scope::scoped;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// An alert as shown.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertView {
    pub id: String,
    pub organization_id: String,
    pub rule_id: String,
    pub target_type: String,
    pub target_id: String,
    /// The node the target runs on (the target itself for a node).
    pub node_id: Option<String>,
    pub metric: String,
    pub severity: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// The last value seen (1/0 for conditions).
    pub value: Option<f64>,
    pub message: String,
    /// The target's node is offline: nothing is known of it since (not a recovery).
    pub no_data: bool,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub pending_since: i64,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub fired_at: Option<i64>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub resolved_at: Option<i64>,
    pub acked_by: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub acked_at: Option<i64>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub silenced_until: Option<i64>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
}

impl From<Alert> for AlertView {
    fn from(a: Alert) -> Self {
        Self {
            id: a.id,
            organization_id: a.org_id,
            rule_id: a.rule_id,
            target_type: a.target_type,
            target_id: a.target_id,
            node_id: a.node_id,
            metric: a.metric,
            severity: a.severity,
            state: a.state,
            value: a.value,
            message: a.message,
            no_data: a.no_data,
            pending_since: a.pending_since,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            acked_by: a.acked_by,
            acked_at: a.acked_at,
            silenced_until: a.silenced_until,
            created_at: a.created_at,
        }
    }
}

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ListQuery {
    pub organization_id: Option<String>,
    /// `pending`, `firing` or `resolved`.
    pub state: Option<String>,
    /// `info`, `warn` or `critical`.
    pub severity: Option<String>,
    /// A node or server id.
    pub target: Option<String>,
}

/// `{"data": [alert...], "pagination": {...}}` of one organization, newest first.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(q): AppQuery<ListQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<AlertView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(
        &state,
        &user,
        q.organization_id.as_deref(),
        perm::AlertsRead::KEY,
    )
    .await?;
    if let Some(s) = q.state.as_deref()
        && !["pending", "firing", "resolved"].contains(&s)
    {
        return Err(AppError::invalid_field(
            "state",
            "state must be one of pending, firing, resolved",
        ));
    }
    if let Some(s) = q.severity.as_deref()
        && !["info", "warn", "critical"].contains(&s)
    {
        return Err(AppError::invalid_field(
            "severity",
            "severity must be one of info, warn, critical",
        ));
    }
    if q.target.as_deref().is_some_and(|t| t.contains('\0')) {
        return Err(AppError::invalid_field("target", "target is not an id"));
    }
    let filter = Filter {
        state: q.state.as_deref(),
        severity: q.severity.as_deref(),
        target_id: q.target.as_deref(),
    };
    let (rows, total) =
        store::list_alerts(&state.db.pool, &member.org_id, &filter, limit, offset).await?;
    Ok(AppJson(Page::new(
        rows.into_iter().map(AlertView::from).collect(),
        page,
        total,
    )))
}

/// One alert.
pub async fn get(
    Authorized { resource, .. }: Authorized<Alert, perm::AlertsRead>,
) -> AppResult<AppJson<AlertView>> {
    Ok(AppJson(resource.into()))
}

/// Acknowledges an alert: who and when are recorded (the first acknowledgement stands);
/// it no longer counts as unread.
pub async fn ack(
    State(state): State<AppState>,
    Authorized { resource, user, .. }: Authorized<Alert, perm::AlertsWrite>,
) -> AppResult<AppJson<AlertView>> {
    store::ack(
        &state.db.pool,
        &resource.id,
        &user.user.id,
        state.clock.now_ms(),
    )
    .await?;
    let alert = store::find_alert(&state.db.pool, &resource.id)
        .await?
        .ok_or_else(|| AppError::not_found("alert"))?;
    Ok(AppJson(alert.into()))
}

/// `{"minutes": n}` of `POST /v1/alerts/{id}/silence`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SilenceBody {
    /// 0 ends a silence; at most a week.
    pub minutes: i64,
}

/// Holds back an alert's notifications for a while (its states still change).
pub async fn silence(
    State(state): State<AppState>,
    Authorized { resource, .. }: Authorized<Alert, perm::AlertsWrite>,
    AppJson(body): AppJson<SilenceBody>,
) -> AppResult<AppJson<AlertView>> {
    if !(0..=7 * 24 * 60).contains(&body.minutes) {
        return Err(AppError::invalid_field(
            "minutes",
            "minutes must be between 0 and 10080",
        ));
    }
    let now = state.clock.now_ms();
    let until = now + body.minutes * 60_000;
    store::silence(&state.db.pool, &resource.id, until, now).await?;
    let alert = store::find_alert(&state.db.pool, &resource.id)
        .await?
        .ok_or_else(|| AppError::not_found("alert"))?;
    Ok(AppJson(alert.into()))
}

/// The unread count.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UnreadCount {
    pub count: i64,
}

/// Alerts fired since the caller last marked them seen and not acknowledged, in every
/// organization where the caller holds `alerts.read`.
pub async fn unread_count(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<UnreadCount>> {
    let pool = &state.db.pool;
    let since = store::seen_at(pool, &user.user.id).await?;
    let mut count = 0;
    for org_id in store::member_orgs(pool, &user.user.id).await? {
        let readable = load_membership(&state, &org_id, &user.user.id)
            .await?
            .is_some_and(|m| m.can(perm::AlertsRead::KEY));
        if readable {
            count += store::count_unread(pool, &org_id, since).await?;
        }
    }
    Ok(AppJson(UnreadCount { count }))
}

/// Marks every alert fired so far seen by the caller (the unread count drops to 0).
pub async fn mark_read(State(state): State<AppState>, user: CurrentUser) -> AppResult<StatusCode> {
    store::mark_seen(&state.db.pool, &user.user.id, state.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
