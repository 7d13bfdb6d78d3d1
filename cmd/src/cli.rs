//! The `shardlyn` command line: `serve`, `up`, `migrate`, `backup`, `restore`, `admin create`,
//! `config example`, `api openapi`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use shardlyn_panel::config::{CliOverrides, Config};
use shardlyn_panel::mailer::LogMailer;

/// Shardlyn: game-server and infrastructure management panel.
#[derive(Parser)]
#[command(name = "shardlyn", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the panel (migrates the database first).
    Serve(Common),
    /// Run the panel and a local agent: first admin and local node are set up on first start.
    Up(Common),
    /// Apply database migrations and exit (`--check`: report what an upgrade would do).
    Migrate(MigrateArgs),
    /// Back up the panel now: database, keys and TLS CA, encrypted to
    /// `[system_backup]`'s passphrase or public keys.
    Backup(BackupArgs),
    /// Bring a panel back from a backup into an empty data directory and database.
    Restore(RestoreArgs),
    /// Manage platform admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The API's contract.
    Api {
        #[command(subcommand)]
        command: ApiCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a platform admin (the first one bootstraps the platform).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
        #[arg(long, env = "SHARDLYN_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented TOML file with every setting at its default.
    Example,
}

#[derive(Subcommand)]
enum ApiCommand {
    /// Print the OpenAPI 3.1 document the panel serves at `/v1/openapi.json`.
    Openapi,
}

#[derive(Args, Clone)]
struct MigrateArgs {
    #[command(flatten)]
    common: Common,
    /// Change nothing: list applied and pending migrations, say whether the pending
    /// ones are safe while old replicas serve (expand) or need them gone (contract).
    /// Exit code 0 up to date, 10 pending (all expand), 11 pending (contract among
    /// them), 12 this binary must not run on the database (a newer release's contract
    /// migration, edited or failed migrations), 13 a newer release only expanded it (this
    /// binary serves it and migrates nothing).
    #[arg(long)]
    check: bool,
}

#[derive(Args, Clone)]
struct BackupArgs {
    #[command(flatten)]
    common: Common,
    /// Write the archive here; without it, to `[system_backup]`'s directory or bucket,
    /// keeping the newest `keep`.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct RestoreArgs {
    #[command(flatten)]
    common: Common,
    /// The archive (`shardlyn-panel-*.tar.gz.age`).
    file: PathBuf,
    /// An age identity file, for archives encrypted to public keys.
    #[arg(long, conflicts_with = "passphrase_file")]
    identity: Option<PathBuf>,
    /// A file holding the passphrase (else `SHARDLYN_BACKUP_PASSPHRASE`, else
    /// `system_backup.passphrase` from the configuration).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Common {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(
            self.config.as_deref(),
            &CliOverrides {
                listen: self.listen,
                data_dir: self.data_dir.clone(),
            },
        )
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries what the command has to say (URLs, credentials).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // The filter is reloadable: `PUT /v1/admin/settings/logs` changes it at run time.
    macro_rules! init_reloadable {
        ($builder:expr) => {{
            let builder = $builder.with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                shardlyn_panel::admin::logs::install_reloader(move |level| {
                    let filter =
                        tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
                    handle.reload(filter).map_err(|e| e.to_string())
                });
            }
        }};
    }
    if config.log_json {
        init_reloadable!(builder.json());
    } else {
        init_reloadable!(builder);
    }
}

