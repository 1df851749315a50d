//! The `floor-server` command line: `serve` (the default), `migrate`, `demo`, and the operator's
//! commands for terminals and staff accounts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app;
use crate::audit::Actor;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::staff::{self, Role};
use crate::telemetry;
use crate::terminals::{self, TerminalKind, TerminalSpec};
use club_rules::MachineType;

#[derive(Debug, Parser)]
#[command(name = "floor-server", version, about = "The casino player-club floor server")]
pub struct Cli {
    /// A TOML configuration file; `FLOOR_*` environment variables override it.
    #[arg(long, short, global = true, env = "FLOOR_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the floor (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Serve a demo floor on a fresh embedded SQLite database with seeded members and cards.
    Demo {
        /// The demo database file (recreated at every start).
        #[arg(long, default_value = "demo-floor.db")]
        database: PathBuf,
    },
    /// Enrol, revoke or re-key terminals.
    #[command(subcommand)]
    Terminal(TerminalCommand),
    /// Manage staff accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Manage the outlet catalogue (bars, restaurants, hotel, showcase).
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
}

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Add or change articles from a CSV (header: sku,name,category,points_price,showcase,
    /// member_free,already_discounted,active) or TOML (`[[article]]`) file. Audited.
    Import {
        /// The file, ending in .csv or .toml.
        file: PathBuf,
    },
    /// List every article.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TerminalCommand {
    /// Enrol a terminal and print its secret (shown once).
    Enrol {
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = ["slot", "bar", "table"])]
        kind: String,
        /// For slot terminals.
        #[arg(long, value_parser = ["slot", "electronic_roulette", "video_poker"])]
        machine_type: Option<String>,
        #[arg(long, default_value = "")]
        location: String,
    },
    /// Revoke a terminal's credentials; its connection is closed.
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// Issue a new secret for a terminal.
    Reissue {
        #[arg(long)]
        id: String,
    },
    /// List terminals and their status.
    List,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create a staff account; the password is read from FLOOR_NEW_PASSWORD or standard input.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: reception, croupier, pit_boss, cashier, bar, manager, administrator.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<()> {
    const CLI: Actor = Actor::System("cli");
    let clock = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            let store = app::open_store(&config).await?;
            let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
            app::run(config, store, clock, listener, app::shutdown_signal()).await
        }
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("migrated");
            Ok(())
        }
        Command::Demo { database } => crate::demo::run(config, database).await,
        Command::Terminal(t) => {
            let store = app::open_store(&config).await?;
            let now = clock.now_ms();
            match t {
                TerminalCommand::Enrol { id, kind, machine_type, location } => {
                    let spec = TerminalSpec {
                        id,
                        kind: TerminalKind::from_code(&kind).context("kind")?,
                        machine_type: machine_type.as_deref().and_then(MachineType::from_code),
                        location,
                    };
                    let creds = terminals::enrol(&store, &spec, &CLI, now).await?;
                    println!("terminal_id = \"{}\"\nsecret = \"{}\"", creds.terminal_id, creds.secret.expose_secret());
                }
                TerminalCommand::Revoke { id } => {
                    terminals::revoke(&store, &id, &CLI, now).await?;
                    println!("revoked {id}");
                }
                TerminalCommand::Reissue { id } => {
                    let creds = terminals::reissue(&store, &id, &CLI, now).await?;
                    println!("terminal_id = \"{}\"\nsecret = \"{}\"", creds.terminal_id, creds.secret.expose_secret());
                }
                TerminalCommand::List => {
                    for t in terminals::list(&store).await? {
                        println!(
                            "{:<16} {:<6} {:<20} last_seq={:<8} {}{}",
                            t.id,
                            t.kind,
                            t.machine_type.unwrap_or_default(),
                            t.last_seq,
                            t.location,
                            if t.revoked { " (revoked)" } else { "" }
                        );
                    }
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Catalogue(c) => {
            let store = app::open_store(&config).await?;
            match c {
                CatalogueCommand::Import { file } => {
                    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    let articles = crate::catalogue::parse_file(&file, &text)?;
                    let changed = crate::catalogue::upsert(&store, &articles, &CLI, clock.now_ms()).await?;
                    println!("{} articles read, {changed} added or changed", articles.len());
                }
                CatalogueCommand::List => {
                    for a in crate::catalogue::all(&store).await? {
                        let points = a.points_price.map_or_else(|| "-".to_owned(), |p| p.to_string());
                        let flags: Vec<&str> = [
                            (a.showcase, "showcase"),
                            (a.member_free, "member_free"),
                            (a.already_discounted, "already_discounted"),
                            (!a.active, "inactive"),
                        ]
                        .iter()
                        .filter_map(|(on, name)| on.then_some(*name))
                        .collect();
                        println!("{:<20} {:<32} {:<16} {:>7}  {}", a.sku, a.name, a.category, points, flags.join(","));
                    }
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Staff(StaffCommand::Add { username, name, roles }) => {
            let roles = roles
                .iter()
                .map(|r| Role::from_code(r.trim()).with_context(|| format!("unknown role {r}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = match std::env::var("FLOOR_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let store = app::open_store(&config).await?;
            let id = staff::create_user(&store, &username, &name, &password, &roles, &CLI, clock.now_ms()).await?;
            println!("staff user {username} created (id {id})");
            store.close().await;
            Ok(())
        }
    }
}
