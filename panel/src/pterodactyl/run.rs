//! One import, phase by phase. Every object it makes is recorded in `pterodactyl_map`
//! by Pterodactyl UUID in the same step, so a re-run (or a replica taking a lapsed import
//! over) finds it and makes nothing twice; every thing read gets a line in the report.
//!
//! 1. `reading`: the source, again (the request checked it could be read).
//! 2. `users`: accounts with their personal organizations ([`super::users`]).
//! 3. `eggs`: one workload per egg and owning organization; an egg our importer refuses
//!    is reported and its servers skipped.
//! 4. `servers`: instances in their owners' organizations, on a platform node, with
//!    their limits, variables, image and (where free) their ports.
//! 5. `subusers`: per-server grants ([`crate::instances::access`]).
//! 6. `schedules` (database mode): the servers' schedules and tasks.
//! 7. `files`: the files from the old Wings over its SFTP ([`super::files`]), while the
//!    old servers keep running.
//! 8. `switch_over`, when asked: each old server stopped (the one write to the old
//!    side), what changed copied again, the new one started.
//!
//! A dry run stops after 4 with `planned` lines and writes nothing but its report. The
//! sealed secrets (API key, database password, `APP_KEY`, files login) are purged when
//! the import ends, however it ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Map, Value};
use shardlyn_proto::egg::Egg;
use shardlyn_proto::instance::{DesiredState, InstanceState, PowerAction};
use tokio::sync::watch;

use super::handlers::{Connection, FilesLogin, ImportRequest};
use super::model::{Mode, Server, Snapshot};
use super::store::{self, Import, Item};
use super::users::{self, Outcome, UserOptions};
use crate::auth::extract::CurrentUser;
use crate::db::new_id;
use crate::error::{AppError, AppResult};
use crate::instances::input::PortRequest;
use crate::instances::store::NewInstance;
use crate::nodes::platform::Pools;
use crate::state::AppState;

/// How long a runner's lease lasts without a renewal.
pub const LEASE_MS: i64 = 60_000;

/// The options of an import, stored in the clear (no secret).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Options {
    servers: Option<Vec<String>>,
    root_admins_become_platform_admins: bool,
    node_id: Option<String>,
    files: bool,
    switch_over: bool,
}

/// Why a server cannot come over, if it cannot (before anything is made).
#[must_use]
pub fn refusal(snapshot: &Snapshot, s: &Server) -> Option<String> {
    if !snapshot.users.iter().any(|u| u.id == s.owner_id) {
        return Some("its owner is not among the panel's users".into());
    }
    let Some(egg) = snapshot.eggs.iter().find(|e| e.id == s.egg_id) else {
        return Some("its egg could not be read (see the warnings)".into());
    };
    if let Err(e) = parse(&egg.ptdl) {
        return Some(format!("its egg `{}` is refused: {e}", egg.name));
    }
    None
}

fn parse(ptdl: &Value) -> AppResult<Egg> {
    crate::workloads::input::parse_egg_text(&ptdl.to_string())
}

