//! Properties of the rules over many generated histories, through a tiny in-memory ledger that
//! does what the floor server's store does: keeps the entries and lots, applies every entry as
//! `lot.remaining += amount`, keeps the carry-overs, applies tier events, and answers a repeated
//! event id with its first answer.
//!
//! - a balance is the sum of its entries, no lot and no balance is ever negative, and after an
//!   expiry sweep the balance is exactly what is available;
//! - the order in which a day's events arrive does not change the day's totals;
//! - replaying an event id changes nothing, and the same event on the same state decides the same.

mod support;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use club_rules::cashback::{self, FreePlayGrant};
use club_rules::corrections::{self, Correction, CorrectionRequest};
use club_rules::earning::{self, MachinePlay, Receipt, ReceiptLine, Tender, TenderKind};
use club_rules::lots::{self, Lot, PointsLot, Quantity};
use club_rules::pricing::{self, Article, Outlet, PayWith, Ticket, TicketLine};
use club_rules::table::{self, Played, PointFraction, TableRating};
use club_rules::tiers::{self, TierEvent, TierEventKind};
use club_rules::{
    Entry, FreePlayEntry, LotId, LotRef, MachineType, Member, Money, Points, PointsEntry, Rules, RulesError, StaffId,
    Tier,
};
use proptest::prelude::*;
use support::{at, bronze, rules};

#[derive(Debug, Clone)]
enum Event {
    Play { machine: MachineType, cents: i64 },
    Receipt { drinks_cents: i64, tobacco_cents: i64, cash_percent: i64 },
    Rating { game: &'static str, minutes: u32, bet_cents: i64 },
    Cashback { points: i64 },
    BarWithPoints { cocktails: u32 },
    Correction { points: i64 },
    SendFreePlay { cents: i64 },
    FailLastTransfer,
    Sweep,
}

/// What the ledger answered an event: how many entries it wrote, or why it refused.
type Answer = Result<usize, RulesError>;

#[derive(Debug, Clone, PartialEq)]
struct Ledger {
    member: Member,
    points: Vec<PointsEntry>,
    lots: Vec<PointsLot>,
    free_play: Vec<FreePlayEntry>,
    grants: Vec<FreePlayGrant>,
    machine_carry: HashMap<MachineType, Money>,
    table_carry: PointFraction,
    last_sent: Vec<FreePlayEntry>,
    answers: BTreeMap<u64, Answer>,
    next_id: i64,
}

/// Writes entries the way the store does; a lot going negative breaks the invariant at once.
fn write<Q: Quantity, K>(
    entries: Vec<Entry<Q, K>>,
    log: &mut Vec<Entry<Q, K>>,
    lots: &mut Vec<Lot<Q>>,
    next_id: &mut i64,
) {
    for entry in entries {
        *next_id += 1;
        match entry.lot {
            LotRef::Opens { expires_at } => {
                lots.push(Lot { id: LotId(*next_id), opened_at: entry.at, expires_at, remaining: entry.amount })
            }
            LotRef::Existing(id) => {
                let lot = lots.iter_mut().find(|l| l.id == id).expect("an entry names a lot that exists");
                lot.remaining = lot.remaining + entry.amount;
                assert!(lot.remaining >= Q::default(), "lot {id:?} went negative: {:?}", lot.remaining);
            }
        }
        log.push(entry);
    }
}

fn catalogue() -> Vec<Article> {
    vec![Article {
        sku: "cocktail".to_owned(),
        category: "cocktails".to_owned(),
        price: Money::from_cents(1_000),
        points_price: Some(Points(100)),
        already_discounted: false,
        member_free: false,
    }]
}

impl Ledger {
    fn new(member: Member) -> Ledger {
        Ledger {
            member,
            points: Vec::new(),
            lots: Vec::new(),
            free_play: Vec::new(),
            grants: Vec::new(),
            machine_carry: HashMap::new(),
            table_carry: PointFraction::ZERO,
            last_sent: Vec::new(),
            answers: BTreeMap::new(),
            next_id: 0,
        }
    }

