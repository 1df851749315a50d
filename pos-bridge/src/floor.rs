//! The bridge's view of the floor server: ask a question now, or record an event for later.
//!
//! Key decision: the bridge does not own a connection or an outbox. The bar-mode terminal agent
//! implements [`Floor`] with its link and its outbox (so a cash sale made while the link is down
//! waits there, sequenced, with the agent's other events); [`crate::ws::WsFloor`] is a small
//! implementation over one WebSocket for the standalone binary and tests. Requests are never
//! queued: when the server cannot answer now, [`Floor::request`] says [`Offline`].

use std::future::Future;

use floor_protocol::{Reply, Request, TerminalEvent};

/// The floor server cannot answer now (the link is down, or the answer did not come in time).
/// A request that changes something may still have been done: each names its own idempotency
/// key, so asking again later is safe.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the floor server is not reachable: {0}")]
pub struct Offline(pub String);

/// An event could not be stored for sending (the outbox failed); nothing was recorded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the event could not be recorded: {0}")]
pub struct RecordError(pub String);

/// What the bridge needs from the floor server.
pub trait Floor: Send + Sync + 'static {
    /// Asks the server and waits for its answer.
    fn request(&self, request: Request) -> impl Future<Output = Result<Reply, Offline>> + Send;

    /// Records a terminal event: sent in sequence now or, while the link is down, later. `Ok`
    /// means it is stored and will reach the server.
    fn record(&self, event: TerminalEvent) -> impl Future<Output = Result<(), RecordError>> + Send;
}

impl<F: Floor> Floor for std::sync::Arc<F> {
    fn request(&self, request: Request) -> impl Future<Output = Result<Reply, Offline>> + Send {
        (**self).request(request)
    }

    fn record(&self, event: TerminalEvent) -> impl Future<Output = Result<(), RecordError>> + Send {
        (**self).record(event)
    }
}