/// Stores a new import (secrets sealed) and starts it on this replica.
///
/// # Errors
/// Database failures.
pub async fn start(
    state: &AppState,
    user: &CurrentUser,
    body: &ImportRequest,
) -> AppResult<Import> {
    let now = state.clock.now_ms();
    let options = Options {
        servers: body.servers.clone(),
        root_admins_become_platform_admins: body.root_admins_become_platform_admins,
        node_id: body.node_id.clone(),
        files: body.files.is_some(),
        switch_over: body.switch_over,
    };
    let mut secrets = Map::new();
    secrets.insert(
        "connection".into(),
        serde_json::to_value(&body.connection).map_err(|e| AppError::Internal(e.into()))?,
    );
    if let Some(files) = &body.files {
        secrets.insert(
            "files".into(),
            serde_json::to_value(files).map_err(|e| AppError::Internal(e.into()))?,
        );
    }
    let import = Import {
        id: new_id(),
        mode: match body.connection.mode() {
            Mode::Api => "api",
            Mode::Database => "database",
        }
        .into(),
        source: body.connection.describe(),
        status: "pending".into(),
        dry_run: body.dry_run,
        options: serde_json::to_string(&options).map_err(|e| AppError::Internal(e.into()))?,
        sealed_secrets: Some(crate::sealed::seal_json(&state.master_key, &secrets)),
        allowed_hosts: serde_json::to_string(&[body.connection.host()])
            .map_err(|e| AppError::Internal(e.into()))?,
        phase: "reading".into(),
        counts: "{}".into(),
        error: None,
        created_by: user.user.id.clone(),
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    store::insert(&state.db.pool, &import, &state.replica_id, now + LEASE_MS).await?;
    tokio::spawn(run(state.clone(), import.id.clone()));
    Ok(import)
}

/// Runs (or resumes) import `id`, leased by this replica.
pub async fn run(state: AppState, id: String) {
    let import = match store::find(&state.db.pool, &id).await {
        Ok(Some(i)) if !i.finished() => i,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(import.id = %id, error = %e, "loading the import");
            return;
        }
    };
    let mut runner = Runner {
        owner: state.replica_id.clone(),
        state,
        import,
        user_ids: HashMap::new(),
        orgs: HashMap::new(),
        workloads: HashMap::new(),
        instances: HashMap::new(),
    };
    let outcome = runner.go().await;
    let finished = match outcome {
        Ok(()) => {
            runner.import.status = "succeeded".into();
            runner.import.phase = "done".into();
            true
        }
        Err(Stop::Lost) => false,
        Err(Stop::Failed(why)) => {
            runner.import.status = "failed".into();
            runner.import.error = Some(why);
            true
        }
    };
    if finished {
        runner.import.sealed_secrets = None;
        runner.import.finished_at = Some(runner.state.clock.now_ms());
        if let Err(e) = runner.count_and_save().await {
            tracing::warn!(import.id = %id, error = ?e, "recording the end of an import");
        }
    }
}

#[derive(Debug)]
enum Stop {
    /// Another replica holds the import now.
    Lost,
    /// The import cannot go on, for this reason.
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

struct Runner {
    state: AppState,
    import: Import,
    owner: String,
    /// Pterodactyl user id → account id and personal organization.
    user_ids: HashMap<i64, String>,
    orgs: HashMap<i64, String>,
    /// (egg id, organization) → workload id.
    workloads: HashMap<(i64, String), String>,
    /// Pterodactyl server id → instance id.
    instances: HashMap<i64, String>,
}

impl Runner {
    async fn save(&mut self) -> Result<(), Stop> {
        let now = self.state.clock.now_ms();
        self.import.updated_at = now;
        if store::save(
            &self.state.db.pool,
            &self.import,
            &self.owner,
            now + LEASE_MS,
            now,
        )
        .await?
        {
            Ok(())
        } else {
            Err(Stop::Lost)
        }
    }

    async fn count_and_save(&mut self) -> Result<(), Stop> {
        let items = store::items(&self.state.db.pool, &self.import.id).await?;
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for item in &items {
            *counts.entry(item.status.clone()).or_default() += 1;
        }
        self.import.counts = serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into());
        self.save().await
    }

    async fn phase(&mut self, phase: &str) -> Result<(), Stop> {
        self.import.phase = phase.into();
        self.import.status = "running".into();
        self.count_and_save().await
    }

    async fn item(&self, item: Item) -> Result<(), Stop> {
        store::put_item(
            &self.state.db.pool,
            &self.import.id,
            &item,
            self.state.clock.now_ms(),
        )
        .await?;
        Ok(())
    }

    fn secrets(&self) -> Result<(Connection, Option<FilesLogin>), Stop> {
        let sealed = self
            .import
            .sealed_secrets
            .as_deref()
            .ok_or_else(|| Stop::Failed("the import's secrets are gone".into()))?;
        let mut map = crate::sealed::open_json(&self.state.master_key, sealed)
            .map_err(|e| Stop::Failed(format!("opening the import's secrets: {e}")))?;
        let connection: Connection =
            serde_json::from_value(map.remove("connection").unwrap_or(Value::Null))
                .map_err(|e| Stop::Failed(format!("the stored connection: {e}")))?;
        let files = map
            .remove("files")
            .and_then(|v| serde_json::from_value::<FilesLogin>(v).ok());
        Ok((connection, files))
    }

