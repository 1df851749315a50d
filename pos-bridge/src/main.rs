//! `pos-bridge`: the bridge on its own, for a till beside a terminal that has no agent, and for
//! trying the till API against a floor server. Listens on loopback unless told otherwise.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use pos_bridge::ws::WsFloor;
use pos_bridge::{Bridge, BridgeConfig, PosOutlet};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(name = "pos-bridge", version, about = "The players club's local API for a bar, restaurant, hotel or showcase till")]
struct Args {
    /// The floor server's terminal gateway, e.g. ws://127.0.0.1:8080/terminal/ws.
    #[arg(long, env = "POS_BRIDGE_SERVER")]
    server: String,
    /// This till's terminal id (a bar terminal enrolled on the floor server).
    #[arg(long, env = "POS_BRIDGE_TERMINAL")]
    terminal: String,
    /// The terminal's secret.
    #[arg(long, env = "POS_BRIDGE_SECRET", hide_env_values = true)]
    secret: String,
    /// The token the till must send as `Authorization: Bearer <token>`.
    #[arg(long, env = "POS_BRIDGE_TOKEN", hide_env_values = true)]
    token: String,
    /// Where the till's API listens (loopback by default).
    #[arg(long, env = "POS_BRIDGE_LISTEN", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// The outlet of tickets that do not name one.
    #[arg(long, env = "POS_BRIDGE_OUTLET", default_value = "bar", value_parser = ["bar", "restaurant", "hotel", "showcase"])]
    outlet: String,
    /// A card number to treat as read at the till at start (for trying the API without a reader).
    #[arg(long, env = "POS_BRIDGE_CARD", hide_env_values = true)]
    card: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_target(false).init();
    let args = Args::parse();
    if args.token.len() < 16 {
        anyhow::bail!("the till token must be at least 16 characters");
    }
    let outlet: PosOutlet = serde_json::from_value(serde_json::Value::String(args.outlet.clone())).context("outlet")?;
    let floor = WsFloor::new(args.server, args.terminal, SecretString::from(args.secret));
    let bridge = Bridge::new(floor, BridgeConfig::new(SecretString::from(args.token), outlet));
    if let Some(card) = args.card {
        bridge.card_read(floor_protocol::CardNumber::new(card));
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    println!("pos-bridge listening on http://{} (OpenAPI at /openapi.json)", listener.local_addr()?);
    let refresh = bridge.spawn_catalogue_refresh(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    pos_bridge::serve(listener, bridge.router(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    refresh.abort();
    Ok(())
}
