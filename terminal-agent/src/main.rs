//! `terminal-agent --config terminal.toml`: the program beside a slot machine, a table or a bar.
//! SIGINT or SIGTERM closes an open session and stops.

use std::path::PathBuf;

use clap::Parser;
use tokio::sync::watch;

/// The club terminal agent.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The terminal's configuration (TOML).
    #[arg(long, env = "AGENT_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = terminal_agent::config::AgentConfig::load(&args.config)?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
    });
    terminal_agent::run::run(config, stop).await
}
