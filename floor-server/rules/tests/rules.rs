//! RULES.md section 1, rule by rule: one `check` helper per rule, one named row per case, in the
//! order of RULES.md. Where a row's numbers are computed, the arithmetic is written beside it.

mod support;

use club_rules::earning::{self, Earning, MachinePlay, NoPointsReason, Receipt, ReceiptLine, Tender, TenderKind};
use club_rules::gate::{Exclusion, ExclusionKind};
use club_rules::ledger::{EarnSource, FreePlayKind, LotRef, PointsKind, RedeemFor};
use club_rules::lots::{self, Lot};
use club_rules::pricing::{self, Article, Outlet, PayWith, Ticket, TicketLine};
use club_rules::table::{self, Played, PointFraction, RatingFlag, TableRating};
use club_rules::tiers::{self, Reviewer, TierEventKind};
use club_rules::{
    CardState, LotId, MachineType, Member, MemberState, Money, Points, RefusalCode, Rules, RulesConfig, RulesError,
    StaffId, Standing, Tier,
};
use support::{at, bronze, day, eur, excluded, lot, member, register_entry, rules, rules_with};

/// The points entries as (lot, amount) pairs, for short expectations.
fn draws(entries: &[club_rules::PointsEntry]) -> Vec<(i64, i64)> {
    entries
        .iter()
        .map(|e| match e.lot {
            LotRef::Existing(LotId(id)) => (id, e.amount.0),
            LotRef::Opens { .. } => (0, e.amount.0),
        })
        .collect()
}

mod configuration {
    use super::*;

    #[track_caller]
    fn check_refused(toml: &str, says: &str) {
        let err = Rules::from_toml_str(toml).expect_err("configuration should be refused");
        let text = err.to_string();
        assert!(text.contains(says), "error `{text}` should say `{says}`");
    }

    #[test]
    fn sample_rules_toml_is_exactly_the_defaults() {
        let sample = include_str!("../rules.toml");
        assert_eq!(RulesConfig::from_toml_str(sample).unwrap(), RulesConfig::default());
        assert_eq!(Rules::from_toml_str(sample).unwrap().version(), Rules::default().version());
    }

    #[test]
    fn an_empty_file_is_rules_md() {
        assert_eq!(Rules::from_toml_str("").unwrap(), Rules::default());
    }

    #[test]
    fn version_is_the_label_and_a_content_hash_stable_across_builds() {
        // Changes only when the defaults change: then this expectation must change with them.
        assert_eq!(Rules::default().version().as_str(), "rules-md+f885b954a5722148");
    }

    #[test]
    fn changing_a_value_under_the_same_label_changes_the_version() {
        let changed = rules_with("[earning]\nslot = \"5.00\"");
        assert_ne!(changed.version(), Rules::default().version());
        assert!(changed.version().as_str().starts_with("rules-md+"));
    }

    #[test]
    fn the_label_is_the_operators() {
        let labelled = rules_with("version = \"2025-spring\"");
        assert!(labelled.version().as_str().starts_with("2025-spring+"));
        let hash = |r: &Rules| r.version().as_str().split('+').nth(1).unwrap().to_owned();
        assert_eq!(hash(&labelled), hash(&Rules::default()), "same content, same hash");
    }

    #[test]
    fn money_written_as_a_float_is_refused() {
        check_refused("[earning]\nslot = 4.00", "written as a string");
    }

    #[test]
    fn a_fraction_of_a_cent_is_refused() {
        check_refused("[earning]\nslot = \"4.001\"", "whole cents");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        check_refused("[earning]\nslots = \"4.00\"", "unknown field `slots`");
    }

    #[test]
    fn a_tier_left_out_of_a_per_tier_table_is_refused() {
        check_refused("[discounts]\nbronze = 0\nsilver = 20\ngold = 30\nvip_exclusive = 50", "chairman");
    }

    #[test]
    fn a_zero_earning_rate_is_refused() {
        check_refused("[earning]\nbar_cash = \"0.00\"", "`earning.bar_cash` must be more than EUR 0.00");
    }

    #[test]
    fn an_absurd_rate_is_refused() {
        check_refused("[earning]\nslot = \"10000000000000.00\"", "`earning.slot` must be from EUR 0.00");
    }

    #[test]
    fn gold_not_above_silver_is_refused() {
        check_refused("[tiers]\ngold = 10000", "`tiers.gold` must be more than tiers.silver");
    }

    #[test]
    fn a_discount_above_100_percent_is_refused() {
        check_refused(
            "[discounts]\nbronze = 0\nsilver = 20\ngold = 30\nvip_exclusive = 50\nchairman = 170",
            "`discounts.chairman` must be 0 to 100",
        );
    }

    #[test]
    fn a_cashback_minimum_off_the_step_is_refused() {
        check_refused("[cashback]\nminimum_points = 1050", "`cashback.minimum_points` must be a whole number");
    }

    #[test]
    fn a_house_edge_of_100_percent_is_refused() {
        check_refused(
            "[tables.blackjack]\nrated_by = \"theoretical_win\"\ndecisions_per_hour = 63\nhouse_edge_percent = \"100\"\n\
             points_per_eur = \"3\"\nmin_average_bet = \"1.00\"\nmax_average_bet = \"5000.00\"\nmax_minutes = 720",
            "`tables.blackjack.house_edge_percent` must be between 0 and 100",
        );
    }

    #[test]
    fn a_table_game_rated_by_an_unknown_method_is_refused() {
        check_refused("[tables.poker]\nrated_by = \"mood\"\npoints_per_hour = \"12\"\nmax_minutes = 720", "mood");
    }

    #[test]
    fn every_decision_records_the_rule_version_that_made_it() {
        for rules in [rules(), rules_with("[earning]\nslot = \"5.00\"")] {
            let play = MachinePlay { machine: MachineType::Slot, wagered: eur("100.00") };
            let decided =
                earning::machine_play(&rules, &member(Tier::Bronze, 9_990), play, Money::ZERO, at("2025-03-01 10:00"))
                    .unwrap();
            let Earning::Points { entry, tier } = decided.earning else { panic!("points expected") };
            assert_eq!(&entry.rule_version, rules.version());
            assert!(tier.iter().all(|e| &e.rule_version == rules.version()));
        }
    }
}

mod calendar {
    //! What "a day" means: the casino's local date (anniversaries) and its gaming day (limits per
    //! day), in the casino's time zone (RULES.md 1; the zone and the day's start are our choice,
    //! configurable).
    use super::*;

    #[track_caller]
    fn check(rules: &Rules, utc: &str, local_date: &str, gaming_day: &str) {
        let c = rules.config().calendar;
        assert_eq!(c.local_date(at(utc)).to_string(), local_date, "local date at {utc} UTC");
        assert_eq!(c.gaming_day(at(utc)).to_string(), gaming_day, "gaming day at {utc} UTC");
    }

    #[test]
    fn half_past_midnight_in_ljubljana_in_winter_is_already_the_next_date() {
        // 23:30 UTC is 00:30 CET: the new date, but still the gaming day that started at 06:00.
        check(&rules(), "2026-03-09 23:30", "2026-03-10", "2026-03-09");
    }

    #[test]
    fn the_gaming_day_starts_at_six_local_time_in_summer() {
        // CEST is UTC+2: 03:59 UTC is 05:59 local (yesterday's gaming day), 04:00 UTC is 06:00.
        check(&rules(), "2026-07-11 03:59", "2026-07-11", "2026-07-10");
        check(&rules(), "2026-07-11 04:00", "2026-07-11", "2026-07-11");
    }

    #[test]
    fn the_time_zone_and_the_days_start_are_configurable() {
        let london = rules_with("[calendar]\ntime_zone = \"Europe/London\"\ngaming_day_starts_at_hour = 0");
        check(&london, "2026-03-09 23:30", "2026-03-09", "2026-03-09");
    }

    #[test]
    fn an_unknown_time_zone_or_an_hour_past_23_is_refused() {
        assert!(Rules::from_toml_str("[calendar]\ntime_zone = \"Europe/Atlantis\"").is_err());
        let err = Rules::from_toml_str("[calendar]\ngaming_day_starts_at_hour = 24").unwrap_err();
        assert!(err.to_string().contains("`calendar.gaming_day_starts_at_hour` must be 0 to 23"), "{err}");
    }

    #[test]
    fn an_anniversary_is_due_on_the_casinos_local_date() {
        // Joined at 00:30 CET on 10 March 2025 (23:30 UTC on the 9th): the anniversary is 10 March.
        let c = rules().config().calendar;
        let joined_on = c.local_date(at("2025-03-09 23:30"));
        let at_2330_utc = c.local_date(at("2026-03-09 23:30"));
        assert_eq!(tiers::review_due(joined_on, None, at_2330_utc).map(|d| d.to_string()).as_deref(), Some("2026-03-10"));
        let an_hour_earlier = c.local_date(at("2026-03-09 22:30"));
        assert_eq!(tiers::review_due(joined_on, None, an_hour_earlier), None, "by the UTC date it would not be due yet");
    }
}

mod membership {
    use club_rules::membership::{Applicant, JoinRefusal, may_join};

    use super::*;

    fn adult() -> Applicant {
        Applicant { born_on: day("1990-06-15"), exclusions: Vec::new(), employee: false }
    }

