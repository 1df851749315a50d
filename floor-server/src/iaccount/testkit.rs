//! Test and demo support: valid personal ID numbers and IBANs, a complete registration, an active
//! account, a registered game server. Nothing here skips a rule: accounts are made through
//! [`register::register`] and [`register::verify`], like any other.

use chrono::NaiveDate;

use super::register::{self, Registration};
use crate::audit::Actor;
use crate::clock::Millis;
use crate::error::Result;
use crate::store::Store;

/// A staff member for tests and the demo.
pub fn staff() -> Actor {
    Actor::Staff { id: 1, username: "cashier".into() }
}

/// A valid Slovenian EMŠO for `birth`, different for each `n` below 500 (serial `n`, or `n + 500`
/// when `n` has no check digit).
pub fn emso(birth: NaiveDate, n: u32) -> String {
    let y = birth.format("%Y").to_string();
    let mut serial = n % 500;
    loop {
        let base = format!("{}{}50{:03}", birth.format("%d%m"), &y[1..4], serial);
        let weights = [7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
        let sum: u32 = base.chars().filter_map(|c| c.to_digit(10)).zip(weights).map(|(a, w)| a * w).sum();
        match 11 - sum % 11 {
            10 => serial += 500,
            11 => return format!("{base}0"),
            k => return format!("{base}{k}"),
        }
    }
}

/// A valid Slovenian IBAN, different for each `n`.
pub fn iban(n: u64) -> String {
    let bban = format!("{:015}", 263_300_000_000_000u64 + n);
    // ISO 7064 mod 97-10: BBAN + "SI00" with letters as numbers (S=28, I=18).
    let digits = format!("{bban}281800");
    let rem = digits.chars().fold(0u64, |acc, c| (acc * 10 + u64::from(c.to_digit(10).expect("digit"))) % 97);
    format!("SI{:02}{bban}", 98 - rem)
}

/// A complete, valid registration for player `n` born on `birth`.
pub fn registration(n: u32, birth: NaiveDate) -> Registration {
    Registration {
        username: format!("player{n}"),
        password: format!("correct horse {n}"),
        email: format!("player{n}@example.org"),
        first_name: "Ana".into(),
        last_name: format!("Novak{n}"),
        birth_date: birth.format("%Y-%m-%d").to_string(),
        personal_id: emso(birth, n),
        iban: iban(u64::from(n)),
        phone: "+38640111222".into(),
        address: "Slovenska cesta 1".into(),
        city: "Ljubljana".into(),
        postal_code: "1000".into(),
        country: "SI".into(),
        nationality: "SI".into(),
        sex: Some("f".into()),
        id_doc_type: "identity card".into(),
        id_doc_number: format!("IC{n:07}"),
        id_doc_country: "SI".into(),
        id_doc_issuer: "UE Ljubljana".into(),
    }
}

/// A registered and verified account for player `n`.
pub async fn active_account(store: &Store, n: u32, now: Millis) -> Result<i64> {
    let id = register::register(store, &club_rules::Rules::default().config().calendar, &registration(n, NaiveDate::from_ymd_opt(1980, 5, 17).expect("date")), now).await?;
    register::verify(store, id, &staff(), now).await?;
    Ok(id)
}

/// The id and secret of the test game server.
pub const GAME_SERVER: &str = "test-slot";
pub const GAME_SECRET: &str = "test-slot-secret-0123456789abcdef0123456789";

/// Registers the test game server (started from the account page at `launch_url`, if given).
pub async fn add_test_game_server(store: &Store, launch_url: Option<&str>, now: Millis) -> Result<()> {
    super::wallet::add_game_server(store, GAME_SERVER, "Test slot", GAME_SECRET, launch_url, &Actor::System("test"), now).await
}
