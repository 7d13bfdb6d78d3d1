//! Runs Terraform for a provision request: `plan` (init, plan to a file, show it),
//! `apply` (exactly the stored plan file), `destroy`, and `resize` (plan and apply a new
//! instance type). Each run works in its own fresh directory under the work dir, with a
//! clean environment (the provider's token and the state backend's run credential
//! only, never as variables: plan files keep variables), streams Terraform's `-json`
//! lines into the run's log, and renews its lease while Terraform works. A run whose
//! panel died is failed by [`reap_until_stopped`] once its lease lapses; its state lock
//! lapses with it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use super::store::{self, Request, Run};
use super::{Kind, modules};
use crate::auth::crypto::{random_hex, sha256_hex};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Longest log line kept, in bytes.
const MAX_LINE: usize = 16 * 1024;
/// Most lines one run logs.
const MAX_LINES: i64 = 20_000;

/// Starts a run of `kind` for `request` in the background; 409 when one is running.
/// `instance_type`: the new type of a resize.
///
/// # Errors
/// 409 while another run of the request is going; database failures.
pub async fn start(
    state: &AppState,
    request: &Request,
    kind: Kind,
    instance_type: Option<String>,
) -> AppResult<Run> {
    let now = state.clock.now_ms();
    let password = random_hex(32);
    let run = Run {
        id: crate::db::new_id(),
        request_id: request.id.clone(),
        kind: kind.as_str().to_owned(),
        status: "running".into(),
        password_hash: sha256_hex(&password),
        lease_until: now + lease_ms(state),
        started_at: now,
        finished_at: None,
        message: None,
    };
    if !store::start_run(&state.db.pool, &run).await? {
        return Err(AppError::coded(
            axum::http::StatusCode::CONFLICT,
            "RUN_IN_PROGRESS",
            "a Terraform run of this request is already going; wait for it to end",
        ));
    }
    let (from, to): (&[&str], &str) = match kind {
        Kind::Plan => (&["pending", "planned", "failed"], "planning"),
        Kind::Apply => (&["planned"], "applying"),
        Kind::Destroy => (
            &["planned", "applied", "provisioned", "failed", "pending"],
            "destroying",
        ),
        Kind::Resize => (&["applied", "provisioned"], "resizing"),
    };
    if !store::transition(&state.db.pool, &request.id, from, to, None, now).await? {
        store::finish_run(
            &state.db.pool,
            &run.id,
            "failed",
            Some("the request changed"),
            now,
        )
        .await?;
        return Err(AppError::coded(
            axum::http::StatusCode::CONFLICT,
            "WRONG_STATUS",
            format!(
                "a request that is {} cannot be {}",
                request.status,
                kind.verb()
            ),
        ));
    }
    let job = Job {
        state: state.clone(),
        request: request.clone(),
        run: run.clone(),
        password,
        kind,
        instance_type,
        seq: 0,
        errors: Vec::new(),
    };
    tokio::spawn(job.run());
    Ok(run)
}

fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(state.config.provision.lease_secs.max(5)).unwrap_or(60) * 1000
}

/// Where runs get their working directories.
#[must_use]
pub fn work_dir(state: &AppState) -> PathBuf {
    state
        .config
        .provision
        .work_dir
        .clone()
        .unwrap_or_else(|| state.config.data_dir.join("provision"))
}

/// One run in progress.
struct Job {
    state: AppState,
    request: Request,
    run: Run,
    password: String,
    kind: Kind,
    instance_type: Option<String>,
    /// The last log line's number.
    seq: i64,
    /// Terraform's error diagnostics, as "summary: detail".
    errors: Vec<String>,
}

/// What a finished step left.
enum Outcome {
    Planned {
        vars: Map<String, Value>,
        plan: Vec<u8>,
        summary: Value,
        instance_type: String,
    },
    Applied(Map<String, Value>),
    Destroyed,
    Resized(Map<String, Value>, String),
}

