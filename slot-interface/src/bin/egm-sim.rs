//! `egm-sim DEVICE [options]`: a simulated gaming machine that speaks SAS on a serial device or
//! a pty (e.g. one end of `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`).
//!
//! Control commands are read from standard input, one per line, and answered on standard output
//! (`ok ...` / `err ...`); see `slot_interface::sim::runner` for the list. The simulator stops
//! on `quit` or at the end of standard input (unless `--no-stdin`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use club_rules::MachineType;
use slot_interface::sim::{self, Egm, RunOptions, SimConfig, Store, Stored};
use slot_interface::{Address, Denomination, LinkMode, SasPort};
use tokio::io::AsyncBufReadExt;

/// A simulated SAS gaming machine.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Serial device or pty path.
    device: String,
    /// SAS address, 1 to 127.
    #[arg(long, default_value_t = 1)]
    address: u8,
    /// Accounting denomination in cents (a Table C-4 value: 1, 2, 5, 10, 25, ...).
    #[arg(long, default_value_t = 1)]
    denomination_cents: u32,
    /// Game type: slot, electronic_roulette or video_poker.
    #[arg(long, default_value = "slot")]
    game: String,
    /// Return to player in basis points (9500 = 95.00 %).
    #[arg(long, default_value_t = 9_500)]
    rtp_bp: u32,
    /// Credits wagered per game.
    #[arg(long, default_value_t = 5)]
    bet: u32,
    /// AFT asset number (default 1000 + address).
    #[arg(long)]
    asset: Option<u32>,
    /// Play a game by itself every this many milliseconds.
    #[arg(long)]
    auto_play_ms: Option<u64>,
    /// Keep meters, credits and AFT history in this JSON file across restarts.
    #[arg(long)]
    meters_file: Option<PathBuf>,
    /// Seed of the game outcomes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Ignore long poll 0x0E, like a machine without real-time events.
    #[arg(long)]
    no_real_time: bool,
    /// `plain` (pty: no ninth bit) or `wakeup` (UART: mark/space parity).
    #[arg(long, default_value = "plain")]
    mode: String,
    /// A silence this long ends a partial host message, in milliseconds.
    #[arg(long, default_value_t = 5)]
    inter_byte_ms: u64,
    /// Chirp after this long without a poll, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    chirp_after_ms: u64,
    /// How long an accepted AFT transfer stays pending, in milliseconds.
    #[arg(long, default_value_t = 100)]
    transfer_delay_ms: u64,
    /// Do not read commands from standard input; run until killed.
    #[arg(long)]
    no_stdin: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let address = Address::new(args.address)?;
    let Some(game) = MachineType::from_code(&args.game) else { bail!("unknown game type {:?}", args.game) };
    let mode = match args.mode.as_str() {
        "plain" => LinkMode::Plain,
        "wakeup" => LinkMode::Wakeup,
        other => bail!("unknown mode {other:?} (plain or wakeup)"),
    };
    let mut config = SimConfig::new(address);
    config.denomination = Denomination::from_cents(args.denomination_cents)?;
    config.game = game;
    config.rtp_bp = args.rtp_bp;
    config.bet_credits = args.bet;
    config.asset_number = args.asset.unwrap_or(config.asset_number);
    config.seed = args.seed;
    config.real_time_capable = !args.no_real_time;
    config.chirp_after = Duration::from_millis(args.chirp_after_ms);
    config.transfer_delay = Duration::from_millis(args.transfer_delay_ms);
    let store = args.meters_file.as_ref().map(Store::new);
    let state = match &store {
        Some(store) => store.load()?,
        None => Stored::default(),
    };
    let egm = Egm::new(config, state, std::time::Instant::now())?;
    let port = SasPort::open(&args.device, mode).with_context(|| format!("opening {}", args.device))?;
    let options = RunOptions {
        inter_byte: Duration::from_millis(args.inter_byte_ms),
        auto_play: args.auto_play_ms.map(Duration::from_millis),
    };
    let (handle, mut task) = sim::spawn(egm, port, store, options);
    println!("ready {} address {}", args.device, address.value());
    std::io::stdout().flush()?;
    if args.no_stdin {
        return task.await?.map_err(Into::into);
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            ended = &mut task => return ended?.map_err(Into::into),
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let answer = match handle.command(&line).await {
                    Ok(text) if text.is_empty() => "ok".to_string(),
                    Ok(text) => format!("ok {text}"),
                    Err(e) => format!("err {e}"),
                };
                println!("{answer}");
                std::io::stdout().flush()?;
            }
        }
    }
    // End of standard input: stop, saving the meters.
    let _ = handle.command("quit").await;
    task.await?.map_err(Into::into)
}
