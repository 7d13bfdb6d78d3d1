//! SQL of `alert_rules`.

use sqlx::AnyPool;

use crate::db::row::{Flag, JsonText};

/// A rule as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Rule {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub metric: String,
    pub operator: String,
    pub threshold: f64,
    pub duration_seconds: i64,
    pub resolve_after_seconds: i64,
    pub severity: String,
    #[sqlx(try_from = "Flag")]
    pub notify_in_app: bool,
    #[sqlx(try_from = "Flag")]
    pub notify_email: bool,
    #[sqlx(try_from = "JsonText")]
    pub email_recipients: Vec<String>,
    #[sqlx(try_from = "JsonText")]
    pub integration_ids: Vec<String>,
    pub cooldown_seconds: i64,
    #[sqlx(try_from = "Flag")]
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! rule_columns {
    () => {
        "id, org_id, name, target_type, target_id, metric, operator, threshold, \
         duration_seconds, resolve_after_seconds, severity, notify_in_app, notify_email, \
         email_recipients, integration_ids, cooldown_seconds, enabled, created_by, created_at, \
         updated_at"
    };
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// Stores a new rule.
///
/// # Errors
/// Database failures.
pub async fn insert_rule(pool: &AnyPool, r: &Rule) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO alert_rules (",
        rule_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20)"
    ))
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.name)
    .bind(&r.target_type)
    .bind(&r.target_id)
    .bind(&r.metric)
    .bind(&r.operator)
    .bind(r.threshold)
    .bind(r.duration_seconds)
    .bind(r.resolve_after_seconds)
    .bind(&r.severity)
    .bind(i64::from(r.notify_in_app))
    .bind(i64::from(r.notify_email))
    .bind(json(&r.email_recipients))
    .bind(json(&r.integration_ids))
    .bind(r.cooldown_seconds)
    .bind(i64::from(r.enabled))
    .bind(&r.created_by)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Replaces a rule's settings.
///
/// # Errors
/// Database failures.
pub async fn update_rule(pool: &AnyPool, r: &Rule) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE alert_rules SET name = $2, target_type = $3, target_id = $4, metric = $5, \
         operator = $6, threshold = $7, duration_seconds = $8, resolve_after_seconds = $9, \
         severity = $10, notify_in_app = $11, notify_email = $12, email_recipients = $13, \
         integration_ids = $14, cooldown_seconds = $15, enabled = $16, updated_at = $17 \
         WHERE id = $1",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.target_type)
    .bind(&r.target_id)
    .bind(&r.metric)
    .bind(&r.operator)
    .bind(r.threshold)
    .bind(r.duration_seconds)
    .bind(r.resolve_after_seconds)
    .bind(&r.severity)
    .bind(i64::from(r.notify_in_app))
    .bind(i64::from(r.notify_email))
    .bind(json(&r.email_recipients))
    .bind(json(&r.integration_ids))
    .bind(r.cooldown_seconds)
    .bind(i64::from(r.enabled))
    .bind(r.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes a rule (its alerts go with it). Whether it existed.
///
/// # Errors
/// Database failures.
pub async fn delete_rule(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A rule by id, unchecked (requests reach it through [`crate::authz`]).
///
/// # Errors
/// Database failures.
pub async fn find_rule(pool: &AnyPool, id: &str) -> sqlx::Result<Option<Rule>> {
    sqlx::query_as(concat!(
        "SELECT ",
        rule_columns!(),
        " FROM alert_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One page of an organization's rules, newest first.
///
/// # Errors
/// Database failures.
pub async fn list_rules(
    pool: &AnyPool,
    org_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Rule>> {
    sqlx::query_as(concat!(
        "SELECT ",
        rule_columns!(),
        " FROM alert_rules WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many rules an organization has.
///
/// # Errors
/// Database failures.
pub async fn count_rules(pool: &AnyPool, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM alert_rules WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
}

/// The enabled rules of `org_id` that cover target `target_id` of `target_type` (those
/// naming it, and those naming every target of the type), whatever their metric.
///
/// # Errors
/// Database failures.
pub async fn rules_for_target(
    pool: &AnyPool,
    org_id: &str,
    target_type: &str,
    target_id: &str,
) -> sqlx::Result<Vec<Rule>> {
    sqlx::query_as(concat!(
        "SELECT ",
        rule_columns!(),
        " FROM alert_rules WHERE org_id = $1 AND target_type = $2 \
         AND enabled = 1 AND (target_id IS NULL OR target_id = $3)"
    ))
    .bind(org_id)
    .bind(target_type)
    .bind(target_id)
    .fetch_all(pool)
    .await
}

impl crate::authz::OrgScoped for Rule {
    const NAME: &'static str = "alert rule";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find_rule(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
