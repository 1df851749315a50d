//! What a decision costs, per event, beside a baseline measured in the same run: the bare
//! integer arithmetic of the same earning (cents / rate) with no gate, no entry and no tier check.
//! Prints medians of 7 rounds in nanoseconds per operation.
//!
//! Run: `cargo bench -p club-rules --bench rules`

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use club_rules::earning::{self, MachinePlay, Receipt, ReceiptLine, Tender, TenderKind};
use club_rules::lots::{self, Lot, PointsLot};
use club_rules::pricing::Outlet;
use club_rules::table::{self, Played, PointFraction, TableRating};
use club_rules::{LotId, MachineType, Member, Money, Points, Rules, Standing, Tier, cashback, tiers};

const ROUNDS: usize = 7;

/// Median nanoseconds per call of `op` over `ROUNDS` rounds of `per_round` calls.
fn median_ns(per_round: u32, mut op: impl FnMut(u32)) -> u128 {
    let mut rounds: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..per_round {
                op(i);
            }
            start.elapsed().as_nanos() / u128::from(per_round)
        })
        .collect();
    rounds.sort_unstable();
    rounds[ROUNDS / 2]
}

fn report(name: &str, ns: u128, baseline: u128) {
    println!("{name:<52} {ns:>9} ns/op   {:>6}x baseline", ns / baseline.max(1));
}

fn main() {
    let rules = Rules::default();
    let now: DateTime<Utc> = "2025-03-01T20:00:00Z".parse().expect("a time");
    let member = Member { standing: Standing::clear(), tier: Tier::Silver, qualifying: Points(12_000) };
    let year_of_lots: Vec<PointsLot> = (0..365)
        .map(|d| Lot {
            id: LotId(d),
            opened_at: now - TimeDelta::days(365 - d),
            expires_at: now + TimeDelta::days(d),
            remaining: Points(10),
        })
        .collect();
    let entries: Vec<club_rules::PointsEntry> = (0..5_000)
        .map(|i| {
            let play = MachinePlay { machine: MachineType::Slot, wagered: Money::from_cents(400) };
            let at = now - TimeDelta::hours(i);
            earning::machine_play(&rules, &member, play, Money::ZERO, at).expect("valid").earning.entries()[0].clone()
        })
        .collect();

    let baseline = median_ns(1_000_000, |i| {
        let wagered = black_box(i64::from(i % 5_000) + 1);
        black_box((wagered / 400, wagered % 400));
    });
    println!("{:<52} {baseline:>9} ns/op", "baseline: integer points of a wager (cents / rate)");

    let machine = median_ns(200_000, |i| {
        let play = MachinePlay { machine: MachineType::Slot, wagered: Money::from_cents(i64::from(i % 5_000) + 1) };
        black_box(earning::machine_play(&rules, black_box(&member), play, Money::from_cents(150), now).expect("valid"));
    });
    report("machine play: gate, carry-over, entry, tier check", machine, baseline);

    let receipt = Receipt {
        outlet: Outlet::Bar,
        lines: vec![
            ReceiptLine { category: "cocktails".to_owned(), amount: Money::from_cents(2_400) },
            ReceiptLine { category: "tobacco".to_owned(), amount: Money::from_cents(550) },
        ],
        tenders: vec![
            Tender { kind: TenderKind::Cash, amount: Money::from_cents(2_000) },
            Tender { kind: TenderKind::Card, amount: Money::from_cents(950) },
        ],
    };
    let bar = median_ns(200_000, |_| {
        black_box(earning::receipt(&rules, black_box(&member), black_box(&receipt), now).expect("valid"));
    });
    report("bar receipt (2 lines, 2 tenders)", bar, baseline);

    let rating = TableRating {
        game: "blackjack".to_owned(),
        played: Played::Minutes(95),
        average_bet: Money::from_cents(2_500),
    };
    let carry = PointFraction::new("0.3".parse().expect("a decimal")).expect("a fraction");
    let table = median_ns(200_000, |_| {
        black_box(table::rate(&rules, black_box(&member), black_box(&rating), carry, now).expect("valid"));
    });
    report("table rating (blackjack)", table, baseline);

    let cash = median_ns(20_000, |_| {
        black_box(
            cashback::redeem(&rules, black_box(&member), black_box(&year_of_lots), Points(1_500), now).expect("ok"),
        );
    });
    report("cashback of 1,500 points from 365 lots", cash, baseline);

    let expiry = median_ns(20_000, |_| {
        black_box(lots::expire_points(&rules, black_box(&year_of_lots), now + TimeDelta::days(100)));
    });
    report("expiry sweep over 365 lots (100 expired)", expiry, baseline);

    let qualifying = median_ns(2_000, |_| {
        black_box(tiers::qualifying_points(&rules, black_box(&entries), now).expect("in range"));
    });
    report("qualifying points over 5,000 entries", qualifying, baseline);
}
