//! `/v1/alerts/rules`: an organization's alert rules. Reading needs `alerts.read`,
//! writing `alerts.write`; a rule naming a target or integrations must name the
//! organization's own (404 otherwise). Validation names the field at fault.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::store::{self, Rule};
use crate::auth::extract::CurrentUser;
use crate::authz::{Authorized, Permission, perm};
use crate::db::{new_id, now_ms, ts};
use crate::error::{AppError, AppJson, AppQuery, AppResult};
use crate::orgs::scope::{OrgQuery, scoped};
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// Metrics measured as a number against the threshold (percent, or bytes/s).
pub const THRESHOLD_METRICS: &[&str] = &[
    "cpu_usage",
    "memory_usage",
    "disk_usage",
    "network_rx",
    "network_tx",
];
/// Metrics that are a condition (true or false), their operator and threshold ignored.
pub const EVENT_METRICS: &[&str] = &[
    "instance_down",
    "node_offline",
    "backup_failed",
    "install_failed",
];

/// The target types a metric applies to.
fn targets_of(metric: &str) -> &'static [&'static str] {
    match metric {
        "node_offline" => &["node"],
        "instance_down" | "backup_failed" | "install_failed" => &["instance"],
        // A server's use is in percent of its limits; its network rates are not kept.
        "cpu_usage" | "memory_usage" | "disk_usage" => &["node", "instance"],
        _ => &["node"],
    }
}

/// Hysteresis when the body leaves it out: a condition false for a minute resolves.
const DEFAULT_RESOLVE_AFTER: i64 = 60;
/// Longest duration, hysteresis or cooldown: a week.
const MAX_SECONDS: i64 = 7 * 24 * 3600;
/// Most email recipients or integrations per rule.
const MAX_LIST: usize = 20;

/// A rule's settings, as created (`POST`) or replaced (`PUT`).
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleBody {
    /// The organization (on create; the personal one by default; ignored on update).
    pub organization_id: Option<String>,
    pub name: String,
    /// `node` or `instance`.
    pub target_type: String,
    /// One target; null for every target of the type in the organization.
    pub target_id: Option<String>,
    /// `cpu_usage`, `memory_usage`, `disk_usage` (percent; of a server, of its limits)
    /// of a node or server; `network_rx`, `network_tx` (bytes/s) and `node_offline` of a
    /// node; `instance_down`, `backup_failed`, `install_failed` of a server.
    pub metric: String,
    /// `gt`, `gte`, `lt`, `lte`, `eq` (threshold metrics; default `gt`).
    pub operator: Option<String>,
    /// The value compared (threshold metrics; default 0).
    pub threshold: Option<f64>,
    /// How long the condition holds before the alert fires (default 0).
    pub duration_seconds: Option<i64>,
    /// How long the condition must be false before a firing alert resolves (default 60).
    pub resolve_after_seconds: Option<i64>,
    /// `info`, `warn` or `critical` (default `warn`).
    pub severity: Option<String>,
    pub notify_in_app: Option<bool>,
    pub notify_email: Option<bool>,
    /// Addresses mailed instead of the members holding `alerts.read`.
    pub email_recipients: Option<Vec<String>>,
    /// The organization's integrations notified.
    pub integration_ids: Option<Vec<String>>,
    /// A firing within this long of the last notified one is not notified again.
    pub cooldown_seconds: Option<i64>,
    pub enabled: Option<bool>,
}

