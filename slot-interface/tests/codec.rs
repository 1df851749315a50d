//! Byte vectors for every message type in both directions, and the codec's properties: encode
//! and decode are inverse, arbitrary bytes never panic a decoder, garbage and bad CRCs resync.
//!
//! The CRCs in the vectors were computed by an independent bitwise CRC-16/KERMIT, and two are
//! from the protocol's own examples (`01 01 51 08`, and `01 8A 00 00 00 10 00 E8 26` captured
//! on a real machine).

use proptest::prelude::*;
use slot_interface::aft::{
    lock_code, LockRequest, LockStatus, RegistrationKey, RegistrationRequest, RegistrationResponse, TransactionId,
    TransferFunds, TransferRecord, TransferRequest, TransferResponse, TransferStatus,
};
use slot_interface::codec::{
    BasicMeters, Event, EventDetail, Expect, HandpayInfo, HostMessage, LongPoll, MachineInfo, Meters10To15,
    Meters11To15, ReadPoll, Response, TaxStatus,
};
use slot_interface::{Address, Error, ExceptionCode, FrameFault, MeterCode};

fn a1() -> Address {
    Address::new(1).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
}

#[track_caller]
fn check_host(bytes: &str, message: HostMessage) {
    let bytes = hex(bytes);
    assert_eq!(message.encode().unwrap(), bytes, "encoding of {message:?}");
    let (decoded, used) = HostMessage::decode(&bytes).unwrap().expect("a whole frame");
    assert_eq!((decoded, used), (message, bytes.len()));
    for cut in 1..bytes.len() {
        assert!(matches!(HostMessage::decode(&bytes[..cut]), Ok(None)), "prefix of {cut} bytes is partial");
    }
}

#[track_caller]
fn check_response(bytes: &str, expect: Expect, response: Response) {
    let bytes = hex(bytes);
    assert_eq!(response.encode(a1()).unwrap(), bytes, "encoding of {response:?}");
    let (decoded, used) = Response::decode(a1(), expect, &bytes, true).unwrap().expect("a whole frame");
    assert_eq!((decoded, used), (response, bytes.len()));
}

fn long(command: u8) -> Expect {
    Expect::LongPoll { command, ack: false }
}

fn key() -> RegistrationKey {
    let mut k = [0u8; 20];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    RegistrationKey(k)
}

// --- host to machine ---------------------------------------------------------------------------

#[test]
fn general_poll_is_the_address_with_bit_7() {
    check_host("81", HostMessage::GeneralPoll(a1()));
    check_host("FF", HostMessage::GeneralPoll(Address::new(127).unwrap()));
}

#[test]
fn sync_poll_is_a_general_poll_to_address_zero() {
    check_host("80", HostMessage::Sync);
}

#[test]
fn shutdown_is_01_01_51_08() {
    check_host("01 01 51 08", HostMessage::LongPoll(a1(), LongPoll::Shutdown));
}

#[test]
fn startup_carries_a_crc() {
    check_host("01 02 CA 3A", HostMessage::LongPoll(a1(), LongPoll::Startup));
}

#[test]
fn real_time_event_reporting_on() {
    check_host("01 0E 01 45 D1", HostMessage::LongPoll(a1(), LongPoll::RealTimeEvents(true)));
}

#[test]
fn every_read_poll_is_address_and_command_without_crc() {
    for poll in ReadPoll::ALL {
        check_host(&format!("01 {:02X}", poll.command()), HostMessage::LongPoll(a1(), LongPoll::Read(poll)));
    }
}

#[test]
fn rom_signature_seed_is_binary_lsb_first() {
    check_host("01 21 34 12 0D A7", HostMessage::LongPoll(a1(), LongPoll::RomSignature { seed: 0x1234 }));
}

#[test]
fn selected_meters_for_the_whole_machine() {
    check_host(
        "01 2F 04 00 00 00 05 81 5D",
        HostMessage::LongPoll(a1(), LongPoll::SelectedMeters { game: 0, meters: vec![MeterCode(0x00), MeterCode(0x05)] }),
    );
}

