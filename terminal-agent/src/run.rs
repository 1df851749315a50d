//! Wiring for the `terminal-agent` binary: the configured reader, display, machine and mode, the
//! console keypad on standard input, and an orderly stop.
//!
//! Standard input takes one command per line: `redeem POINTS PIN` (cashback at the machine), and
//! with the console reader `insert CARD` / `remove`. It is the stand-in keypad of terminals
//! without one, and what the end-to-end tests drive.

use std::time::Duration;

use anyhow::Context;
use floor_protocol::Pin;
use hardware::{CardId, CardReader, ChannelReader, ConsoleDisplay, PcscConfig, PcscReader, SerialConfig, SerialFormat, SerialReader};
use slot_interface::aft::RegistrationKey;
use slot_interface::{Address, HostConfig, LinkMode, SasHost, SasPort};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};

use crate::config::{AgentConfig, Mode, ReaderKind};
use crate::outbox::Outbox;
use crate::screen::Screen;
use crate::slot::{Input, Slot, SlotSettings};
use crate::table::Table;
use crate::uplink::Uplink;

/// Runs the agent until `stop` turns true.
pub async fn run(config: AgentConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let outbox = Outbox::open(&config.store).await.with_context(|| format!("opening {}", config.store.display()))?;
    let waiting = outbox.len().await?;
    tracing::info!(terminal = %config.server.terminal_id, mode = ?config.mode, waiting, "terminal agent starting");
    let (uplink, from_server, uplink_task) = Uplink::spawn(config.uplink()?, outbox.clone(), stop.clone());
    let (cards, console_slot) = reader(&config)?;
    let (inputs_tx, inputs) = mpsc::channel(8);
    tokio::spawn(console(console_slot, inputs_tx));
    let screen = Screen::new(Box::new(ConsoleDisplay::stdout(config.display.cols, config.display.rows)));

    let result = match config.mode {
        Mode::Slot => {
            let slot = config.slot.as_ref().context("slot mode needs [slot]")?;
            let mode = match slot.link_mode.as_str() {
                "plain" => LinkMode::Plain,
                "wakeup" => LinkMode::Wakeup,
                other => anyhow::bail!("slot.link_mode {other:?}: plain or wakeup"),
            };
            let address = Address::new(slot.address)?;
            let port = SasPort::open(&slot.port, mode).with_context(|| format!("opening {}", slot.port))?;
            let mut host_config = HostConfig::new(vec![address]);
            if mode == LinkMode::Plain {
                // A pty's timing is the scheduler's, not a UART's.
                host_config.poller.response_timeout = Duration::from_millis(150);
                host_config.poller.inter_byte_timeout = Duration::from_millis(40);
                host_config.poller.link_down_after = Duration::from_secs(2);
            }
            if let Some(key) = &slot.registration_key {
                let mut k = [0u8; 20];
                for (i, b) in k.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&key[2 * i..2 * i + 2], 16)?;
                }
                host_config.aft.registration_key = RegistrationKey(k);
            }
            let (host, sas) = SasHost::spawn(port, host_config);
            let machine = host.machine(address)?;
            let settings = SlotSettings {
                abandon_after: Duration::from_secs(slot.abandon_after_secs),
                card_in_timeout: Duration::from_millis(config.timeouts.card_in_ms),
                request_timeout: Duration::from_millis(config.timeouts.request_ms),
                refuse_when_credits: slot.refuse_when_credits,
                ..SlotSettings::default()
            };
            let r = Slot::new(outbox.clone(), uplink.clone(), from_server, machine, sas, screen, settings).run(cards, inputs, stop.clone()).await;
            let _ = host.stop().await;
            r
        }
        Mode::Table => Table { outbox: outbox.clone(), from_server, screen, seat: config.table.seat }.run(cards, stop.clone()).await,
        Mode::Bar => {
            let bar = config.bar.as_ref().context("bar mode needs [bar]")?;
            let token = match (&bar.till_token, &bar.till_token_file) {
                (Some(t), _) => t.clone(),
                (None, Some(path)) => secrecy::SecretString::from(
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_owned(),
                ),
                (None, None) => anyhow::bail!("[bar] needs till_token or till_token_file"),
            };
            anyhow::ensure!(secrecy::ExposeSecret::expose_secret(&token).len() >= 16, "the till token must be at least 16 characters");
            let outlet: pos_bridge::PosOutlet =
                serde_json::from_value(serde_json::Value::String(bar.outlet.clone())).context("bar.outlet: bar, restaurant, hotel or showcase")?;
            let floor = crate::bar::AgentFloor {
                uplink: uplink.clone(),
                outbox: outbox.clone(),
                request_timeout: Duration::from_millis(config.timeouts.request_ms),
            };
            let bridge = pos_bridge::Bridge::new(floor, pos_bridge::BridgeConfig::new(token, outlet));
            let listener = tokio::net::TcpListener::bind(bar.listen).await.with_context(|| format!("binding {}", bar.listen))?;
            tracing::info!(addr = %listener.local_addr()?, "till API listening");
            let mut api_stop = stop.clone();
            let api = tokio::spawn(pos_bridge::serve(listener, bridge.router(), async move {
                let _ = api_stop.wait_for(|s| *s).await;
            }));
            let mut refresh_stop = stop.clone();
            let refresh = bridge.spawn_catalogue_refresh(async move {
                let _ = refresh_stop.wait_for(|s| *s).await;
            });
            let r = crate::bar::run(bridge, (uplink.clone(), outbox.clone()), screen, cards, from_server, stop.clone()).await;
            let _ = api.await;
            refresh.abort();
            r
        }
    };
    // Give the uplink a moment to deliver what the mode wrote last (a card-out at shutdown).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while uplink.state() == crate::uplink::LinkState::Up && !outbox.is_empty().await? && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = uplink_task.await;
    outbox.close().await;
    result.map_err(Into::into)
}

