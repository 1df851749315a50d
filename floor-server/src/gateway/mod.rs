//! The terminal gateway: one WebSocket per terminal.
//!
//! The upgrade request must carry the terminal's credentials (HTTP Basic: terminal id and secret);
//! a wrong or revoked credential gets 401 before any socket exists. On the socket the terminal
//! says Hello, then streams sequenced events; each is answered after its commit, in order (see
//! `floor_protocol` for the sequencing rules and [`ingest`] for the commit). Frames that cannot be
//! taken (not JSON, an unknown type, too large, an event before Hello) are answered with an error
//! frame and the connection carries on; nothing about them is stored.
//!
//! A dead link is noticed from this side too: terminals send a heartbeat every few seconds, so a
//! connection silent for the idle timeout (30 s by default, `GatewaySettings`) is a half-open one (a
//! pulled cable, a dead switch) and is closed. Heartbeats also mark the terminal seen, at most every
//! 20 s by default, which is what the manager's console reads as online
//! (`terminals::TerminalStatus::is_online`).
//!
//! Shutdown: the connection stops reading, waits for the answers to the events it already handed
//! on, sends them, and closes.

pub mod ingest;
pub mod outlet;
pub mod requests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use floor_protocol::{ErrorCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerMessage, TerminalMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::app::AppState;
use crate::club;
use crate::terminals::{self, Terminal};

/// How often a connection re-checks that its terminal has not been revoked.
const REVOCATION_CHECK: Duration = Duration::from_secs(5);
/// The transport's own limit; frames between [`MAX_FRAME_BYTES`] and this get an error frame.
const TRANSPORT_MAX_BYTES: usize = 1024 * 1024;

/// `GET /terminal/ws`
pub async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let Some((id, secret)) = basic_credentials(&headers) else {
        return unauthorized();
    };
    let terminal = match terminals::authenticate(&state.store, &id, &secret).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            metrics::counter!("floor_gateway_auth_refused_total").increment(1);
            tracing::warn!(terminal = %id, "terminal credentials refused");
            return unauthorized();
        }
        Err(e) => return e.into_response(),
    };
    ws.max_message_size(TRANSPORT_MAX_BYTES)
        .max_frame_size(TRANSPORT_MAX_BYTES)
        .on_upgrade(move |socket| {
            let tracker = state.tasks.clone();
            tracker.track_future(connection(socket, Arc::new(terminal), state))
        })
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"terminals\"")], "terminal credentials refused")
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// What the sending half writes, in order: a message now, or the answer to an event once its
/// commit is done.
enum Outgoing {
    Now(ServerMessage),
    Later(oneshot::Receiver<ServerMessage>),
    Close(ErrorCode, String),
}