    #[track_caller]
    fn check_join(applicant: Applicant, today: &str, expected: Result<(), JoinRefusal>) {
        let now = at(&format!("{today} 12:00"));
        let got = may_join(&applicant, day(today), now).map_err(|e| match e {
            RulesError::CannotJoin(why) => why,
            other => panic!("unexpected error {other}"),
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn an_adult_may_join() {
        check_join(adult(), "2025-03-01", Ok(()));
    }

    #[test]
    fn a_person_may_join_on_their_18th_birthday() {
        check_join(Applicant { born_on: day("2007-03-01"), ..adult() }, "2025-03-01", Ok(()));
    }

    #[test]
    fn a_person_may_not_join_the_day_before_their_18th_birthday() {
        check_join(Applicant { born_on: day("2007-03-02"), ..adult() }, "2025-03-01", Err(JoinRefusal::UnderAge));
    }

    #[test]
    fn a_person_born_on_29_february_comes_of_age_on_1_march() {
        let leapling = Applicant { born_on: day("2008-02-29"), ..adult() };
        check_join(leapling.clone(), "2026-02-28", Err(JoinRefusal::UnderAge));
        check_join(leapling, "2026-03-01", Ok(()));
    }

    #[test]
    fn a_person_on_the_self_exclusion_register_may_not_join() {
        check_join(
            Applicant { exclusions: vec![register_entry()], ..adult() },
            "2025-03-01",
            Err(JoinRefusal::SelfExcluded),
        );
    }

    #[test]
    fn a_person_with_a_current_ban_may_not_join() {
        let ban =
            Exclusion { kind: ExclusionKind::Ban, from: at("2025-01-01 00:00"), until: Some(at("2026-01-01 00:00")) };
        check_join(Applicant { exclusions: vec![ban], ..adult() }, "2025-03-01", Err(JoinRefusal::Banned));
    }

    #[test]
    fn a_person_whose_ban_ended_may_join() {
        let ban =
            Exclusion { kind: ExclusionKind::Ban, from: at("2024-01-01 00:00"), until: Some(at("2025-01-01 00:00")) };
        check_join(Applicant { exclusions: vec![ban], ..adult() }, "2025-03-01", Ok(()));
    }

    #[test]
    fn an_employee_of_the_operator_or_a_partner_may_not_join() {
        check_join(Applicant { employee: true, ..adult() }, "2025-03-01", Err(JoinRefusal::Employee));
    }
}

mod exclusion_gate {
    use super::*;

    const NOW: &str = "2025-03-01 12:00";

    #[track_caller]
    fn check_gate(standing: Standing, expected: Result<(), RefusalCode>) {
        assert_eq!(standing.check(at(NOW)), expected);
    }

    fn with_card(card: CardState) -> Standing {
        Standing { card: Some(card), ..Standing::clear() }
    }

    fn in_state(state: MemberState) -> Standing {
        Standing { member: state, ..Standing::clear() }
    }

    fn with_exclusion(kind: ExclusionKind, from: &str, until: Option<&str>) -> Standing {
        excluded(kind, from, until).standing
    }

    #[test]
    fn an_active_member_with_an_active_card_may_earn_and_redeem() {
        check_gate(Standing::clear(), Ok(()));
    }

    #[test]
    fn a_card_is_usable_only_once_reception_activates_it() {
        check_gate(with_card(CardState::Issued), Err(RefusalCode::CardNotActivated));
    }

    #[test]
    fn a_member_identified_at_a_desk_without_a_card_may_redeem() {
        check_gate(Standing { card: None, ..Standing::clear() }, Ok(()));
    }

    #[test]
    fn a_person_on_the_national_self_exclusion_register_is_refused() {
        check_gate(
            Standing { exclusions: vec![register_entry()], ..Standing::clear() },
            Err(RefusalCode::SelfExcluded),
        );
    }

    #[test]
    fn a_members_own_self_exclusion_in_force_is_refused() {
        check_gate(with_exclusion(ExclusionKind::OwnRequest, "2025-02-01 00:00", None), Err(RefusalCode::SelfExcluded));
    }

    #[test]
    fn a_self_excluded_member_state_is_refused() {
        check_gate(in_state(MemberState::SelfExcluded), Err(RefusalCode::SelfExcluded));
    }

    #[test]
    fn a_ban_in_force_is_refused() {
        check_gate(
            with_exclusion(ExclusionKind::Ban, "2025-02-01 00:00", Some("2025-04-01 00:00")),
            Err(RefusalCode::Banned),
        );
    }

    #[test]
    fn a_self_excluded_and_banned_person_is_refused_as_self_excluded() {
        let mut standing = with_exclusion(ExclusionKind::Ban, "2025-02-01 00:00", None);
        standing.exclusions.push(register_entry());
        check_gate(standing, Err(RefusalCode::SelfExcluded));
    }

    #[test]
    fn exclusion_kinds_have_their_storage_codes() {
        for kind in ExclusionKind::ALL {
            assert_eq!(ExclusionKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(ExclusionKind::OwnRequest.code(), "own_request");
    }

    #[test]
    fn a_banned_member_state_is_refused() {
        check_gate(in_state(MemberState::Banned), Err(RefusalCode::Banned));
    }

    #[test]
    fn a_ban_that_has_ended_no_longer_refuses() {
        check_gate(with_exclusion(ExclusionKind::Ban, "2025-01-01 00:00", Some("2025-03-01 12:00")), Ok(()));
    }

    #[test]
    fn a_ban_that_has_not_begun_does_not_refuse_yet() {
        check_gate(with_exclusion(ExclusionKind::Ban, "2025-03-02 00:00", None), Ok(()));
    }

    #[test]
    fn a_card_reported_lost_is_refused() {
        check_gate(with_card(CardState::BlockedLost), Err(RefusalCode::CardBlocked));
    }

    #[test]
    fn a_card_reported_stolen_is_refused() {
        check_gate(with_card(CardState::BlockedStolen), Err(RefusalCode::CardBlocked));
    }

    #[test]
    fn a_replaced_card_is_refused() {
        check_gate(with_card(CardState::Replaced), Err(RefusalCode::CardReplaced));
    }

    #[test]
    fn a_revoked_card_is_refused() {
        check_gate(with_card(CardState::Revoked), Err(RefusalCode::CardRevoked));
    }

    #[test]
    fn a_member_who_left_is_refused() {
        check_gate(in_state(MemberState::Left), Err(RefusalCode::MembershipEnded));
    }

    #[test]
    fn a_terminated_member_is_refused() {
        check_gate(in_state(MemberState::Terminated), Err(RefusalCode::MembershipEnded));
    }

    #[test]
    fn the_person_is_refused_before_the_card() {
        let standing = Standing { card: Some(CardState::BlockedLost), ..in_state(MemberState::Banned) };
        check_gate(standing, Err(RefusalCode::Banned));
    }

    #[track_caller]
    fn check_spend_after_exclusion(lots: &[Lot<Points>], points: i64, expected: Result<Vec<(i64, i64)>, RulesError>) {
        let member = excluded(ExclusionKind::OwnRequest, "2024-06-01 00:00", Some("2025-01-01 00:00"));
        let got = lots::spend(&rules(), &member, lots, Points(points), RedeemFor::Cashback, at(NOW));
        assert_eq!(got.map(|e| draws(&e)), expected);
    }

    #[test]
    fn after_an_exclusion_ends_points_still_valid_can_be_used() {
        check_spend_after_exclusion(&[lot(1, "2024-05-01 10:00", 500)], 500, Ok(vec![(1, -500)]));
    }

    #[test]
    fn points_that_expired_during_an_exclusion_cannot_be_used() {
        check_spend_after_exclusion(
            &[lot(1, "2024-02-01 10:00", 300), lot(2, "2024-05-01 10:00", 500)],
            600,
            Err(RulesError::InsufficientPoints { wanted: Points(600), available: Points(500) }),
        );
    }

    #[test]
    fn an_excluded_member_cannot_redeem() {
        let member = excluded(ExclusionKind::Ban, "2025-02-01 00:00", None);
        let got = lots::spend(
            &rules(),
            &member,
            &[lot(1, "2025-01-01 10:00", 500)],
            Points(100),
            RedeemFor::Cashback,
            at(NOW),
        );
        assert_eq!(got, Err(RulesError::Refused(RefusalCode::Banned)));
    }
}

mod machine_earning {
    use super::*;

    const NOW: &str = "2025-03-01 21:00";

    /// Plays `wagers` in order from an empty carry-over; the total points and the carry left.
    #[track_caller]
    fn check_play(rules: &Rules, machine: MachineType, wagers: &[&str], points: i64, carry: &str) {
        let member = bronze();
        let mut left = Money::ZERO;
        let mut total = Points::ZERO;
        for wager in wagers {
            let play = MachinePlay { machine, wagered: eur(wager) };
            let decided = earning::machine_play(rules, &member, play, left, at(NOW)).unwrap();
            total += decided.earning.points();
            left = decided.carry;
        }
        assert_eq!((total, left), (Points(points), eur(carry)));
    }

    #[test]
    fn slots_eur_4_is_1_point() {
        check_play(&rules(), MachineType::Slot, &["4.00"], 1, "0.00");
    }

    #[test]
    fn slots_3_then_5_eur_is_2_points() {
        check_play(&rules(), MachineType::Slot, &["3.00", "5.00"], 2, "0.00");
    }

    #[test]
    fn slots_eur_3_99_waits_in_the_carry_over() {
        check_play(&rules(), MachineType::Slot, &["3.99"], 0, "3.99");
    }

    #[test]
    fn slots_eur_1000_coin_in_is_250_points() {
        check_play(&rules(), MachineType::Slot, &["1000.00"], 250, "0.00");
    }

    #[test]
    fn electronic_roulette_eur_8_is_1_point() {
        check_play(&rules(), MachineType::ElectronicRoulette, &["8.00"], 1, "0.00");
    }

    #[test]
    fn video_poker_eur_12_is_1_point_and_4_carried() {
        check_play(&rules(), MachineType::VideoPoker, &["12.00"], 1, "4.00");
    }

    #[test]
    fn video_poker_3_then_5_eur_is_1_point() {
        check_play(&rules(), MachineType::VideoPoker, &["3.00", "5.00"], 1, "0.00");
    }

    #[test]
    fn the_slot_rate_is_configurable() {
        check_play(&rules_with("[earning]\nslot = \"5.00\""), MachineType::Slot, &["12.00"], 2, "2.00");
    }

    #[track_caller]
    fn check_refused_play(member: Member, reason: RefusalCode) {
        let play = MachinePlay { machine: MachineType::Slot, wagered: eur("100.00") };
        let decided = earning::machine_play(&rules(), &member, play, eur("3.00"), at(NOW)).unwrap();
        let recorded =
            Earning::NoPoints { reason: NoPointsReason::Refused(reason), rule_version: rules().version().clone() };
        assert_eq!((decided.earning, decided.carry), (recorded, eur("3.00")), "no points, carry unchanged");
    }

    #[test]
    fn a_self_excluded_members_play_is_recorded_without_points() {
        check_refused_play(excluded(ExclusionKind::OwnRequest, "2025-01-01 00:00", None), RefusalCode::SelfExcluded);
    }

    #[test]
    fn play_with_a_lost_card_is_recorded_without_points() {
        let mut member = bronze();
        member.standing.card = Some(CardState::BlockedLost);
        check_refused_play(member, RefusalCode::CardBlocked);
    }

    #[test]
    fn a_banned_members_play_is_recorded_without_points() {
        check_refused_play(excluded(ExclusionKind::Ban, "2025-01-01 00:00", None), RefusalCode::Banned);
    }

    #[test]
    fn an_absurd_wager_is_refused_not_overflowed() {
        let play = MachinePlay { machine: MachineType::Slot, wagered: eur("1000000000000.01") };
        let got = earning::machine_play(&rules(), &bronze(), play, Money::ZERO, at(NOW));
        assert_eq!(got, Err(RulesError::OutOfRange("amount wagered")));
    }

    #[test]
    fn a_negative_wager_is_refused() {
        let play = MachinePlay { machine: MachineType::Slot, wagered: eur("-4.00") };
        let got = earning::machine_play(&rules(), &bronze(), play, Money::ZERO, at(NOW));
        assert!(matches!(got, Err(RulesError::Negative { .. })), "{got:?}");
    }

    #[test]
    fn an_earning_opens_a_lot_valid_for_12_months() {
        let play = MachinePlay { machine: MachineType::Slot, wagered: eur("40.00") };
        let decided = earning::machine_play(&rules(), &bronze(), play, Money::ZERO, at(NOW)).unwrap();
        let Earning::Points { entry, .. } = decided.earning else { panic!("points expected") };
        assert_eq!(entry.amount, Points(10));
        assert_eq!(entry.at, at(NOW));
        assert_eq!(entry.kind, PointsKind::Earned(EarnSource::Machine(MachineType::Slot)));
        assert_eq!(entry.lot, LotRef::Opens { expires_at: at("2026-03-01 21:00") });
    }
}

mod bar_earning {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Gives {
        Points(i64),
        Nothing(NoPointsReason),
    }

    #[track_caller]
    fn check_receipt(
        rules: &Rules,
        outlet: Outlet,
        lines: &[(&str, &str)],
        tenders: &[(TenderKind, &str)],
        expected: Gives,
    ) {
        let receipt = Receipt {
            outlet,
            lines: lines.iter().map(|(c, a)| ReceiptLine { category: (*c).to_owned(), amount: eur(a) }).collect(),
            tenders: tenders.iter().map(|(k, a)| Tender { kind: *k, amount: eur(a) }).collect(),
        };
        let got = match earning::receipt(rules, &bronze(), &receipt, at("2025-03-01 22:00")).unwrap() {
            Earning::Points { entry, .. } => Gives::Points(entry.amount.0),
            Earning::NoPoints { reason, .. } => Gives::Nothing(reason),
        };
        assert_eq!(got, expected);
    }

    use TenderKind::{Card, Cash};

    #[test]
    fn bar_cash_eur_8_is_2_points() {
        check_receipt(&rules(), Outlet::Bar, &[("cocktails", "8.00")], &[(Cash, "8.00")], Gives::Points(2));
    }

    #[test]
    fn bar_receipts_do_not_carry_over_eur_7_99_is_1_point() {
        check_receipt(&rules(), Outlet::Bar, &[("cocktails", "7.99")], &[(Cash, "7.99")], Gives::Points(1));
    }

    #[test]
    fn bar_cash_under_eur_4_earns_nothing() {
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("cocktails", "3.99")],
            &[(Cash, "3.99")],
            Gives::Nothing(NoPointsReason::LessThanAPoint),
        );
    }

    #[test]
    fn restaurant_cash_earns_like_the_bar() {
        check_receipt(&rules(), Outlet::Restaurant, &[("food", "40.00")], &[(Cash, "40.00")], Gives::Points(10));
    }

    #[test]
    fn tobacco_earns_nothing() {
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("tobacco", "10.00")],
            &[(Cash, "10.00")],
            Gives::Nothing(NoPointsReason::NothingEligible),
        );
    }

    #[test]
    fn tobacco_lines_do_not_count_toward_a_receipts_points() {
        // 6.00 of cocktails earn 1 point; the 6.00 of cigarettes earn nothing.
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("cocktails", "6.00"), ("tobacco", "6.00")],
            &[(Cash, "12.00")],
            Gives::Points(1),
        );
    }

    #[test]
    fn the_tobacco_category_is_recognised_in_any_case() {
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("Tobacco", "10.00")],
            &[(Cash, "10.00")],
            Gives::Nothing(NoPointsReason::NothingEligible),
        );
    }

    #[test]
    fn a_card_payment_earns_nothing() {
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("cocktails", "8.00")],
            &[(Card, "8.00")],
            Gives::Nothing(NoPointsReason::NothingEligible),
        );
    }

    #[test]
    fn part_cash_part_card_earns_on_the_cash_share() {
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("cocktails", "20.00")],
            &[(Cash, "10.00"), (Card, "10.00")],
            Gives::Points(2),
        );
    }

    #[test]
    fn part_cash_with_tobacco_earns_on_the_cash_share_of_the_earning_lines() {
        // earning lines 12.00 x cash share 8.00 / 16.00 = 6.00 -> 1 point
        check_receipt(
            &rules(),
            Outlet::Bar,
            &[("wine", "12.00"), ("tobacco", "4.00")],
            &[(Cash, "8.00"), (Card, "8.00")],
            Gives::Points(1),
        );
    }

    #[test]
    fn a_hotel_receipt_earns_nothing() {
        check_receipt(
            &rules(),
            Outlet::Hotel,
            &[("room", "100.00")],
            &[(Cash, "100.00")],
            Gives::Nothing(NoPointsReason::NothingEligible),
        );
    }

    #[test]
    fn the_bar_rate_is_configurable() {
        check_receipt(
            &rules_with("[earning]\nbar_cash = \"2.00\""),
            Outlet::Bar,
            &[("cocktails", "8.00")],
            &[(Cash, "8.00")],
            Gives::Points(4),
        );
    }

    #[test]
    fn a_receipt_whose_tenders_do_not_add_up_is_refused() {
        let receipt = Receipt {
            outlet: Outlet::Bar,
            lines: vec![ReceiptLine { category: "cocktails".to_owned(), amount: eur("8.00") }],
            tenders: vec![Tender { kind: Cash, amount: eur("7.00") }],
        };
        let got = earning::receipt(&rules(), &bronze(), &receipt, at("2025-03-01 22:00"));
        assert_eq!(got, Err(RulesError::TendersDoNotAddUp { due: eur("8.00"), tendered: eur("7.00") }));
    }
}

