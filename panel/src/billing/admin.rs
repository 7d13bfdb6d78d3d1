//! Platform admins' view of every subscription (`/v1/admin/subscriptions*`): change an
//! organization's plan (at Stripe, prorated, when it pays through Stripe; else the plan
//! is given, status `manual`), cancel at the period's end, resume, or end it now.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::plans;
use super::subscriptions::{self, Row};
use crate::auth::extract::AdminUser;
use crate::db::ts;
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// A subscription as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminSubscription {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub plan_id: Option<String>,
    pub plan_name: Option<String>,
    pub status: String,
    pub interval: String,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub past_due_since: Option<i64>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub suspended_at: Option<i64>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    #[serde(with = "ts::option")]
    #[schemars(with = "Option<crate::types::Timestamp>")]
    pub synced_at: Option<i64>,
    /// What the last reconciliation found different from Stripe (and put right).
    pub drift: Option<String>,
}

/// `GET /v1/admin/subscriptions`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminSubscriptionList {
    pub billing_enabled: bool,
    pub data: Vec<AdminSubscription>,
}

async fn view(state: &AppState, row: Row) -> AppResult<AdminSubscription> {
    let org_name = crate::orgs::store::find(&state.db.pool, &row.org_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let plan_name = match &row.plan_id {
        Some(id) => plans::find(&state.db.pool, id).await?.map(|p| p.name),
        None => None,
    };
    Ok(AdminSubscription {
        id: row.id,
        organization_id: row.org_id,
        organization_name: org_name,
        plan_id: row.plan_id,
        plan_name,
        status: row.status,
        interval: row.billing_interval,
        current_period_end: row.current_period_end,
        cancel_at_period_end: row.cancel_at_period_end,
        past_due_since: row.past_due_since,
        suspended_at: row.suspended_at,
        stripe_customer_id: row.stripe_customer_id,
        stripe_subscription_id: row.stripe_subscription_id,
        synced_at: row.synced_at,
        drift: row.drift,
    })
}

/// `GET /v1/admin/subscriptions`: every organization's subscription, newest first.
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<AdminSubscriptionList>> {
    let mut data = Vec::new();
    for row in subscriptions::all(&state.db.pool).await? {
        data.push(view(&state, row).await?);
    }
    Ok(AppJson(AdminSubscriptionList {
        billing_enabled: super::enabled(&state),
        data,
    }))
}

/// `PUT /v1/admin/subscriptions/{id}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdate {
    /// Move the organization to this plan.
    #[serde(default)]
    pub plan_id: Option<String>,
    /// `month` or `year` (with `plan_id`).
    #[serde(default)]
    pub interval: Option<String>,
    /// `cancel_now`, `cancel_at_period_end` or `resume`.
    #[serde(default)]
    pub action: Option<String>,
}

/// `PUT /v1/admin/subscriptions/{id}`: `{id}` is a subscription's id, or an
/// organization's (one without a subscription is then given the plan, `manual`).
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<AdminUpdate>,
) -> AppResult<AppJson<AdminSubscription>> {
    let now = state.clock.now_ms();
    let row = match subscriptions::by_id(&state.db.pool, &id).await? {
        Some(r) => r,
        None => {
            if crate::orgs::store::find(&state.db.pool, &id)
                .await?
                .is_none()
            {
                return Err(AppError::not_found("subscription"));
            }
            let mut conn = state.db.pool.acquire().await?;
            subscriptions::ensure_row(&mut conn, &id, now).await?
        }
    };
    let interval = body
        .interval
        .as_deref()
        .unwrap_or(&row.billing_interval)
        .to_owned();
    if interval != "month" && interval != "year" {
        return Err(AppError::invalid_field(
            "interval",
            "interval must be month or year",
        ));
    }
    if body.plan_id.is_none() && body.action.is_none() {
        return Err(AppError::invalid_field("", "give plan_id, action or both"));
    }
    let live = row
        .stripe_subscription_id
        .clone()
        .filter(|_| subscriptions::holds_plan(&row.status) && row.status != "manual");
    if let Some(plan_id) = &body.plan_id {
        let plan = plans::find(&state.db.pool, plan_id)
            .await?
            .ok_or_else(|| AppError::invalid_field("plan_id", "no such plan"))?;
        match (&live, super::client(&state)) {
            (Some(sub_id), Some(stripe)) => {
                let price = plan.price_id(&interval).ok_or_else(|| {
                    AppError::invalid_field(
                        "plan_id",
                        format!("the {} plan has no Stripe price for {interval}", plan.name),
                    )
                })?;
                let current = stripe.subscription(sub_id).await?;
                let changed = stripe.change_price(&current, price, &plan.id).await?;
                super::events::apply_now(&state, &changed).await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE subscriptions SET plan_id = $1, status = 'manual', \
                     billing_interval = $2, past_due_since = NULL, updated_at = $3 WHERE id = $4",
                )
                .bind(&plan.id)
                .bind(&interval)
                .bind(now)
                .bind(&row.id)
                .execute(&state.db.pool)
                .await?;
            }
        }
    }
    if let Some(action) = body.action.as_deref() {
        let stripe = super::client(&state);
        match (action, &live, stripe) {
            ("cancel_now", Some(sub_id), Some(stripe)) => {
                let sub = stripe.cancel_now(sub_id).await?;
                super::events::apply_now(&state, &sub).await?;
            }
            ("cancel_now", _, _) => {
                sqlx::query(
                    "UPDATE subscriptions SET status = 'canceled', updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(&row.id)
                .execute(&state.db.pool)
                .await?;
            }
            ("cancel_at_period_end" | "resume", Some(sub_id), Some(stripe)) => {
                let sub = stripe
                    .set_cancel_at_period_end(sub_id, action == "cancel_at_period_end")
                    .await?;
                super::events::apply_now(&state, &sub).await?;
            }
            ("cancel_at_period_end" | "resume", _, _) => {
                return Err(AppError::coded(
                    StatusCode::CONFLICT,
                    "NO_SUBSCRIPTION",
                    "only a Stripe subscription ends at its period's end: use cancel_now",
                ));
            }
            _ => {
                return Err(AppError::invalid_field(
                    "action",
                    "action must be cancel_now, cancel_at_period_end or resume",
                ));
            }
        }
    }
    let row = subscriptions::by_id(&state.db.pool, &row.id)
        .await?
        .ok_or_else(|| AppError::not_found("subscription"))?;
    Ok(AppJson(view(&state, row).await?))
}
