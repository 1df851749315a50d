//! Table mode: a card presented at a table announces the player to the pit.
//!
//! Each card read becomes a sequenced `TablePresence` event (through the outbox, so a
//! presentation made while the link is down arrives later); the server stores it where the pit
//! console reads it and answers with a refusal when the card may not be used.
//! What it does not do: rating play (the croupier or inspector records it at the pit console).

use floor_protocol::{CardNumber, Outcome, TerminalEvent};
use hardware::{CardEvent, CardReader};
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::outbox::Outbox;
use crate::screen::Screen;
use crate::uplink::FromServer;

/// The table-mode task.
pub struct Table {
    pub outbox: Outbox,
    pub from_server: mpsc::UnboundedReceiver<FromServer>,
    pub screen: Screen,
    pub seat: Option<u32>,
}

impl Table {
    /// Runs until `stop` turns true or the reader stops.
    pub async fn run(mut self, mut cards: CardReader, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
        let mut announced: Vec<u64> = Vec::new();
        self.screen.show(&["Present your card"]);
        loop {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                e = cards.next_event() => match e {
                    Some(CardEvent::Inserted { card, .. }) => {
                        let event = TerminalEvent::TablePresence { card: CardNumber::new(card.expose()), seat: self.seat };
                        announced.push(self.outbox.push(crate::now_ms(), &event).await?);
                        self.screen.show(&["Card read", "The pit is informed"]);
                    }
                    Some(CardEvent::Removed { .. }) => {}
                    None => return Err(Error::Config("the card reader stopped".into())),
                },
                m = self.from_server.recv() => match m {
                    Some(FromServer::Outcome { seq, outcome }) if announced.contains(&seq) => {
                        announced.retain(|s| *s != seq);
                        if let Outcome::Refused { text, .. } = outcome {
                            self.screen.refused(&text);
                        }
                    }
                    Some(_) => {}
                    None => return Ok(()),
                },
            }
        }
    }
}