mod table_rating {
    use super::*;

    const NOW: &str = "2025-03-01 23:00";

    fn rating(game: &str, minutes: u32, bet: &str) -> TableRating {
        TableRating { game: game.to_owned(), played: Played::Minutes(minutes), average_bet: eur(bet) }
    }

    fn fraction(text: &str) -> PointFraction {
        PointFraction::new(text.parse().unwrap()).unwrap()
    }

    #[track_caller]
    fn check_rating(rules: &Rules, rating: TableRating, carry: &str, points: i64, left: &str, theo: Option<&str>) {
        let decided = table::rate(rules, &bronze(), &rating, fraction(carry), at(NOW)).unwrap();
        assert_eq!(
            (decided.earning.points(), decided.carry, decided.theoretical_win),
            (Points(points), fraction(left), theo.map(eur)),
        );
    }

    #[test]
    fn blackjack_eur_25_for_2_hours_is_122_points() {
        // 25 x 2 h x 63/h x 1.30 % = 40.95 theo; x 3 = 122.85
        check_rating(&rules(), rating("blackjack", 120, "25.00"), "0", 122, "0.85", Some("40.95"));
    }

    #[test]
    fn european_roulette_eur_10_for_an_hour_is_29_points() {
        // 10 x 1 h x 36/h x 2.70 % = 9.72; x 3 = 29.16
        check_rating(&rules(), rating("european_roulette", 60, "10.00"), "0", 29, "0.16", Some("9.72"));
    }

