//! A TCP proxy that can cut the network the way a pulled cable or a dead switch does: the
//! connections stay "open" on both ends, nothing is closed or reset, bytes just stop moving.
//! Later the cut is mended (the held bytes move on, as a switch coming back would let them) or the
//! held connections are dropped.
//!
//! Key decision: a blackholed proxy stops *reading* both sides, so the kernels' buffers fill and
//! writers block, exactly what a sender on a dead path sees; new connections are accepted at the
//! TCP level (the kernel's backlog does that anyway) and held without a byte forwarded, so a
//! client's handshake hangs rather than fails. What it does not do: delay, reorder or corrupt.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with bytes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Forward,
    Blackhole,
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct NetCut {
    addr: SocketAddr,
    path: watch::Sender<Path>,
    /// Bumped by [`NetCut::drop_connections`]: connections of an older generation close.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl NetCut {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> NetCut {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let (path, path_rx) = watch::channel(Path::Forward);
        let (generation, generation_rx) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let born = *generation_rx.borrow();
                tokio::spawn(connection(client, upstream, path_rx.clone(), generation_rx.clone(), born));
            }
        });
        NetCut { addr, path, generation, accepted, task }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far (a client reconnecting shows here).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops forwarding both ways, on every connection, without closing anything.
    pub fn blackhole(&self) {
        let _ = self.path.send(Path::Blackhole);
    }

    /// Forwards again; what was held moves on.
    pub fn mend(&self) {
        let _ = self.path.send(Path::Forward);
    }

    /// Closes every connection accepted so far (both ends see the socket close).
    pub fn drop_connections(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for NetCut {
    fn drop(&mut self) {
        self.task.abort();
        self.drop_connections();
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, mut path: watch::Receiver<Path>, mut generation: watch::Receiver<u64>, born: u64) {
    let _ = client.set_nodelay(true);
    let dropped = |g: &u64| *g != born;
    // A new connection on a dead path reaches nothing until the path is back.
    let reach = async {
        let _ = path.wait_for(|p| *p == Path::Forward).await;
        TcpStream::connect(upstream).await
    };
    let server = tokio::select! {
        s = reach => match s { Ok(s) => s, Err(_) => return },
        _ = generation.wait_for(dropped) => return,
    };
    let _ = server.set_nodelay(true);
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let up = pump(client_r, server_w, path.clone());
    let down = pump(server_r, client_w, path.clone());
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = generation.wait_for(dropped) => {}
    }
}

/// Copies one direction while the path forwards; on a blackhole it stops reading (and holds what
/// it read) until the path is back.
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, mut path: watch::Receiver<Path>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if path.wait_for(|p| *p == Path::Forward).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Read just before the cut: held, like bytes in a dead switch's buffer.
        if path.wait_for(|p| *p == Path::Forward).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn echo(s: &mut TcpStream, text: &[u8], limit: Duration) -> Option<Vec<u8>> {
        s.write_all(text).await.unwrap();
        let mut got = vec![0u8; text.len()];
        tokio::time::timeout(limit, s.read_exact(&mut got)).await.ok().map(|r| {
            r.unwrap();
            got
        })
    }

    #[tokio::test]
    async fn a_blackhole_holds_bytes_without_closing_and_mending_lets_them_through() {
        let cut = NetCut::start(echo_server().await).await;
        let mut s = TcpStream::connect(cut.addr()).await.unwrap();
        assert_eq!(echo(&mut s, b"one", Duration::from_secs(5)).await.as_deref(), Some(&b"one"[..]));
        cut.blackhole();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(echo(&mut s, b"two", Duration::from_millis(500)).await, None, "nothing moves, nothing closes");
        // A new connection is accepted but reaches nothing.
        let mut fresh = TcpStream::connect(cut.addr()).await.unwrap();
        assert_eq!(echo(&mut fresh, b"new", Duration::from_millis(300)).await, None);
        assert_eq!(cut.accepted(), 2);
        cut.mend();
        let mut held = vec![0u8; 3];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut held)).await.unwrap().unwrap();
        assert_eq!(&held, b"two", "what was held arrives after the mend");
        cut.drop_connections();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "a dropped connection closes");
    }
}