#[test]
fn aft_lock_request_with_a_ten_second_timeout() {
    check_host(
        "01 74 00 01 10 00 85 F3",
        HostMessage::LongPoll(a1(), LongPoll::AftLock(LockRequest { code: lock_code::REQUEST, condition: 1, timeout_hundredths: 1000 })),
    );
    check_host("01 74 FF 00 00 00 1A F9", HostMessage::LongPoll(a1(), LongPoll::AftLock(LockRequest::interrogate())));
}

#[test]
fn aft_registration_read_and_register() {
    check_host("01 73 01 FF A7 65", HostMessage::LongPoll(a1(), LongPoll::AftRegister(RegistrationRequest::read())));
    check_host(
        "01 73 1D 01 39 30 00 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 00 00 00 00 5B 7B",
        HostMessage::LongPoll(
            a1(),
            LongPoll::AftRegister(RegistrationRequest { code: 0x01, asset_number: 12345, registration_key: key(), pos_id: 0 }),
        ),
    );
}

#[test]
fn aft_interrogation_of_the_current_transfer() {
    check_host(
        "01 72 02 FF 00 0F 22",
        HostMessage::LongPoll(a1(), LongPoll::AftTransfer(TransferFunds::Interrogate { index: 0, status_only: false })),
    );
}

#[test]
fn aft_free_play_transfer_of_five_euros() {
    let request = TransferRequest::free_play(TransactionId::parse("FP-0001").unwrap(), 500, 12345, RegistrationKey::default());
    check_host(
        "01 72 3C 00 00 00 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 40 39 30 00 00 00 00 00 00 00 00 00 00 00 00 \
         00 00 00 00 00 00 00 00 00 00 07 46 50 2D 30 30 30 31 00 00 00 00 00 00 00 00 00 42 6B",
        HostMessage::LongPoll(a1(), LongPoll::AftTransfer(TransferFunds::Request(Box::new(request)))),
    );
}

#[test]
fn legacy_bonus_frame_captured_on_a_real_machine() {
    check_host(
        "01 8A 00 00 00 10 00 E8 26",
        HostMessage::LongPoll(a1(), LongPoll::LegacyBonus { credits: 10, tax: TaxStatus::Deductible }),
    );
}

// --- machine to host ---------------------------------------------------------------------------

#[test]
fn ack_nack_and_busy() {
    let ack = Expect::LongPoll { command: 0x01, ack: true };
    check_response("01", ack, Response::Ack);
    check_response("81", ack, Response::Nack);
    check_response("01 00", ack, Response::Busy);
}

#[test]
fn a_bare_ack_waits_for_the_quiet_line() {
    let ack = Expect::LongPoll { command: 0x01, ack: true };
    assert!(matches!(Response::decode(a1(), ack, &[0x01], false), Ok(None)));
}

#[test]
fn one_byte_exceptions_answer_general_polls() {
    check_response("7E", Expect::GeneralPoll, Response::Exception(ExceptionCode::GAME_STARTED));
    check_response("00", Expect::GeneralPoll, Response::Exception(ExceptionCode::NO_ACTIVITY));
    // An exception equal to the address is only known once the line is quiet.
    assert!(matches!(Response::decode(a1(), Expect::GeneralPoll, &[0x01], false), Ok(None)));
    check_response("01", Expect::GeneralPoll, Response::Exception(ExceptionCode(0x01)));
}

#[test]
fn real_time_game_started_carries_wager_and_coin_in() {
    check_response(
        "01 FF 7E 00 05 00 00 12 34 00 00 87 AF",
        Expect::GeneralPoll,
        Response::RealTimeEvent(Event {
            code: ExceptionCode::GAME_STARTED,
            detail: EventDetail::GameStarted { credits_wagered: 5, coin_in: 1234, wager_type: 0, progressive_group: 0 },
        }),
    );
}

