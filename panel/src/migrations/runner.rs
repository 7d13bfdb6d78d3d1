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
//!
//! A copy cut in the middle (a tunnel dropped, an agent restarted) resumes once both
//! nodes answer again: the target keeps every file it finished, says what it has, and
//! the source sends the rest. A move whose panel replica died is taken over by the
//! `migration_reaper` and resumes the same way from the state it had reached. When the
//! source node is offline, a move asked for `from_backup` rebuilds the server on the
//! target from its latest S3 backup instead ([`rebuild`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use shardlyn_proto::agent_api as api;
use shardlyn_proto::backup::RestoreBackup;
use shardlyn_proto::instance::{DesiredState, InstanceState, PowerAction};
use shardlyn_proto::transfer::{
    ArchiveSelect, Keep, Manifest, Notice, PartQuery, Received, TransferPart, differences,
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

/// How long a cut copy waits for both nodes to answer again.
const RESUME_WAIT: Duration = Duration::from_secs(60);

/// Cuts one pass of a copy survives.
const MAX_RESUMES: u32 = 5;

/// Why a move ended before its switch.
enum Stop {
    Cancelled,
    Failed(String),
    /// Another replica runs the move now (this one was taken for dead).
    TakenOver,
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

/// Set when another process took the move over: this one stops at its next step.
type Lost = Arc<AtomicBool>;

/// Runs move `m` to its end (from the state its row has: a move taken over resumes).
pub async fn run(state: AppState, m: Migration) {
    let id = m.id.clone();
    let lost = Lost::default();
    // Alive while it runs: a move whose row stops changing is taken for dead (`reap`).
    let heartbeat = {
        let (state, id, runner, lost) = (state.clone(), id.clone(), m.runner.clone(), lost.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                match store::beat(&state.db.pool, &id, &runner).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(migration.id = %id, error = %e, "a move's heartbeat");
                    }
                }
            }
        })
    };
    let outcome = drive(&state, &m, &lost).await;
    heartbeat.abort();
    let (end, reason) = match outcome {
        Ok(()) => ("completed", None),
        Err(Stop::TakenOver) => {
            tracing::info!(migration.id = %id, "another replica took the move over");
            return;
        }
        Err(stop) => {
            let (end, reason) = match stop {
                Stop::Cancelled => ("cancelled", "cancelled on request".to_owned()),
                Stop::Failed(why) => ("failed", why),
                Stop::TakenOver => unreachable!("handled above"),
            };
            undo(&state, &m).await;
            (end, Some(reason))
        }
    };
    match store::set_state(&state.db.pool, &id, end, reason.as_deref()).await {
        Ok(_) => announce(&state, &id).await,
        Err(e) => tracing::warn!(migration.id = %id, error = %e, "recording a move's end"),
    }
    let (node, line) = match (end, &reason) {
        ("completed", _) => (
            &m.target_node_id,
            "The server was moved to this node".to_owned(),
        ),
        (_, Some(why)) => (
            &m.source_node_id,
            format!("The move ended ({end}): {why}. The server stays on this node as it was"),
        ),
        _ => (&m.source_node_id, format!("The move ended ({end})")),
    };
    tell(&state, node, &m.instance_id, Some(end), &line).await;
    tracing::info!(migration.id = %id, migration.state = end, reason = reason.as_deref().unwrap_or(""), "migration ended");
}

/// Tells the console of the server (on `node`) how its move goes: Wings' `transfer
/// status` and `transfer logs` events. Best effort: a node that does not answer misses it.
async fn tell(state: &AppState, node: &str, instance: &str, status: Option<&str>, line: &str) {
    let Ok(conn) = power::connected(state, node).await else {
        return;
    };
    let notice = Notice {
        status: status.map(str::to_owned),
        line: Some(format!("[Shardlyn Transfer] {line}")),
    };
    if let Err(e) = conn
        .request::<api::TransferNotice>(&instance, &(), &notice)
        .await
    {
        tracing::debug!(instance.id = %instance, error = %e, "a move's console notice");
    }
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
                resumes: m.resumes,
            },
        ))
        .await;
}

async fn step(state: &AppState, m: &Migration, lost: &Lost, to: &str) -> Result<(), Stop> {
    if lost.load(Ordering::Relaxed) {
        return Err(Stop::TakenOver);
    }
    if store::cancel_requested(&state.db.pool, &m.id).await? {
        return Err(Stop::Cancelled);
    }
    if !store::set_state(&state.db.pool, &m.id, to, None).await? {
        return Err(Stop::Failed("the move was ended elsewhere".into()));
    }
    announce(state, &m.id).await;
    let line = match to {
        "copying" => "Copying the server's files to the new node while it keeps running",
        "final_sync" => {
            "Final pass: the server stops, what changed is sent and every file's checksum compared"
        }
        _ => "Switching the server over to the new node",
    };
    let node = &m.source_node_id;
    tell(state, node, &m.instance_id, Some(to), line).await;
    Ok(())
}

