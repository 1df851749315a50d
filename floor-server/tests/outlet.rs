//! Outlet tickets on SQLite and on PostgreSQL (`sqlite::…`, `postgres::…`): pricing, settling with
//! points and cash, the showcase limit, voids and refunds, replays and bad input, with exact
//! balances, lots and ledger entries.

// Amounts in cents are written EUR_cents (4_50 is EUR 4.50).
#![allow(clippy::inconsistent_digit_grouping)]

use club_rules::earning::{Tender, TenderKind};
use club_rules::pricing::{Outlet, PayWith};
use club_rules::{MachineType, Money, Points, RefusalCode, Rules, RulesError};
use floor_server::catalogue::{self, Article};
use floor_server::ledger::outlet::{self, ReversalKind, Sale, SaleLine};
use floor_server::ledger::{self};
use floor_server::store::{Backend, Store};
use floor_server::terminals::{self, TerminalKind, TerminalSpec};
use floor_server::testing::TestDb;

mod common;
use common::{DAY, SEED, T0, at, exclude, member, play, points_balance as balance, scalar};
const BAR: &str = "BAR-1";

floor_server::on_both_backends!(
    a_gold_member_drinks_free_coffee_and_earns_on_the_beers_only,
    a_dinner_paid_with_points_spends_the_oldest_lots_at_30_percent_off_and_a_refund_puts_them_back,
    a_second_showcase_article_the_same_day_is_refused,
    a_void_takes_back_the_points_the_cash_earned_once,
    a_replayed_settle_changes_nothing_and_other_content_under_the_same_number_is_a_conflict,
    bad_tickets_are_refused_and_write_nothing,
    an_excluded_member_cannot_pay_with_points_and_earns_nothing,
    catalogue_changes_are_audited_and_inactive_articles_cannot_be_sold,
);

fn article(sku: &str, category: &str, points: Option<i64>, showcase: bool, discounted: bool) -> Article {
    Article {
        sku: sku.into(),
        name: sku.to_lowercase(),
        category: category.into(),
        points_price: points,
        showcase,
        member_free: false,
        already_discounted: discounted,
        active: true,
    }
}

/// A Gold member with 200 points earned on day 0 and 1,000 on day 1 (two lots), an outlet
/// catalogue and a bar terminal: (store, rules, member id, person id).
async fn floor(backend: Backend) -> Option<(TestDb, Store, Rules, i64, i64)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    let rules = Rules::default();
    let (person, member, card) = member(&store, "Ana", "CARDANA").await;
    for (cents, ms) in [(800_00, T0), (4_000_00, T0 + DAY)] {
        play(&store, &rules, member, card, MachineType::Slot, cents, ms).await;
    }
    sqlx::query("UPDATE members SET tier = 'gold' WHERE id = $1").bind(member).execute(store.read()).await.unwrap();
    let articles = vec![
        article("ESPRESSO", "coffee", None, false, false),
        article("BEER-BTL", "beer", Some(45), false, false),
        article("CIG-PACK", "tobacco", None, false, true),
        article("DINNER", "food", Some(450), false, false),
        article("CARDS-DECK", "showcase", Some(300), true, false),
        article("PEN", "showcase", Some(2_500), true, false),
    ];
    catalogue::upsert(&store, &articles, &SEED, T0).await.unwrap();
    terminals::enrol(&store, &TerminalSpec { id: BAR.into(), kind: TerminalKind::Bar, machine_type: None, location: String::new() }, &SEED, T0)
        .await
        .unwrap();
    Some((db, store, rules, member, person))
}

fn line(sku: &str, quantity: u32, cents: i64, pay_with: PayWith) -> SaleLine {
    SaleLine { sku: sku.into(), quantity, unit_price: Money::from_cents(cents), already_discounted: false, pay_with }
}

fn sale(ticket: &str, outlet: Outlet, lines: Vec<SaleLine>) -> Sale {
    Sale { terminal: BAR.into(), ticket: ticket.into(), card: "CARDANA".into(), outlet, lines }
}

fn cash(cents: i64) -> Vec<Tender> {
    vec![Tender { kind: TenderKind::Cash, amount: Money::from_cents(cents) }]
}

/// Each lot's remaining points, oldest first.
async fn lots(store: &Store, member: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT remaining FROM points_lots WHERE member_id = $1 ORDER BY opened_at, lot_id")
        .bind(member)
        .fetch_all(store.read())
        .await
        .unwrap()
}

async fn qualifying(store: &Store, member: i64) -> i64 {
    scalar(store, "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM points_ledger WHERE member_id = $1 AND kind = 'earned'", member).await
}