/// A rule as shown.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleView {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub metric: String,
    pub operator: String,
    pub threshold: f64,
    pub duration_seconds: i64,
    pub resolve_after_seconds: i64,
    pub severity: String,
    pub notify_in_app: bool,
    pub notify_email: bool,
    pub email_recipients: Vec<String>,
    pub integration_ids: Vec<String>,
    pub cooldown_seconds: i64,
    pub enabled: bool,
    pub created_by: Option<String>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl From<Rule> for RuleView {
    fn from(r: Rule) -> Self {
        Self {
            id: r.id,
            organization_id: r.org_id,
            name: r.name,
            target_type: r.target_type,
            target_id: r.target_id,
            metric: r.metric,
            operator: r.operator,
            threshold: r.threshold,
            duration_seconds: r.duration_seconds,
            resolve_after_seconds: r.resolve_after_seconds,
            severity: r.severity,
            notify_in_app: r.notify_in_app,
            notify_email: r.notify_email,
            email_recipients: r.email_recipients,
            integration_ids: r.integration_ids,
            cooldown_seconds: r.cooldown_seconds,
            enabled: r.enabled,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn seconds(field: &str, v: Option<i64>, default: i64) -> AppResult<i64> {
    let v = v.unwrap_or(default);
    if !(0..=MAX_SECONDS).contains(&v) {
        return Err(AppError::invalid_field(
            field,
            format!("{field} must be between 0 and {MAX_SECONDS}"),
        ));
    }
    Ok(v)
}

pub(super) fn one_of(field: &str, v: &str, allowed: &[&str]) -> AppResult<()> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Checks `body` and builds the rule of `org_id` (id and timestamps from `base`).
async fn build(state: &AppState, org_id: &str, body: RuleBody, base: Rule) -> AppResult<Rule> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "name",
            "name must be 1 to 100 characters without control characters",
        ));
    }
    one_of("target_type", &body.target_type, &["node", "instance"])?;
    let mut metrics: Vec<&str> = THRESHOLD_METRICS.to_vec();
    metrics.extend_from_slice(EVENT_METRICS);
    one_of("metric", &body.metric, &metrics)?;
    if !targets_of(&body.metric).contains(&body.target_type.as_str()) {
        return Err(AppError::invalid_field(
            "metric",
            format!(
                "{} applies to targets of type {}",
                body.metric,
                targets_of(&body.metric).join(", ")
            ),
        ));
    }
    let operator = body.operator.unwrap_or_else(|| "gt".into());
    one_of("operator", &operator, &["gt", "gte", "lt", "lte", "eq"])?;
    let threshold = body.threshold.unwrap_or(0.0);
    if !threshold.is_finite() {
        return Err(AppError::invalid_field(
            "threshold",
            "threshold must be a number",
        ));
    }
    if matches!(
        body.metric.as_str(),
        "cpu_usage" | "memory_usage" | "disk_usage"
    ) && !(0.0..=100.0).contains(&threshold)
    {
        return Err(AppError::invalid_field(
            "threshold",
            "threshold is a percentage: between 0 and 100",
        ));
    }
    if threshold < 0.0 {
        return Err(AppError::invalid_field(
            "threshold",
            "threshold must not be negative",
        ));
    }
    let severity = body.severity.unwrap_or_else(|| "warn".into());
    one_of("severity", &severity, &["info", "warn", "critical"])?;
    let duration_seconds = seconds("duration_seconds", body.duration_seconds, 0)?;
    let resolve_after_seconds = seconds(
        "resolve_after_seconds",
        body.resolve_after_seconds,
        DEFAULT_RESOLVE_AFTER,
    )?;
    let cooldown_seconds = seconds("cooldown_seconds", body.cooldown_seconds, 0)?;
    let email_recipients = body.email_recipients.unwrap_or_default();
    if email_recipients.len() > MAX_LIST {
        return Err(AppError::invalid_field(
            "email_recipients",
            format!("at most {MAX_LIST} recipients"),
        ));
    }
    for address in &email_recipients {
        if address.parse::<lettre::Address>().is_err() {
            return Err(AppError::invalid_field(
                "email_recipients",
                format!("{address:?} is not an email address"),
            ));
        }
    }
    let integration_ids = body.integration_ids.unwrap_or_default();
    if integration_ids.len() > MAX_LIST {
        return Err(AppError::invalid_field(
            "integration_ids",
            format!("at most {MAX_LIST} integrations"),
        ));
    }
    for id in &integration_ids {
        if !super::notify::integration_in_org(state, org_id, id).await? {
            return Err(AppError::not_found("integration"));
        }
    }
    let target_id = target_in_org(state, org_id, &body.target_type, body.target_id).await?;
    Ok(Rule {
        name: name.to_string(),
        target_type: body.target_type,
        target_id,
        metric: body.metric,
        operator,
        threshold,
        duration_seconds,
        resolve_after_seconds,
        severity,
        notify_in_app: body.notify_in_app.unwrap_or(true),
        notify_email: body.notify_email.unwrap_or(false),
        email_recipients,
        integration_ids,
        cooldown_seconds,
        enabled: body.enabled.unwrap_or(true),
        ..base
    })
}