    #[test]
    fn mini_baccarat_eur_50_for_30_minutes_is_54_points() {
        // 50 x 0.5 h x 58/h x 1.26 % = 18.27; x 3 = 54.81
        check_rating(&rules(), rating("mini_baccarat", 30, "50.00"), "0", 54, "0.81", Some("18.27"));
    }

    #[test]
    fn craps_eur_20_for_90_minutes_is_67_points() {
        // 20 x 1.5 h x 50/h x 1.50 % = 22.50; x 3 = 67.5
        check_rating(&rules(), rating("craps", 90, "20.00"), "0", 67, "0.5", Some("22.50"));
    }

    #[test]
    fn poker_is_rated_by_time_at_12_points_an_hour() {
        check_rating(&rules(), rating("poker", 90, "0.00"), "0", 18, "0", None);
    }

    #[test]
    fn table_fractions_carry_over_across_games() {
        // 0.85 left from blackjack + 29.16 at roulette = 30.01
        check_rating(&rules(), rating("european_roulette", 60, "10.00"), "0.85", 30, "0.01", Some("9.72"));
    }

    #[test]
    fn a_rating_is_valued_to_a_ten_thousandth_of_a_point() {
        // 1.00 x 1/60 h x 63/h x 1.30 % = 0.01365 theo; x 3 = 0.04095 -> 0.0409
        check_rating(&rules(), rating("blackjack", 1, "1.00"), "0", 0, "0.0409", Some("0.01"));
    }

    #[test]
    fn points_per_eur_is_configurable_per_game() {
        let rules = rules_with(
            "[tables.blackjack]\nrated_by = \"theoretical_win\"\ndecisions_per_hour = 63\nhouse_edge_percent = \"1.30\"\n\
             points_per_eur = \"2\"\nmin_average_bet = \"1.00\"\nmax_average_bet = \"5000.00\"\nmax_minutes = 720",
        );
        // 40.95 theo x 2 = 81.9
        check_rating(&rules, rating("blackjack", 120, "25.00"), "0", 81, "0.9", Some("40.95"));
        let dropped = table::rate(&rules, &bronze(), &rating("craps", 60, "10.00"), PointFraction::ZERO, at(NOW));
        assert_eq!(dropped, Err(RulesError::UnknownTableGame("craps".to_owned())), "listing games replaces the list");
    }

    #[test]
    fn a_rating_from_start_and_end_times_equals_its_minutes() {
        let timed = TableRating {
            played: Played::Between { start: at("2025-03-01 20:00"), end: at("2025-03-01 22:00") },
            ..rating("blackjack", 0, "25.00")
        };
        check_rating(&rules(), timed, "0", 122, "0.85", Some("40.95"));
    }

    #[track_caller]
    fn check_rating_refused(rating: TableRating, expected: RulesError) {
        assert_eq!(table::rate(&rules(), &bronze(), &rating, PointFraction::ZERO, at(NOW)), Err(expected));
    }

    #[test]
    fn a_rating_that_ends_before_it_starts_is_refused() {
        let backwards = TableRating {
            played: Played::Between { start: at("2025-03-01 22:00"), end: at("2025-03-01 20:00") },
            ..rating("blackjack", 0, "25.00")
        };
        check_rating_refused(backwards, RulesError::EndsBeforeStart);
    }

    #[test]
    fn a_game_without_a_rating_rule_is_refused() {
        check_rating_refused(rating("sic_bo", 60, "10.00"), RulesError::UnknownTableGame("sic_bo".to_owned()));
    }

    #[track_caller]
    fn check_flags(rating: TableRating, flags: &[RatingFlag]) {
        let decided = table::rate(&rules(), &bronze(), &rating, PointFraction::ZERO, at(NOW)).unwrap();
        assert_eq!(decided.flags, flags);
        assert!(decided.earning.points() > Points::ZERO, "a flagged rating still earns");
    }

    #[test]
    fn an_average_bet_far_above_the_norm_is_flagged_for_the_pit_boss() {
        check_flags(rating("blackjack", 60, "6000.00"), &[RatingFlag::AverageBetAboveNorm { max: eur("5000.00") }]);
    }

    #[test]
    fn an_average_bet_below_the_norm_is_flagged_for_the_pit_boss() {
        check_flags(rating("european_roulette", 600, "0.50"), &[RatingFlag::AverageBetBelowNorm { min: eur("1.00") }]);
    }

    #[test]
    fn a_session_longer_than_12_hours_is_flagged_for_the_pit_boss() {
        check_flags(rating("poker", 13 * 60, "0.00"), &[RatingFlag::LongerThanNorm { max_minutes: 720 }]);
    }

    #[test]
    fn an_excluded_members_rating_is_recorded_without_points() {
        let member = excluded(ExclusionKind::Ban, "2025-01-01 00:00", None);
        let decided =
            table::rate(&rules(), &member, &rating("blackjack", 120, "25.00"), fraction("0.5"), at(NOW)).unwrap();
        assert_eq!(decided.earning.points(), Points::ZERO);
        assert!(matches!(
            decided.earning,
            Earning::NoPoints { reason: NoPointsReason::Refused(RefusalCode::Banned), .. }
        ));
        assert_eq!(decided.carry, fraction("0.5"));
    }
}

mod lots_and_expiry {
    use super::*;

    #[track_caller]
    fn check_spend(lots: &[Lot<Points>], points: i64, now: &str, expected: Result<Vec<(i64, i64)>, RulesError>) {
        let got = lots::spend(&rules(), &bronze(), lots, Points(points), RedeemFor::Cashback, at(now));
        assert_eq!(got.map(|e| draws(&e)), expected);
    }

    #[test]
    fn a_redemption_spends_the_oldest_lot_first() {
        let lots = [lot(1, "2025-02-01 10:00", 300), lot(2, "2025-01-01 10:00", 200)];
        check_spend(&lots, 350, "2025-03-01 10:00", Ok(vec![(2, -200), (1, -150)]));
    }

    #[test]
    fn lots_earned_at_the_same_moment_are_spent_in_id_order() {
        let lots = [lot(7, "2025-01-01 10:00", 100), lot(3, "2025-01-01 10:00", 100)];
        check_spend(&lots, 150, "2025-03-01 10:00", Ok(vec![(3, -100), (7, -50)]));
    }

    #[test]
    fn a_lot_can_be_spent_until_12_months_after_it_was_earned() {
        check_spend(&[lot(1, "2024-03-10 10:00", 100)], 100, "2025-03-10 09:59", Ok(vec![(1, -100)]));
    }

    #[test]
    fn a_lot_expires_12_months_after_it_was_earned() {
        check_spend(
            &[lot(1, "2024-03-10 10:00", 100)],
            100,
            "2025-03-10 10:00",
            Err(RulesError::InsufficientPoints { wanted: Points(100), available: Points(0) }),
        );
    }

    #[test]
    fn redeeming_more_than_the_available_points_is_refused_whole() {
        check_spend(
            &[lot(1, "2025-01-01 10:00", 300)],
            500,
            "2025-03-01 10:00",
            Err(RulesError::InsufficientPoints { wanted: Points(500), available: Points(300) }),
        );
    }

    #[test]
    fn redeeming_zero_points_is_refused() {
        check_spend(
            &[lot(1, "2025-01-01 10:00", 300)],
            0,
            "2025-03-01 10:00",
            Err(RulesError::NotPositive { what: "points to redeem", value: "0".to_owned() }),
        );
    }

    #[test]
    fn expiry_is_an_entry_dated_at_the_moment_the_lot_expired() {
        let lots = [lot(1, "2024-03-10 10:00", 100), lot(2, "2024-06-01 10:00", 40), lot(3, "2024-02-01 10:00", 0)];
        let entries = lots::expire_points(&rules(), &lots, at("2025-04-01 00:00"));
        assert_eq!(draws(&entries), [(1, -100)], "only lot 1 expired with points left");
        assert_eq!((entries[0].at, &entries[0].kind), (at("2025-03-10 10:00"), &PointsKind::Expired));
    }

    #[test]
    fn the_validity_is_configurable() {
        let rules = rules_with("[points]\nvalidity_months = 6");
        assert_eq!(lots::points_expiry(&rules, at("2025-01-31 10:00")), Ok(at("2025-07-31 10:00")));
    }
}

mod tiers_and_reviews {
    use super::*;

    const NOW: &str = "2025-06-01 12:00";