#[test]
fn real_time_game_ended_carries_the_win() {
    check_response(
        "01 FF 7F 00 00 00 20 F2 3C",
        Expect::GeneralPoll,
        Response::RealTimeEvent(Event { code: ExceptionCode::GAME_ENDED, detail: EventDetail::GameEnded { win: 20 } }),
    );
}

#[test]
fn real_time_event_without_data() {
    check_response(
        "01 FF 11 14 A4",
        Expect::GeneralPoll,
        Response::RealTimeEvent(Event::plain(ExceptionCode::SLOT_DOOR_OPENED)),
    );
}

#[test]
fn a_real_time_event_may_answer_a_long_poll() {
    let (r, _) = Response::decode(a1(), long(0x1A), &hex("01 FF 7F 00 00 00 20 F2 3C"), false).unwrap().unwrap();
    assert!(matches!(r, Response::RealTimeEvent(Event { code: ExceptionCode::GAME_ENDED, .. })));
}

#[test]
fn in_real_time_mode_a_chirp_before_an_event_is_skipped() {
    let line = hex("01 01 FF 7F 00 00 00 20 F2 3C");
    let Err(Error::Frame { fault: FrameFault::Garbage, skip: 1 }) = Response::decode(a1(), Expect::RealTimeGeneralPoll, &line, false)
    else {
        panic!("the chirp is noise")
    };
    let (r, _) = Response::decode(a1(), Expect::RealTimeGeneralPoll, &line[1..], false).unwrap().unwrap();
    assert!(matches!(r, Response::RealTimeEvent(Event { code: ExceptionCode::GAME_ENDED, .. })));
}

#[test]
fn rom_signature_answers_a_general_poll() {
    check_response("01 21 0F A0 9E 63", Expect::GeneralPoll, Response::RomSignature(0xA00F));
}

#[test]
fn current_credits_meter() {
    check_response("01 1A 00 00 12 34 45 2D", long(0x1A), Response::Meter { poll: ReadPoll::CurrentCredits, value: 1234 });
}

#[test]
fn meters_10_to_15() {
    check_response(
        "01 0F 00 00 00 01 12 34 56 78 87 65 43 21 00 00 05 00 00 00 00 00 00 00 00 42 E8 17",
        long(0x0F),
        Response::Meters10To15(Meters10To15 {
            cancelled_credits: 1,
            coin_in: 12_345_678,
            coin_out: 87_654_321,
            drop: 500,
            jackpot: 0,
            games_played: 42,
        }),
    );
}

#[test]
fn meters_11_to_15() {
    check_response(
        "01 19 00 00 01 00 00 00 00 50 00 00 00 20 00 00 00 00 00 00 00 03 77 47",
        long(0x19),
        Response::Meters11To15(Meters11To15 { coin_in: 100, coin_out: 50, drop: 20, jackpot: 0, games_played: 3 }),
    );
}

#[test]
fn basic_meters_1c() {
    check_response(
        "01 1C 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00 05 00 00 00 06 00 00 00 07 00 00 00 08 D3 8E",
        long(0x1C),
        Response::BasicMeters(BasicMeters {
            coin_in: 1,
            coin_out: 2,
            drop: 3,
            jackpot: 4,
            games_played: 5,
            games_won: 6,
            slot_door_opened: 7,
            power_reset: 8,
        }),
    );
}

#[test]
fn games_since_power_up_and_door_closure() {
    check_response("01 18 00 12 00 07 D9 AE", long(0x18), Response::GamesSincePowerUp { power_up: 12, door_closure: 7 });
}

#[test]
fn handpay_information() {
    check_response(
        "01 1B 01 02 00 01 25 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 C2 21",
        long(0x1B),
        Response::HandpayInfo(HandpayInfo { progressive_group: 1, level: 2, amount: 1_250_000, partial_pay: 0, reset_id: 0 }),
    );
}