impl Job {
    async fn run(mut self) {
        let dir = work_dir(&self.state)
            .join(&self.request.id)
            .join(&self.run.id);
        let renew = tokio::spawn(keep_lease(self.state.clone(), self.run.id.clone()));
        let timeout = Duration::from_secs(self.state.config.provision.run_timeout_secs.max(10));
        let result = match tokio::time::timeout(timeout, self.steps(&dir)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "Terraform did not finish within {} s",
                timeout.as_secs()
            )),
        };
        renew.abort();
        let _ = tokio::fs::remove_dir_all(&dir).await;
        let now = self.state.clock.now_ms();
        let pool = &self.state.db.pool;
        match result {
            Ok(outcome) => {
                // The run ends before the request moves on, so whoever sees the request
                // planned (or applied) can start the next run at once.
                let _ = store::finish_run(pool, &self.run.id, "succeeded", None, now).await;
                if let Err(e) = self.record(outcome, now).await {
                    let message = format!("recording the result failed: {e}");
                    let _ = sqlx::query(
                        "UPDATE provision_runs SET status = 'failed', message = $1 WHERE id = $2",
                    )
                    .bind(&message)
                    .bind(&self.run.id)
                    .execute(&self.state.db.pool)
                    .await;
                    self.fail(&message, now).await;
                    return;
                }
                tracing::info!(provision.id = %self.request.id, run.id = %self.run.id, kind = self.kind.as_str(), "provisioning run succeeded");
            }
            Err(message) => self.fail(&message, now).await,
        }
    }

    /// Marks the run and its request failed with `message` (the log keeps the rest).
    async fn fail(&mut self, message: &str, now: i64) {
        self.note(&format!("failed: {message}")).await;
        let pool = &self.state.db.pool;
        let _ = store::finish_run(pool, &self.run.id, "failed", Some(message), now).await;
        // A resize that failed leaves the node as it was: still provisioned.
        let status = if self.kind == Kind::Resize {
            if self.request.node_id.is_some() {
                "provisioned"
            } else {
                "applied"
            }
        } else {
            "failed"
        };
        let _ = store::transition(
            pool,
            &self.request.id,
            &[self.kind.running_status()],
            status,
            Some(message),
            now,
        )
        .await;
        tracing::warn!(provision.id = %self.request.id, run.id = %self.run.id, kind = self.kind.as_str(), error = %message, "provisioning run failed");
    }

    async fn record(&self, outcome: Outcome, now: i64) -> AppResult<()> {
        let pool = &self.state.db.pool;
        let id = &self.request.id;
        match outcome {
            Outcome::Planned {
                vars,
                plan,
                summary,
                instance_type,
            } => {
                let sealed_vars = crate::sealed::seal_json(&self.state.master_key, &vars);
                let sealed_plan = crate::sealed::seal(
                    &self.state.master_key,
                    base64::engine::general_purpose::STANDARD
                        .encode(&plan)
                        .as_bytes(),
                );
                let price = super::price_of(
                    &self.state,
                    &self.request.org_id,
                    &self.request.provider,
                    &self.request.region,
                    &instance_type,
                )
                .await;
                store::set_plan(
                    pool,
                    id,
                    &sealed_vars,
                    &sealed_plan,
                    &summary.to_string(),
                    price.as_ref().map(|(h, m)| (h.as_str(), m.as_str())),
                    &instance_type,
                    now,
                )
                .await?;
            }
            Outcome::Applied(outputs) => {
                let out = |k: &str| {
                    outputs
                        .get(k)
                        .and_then(|o| o.get("value"))
                        .and_then(|v| match v {
                            Value::String(s) => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .filter(|s| !s.is_empty())
                };
                // A node that joined before the apply ended gets its addresses now,
                // before the request reads `provisioned` (and one that joins meanwhile,
                // right after).
                let (ipv4, ipv6) = (out("ipv4"), out("ipv6"));
                let mut filled = false;
                if let Some(node_id) = node_of(pool, id).await? {
                    super::fill_addresses(&self.state, &node_id, ipv4.as_deref(), ipv6.as_deref())
                        .await;
                    filled = true;
                }
                store::set_applied(
                    pool,
                    id,
                    out("server_id").as_deref(),
                    ipv4.as_deref(),
                    ipv6.as_deref(),
                    now,
                )
                .await?;
                if !filled && let Some(node_id) = node_of(pool, id).await? {
                    super::fill_addresses(&self.state, &node_id, ipv4.as_deref(), ipv6.as_deref())
                        .await;
                }
                // The node has an hour to boot and use its token.
                sqlx::query(
                    "UPDATE node_registration_tokens SET expires_at = $1 \
                     WHERE provision_request_id = $2 AND used_at IS NULL",
                )
                .bind(now + 3_600_000)
                .bind(id)
                .execute(pool)
                .await?;
                // The cloud server exists: its hours count from now (cloud costs).
                crate::billing::costs::on_applied(&self.state, id, now).await;
            }
            Outcome::Destroyed => {
                // The game-port firewall is the panel's, not Terraform's: it goes now.
                let kept = crate::cloud::release_firewall(&self.state, id)
                    .await
                    .err()
                    .map(|e| format!("destroyed, but the panel's firewall could not be deleted at the provider: {e}"));
                // Its hours stop counting, before the node (and the request's link to it)
                // goes; the ledger keeps the entry.
                crate::billing::costs::on_destroyed(&self.state, id, now).await;
                super::forget_node(&self.state, &self.request).await?;
                store::transition(pool, id, &["destroying"], "destroyed", kept.as_deref(), now)
                    .await?;
            }
            Outcome::Resized(outputs, instance_type) => {
                let _ = outputs;
                sqlx::query(
                    "UPDATE provision_requests SET instance_type = $1, status = CASE WHEN node_id \
                     IS NULL THEN 'applied' ELSE 'provisioned' END, status_message = NULL, \
                     updated_at = $2 WHERE id = $3",
                )
                .bind(&instance_type)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
                // The old type's hours end and the new type's begin (cloud costs).
                crate::billing::costs::on_resized(&self.state, id, now).await;
            }
        }
        Ok(())
    }

    /// The run's steps in `dir`.
    async fn steps(&mut self, dir: &Path) -> Result<Outcome, String> {
        let files = modules::module(&self.request.provider)
            .ok_or_else(|| format!("no Terraform module for {}", self.request.provider))?;
        prepare(&self.state, &self.request, dir, files)
            .await
            .map_err(|e| format!("preparing the working directory failed: {e}"))?;
        let env = self.env().await?;
        self.terraform(dir, &env, &["init", "-input=false", "-no-color"], false)
            .await?;
        match self.kind {
            Kind::Plan => {
                let panel = self.state.base_url();
                if ["://127.", "://localhost", "://[::1]"]
                    .iter()
                    .any(|l| panel.contains(l))
                {
                    self.note(&format!(
                        "warning: the new server will reach this panel at {panel}, a loopback \
                         address: set public_url so it can join"
                    ))
                    .await;
                }
                let vars = self.plan_vars(&self.request.instance_type).await?;
                write_vars(dir, &vars).await?;
                self.plan(dir, &env).await?;
                let summary = self.show(dir, &env).await?;
                let plan = tokio::fs::read(dir.join("plan.tfplan"))
                    .await
                    .map_err(|e| format!("reading the plan file failed: {e}"))?;
                Ok(Outcome::Planned {
                    vars,
                    plan,
                    summary,
                    instance_type: self.request.instance_type.clone(),
                })
            }
            Kind::Apply => {
                let plan = self.stored_plan()?;
                tokio::fs::write(dir.join("plan.tfplan"), plan)
                    .await
                    .map_err(|e| format!("writing the plan file failed: {e}"))?;
                self.terraform(
                    dir,
                    &env,
                    &[
                        "apply",
                        "-input=false",
                        "-no-color",
                        "-json",
                        "-lock-timeout=10s",
                        "plan.tfplan",
                    ],
                    true,
                )
                .await?;
                Ok(Outcome::Applied(self.outputs(dir, &env).await?))
            }
            Kind::Destroy => {
                let vars = self.stored_vars()?;
                write_vars(dir, &vars).await?;
                self.terraform(
                    dir,
                    &env,
                    &[
                        "destroy",
                        "-input=false",
                        "-no-color",
                        "-json",
                        "-auto-approve",
                        "-lock-timeout=10s",
                    ],
                    true,
                )
                .await?;
                Ok(Outcome::Destroyed)
            }
            Kind::Resize => {
                let instance_type = self
                    .instance_type
                    .clone()
                    .unwrap_or_else(|| self.request.instance_type.clone());
                let mut vars = self.stored_vars()?;
                vars.insert("instance_type".into(), Value::String(instance_type.clone()));
                write_vars(dir, &vars).await?;
                self.plan(dir, &env).await?;
                let summary = self.show(dir, &env).await?;
                self.note(&format!("resize plan: {summary}")).await;
                self.terraform(
                    dir,
                    &env,
                    &[
                        "apply",
                        "-input=false",
                        "-no-color",
                        "-json",
                        "-lock-timeout=10s",
                        "plan.tfplan",
                    ],
                    true,
                )
                .await?;
                // The stored variables follow the new type, for later runs.
                let sealed = crate::sealed::seal_json(&self.state.master_key, &vars);
                sqlx::query("UPDATE provision_requests SET sealed_vars = $1 WHERE id = $2")
                    .bind(&sealed)
                    .bind(&self.request.id)
                    .execute(&self.state.db.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Outcome::Resized(
                    self.outputs(dir, &env).await?,
                    instance_type,
                ))
            }
        }
    }

    async fn plan(&mut self, dir: &Path, env: &[(String, String)]) -> Result<(), String> {
        self.terraform(
            dir,
            env,
            &[
                "plan",
                "-input=false",
                "-no-color",
                "-json",
                "-lock-timeout=10s",
                "-out=plan.tfplan",
            ],
            true,
        )
        .await
        .map(drop)
    }

    /// `terraform show -json plan.tfplan`, summarised.
    async fn show(&mut self, dir: &Path, env: &[(String, String)]) -> Result<Value, String> {
        let out = self
            .capture(dir, env, &["show", "-json", "-no-color", "plan.tfplan"])
            .await?;
        let plan: Value = serde_json::from_slice(&out)
            .map_err(|e| format!("terraform show -json did not answer JSON: {e}"))?;
        Ok(summarise(&plan))
    }

    async fn outputs(
        &mut self,
        dir: &Path,
        env: &[(String, String)],
    ) -> Result<Map<String, Value>, String> {
        let out = self
            .capture(dir, env, &["output", "-json", "-no-color"])
            .await?;
        serde_json::from_slice(&out).map_err(|e| format!("terraform output -json: {e}"))
    }

    fn stored_plan(&self) -> Result<Vec<u8>, String> {
        let sealed = self
            .request
            .sealed_plan
            .as_deref()
            .ok_or("the request has no plan to apply; plan it again")?;
        let b64 = crate::sealed::open(&self.state.master_key, sealed).map_err(|e| e.to_string())?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| e.to_string())
    }

    fn stored_vars(&self) -> Result<Map<String, Value>, String> {
        let sealed = self
            .request
            .sealed_vars
            .as_deref()
            .ok_or("the request was never planned")?;
        crate::sealed::open_json(&self.state.master_key, sealed).map_err(|e| e.to_string())
    }

    /// The variables of a new plan: the user data registers the node with a token bound
    /// to this request (the previous plan's token is revoked).
    async fn plan_vars(&self, instance_type: &str) -> Result<Map<String, Value>, String> {
        let r = &self.request;
        let token = super::mint_token(&self.state, r)
            .await
            .map_err(|e| format!("minting the registration token failed: {e}"))?;
        let panel = self.state.base_url();
        let pin = self.state.ca.as_ref().map(|ca| ca.sha256.clone());
        let user_data =
            crate::bootstrap::cloudinit::user_data(&panel, &token, pin.as_deref(), &r.name);
        let vars = json!({
            "name": r.name,
            "region": r.region,
            "instance_type": instance_type,
            "image": r.image,
            "ssh_keys": [],
            "user_data": user_data,
            "labels": {
                "managed-by": "shardlyn",
                "shardlyn-request": r.id,
            },
            "firewall_rules": [
                {"protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0", "::/0"]},
            ],
        });
        match vars {
            Value::Object(m) => Ok(m),
            _ => Err("variables".into()),
        }
    }

    /// The environment of Terraform: nothing of the panel's own, the provider's
    /// credential, the state backend's run credential.
    async fn env(&self) -> Result<Vec<(String, String)>, String> {
        let mut env: Vec<(String, String)> = vec![
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_HTTP_USERNAME".into(), self.run.id.clone()),
            ("TF_HTTP_PASSWORD".into(), self.password.clone()),
            ("TF_HTTP_RETRY_MAX".into(), "2".into()),
        ];
        for key in ["PATH", "HOME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"] {
            if let Ok(v) = std::env::var(key) {
                env.push((key.into(), v));
            }
        }
        let cfg = &self.state.config.provision;
        if let Some(cli) = &cfg.terraform_cli_config {
            env.push(("TF_CLI_CONFIG_FILE".into(), cli.display().to_string()));
        }
        let cache = work_dir(&self.state).join("plugin-cache");
        if tokio::fs::create_dir_all(&cache).await.is_ok() && cfg.terraform_cli_config.is_none() {
            env.push(("TF_PLUGIN_CACHE_DIR".into(), cache.display().to_string()));
        }
        env.extend(super::provider_env(&self.state, &self.request).await?);
        Ok(env)
    }

    /// Runs `terraform args` in `dir`, its output lines into the log; with `json`, its
    /// error diagnostics are remembered for the run's message.
    async fn terraform(
        &mut self,
        dir: &Path,
        env: &[(String, String)],
        args: &[&str],
        json: bool,
    ) -> Result<(), String> {
        self.note(&format!("terraform {}", args.join(" "))).await;
        let mut child = self
            .command(dir, env, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "terraform could not start ({}): {e}",
                    self.state.config.provision.terraform_bin.display()
                )
            })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
        let forward = |pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                       tx: tokio::sync::mpsc::Sender<String>| async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        };
        let a = tokio::spawn(forward(Box::new(stdout), tx.clone()));
        let b = tokio::spawn(forward(Box::new(stderr), tx));
        let mut stderr_tail: Vec<String> = Vec::new();
        while let Some(line) = rx.recv().await {
            if json {
                if let Some(e) = diagnostic_error(&line) {
                    self.errors.push(e);
                } else if !line.trim_start().starts_with('{') && !line.trim().is_empty() {
                    stderr_tail.push(line.clone());
                }
            } else if !line.trim().is_empty() {
                stderr_tail.push(line.clone());
            }
            if stderr_tail.len() > 20 {
                stderr_tail.remove(0);
            }
            self.log(line).await;
        }
        let _ = a.await;
        let _ = b.await;
        let status = child
            .wait()
            .await
            .map_err(|e| format!("waiting for terraform failed: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let why = if self.errors.is_empty() {
            let tail: Vec<&String> = stderr_tail.iter().rev().take(5).collect();
            tail.into_iter()
                .rev()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            self.errors.join("; ")
        };
        Err(format!(
            "terraform {} failed: {}",
            args.first().copied().unwrap_or_default(),
            if why.is_empty() {
                format!("exit status {status}")
            } else {
                why
            }
        ))
    }

    /// Runs `terraform args` and answers its standard output (logged only on failure).
    async fn capture(
        &mut self,
        dir: &Path,
        env: &[(String, String)],
        args: &[&str],
    ) -> Result<Vec<u8>, String> {
        self.note(&format!("terraform {}", args.join(" "))).await;
        let out = self
            .command(dir, env, args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("terraform could not start: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            for line in err.lines() {
                self.log(line.to_owned()).await;
            }
            return Err(format!(
                "terraform {} failed: {}",
                args.first().copied().unwrap_or_default(),
                err.trim()
            ));
        }
        Ok(out.stdout)
    }

    fn command(&self, dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.state.config.provision.terraform_bin);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// A line of the panel's own in the log.
    async fn note(&mut self, message: &str) {
        let line = json!({"@level": "info", "@message": message, "type": "shardlyn"}).to_string();
        self.log(line).await;
    }

    async fn log(&mut self, mut line: String) {
        if self.seq >= MAX_LINES {
            return;
        }
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        self.seq += 1;
        let now = crate::db::now_ms();
        if let Err(e) =
            store::append_log(&self.state.db.pool, &self.run.id, self.seq, &[(now, line)]).await
        {
            tracing::warn!(run.id = %self.run.id, error = %e, "a provisioning log line was lost");
        }
    }
}

