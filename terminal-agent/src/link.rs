//! The terminal's connection to the floor server: a WebSocket, over TLS whenever the URL is
//! `wss://`, authenticated with the terminal's credentials.
//!
//! The server's certificate is always verified: against the CA certificate the terminal was
//! configured with (a casino's own CA), or else against the public web roots. There is no switch
//! to turn verification off. What this module does not do: reconnection, the outbox, or
//! sequencing (the agent's session and outbox code drives those).

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use floor_protocol::{ServerMessage, TerminalMessage};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Errors of the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("bad server url: {0}")]
    Url(String),
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server refused the terminal's credentials")]
    Refused,
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("the server sent something that is not a server message: {0}")]
    Protocol(String),
    #[error("the connection is closed")]
    Closed,
}

/// Who the terminal is.
#[derive(Clone)]
pub struct Credentials {
    pub terminal_id: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("terminal_id", &self.terminal_id).finish_non_exhaustive()
    }
}

/// How to trust the server.
#[derive(Clone, Debug, Default)]
pub enum Trust {
    /// The public web roots.
    #[default]
    WebRoots,
    /// Only certificates issued by these CA certificates (PEM), e.g. the casino's own CA.
    Ca(Vec<u8>),
}

impl Trust {
    pub fn ca_file(path: &Path) -> Result<Trust, LinkError> {
        Ok(Trust::Ca(std::fs::read(path)?))
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, LinkError> {
        let mut roots = rustls::RootCertStore::empty();
        match self {
            Trust::WebRoots => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Trust::Ca(pem) => {
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| LinkError::Tls(format!("CA file: {e}")))?;
                    roots.add(cert).map_err(|e| LinkError::Tls(format!("CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(LinkError::Tls("the CA file holds no certificate".into()));
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LinkError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// A byte stream the WebSocket runs over: plain TCP or TLS.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// An open connection to the floor server.
pub struct Link {
    ws: WebSocketStream<Box<dyn Transport>>,
}

impl Link {
    /// Connects to `url` (`ws://host:port/terminal/ws` or `wss://…`) as the terminal `creds`.
    pub async fn connect(url: &str, creds: &Credentials, trust: &Trust) -> Result<Link, LinkError> {
        let mut request = url.into_client_request().map_err(|e| LinkError::Url(e.to_string()))?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.terminal_id, creds.secret.expose_secret()));
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| LinkError::Url(e.to_string()))?,
        );
        let uri = request.uri().clone();
        let host = uri.host().ok_or_else(|| LinkError::Url("no host".into()))?.to_owned();
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(LinkError::Url("the scheme must be ws or wss".into())),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Transport> = if tls {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(trust.client_config()?));
            let name = ServerName::try_from(host.clone()).map_err(|e| LinkError::Url(e.to_string()))?;
            Box::new(connector.connect(name, tcp).await.map_err(|e| LinkError::Tls(e.to_string()))?)
        } else {
            Box::new(tcp)
        };
        let (ws, _response) = match tokio_tungstenite::client_async(request, stream).await {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(resp)) if resp.status() == 401 => return Err(LinkError::Refused),
            Err(e) => return Err(e.into()),
        };
        Ok(Link { ws })
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &TerminalMessage) -> Result<(), LinkError> {
        self.send_text(serde_json::to_string(msg).expect("terminal message serialises")).await
    }

    /// Queues one message without flushing (for pipelining); call [`Link::flush`] after a burst.
    pub async fn feed(&mut self, msg: &TerminalMessage) -> Result<(), LinkError> {
        let text = serde_json::to_string(msg).expect("terminal message serialises");
        Ok(self.ws.feed(Message::Text(text.into())).await?)
    }

    pub async fn flush(&mut self) -> Result<(), LinkError> {
        Ok(self.ws.flush().await?)
    }

    /// Sends raw text (tests of bad input use it).
    pub async fn send_text(&mut self, text: String) -> Result<(), LinkError> {
        Ok(self.ws.send(Message::Text(text.into())).await?)
    }

    /// The next server message; pings and pongs are handled underneath.
    pub async fn recv(&mut self) -> Result<ServerMessage, LinkError> {
        loop {
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Err(LinkError::Closed),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t).map_err(|e| LinkError::Protocol(format!("{e}: {t}")));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<(), LinkError> {
        self.ws.close(None).await.or_else(|e| match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Ok(()),
            e => Err(e.into()),
        })
    }
}