#[test]
fn machine_id_and_information() {
    let info = MachineInfo {
        game_id: *b"AT",
        additional_id: *b"001",
        denomination: 0x01,
        max_bet: 5,
        progressive_group: 0,
        game_options: 0,
        paytable_id: *b"PT0001",
        base_percent: *b"9500",
    };
    check_response("01 1F 41 54 30 30 31 01 05 00 00 00 50 54 30 30 30 31 39 35 30 30 3D 30", long(0x1F), Response::MachineInfo(info));
    assert_eq!(info.base_percent_bp(), Some(9500));
    assert_eq!(info.accounting_denomination().unwrap().cents(), 1);
}

#[test]
fn selected_meters_with_a_five_byte_cents_meter() {
    check_response(
        "01 2F 12 00 00 00 00 00 12 34 05 00 00 00 56 0D 00 00 00 00 99 1E E7",
        long(0x2F),
        Response::SelectedMeters { game: 0, meters: vec![(MeterCode(0x00), 1234), (MeterCode(0x05), 56), (MeterCode(0x0D), 99)] },
    );
}

#[test]
fn aft_lock_and_status() {
    check_response(
        "01 74 23 39 30 00 00 00 01 00 88 10 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00 00 B7 92",
        long(0x74),
        Response::AftStatus(LockStatus {
            asset_number: 12345,
            lock_status: 0x00,
            available_transfers: 0x01,
            host_cashout_status: 0,
            aft_status: 0x88,
            max_buffer_index: 0x10,
            cashable_cents: 0,
            restricted_cents: 500,
            nonrestricted_cents: 0,
            transfer_limit_cents: 100_000,
            restricted_expiration: 0,
            restricted_pool_id: 0,
        }),
    );
}

#[test]
fn aft_registration_status() {
    check_response(
        "01 73 1D 01 39 30 00 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 00 00 00 00 5B 7B",
        long(0x73),
        Response::AftRegistration(RegistrationResponse { status: 0x01, asset_number: 12345, registration_key: key(), pos_id: 0 }),
    );
}

#[test]
fn aft_transfer_response_long_form() {
    check_response(
        "01 72 3F 00 00 FF 00 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 40 39 30 00 00 07 46 50 2D 30 30 30 31 07 08 20 \
         26 14 30 00 00 00 00 00 00 00 05 00 00 00 00 00 05 00 00 00 05 00 05 00 00 00 00 00 58 1E",
        long(0x72),
        Response::AftTransfer(TransferResponse {
            buffer_position: 0,
            status: TransferStatus::FULL,
            receipt_status: Some(0xFF),
            record: Some(TransferRecord {
                transfer_type: 0,
                cashable_cents: 0,
                restricted_cents: 500,
                nonrestricted_cents: 0,
                flags: 0x40,
                asset_number: 12345,
                transaction_id: TransactionId::parse("FP-0001").unwrap(),
                date: 7_082_026,
                time: 143_000,
                expiration: 0,
                pool_id: 0,
                cumulative: [Some(0), Some(500), Some(0)],
            }),
        }),
    );
}

#[test]
fn aft_transfer_response_short_forms() {
    check_response(
        "01 72 02 00 C1 4A 0A",
        long(0x72),
        Response::AftTransfer(TransferResponse {
            buffer_position: 0,
            status: TransferStatus::UNSUPPORTED_CODE,
            receipt_status: None,
            record: None,
        }),
    );
    check_response(
        "01 72 03 00 FF FF 25 D2",
        long(0x72),
        Response::AftTransfer(TransferResponse {
            buffer_position: 0,
            status: TransferStatus::NO_INFO,
            receipt_status: Some(0xFF),
            record: None,
        }),
    );
}

#[test]
fn transfer_status_classes() {
    assert!(TransferStatus::FULL.is_success() && TransferStatus::PARTIAL.is_success());
    assert!(TransferStatus::PENDING.is_pending());
    assert!(TransferStatus::NOT_UNIQUE.is_failure() && TransferStatus::UNEXPECTED.is_failure());
    assert!(!TransferStatus::NO_INFO.is_failure() && !TransferStatus::NO_INFO.is_success());
}

