//! Runs a deployment's steps in order, recording each (and what it made) before going
//! on, so a replica that takes a lapsed lease over resumes where the dead one stopped:
//!
//! 1. `workload`: the organization's workload made from the template, else a new one
//!    (as `POST /v1/workloads/from-template` makes it);
//! 2. `limits`: the plan's room for one more server (402 `PLAN_LIMIT`'s message);
//! 3. `place`: the node asked for, else the planner's best fit;
//! 4. `create`: the server, through `POST /v1/instances`' own handler, as the user who
//!    asked (their permission is checked again);
//! 5. `dns`: with a subdomain, the server's records under the auto-DNS zone (skipped,
//!    and said, when the organization has none);
//! 6. `install`: waits until the install script ends;
//! 7. `start`: starts the server and waits until it runs.
//!
//! A failed step is recorded with its reason and what the deployment made is removed:
//! the server (with its DNS records) and the workload when the deployment made it and
//! nothing else uses it. `run_until_stopped` (a job on every replica) takes over
//! deployments whose lease lapsed.

use std::time::Duration;

use axum::extract::State;
use serde_json::json;
use shardlyn_proto::instance::{InstanceState, Limits, PowerAction};
use tokio::sync::watch;
use tokio::time::Instant;

use super::handlers::{check_room, workload_from};
use super::store::{self, Deployment, Step};
use crate::auth::extract::{Credential, CurrentUser};
use crate::error::{AppError, AppJson};
use crate::instances::placement;
use crate::state::AppState;
use crate::workloads::store::{NewWorkload, Source};
use crate::workloads::templates::Template;

/// The steps, in order.
pub const STEPS: [&str; 7] = [
    "workload", "limits", "place", "create", "dns", "install", "start",
];
/// How long a runner's lease lasts without a renewal (it renews at every step and
/// every poll while it waits).
pub const LEASE_MS: i64 = 30_000;
/// How often a waiting step looks at the server.
const POLL: Duration = Duration::from_millis(300);
/// The longest an install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest a start may take.
const START_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a server may stay offline after its start before the step fails.
const OFFLINE_GRACE: Duration = Duration::from_secs(10);

/// Why a step did not succeed.
#[derive(Debug)]
enum Fail {
    /// Another replica holds the deployment now: stop without writing.
    Lost,
    /// The step failed, for this reason.
    Failed(String),
}

impl From<AppError> for Fail {
    fn from(e: AppError) -> Self {
        if let AppError::Internal(inner) = &e {
            tracing::error!(error = %inner, "deployment step");
        }
        Self::Failed(e.to_string())
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        AppError::from(e).into()
    }
}

/// How a step ended well.
enum Outcome {
    Done(String),
    Skipped(String),
}

type StepResult = Result<Outcome, Fail>;

/// Runs deployment `id` on this replica, which holds its lease.
pub async fn run(state: AppState, id: String) {
    let d = match store::find(&state.db.pool, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(deployment.id = %id, error = %e, "loading the deployment");
            return;
        }
    };
    let owner = state.replica_id.clone();
    let mut runner = Runner { state, d, owner };
    if let Err(e) = runner.go().await {
        tracing::warn!(deployment.id = %id, error = ?e, "deployment stopped; another replica resumes it");
    }
}

struct Runner {
    state: AppState,
    d: Deployment,
    owner: String,
}

impl Runner {
    fn now(&self) -> i64 {
        self.state.clock.now_ms()
    }

    /// Writes the deployment and renews the lease; `Lost` when another replica has it.
    async fn save(&mut self) -> Result<(), Fail> {
        let now = self.now();
        self.d.updated_at = now;
        if store::save(
            &self.state.db.pool,
            &self.d,
            &self.owner,
            now + LEASE_MS,
            now,
        )
        .await?
        {
            Ok(())
        } else {
            Err(Fail::Lost)
        }
    }

