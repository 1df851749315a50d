//! [`WsFloor`]: the bridge's own connection to the floor server, for the standalone binary and
//! tests (the terminal agent brings its link and outbox instead).
//!
//! One WebSocket, opened on first use and again after it drops, authenticated with the
//! terminal's credentials (HTTP Basic), Hello first. Requests wait for the `Reply` with their id;
//! events are sent with the next sequence number after the server's `HelloAck` and wait for
//! their `Ack`. What it does not do: keep events while the server is down (no outbox: `record`
//! fails then), or TLS (`ws://` only; the agent's link does `wss://`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use floor_protocol::{Envelope, ErrorCode, PROTOCOL_VERSION, Reply, Request, ServerMessage, TerminalEvent, TerminalMessage};
use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::floor::{Floor, Offline, RecordError};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Conn {
    ws: Ws,
    next_seq: u64,
    next_id: u64,
}

/// A [`Floor`] over one WebSocket to the floor server's terminal gateway.
pub struct WsFloor {
    url: String,
    terminal: String,
    secret: SecretString,
    timeout: Duration,
    conn: Mutex<Option<Conn>>,
}

impl WsFloor {
    /// `url` is the gateway (`ws://host:port/terminal/ws`); `terminal` and `secret` the bar
    /// terminal's credentials. Nothing is opened until the first use.
    pub fn new(url: impl Into<String>, terminal: impl Into<String>, secret: SecretString) -> WsFloor {
        WsFloor { url: url.into(), terminal: terminal.into(), secret, timeout: Duration::from_secs(5), conn: Mutex::new(None) }
    }

    /// How long to wait for the server's answer before saying [`Offline`] (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> WsFloor {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<Conn, String> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| e.to_string())?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.terminal, self.secret.expose_secret()));
        request
            .headers_mut()
            .insert("authorization", HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| e.to_string())?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| e.to_string())?;
        send(&mut ws, &TerminalMessage::Hello { protocol: PROTOCOL_VERSION, software: format!("pos-bridge {}", env!("CARGO_PKG_VERSION")) })
            .await?;
        loop {
            match recv(&mut ws).await? {
                ServerMessage::HelloAck { last_seq, .. } => return Ok(Conn { ws, next_seq: last_seq + 1, next_id: 1 }),
                ServerMessage::Error { message, .. } => return Err(message),
                _ => continue,
            }
        }
    }

    /// The open connection, connecting first when there is none.
    async fn open<'a>(&self, slot: &'a mut Option<Conn>) -> Result<&'a mut Conn, String> {
        if slot.is_none() {
            *slot = Some(tokio::time::timeout(self.timeout, self.connect()).await.map_err(|_| "connecting timed out".to_owned())??);
        }
        Ok(slot.as_mut().expect("connected above"))
    }
}

/// The result of an exchange within the time limit; any failure drops the connection so the next
/// use reconnects.
fn settle<T>(slot: &mut Option<Conn>, result: Result<Result<T, String>, tokio::time::error::Elapsed>) -> Result<T, String> {
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            *slot = None;
            Err(e)
        }
        Err(_) => {
            *slot = None;
            Err("no answer in time".to_owned())
        }
    }
}

async fn ask(conn: &mut Conn, request: Request) -> Result<Reply, String> {
    let id = conn.next_id;
    conn.next_id += 1;
    send(&mut conn.ws, &TerminalMessage::Request { id, request }).await?;
    loop {
        match recv(&mut conn.ws).await? {
            ServerMessage::Reply { id: got, reply } if got == id => return Ok(reply),
            _ => continue,
        }
    }
}

async fn sequenced(conn: &mut Conn, event: TerminalEvent) -> Result<(), String> {
    // One resend at most: after a sequence gap the server names the number it expects.
    for _ in 0..2 {
        let seq = conn.next_seq;
        send(&mut conn.ws, &TerminalMessage::Event(Envelope { seq, at: now_ms(), event: event.clone() })).await?;
        loop {
            match recv(&mut conn.ws).await? {
                ServerMessage::Ack { seq: got, .. } if got == seq => {
                    conn.next_seq = seq + 1;
                    return Ok(());
                }
                ServerMessage::Error { code: ErrorCode::SequenceGap, expected: Some(expected), .. } => {
                    conn.next_seq = expected;
                    break;
                }
                ServerMessage::Error { message, seq: Some(s), .. } if s == seq => return Err(message),
                _ => continue,
            }
        }
    }
    Err("the server kept refusing the sequence number".into())
}

async fn send(ws: &mut Ws, msg: &TerminalMessage) -> Result<(), String> {
    let text = serde_json::to_string(msg).expect("terminal message serialises");
    ws.send(Message::Text(text.into())).await.map_err(|e| e.to_string())
}

async fn recv(ws: &mut Ws) -> Result<ServerMessage, String> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Err("the connection closed".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).map_err(|e| format!("not a server message: {e}")),
            Some(Ok(_)) => continue,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Floor for WsFloor {
    async fn request(&self, request: Request) -> Result<Reply, Offline> {
        let mut slot = self.conn.lock().await;
        let conn = self.open(&mut slot).await.map_err(Offline)?;
        let result = tokio::time::timeout(self.timeout, ask(conn, request)).await;
        settle(&mut slot, result).map_err(Offline)
    }

    async fn record(&self, event: TerminalEvent) -> Result<(), RecordError> {
        let mut slot = self.conn.lock().await;
        let conn = self.open(&mut slot).await.map_err(RecordError)?;
        let result = tokio::time::timeout(self.timeout, sequenced(conn, event)).await;
        settle(&mut slot, result).map_err(RecordError)
    }
}
