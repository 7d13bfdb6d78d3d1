//! One move, step by step. Until the switch the source stays authoritative: every
//! failure or cancel before it discards what the target staged and starts the server
//! again on the source if it ran.
//!
//! 1. `copying`: the source's files and local backups are archived and streamed into the
//!    target's staging directory while the server keeps running.
//! 2. `final_sync`: the server stops; a second pass sends only what changed since (the
//!    target says what it has: size and mtime), the target drops what the source no
//!    longer has, and the SHA-256 of every file is compared on both sides. A file whose
//!    checksum differs is sent again once; still different fails the move.
//! 3. `switching`: the target adopts the staged files as the server's (stopped), the
//!    database makes the target the server's node (ports kept when free there, others
//!    chosen again and recorded), the spec is pushed (it starts if it ran), and the
//!    source forgets the server.

use std::time::Duration;

use axum::body::Body;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::instance::{DesiredState, InstanceState, PowerAction};
use shardlyn_proto::transfer::{
    ArchiveSelect, Keep, Manifest, PartQuery, Received, TransferPart, differences,
};

use super::store::{self, Migration};
use crate::error::{AppError, AppResult};
use crate::events::{Event, EventData};
use crate::instances::ops::{power, sync};
use crate::instances::{Instance, spec, store as instances};
use crate::state::AppState;
use crate::tunnel::AgentConn;

/// How often a running move says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long the source's server may take to stop for the final pass.
const STOP_WAIT: Duration = Duration::from_secs(120);

/// Why a move ended before its switch.
enum Stop {
    Cancelled,
    Failed(String),
}

impl From<AppError> for Stop {
    fn from(e: AppError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(format!("database: {e}"))
    }
}

/// Runs move `m` to its end.
pub async fn run(state: AppState, m: Migration) {
    let id = m.id.clone();
    // Alive while it runs: a move whose row stops changing is taken for dead (`reap`).
    let heartbeat = {
        let (state, id) = (state.clone(), id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(e) = store::add_bytes(&state.db.pool, &id, 0).await {
                    tracing::warn!(migration.id = %id, error = %e, "a move's heartbeat");
                }
            }
        })
    };
    let outcome = drive(&state, &m).await;
    heartbeat.abort();
    let (end, reason) = match outcome {
        Ok(()) => ("completed", None),
        Err(stop) => {
            let (end, reason) = match stop {
                Stop::Cancelled => ("cancelled", "cancelled on request".to_owned()),
                Stop::Failed(why) => ("failed", why),
            };
            undo(&state, &m).await;
            (end, Some(reason))
        }
    };
    match store::set_state(&state.db.pool, &id, end, reason.as_deref()).await {
        Ok(_) => announce(&state, &id).await,
        Err(e) => tracing::warn!(migration.id = %id, error = %e, "recording a move's end"),
    }
    tracing::info!(migration.id = %id, migration.state = end, reason = reason.as_deref().unwrap_or(""), "migration ended");
}

/// Publishes the move's current row on the event bus.
pub async fn announce(state: &AppState, id: &str) {
    let Ok(Some(m)) = store::find(&state.db.pool, id).await else {
        return;
    };
    state
        .events
        .publish(Event::now(
            m.org_id.clone(),
            EventData::Migration {
                migration_id: m.id,
                instance_id: m.instance_id,
                source_node_id: m.source_node_id,
                target_node_id: m.target_node_id,
                state: m.state,
                reason: m.reason,
                bytes_copied: u64::try_from(m.bytes_copied).unwrap_or(0),
            },
        ))
        .await;
}

async fn step(state: &AppState, m: &Migration, to: &str) -> Result<(), Stop> {
    if store::cancel_requested(&state.db.pool, &m.id).await? {
        return Err(Stop::Cancelled);
    }
    if !store::set_state(&state.db.pool, &m.id, to, None).await? {
        return Err(Stop::Failed("the move was ended elsewhere".into()));
    }
    announce(state, &m.id).await;
    Ok(())
}

async fn instance_of(state: &AppState, m: &Migration) -> Result<Instance, Stop> {
    instances::find(&state.db.pool, &m.instance_id)
        .await?
        .ok_or_else(|| Stop::Failed("the server was deleted".into()))
}