/// The target id of a rule or window body (trimmed; empty means every target), checked
/// to be a node or server (`target_type`) of `org_id`.
///
/// # Errors
/// 404 naming the target type for another organization's or an unknown target;
/// database failures.
pub(super) async fn target_in_org(
    state: &AppState,
    org_id: &str,
    target_type: &str,
    target_id: Option<String>,
) -> AppResult<Option<String>> {
    let target_id = target_id
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(target) = &target_id {
        let found = if target.contains('\0') {
            false
        } else if target_type == "node" {
            crate::nodes::store::find_in_org(&state.db.pool, org_id, target)
                .await?
                .is_some()
        } else {
            crate::instances::store::find(&state.db.pool, target)
                .await?
                .is_some_and(|i| i.org_id == org_id)
        };
        if !found {
            return Err(AppError::not_found(target_type));
        }
    }
    Ok(target_id)
}

/// `{"data": [rule...], "pagination": {...}}` of one organization.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppQuery(page): AppQuery<PageParams>,
) -> AppResult<AppJson<Page<RuleView>>> {
    let (limit, offset) = page.limit_offset()?;
    let member = scoped(
        &state,
        &user,
        org.organization_id.as_deref(),
        perm::AlertsRead::KEY,
    )
    .await?;
    let rows = store::list_rules(&state.db.pool, &member.org_id, limit, offset).await?;
    let total = store::count_rules(&state.db.pool, &member.org_id).await?;
    Ok(AppJson(Page::new(
        rows.into_iter().map(RuleView::from).collect(),
        page,
        total,
    )))
}

/// Creates a rule in `organization_id` (body or query; the personal one by default).
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppQuery(org): AppQuery<OrgQuery>,
    AppJson(body): AppJson<RuleBody>,
) -> AppResult<(StatusCode, AppJson<RuleView>)> {
    let requested =
        crate::orgs::scope::requested_org(body.organization_id.clone(), org.organization_id)?;
    let member = scoped(&state, &user, requested.as_deref(), perm::AlertsWrite::KEY).await?;
    let now = now_ms();
    let base = Rule {
        id: new_id(),
        org_id: member.org_id.clone(),
        name: String::new(),
        target_type: String::new(),
        target_id: None,
        metric: String::new(),
        operator: String::new(),
        threshold: 0.0,
        duration_seconds: 0,
        resolve_after_seconds: 0,
        severity: String::new(),
        notify_in_app: true,
        notify_email: false,
        email_recipients: vec![],
        integration_ids: vec![],
        cooldown_seconds: 0,
        enabled: true,
        created_by: Some(user.user.id.clone()),
        created_at: now,
        updated_at: now,
    };
    let rule = build(&state, &member.org_id, body, base).await?;
    store::insert_rule(&state.db.pool, &rule).await?;
    Ok((StatusCode::CREATED, AppJson(rule.into())))
}

/// One rule.
pub async fn get(
    Authorized { resource: rule, .. }: Authorized<Rule, perm::AlertsRead>,
) -> AppResult<AppJson<RuleView>> {
    Ok(AppJson(rule.into()))
}

/// Replaces a rule's settings (its organization stays). Open alerts keep going under the
/// new settings.
pub async fn update(
    State(state): State<AppState>,
    Authorized { resource: rule, .. }: Authorized<Rule, perm::AlertsWrite>,
    AppJson(body): AppJson<RuleBody>,
) -> AppResult<AppJson<RuleView>> {
    if body
        .organization_id
        .as_deref()
        .is_some_and(|o| o != rule.org_id)
    {
        return Err(AppError::invalid_field(
            "organization_id",
            "a rule cannot move to another organization",
        ));
    }
    let org_id = rule.org_id.clone();
    let mut updated = build(&state, &org_id, body, rule).await?;
    updated.updated_at = now_ms();
    store::update_rule(&state.db.pool, &updated).await?;
    Ok(AppJson(updated.into()))
}

/// Deletes a rule and its alerts.
pub async fn delete(
    State(state): State<AppState>,
    Authorized { resource: rule, .. }: Authorized<Rule, perm::AlertsWrite>,
) -> AppResult<StatusCode> {
    if !store::delete_rule(&state.db.pool, &rule.id).await? {
        return Err(AppError::not_found("alert rule"));
    }
    Ok(StatusCode::NO_CONTENT)
}
