//! SQL for `migrations`; the only place its rows are mapped.

use sqlx::AnyExecutor;

use crate::db::now_ms;
use crate::db::row::Flag;

/// States a move can be in while it is open.
pub const OPEN: [&str; 4] = ["queued", "copying", "final_sync", "switching"];

/// One move of a server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Migration {
    pub id: String,
    pub org_id: String,
    pub instance_id: String,
    pub source_node_id: String,
    pub target_node_id: String,
    /// `queued`, `copying`, `final_sync`, `switching`, `completed`, `failed`,
    /// `cancelled`.
    pub state: String,
    pub reason: Option<String>,
    /// The server ran when the move began: it runs again at its end, on whichever node
    /// then holds it.
    #[sqlx(try_from = "Flag")]
    pub was_running: bool,
    #[sqlx(try_from = "Flag")]
    pub cancel_requested: bool,
    pub bytes_copied: i64,
    /// `old->new` pairs of ports that were taken on the target, comma separated.
    pub ports_changed: String,
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// The process running the move (see [`take_over`]).
    pub runner: String,
    /// Copies resumed after a cut.
    pub resumes: i64,
    /// Rebuilt from this backup (the source node being offline) instead of copied.
    pub backup_id: Option<String>,
    /// When that backup was taken: what changed on the server since is lost.
    pub backup_taken_at: Option<i64>,
}

impl Migration {
    /// A new move of `instance` to `target`, queued, asked for by `user_id`.
    #[must_use]
    pub fn queued(instance: &crate::instances::Instance, target: &str, user_id: &str) -> Self {
        let now = now_ms();
        Self {
            id: crate::db::new_id(),
            org_id: instance.org_id.clone(),
            instance_id: instance.id.clone(),
            source_node_id: instance.node_id.clone(),
            target_node_id: target.to_owned(),
            state: "queued".into(),
            reason: None,
            was_running: matches!(
                instance.state,
                shardlyn_proto::instance::InstanceState::Running
                    | shardlyn_proto::instance::InstanceState::Starting
            ),
            cancel_requested: false,
            bytes_copied: 0,
            ports_changed: String::new(),
            requested_by: Some(user_id.to_owned()),
            created_at: now,
            updated_at: now,
            finished_at: None,
            runner: crate::db::new_id(),
            resumes: 0,
            backup_id: None,
            backup_taken_at: None,
        }
    }

    /// The same move rebuilt from `backup` instead of copied (its source is offline).
    #[must_use]
    pub fn from_backup(
        mut self,
        instance: &crate::instances::Instance,
        backup: &crate::backups::store::Backup,
    ) -> Self {
        self.backup_id = Some(backup.id.clone());
        self.backup_taken_at = Some(backup.completed_at.unwrap_or(backup.created_at));
        // Its last known state is stale: it starts on the target if it should run.
        self.was_running =
            instance.desired_state == shardlyn_proto::instance::DesiredState::Running;
        self
    }

    /// Whether it still runs (or waits to).
    #[must_use]
    pub fn is_open(&self) -> bool {
        OPEN.contains(&self.state.as_str())
    }
}

macro_rules! columns {
    () => {
        "id, org_id, instance_id, source_node_id, target_node_id, state, reason, was_running, \
         cancel_requested, bytes_copied, ports_changed, requested_by, created_at, updated_at, \
         finished_at, runner, resumes, backup_id, backup_taken_at"
    };
}

