//! Plans: what an organization may use and what it costs. Admins create, change,
//! archive and delete them (`/v1/admin/plans*`); everyone lists the plans on sale
//! (`GET /v1/billing/plans`). With billing on, a plan with a price gets its Stripe
//! product and prices made by the panel unless their ids are given.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use crate::auth::extract::{AdminUser, CurrentUser};
use crate::db::{new_id, ts};
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::respond::NoContent;
use crate::state::AppState;

/// The node pools a plan may place servers on.
pub const POOLS: &[&str] = &["own", "platform"];

/// A plan's caps; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanLimits {
    /// Servers in the organization.
    pub servers: Option<i64>,
    /// Memory of all servers together, MiB.
    pub memory_mb: Option<i64>,
    /// CPU of all servers together, percent of one core.
    pub cpu_percent: Option<i64>,
    /// Disk of all servers together, MiB.
    pub disk_mb: Option<i64>,
    /// Nodes the organization registers or provisions.
    pub nodes: Option<i64>,
    /// Backups kept of one server.
    pub backups_per_server: Option<i64>,
    /// Members, counting pending invites.
    pub members: Option<i64>,
}

/// A plan.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub description: String,
    /// ISO 4217, lower case (`usd`).
    pub currency: String,
    /// Price per month, minor units (cents).
    pub price_month: i64,
    /// Price per year, minor units.
    pub price_year: i64,
    pub stripe_product_id: Option<String>,
    pub stripe_price_month: Option<String>,
    pub stripe_price_year: Option<String>,
    pub limits: PlanLimits,
    /// `own` (the organization's nodes) and/or `platform` (the platform's shared nodes).
    pub pools: Vec<String>,
    /// The plan of every organization without a subscription.
    pub is_default: bool,
    /// Takes no new subscribers.
    pub archived: bool,
    /// Organizations on it (admin lists only; 0 elsewhere).
    #[serde(default)]
    pub subscribers: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl Plan {
    /// Whether servers of this plan may be placed on nodes of `pool`.
    #[must_use]
    pub fn allows_pool(&self, pool: &str) -> bool {
        self.pools.iter().any(|p| p == pool)
    }

    /// The Stripe price of `interval` (`month` or `year`).
    #[must_use]
    pub fn price_id(&self, interval: &str) -> Option<&str> {
        if interval == "year" {
            self.stripe_price_year.as_deref()
        } else {
            self.stripe_price_month.as_deref()
        }
    }

    /// The price of `interval`, minor units.
    #[must_use]
    pub fn price(&self, interval: &str) -> i64 {
        if interval == "year" {
            self.price_year
        } else {
            self.price_month
        }
    }
}

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: String,
    name: String,
    description: String,
    currency: String,
    price_month: i64,
    price_year: i64,
    stripe_product_id: Option<String>,
    stripe_price_month: Option<String>,
    stripe_price_year: Option<String>,
    max_servers: Option<i64>,
    max_memory_mb: Option<i64>,
    max_cpu_percent: Option<i64>,
    max_disk_mb: Option<i64>,
    max_nodes: Option<i64>,
    max_backups_per_server: Option<i64>,
    max_members: Option<i64>,
    pools: String,
    #[sqlx(try_from = "crate::db::row::Flag")]
    is_default: bool,
    #[sqlx(try_from = "crate::db::row::Flag")]
    archived: bool,
    subscribers: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<PlanRow> for Plan {
    fn from(r: PlanRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            currency: r.currency,
            price_month: r.price_month,
            price_year: r.price_year,
            stripe_product_id: r.stripe_product_id,
            stripe_price_month: r.stripe_price_month,
            stripe_price_year: r.stripe_price_year,
            limits: PlanLimits {
                servers: r.max_servers,
                memory_mb: r.max_memory_mb,
                cpu_percent: r.max_cpu_percent,
                disk_mb: r.max_disk_mb,
                nodes: r.max_nodes,
                backups_per_server: r.max_backups_per_server,
                members: r.max_members,
            },
            pools: serde_json::from_str(&r.pools).unwrap_or_default(),
            is_default: r.is_default,
            archived: r.archived,
            subscribers: r.subscribers,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Subscriptions that hold a plan: every status but the ended ones.
pub const HOLDING: &str = "('active', 'trialing', 'past_due', 'unpaid', 'manual', 'paused')";

fn select() -> String {
    select_with(&format!(
        "CAST((SELECT COUNT(*) FROM subscriptions s WHERE s.plan_id = p.id \
         AND s.status IN {HOLDING}) AS BIGINT)"
    ))
}

/// The plan columns with `subscribers` computed by `subscribers` (SQL).
fn select_with(subscribers: &str) -> String {
    format!(
        "SELECT p.id, p.name, p.description, p.currency, p.price_month, p.price_year, \
         p.stripe_product_id, p.stripe_price_month, p.stripe_price_year, p.max_servers, \
         p.max_memory_mb, p.max_cpu_percent, p.max_disk_mb, p.max_nodes, \
         p.max_backups_per_server, p.max_members, p.pools, p.is_default, p.archived, \
         {subscribers} AS subscribers, p.created_at, p.updated_at FROM plans p"
    )
}

/// The plan whose caps apply: `id`'s, else the default plan; without counting its
/// subscribers (the limits check reads it inside every limited change).
///
/// # Errors
/// Database failures.
pub async fn find_for_limits(
    conn: &mut sqlx::AnyConnection,
    id: Option<&str>,
) -> sqlx::Result<Option<Plan>> {
    let lean = select_with("CAST(0 AS BIGINT)");
    if let Some(id) = id {
        let row: Option<PlanRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{lean} WHERE p.id = $1")))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(row) = row {
            return Ok(Some(row.into()));
        }
    }
    let row: Option<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{lean} WHERE p.is_default = 1 ORDER BY p.created_at LIMIT 1"
    )))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Plan::from))
}

