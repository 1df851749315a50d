//! What the player sees: the terminal's display, with the texts of each situation in one place.
//!
//! Key decision: only what a player may see reaches the screen: a refusal shows the server's
//! player text (never the reason code), card numbers are never shown. Every screen is also
//! published on a watch channel, so the demo, the tests and the latency benchmark can see the
//! display change without scraping a device. What it does not do: decide when to show what.

use club_rules::Tier;
use hardware::Display;
use rust_decimal::Decimal;
use tokio::sync::watch;

/// The terminal's display.
pub struct Screen {
    display: Box<dyn Display>,
    shown: watch::Sender<Vec<String>>,
}

impl Screen {
    pub fn new(display: Box<dyn Display>) -> Screen {
        Screen { display, shown: watch::channel(Vec::new()).0 }
    }

    /// Every screen shown from now on.
    pub fn watch(&self) -> watch::Receiver<Vec<String>> {
        self.shown.subscribe()
    }

    /// Shows lines, cut to the display's size.
    pub fn show(&mut self, lines: &[&str]) {
        let rows = self.display.size().1;
        let lines = &lines[..lines.len().min(rows)];
        if let Err(e) = self.display.show(lines) {
            tracing::warn!(error = %e, "display failed");
        }
        self.shown.send_replace(lines.iter().map(|l| (*l).to_owned()).collect());
    }

    pub fn idle(&mut self) {
        self.show(&["Insert your card"]);
    }

    pub fn wait(&mut self) {
        self.show(&["One moment..."]);
    }

    pub fn welcome(&mut self, name: &str, tier: Tier, points: i64, free_play: Decimal) {
        let hello = format!("Welcome {name}");
        let tier = format!("{tier:?} {points} pts");
        let fp = format!("Free play EUR {free_play}");
        self.show(&[&hello, &tier, &fp]);
    }

    pub fn refused(&mut self, text: &str) {
        self.show(&["Card not accepted", text]);
    }

    pub fn offline(&mut self) {
        self.show(&["Club system offline", "Your play will be", "credited later"]);
    }

    pub fn goodbye(&mut self) {
        self.show(&["Thank you", "Insert your card"]);
    }
}