/// Inserts a queued move; fails with a unique violation when the server already has an
/// open one.
///
/// # Errors
/// Database failure.
pub async fn insert(db: impl AnyExecutor<'_>, m: &Migration) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO migrations (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19)"
    ))
    .bind(&m.id)
    .bind(&m.org_id)
    .bind(&m.instance_id)
    .bind(&m.source_node_id)
    .bind(&m.target_node_id)
    .bind(&m.state)
    .bind(m.reason.as_deref())
    .bind(i64::from(m.was_running))
    .bind(i64::from(m.cancel_requested))
    .bind(m.bytes_copied)
    .bind(&m.ports_changed)
    .bind(m.requested_by.as_deref())
    .bind(m.created_at)
    .bind(m.updated_at)
    .bind(m.finished_at)
    .bind(&m.runner)
    .bind(m.resumes)
    .bind(m.backup_id.as_deref())
    .bind(m.backup_taken_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One move.
///
/// # Errors
/// Database failure.
pub async fn find(db: impl AnyExecutor<'_>, id: &str) -> Result<Option<Migration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM migrations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The moves of an organization (of one server when `instance_id` is given), newest
/// first.
///
/// # Errors
/// Database failure.
pub async fn list(
    db: impl AnyExecutor<'_>,
    org_id: &str,
    instance_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Migration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM migrations WHERE org_id = $1 AND ($2 IS NULL OR instance_id = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(org_id)
    .bind(instance_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The open move of a server, if any.
///
/// # Errors
/// Database failure.
pub async fn open_for(
    db: impl AnyExecutor<'_>,
    instance_id: &str,
) -> Result<Option<Migration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM migrations WHERE instance_id = $1 \
         AND state IN ('queued', 'copying', 'final_sync', 'switching')"
    ))
    .bind(instance_id)
    .fetch_optional(db)
    .await
}

/// Moves an open move to `state` (an end state records `reason` and the end time).
/// False when it was no longer open.
///
/// # Errors
/// Database failure.
pub async fn set_state(
    db: impl AnyExecutor<'_>,
    id: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let finished = (!OPEN.contains(&state)).then_some(now);
    let done = sqlx::query(
        "UPDATE migrations SET state = $2, reason = COALESCE($3, reason), updated_at = $4, \
         finished_at = $5 \
         WHERE id = $1 AND state IN ('queued', 'copying', 'final_sync', 'switching')",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .bind(now)
    .bind(finished)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Adds archive bytes moved, and says the move is alive.
///
/// # Errors
/// Database failure.
pub async fn add_bytes(db: impl AnyExecutor<'_>, id: &str, bytes: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE migrations SET bytes_copied = bytes_copied + $2, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(bytes)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}

/// Says move `id` is alive while `runner` runs it. False once another process took it
/// over (or it ended): the caller stops.
///
/// # Errors
/// Database failure.
pub async fn beat(db: impl AnyExecutor<'_>, id: &str, runner: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE migrations SET updated_at = $3 WHERE id = $1 AND runner = $2 \
         AND state IN ('queued', 'copying', 'final_sync', 'switching')",
    )
    .bind(id)
    .bind(runner)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes `runner` the process running move `id` when nothing moved it forward since
/// `before` (ms). False when another process got there first or the move is alive.
///
/// # Errors
/// Database failure.
pub async fn take_over(
    db: impl AnyExecutor<'_>,
    id: &str,
    runner: &str,
    before: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE migrations SET runner = $2, updated_at = $3 WHERE id = $1 AND updated_at < $4 \
         AND state IN ('queued', 'copying', 'final_sync', 'switching')",
    )
    .bind(id)
    .bind(runner)
    .bind(now_ms())
    .bind(before)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Counts one resumed copy.
///
/// # Errors
/// Database failure.
pub async fn add_resume(db: impl AnyExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE migrations SET resumes = resumes + 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms())
        .execute(db)
        .await?;
    Ok(())
}

/// Says a queued move (waiting for its wave) is alive.
///
/// # Errors
/// Database failure.
pub async fn touch_queued(db: impl AnyExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE migrations SET updated_at = $2 WHERE id = $1 AND state = 'queued'")
        .bind(id)
        .bind(now_ms())
        .execute(db)
        .await?;
    Ok(())
}

/// Records the ports that changed on the target.
///
/// # Errors
/// Database failure.
pub async fn set_ports_changed(
    db: impl AnyExecutor<'_>,
    id: &str,
    changed: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE migrations SET ports_changed = $2 WHERE id = $1")
        .bind(id)
        .bind(changed)
        .execute(db)
        .await?;
    Ok(())
}

/// Asks an open move to stop before it switches. False when it is past that point (or
/// over).
///
/// # Errors
/// Database failure.
pub async fn request_cancel(db: impl AnyExecutor<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE migrations SET cancel_requested = 1, updated_at = $2 \
         WHERE id = $1 AND state IN ('queued', 'copying', 'final_sync')",
    )
    .bind(id)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether a cancel was asked for.
///
/// # Errors
/// Database failure.
pub async fn cancel_requested(db: impl AnyExecutor<'_>, id: &str) -> Result<bool, sqlx::Error> {
    let flag: Option<i64> =
        sqlx::query_scalar("SELECT cancel_requested FROM migrations WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(flag.unwrap_or(0) != 0)
}

/// Open moves nobody has moved forward since `before` (ms): their replica died.
///
/// # Errors
/// Database failure.
pub async fn stale(db: impl AnyExecutor<'_>, before: i64) -> Result<Vec<Migration>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM migrations WHERE updated_at < $1 \
         AND state IN ('queued', 'copying', 'final_sync', 'switching')"
    ))
    .bind(before)
    .fetch_all(db)
    .await
}