async fn a_gold_member_drinks_free_coffee_and_earns_on_the_beers_only(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    let coffee = sale("T-1", Outlet::Bar, vec![line("ESPRESSO", 1, 2_00, PayWith::Money)]);
    let priced = outlet::price(&store, &rules, &coffee, now).await.unwrap().unwrap();
    assert_eq!((priced.ticket.money_due, priced.ticket.lines[0].free_drink), (Money::ZERO, true));
    assert_eq!(priced.points_available, Points(1_200));
    let settled = outlet::settle(&store, &rules, &coffee, &[], Points::ZERO, now).await.unwrap().unwrap();
    assert_eq!((settled.points_spent, settled.points_earned), (Points::ZERO, Points::ZERO));

    // Two beers at EUR 4.50 less 30 % = 6.30; cigarettes carry no discount and earn nothing.
    let beers = sale("T-2", Outlet::Bar, vec![line("BEER-BTL", 2, 4_50, PayWith::Money), line("CIG-PACK", 1, 5_50, PayWith::Money)]);
    let priced = outlet::price(&store, &rules, &beers, now).await.unwrap().unwrap();
    let lines: Vec<(u32, Money)> = priced.ticket.lines.iter().map(|l| (l.discount_percent, l.money)).collect();
    assert_eq!(lines, vec![(30, Money::from_cents(6_30)), (0, Money::from_cents(5_50))]);
    assert_eq!(priced.ticket.money_due, Money::from_cents(11_80));
    let settled = outlet::settle(&store, &rules, &beers, &cash(11_80), Points::ZERO, now).await.unwrap().unwrap();
    // EUR 6.30 of beer earns 1 point (all EUR 11.80 would have earned 2).
    assert_eq!(settled.points_earned, Points(1));
    assert_eq!(settled.points_balance, Points(1_201));
    assert_eq!(balance(&store, member).await, 1_201);
    let version: String =
        sqlx::query_scalar("SELECT rule_version FROM points_ledger WHERE source_key = 'receipt:BAR-1:T-2:0'").fetch_one(store.read()).await.unwrap();
    assert_eq!(version, rules.version().as_str());
    // The same ticket arriving later as an offline Purchase event earns nothing again.
    let mut tx = store.begin().await.unwrap();
    let receipt = club_rules::earning::Receipt {
        outlet: Outlet::Bar,
        lines: vec![club_rules::earning::ReceiptLine { category: "beer".into(), amount: Money::from_cents(6_30) }],
        tenders: cash(6_30),
    };
    let again = ledger::apply_receipt(&mut tx, &rules, member, None, &receipt, now, None, &outlet::receipt_key(BAR, "T-2")).await.unwrap();
    tx.commit().await.unwrap();
    assert!(again.is_none(), "the receipt key is shared with the Purchase event");
    assert_eq!(balance(&store, member).await, 1_201);
}

async fn a_dinner_paid_with_points_spends_the_oldest_lots_at_30_percent_off_and_a_refund_puts_them_back(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    assert_eq!(lots(&store, member).await, vec![200, 1_000]);
    let dinner = sale("D-1", Outlet::Restaurant, vec![line("DINNER", 1, 45_00, PayWith::Points)]);
    let settled = outlet::settle(&store, &rules, &dinner, &[], Points(315), now).await.unwrap().unwrap();
    assert_eq!((settled.points_spent, settled.points_earned, settled.points_balance), (Points(315), Points::ZERO, Points(885)));
    assert_eq!(lots(&store, member).await, vec![0, 885], "the oldest lot first");
    let refund = outlet::reverse(&store, &rules, BAR, "D-1", ReversalKind::Refund, at(T0 + 3 * DAY)).await.unwrap().unwrap();
    assert_eq!((refund.points_returned, refund.points_taken_back, refund.points_balance), (Points(315), Points::ZERO, Points(1_200)));
    assert_eq!(lots(&store, member).await, vec![200, 1_000], "back into the lots they came from");
    let again = outlet::reverse(&store, &rules, BAR, "D-1", ReversalKind::Refund, at(T0 + 3 * DAY)).await.unwrap().unwrap();
    assert!(again.repeated);
    assert_eq!(balance(&store, member).await, 1_200);
    assert_eq!(qualifying(&store, member).await, 1_200, "spending and refunding does not touch the qualifying points");
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action IN ('outlet.settle', 'outlet.refund') AND subject = 'ticket:BAR-1:D-1'")
        .fetch_one(store.read())
        .await
        .unwrap();
    assert_eq!(audited, 2);
    // Too few points: refused whole.
    let feast = sale("D-2", Outlet::Restaurant, vec![line("DINNER", 4, 45_00, PayWith::Points)]);
    let refused = outlet::settle(&store, &rules, &feast, &[], Points(1_260), now).await.unwrap();
    assert!(matches!(refused, Err(RulesError::InsufficientPoints { .. })), "{refused:?}");
    assert_eq!(balance(&store, member).await, 1_200);
}