async fn drive(state: &AppState, m: &Migration) -> Result<(), Stop> {
    let source = power::connected(state, &m.source_node_id).await?;
    let target = power::connected(state, &m.target_node_id).await?;
    let id = m.instance_id.as_str();
    // A clean slate on the target (an earlier move may have left a staging directory).
    target
        .request::<api::TransferDiscard>(&id, &(), &())
        .await?;

    step(state, m, "copying").await?;
    for part in [TransferPart::Files, TransferPart::Backups] {
        copy(state, m, &source, &target, part, ArchiveSelect::default()).await?;
    }

    step(state, m, "final_sync").await?;
    if m.was_running {
        stop_source(state, m, &source).await?;
    }
    for part in [TransferPart::Files, TransferPart::Backups] {
        let have = manifest::<api::TransferStaged>(&target, id, part, false).await?;
        copy(
            state,
            m,
            &source,
            &target,
            part,
            ArchiveSelect { have, only: None },
        )
        .await?;
        let theirs = manifest::<api::TransferManifest>(&source, id, part, true).await?;
        let keep = Keep {
            paths: theirs.keys().cloned().collect(),
        };
        target
            .request::<api::TransferPrune>(&id, &query(part, false), &keep)
            .await?;
        let mut differ = differences(
            &theirs,
            &manifest::<api::TransferStaged>(&target, id, part, true).await?,
        );
        if !differ.is_empty() {
            tracing::info!(migration.id = %m.id, files = differ.len(), "checksums differ: sending those files again");
            let select = ArchiveSelect {
                have: Manifest::new(),
                only: Some(differ),
            };
            copy(state, m, &source, &target, part, select).await?;
            differ = differences(
                &theirs,
                &manifest::<api::TransferStaged>(&target, id, part, true).await?,
            );
        }
        if let Some(first) = differ.first() {
            return Err(Stop::Failed(format!(
                "{} entries still differ after the final pass (first: {first})",
                differ.len()
            )));
        }
    }
    if store::cancel_requested(&state.db.pool, &m.id).await? {
        return Err(Stop::Cancelled);
    }

    step(state, m, "switching").await?;
    switch(state, m, &source, &target).await
}

fn query(part: TransferPart, hash: bool) -> PartQuery {
    PartQuery { part, hash }
}

async fn manifest<E>(
    conn: &AgentConn,
    id: &str,
    part: TransferPart,
    hash: bool,
) -> AppResult<Manifest>
where
    E: for<'a> api::Endpoint<
            Params<'a> = &'a str,
            Query = PartQuery,
            Request = (),
            Response = Manifest,
        >,
{
    conn.request::<E>(&id, &query(part, hash), &()).await
}

/// Streams an archive of `part` from the source into the target's staging directory.
async fn copy(
    state: &AppState,
    m: &Migration,
    source: &AgentConn,
    target: &AgentConn,
    part: TransferPart,
    select: ArchiveSelect,
) -> Result<Received, Stop> {
    let id = m.instance_id.as_str();
    let (headers, body) = AgentConn::json_body::<api::TransferArchive>(&select)?;
    let archive = source
        .open::<api::TransferArchive>(&id, &query(part, false), headers, body)
        .await?;
    if !archive.status().is_success() {
        return Err(crate::tunnel::read_json(archive)
            .await
            .err()
            .unwrap_or_else(|| AppError::Unavailable("the source answered oddly".into()))
            .into());
    }
    let answer = target
        .open::<api::TransferReceive>(
            &id,
            &query(part, false),
            http::HeaderMap::new(),
            Body::new(archive.into_body()),
        )
        .await?;
    let value = crate::tunnel::read_json(answer).await?;
    let received: Received = serde_json::from_value(value)
        .map_err(|e| Stop::Failed(format!("the target answered oddly: {e}")))?;
    store::add_bytes(
        &state.db.pool,
        &m.id,
        i64::try_from(received.bytes).unwrap_or(i64::MAX),
    )
    .await?;
    Ok(received)
}