#[test]
fn transaction_ids_are_1_to_20_printable_characters() {
    assert!(TransactionId::parse("").is_err());
    assert!(TransactionId::parse("123456789012345678901").is_err());
    assert!(TransactionId::parse("tab\there").is_err());
    assert!(TransactionId::parse("12345678901234567890").is_ok());
}

#[test]
fn registration_keys_never_show_in_debug_output() {
    let text = format!("{:?}", RegistrationRequest { code: 1, asset_number: 1, registration_key: key(), pos_id: 0 });
    assert!(!text.contains("20") && text.contains("RegistrationKey(..)"), "{text}");
}

// --- resynchronisation -------------------------------------------------------------------------

#[test]
fn a_long_poll_with_a_bad_crc_is_skipped_whole_and_the_next_one_decodes() {
    let mut line = hex("01 02 CA 3B");
    line.extend(hex("01 0E 01 45 D1"));
    let Err(Error::Frame { fault: FrameFault::Crc, skip }) = HostMessage::decode(&line) else { panic!("bad CRC") };
    assert_eq!(skip, 4);
    let (message, _) = HostMessage::decode(&line[skip..]).unwrap().unwrap();
    assert_eq!(message, HostMessage::LongPoll(a1(), LongPoll::RealTimeEvents(true)));
}

#[test]
fn garbage_before_a_machine_answer_is_skipped_to_the_address() {
    let line = hex("55 AA 01 1A 00 00 12 34 45 2D");
    let Err(Error::Frame { fault: FrameFault::Garbage, skip }) = Response::decode(a1(), long(0x1A), &line, false) else {
        panic!("garbage")
    };
    assert_eq!(skip, 2);
    let (r, used) = Response::decode(a1(), long(0x1A), &line[skip..], false).unwrap().unwrap();
    assert_eq!((r, used), (Response::Meter { poll: ReadPoll::CurrentCredits, value: 1234 }, 8));
}

#[test]
fn a_machine_answer_with_a_bad_crc_is_a_crc_fault() {
    let line = hex("01 1A 00 00 12 34 45 2E");
    assert!(matches!(Response::decode(a1(), long(0x1A), &line, false), Err(Error::Frame { fault: FrameFault::Crc, skip: 8 })));
}

#[test]
fn an_unsupported_long_poll_is_dropped() {
    assert!(matches!(
        HostMessage::decode(&hex("01 54 00")),
        Err(Error::Frame { fault: FrameFault::Unsupported(0x54), skip: 3 })
    ));
}

// --- properties --------------------------------------------------------------------------------

fn bcd_value(digits: u32) -> impl Strategy<Value = u64> {
    0..10u64.pow(digits)
}

fn address() -> impl Strategy<Value = Address> {
    (1u8..=127).prop_map(|a| Address::new(a).unwrap())
}

fn transaction_id() -> impl Strategy<Value = TransactionId> {
    "[ -~]{1,20}".prop_map(|s| TransactionId::parse(&s).unwrap())
}

fn reg_key() -> impl Strategy<Value = RegistrationKey> {
    any::<[u8; 20]>().prop_map(RegistrationKey)
}