/// Every plan, default first then by monthly price.
///
/// # Errors
/// Database failures.
pub async fn list(pool: &AnyPool) -> sqlx::Result<Vec<Plan>> {
    let rows: Vec<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} ORDER BY p.is_default DESC, p.price_month, p.name",
        select()
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Plan::from).collect())
}

/// A plan by id, on any executor (inside a limits transaction too).
///
/// # Errors
/// Database failures.
pub async fn find<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> sqlx::Result<Option<Plan>> {
    let row: Option<PlanRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{} WHERE p.id = $1", select())))
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(Plan::from))
}

/// The default plan (the free plan), if any.
///
/// # Errors
/// Database failures.
pub async fn default_plan<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
) -> sqlx::Result<Option<Plan>> {
    let row: Option<PlanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{} WHERE p.is_default = 1 ORDER BY p.created_at LIMIT 1",
        select()
    )))
    .fetch_optional(db)
    .await?;
    Ok(row.map(Plan::from))
}

async fn write(pool: &AnyPool, p: &Plan, insert: bool) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    if p.is_default {
        sqlx::query("UPDATE plans SET is_default = 0 WHERE id <> $1")
            .bind(&p.id)
            .execute(&mut *tx)
            .await?;
    }
    let sql = if insert {
        "INSERT INTO plans (name, description, currency, price_month, price_year, \
         stripe_product_id, stripe_price_month, stripe_price_year, max_servers, max_memory_mb, \
         max_cpu_percent, max_disk_mb, max_nodes, max_backups_per_server, max_members, pools, \
         is_default, archived, updated_at, id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21)"
    } else {
        "UPDATE plans SET name = $1, description = $2, currency = $3, price_month = $4, \
         price_year = $5, stripe_product_id = $6, stripe_price_month = $7, \
         stripe_price_year = $8, max_servers = $9, max_memory_mb = $10, max_cpu_percent = $11, \
         max_disk_mb = $12, max_nodes = $13, max_backups_per_server = $14, max_members = $15, \
         pools = $16, is_default = $17, archived = $18, updated_at = $19 WHERE id = $20 \
         AND $21 = $21"
    };
    let l = &p.limits;
    sqlx::query(sql)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.currency)
        .bind(p.price_month)
        .bind(p.price_year)
        .bind(&p.stripe_product_id)
        .bind(&p.stripe_price_month)
        .bind(&p.stripe_price_year)
        .bind(l.servers)
        .bind(l.memory_mb)
        .bind(l.cpu_percent)
        .bind(l.disk_mb)
        .bind(l.nodes)
        .bind(l.backups_per_server)
        .bind(l.members)
        .bind(serde_json::to_string(&p.pools).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(p.is_default))
        .bind(i64::from(p.archived))
        .bind(p.updated_at)
        .bind(&p.id)
        .bind(p.created_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `GET /v1/billing/plans`: the plans on sale (not archived).
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanList {
    /// Whether this panel sells plans (Stripe configured).
    pub billing_enabled: bool,
    pub data: Vec<Plan>,
}

/// `GET /v1/billing/plans`.
pub async fn public_list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> AppResult<AppJson<PlanList>> {
    let data = list(&state.db.pool)
        .await?
        .into_iter()
        .filter(|p| !p.archived)
        .map(|mut p| {
            p.subscribers = 0;
            p
        })
        .collect();
    Ok(AppJson(PlanList {
        billing_enabled: super::enabled(&state),
        data,
    }))
}

/// `GET /v1/admin/plans`: every plan with its subscribers.
pub async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<AppJson<PlanList>> {
    Ok(AppJson(PlanList {
        billing_enabled: super::enabled(&state),
        data: list(&state.db.pool).await?,
    }))
}

/// A plan as created or replaced by an admin.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// 1 to 64 characters, unique.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// ISO 4217 (three letters); `usd` by default.
    #[serde(default)]
    pub currency: Option<String>,
    /// Minor units; 0 (free) by default.
    #[serde(default)]
    pub price_month: i64,
    /// Minor units; 0: no yearly price.
    #[serde(default)]
    pub price_year: i64,
    /// An existing Stripe price for the monthly price (else the panel makes one).
    #[serde(default)]
    pub stripe_price_month: Option<String>,
    /// An existing Stripe price for the yearly price.
    #[serde(default)]
    pub stripe_price_year: Option<String>,
    #[serde(default)]
    pub limits: PlanLimits,
    /// `own` and/or `platform`; `["own"]` by default.
    #[serde(default)]
    pub pools: Option<Vec<String>>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub archived: bool,
}