    async fn go(&mut self) -> Result<(), Stop> {
        let options: Options = serde_json::from_str(&self.import.options)
            .map_err(|e| Stop::Failed(format!("the stored options: {e}")))?;
        let (connection, files) = self.secrets()?;
        self.phase("reading").await?;
        let (snapshot, problems) = connection
            .read(&self.state.config.outbound)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        for p in &problems {
            self.item(Item {
                kind: "egg".into(),
                source_uuid: format!("problem:{}", short_hash(p)),
                name: p.chars().take(120).collect(),
                status: "skipped".into(),
                target_id: None,
                message: p.clone(),
                detail: "{}".into(),
            })
            .await?;
        }
        let chosen: Vec<&Server> = snapshot
            .servers
            .iter()
            .filter(|s| {
                options
                    .servers
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|u| u == &s.uuid))
            })
            .collect();
        self.users(&snapshot, &chosen, &options, connection.mode())
            .await?;
        let refused = self.eggs(&snapshot, &chosen).await?;
        self.servers(&snapshot, &chosen, &options, &refused, files.is_some())
            .await?;
        if self.import.dry_run {
            return Ok(());
        }
        self.subusers(&snapshot).await?;
        self.schedules(&snapshot).await?;
        if let Some(login) = &files {
            let outbound = connection.outbound(
                &self.state.config.outbound,
                &snapshot
                    .nodes
                    .iter()
                    .map(|n| n.fqdn.clone())
                    .collect::<Vec<_>>(),
            )?;
            self.files(&snapshot, &chosen, login, &outbound, options.switch_over)
                .await?;
        }
        Ok(())
    }

    /// The owners and subusers of the chosen servers (every user when none was named).
    async fn users(
        &mut self,
        snapshot: &Snapshot,
        chosen: &[&Server],
        options: &Options,
        mode: Mode,
    ) -> Result<(), Stop> {
        self.phase("users").await?;
        let wanted: BTreeSet<i64> = if options.servers.is_none() {
            snapshot.users.iter().map(|u| u.id).collect()
        } else {
            let ids: BTreeSet<i64> = chosen.iter().map(|s| s.id).collect();
            chosen
                .iter()
                .map(|s| s.owner_id)
                .chain(
                    snapshot
                        .subusers
                        .iter()
                        .filter(|su| ids.contains(&su.server_id))
                        .map(|su| su.user_id),
                )
                .collect()
        };
        let opts = UserOptions {
            mode,
            dry_run: self.import.dry_run,
            root_admins_become_platform_admins: options.root_admins_become_platform_admins,
        };
        for u in snapshot.users.iter().filter(|u| wanted.contains(&u.id)) {
            let out = users::import_user(&self.state, &self.import.id, u, &opts).await?;
            if let (Some(user_id), Some(org_id)) = (&out.user_id, &out.org_id)
                && matches!(out.status, Outcome::Imported | Outcome::Exists)
            {
                self.user_ids.insert(u.id, user_id.clone());
                self.orgs.insert(u.id, org_id.clone());
            }
            if out.status == Outcome::Planned {
                // A dry run plans the servers of the accounts it would make.
                self.orgs.insert(u.id, format!("planned:{}", u.uuid));
            }
            let status = serde_json::to_value(out.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "failed".into());
            self.item(Item {
                kind: "user".into(),
                source_uuid: u.uuid.clone(),
                name: u.email.clone(),
                status,
                target_id: out.user_id.clone(),
                message: out.message.clone(),
                detail: "{}".into(),
            })
            .await?;
        }
        Ok(())
    }

    /// One workload per egg and owning organization; the ids of eggs refused.
    async fn eggs(
        &mut self,
        snapshot: &Snapshot,
        chosen: &[&Server],
    ) -> Result<BTreeSet<i64>, Stop> {
        self.phase("eggs").await?;
        let mut refused = BTreeSet::new();
        let used: BTreeSet<i64> = chosen.iter().map(|s| s.egg_id).collect();
        for egg in snapshot.eggs.iter().filter(|e| used.contains(&e.id)) {
            let parsed = match parse(&egg.ptdl) {
                Ok(p) => p,
                Err(e) => {
                    refused.insert(egg.id);
                    self.item(Item {
                        kind: "egg".into(),
                        source_uuid: egg.uuid.clone(),
                        name: format!("{} / {}", egg.nest_name, egg.name),
                        status: "skipped".into(),
                        target_id: None,
                        message: format!(
                            "refused by the egg importer: {e}; its servers are skipped"
                        ),
                        detail: "{}".into(),
                    })
                    .await?;
                    continue;
                }
            };
            let orgs: BTreeSet<String> = chosen
                .iter()
                .filter(|s| s.egg_id == egg.id)
                .filter_map(|s| self.orgs.get(&s.owner_id).cloned())
                .collect();
            let mut made = Vec::new();
            let mut existed = 0;
            for org in &orgs {
                let key = format!("{}/{}", egg.uuid, org);
                if let Some(id) = store::mapped(&self.state.db.pool, "workload", &key).await? {
                    self.workloads.insert((egg.id, org.clone()), id);
                    existed += 1;
                    continue;
                }
                if self.import.dry_run {
                    continue;
                }
                let id = new_id();
                let mut tx = self.state.db.pool.begin().await?;
                crate::workloads::store::insert(
                    &mut *tx,
                    &id,
                    &crate::workloads::store::NewWorkload {
                        org_id: org,
                        source: crate::workloads::store::Source::Egg,
                        template: None,
                        egg: &parsed,
                        dns_srv_service: None,
                        created_by: &self.import.created_by,
                    },
                )
                .await?;
                store::map(
                    &mut *tx,
                    "workload",
                    &key,
                    &id,
                    &self.import.id,
                    self.state.clock.now_ms(),
                )
                .await?;
                tx.commit().await?;
                crate::readcache::changed();
                self.workloads.insert((egg.id, org.clone()), id.clone());
                made.push(id);
            }
            let status = if self.import.dry_run && existed < orgs.len() {
                "planned"
            } else if self.import.dry_run || (made.is_empty() && existed > 0) {
                "exists"
            } else {
                "imported"
            };
            self.item(Item {
                kind: "egg".into(),
                source_uuid: egg.uuid.clone(),
                name: format!("{} / {}", egg.nest_name, egg.name),
                status: status.into(),
                target_id: made.first().cloned(),
                message: if self.import.dry_run {
                    format!(
                        "would make {} workload(s) ({existed} exist from an earlier import)",
                        orgs.len() - existed
                    )
                } else {
                    format!(
                        "{} workload(s) made, {existed} from an earlier import, for {} organization(s)",
                        made.len(),
                        orgs.len()
                    )
                },
                detail: "{}".into(),
            })
            .await?;
        }
        Ok(refused)
    }

    async fn servers(
        &mut self,
        snapshot: &Snapshot,
        chosen: &[&Server],
        options: &Options,
        refused: &BTreeSet<i64>,
        files: bool,
    ) -> Result<(), Stop> {
        self.phase("servers").await?;
        for s in chosen {
            let line = self.server(snapshot, s, options, refused, files).await;
            let item = match line {
                Ok(item) => item,
                Err(e) => Item {
                    kind: "server".into(),
                    source_uuid: s.uuid.clone(),
                    name: s.name.clone(),
                    status: "failed".into(),
                    target_id: None,
                    message: e.to_string(),
                    detail: "{}".into(),
                },
            };
            self.item(item).await?;
            self.save().await?;
        }
        Ok(())
    }

    async fn server(
        &mut self,
        snapshot: &Snapshot,
        s: &Server,
        options: &Options,
        refused: &BTreeSet<i64>,
        files: bool,
    ) -> AppResult<Item> {
        let mut item = Item {
            kind: "server".into(),
            source_uuid: s.uuid.clone(),
            name: s.name.clone(),
            status: "skipped".into(),
            target_id: None,
            message: String::new(),
            detail: "{}".into(),
        };
        if let Some(id) = store::mapped(&self.state.db.pool, "server", &s.uuid).await? {
            self.instances.insert(s.id, id.clone());
            item.status = "exists".into();
            item.target_id = Some(id);
            item.message = "imported before".into();
            return Ok(item);
        }
        if let Some(why) = refusal(snapshot, s) {
            item.message = why;
            return Ok(item);
        }
        if refused.contains(&s.egg_id) {
            item.message = "its egg is refused (see the egg's line)".into();
            return Ok(item);
        }
        let Some(org) = self.orgs.get(&s.owner_id).cloned() else {
            let owner = snapshot.users.iter().find(|u| u.id == s.owner_id);
            item.message = format!(
                "its owner {} did not come over (see the user's line)",
                owner.map_or("?", |u| u.email.as_str())
            );
            return Ok(item);
        };
        let egg_doc = snapshot
            .eggs
            .iter()
            .find(|e| e.id == s.egg_id)
            .ok_or_else(|| AppError::Validation("egg missing".into()))?;
        let egg = parse(&egg_doc.ptdl)?;
        let limits = crate::instances::input::limits(
            &shardlyn_proto::instance::Limits::default(),
            Some(&crate::instances::input::LimitsInput {
                memory_mb: Some(if s.memory_mb > 0 {
                    s.memory_mb.max(64)
                } else {
                    0
                }),
                swap_mb: Some(s.swap_mb.max(-1)),
                cpu_percent: Some(s.cpu.clamp(0, 6400)),
                disk_mb: Some(s.disk_mb.max(0)),
                pids: None,
                io_weight: Some(s.io.clamp(10, 1000)),
            }),
        )?;
        let pools = Pools {
            own: false,
            platform: true,
        };
        let node = match &options.node_id {
            Some(id) => crate::nodes::store::find_any(&self.state.db.pool, id)
                .await?
                .filter(|n| n.platform)
                .ok_or_else(|| AppError::Validation("the chosen platform node is gone".into()))?,
            None => {
                crate::instances::placement::choose_in(
                    &self.state.db.pool,
                    &org,
                    pools,
                    &limits,
                    None,
                )
                .await?
            }
        };
        if self.import.dry_run {
            item.status = "planned".into();
            item.message = format!(
                "becomes a server of {} on node {} with ports {:?}",
                snapshot
                    .users
                    .iter()
                    .find(|u| u.id == s.owner_id)
                    .map_or("?", |u| u.email.as_str()),
                node.name,
                s.allocations.iter().map(|a| a.port).collect::<Vec<_>>()
            );
            return Ok(item);
        }
        let workload_id = self
            .workloads
            .get(&(s.egg_id, org.clone()))
            .cloned()
            .ok_or_else(|| AppError::Validation("its workload was not made".into()))?;
        let variables: BTreeMap<String, String> = egg
            .variables
            .iter()
            .map(|v| {
                (
                    v.env_variable.clone(),
                    s.variables
                        .get(&v.env_variable)
                        .cloned()
                        .unwrap_or_else(|| v.default_value.clone()),
                )
            })
            .collect();
        let image = if s.image.trim().is_empty() {
            crate::instances::input::image(&egg, None)?
        } else {
            s.image.trim().to_owned()
        };
        let name = crate::instances::input::check_name(&s.name).unwrap_or_else(|_| {
            s.name
                .chars()
                .take(60)
                .collect::<String>()
                .trim()
                .to_owned()
        });
        let description =
            crate::instances::input::check_description(&s.description).unwrap_or_default();
        let id = new_id();
        let mut ports: Vec<u16> = Vec::new();
        for a in s
            .allocations
            .iter()
            .filter(|a| a.primary)
            .chain(s.allocations.iter().filter(|a| !a.primary))
        {
            if !ports.contains(&a.port) {
                ports.push(a.port);
            }
        }
        let new = NewInstance {
            id: &id,
            org_id: &org,
            node_id: &node.id,
            workload_id: &workload_id,
            name: &name,
            description: &description,
            image: &image,
            variables: &variables,
            limits: &limits,
            // With its files coming over, it is installed already.
            state: if !files && crate::instances::spec::has_install(&egg) {
                InstanceState::Installing
            } else {
                InstanceState::Offline
            },
            desired_state: DesiredState::Stopped,
            created_by: &self.import.created_by,
        };
        let asked = if ports.is_empty() {
            PortRequest::Auto(1)
        } else {
            PortRequest::Explicit(ports.clone())
        };
        let mut moved_ports = false;
        let instance =
            match crate::instances::create::insert_placed(&self.state, &new, &asked, &egg).await {
                Err(AppError::Coded { code, .. }) if code == "PORT_IN_USE" && !ports.is_empty() => {
                    moved_ports = true;
                    crate::instances::create::insert_placed(
                        &self.state,
                        &new,
                        &PortRequest::Auto(ports.len()),
                        &egg,
                    )
                    .await?
                }
                other => other?,
            };
        store::map(
            &self.state.db.pool,
            "server",
            &s.uuid,
            &instance.id,
            &self.import.id,
            self.state.clock.now_ms(),
        )
        .await?;
        self.instances.insert(s.id, instance.id.clone());
        let got: Vec<u16> = instance.allocations.iter().map(|a| a.port).collect();
        item.status = "imported".into();
        item.target_id = Some(instance.id.clone());
        item.message = if moved_ports {
            format!(
                "on node {}; its ports {ports:?} were taken there, so it got {got:?}",
                node.name
            )
        } else {
            format!("on node {} with ports {got:?}", node.name)
        };
        Ok(item)
    }

    async fn subusers(&mut self, snapshot: &Snapshot) -> Result<(), Stop> {
        self.phase("subusers").await?;
        for su in &snapshot.subusers {
            let Some(instance_id) = self.instances.get(&su.server_id).cloned() else {
                continue;
            };
            let server_uuid = snapshot
                .servers
                .iter()
                .find(|s| s.id == su.server_id)
                .map_or_else(String::new, |s| s.uuid.clone());
            let user = snapshot.users.iter().find(|u| u.id == su.user_id);
            let key = format!("{server_uuid}/{}", user.map_or("", |u| u.uuid.as_str()));
            let mut item = Item {
                kind: "subuser".into(),
                source_uuid: key.clone(),
                name: user.map_or_else(String::new, |u| u.email.clone()),
                status: "skipped".into(),
                target_id: None,
                message: String::new(),
                detail: "{}".into(),
            };
            let keys = grant_keys(&su.permissions);
            match self.user_ids.get(&su.user_id).cloned() {
                None => item.message = "the account did not come over (see the user's line)".into(),
                Some(user_id) => {
                    let instance = crate::instances::store::find(&self.state.db.pool, &instance_id)
                        .await?
                        .ok_or_else(|| Stop::Failed("an imported server vanished".into()))?;
                    if instance_member_is_full(&self.state, &instance.org_id, &user_id).await? {
                        item.status = "exists".into();
                        item.message =
                            "a member of the organization already; sees every server".into();
                    } else {
                        let mut tx =
                            crate::billing::limits::lock(&self.state, &instance.org_id).await?;
                        match crate::instances::access::put(
                            &mut tx,
                            &self.state,
                            &instance,
                            &user_id,
                            &keys,
                        )
                        .await
                        {
                            Ok(()) => {
                                tx.commit().await?;
                                crate::readcache::changed();
                                store::map(
                                    &self.state.db.pool,
                                    "subuser",
                                    &key,
                                    &user_id,
                                    &self.import.id,
                                    self.state.clock.now_ms(),
                                )
                                .await?;
                                item.status = "imported".into();
                                item.target_id = Some(user_id);
                                item.message = format!("granted {}", keys.join(", "));
                            }
                            Err(e) => {
                                item.status = "failed".into();
                                item.message = e.to_string();
                            }
                        }
                    }
                }
            }
            self.item(item).await?;
        }
        Ok(())
    }

    async fn schedules(&mut self, snapshot: &Snapshot) -> Result<(), Stop> {
        self.phase("schedules").await?;
        for sc in &snapshot.schedules {
            let Some(instance_id) = self.instances.get(&sc.server_id).cloned() else {
                continue;
            };
            let key = format!("{}:{}", instance_id, sc.id);
            let mut item = Item {
                kind: "schedule".into(),
                source_uuid: key.clone(),
                name: sc.name.clone(),
                status: "imported".into(),
                target_id: None,
                message: String::new(),
                detail: "{}".into(),
            };
            if let Some(id) = store::mapped(&self.state.db.pool, "schedule", &key).await? {
                item.status = "exists".into();
                item.target_id = Some(id);
                self.item(item).await?;
                continue;
            }
            match self.schedule(sc, &instance_id).await {
                Ok(id) => {
                    store::map(
                        &self.state.db.pool,
                        "schedule",
                        &key,
                        &id,
                        &self.import.id,
                        self.state.clock.now_ms(),
                    )
                    .await?;
                    item.target_id = Some(id);
                }
                Err(e) => {
                    item.status = "failed".into();
                    item.message = e.to_string();
                }
            }
            self.item(item).await?;
        }
        Ok(())
    }

    async fn schedule(&self, sc: &super::model::Schedule, instance_id: &str) -> AppResult<String> {
        use crate::schedules::store::{Action, Schedule, Task};
        let instance = crate::instances::store::find(&self.state.db.pool, instance_id)
            .await?
            .ok_or_else(|| AppError::not_found("instance"))?;
        let cron = format!(
            "{} {} {} {} {}",
            sc.cron_minute, sc.cron_hour, sc.cron_day_of_month, sc.cron_month, sc.cron_day_of_week
        );
        let when = crate::schedules::input::when(&cron, "UTC")?;
        let mut tasks = Vec::new();
        for t in &sc.tasks {
            let action = Action::parse(&t.action).ok_or_else(|| {
                AppError::Validation(format!("task action `{}` is not known", t.action))
            })?;
            tasks.push(Task {
                action,
                payload: if action == Action::Backup {
                    String::new()
                } else {
                    t.payload.clone()
                },
                backup_name: String::new(),
                time_offset: t.time_offset.clamp(0, 900),
                continue_on_failure: t.continue_on_failure,
            });
        }
        let now = self.state.clock.now_ms();
        let schedule = Schedule {
            id: new_id(),
            instance_id: instance.id.clone(),
            org_id: instance.org_id.clone(),
            name: crate::schedules::input::name(&sc.name)?,
            cron,
            timezone: "UTC".into(),
            enabled: sc.is_active,
            only_when_online: sc.only_when_online,
            next_run_at: if sc.is_active {
                when.next_after(now)
            } else {
                None
            },
            last_run_at: None,
            created_at: now,
            updated_at: now,
            tasks,
        };
        crate::schedules::store::insert(&self.state.db.pool, &schedule).await?;
        Ok(schedule.id)
    }

    async fn files(
        &mut self,
        snapshot: &Snapshot,
        chosen: &[&Server],
        login: &FilesLogin,
        outbound: &shardlyn_net::outbound::Outbound,
        switch_over: bool,
    ) -> Result<(), Stop> {
        self.phase("files").await?;
        let mut copied = Vec::new();
        for s in chosen {
            let Some(instance_id) = self.instances.get(&s.id).cloned() else {
                continue;
            };
            let Some(node) = snapshot.nodes.iter().find(|n| n.id == s.node_id) else {
                continue;
            };
            let from = super::files::WingsSftp {
                host: node.fqdn.clone(),
                port: node.daemon_sftp,
                username: format!("{}.{}", login.username, s.identifier),
                password: login.password.clone(),
                known_host: None,
            };
            let mut from = from;
            let status = self
                .copy_one(s, &instance_id, &mut from, outbound, "files")
                .await?;
            if status {
                copied.push((*s, instance_id, from));
            }
        }
        if !switch_over {
            return Ok(());
        }
        self.phase("switch_over").await?;
        for (s, instance_id, mut from) in copied {
            let Some(node) = snapshot.nodes.iter().find(|n| n.id == s.node_id) else {
                continue;
            };
            let mut item = Item {
                kind: "switch_over".into(),
                source_uuid: s.uuid.clone(),
                name: s.name.clone(),
                status: "failed".into(),
                target_id: Some(instance_id.clone()),
                message: String::new(),
                detail: "{}".into(),
            };
            if let Err(e) = super::wings::stop_old(outbound, node, &s.uuid).await {
                item.message =
                    format!("the old server was not stopped: {e}; the new one stays stopped");
                self.item(item).await?;
                continue;
            }
            if !self
                .copy_one(s, &instance_id, &mut from, outbound, "files")
                .await?
            {
                item.message = "the old server is stopped, but the last copy failed (see its files line); start it again on the old panel or re-run".into();
                self.item(item).await?;
                continue;
            }
            let instance = crate::instances::store::find(&self.state.db.pool, &instance_id)
                .await?
                .ok_or_else(|| Stop::Failed("an imported server vanished".into()))?;
            match crate::instances::ops::power::act(&self.state, &instance, PowerAction::Start)
                .await
            {
                Ok(_) => {
                    item.status = "imported".into();
                    item.message =
                        "the old server stopped, the last changes copied, the new one started"
                            .into();
                }
                Err(e) => item.message = format!("copied, but the new server did not start: {e}"),
            }
            self.item(item).await?;
        }
        Ok(())
    }

    /// Copies one server's files, recording the line; whether it completed.
    async fn copy_one(
        &mut self,
        s: &Server,
        instance_id: &str,
        from: &mut super::files::WingsSftp,
        outbound: &shardlyn_net::outbound::Outbound,
        kind: &str,
    ) -> Result<bool, Stop> {
        let instance = crate::instances::store::find(&self.state.db.pool, instance_id)
            .await?
            .ok_or_else(|| Stop::Failed("an imported server vanished".into()))?;
        let progress = |_p: super::files::FileProgress| {};
        let mut result =
            super::files::copy(&self.state, outbound, from, &instance, &progress).await;
        // A pass cut in the middle (the source dropped, the node's tunnel) resumes where
        // it stopped: once here; a re-run of the import goes on from there too.
        if let Err(e) = &result
            && e.resumable()
        {
            result = super::files::copy(&self.state, outbound, from, &instance, &progress).await;
        }
        if let Ok(report) = &result {
            from.known_host
                .get_or_insert_with(|| report.host_key.clone());
        }
        let (status, message, detail, ok) = match result {
            Ok(report) => (
                "imported",
                format!(
                    "{} files, {} bytes copied ({} unchanged)",
                    report.files, report.bytes, report.skipped_same
                ),
                serde_json::to_string(&report).unwrap_or_else(|_| "{}".into()),
                true,
            ),
            Err(e) => (
                "failed",
                format!("{e} (re-run the import to resume)"),
                "{}".into(),
                false,
            ),
        };
        self.item(Item {
            kind: kind.into(),
            source_uuid: s.uuid.clone(),
            name: s.name.clone(),
            status: status.into(),
            target_id: Some(instance_id.to_owned()),
            message,
            detail,
        })
        .await?;
        self.save().await?;
        Ok(ok)
    }
}