    fn write_points(&mut self, entries: Vec<PointsEntry>) -> usize {
        let n = entries.len();
        write(entries, &mut self.points, &mut self.lots, &mut self.next_id);
        n
    }

    fn write_free_play(&mut self, entries: Vec<FreePlayEntry>) -> usize {
        let n = entries.len();
        write(entries, &mut self.free_play, &mut self.grants, &mut self.next_id);
        n
    }

    fn apply_tier(&mut self, events: &[TierEvent]) {
        for event in events {
            if let TierEventKind::Promoted { to, .. } | TierEventKind::Reviewed { to, .. } = event.kind {
                self.member.tier = to;
            }
        }
    }

    fn write_earning(&mut self, earning: earning::Earning) -> usize {
        if let earning::Earning::Points { tier, .. } = &earning {
            self.apply_tier(tier);
        }
        self.write_points(earning.entries().to_vec())
    }

    /// The event once per id, as the server de-duplicates on event id.
    fn handle(&mut self, rules: &Rules, id: u64, event: &Event, now: DateTime<Utc>) -> Answer {
        if let Some(first) = self.answers.get(&id) {
            return first.clone();
        }
        let answer = self.decide(rules, event, now);
        self.answers.insert(id, answer.clone());
        answer
    }

    fn decide(&mut self, rules: &Rules, event: &Event, now: DateTime<Utc>) -> Answer {
        self.member.qualifying = tiers::qualifying_points(rules, &self.points, now)?;
        let member = self.member.clone();
        match event {
            Event::Play { machine, cents } => {
                let carry = self.machine_carry.get(machine).copied().unwrap_or(Money::ZERO);
                let play = MachinePlay { machine: *machine, wagered: Money::from_cents(*cents) };
                let decided = earning::machine_play(rules, &member, play, carry, now)?;
                self.machine_carry.insert(*machine, decided.carry);
                Ok(self.write_earning(decided.earning))
            }
            Event::Receipt { drinks_cents, tobacco_cents, cash_percent } => {
                let total = drinks_cents + tobacco_cents;
                let cash = total * cash_percent / 100;
                let receipt = Receipt {
                    outlet: Outlet::Bar,
                    lines: vec![
                        ReceiptLine { category: "cocktails".to_owned(), amount: Money::from_cents(*drinks_cents) },
                        ReceiptLine { category: "tobacco".to_owned(), amount: Money::from_cents(*tobacco_cents) },
                    ],
                    tenders: vec![
                        Tender { kind: TenderKind::Cash, amount: Money::from_cents(cash) },
                        Tender { kind: TenderKind::Card, amount: Money::from_cents(total - cash) },
                    ],
                };
                let decided = earning::receipt(rules, &member, &receipt, now)?;
                Ok(self.write_earning(decided))
            }
            Event::Rating { game, minutes, bet_cents } => {
                let rating = TableRating {
                    game: (*game).to_owned(),
                    played: Played::Minutes(*minutes),
                    average_bet: Money::from_cents(*bet_cents),
                };
                let decided = table::rate(rules, &member, &rating, self.table_carry, now)?;
                self.table_carry = decided.carry;
                Ok(self.write_earning(decided.earning))
            }
            Event::Cashback { points } => {
                let done = cashback::redeem(rules, &member, &self.lots, Points(*points), now)?;
                Ok(self.write_points(done.points) + self.write_free_play(vec![done.free_play]))
            }
            Event::BarWithPoints { cocktails } => {
                let ticket = Ticket {
                    outlet: Outlet::Bar,
                    lines: vec![TicketLine {
                        sku: "cocktail".to_owned(),
                        quantity: *cocktails,
                        pay_with: PayWith::Points,
                    }],
                    showcase_taken_today: 0,
                };
                let settled = pricing::settle(rules, &member, &catalogue(), &ticket, &[], &self.lots, now)?;
                Ok(self.write_points(settled.points) + self.write_earning(settled.earning))
            }
            Event::Correction { points } => {
                let request = CorrectionRequest { points: Points(*points), reason: "audit".to_owned(), by: StaffId(1) };
                let entries = match corrections::request(rules, &request, &self.lots, now)? {
                    Correction::Applied(entries) => entries,
                    Correction::NeedsApproval { .. } => {
                        corrections::approve(rules, &request, StaffId(2), &self.lots, now)?
                    }
                };
                Ok(self.write_points(entries))
            }
            Event::SendFreePlay { cents } => {
                let sent = cashback::send(rules, &member, &self.grants, Money::from_cents(*cents), now)?;
                self.last_sent = sent.clone();
                Ok(self.write_free_play(sent))
            }
            Event::FailLastTransfer => {
                let back = cashback::transfer_failed(rules, &std::mem::take(&mut self.last_sent), now)?;
                Ok(self.write_free_play(back))
            }
            Event::Sweep => {
                let points = lots::expire_points(rules, &self.lots, now);
                let free_play = cashback::expire(rules, &self.grants, now);
                Ok(self.write_points(points) + self.write_free_play(free_play))
            }
        }
    }