    /// Waits one poll and renews the lease.
    async fn pause(&self) -> Result<(), Fail> {
        tokio::time::sleep(POLL).await;
        let until = self.now() + LEASE_MS;
        if store::renew(&self.state.db.pool, &self.d.id, &self.owner, until).await? {
            Ok(())
        } else {
            Err(Fail::Lost)
        }
    }

    fn set_steps(&mut self, steps: &[Step]) {
        self.d.steps = serde_json::to_string(steps).unwrap_or_else(|_| "[]".into());
    }

    async fn go(&mut self) -> Result<(), Fail> {
        if self.d.finished() {
            return Ok(());
        }
        self.d.status = "running".into();
        let mut steps = self.d.steps();
        for i in 0..steps.len() {
            if matches!(steps[i].status.as_str(), "succeeded" | "skipped") {
                continue;
            }
            let resumed = steps[i].status == "running";
            steps[i].status = "running".into();
            steps[i].started_at.get_or_insert(self.now());
            self.set_steps(&steps);
            self.save().await?;
            let name = steps[i].name.clone();
            let outcome = self.step(&name, resumed).await;
            let now = self.now();
            steps[i].finished_at = Some(now);
            match outcome {
                Ok(Outcome::Done(m)) => {
                    steps[i].status = "succeeded".into();
                    steps[i].message = Some(m);
                }
                Ok(Outcome::Skipped(m)) => {
                    steps[i].status = "skipped".into();
                    steps[i].message = Some(m);
                }
                Err(Fail::Lost) => return Err(Fail::Lost),
                Err(Fail::Failed(m)) => {
                    tracing::info!(deployment.id = %self.d.id, step = %name, reason = %m, "deployment failed");
                    steps[i].status = "failed".into();
                    steps[i].message = Some(m.clone());
                    self.cleanup().await;
                    self.d.status = "failed".into();
                    self.d.error = Some(format!("{name}: {m}"));
                    self.set_steps(&steps);
                    return self.save().await;
                }
            }
            self.set_steps(&steps);
            self.save().await?;
        }
        self.d.status = "succeeded".into();
        self.save().await
    }

    async fn step(&mut self, name: &str, resumed: bool) -> StepResult {
        match name {
            "workload" => self.workload().await,
            "limits" => {
                check_room(&self.state, &self.d.org_id).await?;
                Ok(Outcome::Done("the plan has room for the server".into()))
            }
            "place" => self.place().await,
            "create" => self.create(resumed).await,
            "dns" => self.dns().await,
            "install" => self.install().await,
            "start" => self.start().await,
            other => Err(Fail::Failed(format!("unknown step {other}"))),
        }
    }

    async fn workload(&mut self) -> StepResult {
        if let Some(id) = &self.d.workload_id {
            return Ok(Outcome::Done(format!("workload {id}")));
        }
        let template = Template::find(&self.d.template)
            .ok_or_else(|| Fail::Failed(format!("template {} is gone", self.d.template)))?;
        if let Some(id) = workload_from(&self.state, &self.d.org_id, template.id).await? {
            let msg = format!("reused the organization's workload {id}");
            self.d.workload_id = Some(id);
            return Ok(Outcome::Done(msg));
        }
        let egg = template.egg()?;
        let workload = crate::workloads::store::insert(
            &self.state.db.pool,
            &crate::db::new_id(),
            &NewWorkload {
                org_id: &self.d.org_id,
                source: Source::Template,
                template: Some(template.id),
                egg: &egg,
                dns_srv_service: template.dns_srv_service,
                created_by: &self.d.created_by,
            },
        )
        .await?;
        self.d.workload_id = Some(workload.id.clone());
        self.d.workload_made = true;
        Ok(Outcome::Done(format!(
            "made workload {} ({}) from the template",
            workload.name, workload.id
        )))
    }

    async fn place(&mut self) -> StepResult {
        let org = &self.d.org_id;
        let node = match &self.d.node_id {
            Some(id) => placement::named(&self.state, org, id).await?,
            None => placement::choose(&self.state, org, &Limits::default()).await?,
        };
        let msg = format!("node {}", placement::shown_name(&node, org));
        self.d.node_id = Some(node.id);
        Ok(Outcome::Done(msg))
    }

