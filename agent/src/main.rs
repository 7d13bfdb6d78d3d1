//! `shardlyn-agent`: the node agent binary. `register` once, then `run`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Shardlyn node agent.
#[derive(Parser)]
#[command(name = "shardlyn-agent", version = shardlyn_agent::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exchange a registration token for this node's identity.
    Register {
        /// Panel URL, e.g. https://panel.example.com:8443
        #[arg(long)]
        panel: String,
        /// Registration token from `POST /v1/nodes/register-token` (single use, 1 hour).
        #[arg(
            long,
            env = "SHARDLYN_AGENT_REGISTRATION_TOKEN",
            hide_env_values = true
        )]
        token: String,
        /// SHA-256 fingerprint of the panel's self-signed CA (`GET /v1/ca`) to pin.
        #[arg(long)]
        ca_fingerprint: Option<String>,
        /// Where the agent keeps its configuration and data.
        #[arg(long, default_value = "/var/lib/shardlyn-agent")]
        data_dir: PathBuf,
    },
    /// Dial the panel and serve the agent API until stopped.
    Run {
        #[arg(long, default_value = "/var/lib/shardlyn-agent")]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    // Installed before any work, so SIGTERM during start-up still stops cleanly.
    let shutdown = shardlyn_agent::shutdown_signal();
    let result = match cli.command {
        Command::Register {
            panel,
            token,
            ca_fingerprint,
            data_dir,
        } => {
            shardlyn_agent::register::register(&panel, &token, ca_fingerprint.as_deref(), &data_dir)
                .await
                .map(|config| {
                    println!(
                        "registered as node {} with {}",
                        config.node_id, config.panel_url
                    );
                })
        }
        Command::Run { data_dir } => match shardlyn_agent::config::AgentConfig::load(&data_dir) {
            Ok(config) => {
                shardlyn_agent::tunnel::run(config, data_dir, shutdown).await;
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