/// Writes the module, the root module and nothing else into a fresh `dir` (0700).
async fn prepare(
    state: &AppState,
    request: &Request,
    dir: &Path,
    files: modules::Files,
) -> std::io::Result<()> {
    let module = dir.join("module");
    tokio::fs::create_dir_all(&module).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await?;
    }
    for (name, text) in files {
        tokio::fs::write(module.join(name), text).await?;
    }
    let state_url = format!("{}/v1/provision/{}/state", state.base_url(), request.id);
    let ca = if state.base_url().starts_with("https://") {
        state.ca.as_ref().map(|ca| ca.pem.as_str())
    } else {
        None
    };
    tokio::fs::write(dir.join("main.tf"), modules::root(&state_url, ca)).await
}

async fn write_vars(dir: &Path, vars: &Map<String, Value>) -> Result<(), String> {
    tokio::fs::write(
        dir.join("terraform.tfvars.json"),
        Value::Object(vars.clone()).to_string(),
    )
    .await
    .map_err(|e| format!("writing the variables failed: {e}"))
}

/// "summary: detail" of an error diagnostic line of Terraform's `-json` output.
fn diagnostic_error(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("type")?.as_str()? != "diagnostic" {
        return None;
    }
    let d = v.get("diagnostic")?;
    if d.get("severity")?.as_str()? != "error" {
        return None;
    }
    let summary = d.get("summary").and_then(Value::as_str).unwrap_or_default();
    let detail = d.get("detail").and_then(Value::as_str).unwrap_or_default();
    Some(if detail.is_empty() {
        summary.to_owned()
    } else {
        format!("{summary}: {detail}")
    })
}

