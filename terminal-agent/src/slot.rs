//! Slot mode: carded sessions at a slot machine over SAS.
//!
//! Card in → `CardIn` (with a meter snapshot) → the server's Welcome or refusal on the screen;
//! each game → a `Play`; card out, a new card, or no game for a while → `CardOut` with a meter
//! snapshot. While the server cannot be reached the session opens offline (unless the card is on
//! the block list) and the server checks it when the events arrive; a refusal that comes back
//! later closes the session.
//!
//! Key decision: play is counted against the machine's **coin-in meter**, never by adding up
//! events. The session keeps the coin-in (in credits) it has reported so far, saved with each
//! `Play` in one transaction of the outbox; a game reports the meter's advance beyond that mark,
//! and card-out reports whatever is left. So an event seen twice, a game the agent missed while
//! it was down, or a game it heard of before a crash are all counted exactly once, and a
//! session's total always equals its meter delta.
//!
//! Free play at the machine: the player asks for cashback with a PIN; the server debits the
//! points (`RedeemCashback`, idempotent on the transfer id the agent chooses), the agent moves
//! the amount to the machine as restricted credit over AFT, and reports `FreePlayResult`; the
//! server gives the points back if the transfer failed. Free play the server pushes
//! (`FreePlay`, issued at a desk) goes the same way.
//!
//! What it does not do: rules (the server), SAS (slot-interface), reading cards (hardware).

use std::collections::VecDeque;
use std::time::Duration;

use floor_protocol::{
    CardNumber, CardOutReason, MachineType, MeterSnapshot, Outcome, Pin, Play, Reply, Request, TerminalEvent, TransferOutcome,
};
use hardware::{CardEvent, CardReader};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use slot_interface::{Denomination, Event, MachineLink, MeterCode, TransactionId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::Error;
use crate::outbox::{Outbox, SessionChange};
use crate::screen::Screen;
use crate::uplink::{FromServer, LinkState, Uplink};

/// Slot mode's settings.
#[derive(Debug, Clone)]
pub struct SlotSettings {
    /// No game for this long closes the session.
    pub abandon_after: Duration,
    /// No answer to a card-in within this: the session opens offline.
    pub card_in_timeout: Duration,
    pub request_timeout: Duration,
    /// Refuse a card while another player's credits are on the machine: the open session's
    /// player's, or those the last card out left on (until the machine pays out).
    pub refuse_when_credits: bool,
    /// The machine's game type, reported with each `Play` (the server uses the terminal's own).
    pub game: MachineType,
}

impl Default for SlotSettings {
    fn default() -> Self {
        SlotSettings {
            abandon_after: Duration::from_secs(600),
            card_in_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            refuse_when_credits: false,
            game: MachineType::Slot,
        }
    }
}

/// What the player asks for at the terminal (keypad or console).
#[derive(Debug, Clone)]
pub enum Input {
    /// Cashback: this many points, confirmed with the PIN.
    Redeem { points: i64, pin: Pin },
}

/// The open session as saved in the outbox with every event that changes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    id: String,
    card: String,
    card_in_seq: u64,
    offline: bool,
    /// Coin-in meter (credits) reported so far; `None` until the machine has been read.
    coin_in: Option<u64>,
    games: Option<u64>,
    coin_out: Option<u64>,
}

struct Open {
    saved: Saved,
    last_game: Instant,
    /// False after a restart until the reader confirms the card is still in.
    confirmed: bool,
    opened: Instant,
}

/// A game started but not yet ended.
struct Pending {
    credits: u64,
    coin_in: u64,
    games: u64,
}

/// Meters read at a moment: the wire snapshot and the raw counters.
struct Reading {
    snapshot: MeterSnapshot,
    coin_in: u64,
    coin_out: u64,
    games: u64,
    credits: u64,
}

/// The slot-mode task.
pub struct Slot {
    outbox: Outbox,
    uplink: Uplink,
    from_server: mpsc::UnboundedReceiver<FromServer>,
    machine: MachineLink,
    sas: mpsc::UnboundedReceiver<Event>,
    screen: Screen,
    settings: SlotSettings,
    session: Option<Open>,
    pending: Option<Pending>,
    denomination: Option<Denomination>,
    deferred: VecDeque<FromServer>,
    /// Who left the machine last, and what was on it then.
    left: Option<Left>,
    next_transfer: u64,
}

/// The credits the last player's card left on the machine.
struct Left {
    card: String,
    credits: u64,
    /// The coin-out meter then: a cash-out since moves it.
    coin_out: u64,
}