fn validate(body: &PlanBody) -> AppResult<(String, Vec<String>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::invalid_field(
            "name",
            "name must be 1 to 64 characters",
        ));
    }
    if body.description.chars().count() > 1000 {
        return Err(AppError::invalid_field(
            "description",
            "description must be at most 1000 characters",
        ));
    }
    let currency = body
        .currency
        .as_deref()
        .unwrap_or("usd")
        .trim()
        .to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(AppError::invalid_field(
            "currency",
            "currency must be a three-letter ISO 4217 code such as usd or eur",
        ));
    }
    for (field, v) in [
        ("price_month", body.price_month),
        ("price_year", body.price_year),
    ] {
        if !(0..=100_000_000).contains(&v) {
            return Err(AppError::invalid_field(
                field,
                format!("{field} must be between 0 and 100000000 minor units"),
            ));
        }
    }
    for (field, v) in [
        ("stripe_price_month", &body.stripe_price_month),
        ("stripe_price_year", &body.stripe_price_year),
    ] {
        if let Some(id) = v.as_deref().filter(|s| !s.is_empty())
            && (id.len() > 255
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(AppError::invalid_field(
                field,
                format!("{field} must be a Stripe price id such as price_1Nxyz"),
            ));
        }
    }
    let l = &body.limits;
    for (field, v) in [
        ("servers", l.servers),
        ("memory_mb", l.memory_mb),
        ("cpu_percent", l.cpu_percent),
        ("disk_mb", l.disk_mb),
        ("nodes", l.nodes),
        ("backups_per_server", l.backups_per_server),
        ("members", l.members),
    ] {
        if let Some(v) = v
            && !(0..=1_000_000_000).contains(&v)
        {
            return Err(AppError::invalid_field(
                format!("limits.{field}"),
                format!("limits.{field} must be between 0 and 1000000000, or null for unlimited"),
            ));
        }
    }
    let pools = body.pools.clone().unwrap_or_else(|| vec!["own".into()]);
    if pools.is_empty() {
        return Err(AppError::invalid_field(
            "pools",
            "pools must name at least one of own, platform",
        ));
    }
    for (i, p) in pools.iter().enumerate() {
        if !POOLS.contains(&p.as_str()) {
            return Err(AppError::invalid_field(
                format!("pools[{i}]"),
                format!("unknown pool {p:?}: own or platform"),
            ));
        }
    }
    let mut pools = pools;
    pools.sort();
    pools.dedup();
    if body.is_default && body.archived {
        return Err(AppError::invalid_field(
            "archived",
            "the default plan cannot be archived",
        ));
    }
    Ok((currency, pools))
}

