//! The `shardlyn` command line: `serve`, `migrate`, `admin create`, `config example`.

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
    /// Apply database migrations and exit.
    Migrate(Common),
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
        Command::Migrate(common) => {
            let config = common.load()?;
            init_tracing(&config);
            let db = shardlyn_panel::db::Db::connect(&config.effective_database_url(), 1).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend.name());
            Ok(())
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
