//! `shardlyn`: the binary. Parses the command line and hands over to the libraries; it is
//! where the panel and the agent meet (`shardlyn up` runs both in one process), so the
//! panel library does not depend on the agent's.

mod cli;
mod up;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
