//! `terminal-agent --config terminal.toml`: the program beside a slot machine, a table or a bar.
//! SIGINT or SIGTERM closes an open session and stops.
//!
//! `terminal-agent --config terminal.toml dead-letters` lists the events the floor server would
//! not take; `… requeue ID` puts one back at the end of the outbox (for staff, once the cause is
//! fixed). Both work on the store while the agent runs (SQLite WAL).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

/// The club terminal agent.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The terminal's configuration (TOML).
    #[arg(long, env = "AGENT_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lists the dead letters: events the floor server would not take.
    DeadLetters,
    /// Puts dead letter ID back at the end of the outbox.
    Requeue { id: i64 },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = terminal_agent::config::AgentConfig::load(&args.config)?;
    if let Some(cmd) = args.command {
        return dead_letters(&config, cmd).await;
    }
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

async fn dead_letters(config: &terminal_agent::config::AgentConfig, cmd: Cmd) -> anyhow::Result<()> {
    let outbox = terminal_agent::outbox::Outbox::open(&config.store).await?;
    match cmd {
        Cmd::DeadLetters => {
            let letters = outbox.dead_letters().await?;
            println!("{} dead letter(s)", letters.len());
            for l in letters {
                println!("id {}  seq {}  at {}  kind {}  error {}: {}  set aside at {}", l.id, l.seq, l.at, l.kind, l.code, l.message, l.dead_at);
            }
        }
        Cmd::Requeue { id } => match outbox.requeue(id).await? {
            Some(seq) => println!("dead letter {id} is back in the outbox as event {seq}"),
            None => anyhow::bail!("no dead letter {id}"),
        },
    }
    outbox.close().await;
    Ok(())
}