    fn balance(&self) -> Points {
        self.points.iter().fold(Points::ZERO, |sum, e| sum + e.amount)
    }

    fn free_play_balance(&self) -> Money {
        self.free_play.iter().fold(Money::ZERO, |sum, e| sum + e.amount)
    }

    fn earned(&self) -> Points {
        self.points.iter().fold(Points::ZERO, |sum, e| sum + e.qualifying())
    }
}

fn machine() -> impl Strategy<Value = MachineType> {
    prop_oneof![Just(MachineType::Slot), Just(MachineType::ElectronicRoulette), Just(MachineType::VideoPoker)]
}

fn game() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("blackjack"), Just("european_roulette"), Just("mini_baccarat"), Just("craps"), Just("poker")]
}

/// Events that earn (the events of a day at the casino).
fn earning_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (machine(), 0i64..200_000).prop_map(|(machine, cents)| Event::Play { machine, cents }),
        2 => (0i64..10_000, 0i64..3_000, 0i64..=100)
            .prop_map(|(drinks_cents, tobacco_cents, cash_percent)| Event::Receipt { drinks_cents, tobacco_cents, cash_percent }),
        2 => (game(), 1u32..300, 100i64..50_000)
            .prop_map(|(game, minutes, bet_cents)| Event::Rating { game, minutes, bet_cents }),
    ]
}

/// Any event.
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => earning_event(),
        2 => (10i64..30).prop_map(|steps| Event::Cashback { points: steps * 100 }),
        1 => (1u32..4).prop_map(|cocktails| Event::BarWithPoints { cocktails }),
        1 => (-2_000i64..2_000).prop_map(|points| Event::Correction { points }),
        1 => (1i64..5_000).prop_map(|cents| Event::SendFreePlay { cents }),
        1 => Just(Event::FailLastTransfer),
        1 => Just(Event::Sweep),
    ]
}

/// Events over about two years: (minutes since the previous event, event).
fn history() -> impl Strategy<Value = Vec<(i64, Event)>> {
    prop::collection::vec((0i64..60 * 24 * 40, event()), 1..80)
}