/// Makes the Stripe product and the prices a plan lacks (billing on, a price above 0
/// without a price id). Stripe prices cannot change: a new amount is a new price.
///
/// # Errors
/// 502 when Stripe refuses or cannot be reached.
pub async fn ensure_prices(state: &AppState, plan: &mut Plan) -> AppResult<()> {
    let Some(stripe) = super::client(state) else {
        return Ok(());
    };
    for interval in ["month", "year"] {
        let amount = plan.price(interval);
        if amount == 0 || plan.price_id(interval).is_some() {
            continue;
        }
        let product = match &plan.stripe_product_id {
            Some(p) => p.clone(),
            None => {
                let p = stripe.create_product(&plan.id, &plan.name).await?;
                plan.stripe_product_id = Some(p.clone());
                p
            }
        };
        let price = stripe
            .create_price(&product, amount, &plan.currency, interval)
            .await?;
        if interval == "year" {
            plan.stripe_price_year = Some(price);
        } else {
            plan.stripe_price_month = Some(price);
        }
    }
    Ok(())
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /v1/admin/plans`.
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(body): AppJson<PlanBody>,
) -> AppResult<(StatusCode, AppJson<Plan>)> {
    let (currency, pools) = validate(&body)?;
    let now = state.clock.now_ms();
    let mut plan = Plan {
        id: new_id(),
        name: body.name.trim().to_owned(),
        description: body.description.trim().to_owned(),
        currency,
        price_month: body.price_month,
        price_year: body.price_year,
        stripe_product_id: None,
        stripe_price_month: non_empty(body.stripe_price_month),
        stripe_price_year: non_empty(body.stripe_price_year),
        limits: body.limits,
        pools,
        is_default: body.is_default,
        archived: body.archived,
        subscribers: 0,
        created_at: now,
        updated_at: now,
    };
    if name_taken(&state.db.pool, &plan.name, None).await? {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PLAN_NAME_TAKEN",
            format!("a plan named {:?} exists", plan.name),
        ));
    }
    ensure_prices(&state, &mut plan).await?;
    write(&state.db.pool, &plan, true).await?;
    Ok((StatusCode::CREATED, AppJson(plan)))
}

async fn name_taken(pool: &AnyPool, name: &str, except: Option<&str>) -> sqlx::Result<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM plans WHERE LOWER(name) = LOWER($1) AND id <> $2")
            .bind(name)
            .bind(except.unwrap_or(""))
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}

/// `PUT /v1/admin/plans/{id}`: replaces the plan. A changed price gets a new Stripe
/// price (subscribers keep theirs until they change plan); a lower cap applies at once
/// and deletes nothing.
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<PlanBody>,
) -> AppResult<AppJson<Plan>> {
    let old = find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("plan"))?;
    let (currency, pools) = validate(&body)?;
    if name_taken(&state.db.pool, body.name.trim(), Some(&id)).await? {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PLAN_NAME_TAKEN",
            format!("a plan named {:?} exists", body.name.trim()),
        ));
    }
    if old.is_default && !body.is_default {
        return Err(AppError::invalid_field(
            "is_default",
            "make another plan the default instead: every organization needs one",
        ));
    }
    let same_currency = currency == old.currency;
    let mut plan = Plan {
        name: body.name.trim().to_owned(),
        description: body.description.trim().to_owned(),
        currency,
        price_month: body.price_month,
        price_year: body.price_year,
        // A price id given wins; else the old price while amount and currency stand.
        stripe_price_month: non_empty(body.stripe_price_month).or_else(|| {
            (body.price_month == old.price_month && same_currency)
                .then(|| old.stripe_price_month.clone())?
        }),
        stripe_price_year: non_empty(body.stripe_price_year).or_else(|| {
            (body.price_year == old.price_year && same_currency)
                .then(|| old.stripe_price_year.clone())?
        }),
        limits: body.limits,
        pools,
        is_default: body.is_default,
        archived: body.archived,
        updated_at: state.clock.now_ms(),
        ..old.clone()
    };
    ensure_prices(&state, &mut plan).await?;
    write(&state.db.pool, &plan, false).await?;
    Ok(AppJson(find(&state.db.pool, &id).await?.unwrap_or(plan)))
}

/// `DELETE /v1/admin/plans/{id}`: 409 while organizations hold it (archive it instead)
/// or while it is the default plan.
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<String>,
) -> AppResult<NoContent> {
    let plan = find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::not_found("plan"))?;
    if plan.is_default {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PLAN_IS_DEFAULT",
            "the default plan cannot be deleted: make another plan the default first",
        ));
    }
    let mut tx = state.db.begin_write().await?;
    let held: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM subscriptions WHERE plan_id = $1 AND status IN {HOLDING}"
    )))
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    if held > 0 {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "PLAN_HAS_SUBSCRIBERS",
            format!(
                "{held} organization(s) are on this plan: archive it instead (it then takes no new subscribers)"
            ),
        ));
    }
    sqlx::query("UPDATE subscriptions SET plan_id = NULL WHERE plan_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM plans WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(NoContent)
}