/// Runs the command line.
///
/// # Errors
/// Whatever the chosen command fails with.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            print!("{}", shardlyn_panel::config::example_toml());
            Ok(())
        }
        Command::Api {
            command: ApiCommand::Openapi,
        } => {
            print!("{}", shardlyn_panel::app::openapi_json());
            Ok(())
        }
        Command::Migrate(MigrateArgs { common, check }) => {
            let config = common.load()?;
            init_tracing(&config);
            if check {
                return migrate_check(&config).await;
            }
            let db = shardlyn_panel::db::Db::connect(&config.effective_database_url(), 1).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend.name());
            Ok(())
        }
        Command::Backup(BackupArgs { common, out }) => {
            let config = common.load()?;
            init_tracing(&config);
            backup(&config, out.as_deref()).await
        }
        Command::Restore(args) => {
            let config = args.common.load()?;
            init_tracing(&config);
            restore(&config, &args).await
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    common,
                    email,
                    password,
                    name,
                },
        } => {
            let config = common.load()?;
            init_tracing(&config);
            let state =
                shardlyn_panel::server::build_state(config, Arc::new(LogMailer), None).await?;
            let user =
                shardlyn_panel::users::create_admin(&state, &email, &password, name.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created platform admin {} ({})", user.email, user.id);
            Ok(())
        }
        Command::Up(common) => {
            let shutdown = shardlyn_panel::server::shutdown_signal();
            let config = common.load()?;
            init_tracing(&config);
            crate::up::up(config, shutdown).await
        }
        Command::Serve(common) => {
            let shutdown = shardlyn_panel::server::shutdown_signal();
            let config = common.load()?;
            init_tracing(&config);
            let mailer = shardlyn_panel::mailer::from_config(&config.smtp)?;
            let running = shardlyn_panel::server::launch(config, mailer).await?;
            let state = running.state.clone();
            let url = state.base_url();
            println!("Shardlyn panel listening on {url}");
            println!("API reference: {url}/v1/openapi.json");
            if shardlyn_panel::users::store::count(&state.db.pool).await? == 0 {
                println!(
                    "No admin yet. Create the first one with\n  \
                     shardlyn admin create --email you@example.com --password '...'\n\
                     or POST {url}/v1/auth/bootstrap {{\"email\": \"...\", \"password\": \"...\"}}"
                );
            }
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            running.stop().await
        }
    }
}

/// `shardlyn migrate --check`: prints the report and exits with its code. A SQLite file
/// that does not exist yet is not created.
async fn migrate_check(config: &Config) -> anyhow::Result<()> {
    use shardlyn_panel::db::{Backend, Db, sqlite_path};
    let url = config.effective_database_url();
    let backend = Backend::from_url(&url)?;
    let report = match sqlite_path(&url) {
        Some(path) if !path.exists() => Db::report_for_empty(backend),
        _ => {
            let db = Db::connect(&url, 1).await?;
            let report = db.upgrade_report().await?;
            db.pool.close().await;
            report
        }
    };
    print!("{}", report.render());
    match report.exit_code() {
        0 => Ok(()),
        code => std::process::exit(i32::from(code)),
    }
}

/// `shardlyn backup`: one archive now, recorded among the runs.
async fn backup(config: &Config, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use shardlyn_panel::db::{Db, sqlite_path};
    use shardlyn_panel::system_backup::{Trigger, run_once};
    let url = config.effective_database_url();
    if let Some(path) = sqlite_path(&url) {
        anyhow::ensure!(
            path.exists(),
            "no database at {}: is this the panel's configuration (--config, --data-dir)?",
            path.display()
        );
    }
    let db = Db::connect(&url, 2).await?;
    let result = run_once(
        config,
        &db,
        None,
        Trigger::Cli,
        shardlyn_panel::db::now_ms(),
        out,
    )
    .await;
    db.pool.close().await;
    let run = result?;
    println!(
        "backup written: {} ({} bytes)",
        run.location.unwrap_or_default(),
        run.bytes.unwrap_or_default()
    );
    Ok(())
}

/// `shardlyn restore FILE`.
async fn restore(config: &Config, args: &RestoreArgs) -> anyhow::Result<()> {
    use shardlyn_panel::system_backup::archive::{Opener, restore};
    let opener = if let Some(path) = &args.identity {
        Opener::Identities(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
        )
    } else {
        let passphrase = if let Some(path) = &args.passphrase_file {
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        } else if let Ok(p) = std::env::var("SHARDLYN_BACKUP_PASSPHRASE") {
            p
        } else {
            config.system_backup.passphrase.expose().to_string()
        };
        anyhow::ensure!(
            !passphrase.is_empty(),
            "give the key: --identity FILE, --passphrase-file FILE or SHARDLYN_BACKUP_PASSPHRASE"
        );
        Opener::Passphrase(passphrase.into())
    };
    let m = restore(config, &args.file, opener).await?;
    let mut said = format!(
        "restored the panel backed up at {} (Shardlyn {}, {} schema {}) into {}",
        shardlyn_panel::db::rfc3339(m.created_at),
        m.shardlyn_version,
        m.engine,
        m.schema_version,
        config.data_dir.display()
    );
    if m.tls_ca {
        said.push_str("; the TLS CA agents pin is back");
    }
    println!("{said}\nstart it with: shardlyn serve");
    Ok(())
}