async fn a_second_showcase_article_the_same_day_is_refused(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    let deck = sale("S-1", Outlet::Showcase, vec![line("CARDS-DECK", 1, 0, PayWith::Points)]);
    let settled = outlet::settle(&store, &rules, &deck, &[], Points(210), now).await.unwrap().unwrap();
    assert_eq!(settled.points_balance, Points(990));
    let pen = sale("S-2", Outlet::Showcase, vec![line("CARDS-DECK", 1, 0, PayWith::Points)]);
    let refused = outlet::settle(&store, &rules, &pen, &[], Points(210), at(T0 + 2 * DAY + 3_600_000)).await.unwrap();
    assert!(matches!(refused, Err(RulesError::ShowcaseLimit { limit: 1, already: 1, asked: 1 })), "{refused:?}");
    assert_eq!(balance(&store, member).await, 990);
    // 05:13 the next morning in Ljubljana is still the same gaming day (it starts at 06:00).
    let early = outlet::settle(&store, &rules, &pen, &[], Points(210), at(T0 + 2 * DAY + 13 * 3_600_000)).await.unwrap();
    assert!(matches!(early, Err(RulesError::ShowcaseLimit { .. })), "{early:?}");
    // The next day, one more.
    outlet::settle(&store, &rules, &pen, &[], Points(210), at(T0 + 3 * DAY)).await.unwrap().unwrap();
    assert_eq!(balance(&store, member).await, 780);
    // A showcase article on a bar ticket is not a way around the limit.
    let sneaky = sale("S-3", Outlet::Bar, vec![line("CARDS-DECK", 1, 0, PayWith::Points)]);
    assert!(outlet::settle(&store, &rules, &sneaky, &[], Points(210), at(T0 + 3 * DAY)).await.is_err());
}

async fn a_void_takes_back_the_points_the_cash_earned_once(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    // 10 beers: EUR 31.50 cash earns 7 points.
    let round = sale("R-1", Outlet::Bar, vec![line("BEER-BTL", 10, 4_50, PayWith::Money)]);
    let settled = outlet::settle(&store, &rules, &round, &cash(31_50), Points::ZERO, now).await.unwrap().unwrap();
    assert_eq!(settled.points_earned, Points(7));
    assert_eq!((balance(&store, member).await, qualifying(&store, member).await), (1_207, 1_207));
    let void = outlet::reverse(&store, &rules, BAR, "R-1", ReversalKind::Void, now).await.unwrap().unwrap();
    assert_eq!((void.points_returned, void.points_taken_back, void.points_balance), (Points::ZERO, Points(7), Points(1_200)));
    assert_eq!((balance(&store, member).await, qualifying(&store, member).await), (1_200, 1_200));
    let again = outlet::reverse(&store, &rules, BAR, "R-1", ReversalKind::Refund, now).await.unwrap().unwrap();
    assert!(again.repeated && again.reversal == ReversalKind::Void);
    assert_eq!(balance(&store, member).await, 1_200);
    // An unknown ticket is not found.
    assert!(matches!(
        outlet::reverse(&store, &rules, BAR, "NOPE", ReversalKind::Void, now).await,
        Err(floor_server::Error::NotFound(_))
    ));
}

async fn a_replayed_settle_changes_nothing_and_other_content_under_the_same_number_is_a_conflict(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    let mixed = sale("M-1", Outlet::Bar, vec![line("BEER-BTL", 4, 4_50, PayWith::Money), line("BEER-BTL", 1, 4_50, PayWith::Points)]);
    let first = outlet::settle(&store, &rules, &mixed, &cash(12_60), Points(32), now).await.unwrap().unwrap();
    assert_eq!((first.points_spent, first.points_earned, first.points_balance), (Points(32), Points(3), Points(1_171)));
    let again = outlet::settle(&store, &rules, &mixed, &cash(12_60), Points(32), now).await.unwrap().unwrap();
    assert_eq!(again, outlet::Settled { repeated: true, ..first });
    assert_eq!(balance(&store, member).await, 1_171);
    let other = sale("M-1", Outlet::Bar, vec![line("BEER-BTL", 1, 4_50, PayWith::Money)]);
    assert!(matches!(outlet::settle(&store, &rules, &other, &cash(3_15), Points::ZERO, now).await, Err(floor_server::Error::Conflict(_))));
    assert_eq!(balance(&store, member).await, 1_171);
}