    #[track_caller]
    fn check_earning(tier: Tier, before: i64, earned: i64, expected: &[TierEventKind]) {
        let events = tiers::on_earning(&rules(), tier, Points(before), Points(earned), at(NOW));
        let kinds: Vec<TierEventKind> = events.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, expected);
    }

    #[test]
    fn a_new_member_with_no_points_is_bronze() {
        assert_eq!(tiers::automatic_tier(&rules(), Points::ZERO), Tier::Bronze);
    }

    #[test]
    fn silver_at_10000_qualifying_points() {
        check_earning(Tier::Bronze, 9_000, 1_000, &[TierEventKind::Promoted { from: Tier::Bronze, to: Tier::Silver }]);
    }

    #[test]
    fn still_bronze_at_9999_qualifying_points() {
        check_earning(Tier::Bronze, 9_000, 999, &[]);
    }

    #[test]
    fn gold_at_36000_qualifying_points() {
        check_earning(Tier::Silver, 35_999, 1, &[TierEventKind::Promoted { from: Tier::Silver, to: Tier::Gold }]);
    }

    #[test]
    fn one_earning_crossing_silver_and_gold_promotes_to_gold() {
        check_earning(Tier::Bronze, 9_000, 30_000, &[TierEventKind::Promoted { from: Tier::Bronze, to: Tier::Gold }]);
    }

    #[test]
    fn vip_exclusive_at_100000_only_lists_the_member_for_a_manager() {
        check_earning(Tier::Gold, 99_000, 1_000, &[TierEventKind::EligibleForVip]);
    }

    #[test]
    fn a_vip_member_is_not_listed_again() {
        check_earning(Tier::VipExclusive, 99_000, 2_000, &[]);
    }

    #[test]
    fn promotion_comes_with_the_earning_that_crosses_not_after() {
        // Placed at Bronze by a manager with 12,000 points: the next crossing promotes, not any earning.
        check_earning(Tier::Bronze, 12_000, 100, &[]);
    }

    #[test]
    fn never_an_automatic_demotion_mid_year() {
        check_earning(Tier::Gold, 0, 10, &[]);
    }

    #[test]
    fn chairman_only_by_invitation() {
        check_earning(Tier::Gold, 0, 10_000_000, &[TierEventKind::EligibleForVip]);
        for tier in [Tier::Bronze, Tier::Gold] {
            let review = tiers::anniversary_review(&rules(), tier, Points(10_000_000), day("2025-06-01"), at(NOW));
            assert!(review.iter().all(|e| !matches!(e.kind, TierEventKind::Reviewed { to: Tier::Chairman, .. })));
        }
        check_manager(Tier::Bronze, 0, Tier::Chairman, Ok(Tier::Chairman));
    }

    #[track_caller]
    fn check_qualifying(entries: &[(&str, i64, PointsKind)], expected: i64) {
        let rules = rules();
        let entries: Vec<club_rules::PointsEntry> = entries
            .iter()
            .map(|(when, amount, kind)| club_rules::Entry {
                at: at(when),
                kind: kind.clone(),
                amount: Points(*amount),
                lot: LotRef::Existing(LotId(1)),
                rule_version: rules.version().clone(),
            })
            .collect();
        assert_eq!(tiers::qualifying_points(&rules, &entries, at(NOW)), Ok(Points(expected)));
    }

    fn earned() -> PointsKind {
        PointsKind::Earned(EarnSource::Machine(MachineType::Slot))
    }

    #[test]
    fn qualifying_points_are_those_earned_in_the_last_12_months() {
        check_qualifying(
            &[
                ("2024-06-01 12:00", 5_000, earned()), // exactly 12 months ago: out
                ("2024-06-01 12:01", 3_000, earned()),
                ("2025-06-01 12:00", 2_000, earned()),
                ("2025-06-01 12:01", 1_000, earned()), // recorded, dated after an event that arrived late
            ],
            6_000,
        );
    }

    #[test]
    fn redemptions_and_expiries_do_not_reduce_qualifying_points() {
        check_qualifying(
            &[
                ("2025-01-01 12:00", 4_000, earned()),
                ("2025-02-01 12:00", -3_000, PointsKind::Redeemed(RedeemFor::Cashback)),
                ("2025-03-01 12:00", -1_000, PointsKind::Expired),
            ],
            4_000,
        );
    }

    #[test]
    fn corrections_do_not_count_toward_the_tier() {
        let correction = PointsKind::Corrected { reason: "fault".to_owned(), by: StaffId(1), approved_by: None };
        check_qualifying(&[("2025-01-01 12:00", 4_000, correction)], 0);
    }

    #[track_caller]
    fn check_due(joined: &str, last: Option<&str>, today: &str, expected: Option<&str>) {
        assert_eq!(tiers::review_due(day(joined), last.map(day), day(today)), expected.map(day));
    }

    #[test]
    fn a_review_is_due_on_the_membership_anniversary() {
        check_due("2024-03-10", None, "2025-03-10", Some("2025-03-10"));
    }

    #[test]
    fn no_review_before_the_first_anniversary() {
        check_due("2024-03-10", None, "2025-03-09", None);
    }

    #[test]
    fn a_review_is_done_once_a_year() {
        check_due("2024-03-10", Some("2025-03-10"), "2026-03-09", None);
    }

    #[test]
    fn a_missed_review_is_done_once_for_the_latest_anniversary() {
        check_due("2022-03-10", Some("2023-03-10"), "2025-05-01", Some("2025-03-10"));
    }

    #[test]
    fn a_29_february_anniversary_falls_on_28_february() {
        check_due("2024-02-29", None, "2025-02-28", Some("2025-02-28"));
    }

    #[track_caller]
    fn check_review(tier: Tier, qualifying: i64, expected: &[TierEventKind]) {
        let anniversary = day("2025-06-01");
        let events = tiers::anniversary_review(&rules(), tier, Points(qualifying), anniversary, at(NOW));
        let kinds: Vec<TierEventKind> = events.into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, expected);
    }

    fn reviewed(from: Tier, to: Tier) -> TierEventKind {
        TierEventKind::Reviewed { from, to, by: Reviewer::Anniversary(day("2025-06-01")) }
    }

    #[test]
    fn the_anniversary_review_moves_an_automatic_tier_down_to_the_points() {
        check_review(Tier::Gold, 12_000, &[reviewed(Tier::Gold, Tier::Silver)]);
    }

    #[test]
    fn the_anniversary_review_moves_an_automatic_tier_up_to_the_points() {
        check_review(Tier::Bronze, 40_000, &[reviewed(Tier::Bronze, Tier::Gold)]);
    }

    #[test]
    fn the_anniversary_review_keeps_a_tier_the_points_still_reach() {
        check_review(Tier::Silver, 20_000, &[reviewed(Tier::Silver, Tier::Silver)]);
    }

    #[test]
    fn the_anniversary_review_lists_a_gold_member_with_vip_points() {
        check_review(Tier::Gold, 120_000, &[reviewed(Tier::Gold, Tier::Gold), TierEventKind::EligibleForVip]);
    }

    #[test]
    fn the_anniversary_review_lists_vip_members_for_the_manager() {
        check_review(
            Tier::VipExclusive,
            0,
            &[TierEventKind::ListedForManagerReview { anniversary: day("2025-06-01") }],
        );
    }

    #[test]
    fn the_anniversary_review_lists_chairman_members_for_the_manager() {
        check_review(Tier::Chairman, 0, &[TierEventKind::ListedForManagerReview { anniversary: day("2025-06-01") }]);
    }

    #[track_caller]
    fn check_manager(tier: Tier, qualifying: i64, target: Tier, expected: Result<Tier, RulesError>) {
        let got =
            tiers::manager_review(&rules(), tier, Points(qualifying), target, StaffId(9), at(NOW)).map(|e| e.kind);
        let expected = expected.map(|to| TierEventKind::Reviewed { from: tier, to, by: Reviewer::Manager(StaffId(9)) });
        assert_eq!(got, expected);
    }

    #[test]
    fn a_manager_may_review_anyone_at_any_time() {
        check_manager(Tier::Gold, 0, Tier::Bronze, Ok(Tier::Bronze));
    }

    #[test]
    fn a_manager_promotes_an_eligible_member_to_vip_exclusive() {
        check_manager(Tier::Gold, 100_000, Tier::VipExclusive, Ok(Tier::VipExclusive));
    }

    #[test]
    fn vip_exclusive_needs_100000_qualifying_points_even_for_a_manager() {
        check_manager(
            Tier::Gold,
            99_999,
            Tier::VipExclusive,
            Err(RulesError::NotEligibleForVip { qualifying: Points(99_999), threshold: Points(100_000) }),
        );
    }

    #[test]
    fn a_manager_may_keep_a_vip_member_whose_points_fell() {
        check_manager(Tier::VipExclusive, 5_000, Tier::VipExclusive, Ok(Tier::VipExclusive));
    }
}

mod cashback {
    use club_rules::cashback::{self, FreePlayGrant};

    use super::*;

    const NOW: &str = "2025-03-01 20:00";

    #[track_caller]
    fn check_quote(rules: &Rules, tier: Tier, points: i64, expected: Result<&str, RulesError>) {
        assert_eq!(cashback::quote(rules, tier, Points(points)), expected.map(eur));
    }

    #[test]
    fn bronze_1000_points_is_eur_10() {
        check_quote(&rules(), Tier::Bronze, 1_000, Ok("10.00"));
    }