/// Whether `user_id` is a full (not per-server) member of `org_id`.
async fn instance_member_is_full(state: &AppState, org_id: &str, user_id: &str) -> AppResult<bool> {
    let row: Option<(crate::db::row::Flag,)> =
        sqlx::query_as("SELECT scoped FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(row.is_some_and(|(scoped,)| !scoped.0))
}

/// Pterodactyl's subuser keys as our instance keys.
#[must_use]
pub fn grant_keys(pterodactyl: &[String]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    keys.insert("instances.read");
    for k in pterodactyl {
        let ours: &[&str] = match k.as_str() {
            "control.console" => &["instances.console", "instances.logs"],
            "control.start" | "control.stop" | "control.restart" => &["instances.power"],
            "file.read" | "file.read-content" => &["instances.files.read"],
            "file.create" | "file.update" | "file.delete" | "file.archive" => {
                &["instances.files.read", "instances.files.write"]
            }
            "file.sftp" => &["instances.sftp"],
            "backup.read" | "backup.download" => &["instances.backups.read"],
            "backup.create" | "backup.delete" => {
                &["instances.backups.read", "instances.backups.write"]
            }
            "backup.restore" => &["instances.backups.restore"],
            "schedule.read" | "schedule.create" | "schedule.update" | "schedule.delete" => {
                &["instances.schedules"]
            }
            "startup.update" | "startup.docker-image" | "settings.rename" => &["instances.update"],
            "settings.reinstall" => &["instances.update"],
            _ => &[],
        };
        keys.extend(ours.iter().copied());
    }
    crate::instances::access::check_keys(&keys.into_iter().map(str::to_owned).collect::<Vec<_>>())
        .unwrap_or_else(|_| vec!["instances.read".into()])
}

fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..8])
}

/// Takes over, on every replica, imports whose lease lapsed (their replica died), every
/// `poll`, until `stop`.
pub async fn run_until_stopped(state: AppState, poll: Duration, stop: watch::Receiver<bool>) {
    crate::jobs::lease::resume_lapsed(
        state,
        poll,
        stop,
        crate::jobs::lease::Leased {
            what: "Pterodactyl import",
            lease_ms: LEASE_MS,
        },
        |pool, now| async move { store::lapsed(&pool, now).await },
        |pool, id, owner, now, until| async move {
            store::take_over(&pool, &id, &owner, now, until).await
        },
        run,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subuser_keys_map_onto_instance_keys() {
        let keys = grant_keys(&[
            "control.console".into(),
            "control.start".into(),
            "file.sftp".into(),
            "user.create".into(),
        ]);
        assert_eq!(
            keys,
            vec![
                "instances.read",
                "instances.power",
                "instances.console",
                "instances.logs",
                "instances.sftp"
            ]
        );
        assert_eq!(grant_keys(&[]), vec!["instances.read"]);
    }
}