async fn bad_tickets_are_refused_and_write_nothing(backend: Backend) {
    let Some((_db, store, rules, member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    let beer = |ticket: &str| sale(ticket, Outlet::Bar, vec![line("BEER-BTL", 2, 4_50, PayWith::Money)]);
    let cases: Vec<(&str, Sale, Vec<Tender>, Points)> = vec![
        ("tenders short", beer("B-1"), cash(6_00), Points::ZERO),
        ("tenders over", beer("B-2"), cash(7_00), Points::ZERO),
        ("points not due", beer("B-3"), cash(6_30), Points(5)),
        ("unknown sku", sale("B-4", Outlet::Bar, vec![line("CAVIAR", 1, 90_00, PayWith::Money)]), cash(90_00), Points::ZERO),
        ("zero quantity", sale("B-5", Outlet::Bar, vec![line("BEER-BTL", 0, 4_50, PayWith::Money)]), cash(0), Points::ZERO),
        ("bad ticket number", beer("B 6;"), cash(6_30), Points::ZERO),
        ("not for points", sale("B-7", Outlet::Bar, vec![line("CIG-PACK", 1, 5_50, PayWith::Points)]), vec![], Points(1)),
        ("empty", sale("B-8", Outlet::Bar, vec![]), vec![], Points::ZERO),
    ];
    for (name, s, tenders, points) in cases {
        let got = outlet::settle(&store, &rules, &s, &tenders, points, now).await;
        assert!(!matches!(got, Ok(Ok(_))), "{name}: {got:?}");
    }
    let tickets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outlet_tickets").fetch_one(store.read()).await.unwrap();
    assert_eq!((tickets, balance(&store, member).await), (0, 1_200));
}

async fn an_excluded_member_cannot_pay_with_points_and_earns_nothing(backend: Backend) {
    let Some((_db, store, rules, member, person)) = floor(backend).await else { return };
    let now = T0 + 2 * DAY;
    exclude(&store, person, now - 1, None).await;
    let dinner = sale("X-1", Outlet::Restaurant, vec![line("DINNER", 1, 45_00, PayWith::Points)]);
    let refused = outlet::settle(&store, &rules, &dinner, &[], Points(450), at(now)).await.unwrap();
    assert_eq!(refused.unwrap_err(), RulesError::Refused(RefusalCode::SelfExcluded));
    // Cash at list price (no member benefits), recorded with the reason no points were given.
    let beers = sale("X-2", Outlet::Bar, vec![line("BEER-BTL", 2, 4_50, PayWith::Money)]);
    let settled = outlet::settle(&store, &rules, &beers, &cash(9_00), Points::ZERO, at(now)).await.unwrap().unwrap();
    assert_eq!((settled.priced.money_due, settled.points_earned), (Money::from_cents(9_00), Points::ZERO));
    let reason: String = sqlx::query_scalar("SELECT reason FROM points_ledger WHERE source_key = 'receipt:BAR-1:X-2:0'")
        .fetch_one(store.read())
        .await
        .unwrap();
    assert_eq!(reason, "refused:self_excluded");
    assert_eq!(balance(&store, member).await, 1_200);
}

async fn catalogue_changes_are_audited_and_inactive_articles_cannot_be_sold(backend: Backend) {
    let Some((_db, store, rules, _member, _)) = floor(backend).await else { return };
    let now = at(T0 + 2 * DAY);
    assert_eq!(catalogue::active(&store).await.unwrap().len(), 6);
    // Importing the same articles again changes nothing; a new point price is one change.
    let csv = "sku,name,category,points_price,showcase,member_free,already_discounted,active\n\
               DINNER,dinner,food,500,false,false,false,true\nESPRESSO,espresso,coffee,,false,false,false,true\n";
    let parsed = catalogue::parse_csv(csv).unwrap();
    assert_eq!(catalogue::upsert(&store, &parsed, &SEED, T0).await.unwrap(), 1);
    catalogue::set_active(&store, "BEER-BTL", false, &SEED, T0).await.unwrap();
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'catalogue.%'").fetch_one(store.read()).await.unwrap();
    assert_eq!(audited, 6 + 1 + 1);
    let beer = sale("C-1", Outlet::Bar, vec![line("BEER-BTL", 1, 4_50, PayWith::Money)]);
    let got = outlet::price(&store, &rules, &beer, now).await.unwrap();
    assert_eq!(got.unwrap_err(), RulesError::UnknownArticle("BEER-BTL".into()));
    let dinner = sale("C-2", Outlet::Restaurant, vec![line("DINNER", 1, 45_00, PayWith::Points)]);
    assert_eq!(outlet::price(&store, &rules, &dinner, now).await.unwrap().unwrap().ticket.points_due, Points(350));
    // Bad files are refused with the article named.
    assert!(catalogue::parse_csv("sku,name,category,points_price\nX,x,food,abc\n").is_err());
    let bad = catalogue::upsert(&store, &[article("WATCH", "showcase", None, true, false)], &SEED, T0).await;
    assert!(matches!(bad, Err(floor_server::Error::Invalid(m)) if m.contains("WATCH")));
}