fn long_poll() -> impl Strategy<Value = LongPoll> {
    let request = (
        0u8..=1,
        any::<u8>(),
        (bcd_value(10), bcd_value(10), bcd_value(10)),
        any::<u8>(),
        any::<u32>(),
        reg_key(),
        transaction_id(),
        bcd_value(8),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..8),
        bcd_value(4),
    )
        .prop_map(|(code, transfer_type, (c, r, n), flags, asset, key, id, exp, pool, receipt, timeout)| {
            LongPoll::AftTransfer(TransferFunds::Request(Box::new(TransferRequest {
                code,
                transfer_type,
                cashable_cents: c,
                restricted_cents: r,
                nonrestricted_cents: n,
                flags,
                asset_number: asset,
                registration_key: key,
                transaction_id: id,
                expiration: exp as u32,
                pool_id: pool,
                receipt_data: receipt,
                lock_timeout: timeout as u16,
            })))
        });
    prop_oneof![
        Just(LongPoll::Shutdown),
        Just(LongPoll::Startup),
        any::<bool>().prop_map(LongPoll::RealTimeEvents),
        proptest::sample::select(ReadPoll::ALL.to_vec()).prop_map(LongPoll::Read),
        any::<u16>().prop_map(|seed| LongPoll::RomSignature { seed }),
        (bcd_value(4), proptest::collection::vec(any::<u8>().prop_map(MeterCode), 1..=10))
            .prop_map(|(game, meters)| LongPoll::SelectedMeters { game: game as u16, meters }),
        request,
        Just(LongPoll::AftTransfer(TransferFunds::Cancel)),
        (any::<u8>(), any::<bool>()).prop_map(|(index, status_only)| LongPoll::AftTransfer(TransferFunds::Interrogate { index, status_only })),
        (prop_oneof![Just(0u8), Just(1), Just(0x40)], any::<u32>(), reg_key(), any::<u32>()).prop_map(|(code, a, k, p)| {
            LongPoll::AftRegister(RegistrationRequest { code, asset_number: a, registration_key: k, pos_id: p })
        }),
        Just(LongPoll::AftRegister(RegistrationRequest::read())),
        (any::<u8>(), any::<u8>(), bcd_value(4))
            .prop_map(|(code, condition, t)| LongPoll::AftLock(LockRequest { code, condition, timeout_hundredths: t as u16 })),
        (bcd_value(8), prop_oneof![Just(TaxStatus::Deductible), Just(TaxStatus::NonDeductible), Just(TaxStatus::WagerMatch)])
            .prop_map(|(credits, tax)| LongPoll::LegacyBonus { credits: credits as u32, tax }),
    ]
}

fn host_message() -> impl Strategy<Value = HostMessage> {
    prop_oneof![
        address().prop_map(HostMessage::GeneralPoll),
        Just(HostMessage::Sync),
        (address(), long_poll()).prop_map(|(a, p)| HostMessage::LongPoll(a, p)),
    ]
}

fn known_meter() -> impl Strategy<Value = (MeterCode, u64)> {
    (0u8..=0x26).prop_flat_map(|code| {
        let (size, _) = MeterCode(code).layout().unwrap();
        bcd_value(2 * size as u32).prop_map(move |v| (MeterCode(code), v))
    })
}

