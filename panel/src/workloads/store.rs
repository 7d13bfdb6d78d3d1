//! SQL for the `workloads` table; the only place a workload row is mapped to a struct.
//!
//! The egg is stored as its PTDL_v2 export (`export_egg_json`) and parsed back on read:
//! the export round-trips to an equal [`Egg`], and the column stays readable by any tool
//! that understands eggs.

use shardlyn_proto::egg::{Egg, EggError, export_egg_json, parse_egg};
use sqlx::AnyExecutor;

use crate::db::now_ms;
use crate::db::row::JsonText;

/// Where a workload came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /v1/workloads/import-egg`.
    Egg,
    /// `POST /v1/workloads/from-template`.
    Template,
    /// `POST /v1/workloads` with the workload JSON shape.
    Api,
}

impl Source {
    /// The stored (and shown) name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Egg => "egg",
            Self::Template => "template",
            Self::Api => "api",
        }
    }
}

/// A stored workload with its egg decoded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Workload {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    /// `egg`, `template` or `api`.
    pub source: String,
    /// The template id, for workloads made from one.
    pub template: Option<String>,
    #[sqlx(try_from = "JsonText")]
    pub egg: Egg,
    /// The SRV service its servers answer (`_minecraft._tcp`), for auto-DNS.
    pub dns_srv_service: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The stored egg is parsed as an imported one, so its checks apply on read too.
impl TryFrom<JsonText> for Egg {
    type Error = EggError;

    fn try_from(text: JsonText) -> Result<Self, Self::Error> {
        parse_egg(&text.0)
    }
}

/// A workload to insert.
pub struct NewWorkload<'a> {
    pub org_id: &'a str,
    pub source: Source,
    pub template: Option<&'a str>,
    pub egg: &'a Egg,
    /// Checked by [`super::input::srv_service`].
    pub dns_srv_service: Option<&'a str>,
    pub created_by: &'a str,
}

macro_rules! columns {
    () => {
        "id, org_id, name, description, source, template, egg, dns_srv_service, created_by, \
         created_at, updated_at"
    };
}

/// Inserts a workload; name and description are the egg's.
pub async fn insert<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    new: &NewWorkload<'_>,
) -> Result<Workload, sqlx::Error> {
    sqlx::query_as(concat!(
        "INSERT INTO workloads (id, org_id, name, description, source, template, egg, \
         created_by, created_at, updated_at, dns_srv_service) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(new.org_id)
    .bind(&new.egg.name)
    .bind(&new.egg.description)
    .bind(new.source.as_str())
    .bind(new.template)
    .bind(export_egg_json(new.egg))
    .bind(new.created_by)
    .bind(now_ms())
    .bind(new.dns_srv_service)
    .fetch_one(db)
    .await
}

/// A workload by id, unchecked: requests reach a workload through [`crate::authz`], and
/// an instance's own workload through [`of_instance`].
async fn find<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<Option<Workload>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM workloads WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// One page of an organization's workloads, newest first.
pub async fn list<'e>(
    db: impl AnyExecutor<'e>,
    org_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Workload>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM workloads WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(org_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// How many workloads an organization has.
pub async fn count<'e>(db: impl AnyExecutor<'e>, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM workloads WHERE org_id = $1")
        .bind(org_id)
        .fetch_one(db)
        .await
}

/// Replaces a workload's egg (and with it its name and description) and its SRV
/// service.
pub async fn update_egg<'e>(
    db: impl AnyExecutor<'e>,
    id: &str,
    egg: &Egg,
    dns_srv_service: Option<&str>,
) -> Result<Option<Workload>, sqlx::Error> {
    let updated = sqlx::query_as(concat!(
        "UPDATE workloads SET name = $2, description = $3, egg = $4, updated_at = $5, \
         dns_srv_service = $6 WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(&egg.name)
    .bind(&egg.description)
    .bind(export_egg_json(egg))
    .bind(now_ms())
    .bind(dns_srv_service)
    .fetch_optional(db)
    .await?;
    crate::readcache::changed();
    Ok(updated)
}

/// Deletes a workload; whether it existed.
pub async fn delete<'e>(db: impl AnyExecutor<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM workloads WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    crate::readcache::changed();
    Ok(done.rows_affected() > 0)
}

/// The workload `instance` runs (`None` only if the database lost it).
///
/// # Errors
/// Database failures.
pub async fn of_instance<'e>(
    db: impl AnyExecutor<'e>,
    instance: &crate::instances::store::Instance,
) -> Result<Option<Workload>, sqlx::Error> {
    find(db, &instance.workload_id).await
}

impl crate::authz::OrgScoped for Workload {
    const NAME: &'static str = "workload";

    async fn find(
        state: &crate::state::AppState,
        id: &str,
    ) -> crate::error::AppResult<Option<Self>> {
        Ok(find(&state.db.pool, id).await?)
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }
}
