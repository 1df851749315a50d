//! The persistent connection to the floor server: connect, Hello, resend what the server has not
//! committed, stream the outbox in order with a window of events in flight, answer requests, and
//! reconnect with exponential backoff whenever anything goes wrong.
//!
//! Key decision: the outbox is the only source of what is sent, and an event leaves it only on an
//! acknowledgement, so every failure (a dropped socket, a server restart, `unavailable`, a
//! `sequence_gap`) is handled the same way: start again from what the server says it has.
//! What it does not do: decide anything about sessions; it hands the server's answers, pushes and
//! commands to the mode's task through a channel.

use std::collections::HashMap;
use std::time::Duration;

use floor_protocol::{
    CardNumber, ErrorCode, Outcome, PROTOCOL_VERSION, Reply, Request, ServerMessage, TerminalMessage,
};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::link::{Credentials, Link, Trust};
use crate::outbox::Outbox;
use crate::Error;

/// How the uplink connects and paces itself.
#[derive(Debug, Clone)]
pub struct UplinkConfig {
    pub url: String,
    pub credentials: Credentials,
    pub trust: Trust,
    /// Events sent ahead of their acknowledgements.
    pub window: u32,
    pub connect_timeout: Duration,
    pub heartbeat: Duration,
    /// Nothing heard for this long: the connection is taken for dead.
    pub silence_limit: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Software name sent in Hello.
    pub software: String,
}

impl UplinkConfig {
    pub fn new(url: impl Into<String>, credentials: Credentials, trust: Trust) -> UplinkConfig {
        UplinkConfig {
            url: url.into(),
            credentials,
            trust,
            window: 256,
            connect_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(5),
            silence_limit: Duration::from_secs(15),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            software: format!("terminal-agent {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What the uplink tells the mode's task.
#[derive(Debug, Clone, PartialEq)]
pub enum FromServer {
    /// The server committed event `seq` with this answer.
    Outcome { seq: u64, outcome: Outcome },
    /// Move free play to the machine.
    FreePlay { transfer: String, session: String, amount: Decimal },
    /// Show a message.
    Display { lines: Vec<String>, seconds: u32 },
    /// A card was blocked (already written to the block list).
    Blocked(CardNumber),
}

/// Whether the server is reachable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Down,
    Up,
}

/// The mode's handle on the uplink.
#[derive(Clone)]
pub struct Uplink {
    requests: mpsc::Sender<(Request, oneshot::Sender<Reply>)>,
    state: watch::Receiver<LinkState>,
}

impl Uplink {
    /// Starts the uplink task. It runs until `stop` turns true, then closes the connection.
    pub fn spawn(
        config: UplinkConfig,
        outbox: Outbox,
        stop: watch::Receiver<bool>,
    ) -> (Uplink, mpsc::UnboundedReceiver<FromServer>, tokio::task::JoinHandle<()>) {
        let (requests, requests_rx) = mpsc::channel(16);
        let (state_tx, state) = watch::channel(LinkState::Down);
        let (to_mode, from_server) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(config, outbox, to_mode, requests_rx, state_tx, stop));
        (Uplink { requests, state }, from_server, task)
    }

    /// Whether the server is reachable now.
    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    /// Waits until the link is up (or `limit` passes).
    pub async fn wait_up(&self, limit: Duration) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(limit, state.wait_for(|s| *s == LinkState::Up)).await.is_ok_and(|r| r.is_ok())
    }

    /// Asks the server something a person waits for. While the link is down, or when no answer
    /// comes within `limit`, the answer is a `Failed` with code `unavailable`.
    pub async fn request(&self, request: Request, limit: Duration) -> Reply {
        let unavailable = || Reply::failed(ErrorCode::Unavailable, "The club system cannot be reached now.");
        if self.state() != LinkState::Up {
            return unavailable();
        }
        let (reply, answer) = oneshot::channel();
        if self.requests.send((request, reply)).await.is_err() {
            return unavailable();
        }
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(reply)) => reply,
            _ => unavailable(),
        }
    }
}

