//! Bar mode: the card reader plus `pos-bridge` in the same process. The till talks to the
//! bridge's local HTTP API; the bridge reaches the floor through [`AgentFloor`], which is this
//! agent's uplink (online requests) and outbox (events: a cash sale made while the link is down
//! waits there, sequenced with the terminal's other events).
//!
//! Key decision: the member at the till is whoever's card the reader holds; a removed card ends
//! it at once. While the link is down a card on the block list (the server's BlockCard pushes,
//! kept in the outbox's store) is refused at the reader, so the till has no member to record a
//! sale for; a BlockCard push for the card at the till ends it too.
//! What it does not do: pricing or rules (the server), the till's screens.

use std::time::Duration;

use floor_protocol::{CardNumber, ErrorCode, Reply, Request, TerminalEvent};
use hardware::{CardEvent, CardReader};
use pos_bridge::{Bridge, Floor, Offline, RecordError};
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::outbox::Outbox;
use crate::screen::Screen;
use crate::uplink::{FromServer, LinkState, Uplink};

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
pub async fn run(
    bridge: Bridge<AgentFloor>,
    link: (Uplink, Outbox),
    mut screen: Screen,
    mut cards: CardReader,
    mut from_server: mpsc::UnboundedReceiver<FromServer>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    screen.show(&["Show your club card"]);
    let mut at_till: Option<CardNumber> = None;
    let mut pushes = true;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            e = cards.next_event() => match e {
                Some(CardEvent::Inserted { card, .. }) => {
                    let card = CardNumber::new(card.expose());
                    let offline = link.0.state() != LinkState::Up;
                    if offline && link.1.is_blocked(&card).await? {
                        tracing::info!(card = %card, "a card on the block list was presented while the server is unreachable; refused");
                        bridge.card_removed();
                        at_till = None;
                        screen.refused(club_rules::RefusalCode::CardBlocked.player_text());
                        continue;
                    }
                    bridge.card_read(card.clone());
                    at_till = Some(card);
                    screen.show(&["Card read", "Welcome to the bar"]);
                }
                Some(CardEvent::Removed { .. }) => {
                    bridge.card_removed();
                    at_till = None;
                    screen.show(&["Show your club card"]);
                }
                None => return Err(Error::Config("the card reader stopped".into())),
            },
            m = from_server.recv(), if pushes => match m {
                Some(FromServer::Blocked(card)) if at_till.as_ref().is_some_and(|c| same_card(c, &card)) => {
                    bridge.card_removed();
                    at_till = None;
                    screen.refused(club_rules::RefusalCode::CardBlocked.player_text());
                }
                Some(FromServer::Display { lines, .. }) => {
                    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                    screen.show(&lines);
                }
                Some(_) => {}
                None => pushes = false,
            },
        }
    }
}

fn same_card(a: &CardNumber, b: &CardNumber) -> bool {
    matches!((a.normalised(), b.normalised()), (Ok(a), Ok(b)) if a == b)
}