/// Stops the server on the source and waits until its agent says it is offline.
async fn stop_source(state: &AppState, m: &Migration, source: &AgentConn) -> Result<(), Stop> {
    let instance = instance_of(state, m).await?;
    let status = power::act(state, &instance, PowerAction::Stop).await?;
    if matches!(
        status.state,
        InstanceState::Offline | InstanceState::InstallFailed
    ) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    loop {
        let now = source
            .request::<api::InstanceGet>(&m.instance_id.as_str(), &(), &())
            .await?;
        if matches!(
            now.state,
            InstanceState::Offline | InstanceState::InstallFailed
        ) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Stop::Failed("the server did not stop on the source".into()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Makes the target the server's node.
async fn switch(
    state: &AppState,
    m: &Migration,
    source: &AgentConn,
    target: &AgentConn,
) -> Result<(), Stop> {
    let before = instance_of(state, m).await?;
    let (allocations, changed) = super::ports::on_target(state, &before, &m.target_node_id).await?;
    let mut moved = before.clone();
    moved.node_id.clone_from(&m.target_node_id);
    moved.allocations = allocations;
    moved.desired_state = DesiredState::Stopped;
    let staged_spec = spec::build_spec(state, &moved).await?;
    target
        .request::<api::TransferAdopt>(&m.instance_id.as_str(), &(), &staged_spec)
        .await?;
    let desired = if m.was_running {
        DesiredState::Running
    } else {
        before.desired_state
    };
    let recorded = instances::move_to_node(
        &state.db.pool,
        &before.id,
        &m.source_node_id,
        &m.target_node_id,
        &moved.allocations,
        desired,
    )
    .await;
    let failure = match recorded {
        Ok(true) => None,
        Ok(false) => Some("the server is no longer on the source node".to_owned()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = failure {
        // The database still names the source: the target forgets what it adopted.
        let _ = target
            .request::<api::InstanceDelete>(&m.instance_id.as_str(), &(), &())
            .await;
        return Err(Stop::Failed(format!("recording the new node: {e}")));
    }
    if !changed.is_empty() {
        store::set_ports_changed(&state.db.pool, &m.id, &changed).await?;
    }
    // From here the target is the server's node; what is left is tidying up.
    if let Ok(Some(now)) = instances::find(&state.db.pool, &before.id).await
        && let Err(e) = sync::push_instance(state, &now).await
    {
        tracing::warn!(migration.id = %m.id, error = %e, "pushing the moved server's spec");
    }
    if let Err(e) = source
        .request::<api::InstanceDelete>(&m.instance_id.as_str(), &(), &())
        .await
    {
        tracing::warn!(migration.id = %m.id, error = %e, "the source did not forget the moved server");
    }
    Ok(())
}

/// After a failure or a cancel before the switch: the target drops what it staged, and
/// the server runs again on the source if it ran.
async fn undo(state: &AppState, m: &Migration) {
    let id = m.instance_id.as_str();
    if let Ok(target) = power::connected(state, &m.target_node_id).await
        && let Err(e) = target.request::<api::TransferDiscard>(&id, &(), &()).await
    {
        tracing::warn!(migration.id = %m.id, error = %e, "discarding the target's staged files");
    }
    let Ok(Some(instance)) = instances::find(&state.db.pool, id).await else {
        return;
    };
    if instance.node_id != m.source_node_id {
        return;
    }
    if m.was_running
        && let Err(e) = power::act(state, &instance, PowerAction::Start).await
    {
        tracing::warn!(migration.id = %m.id, error = %e, "starting the server again on the source");
    }
}

/// Starts `m` on this replica.
pub fn spawn(state: &AppState, m: Migration) {
    let state = state.clone();
    tokio::spawn(async move { run(state, m).await });
}

/// A move whose row has not changed for this long lost its replica (it beats every
/// [`HEARTBEAT`]).
const STALE_MS: i64 = 30_000;

/// The `migration_reaper` job: under the cluster's job lease, every few seconds, ends
/// the moves whose replica died.
pub async fn reap_until_stopped(
    state: AppState,
    mut lease: tokio::sync::watch::Receiver<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        reap(&state, STALE_MS).await;
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Ends the moves whose replica died (nothing moved them forward for `stale_ms`): each
/// is failed and undone, so its source runs as before and a retry can start.
pub async fn reap(state: &AppState, stale_ms: i64) {
    let before = crate::db::now_ms() - stale_ms;
    let Ok(rows) = store::stale(&state.db.pool, before).await else {
        return;
    };
    for m in rows {
        if m.state == "switching" {
            // The switch may have happened: the database says where the server is.
            let on_target = matches!(
                instances::find(&state.db.pool, &m.instance_id).await,
                Ok(Some(i)) if i.node_id == m.target_node_id
            );
            if on_target {
                let _ = store::set_state(&state.db.pool, &m.id, "completed", None).await;
                announce(state, &m.id).await;
                continue;
            }
        }
        undo(state, &m).await;
        let why = "the panel replica running the move stopped; the source was left as it was";
        let _ = store::set_state(&state.db.pool, &m.id, "failed", Some(why)).await;
        announce(state, &m.id).await;
    }
}
