//! `shardlyn-agent`: the node agent binary. Subcommands arrive with the nodes issue.

use clap::Parser;

/// Shardlyn node agent.
#[derive(Parser)]
#[command(name = "shardlyn-agent", version = shardlyn_agent::VERSION, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "shardlyn-agent {} (protocol {}): registration and the tunnel are not built yet",
        shardlyn_agent::VERSION,
        shardlyn_agent::protocol_version()
    );
}