fn reader(config: &AgentConfig) -> anyhow::Result<(CardReader, Option<ChannelReader>)> {
    Ok(match config.reader.kind {
        ReaderKind::Pcsc => {
            let pcsc = PcscConfig { readers: config.reader.readers.clone(), ..PcscConfig::default() };
            (PcscReader::spawn(pcsc)?, None)
        }
        ReaderKind::Serial => {
            let device = config.reader.device.clone().context("reader.device")?;
            let format = match config.reader.format.as_deref() {
                None | Some("em4100") => SerialFormat::Em4100,
                Some("track2") => SerialFormat::Track2 { lrc: false },
                Some(other) => anyhow::bail!("reader.format {other:?}: em4100 or track2"),
            };
            (SerialReader::spawn(SerialConfig::new("serial", device, format)), None)
        }
        ReaderKind::Console => {
            let (slot, reader) = ChannelReader::new("console");
            (reader, Some(slot))
        }
    })
}

/// Reads the console keypad (and console card reader) from standard input.
async fn console(mut slot: Option<ChannelReader>, inputs: mpsc::Sender<Input>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let done = match (words.as_slice(), slot.as_mut()) {
            (["redeem", points, pin], _) => match points.parse() {
                Ok(points) => inputs.send(Input::Redeem { points, pin: Pin::new(*pin) }).await.is_ok(),
                Err(_) => {
                    eprintln!("redeem POINTS PIN");
                    true
                }
            },
            (["insert", card], Some(slot)) => match CardId::parse(card) {
                Ok(card) => slot.insert(card).await.is_ok(),
                Err(e) => {
                    eprintln!("{e}");
                    true
                }
            },
            (["remove"], Some(slot)) => slot.remove().await.is_ok(),
            ([], _) => true,
            _ => {
                eprintln!("commands: redeem POINTS PIN; with the console reader: insert CARD, remove");
                true
            }
        };
        if !done {
            break;
        }
    }
    // Standard input ended: the console reader stays in place (its card, if any, stays in) and
    // the terminal goes on without a keypad.
    drop(inputs);
    if slot.is_some() {
        std::future::pending::<()>().await;
    }
}
