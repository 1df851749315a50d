//! The persistent connection to the floor server: connect, Hello, resend what the server has not
//! committed, stream the outbox in order with a window of events in flight, answer requests, and
//! reconnect with exponential backoff whenever anything goes wrong.
//!
//! Key decision: the outbox is the only source of what is sent, and an event leaves it only on an
//! acknowledgement, so every failure (a dropped socket, a server restart, `unavailable`, a
//! `sequence_gap`) is handled the same way: start again from what the server says it has.
//!
//! A dead link is noticed, not waited for: a heartbeat goes out every `heartbeat`, and nothing
//! heard for `silence_limit` (a pulled cable, a dead switch: TCP stays "open" for hours) or a
//! write that does not finish within it ends the connection; the outbox keeps everything meanwhile.
//!
//! A poison event (one the server answers with an error every time) must neither be lost nor
//! block the events behind it for ever. After an error for an event, the next connection sends
//! one event at a time until one is acknowledged, so a failure is pinned on the event that
//! caused it; an event the server refuses as such (`invalid`, `too_large`, `malformed`) or that
//! fails alone `dead_letter_after` times in a row moves to the outbox's dead letters (logged
//! without its content, counted in `agent_dead_letters_total`) and the stream goes on.
//!
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

use crate::link::{Credentials, Link, LinkError, Trust};
use crate::outbox::{NumberUsed, Outbox};
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
    /// An event that fails alone this many times in a row becomes a dead letter (20 with the
    /// default backoff: about two and a half minutes of failing).
    pub dead_letter_after: u32,
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
            dead_letter_after: 20,
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
    let mut strikes = Strikes::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let mut connected = false;
        let mut ctx = Ctx { config: &config, outbox: &outbox, to_mode: &to_mode, state: &state, strikes: &mut strikes };
        let result = connection(&mut ctx, &mut requests, &mut stop, &mut connected).await;
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
    metrics::counter!("agent_link_failures_total").increment(1);
    tracing::debug!(error = ?e, "link failure detail");
}

/// The errors the server gave for the oldest waiting event, across connections.
#[derive(Debug, Default)]
struct Strikes {
    /// After an error for an event: send one event at a time until one is acknowledged.
    careful: bool,
    /// The event that failed while it travelled alone, and how many times in a row.
    seq: u64,
    count: u32,
}

impl Strikes {
    /// The window for the next events.
    fn window(&self, config: &UplinkConfig) -> u32 {
        if self.careful { 1 } else { config.window }
    }

    fn acknowledged(&mut self, seq: u64) {
        if seq >= self.seq {
            *self = Strikes::default();
        }
    }
}

/// What the server's error says about the event: it will never be taken as it is, or it may be
/// later.
fn refused_for_good(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Invalid | ErrorCode::TooLarge | ErrorCode::Malformed | ErrorCode::UnknownMessage)
}

/// What one connection works with.
struct Ctx<'a> {
    config: &'a UplinkConfig,
    outbox: &'a Outbox,
    to_mode: &'a mpsc::UnboundedSender<FromServer>,
    state: &'a watch::Sender<LinkState>,
    strikes: &'a mut Strikes,
}

/// A write that does not finish within the silence limit means the link is dead (the peer stopped
/// reading, or the path to it is gone).
async fn write<F>(limit: Duration, io: F) -> Result<(), Error>
where
    F: std::future::Future<Output = Result<(), LinkError>>,
{
    match tokio::time::timeout(limit, io).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Timeout),
    }
}

/// Moves a poison event to the dead letters. `invalid` for a number is the server saying it has
/// that number already (a repeat it cannot answer); every other error stores nothing.
async fn dead_letter(outbox: &Outbox, seq: u64, code: ErrorCode, message: &str) -> Result<(), Error> {
    let used = if code == ErrorCode::Invalid { NumberUsed::Yes } else { NumberUsed::No };
    let code_text = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    if let Some(letter) = outbox.dead_letter(seq, &code_text, message, used, crate::now_ms()).await? {
        metrics::counter!("agent_dead_letters_total").increment(1);
        // The kind and number only: the body may hold a card number.
        tracing::error!(seq, kind = %letter.kind, code = %code_text, id = letter.id,
            "the floor server will not take this event; kept as a dead letter, the events behind it go on");
    }
    Ok(())
}

/// Up to a quarter more or less, so that a floor of terminals does not reconnect in step.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let quarter = d / 4;
    let spread = u32::try_from(quarter.as_millis()).unwrap_or(u32::MAX).max(1);
    d - quarter + Duration::from_millis(u64::from(nanos % (2 * spread)))
}