/// What a plan does, from `terraform show -json`: each resource change's address,
/// type and actions, and counts per action.
#[must_use]
pub fn summarise(plan: &Value) -> Value {
    let mut counts: Map<String, Value> = Map::new();
    let mut changes = Vec::new();
    for rc in plan
        .get("resource_changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let actions: Vec<String> = rc
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        let action = match actions.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["no-op"] => "no-op",
            ["create"] => "create",
            ["update"] => "update",
            ["delete"] => "delete",
            ["read"] => "read",
            [_, _] => "replace",
            _ => "other",
        };
        if action == "no-op" || action == "read" {
            continue;
        }
        let n = counts.get(action).and_then(Value::as_i64).unwrap_or(0) + 1;
        counts.insert(action.into(), n.into());
        changes.push(json!({
            "address": rc.get("address"),
            "type": rc.get("type"),
            "action": action,
        }));
    }
    json!({
        "terraform_version": plan.get("terraform_version"),
        "counts": counts,
        "changes": changes,
    })
}

/// Renews the run's lease (and its lock's) every third of the lease, while the run
/// lives.
async fn keep_lease(state: AppState, run_id: String) {
    let lease = lease_ms(&state);
    let every = Duration::from_millis(u64::try_from(lease / 3).unwrap_or(20_000));
    loop {
        tokio::time::sleep(every).await;
        let until = state.clock.now_ms() + lease;
        match store::renew(&state.db.pool, &run_id, until).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(run.id = %run_id, error = %e, "renewing a run's lease failed"),
        }
    }
}