#[tracing::instrument(name = "terminal", skip_all, fields(terminal = %terminal.id))]
async fn connection(socket: WebSocket, terminal: Arc<Terminal>, state: AppState) {
    metrics::gauge!("floor_gateway_connections").increment(1.0);
    tracing::info!("terminal connected");
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel::<Outgoing>(4096);
    let sender = tokio::spawn(send_loop(sink, out_rx));
    let mut broadcasts = state.hub.subscribe();
    let mut hello = false;
    let mut revocation = tokio::time::interval(REVOCATION_CHECK);
    revocation.tick().await;
    let shutdown = state.shutdown.clone();
    let idle_timeout = Duration::from_millis(state.gateway.idle_timeout_ms);
    let seen_mark = Duration::from_millis(state.gateway.seen_mark_ms);
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    let mut marked = tokio::time::Instant::now();

    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let _ = out.send(Outgoing::Close(ErrorCode::Unavailable, "server shutting down".into())).await;
                break;
            }
            _ = &mut idle => {
                metrics::counter!("floor_gateway_idle_closed_total").increment(1);
                tracing::warn!(after_ms = state.gateway.idle_timeout_ms, "terminal silent; closing the connection as dead");
                let _ = out.send(Outgoing::Close(ErrorCode::Unavailable, "no frame within the idle timeout".into())).await;
                break;
            }
            b = broadcasts.recv() => {
                match b {
                    Ok(msg) if hello => { let _ = out.send(Outgoing::Now((*msg).clone())).await; }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "broadcasts missed; terminal will get the block list on reconnect");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {}
                }
                continue;
            }
            _ = revocation.tick() => {
                match terminals::is_active(&state.store, &terminal.id).await {
                    Ok(false) => {
                        tracing::warn!("terminal revoked; closing");
                        let _ = out.send(Outgoing::Close(ErrorCode::Invalid, "terminal revoked".into())).await;
                        break;
                    }
                    Ok(true) | Err(_) => continue,
                }
            }
            f = stream.next() => f,
        };
        idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => break,
            Some(Err(e)) => {
                tracing::info!(error = %e, "terminal connection failed");
                break;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                let _ = out.send(Outgoing::Now(ServerMessage::error(ErrorCode::Malformed, "text frames only"))).await;
                continue;
            }
            Some(Ok(Message::Text(t))) => t,
        };
        if text.len() > MAX_FRAME_BYTES {
            metrics::counter!("floor_gateway_bad_frames_total", "reason" => "too_large").increment(1);
            let msg = format!("frame of {} bytes is over the {} byte limit", text.len(), MAX_FRAME_BYTES);
            let _ = out.send(Outgoing::Now(ServerMessage::error(ErrorCode::TooLarge, msg))).await;
            continue;
        }
        let msg = match parse(&text) {
            Ok(m) => m,
            Err(answer) => {
                metrics::counter!("floor_gateway_bad_frames_total", "reason" => "unparsable").increment(1);
                let _ = out.send(Outgoing::Now(answer)).await;
                continue;
            }
        };
        match msg {
            TerminalMessage::Hello { protocol, software } => {
                if protocol != PROTOCOL_VERSION {
                    let m = format!("this server speaks protocol {PROTOCOL_VERSION}, not {protocol}");
                    let _ = out.send(Outgoing::Close(ErrorCode::UnsupportedProtocol, m)).await;
                    break;
                }
                tracing::info!(software = %software, "hello");
                match hello_ack(&state, &terminal).await {
                    Ok(ack) => {
                        hello = true;
                        let _ = out.send(Outgoing::Now(ack)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "hello failed");
                        let _ = out.send(Outgoing::Close(ErrorCode::Unavailable, "try again".into())).await;
                        break;
                    }
                }
            }
            TerminalMessage::Heartbeat { .. } => {
                let _ = out.send(Outgoing::Now(ServerMessage::Pong { server_time: state.clock.now_ms() })).await;
                if hello && marked.elapsed() >= seen_mark {
                    marked = tokio::time::Instant::now();
                    // Off the read loop: a busy database must not hold up the terminal's frames.
                    let (state, id) = (state.clone(), terminal.id.clone());
                    state.tasks.clone().spawn(async move {
                        if let Err(e) = terminals::mark_seen(&state.store, &id, state.clock.now_ms()).await {
                            tracing::warn!(error = %e, "could not mark the terminal seen");
                        }
                    });
                }
            }
            TerminalMessage::Request { id, .. } if !hello => {
                let reply = floor_protocol::Reply::failed(ErrorCode::HelloRequired, "say hello first");
                let _ = out.send(Outgoing::Now(ServerMessage::Reply { id, reply })).await;
            }
            TerminalMessage::Request { id, request } => {
                // Answered on its own task so that a slow request never holds up the event stream;
                // replies may overtake acknowledgements, which the terminal matches by id.
                let (state, terminal, out) = (state.clone(), terminal.clone(), out.clone());
                state.tasks.clone().spawn(async move {
                    let reply = requests::answer(&state, &terminal, request).await;
                    let _ = out.send(Outgoing::Now(ServerMessage::Reply { id, reply })).await;
                });
            }
            TerminalMessage::Event(envelope) if !hello => {
                let seq = envelope.seq;
                let _ = out
                    .send(Outgoing::Now(ServerMessage::Error {
                        code: ErrorCode::HelloRequired,
                        message: "say hello first".into(),
                        seq: Some(seq),
                        expected: None,
                    }))
                    .await;
            }
            TerminalMessage::Event(envelope) => {
                let (reply, answer) = oneshot::channel();
                let item = ingest::Item { terminal: terminal.clone(), envelope, reply };
                if state.ingest.submit(item).await.is_err() {
                    let _ = out.send(Outgoing::Close(ErrorCode::Unavailable, "server shutting down".into())).await;
                    break;
                }
                if out.send(Outgoing::Later(answer)).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(out);
    let _ = sender.await;
    if hello && let Err(e) = terminals::mark_seen(&state.store, &terminal.id, state.clock.now_ms()).await {
        tracing::warn!(error = %e, "could not mark the terminal seen");
    }
    metrics::gauge!("floor_gateway_connections").decrement(1.0);
    tracing::info!("terminal disconnected");
}

/// Parses a frame, telling an unknown message type apart from plain garbage.
fn parse(text: &str) -> Result<TerminalMessage, ServerMessage> {
    match serde_json::from_str::<TerminalMessage>(text) {
        Ok(m) => Ok(m),
        Err(e) => {
            let known = ["hello", "event", "heartbeat", "request"];
            let ty = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
            Err(match ty {
                Some(t) if !known.contains(&t.as_str()) => {
                    ServerMessage::error(ErrorCode::UnknownMessage, format!("unknown message type {t:?}"))
                }
                _ => ServerMessage::error(ErrorCode::Malformed, format!("not a terminal message: {e}")),
            })
        }
    }
}

async fn hello_ack(state: &AppState, terminal: &Terminal) -> crate::error::Result<ServerMessage> {
    let now = state.clock.now_ms();
    let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM terminals WHERE id = $1")
        .bind(&terminal.id)
        .fetch_one(state.store.read())
        .await?;
    terminals::mark_seen(&state.store, &terminal.id, now).await?;
    Ok(ServerMessage::HelloAck {
        protocol: PROTOCOL_VERSION,
        terminal: terminal.id.clone(),
        last_seq: u64::try_from(last_seq).unwrap_or(0),
        server_time: now,
        blocked_cards: club::block_list(&state.store, now).await?,
    })
}

async fn send_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    while let Some(out) = rx.recv().await {
        let msg = match out {
            Outgoing::Now(m) => m,
            Outgoing::Later(answer) => match answer.await {
                Ok(m) => m,
                // The writer is gone without answering: the event was not committed.
                Err(_) => ServerMessage::error(ErrorCode::Unavailable, "not committed; resend later"),
            },
            Outgoing::Close(code, message) => {
                let _ = feed(&mut sink, &ServerMessage::error(code, message.clone())).await;
                let _ = sink
                    .send(Message::Close(Some(CloseFrame { code: 1001, reason: Utf8Bytes::from(message) })))
                    .await;
                return;
            }
        };
        // Write without flushing while more answers are queued: one flush per burst, not per ack.
        let sent = match feed(&mut sink, &msg).await {
            Ok(()) if rx.is_empty() => sink.flush().await,
            other => other,
        };
        if sent.is_err() {
            // The terminal went away; remaining answers are lost with the socket, and the terminal
            // resends those events (it removes from its outbox only what was acknowledged).
            return;
        }
    }
    let _ = sink.close().await;
}

async fn feed(sink: &mut futures_util::stream::SplitSink<WebSocket, Message>, msg: &ServerMessage) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("server message serialises");
    sink.feed(Message::Text(text.into())).await
}
