//! `shardlyn up`: the panel and a local agent in one process, for a single machine or a
//! first look. On first start it creates the first admin (password printed once and kept
//! in `<data_dir>/initial-admin.txt`, mode 0600) and registers the local agent as a node;
//! later starts reuse both.

use std::path::Path;

use anyhow::Context;
use shardlyn_agent::config::AgentConfig;

use shardlyn_panel::auth::crypto::random_hex;
use shardlyn_panel::config::Config;
use shardlyn_panel::state::AppState;

const ADMIN_EMAIL: &str = "admin@shardlyn.local";

/// Creates the first admin if there is none; returns the new password when it did.
async fn ensure_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if shardlyn_panel::users::store::count(&state.db.pool).await? > 0 {
        return Ok(None);
    }
    let password = random_hex(12);
    shardlyn_panel::auth::create_first_admin(state, ADMIN_EMAIL, &password, Some("Admin"))
        .await
        .map_err(|e| anyhow::anyhow!("creating the first admin: {e}"))?;
    shardlyn_panel::secrets::write_private(
        &state.config.data_dir.join("initial-admin.txt"),
        format!("email: {ADMIN_EMAIL}\npassword: {password}\n").as_bytes(),
    )?;
    Ok(Some(password))
}

/// The local agent's configuration: the saved one if its node still exists, else a new
/// registration against this panel.
async fn local_agent(state: &AppState, dir: &Path) -> anyhow::Result<AgentConfig> {
    if let Ok(mut saved) = AgentConfig::load(dir)
        && shardlyn_panel::nodes::store::exists(&state.db.pool, &saved.node_id).await?
    {
        // The local agent follows its panel: the address (port 0 picks a new one) and
        // the CA may differ from the last start.
        saved.panel_url = state.base_url();
        saved.ca_pem = state.ca.as_ref().map(|ca| ca.pem.clone());
        saved.save(dir)?;
        return Ok(saved);
    }
    let admin: String =
        sqlx::query_scalar("SELECT id FROM users WHERE is_admin = 1 ORDER BY created_at LIMIT 1")
            .fetch_one(&state.db.pool)
            .await
            .context("finding an admin to own the local node")?;
    let org = shardlyn_panel::orgs::scope::personal_org(state, &admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (token, _) = shardlyn_panel::nodes::register::mint(state, &org, "local", &admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let fingerprint = state.ca.as_ref().map(|ca| ca.sha256.clone());
    shardlyn_agent::register::register(&state.base_url(), &token, fingerprint.as_deref(), dir).await
}

async fn docker_status() -> String {
    match tokio::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .await
    {
        Ok(out) if out.status.success() => {
            format!(
                "Docker {} is running",
                String::from_utf8_lossy(&out.stdout).trim()
            )
        }
        _ => "Docker is not running: start it (scripts/up does) to run game servers".into(),
    }
}

/// Runs the panel and a local agent until SIGINT/SIGTERM.
///
/// # Errors
/// The panel cannot start or the local agent cannot register.
pub async fn up(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mailer = shardlyn_panel::mailer::from_config(&config.smtp)?;
    let running = shardlyn_panel::server::launch(config, mailer).await?;
    let state = running.state.clone();
    let url = state.base_url();
    let password = ensure_admin(&state).await?;
    let agent_dir = state.config.data_dir.join("agent");
    let agent = local_agent(&state, &agent_dir).await?;
    let (stop_agent, stopped) = tokio::sync::oneshot::channel::<()>();
    let node_id = agent.node_id.clone();
    // The local agent may reach what the panel's `[outbound] allow` lets the panel reach.
    let allow = state.config.outbound.allow_list().to_vec();
    let agent_task = tokio::spawn(async move {
        shardlyn_agent::tunnel::run_allowing(agent, agent_dir, &allow, async {
            let _ = stopped.await;
        })
        .await;
    });
    println!("Shardlyn is up at {url}");
    match password {
        Some(p) => println!(
            "First admin: {ADMIN_EMAIL} / {p} (also in {})",
            state.config.data_dir.join("initial-admin.txt").display()
        ),
        None => println!("Log in with your admin account."),
    }
    println!("Local node: {node_id}");
    println!("{}", docker_status().await);
    println!("API reference: {url}/v1/openapi.json");
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_agent.send(());
    let _ = agent_task.await;
    running.stop().await
}