/// How long the reader has after a restart to say the saved session's card is still in.
const RESUME_GRACE: Duration = Duration::from_secs(5);
const METER_TIMEOUT: Duration = Duration::from_secs(3);

impl Slot {
    pub fn new(
        outbox: Outbox,
        uplink: Uplink,
        from_server: mpsc::UnboundedReceiver<FromServer>,
        machine: MachineLink,
        sas: mpsc::UnboundedReceiver<Event>,
        screen: Screen,
        settings: SlotSettings,
    ) -> Slot {
        Slot {
            outbox,
            uplink,
            from_server,
            machine,
            sas,
            screen,
            settings,
            session: None,
            pending: None,
            denomination: None,
            deferred: VecDeque::new(),
            left: None,
            next_transfer: 0,
        }
    }

    /// Runs until `stop` turns true (closing an open session) or the reader stops.
    pub async fn run(mut self, mut cards: CardReader, mut inputs: mpsc::Receiver<Input>, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
        self.resume().await?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        // A keypad that goes away (standard input closed) leaves the terminal running without it.
        let mut keypad = true;
        loop {
            while let Some(m) = self.deferred.pop_front() {
                self.server(m).await?;
            }
            tokio::select! {
                _ = stop.changed() => {
                    self.close(CardOutReason::TerminalShutdown).await?;
                    return Ok(());
                }
                e = cards.next_event() => match e {
                    Some(CardEvent::Inserted { card, .. }) => self.card_in(CardNumber::new(card.expose())).await?,
                    Some(CardEvent::Removed { card, .. }) => {
                        if self.session.as_ref().is_some_and(|s| s.saved.card == card.expose()) {
                            self.close(CardOutReason::Removed).await?;
                            self.screen.goodbye();
                        }
                    }
                    None => {
                        self.close(CardOutReason::TerminalShutdown).await?;
                        return Err(Error::Config("the card reader stopped".into()));
                    }
                },
                e = self.sas.recv() => match e {
                    Some(e) => self.sas_event(e).await?,
                    None => return Err(Error::Sas(slot_interface::Error::HostStopped)),
                },
                m = self.from_server.recv() => match m {
                    Some(m) => self.server(m).await?,
                    None => return Ok(()),
                },
                i = inputs.recv(), if keypad => match i {
                    Some(i) => self.input(i).await?,
                    None => keypad = false,
                },
                _ = tick.tick() => self.timers().await?,
            }
        }
    }

    /// A session saved before a crash stays open until the reader confirms its card or the
    /// grace period passes; the meters are reconciled as soon as the machine answers.
    async fn resume(&mut self) -> Result<(), Error> {
        if let Some(body) = self.outbox.saved_session().await? {
            let saved: Saved = serde_json::from_str(&body).map_err(|e| Error::Corrupt(e.to_string()))?;
            tracing::info!(session = %saved.id, "resuming the session open before the restart");
            let now = Instant::now();
            self.session = Some(Open { saved, last_game: now, confirmed: false, opened: now });
            if let Ok((_, d)) = tokio::time::timeout(METER_TIMEOUT, self.machine.machine_info()).await.unwrap_or(Err(slot_interface::Error::HostStopped)) {
                self.denomination = Some(d);
                self.reconcile().await?;
            }
        } else {
            self.screen.idle();
        }
        Ok(())
    }

    async fn timers(&mut self) -> Result<(), Error> {
        let Some(open) = &self.session else { return Ok(()) };
        if !open.confirmed && open.opened.elapsed() > RESUME_GRACE {
            tracing::info!("the card of the resumed session is not in the reader; closing it");
            self.close(CardOutReason::Removed).await?;
            self.screen.idle();
        } else if open.last_game.elapsed() > self.settings.abandon_after {
            tracing::info!("no game for the abandon time; closing the session");
            self.close(CardOutReason::Abandoned).await?;
            self.screen.idle();
        }
        Ok(())
    }