/// Answers paired with what the host expects when it receives them.
fn response() -> impl Strategy<Value = (Expect, Response)> {
    let m = || bcd_value(8);
    let event = prop_oneof![
        any::<u8>().prop_map(|c| Event::plain(ExceptionCode(c))),
        (bcd_value(4), bcd_value(8), any::<u8>(), any::<u8>()).prop_map(|(w, c, t, g)| Event {
            code: ExceptionCode::GAME_STARTED,
            detail: EventDetail::GameStarted { credits_wagered: w as u32, coin_in: c, wager_type: t, progressive_group: g },
        }),
        bcd_value(8).prop_map(|win| Event { code: ExceptionCode::GAME_ENDED, detail: EventDetail::GameEnded { win } }),
    ]
    // An event's data length is fixed by its code; a plain event must not be one of those.
    .prop_filter("data length matches code", |e| e.detail != EventDetail::None || e.code.rte_data_len() == 0);
    let record = (any::<u8>(), (m(), m(), m()), any::<u8>(), any::<u32>(), transaction_id(), bcd_value(8), bcd_value(6), any::<u16>())
        .prop_map(|(t, (c, r, n), flags, asset, id, date, time, pool)| TransferRecord {
            transfer_type: t,
            cashable_cents: c,
            restricted_cents: r,
            nonrestricted_cents: n,
            flags,
            asset_number: asset,
            transaction_id: id,
            date: date as u32,
            time: time as u32,
            expiration: 0,
            pool_id: pool,
            cumulative: [Some(c), None, Some(n)],
        });
    prop_oneof![
        Just((Expect::LongPoll { command: 1, ack: true }, Response::Ack)),
        Just((Expect::LongPoll { command: 1, ack: true }, Response::Nack)),
        Just((Expect::LongPoll { command: 0x1F, ack: false }, Response::Busy)),
        (2u8..=0xFF).prop_map(|c| (Expect::GeneralPoll, Response::Exception(ExceptionCode(c)))),
        event.prop_map(|e| (Expect::GeneralPoll, Response::RealTimeEvent(e))),
        any::<u16>().prop_map(|s| (Expect::GeneralPoll, Response::RomSignature(s))),
        (m(), m(), m(), m(), m(), m()).prop_map(|(a, b, c, d, e, f)| (
            long(0x0F),
            Response::Meters10To15(Meters10To15 { cancelled_credits: a, coin_in: b, coin_out: c, drop: d, jackpot: e, games_played: f })
        )),
        (m(), proptest::sample::select(vec![ReadPoll::CoinIn, ReadPoll::GamesPlayed, ReadPoll::CurrentCredits, ReadPoll::BillsValue]))
            .prop_map(|(value, poll)| (long(poll.command()), Response::Meter { poll, value })),
        (bcd_value(4), bcd_value(4)).prop_map(|(p, d)| (long(0x18), Response::GamesSincePowerUp { power_up: p, door_closure: d })),
        (bcd_value(4), proptest::collection::vec(known_meter(), 1..=10))
            .prop_map(|(game, meters)| (long(0x2F), Response::SelectedMeters { game: game as u16, meters })),
        (any::<u8>(), any::<u8>(), proptest::option::of(record)).prop_map(|(pos, status, record)| (
            long(0x72),
            Response::AftTransfer(TransferResponse {
                buffer_position: pos,
                status: TransferStatus(status),
                receipt_status: record.as_ref().map(|_| 0xFF),
                record
            })
        )),
        (any::<u8>(), any::<u32>(), reg_key(), any::<u32>()).prop_map(|(s, a, k, p)| (
            long(0x73),
            Response::AftRegistration(RegistrationResponse { status: s, asset_number: a, registration_key: k, pos_id: p })
        )),
        (any::<u32>(), any::<[u8; 5]>(), (m(), m(), m(), m()), any::<u16>()).prop_map(|(asset, b, (c, r, n, l), pool)| (
            long(0x74),
            Response::AftStatus(LockStatus {
                asset_number: asset,
                lock_status: b[0],
                available_transfers: b[1],
                host_cashout_status: b[2],
                aft_status: b[3],
                max_buffer_index: b[4],
                cashable_cents: c,
                restricted_cents: r,
                nonrestricted_cents: n,
                transfer_limit_cents: l,
                restricted_expiration: 0,
                restricted_pool_id: pool,
            })
        )),
    ]
}

proptest! {
    #[test]
    fn host_messages_round_trip(message in host_message()) {
        let bytes = message.encode().unwrap();
        let (decoded, used) = HostMessage::decode(&bytes).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn machine_answers_round_trip((expect, response) in response(), address in address()) {
        let bytes = response.encode(address).unwrap();
        // An exception equal to the address is ambiguous by design (resolved by the quiet line).
        let (decoded, used) = Response::decode(address, expect, &bytes, true).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, response);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_host_side_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match HostMessage::decode(&bytes) {
            Ok(Some((_, used))) => prop_assert!(used >= 1 && used <= bytes.len()),
            Ok(None) => {}
            Err(Error::Frame { skip, .. }) => prop_assert!(skip >= 1 && skip <= bytes.len().max(1)),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_machine_side_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        command in any::<u8>(),
        ack in any::<bool>(),
        general in any::<bool>(),
        quiet in any::<bool>(),
    ) {
        let expect = if general { Expect::GeneralPoll } else { Expect::LongPoll { command, ack } };
        match Response::decode(a1(), expect, &bytes, quiet) {
            Ok(Some((_, used))) => prop_assert!(used >= 1 && used <= bytes.len()),
            Ok(None) => {}
            Err(Error::Frame { skip, .. }) => prop_assert!(skip >= 1 && skip <= bytes.len().max(1)),
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