    #[test]
    fn silver_1000_points_is_eur_12() {
        check_quote(&rules(), Tier::Silver, 1_000, Ok("12.00"));
    }

    #[test]
    fn gold_1000_points_is_eur_14() {
        check_quote(&rules(), Tier::Gold, 1_000, Ok("14.00"));
    }

    #[test]
    fn vip_exclusive_1000_points_is_eur_16() {
        check_quote(&rules(), Tier::VipExclusive, 1_000, Ok("16.00"));
    }

    #[test]
    fn chairman_1000_points_is_eur_18() {
        check_quote(&rules(), Tier::Chairman, 1_000, Ok("18.00"));
    }

    #[test]
    fn silver_1100_points_is_eur_13_20() {
        check_quote(&rules(), Tier::Silver, 1_100, Ok("13.20"));
    }

    #[test]
    fn cashback_below_1000_points_is_refused() {
        check_quote(
            &rules(),
            Tier::Gold,
            900,
            Err(RulesError::BelowCashbackMinimum { points: Points(900), minimum: Points(1_000) }),
        );
    }

    #[test]
    fn cashback_is_in_steps_of_100_points() {
        check_quote(
            &rules(),
            Tier::Gold,
            1_050,
            Err(RulesError::NotACashbackStep { points: Points(1_050), step: Points(100) }),
        );
    }

    #[test]
    fn cashback_is_rounded_down_to_the_cent() {
        let fine = rules_with("[cashback]\nminimum_points = 1\nstep_points = 1");
        check_quote(&fine, Tier::Silver, 1_001, Ok("12.01")); // 12.012
        check_quote(&fine, Tier::Gold, 1_009, Ok("14.12")); // 14.126
    }

    #[test]
    fn cashback_spends_points_oldest_first_and_issues_free_play_for_30_days() {
        let lots = [lot(2, "2025-02-01 10:00", 800), lot(1, "2025-01-01 10:00", 500)];
        let done = cashback::redeem(&rules(), &member(Tier::Gold, 40_000), &lots, Points(1_200), at(NOW)).unwrap();
        assert_eq!(draws(&done.points), [(1, -500), (2, -700)]);
        assert!(done.points.iter().all(|e| e.kind == PointsKind::Redeemed(RedeemFor::Cashback)));
        assert_eq!(done.free_play.amount, eur("16.80"));
        assert_eq!(done.free_play.kind, FreePlayKind::Issued { points: Points(1_200) });
        assert_eq!(done.free_play.lot, LotRef::Opens { expires_at: at("2025-03-31 20:00") });
    }

    #[test]
    fn an_excluded_member_cannot_take_cashback() {
        let member = excluded(ExclusionKind::OwnRequest, "2025-02-01 00:00", None);
        let got = cashback::redeem(&rules(), &member, &[lot(1, "2025-01-01 10:00", 5_000)], Points(1_000), at(NOW));
        assert_eq!(got, Err(RulesError::Refused(RefusalCode::SelfExcluded)));
    }

    fn grant(id: i64, issued: &str, amount: &str) -> FreePlayGrant {
        let opened_at = at(issued);
        Lot { id: LotId(id), opened_at, expires_at: opened_at + chrono::TimeDelta::days(30), remaining: eur(amount) }
    }

    fn moves(entries: &[club_rules::FreePlayEntry]) -> Vec<(i64, FreePlayKind, Money)> {
        entries
            .iter()
            .map(|e| match e.lot {
                LotRef::Existing(LotId(id)) => (id, e.kind, e.amount),
                LotRef::Opens { .. } => panic!("no grant opens here"),
            })
            .collect()
    }

    #[track_caller]
    fn check_send(grants: &[FreePlayGrant], amount: &str, expected: Result<Vec<(i64, &str)>, RulesError>) {
        let got = cashback::send(&rules(), &bronze(), grants, eur(amount), at(NOW));
        let expected = expected.map(|v| v.into_iter().map(|(id, a)| (id, FreePlayKind::Sent, eur(a))).collect());
        assert_eq!(got.map(|e| moves(&e)), expected);
    }

    #[test]
    fn free_play_is_sent_to_the_machine_from_the_oldest_grant_first() {
        let grants = [grant(2, "2025-02-20 10:00", "5.00"), grant(1, "2025-02-15 10:00", "10.00")];
        check_send(&grants, "12.00", Ok(vec![(1, "-10.00"), (2, "-2.00")]));
    }

    #[test]
    fn sending_more_free_play_than_the_member_has_is_refused() {
        check_send(
            &[grant(1, "2025-02-15 10:00", "10.00")],
            "12.00",
            Err(RulesError::InsufficientFreePlay { wanted: eur("12.00"), available: eur("10.00") }),
        );
    }

    #[test]
    fn a_failed_transfer_returns_the_free_play_to_its_grants() {
        let grants = [grant(1, "2025-02-15 10:00", "10.00"), grant(2, "2025-02-20 10:00", "5.00")];
        let sent = cashback::send(&rules(), &bronze(), &grants, eur("12.00"), at(NOW)).unwrap();
        let back = cashback::transfer_failed(&rules(), &sent, at("2025-03-01 20:01")).unwrap();
        assert_eq!(moves(&back), [(1, FreePlayKind::Returned, eur("10.00")), (2, FreePlayKind::Returned, eur("2.00"))]);
    }

    #[test]
    fn only_a_sent_transfer_can_be_returned() {
        let issued =
            cashback::redeem(&rules(), &bronze(), &[lot(1, "2025-01-01 10:00", 1_000)], Points(1_000), at(NOW))
                .unwrap()
                .free_play;
        assert_eq!(cashback::transfer_failed(&rules(), &[issued], at(NOW)), Err(RulesError::NotASentTransfer));
    }

    #[test]
    fn free_play_expires_after_30_days() {
        let grants = [grant(1, "2025-01-20 10:00", "10.00"), grant(2, "2025-02-15 10:00", "6.00")];
        let expired = cashback::expire(&rules(), &grants, at(NOW));
        assert_eq!(moves(&expired), [(1, FreePlayKind::Expired, eur("-10.00"))]);
        assert_eq!(expired[0].at, at("2025-02-19 10:00"));
    }

    #[test]
    fn the_free_play_expiry_is_configurable() {
        let rules = rules_with("[free_play]\nexpiry_days = 7");
        let issued =
            cashback::redeem(&rules, &bronze(), &[lot(1, "2025-01-01 10:00", 1_000)], Points(1_000), at(NOW)).unwrap();
        assert_eq!(issued.free_play.lot, LotRef::Opens { expires_at: at("2025-03-08 20:00") });
    }
}

mod redemption_and_discounts {
    use super::*;

    const NOW: &str = "2025-03-01 19:00";

    fn article(sku: &str, category: &str, price: &str, points: Option<i64>, already_discounted: bool) -> Article {
        Article {
            sku: sku.to_owned(),
            category: category.to_owned(),
            price: eur(price),
            points_price: points.map(Points),
            already_discounted,
            member_free: false,
        }
    }

    fn catalogue() -> Vec<Article> {
        vec![
            article("espresso", "coffee", "2.00", Some(20), false),
            article("cocktail", "cocktails", "10.00", Some(100), false),
            article("spritz-happy-hour", "cocktails", "5.00", Some(50), true),
            article("cigarettes", "tobacco", "5.50", None, false),
            article("toast", "snacks", "3.45", Some(35), false),
            article("dinner", "food", "45.00", Some(450), false),
            article("watch", "showcase", "150.00", Some(15_000), false),
        ]
    }

    fn ticket(outlet: Outlet, lines: &[(&str, u32, PayWith)], showcase_taken_today: u32) -> Ticket {
        Ticket {
            outlet,
            lines: lines
                .iter()
                .map(|(sku, quantity, pay_with)| TicketLine {
                    sku: (*sku).to_owned(),
                    quantity: *quantity,
                    pay_with: *pay_with,
                })
                .collect(),
            showcase_taken_today,
        }
    }

    /// The money and points due for one line.
    #[track_caller]
    fn check_price(
        rules: &Rules,
        member: Member,
        outlet: Outlet,
        line: (&str, u32, PayWith),
        expected: Result<(&str, i64), RulesError>,
    ) {
        let got = pricing::price(rules, &member, &catalogue(), &ticket(outlet, &[line], 0), at(NOW));
        assert_eq!(got.map(|t| (t.money_due, t.points_due)), expected.map(|(m, p)| (eur(m), Points(p))));
    }

    use PayWith::{Money as Cash, Points as Pts};

    #[test]
    fn bronze_pays_the_full_point_price() {
        check_price(&rules(), member(Tier::Bronze, 0), Outlet::Bar, ("cocktail", 1, Pts), Ok(("0.00", 100)));
    }

    #[test]
    fn silver_discount_is_20_percent_on_points() {
        check_price(&rules(), member(Tier::Silver, 0), Outlet::Bar, ("cocktail", 1, Pts), Ok(("0.00", 80)));
    }

    #[test]
    fn gold_discount_is_30_percent_on_points() {
        check_price(&rules(), member(Tier::Gold, 0), Outlet::Bar, ("cocktail", 1, Pts), Ok(("0.00", 70)));
    }

    #[test]
    fn vip_exclusive_discount_is_50_percent_on_points() {
        check_price(&rules(), member(Tier::VipExclusive, 0), Outlet::Bar, ("cocktail", 1, Pts), Ok(("0.00", 50)));
    }