    async fn card_in(&mut self, card: CardNumber) -> Result<(), Error> {
        if let Some(open) = &mut self.session
            && open.saved.card == card.expose()
        {
            open.confirmed = true;
            return Ok(());
        }
        // A card that is refused here leaves whoever plays now undisturbed.
        let online = self.uplink.state() == LinkState::Up;
        if !online && self.outbox.is_blocked(&card).await? {
            self.screen.refused(club_rules::RefusalCode::CardBlocked.player_text());
            return Ok(());
        }
        if self.settings.refuse_when_credits && self.credits_of_another_player(&card).await {
            tracing::info!("a card refused: another player's credits are on the machine");
            self.screen.show(&["Machine has credits", "of another player"]);
            return Ok(());
        }
        self.close(CardOutReason::ReplacedByAnotherCard).await?;
        let reading = self.read_meters().await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut saved = Saved {
            id: id.clone(),
            card: card.expose().to_owned(),
            card_in_seq: 0,
            offline: !online,
            coin_in: reading.as_ref().map(|r| r.coin_in),
            games: reading.as_ref().map(|r| r.games),
            coin_out: reading.as_ref().map(|r| r.coin_out),
        };
        let event = TerminalEvent::CardIn { session: id, card, offline: !online, meters: reading.map(|r| r.snapshot) };
        // The sequence number is known only once written; the saved copy gets it right after.
        let seq = self.outbox.push_all(crate::now_ms(), &[event], SessionChange::Set(&json(&saved))).await?[0];
        saved.card_in_seq = seq;
        self.outbox.save_session(SessionChange::Set(&json(&saved))).await?;
        let now = Instant::now();
        self.session = Some(Open { saved, last_game: now, confirmed: true, opened: now });
        self.pending = None;
        if !online {
            self.screen.offline();
            return Ok(());
        }
        self.screen.wait();
        let deadline = Instant::now() + self.settings.card_in_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.from_server.recv()).await {
                Ok(Some(FromServer::Outcome { seq: s, outcome })) if s == seq => return self.card_in_answer(outcome).await,
                Ok(Some(other)) => self.deferred.push_back(other),
                Ok(None) => return Ok(()),
                Err(_) => {
                    tracing::info!("no answer to the card-in in time; the session goes on offline");
                    if let Some(open) = &mut self.session {
                        open.saved.offline = true;
                    }
                    self.screen.offline();
                    return Ok(());
                }
            }
        }
    }

    /// The server's answer to the open session's card-in, in time or late.
    async fn card_in_answer(&mut self, outcome: Outcome) -> Result<(), Error> {
        match outcome {
            Outcome::Welcome(w) => {
                if let Some(open) = &mut self.session {
                    open.saved.offline = false;
                }
                self.screen.welcome(&w.name, w.tier, w.points, w.free_play);
            }
            Outcome::Refused { text, .. } => {
                self.close(CardOutReason::Refused).await?;
                self.screen.refused(&text);
            }
            Outcome::Rejected { reason } => {
                tracing::warn!(%reason, "card-in rejected");
                self.close(CardOutReason::Refused).await?;
                self.screen.refused("Please contact reception.");
            }
            Outcome::Recorded => {}
        }
        Ok(())
    }

    async fn server(&mut self, m: FromServer) -> Result<(), Error> {
        match m {
            FromServer::Outcome { seq, outcome } => {
                if self.session.as_ref().is_some_and(|s| s.saved.card_in_seq == seq) {
                    self.card_in_answer(outcome).await?;
                }
            }
            FromServer::FreePlay { transfer, session, amount } => {
                let open = self.session.as_ref().is_some_and(|s| s.saved.id == session);
                if !open {
                    tracing::warn!(%transfer, "free play for a session that is not open here; reported failed");
                    self.report_transfer(&transfer, TransferOutcome::Failed { reason: "session not open".into() }).await?;
                } else {
                    self.transfer(&transfer, amount).await?;
                }
            }
            FromServer::Display { lines, .. } => {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                self.screen.show(&lines);
            }
            FromServer::Blocked(card) => {
                if self.session.as_ref().is_some_and(|s| s.saved.card == card.expose()) {
                    self.close(CardOutReason::Refused).await?;
                    self.screen.refused(club_rules::RefusalCode::CardBlocked.player_text());
                }
            }
        }
        Ok(())
    }

    async fn input(&mut self, input: Input) -> Result<(), Error> {
        match input {
            Input::Redeem { points, pin } => self.redeem(points, pin).await,
        }
    }

    /// Cashback at the machine.
    async fn redeem(&mut self, points: i64, pin: Pin) -> Result<(), Error> {
        let Some(open) = &self.session else {
            self.screen.show(&["Insert your card", "to redeem points"]);
            return Ok(());
        };
        if pin.expose().len() < 4 || !pin.expose().chars().all(|c| c.is_ascii_digit()) {
            self.screen.show(&["The PIN has at least", "4 digits"]);
            return Ok(());
        }
        self.next_transfer += 1;
        // 20 characters at most (SAS); unique per terminal: time plus a counter.
        let transfer = format!("M{:013X}{:06X}", crate::now_ms() & 0xF_FFFF_FFFF_FFFF, self.next_transfer & 0xFF_FFFF);
        let card = CardNumber::new(open.saved.card.clone());
        self.screen.wait();
        let request = Request::RedeemCashback { card, points, pin, transfer: transfer.clone() };
        match self.uplink.request(request, self.settings.request_timeout).await {
            Reply::Redeemed { transfer, amount, .. } => self.transfer(&transfer, amount).await?,
            Reply::PinRefused { tries_left } => {
                let left = format!("{tries_left} tries left");
                self.screen.show(&["Wrong PIN", &left]);
            }
            Reply::PinLocked => self.screen.show(&["Redemption locked", "Please ask the staff"]),
            Reply::Refused { text, .. } => self.screen.refused(&text),
            Reply::Failed { message, .. } => self.screen.show(&["Not possible now", &message]),
            other => {
                tracing::warn!(?other, "unexpected answer to a cashback request");
                self.screen.show(&["Not possible now"]);
            }
        }
        Ok(())
    }

    /// Moves free play to the machine and reports the outcome (a failure gives it back).
    async fn transfer(&mut self, transfer: &str, amount: Decimal) -> Result<(), Error> {
        let outcome = match (TransactionId::parse(transfer), club_rules::Money::from_decimal(amount)) {
            (Ok(id), Ok(money)) => match self.machine.free_play(&id, money).await {
                Ok(o) if o.status.is_success() => TransferOutcome::Completed { amount: o.amount.as_decimal() },
                Ok(o) => TransferOutcome::Failed { reason: format!("the machine refused the transfer ({})", o.status.name()) },
                Err(e) => TransferOutcome::Failed { reason: e.to_string() },
            },
            _ => TransferOutcome::Failed { reason: "transfer id or amount not usable on the machine".into() },
        };
        match &outcome {
            TransferOutcome::Completed { amount } => {
                let text = format!("EUR {amount} free play");
                self.screen.show(&[&text, "is on the machine"]);
            }
            TransferOutcome::Failed { .. } => self.screen.show(&["Transfer failed", "Your points are back"]),
        }
        self.report_transfer(transfer, outcome).await
    }

    async fn report_transfer(&mut self, transfer: &str, outcome: TransferOutcome) -> Result<(), Error> {
        self.outbox.push(crate::now_ms(), &TerminalEvent::FreePlayResult { transfer: transfer.to_owned(), outcome }).await?;
        Ok(())
    }

    async fn sas_event(&mut self, e: Event) -> Result<(), Error> {
        match e {
            Event::LinkUp { denomination, .. } => {
                self.denomination = Some(denomination);
                self.reconcile().await?;
            }
            Event::GameStarted { wager_credits, coin_in_credits, .. } => {
                self.flush_pending(Decimal::ZERO).await?;
                let Some(open) = &mut self.session else { return Ok(()) };
                open.last_game = Instant::now();
                let credits = match open.saved.coin_in {
                    Some(mark) if coin_in_credits <= mark => return Ok(()), // already counted
                    Some(mark) => coin_in_credits - mark,
                    None => wager_credits,
                };
                let games = if wager_credits == 0 || credits == wager_credits { 1 } else { (credits / wager_credits).max(1) };
                self.pending = Some(Pending { credits, coin_in: coin_in_credits, games });
            }
            Event::GameEnded { win, .. } => self.flush_pending(win.as_decimal()).await?,
            Event::LinkDown { .. } => tracing::warn!("the slot machine stopped answering"),
            _ => {}
        }
        Ok(())
    }

    /// Reports the game in progress (with its win, if it ended).
    async fn flush_pending(&mut self, won: Decimal) -> Result<(), Error> {
        let Some(p) = self.pending.take() else { return Ok(()) };
        let (Some(open), Some(d)) = (&mut self.session, self.denomination) else { return Ok(()) };
        open.saved.coin_in = Some(p.coin_in);
        open.saved.games = open.saved.games.map(|g| g + p.games);
        let play = Play {
            session: open.saved.id.clone(),
            game: self.settings.game,
            wagered: d.money(p.credits)?.as_decimal(),
            won,
            games: u32::try_from(p.games).unwrap_or(u32::MAX),
            meters: None,
        };
        let saved = json(&open.saved);
        self.outbox.push_all(crate::now_ms(), &[TerminalEvent::Play(play)], SessionChange::Set(&saved)).await?;
        Ok(())
    }

    /// Reports play the meters show beyond what the session has reported (games missed while
    /// the agent was down or the machine link was lost). Returns the reading.
    async fn reconcile(&mut self) -> Result<Option<Reading>, Error> {
        if self.session.is_none() {
            return Ok(None);
        }
        self.flush_pending(Decimal::ZERO).await?;
        let Some(r) = self.read_meters().await else { return Ok(None) };
        let (Some(open), Some(d)) = (&mut self.session, self.denomination) else { return Ok(Some(r)) };
        match open.saved.coin_in {
            Some(mark) if r.coin_in > mark => {
                let games = r.games.saturating_sub(open.saved.games.unwrap_or(r.games));
                let won_credits = r.coin_out.saturating_sub(open.saved.coin_out.unwrap_or(r.coin_out));
                open.saved.coin_in = Some(r.coin_in);
                open.saved.games = Some(r.games);
                open.saved.coin_out = Some(r.coin_out);
                let play = Play {
                    session: open.saved.id.clone(),
                    game: self.settings.game,
                    wagered: d.money(r.coin_in - mark)?.as_decimal(),
                    won: d.money(won_credits)?.as_decimal(),
                    games: u32::try_from(games).unwrap_or(u32::MAX),
                    meters: Some(r.snapshot.clone()),
                };
                tracing::info!(games, "play found on the meters beyond what was reported");
                let saved = json(&open.saved);
                self.outbox.push_all(crate::now_ms(), &[TerminalEvent::Play(play)], SessionChange::Set(&saved)).await?;
            }
            Some(_) => {}
            None => {
                // The machine was not readable at card-in: count from now.
                open.saved.coin_in = Some(r.coin_in);
                open.saved.games = Some(r.games);
                open.saved.coin_out = Some(r.coin_out);
                let saved = json(&open.saved);
                self.outbox.save_session(SessionChange::Set(&saved)).await?;
            }
        }
        Ok(Some(r))
    }

    /// Closes the open session: the rest of its play, then `CardOut` with the meters.
    async fn close(&mut self, reason: CardOutReason) -> Result<(), Error> {
        if self.session.is_none() {
            return Ok(());
        }
        let reading = self.reconcile().await?;
        let Some(open) = self.session.take() else { return Ok(()) };
        self.pending = None;
        self.left = reading.as_ref().map(|r| Left { card: open.saved.card.clone(), credits: r.credits, coin_out: r.coin_out });
        let event = TerminalEvent::CardOut { session: open.saved.id.clone(), reason, meters: reading.map(|r| r.snapshot) };
        self.outbox.push_all(crate::now_ms(), &[event], SessionChange::Clear).await?;
        Ok(())
    }

    /// Whether the credits on the machine belong to a player other than `card`'s: one whose
    /// session is open now, or the one whose card came out last leaving credits on, as long as the
    /// machine has paid nothing out since (a cash-out ends the claim). Credits found with no card
    /// out since the agent started are taken for the new player's own.
    async fn credits_of_another_player(&mut self, card: &CardNumber) -> bool {
        let Some(r) = self.read_meters().await else { return false };
        if r.credits == 0 {
            return false;
        }
        match (&self.session, &self.left) {
            (Some(open), _) => open.saved.card != card.expose(),
            (None, Some(left)) => left.card != card.expose() && left.credits > 0 && r.coin_out <= left.coin_out,
            (None, None) => false,
        }
    }

    async fn read_meters(&mut self) -> Option<Reading> {
        let codes = [
            MeterCode::TOTAL_COIN_IN,
            MeterCode::TOTAL_COIN_OUT,
            MeterCode::GAMES_PLAYED,
            MeterCode::CURRENT_CREDITS,
            MeterCode::RESTRICTED_PLAYED,
        ];
        let read = tokio::time::timeout(METER_TIMEOUT, self.machine.meters(&codes)).await;
        let m = match read {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "meters not readable");
                return None;
            }
            Err(_) => {
                tracing::warn!("meters not read in time");
                return None;
            }
        };
        let raw = |c| m.get(c).map(|r| r.raw);
        let money = |c| m.get(c).and_then(|r| r.money).map(|m| m.as_decimal()).unwrap_or_default();
        Some(Reading {
            snapshot: MeterSnapshot {
                coin_in: money(MeterCode::TOTAL_COIN_IN),
                coin_out: money(MeterCode::TOTAL_COIN_OUT),
                games_played: raw(MeterCode::GAMES_PLAYED).unwrap_or(0),
                restricted_played: money(MeterCode::RESTRICTED_PLAYED),
            },
            coin_in: raw(MeterCode::TOTAL_COIN_IN)?,
            coin_out: raw(MeterCode::TOTAL_COIN_OUT).unwrap_or(0),
            games: raw(MeterCode::GAMES_PLAYED).unwrap_or(0),
            credits: raw(MeterCode::CURRENT_CREDITS).unwrap_or(0),
        })
    }
}

fn json(saved: &Saved) -> String {
    serde_json::to_string(saved).expect("session state serialises")
}