/// One connection, from connect to failure or stop. `Ok` only when stopped.
async fn connection(
    ctx: &mut Ctx<'_>,
    requests: &mut mpsc::Receiver<(Request, oneshot::Sender<Reply>)>,
    stop: &mut watch::Receiver<bool>,
    connected: &mut bool,
) -> Result<(), Error> {
    let (config, outbox, to_mode, state) = (ctx.config, ctx.outbox, ctx.to_mode, ctx.state);
    let mut link = tokio::time::timeout(config.connect_timeout, Link::connect(&config.url, &config.credentials, &config.trust))
        .await
        .map_err(|_| Error::Timeout)??;
    let limit = config.silence_limit;
    write(limit, link.send(&TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: config.software.clone() })).await?;
    let ack = tokio::time::timeout(config.connect_timeout, link.recv()).await.map_err(|_| Error::Timeout)??;
    let ServerMessage::HelloAck { last_seq, blocked_cards, .. } = ack else {
        return Err(Error::Link(LinkError::Protocol(format!("expected hello_ack, got {ack:?}"))));
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
        let room = u64::from(ctx.strikes.window(config)).saturating_sub(sent - acked);
        if room > 0 {
            let batch = outbox.pending(sent, u32::try_from(room).unwrap_or(u32::MAX)).await?;
            if !batch.is_empty() {
                for envelope in batch {
                    sent = envelope.seq;
                    write(limit, link.feed(&TerminalMessage::Event(envelope))).await?;
                }
                write(limit, link.flush()).await?;
            }
        }
        let msg = tokio::select! {
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), link.close()).await;
                return Ok(());
            }
            _ = written.notified() => continue,
            r = requests.recv() => {
                let Some((request, reply)) = r else { return Ok(()) };
                next_request += 1;
                waiting.insert(next_request, reply);
                write(limit, link.send(&TerminalMessage::Request { id: next_request, request })).await?;
                continue;
            }
            _ = heartbeat.tick() => {
                if heard.elapsed() > config.silence_limit {
                    tracing::warn!(silent_ms = heard.elapsed().as_millis() as u64, "nothing heard from the floor server; taking the link for dead");
                    return Err(Error::Timeout);
                }
                write(limit, link.send(&TerminalMessage::Heartbeat { at: crate::now_ms() })).await?;
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
                ctx.strikes.acknowledged(seq);
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
                if outbox.first_waiting().await?.is_none_or(|first| first > expected) {
                    // The server lacks events this store no longer has (they were acknowledged):
                    // resending cannot help here. Start again from the server's Hello.
                    metrics::counter!("agent_sequence_gaps_unfillable_total").increment(1);
                    tracing::error!(expected, "the server expects an event this terminal no longer holds");
                    return Err(Error::Link(LinkError::Protocol(format!("sequence gap at {expected}: not in the outbox"))));
                }
                let committed = expected.saturating_sub(1);
                if committed > acked {
                    outbox.acknowledged(committed).await?;
                    acked = committed;
                }
                stale_gap = Some((expected, sent));
                sent = acked;
            }
            ServerMessage::Error { code, message, seq: Some(seq), .. } => {
                // Not committed (unavailable) or not storable: the event may be poison. Pin the
                // failure on it, then start again from what the server has, after a pause.
                let alone = ctx.strikes.careful && seq == acked + 1;
                if alone {
                    if ctx.strikes.seq == seq {
                        ctx.strikes.count += 1;
                    } else {
                        ctx.strikes.seq = seq;
                        ctx.strikes.count = 1;
                    }
                }
                ctx.strikes.careful = true;
                // The pause keeps growing while events fail: a server that cannot commit for a
                // while is not hammered, and a transient fault takes minutes to make a dead letter.
                *connected = false;
                let for_good = refused_for_good(code);
                if for_good || (alone && ctx.strikes.count >= config.dead_letter_after) {
                    dead_letter(outbox, seq, code, &message).await?;
                    *ctx.strikes = Strikes { careful: true, ..Strikes::default() };
                }
                return Err(Error::Link(LinkError::Protocol(format!("event {seq}: {code:?}: {message}"))));
            }
            ServerMessage::Error { code, message, .. } => {
                tracing::warn!(?code, %message, "the server reported an error");
                if code == ErrorCode::UnsupportedProtocol || code == ErrorCode::Unavailable {
                    return Err(Error::Link(LinkError::Protocol(message)));
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