/// The two agents of a move, reached again after a cut.
struct Link {
    source: Arc<AgentConn>,
    target: Arc<AgentConn>,
}

impl Link {
    async fn now(state: &AppState, m: &Migration) -> Result<Self, Stop> {
        Ok(Self {
            source: power::connected(state, &m.source_node_id).await?,
            target: power::connected(state, &m.target_node_id).await?,
        })
    }

    /// Waits (at most [`RESUME_WAIT`]) until both nodes answer again.
    async fn again(state: &AppState, m: &Migration, lost: &Lost) -> Result<Self, Stop> {
        let deadline = tokio::time::Instant::now() + RESUME_WAIT;
        loop {
            if lost.load(Ordering::Relaxed) {
                return Err(Stop::TakenOver);
            }
            if store::cancel_requested(&state.db.pool, &m.id).await? {
                return Err(Stop::Cancelled);
            }
            if let Ok(link) = Self::now(state, m).await {
                return Ok(link);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Stop::Failed(format!(
                    "the copy was cut and both nodes did not answer again within {} s",
                    RESUME_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Whether a copy that failed this way can resume: the tunnel or an agent went away,
/// or the archive was cut. A refusal (a full disk, a server the target runs) cannot.
fn resumable(e: &AppError) -> bool {
    matches!(e, AppError::Unavailable(_) | AppError::BadRequest(_))
}

/// One pass of `part`: copies what `select` asks for, resuming after each cut from
/// what the target then has.
async fn pass(
    state: &AppState,
    m: &Migration,
    lost: &Lost,
    link: &mut Link,
    part: TransferPart,
    mut select: ArchiveSelect,
) -> Result<Received, Stop> {
    let id = m.instance_id.as_str();
    let mut cuts = 0;
    loop {
        if lost.load(Ordering::Relaxed) {
            return Err(Stop::TakenOver);
        }
        let e = match copy(state, m, link, part, &select).await {
            Ok(received) => return Ok(received),
            Err(e) if resumable(&e) && cuts < MAX_RESUMES => e,
            Err(e) => return Err(e.into()),
        };
        cuts += 1;
        tracing::warn!(migration.id = %m.id, error = %e, "a move's copy was cut: resuming");
        store::add_resume(&state.db.pool, &m.id).await?;
        announce(state, &m.id).await;
        let line = format!(
            "The copy was cut ({e}); it resumes from what the new node has once both nodes answer"
        );
        tell(state, &m.source_node_id, id, None, &line).await;
        *link = Link::again(state, m, lost).await?;
        if select.only.is_none() {
            select.have = manifest::<api::TransferStaged>(&link.target, id, part, false).await?;
        }
    }
}

async fn instance_of(state: &AppState, m: &Migration) -> Result<Instance, Stop> {
    instances::find(&state.db.pool, &m.instance_id)
        .await?
        .ok_or_else(|| Stop::Failed("the server was deleted".into()))
}

async fn drive(state: &AppState, m: &Migration, lost: &Lost) -> Result<(), Stop> {
    if m.backup_id.is_some() {
        return rebuild(state, m, lost).await;
    }
    let id = m.instance_id.as_str();
    let from = m.state.as_str();
    // A move taken over after a panel restart waits for the agents to dial in again.
    let mut link = if from == "queued" {
        Link::now(state, m).await?
    } else {
        Link::again(state, m, lost).await?
    };
    if from == "queued" {
        // A clean slate on the target (an earlier move may have left a staging directory).
        link.target
            .request::<api::TransferDiscard>(&id, &(), &())
            .await?;
        step(state, m, lost, "copying").await?;
    } else {
        let line = format!("The panel resumes the move ({from})");
        tell(state, &m.source_node_id, id, None, &line).await;
    }
    if matches!(from, "queued" | "copying") {
        for part in [TransferPart::Files, TransferPart::Backups] {
            // Resumed: what the target finished before is not sent again.
            let have = if from == "queued" {
                Manifest::new()
            } else {
                manifest::<api::TransferStaged>(&link.target, id, part, false).await?
            };
            let select = ArchiveSelect { have, only: None };
            pass(state, m, lost, &mut link, part, select).await?;
        }
        step(state, m, lost, "final_sync").await?;
    }

    if m.was_running {
        stop_source(state, m, &link.source).await?;
    }
    for part in [TransferPart::Files, TransferPart::Backups] {
        let have = manifest::<api::TransferStaged>(&link.target, id, part, false).await?;
        pass(
            state,
            m,
            lost,
            &mut link,
            part,
            ArchiveSelect { have, only: None },
        )
        .await?;
        let paths = manifest::<api::TransferManifest>(&link.source, id, part, false).await?;
        let keep = Keep {
            paths: paths.into_keys().collect(),
        };
        link.target
            .request::<api::TransferPrune>(&id, &query(part, false), &keep)
            .await?;
        // Both nodes hash at once: this is most of the server's downtime.
        let (theirs, ours) = tokio::try_join!(
            manifest::<api::TransferManifest>(&link.source, id, part, true),
            manifest::<api::TransferStaged>(&link.target, id, part, true),
        )?;
        let mut differ = differences(&theirs, &ours);
        if !differ.is_empty() {
            tracing::info!(migration.id = %m.id, files = differ.len(), "checksums differ: sending those files again");
            let select = ArchiveSelect {
                have: Manifest::new(),
                only: Some(differ),
            };
            pass(state, m, lost, &mut link, part, select).await?;
            differ = differences(
                &theirs,
                &manifest::<api::TransferStaged>(&link.target, id, part, true).await?,
            );
        }
        if let Some(first) = differ.first() {
            return Err(Stop::Failed(format!(
                "{} entries still differ after the final pass (first: {first})",
                differ.len()
            )));
        }
        let line = format!(
            "{:?}: the checksums of all {} entries match",
            part,
            theirs.len()
        );
        tell(state, &m.source_node_id, id, None, &line).await;
    }
    if store::cancel_requested(&state.db.pool, &m.id).await? {
        return Err(Stop::Cancelled);
    }

    step(state, m, lost, "switching").await?;
    switch(state, m, Some(&link.source), &link.target).await
}

/// A move of a server whose node is offline: its latest S3 backup (chosen when the move
/// was asked for) is extracted into the target's staging directory, checked against the
/// SHA-256 recorded with it, and the target becomes the server's node. What changed
/// after the backup is lost; the old node forgets the server when it connects again.
async fn rebuild(state: &AppState, m: &Migration, lost: &Lost) -> Result<(), Stop> {
    let id = m.instance_id.as_str();
    let backup = crate::backups::store::find(
        &state.db.pool,
        id,
        m.backup_id.as_deref().unwrap_or_default(),
    )
    .await?
    .ok_or_else(|| Stop::Failed("the backup to rebuild from was deleted".into()))?;
    let target = power::connected(state, &m.target_node_id).await?;
    if matches!(m.state.as_str(), "queued" | "copying") {
        if m.state == "queued" {
            step(state, m, lost, "copying").await?;
        }
        let request = RestoreBackup {
            sha256: backup.sha256.clone(),
            truncate: false,
            target: crate::backups::target_of(state, &backup).await?,
        };
        let (headers, body) = AgentConn::json_body::<api::TransferRestore>(&request)?;
        let answer = target
            .open::<api::TransferRestore>(&id, &(), headers, body)
            .await?;
        let received: Received = answer_as(answer).await?;
        store::add_bytes(
            &state.db.pool,
            &m.id,
            i64::try_from(received.bytes).unwrap_or(i64::MAX),
        )
        .await?;
        if store::cancel_requested(&state.db.pool, &m.id).await? {
            return Err(Stop::Cancelled);
        }
        step(state, m, lost, "switching").await?;
    }
    switch(state, m, None, &target).await?;
    // Its local backups stayed on the offline node, which forgets the server.
    crate::backups::store::delete_local_of(&state.db.pool, id).await?;
    Ok(())
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
    // Hashing reads every byte, longer than a request's time limit for a big server: the
    // answer is awaited without one (a dead agent still ends it with its tunnel).
    let answer = conn
        .open::<E>(
            &id,
            &query(part, hash),
            http::HeaderMap::new(),
            Body::empty(),
        )
        .await?;
    answer_as(answer).await
}

/// An agent's answer to an `open`ed request, read as `T`.
async fn answer_as<T: serde::de::DeserializeOwned>(
    answer: http::Response<hyper::body::Incoming>,
) -> AppResult<T> {
    serde_json::from_value(crate::tunnel::read_json(answer).await?)
        .map_err(|e| AppError::Unavailable(format!("the node answered oddly: {e}")))
}

/// Streams an archive of `part` from the source into the target's staging directory.
async fn copy(
    state: &AppState,
    m: &Migration,
    link: &Link,
    part: TransferPart,
    select: &ArchiveSelect,
) -> AppResult<Received> {
    let id = m.instance_id.as_str();
    let (headers, body) = AgentConn::json_body::<api::TransferArchive>(select)?;
    let archive = link
        .source
        .open::<api::TransferArchive>(&id, &query(part, false), headers, body)
        .await?;
    if !archive.status().is_success() {
        return Err(crate::tunnel::read_json(archive)
            .await
            .err()
            .unwrap_or_else(|| AppError::Unavailable("the source answered oddly".into())));
    }
    let answer = link
        .target
        .open::<api::TransferReceive>(
            &id,
            &query(part, false),
            http::HeaderMap::new(),
            Body::new(archive.into_body()),
        )
        .await?;
    let received: Received = answer_as(answer).await?;
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
    // Resumed in the final pass, it may be stopped already.
    if !matches!(
        instance.state,
        InstanceState::Offline | InstanceState::InstallFailed
    ) {
        let status = power::act(state, &instance, PowerAction::Stop).await?;
        if matches!(
            status.state,
            InstanceState::Offline | InstanceState::InstallFailed
        ) {
            return Ok(());
        }
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
    source: Option<&AgentConn>,
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
    // A server suspended for non-payment meanwhile stays stopped on its new node.
    let suspended = crate::billing::dunning::is_suspended(state, &before.id)
        .await
        .unwrap_or(false);
    let desired = if m.was_running && !suspended {
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
    crate::nodes::firewall::instance_removed(state, &m.source_node_id, &before.id).await;
    crate::nodes::firewall::instance_placed(state, &before.id).await;
    crate::dns::auto::instance_placed(state, &before.id).await;
    // From here the target is the server's node; what is left is tidying up.
    if let Ok(Some(now)) = instances::find(&state.db.pool, &before.id).await
        && let Err(e) = sync::push_instance(state, &now).await
    {
        tracing::warn!(migration.id = %m.id, error = %e, "pushing the moved server's spec");
    }
    // An offline source forgets it when it connects again (`instances::ops::sync`).
    if let Some(source) = source
        && let Err(e) = source
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
    if instance.node_id != m.source_node_id || m.backup_id.is_some() {
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
/// [`HEARTBEAT`]); `/metrics` counts such moves as lapsed by the same measure.
pub const STALE_MS: i64 = 30_000;

/// The `migration_reaper` job: under the cluster's job lease, every few seconds, takes
/// over the moves whose replica died. A panel without Redis is the only replica, so at
/// its start every open move is one its previous run left: those resume at once, before
/// the lease (its previous run's lease lapses only after 30 s).
pub async fn reap_until_stopped(
    state: AppState,
    mut lease: tokio::sync::watch::Receiver<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Without Redis this is the only replica: what an earlier run of it left resumes
    // now, without waiting for that run's job lease to lapse.
    if state.redis.is_none() {
        reap_before(&state, state.started_at_ms()).await;
    }
    while crate::jobs::lease::until_held(&mut lease, &mut stop).await {
        reap(&state, STALE_MS).await;
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Takes over the moves whose replica died (nothing moved them forward for
/// `stale_ms`): a move still copying or in its final pass resumes here from what the
/// target has; one caught while switching is completed when the database already names
/// the target, else failed and undone, so its source runs as before.
pub async fn reap(state: &AppState, stale_ms: i64) {
    reap_before(state, crate::db::now_ms() - stale_ms).await;
}

/// [`reap`] of the moves nothing moved forward since `before` (ms).
async fn reap_before(state: &AppState, before: i64) {
    let Ok(rows) = store::stale(&state.db.pool, before).await else {
        return;
    };
    for mut m in rows {
        let runner = crate::db::new_id();
        if !matches!(
            store::take_over(&state.db.pool, &m.id, &runner, before).await,
            Ok(true)
        ) {
            continue;
        }
        m.runner = runner;
        if matches!(m.state.as_str(), "copying" | "final_sync") {
            // Its copy was cut with its replica.
            let _ = store::add_resume(&state.db.pool, &m.id).await;
            m.resumes += 1;
        }
        if m.state != "switching" {
            tracing::info!(migration.id = %m.id, migration.state = %m.state, "resuming a move its replica left");
            spawn(state, m);
            continue;
        }
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
        // The target may have adopted the files before the database switched.
        if let Ok(target) = power::connected(state, &m.target_node_id).await {
            let _ = target
                .request::<api::InstanceDelete>(&m.instance_id.as_str(), &(), &())
                .await;
        }
        undo(state, &m).await;
        let why = "the panel replica running the move stopped while switching; the source was \
                   left as it was";
        let _ = store::set_state(&state.db.pool, &m.id, "failed", Some(why)).await;
        announce(state, &m.id).await;
    }
}