fn timed(history: &[(i64, Event)]) -> Vec<(u64, DateTime<Utc>, Event)> {
    let mut now = at("2024-01-01 00:00");
    let mut id = 0;
    history
        .iter()
        .map(|(gap, event)| {
            now += TimeDelta::minutes(*gap);
            id += 1;
            (id, now, event.clone())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_balance_is_the_sum_of_its_entries_and_never_negative(history in history()) {
        let rules = rules();
        let mut ledger = Ledger::new(bronze());
        for (id, now, event) in timed(&history) {
            let before = ledger.clone();
            let answer = ledger.handle(&rules, id, &event, now);
            if answer.is_err() {
                prop_assert_eq!(&ledger.points, &before.points, "a refused request writes nothing");
                prop_assert_eq!(&ledger.free_play, &before.free_play);
            }
            let in_lots = ledger.lots.iter().fold(Points::ZERO, |sum, l| sum + l.remaining);
            prop_assert_eq!(ledger.balance(), in_lots);
            prop_assert!(ledger.balance() >= Points::ZERO);
            prop_assert!(lots::available(&ledger.lots, now) <= ledger.balance());
            let in_grants = ledger.grants.iter().fold(Money::ZERO, |sum, g| sum + g.remaining);
            prop_assert_eq!(ledger.free_play_balance(), in_grants);
            prop_assert!(!ledger.free_play_balance().is_negative());
            if matches!(event, Event::Sweep) {
                prop_assert_eq!(ledger.balance(), lots::available(&ledger.lots, now), "after a sweep all is usable");
                prop_assert_eq!(ledger.free_play_balance(), lots::available(&ledger.grants, now));
            }
        }
    }

    #[test]
    fn the_order_a_days_events_arrive_in_does_not_change_the_days_totals(
        (day, arrival) in prop::collection::vec((0i64..24 * 60, earning_event()), 1..40)
            .prop_flat_map(|day| (Just(day.clone()), Just(day).prop_shuffle()))
    ) {
        let rules = rules();
        let totals = |events: &[(i64, Event)]| {
            // 9,900 qualifying points from two months ago: the day may cross Silver.
            let mut ledger = Ledger::new(bronze());
            ledger.handle(&rules, 0, &Event::Play { machine: MachineType::Slot, cents: 3_960_000 }, at("2025-01-01 20:00")).unwrap();
            let midnight = at("2025-03-01 00:00");
            for (i, (minute, event)) in events.iter().enumerate() {
                ledger.handle(&rules, i as u64 + 1, event, midnight + TimeDelta::minutes(*minute)).unwrap();
            }
            let mut carry: Vec<(&str, Money)> = ledger.machine_carry.iter().map(|(m, c)| (m.code(), *c)).collect();
            carry.sort();
            let end = at("2025-03-02 00:00");
            (ledger.earned(), ledger.balance(), carry, ledger.table_carry, ledger.member.tier,
             tiers::qualifying_points(&rules, &ledger.points, end).unwrap())
        };
        prop_assert_eq!(totals(&day), totals(&arrival));
    }

    #[test]
    fn replaying_an_event_id_changes_nothing(
        history in history(),
        replays in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..20),
    ) {
        let rules = rules();
        let events = timed(&history);
        // Each replay sends an earlier event again (same id, same content) later in the stream.
        let mut stream: Vec<(u64, DateTime<Utc>, Event)> = events.clone();
        for (which, whence) in &replays {
            let at = whence.index(stream.len()) + 1;
            let again = events[which.index(events.len())].clone();
            if again.0 <= stream[..at].iter().map(|e| e.0).max().unwrap_or(0) {
                stream.insert(at, again);
            }
        }
        let mut once = Ledger::new(bronze());
        for (id, now, event) in &events {
            let _refused_or_written = once.handle(&rules, *id, event, *now);
        }
        let mut replayed = Ledger::new(bronze());
        for (id, now, event) in &stream {
            let answer = replayed.handle(&rules, *id, event, *now);
            prop_assert_eq!(Some(&answer), once.answers.get(id), "a replay gets the first answer");
        }
        prop_assert_eq!(replayed, once);
    }

    #[test]
    fn the_same_event_on_the_same_state_decides_the_same(history in history(), next in event()) {
        let rules = rules();
        let mut ledger = Ledger::new(Member { tier: Tier::Silver, ..bronze() });
        let events = timed(&history);
        for (id, now, event) in &events {
            let _refused_or_written = ledger.handle(&rules, *id, event, *now);
        }
        let now = events.last().map(|e| e.1).unwrap() + TimeDelta::hours(1);
        let mut first = ledger.clone();
        let mut second = ledger;
        prop_assert_eq!(first.decide(&rules, &next, now), second.decide(&rules, &next, now));
        prop_assert_eq!(first, second);
    }
}