    #[test]
    fn chairman_discount_is_70_percent_on_points() {
        check_price(&rules(), member(Tier::Chairman, 0), Outlet::Bar, ("cocktail", 2, Pts), Ok(("0.00", 60)));
    }

    #[test]
    fn the_tier_discount_applies_to_money_payments_by_members() {
        check_price(&rules(), member(Tier::Silver, 0), Outlet::Restaurant, ("dinner", 1, Cash), Ok(("36.00", 0)));
    }

    #[test]
    fn no_tier_discount_on_articles_already_discounted() {
        check_price(&rules(), member(Tier::Chairman, 0), Outlet::Bar, ("spritz-happy-hour", 1, Cash), Ok(("5.00", 0)));
        check_price(&rules(), member(Tier::Chairman, 0), Outlet::Bar, ("spritz-happy-hour", 1, Pts), Ok(("0.00", 50)));
    }

    #[test]
    fn a_discounted_money_price_is_rounded_to_the_nearest_cent_halves_up() {
        // 3.45 x 70 % = 2.415
        check_price(&rules(), member(Tier::Gold, 0), Outlet::Bar, ("toast", 1, Cash), Ok(("2.42", 0)));
    }

    #[test]
    fn a_discounted_point_price_is_rounded_to_the_nearest_point_halves_up() {
        // 35 x 70 % = 24.5, per unit
        check_price(&rules(), member(Tier::Gold, 0), Outlet::Bar, ("toast", 2, Pts), Ok(("0.00", 50)));
    }

    #[test]
    fn members_free_drinks_cost_nothing() {
        check_price(&rules(), member(Tier::Bronze, 0), Outlet::Bar, ("espresso", 2, Cash), Ok(("0.00", 0)));
    }

    #[test]
    fn a_free_drink_is_free_not_discounted() {
        let got = pricing::price(
            &rules(),
            &member(Tier::Gold, 0),
            &catalogue(),
            &ticket(Outlet::Bar, &[("espresso", 1, Cash)], 0),
            at(NOW),
        );
        let line = &got.unwrap().lines[0];
        assert_eq!((line.free_drink, line.discount_percent, line.money), (true, 0, Money::ZERO));
    }

    #[test]
    fn free_drinks_are_at_the_bar_only() {
        check_price(&rules(), member(Tier::Bronze, 0), Outlet::Restaurant, ("espresso", 1, Cash), Ok(("2.00", 0)));
    }

    #[test]
    fn an_article_the_catalogue_marks_member_free_is_free_at_the_bar_only() {
        let catalogue = vec![Article { member_free: true, ..article("house-lemonade", "soft_drinks", "3.00", Some(30), false) }];
        let bar = pricing::price(&rules(), &member(Tier::Bronze, 0), &catalogue, &ticket(Outlet::Bar, &[("house-lemonade", 2, Cash)], 0), at(NOW))
            .unwrap();
        assert_eq!((bar.money_due, bar.lines[0].free_drink), (Money::ZERO, true));
        let restaurant =
            pricing::price(&rules(), &member(Tier::Bronze, 0), &catalogue, &ticket(Outlet::Restaurant, &[("house-lemonade", 2, Cash)], 0), at(NOW))
                .unwrap();
        assert_eq!(restaurant.money_due, eur("6.00"));
    }

    #[test]
    fn free_drinks_are_configurable_by_article() {
        let rules = rules_with("[redemption]\nfree_drink_skus = [\"cocktail\"]");
        check_price(&rules, member(Tier::Bronze, 0), Outlet::Bar, ("cocktail", 1, Pts), Ok(("0.00", 0)));
    }

    /// (lot, amount) of each entry a reversal writes, and whether each gives back or takes back.
    fn reversal(settled: &pricing::SettledPoints, lots: &[Lot<Points>]) -> Result<Vec<(i64, i64, bool)>, RulesError> {
        pricing::reverse(&rules(), settled, lots, at(NOW)).map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let LotRef::Existing(lot) = e.lot else { panic!("a reversal changes existing lots") };
                    (lot.0, e.amount.0, matches!(e.kind, PointsKind::Returned(_)))
                })
                .collect()
        })
    }

    #[test]
    fn a_refund_gives_spent_points_back_into_the_lots_they_came_from() {
        let settled = pricing::SettledPoints {
            outlet: Outlet::Restaurant,
            spent: vec![(LotId(1), Points(200)), (LotId(2), Points(115))],
            earned: None,
        };
        let lots = [lot(1, "2025-01-01 10:00", 0), lot(2, "2025-02-01 10:00", 885)];
        assert_eq!(reversal(&settled, &lots), Ok(vec![(1, 200, true), (2, 115, true)]));
    }

    #[test]
    fn a_void_takes_back_the_earning_from_its_own_lot_first_then_the_oldest() {
        let settled = pricing::SettledPoints { outlet: Outlet::Bar, spent: vec![], earned: Some((LotId(3), Points(7))) };
        let lots = [lot(1, "2025-01-01 10:00", 10), lot(3, "2025-02-28 10:00", 4)];
        assert_eq!(reversal(&settled, &lots), Ok(vec![(3, -4, false), (1, -3, false)]));
    }

    #[test]
    fn a_void_is_refused_when_the_points_it_earned_are_gone() {
        let settled = pricing::SettledPoints { outlet: Outlet::Bar, spent: vec![], earned: Some((LotId(3), Points(7))) };
        let lots = [lot(3, "2025-02-28 10:00", 2)];
        assert_eq!(
            reversal(&settled, &lots),
            Err(RulesError::InsufficientPoints { wanted: Points(7), available: Points(2) })
        );
    }

    #[test]
    fn a_reversed_earning_counts_against_the_qualifying_points() {
        let settled = pricing::SettledPoints { outlet: Outlet::Bar, spent: vec![], earned: Some((LotId(3), Points(7))) };
        let entries = pricing::reverse(&rules(), &settled, &[lot(3, "2025-02-28 10:00", 7)], at(NOW)).unwrap();
        assert_eq!(entries.iter().map(|e| e.qualifying()).collect::<Vec<_>>(), vec![Points(-7)]);
        assert!(entries.iter().all(|e| e.rule_version == *rules().version()));
    }

    #[test]
    fn an_article_without_a_point_price_cannot_be_paid_with_points() {
        check_price(
            &rules(),
            member(Tier::Gold, 0),
            Outlet::Bar,
            ("cigarettes", 1, Pts),
            Err(RulesError::NotForPoints("cigarettes".to_owned())),
        );
    }

    #[test]
    fn an_article_not_in_the_catalogue_is_refused() {
        check_price(
            &rules(),
            bronze(),
            Outlet::Bar,
            ("caviar", 1, Cash),
            Err(RulesError::UnknownArticle("caviar".to_owned())),
        );
    }

    #[test]
    fn an_excluded_member_pays_list_prices_without_free_drinks() {
        let member = Member { tier: Tier::Gold, ..excluded(ExclusionKind::Ban, "2025-01-01 00:00", None) };
        check_price(&rules(), member.clone(), Outlet::Bar, ("cocktail", 1, Cash), Ok(("10.00", 0)));
        check_price(&rules(), member, Outlet::Bar, ("espresso", 1, Cash), Ok(("2.00", 0)));
    }

    #[test]
    fn an_excluded_member_cannot_pay_with_points() {
        let member = excluded(ExclusionKind::OwnRequest, "2025-01-01 00:00", None);
        check_price(
            &rules(),
            member,
            Outlet::Bar,
            ("cocktail", 1, Pts),
            Err(RulesError::Refused(RefusalCode::SelfExcluded)),
        );
    }

    #[track_caller]
    fn check_showcase(quantity: u32, taken_today: u32, expected: Result<i64, RulesError>) {
        let ticket = ticket(Outlet::Showcase, &[("watch", quantity, Pts)], taken_today);
        let got = pricing::price(&rules(), &bronze(), &catalogue(), &ticket, at(NOW));
        assert_eq!(got.map(|t| t.points_due.0), expected);
    }

    #[test]
    fn showcase_first_article_of_the_day_is_allowed() {
        check_showcase(1, 0, Ok(15_000));
    }

    #[test]
    fn showcase_second_article_same_day_is_refused() {
        check_showcase(1, 1, Err(RulesError::ShowcaseLimit { limit: 1, already: 1, asked: 1 }));
    }

    #[test]
    fn showcase_two_articles_in_one_ticket_are_refused() {
        check_showcase(2, 0, Err(RulesError::ShowcaseLimit { limit: 1, already: 0, asked: 2 }));
    }

    /// Settles a one-outlet ticket; the points spent per lot and the points earned.
    #[track_caller]
    fn check_settle(
        member: Member,
        lots: &[Lot<Points>],
        ticket: Ticket,
        tenders: &[(TenderKind, &str)],
        expected: Result<(Vec<(i64, i64)>, i64), RulesError>,
    ) {
        let tenders: Vec<Tender> = tenders.iter().map(|(kind, a)| Tender { kind: *kind, amount: eur(a) }).collect();
        let got = pricing::settle(&rules(), &member, &catalogue(), &ticket, &tenders, lots, at(NOW));
        assert_eq!(got.map(|s| (draws(&s.points), s.earning.points().0)), expected);
    }

    #[test]
    fn paying_with_points_spends_the_oldest_lot_first() {
        let lots = [lot(2, "2025-02-01 10:00", 100), lot(1, "2025-01-01 10:00", 50)];
        check_settle(
            bronze(),
            &lots,
            ticket(Outlet::Bar, &[("cocktail", 1, Pts)], 0),
            &[],
            Ok((vec![(1, -50), (2, -50)], 0)),
        );
    }

    #[test]
    fn the_daily_limit_at_the_restaurant_is_the_available_points() {
        check_settle(
            bronze(),
            &[lot(1, "2025-01-01 10:00", 400)],
            ticket(Outlet::Restaurant, &[("dinner", 1, Pts)], 0),
            &[],
            Err(RulesError::InsufficientPoints { wanted: Points(450), available: Points(400) }),
        );
    }

    #[test]
    fn a_cash_payment_earns_points_on_the_discounted_price() {
        // 45.00 less 20 % = 36.00 cash -> 9 points
        check_settle(
            member(Tier::Silver, 0),
            &[],
            ticket(Outlet::Restaurant, &[("dinner", 1, Cash)], 0),
            &[(TenderKind::Cash, "36.00")],
            Ok((vec![], 9)),
        );
    }

    #[test]
    fn tobacco_bought_with_cash_at_a_settlement_earns_nothing() {
        check_settle(
            bronze(),
            &[],
            ticket(Outlet::Bar, &[("cigarettes", 2, Cash)], 0),
            &[(TenderKind::Cash, "11.00")],
            Ok((vec![], 0)),
        );
    }

    #[test]
    fn tenders_that_do_not_pay_the_money_due_are_refused() {
        check_settle(
            bronze(),
            &[lot(1, "2025-01-01 10:00", 1_000)],
            ticket(Outlet::Bar, &[("cocktail", 1, Cash), ("cocktail", 1, Pts)], 0),
            &[(TenderKind::Cash, "9.00")],
            Err(RulesError::TendersDoNotAddUp { due: eur("10.00"), tendered: eur("9.00") }),
        );
    }
}

