//! Bar mode: the card reader plus `pos-bridge` in the same process. The till talks to the
//! bridge's local HTTP API; the bridge reaches the floor through [`AgentFloor`], which is this
//! agent's uplink (online requests) and outbox (events: a cash sale made while the link is down
//! waits there, sequenced with the terminal's other events).
//!
//! Key decision: the member at the till is whoever's card the reader holds; a removed card ends
//! it at once. What it does not do: pricing or rules (the server), the till's screens.

use std::time::Duration;

use floor_protocol::{CardNumber, ErrorCode, Reply, Request, TerminalEvent};
use hardware::{CardEvent, CardReader};
use pos_bridge::{Bridge, Floor, Offline, RecordError};
use tokio::sync::watch;

use crate::Error;
use crate::outbox::Outbox;
use crate::screen::Screen;
use crate::uplink::{LinkState, Uplink};

/// The floor as the bridge sees it, through this agent.
pub struct AgentFloor {
    pub uplink: Uplink,
    pub outbox: Outbox,
    pub request_timeout: Duration,
}

impl Floor for AgentFloor {
    async fn request(&self, request: Request) -> Result<Reply, Offline> {
        if self.uplink.state() != LinkState::Up {
            return Err(Offline("the link to the floor server is down".into()));
        }
        match self.uplink.request(request, self.request_timeout).await {
            Reply::Failed { code: ErrorCode::Unavailable, message } => Err(Offline(message)),
            reply => Ok(reply),
        }
    }

    async fn record(&self, event: TerminalEvent) -> Result<(), RecordError> {
        self.outbox.push(crate::now_ms(), &event).await.map(|_| ()).map_err(|e| RecordError(e.to_string()))
    }
}

/// Feeds the reader's cards to the bridge until `stop` turns true or the reader stops.
pub async fn run(bridge: Bridge<AgentFloor>, mut screen: Screen, mut cards: CardReader, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
    screen.show(&["Show your club card"]);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            e = cards.next_event() => match e {
                Some(CardEvent::Inserted { card, .. }) => {
                    bridge.card_read(CardNumber::new(card.expose()));
                    screen.show(&["Card read", "Welcome to the bar"]);
                }
                Some(CardEvent::Removed { .. }) => {
                    bridge.card_removed();
                    screen.show(&["Show your club card"]);
                }
                None => return Err(Error::Config("the card reader stopped".into())),
            },
        }
    }
}