async fn run(
    config: UplinkConfig,
    outbox: Outbox,
    to_mode: mpsc::UnboundedSender<FromServer>,
    mut requests: mpsc::Receiver<(Request, oneshot::Sender<Reply>)>,
    state: watch::Sender<LinkState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = config.backoff_min;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut connected = false;
        let result = connection(&config, &outbox, &to_mode, &mut requests, &state, &mut stop, &mut connected).await;
        let _ = state.send(LinkState::Down);
        match result {
            Ok(()) => return,
            Err(e) => {
                metrics_note(&e);
                tracing::warn!(error = %e, "floor server link down; reconnecting");
            }
        }
        if connected {
            backoff = config.backoff_min;
        }
        // Wait out the backoff, refusing requests meanwhile.
        let until = Instant::now() + jitter(backoff);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                _ = stop.changed() => return,
                r = requests.recv() => match r {
                    Some((_, reply)) => { let _ = reply.send(Reply::failed(ErrorCode::Unavailable, "The club system cannot be reached now.")); }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

fn metrics_note(e: &Error) {
    tracing::debug!(error = ?e, "link failure detail");
}

/// Up to a quarter more or less, so that a floor of terminals does not reconnect in step.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let quarter = d / 4;
    let spread = u32::try_from(quarter.as_millis()).unwrap_or(u32::MAX).max(1);
    d - quarter + Duration::from_millis(u64::from(nanos % (2 * spread)))
}

/// One connection, from connect to failure or stop. `Ok` only when stopped.
#[allow(clippy::too_many_arguments)]
async fn connection(
    config: &UplinkConfig,
    outbox: &Outbox,
    to_mode: &mpsc::UnboundedSender<FromServer>,
    requests: &mut mpsc::Receiver<(Request, oneshot::Sender<Reply>)>,
    state: &watch::Sender<LinkState>,
    stop: &mut watch::Receiver<bool>,
    connected: &mut bool,
) -> Result<(), Error> {
    let mut link = tokio::time::timeout(config.connect_timeout, Link::connect(&config.url, &config.credentials, &config.trust))
        .await
        .map_err(|_| Error::Timeout)??;
    link.send(&TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: config.software.clone() }).await?;
    let ack = tokio::time::timeout(config.connect_timeout, link.recv()).await.map_err(|_| Error::Timeout)??;
    let ServerMessage::HelloAck { last_seq, blocked_cards, .. } = ack else {
        return Err(Error::Link(crate::link::LinkError::Protocol(format!("expected hello_ack, got {ack:?}"))));
    };
    outbox.align(last_seq).await?;
    outbox.set_block_list(&blocked_cards).await?;
    *connected = true;
    let _ = state.send(LinkState::Up);
    tracing::info!(last_seq, blocked = blocked_cards.len(), "connected to the floor server");

    let written = outbox.written();
    let mut acked = last_seq;
    let mut sent = last_seq;
    // After a sequence gap, answers to events sent before the resend are stale: (expected, up to).
    let mut stale_gap: Option<(u64, u64)> = None;
    let mut next_request: u64 = 0;
    let mut waiting: HashMap<u64, oneshot::Sender<Reply>> = HashMap::new();
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.tick().await;
    let mut heard = Instant::now();

    loop {
        // Fill the window from the outbox.
        let room = u64::from(config.window).saturating_sub(sent - acked);
        if room > 0 {
            let batch = outbox.pending(sent, u32::try_from(room).unwrap_or(u32::MAX)).await?;
            if !batch.is_empty() {
                for envelope in batch {
                    sent = envelope.seq;
                    link.feed(&TerminalMessage::Event(envelope)).await?;
                }
                link.flush().await?;
            }
        }
        let msg = tokio::select! {
            _ = stop.changed() => {
                let _ = link.close().await;
                return Ok(());
            }
            _ = written.notified() => continue,
            r = requests.recv() => {
                let Some((request, reply)) = r else { return Ok(()) };
                next_request += 1;
                waiting.insert(next_request, reply);
                link.send(&TerminalMessage::Request { id: next_request, request }).await?;
                continue;
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > config.silence_limit {
                    return Err(Error::Timeout);
                }
                link.send(&TerminalMessage::Heartbeat { at: crate::now_ms() }).await?;
                continue;
            }
            m = link.recv() => m?,
        };
        heard = Instant::now();
        match msg {
            ServerMessage::Ack { seq, outcome } => {
                if seq > acked {
                    outbox.acknowledged(seq).await?;
                    acked = seq;
                    sent = sent.max(acked);
                }
                if let Outcome::Rejected { reason } = &outcome {
                    tracing::warn!(seq, %reason, "the server rejected an event");
                }
                let _ = to_mode.send(FromServer::Outcome { seq, outcome });
            }
            ServerMessage::Error { code: ErrorCode::SequenceGap, expected: Some(expected), seq, .. } => {
                if let (Some((e, upto)), Some(s)) = (stale_gap, seq)
                    && e == expected
                    && s > e
                    && s <= upto
                {
                    continue;
                }
                tracing::info!(expected, "the server expects an earlier event; resending from there");
                let committed = expected.saturating_sub(1);
                if committed > acked {
                    outbox.acknowledged(committed).await?;
                    acked = committed;
                }
                stale_gap = Some((expected, sent));
                sent = acked;
            }
            ServerMessage::Error { code, message, seq: Some(seq), .. } => {
                // Not committed (unavailable) or not storable now: start again from what the
                // server has, after a pause.
                return Err(Error::Link(crate::link::LinkError::Protocol(format!("event {seq}: {code:?}: {message}"))));
            }
            ServerMessage::Error { code, message, .. } => {
                tracing::warn!(?code, %message, "the server reported an error");
                if code == ErrorCode::UnsupportedProtocol || code == ErrorCode::Unavailable {
                    return Err(Error::Link(crate::link::LinkError::Protocol(message)));
                }
            }
            ServerMessage::Reply { id, reply } => {
                if let Some(w) = waiting.remove(&id) {
                    let _ = w.send(reply);
                }
            }
            ServerMessage::BlockCard { card } => {
                outbox.block(&card).await?;
                let _ = to_mode.send(FromServer::Blocked(card));
            }
            ServerMessage::UnblockCard { card } => outbox.unblock(&card).await?,
            ServerMessage::FreePlay { transfer, session, amount } => {
                let _ = to_mode.send(FromServer::FreePlay { transfer, session, amount });
            }
            ServerMessage::Display { lines, seconds } => {
                let _ = to_mode.send(FromServer::Display { lines, seconds });
            }
            ServerMessage::Pong { .. } | ServerMessage::HelloAck { .. } => {}
        }
    }
}