/// The `provision_reaper` job: fails the runs whose lease lapsed (their panel died), on
/// whichever replica looks first; their request becomes `failed` with the log it had,
/// and can be planned again or destroyed. Without Redis this is the only replica, so at
/// its start every run still marked running is one its previous process left.
pub async fn reap_until_stopped(
    state: AppState,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if state.redis.is_none() {
        reap(&state, i64::MAX).await;
    }
    loop {
        reap(&state, state.clock.now_ms()).await;
        tokio::select! {
            () = tokio::time::sleep(poll.max(Duration::from_secs(1))) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Fails the runs whose lease ended before `before` (`i64::MAX`: every running one not
/// started by this process).
pub async fn reap(state: &AppState, before: i64) {
    let pool = &state.db.pool;
    let runs = if before == i64::MAX {
        sqlx::query_as::<_, Run>(
            "SELECT id, request_id, kind, status, password_hash, lease_until, started_at, \
             finished_at, message FROM provision_runs WHERE status = 'running' AND started_at < $1",
        )
        .bind(state.started_at_ms())
        .fetch_all(pool)
        .await
    } else {
        store::lapsed(pool, before).await
    };
    let Ok(runs) = runs else { return };
    let now = state.clock.now_ms();
    for run in runs {
        let message = "the panel running this Terraform run stopped before it finished; \
                       its log is kept, and the state lock was freed: plan again, or destroy";
        if !matches!(
            store::finish_run(pool, &run.id, "failed", Some(message), now).await,
            Ok(true)
        ) {
            continue;
        }
        let _ = sqlx::query("DELETE FROM provision_locks WHERE run_id = $1")
            .bind(&run.id)
            .execute(pool)
            .await;
        let kind = Kind::parse(&run.kind);
        let from = kind.map_or("", Kind::running_status);
        // A cut resize leaves the server as Terraform's state says: still the node.
        let to = if kind == Some(Kind::Resize) {
            "provisioned"
        } else {
            "failed"
        };
        let _ = store::transition(pool, &run.request_id, &[from], to, Some(message), now).await;
        let line = json!({"@level": "error", "@message": message, "type": "shardlyn"}).to_string();
        let next: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM provision_logs WHERE run_id = $1",
        )
        .bind(&run.id)
        .fetch_one(pool)
        .await
        .unwrap_or(1);
        let _ = store::append_log(pool, &run.id, next, &[(now, line)]).await;
        tracing::warn!(provision.id = %run.request_id, run.id = %run.id, "provisioning run cut by a panel stop: failed");
    }
}

/// The node that registered with request `id`'s token, if one did.
async fn node_of(pool: &sqlx::AnyPool, id: &str) -> sqlx::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT node_id FROM provision_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}