mod end_of_membership {
    use club_rules::cashback::FreePlayGrant;
    use club_rules::membership::{self, EndReason};

    use super::*;

    const NOW: &str = "2025-03-01 12:00";

    fn grants() -> Vec<FreePlayGrant> {
        vec![Lot {
            id: LotId(5),
            opened_at: at("2025-02-20 10:00"),
            expires_at: at("2025-03-22 10:00"),
            remaining: eur("14.00"),
        }]
    }

    #[track_caller]
    fn check_end(reason: EndReason, state: MemberState, points: &[(i64, i64, PointsKind)], free_play: &[(i64, &str)]) {
        let lots = [lot(1, "2024-02-01 10:00", 70), lot(2, "2024-12-01 10:00", 500), lot(3, "2025-01-01 10:00", 0)];
        let ended = membership::end(&rules(), reason, &lots, &grants(), at(NOW));
        assert_eq!(ended.state, state);
        let got: Vec<(i64, i64, PointsKind)> =
            draws(&ended.points).into_iter().zip(&ended.points).map(|((id, n), e)| (id, n, e.kind.clone())).collect();
        assert_eq!(got, points);
        let got_free: Vec<(LotRef, Money)> = ended.free_play.iter().map(|e| (e.lot, e.amount)).collect();
        let want_free: Vec<(LotRef, Money)> =
            free_play.iter().map(|(id, a)| (LotRef::Existing(LotId(*id)), eur(a))).collect();
        assert_eq!(got_free, want_free);
    }

    #[test]
    fn end_reasons_have_their_storage_codes() {
        for reason in EndReason::ALL {
            assert_eq!(EndReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(EndReason::BreachOfHouseRules.code(), "breach_of_house_rules");
    }

    #[test]
    fn leaving_on_the_members_request_keeps_points_but_unusable() {
        check_end(EndReason::MemberRequest, MemberState::Left, &[], &[]);
    }

    #[test]
    fn the_club_closing_keeps_points_but_unusable() {
        check_end(EndReason::ClubClosure, MemberState::Left, &[], &[]);
    }

    #[test]
    fn points_are_unusable_from_the_day_the_member_left() {
        let member = Member { standing: Standing { member: MemberState::Left, ..Standing::clear() }, ..bronze() };
        let got = lots::spend(
            &rules(),
            &member,
            &[lot(2, "2024-12-01 10:00", 500)],
            Points(100),
            RedeemFor::Cashback,
            at(NOW),
        );
        assert_eq!(got, Err(RulesError::Refused(RefusalCode::MembershipEnded)));
    }

    #[test]
    fn termination_for_abuse_deletes_points_and_free_play_that_day() {
        check_end(
            EndReason::Abuse,
            MemberState::Terminated,
            &[(1, -70, PointsKind::Expired), (2, -500, PointsKind::Deleted(EndReason::Abuse))],
            &[(5, "-14.00")],
        );
    }

    #[test]
    fn death_deletes_points() {
        check_end(
            EndReason::Death,
            MemberState::Terminated,
            &[(1, -70, PointsKind::Expired), (2, -500, PointsKind::Deleted(EndReason::Death))],
            &[(5, "-14.00")],
        );
    }

    #[test]
    fn a_breach_of_house_rules_deletes_points() {
        check_end(
            EndReason::BreachOfHouseRules,
            MemberState::Terminated,
            &[(1, -70, PointsKind::Expired), (2, -500, PointsKind::Deleted(EndReason::BreachOfHouseRules))],
            &[(5, "-14.00")],
        );
    }
}

mod manual_corrections {
    use club_rules::corrections::{self, Correction, CorrectionRequest};

    use super::*;

    const NOW: &str = "2025-03-01 12:00";

    fn asked(points: i64, reason: &str) -> CorrectionRequest {
        CorrectionRequest { points: Points(points), reason: reason.to_owned(), by: StaffId(1) }
    }

    fn lots() -> [Lot<Points>; 2] {
        [lot(2, "2025-02-01 10:00", 600), lot(1, "2025-01-01 10:00", 300)]
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Applied(Vec<(i64, i64)>),
        NeedsApproval,
    }

    #[track_caller]
    fn check_request(request: CorrectionRequest, expected: Result<Outcome, RulesError>) {
        let got = corrections::request(&rules(), &request, &lots(), at(NOW)).map(|c| match c {
            Correction::Applied(entries) => {
                let kind = PointsKind::Corrected { reason: request.reason.clone(), by: StaffId(1), approved_by: None };
                assert!(entries.iter().all(|e| e.kind == kind), "reason and staff on every entry");
                Outcome::Applied(draws(&entries))
            }
            Correction::NeedsApproval { .. } => Outcome::NeedsApproval,
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn a_small_correction_is_applied_with_its_reason_and_staff_member() {
        check_request(asked(500, "play not recorded during a fault"), Ok(Outcome::Applied(vec![(0, 500)])));
    }

    #[test]
    fn a_correction_of_exactly_the_threshold_is_applied() {
        check_request(asked(-900, "fraud attempt"), Ok(Outcome::Applied(vec![(1, -300), (2, -600)])));
    }

    #[test]
    fn a_correction_above_1000_points_needs_a_second_person() {
        check_request(asked(1_500, "fault"), Ok(Outcome::NeedsApproval));
    }

    #[test]
    fn a_correction_cannot_take_the_balance_below_zero() {
        check_request(
            asked(-901, "fraud"),
            Err(RulesError::InsufficientPoints { wanted: Points(901), available: Points(900) }),
        );
    }

    #[test]
    fn a_correction_without_a_reason_is_refused() {
        check_request(asked(100, "  "), Err(RulesError::MissingReason));
    }

    #[test]
    fn a_correction_of_zero_points_is_refused() {
        check_request(asked(0, "nothing"), Err(RulesError::EmptyCorrection));
    }

    #[track_caller]
    fn check_approve(request: CorrectionRequest, approver: i64, expected: Result<Vec<(i64, i64)>, RulesError>) {
        let got = corrections::approve(&rules(), &request, StaffId(approver), &lots(), at(NOW));
        if let Ok(entries) = &got {
            assert!(entries.iter().all(
                |e| matches!(e.kind, PointsKind::Corrected { approved_by: Some(a), .. } if a == StaffId(approver))
            ));
        }
        assert_eq!(got.map(|e| draws(&e)), expected);
    }

    #[test]
    fn a_second_person_approves_a_large_correction() {
        check_approve(asked(2_000, "fault"), 2, Ok(vec![(0, 2_000)]));
    }

    #[test]
    fn the_person_who_asked_cannot_approve() {
        check_approve(asked(2_000, "fault"), 1, Err(RulesError::SameApprover(StaffId(1))));
    }

    #[test]
    fn a_small_correction_needs_no_approval() {
        check_approve(
            asked(200, "fault"),
            2,
            Err(RulesError::NoApprovalNeeded { points: Points(200), threshold: Points(1_000) }),
        );
    }

    #[test]
    fn the_approval_threshold_is_configurable() {
        let strict = rules_with("[corrections]\napproval_above_points = 100");
        let got = corrections::request(&strict, &asked(500, "fault"), &lots(), at(NOW)).unwrap();
        assert_eq!(got, Correction::NeedsApproval { threshold: Points(100) });
    }
}