    /// The server an earlier runner made before it could record it.
    async fn orphan(&self) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM instances WHERE org_id = $1 AND workload_id = $2 AND name = $3 \
             AND created_by = $4 AND created_at >= $5 ORDER BY created_at LIMIT 1",
        )
        .bind(&self.d.org_id)
        .bind(&self.d.workload_id)
        .bind(&self.d.name)
        .bind(&self.d.created_by)
        .bind(self.d.created_at)
        .fetch_optional(&self.state.db.pool)
        .await
    }

    async fn create(&mut self, resumed: bool) -> StepResult {
        if self.d.instance_id.is_none() && resumed {
            self.d.instance_id = self.orphan().await?;
        }
        if let Some(id) = &self.d.instance_id {
            return Ok(Outcome::Done(format!("server {id}")));
        }
        let user = crate::users::store::find(&self.state.db.pool, &self.d.created_by)
            .await?
            .filter(|u| !u.suspended)
            .ok_or_else(|| {
                Fail::Failed("the user who asked for the deployment is gone or suspended".into())
            })?;
        let variables: serde_json::Value =
            serde_json::from_str(&self.d.variables).unwrap_or_else(|_| json!({}));
        let body = serde_json::from_value(json!({
            "name": self.d.name,
            "workload_id": self.d.workload_id,
            "node_id": self.d.node_id,
            "variables": variables,
            "start_on_completion": false,
        }))
        .map_err(|e| Fail::Failed(format!("the server's settings: {e}")))?;
        let caller = CurrentUser {
            user,
            credential: Credential::Ticket,
        };
        let created = crate::instances::create::create(
            State(self.state.clone()),
            caller,
            None,
            AppJson(body),
        )
        .await?;
        let id = created.0.id.clone();
        self.d.instance_id = Some(id.clone());
        // Recorded at once: a failure from here on removes it.
        self.save().await?;
        Ok(Outcome::Done(format!("server {id}")))
    }

    fn instance_id(&self) -> Result<String, Fail> {
        self.d
            .instance_id
            .clone()
            .ok_or_else(|| Fail::Failed("the server was not made".into()))
    }

    async fn dns(&mut self) -> StepResult {
        let Some(sub) = self.d.subdomain.clone() else {
            return Ok(Outcome::Skipped("no subdomain was asked for".into()));
        };
        let pool = &self.state.db.pool;
        let zone = crate::dns::store::auto_config(pool, &self.d.org_id)
            .await?
            .filter(|c| c.enabled && c.credential_id.is_some() && c.zone_id.is_some())
            .and_then(|c| c.zone_name);
        let Some(zone) = zone else {
            return Ok(Outcome::Skipped(format!(
                "the organization has no auto-DNS zone, so {sub} was not made: set one up \
                 on the DNS page, then give the server its subdomain"
            )));
        };
        let id = self.instance_id()?;
        let sub = crate::dns::auto::check_subdomain(&self.state, &self.d.org_id, &id, &sub).await?;
        crate::dns::auto::set_subdomain(&self.state, &id, Some(&sub)).await?;
        let records = crate::dns::store::of_instance(pool, &id).await?;
        if let Some(bad) = records.iter().find(|r| r.status == "failed") {
            return Err(Fail::Failed(format!(
                "{} {}: {}",
                bad.record_type,
                bad.name,
                bad.last_error
                    .as_deref()
                    .unwrap_or("refused by the provider")
            )));
        }
        let Some(first) = records
            .iter()
            .find(|r| r.record_type == "A" || r.record_type == "AAAA")
            .or_else(|| records.first())
        else {
            return Ok(Outcome::Skipped(format!(
                "no record to make under {zone}: the server's node has no public address"
            )));
        };
        self.d.dns_record_id = Some(first.id.clone());
        let pending = if first.status == "pending" {
            " (the provider is retried)"
        } else {
            ""
        };
        Ok(Outcome::Done(format!("{}{pending}", first.name)))
    }

    async fn instance(&self) -> Result<crate::instances::Instance, Fail> {
        let id = self.instance_id()?;
        crate::instances::store::find(&self.state.db.pool, &id)
            .await?
            .ok_or_else(|| Fail::Failed("the server was deleted".into()))
    }

    async fn install(&mut self) -> StepResult {
        let deadline = Instant::now() + INSTALL_TIMEOUT;
        loop {
            match self.instance().await?.state {
                InstanceState::Installing => {}
                InstanceState::InstallFailed => {
                    return Err(Fail::Failed(
                        "the install script failed (its log is on the server's page)".into(),
                    ));
                }
                _ => return Ok(Outcome::Done("installed".into())),
            }
            if Instant::now() > deadline {
                return Err(Fail::Failed(
                    "the install did not end within 30 minutes".into(),
                ));
            }
            self.pause().await?;
        }
    }

    async fn start(&mut self) -> StepResult {
        let instance = self.instance().await?;
        if instance.state != InstanceState::Running {
            crate::instances::ops::power::act(&self.state, &instance, PowerAction::Start).await?;
        }
        let started = Instant::now();
        let mut offline_since: Option<Instant> = None;
        loop {
            match self.instance().await?.state {
                InstanceState::Running => return Ok(Outcome::Done("running".into())),
                InstanceState::Offline => {
                    let since = *offline_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > OFFLINE_GRACE {
                        return Err(Fail::Failed(
                            "the server stopped instead of running (see its console)".into(),
                        ));
                    }
                }
                _ => offline_since = None,
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(Fail::Failed(
                    "the server did not run within 5 minutes".into(),
                ));
            }
            self.pause().await?;
        }
    }

    /// Removes what the deployment made: the server (its DNS records with it) and the
    /// workload it made when nothing else uses it. Failures are logged.
    async fn cleanup(&mut self) {
        let state = &self.state;
        let pool = &state.db.pool;
        if let Some(id) = self.d.instance_id.take() {
            match crate::instances::store::find(pool, &id).await {
                Ok(Some(instance)) => {
                    match crate::instances::ops::sync::remove(state, &instance.node_id, &id).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(instance.id = %id,
                            "node offline: the failed deployment's server is left on it"),
                        Err(e) => tracing::warn!(instance.id = %id, error = %e,
                            "removing the failed deployment's server from its node"),
                    }
                    crate::dns::auto::instance_removed(state, &id).await;
                    if let Err(e) = crate::instances::store::delete(pool, &id).await {
                        tracing::warn!(instance.id = %id, error = %e, "deleting the server");
                    }
                    crate::nodes::firewall::instance_removed(state, &instance.node_id, &id).await;
                    crate::readcache::changed();
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(instance.id = %id, error = %e, "finding the server"),
            }
            self.d.dns_record_id = None;
        }
        if self.d.workload_made
            && let Some(id) = self.d.workload_id.clone()
        {
            let unused = crate::instances::store::count_for_workload(pool, &id)
                .await
                .is_ok_and(|n| n == 0);
            if unused && crate::workloads::store::delete(pool, &id).await.is_ok() {
                self.d.workload_id = None;
                self.d.workload_made = false;
            }
        }
    }
}

/// Takes over, on every replica, the deployments whose lease lapsed (their replica
/// died), every `poll`, until `stop`.
pub async fn run_until_stopped(state: AppState, poll: Duration, stop: watch::Receiver<bool>) {
    crate::jobs::lease::resume_lapsed(
        state,
        poll,
        stop,
        crate::jobs::lease::Leased {
            what: "deployment",
            lease_ms: LEASE_MS,
        },
        |pool, now| async move { store::lapsed(&pool, now, 16).await },
        |pool, id, owner, now, until| async move {
            store::take_over(&pool, &id, &owner, now, until).await
        },
        run,
    )
    .await;
}
