//! Registration, identity verification and login for i-Account players (RULES.md 2, Art. 6-8).
//!
//! Key decision: one account per person. A registration is refused when its personal ID number,
//! its name with birth date, its IBAN or its e-mail already belongs to someone (the person row is
//! shared with the club, so a club member registering online is found too). Identity verification
//! sits behind [`IdentityVerifier`]; the default is a queue of documents staff check
//! ([`verify`]): until then the account moves no money.
//!
//! Not here: the session cookie and CSRF (the shared web foundation).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::time;
use crate::store::Store;

/// Failed logins before the account is locked, and for how long.
pub const MAX_FAILED_LOGINS: i64 = 5;
pub const LOCKOUT_MS: Millis = 15 * 60 * 1000;

/// What a player registers with. `Debug` shows only the username.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    pub username: String,
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Slovenian EMŠO (13 digits with its check digit).
    pub personal_id: String,
    pub iban: String,
    pub phone: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub nationality: String,
    #[serde(default)]
    pub sex: Option<String>,
    pub id_doc_type: String,
    pub id_doc_number: String,
    pub id_doc_country: String,
    pub id_doc_issuer: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Checks the check digit of a Slovenian EMŠO and that it carries the birth date given.
pub fn valid_emso(emso: &str, birth: NaiveDate) -> bool {
    let d: Vec<u32> = emso.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 13 || emso.len() != 13 {
        return false;
    }
    let weights = [7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = d.iter().zip(weights).map(|(a, w)| a * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        k => k,
    };
    if check != d[12] {
        return false;
    }
    let year = birth.format("%Y").to_string();
    emso[0..4] == birth.format("%d%m").to_string() && emso[4..7] == year[1..4]
}

/// Whole years between `birth` and `today`.
pub fn age(birth: NaiveDate, today: NaiveDate) -> i32 {
    today.years_since(birth).map_or(-1, |y| y as i32)
}

fn validate(r: &Registration, today: NaiveDate) -> Result<(NaiveDate, String)> {
    let birth = NaiveDate::parse_from_str(&r.birth_date, "%Y-%m-%d").map_err(|_| Error::invalid("birth date must be YYYY-MM-DD"))?;
    if age(birth, today) < 18 {
        return Err(Error::invalid("only adults (18 or older) may register"));
    }
    use iban::IbanLike;
    let iban: iban::Iban = r.iban.parse().map_err(|_| Error::invalid("the IBAN is not valid"))?;
    let email = r.email.trim();
    let valid_email = email.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.starts_with('.'))
        && !email.contains(char::is_whitespace);
    if !valid_email {
        return Err(Error::invalid("the e-mail address is not valid"));
    }
    if !valid_emso(&r.personal_id, birth) {
        return Err(Error::invalid("the personal ID number (EMŠO) is not valid for this birth date"));
    }
    if r.username.trim().len() < 3 || r.first_name.trim().is_empty() || r.last_name.trim().is_empty() {
        return Err(Error::invalid("username (3 characters or more), first and last name are required"));
    }
    if r.password.chars().count() < 10 {
        return Err(Error::invalid("a password has at least 10 characters"));
    }
    for (field, v) in [
        ("address", &r.address),
        ("city", &r.city),
        ("postal code", &r.postal_code),
        ("country", &r.country),
        ("nationality", &r.nationality),
        ("phone", &r.phone),
        ("identity document type", &r.id_doc_type),
        ("identity document number", &r.id_doc_number),
        ("issuing country", &r.id_doc_country),
        ("issuer", &r.id_doc_issuer),
    ] {
        if v.trim().is_empty() {
            return Err(Error::invalid(format!("{field} is required")));
        }
    }
    Ok((birth, iban.electronic_str().to_owned()))
}

/// Registers a player: validated, checked for duplicates, stored unverified. Returns the account id.
/// Age is counted on the casino's local date (`calendar`).
pub async fn register(store: &Store, calendar: &club_rules::config::CalendarConfig, r: &Registration, now: Millis) -> Result<i64> {
    let today = calendar.local_date(time(now)?);
    let (_birth, iban) = validate(r, today)?;
    let email = r.email.trim().to_lowercase();
    let hash = crate::staff::hash_password(&r.password)?;
    let mut tx = store.begin().await?;
    let dup: Option<String> = sqlx::query_scalar(
        "SELECT CASE WHEN p.personal_id = $1 THEN 'personal ID number' WHEN a.iban = $2 THEN 'IBAN' \
         WHEN LOWER(a.email) = $3 THEN 'e-mail' ELSE 'name and birth date' END \
         FROM persons p LEFT JOIN iaccounts a ON a.person_id = p.id \
         WHERE p.personal_id = $1 OR a.iban = $2 OR LOWER(a.email) = $3 OR LOWER(p.email) = $3 \
            OR (LOWER(p.first_name) = LOWER($4) AND LOWER(p.last_name) = LOWER($5) AND p.birth_date = $6) LIMIT 1",
    )
    .bind(&r.personal_id)
    .bind(&iban)
    .bind(&email)
    .bind(r.first_name.trim())
    .bind(r.last_name.trim())
    .bind(&r.birth_date)
    .fetch_optional(&mut *tx)
    .await?;
    // A club member (a person without an i-Account) may open one; a second i-Account may not.
    let existing_person: Option<(i64, bool)> = match &dup {
        None => None,
        Some(_) => {
            let row = sqlx::query(
                "SELECT p.id, (SELECT COUNT(*) FROM iaccounts a WHERE a.person_id = p.id) AS accounts FROM persons p \
                 WHERE p.personal_id = $1 AND LOWER(p.first_name) = LOWER($2) AND LOWER(p.last_name) = LOWER($3) AND p.birth_date = $4",
            )
            .bind(&r.personal_id)
            .bind(r.first_name.trim())
            .bind(r.last_name.trim())
            .bind(&r.birth_date)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => Some((row.try_get("id")?, row.try_get::<i64, _>("accounts")? > 0)),
                None => None,
            }
        }
    };
    let person_id = match (&dup, existing_person) {
        (None, _) => {
            let p = crate::club::NewPerson {
                first_name: r.first_name.clone(),
                last_name: r.last_name.clone(),
                birth_date: r.birth_date.clone(),
                personal_id: Some(r.personal_id.clone()),
                email: Some(email.clone()),
                phone: Some(r.phone.clone()),
                address: Some(r.address.clone()),
                city: Some(r.city.clone()),
                postal_code: Some(r.postal_code.clone()),
                country: Some(r.country.clone()),
                nationality: Some(r.nationality.clone()),
                is_employee: false,
            };
            crate::club::create_person(&mut tx, &p, now).await?
        }
        (Some(_), Some((id, false))) => id,
        (Some(what), _) => {
            return Err(Error::Conflict(format!("one account per person: an account with this {what} exists")));
        }
    };
    sqlx::query(
        "UPDATE persons SET sex = $1, id_doc_type = $2, id_doc_number = $3, id_doc_country = $4, id_doc_issuer = $5, iban = $6 WHERE id = $7",
    )
    .bind(&r.sex)
    .bind(&r.id_doc_type)
    .bind(&r.id_doc_number)
    .bind(&r.id_doc_country)
    .bind(&r.id_doc_issuer)
    .bind(&iban)
    .bind(person_id)
    .execute(&mut *tx)
    .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO iaccounts (person_id, username, email, iban, password_hash, last_activity_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(person_id)
    .bind(r.username.trim())
    .bind(&email)
    .bind(&iban)
    .bind(hash)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match Error::from(e) {
        e if e.is_unique_violation() => Error::Conflict("this username, e-mail or IBAN is taken".into()),
        e => e,
    })?;
    tx.commit().await?;
    Ok(id)
}

/// Checks a player's identity and age; the default is [`StaffQueue`]: documents wait for staff.
pub trait IdentityVerifier: Send + Sync {
    /// `Some(true)` verified now, `Some(false)` refused, `None` left for staff.
    fn check(&self, r: &Registration) -> Option<bool>;
}

/// Leaves every registration in the staff queue.
#[derive(Debug, Default, Clone, Copy)]
pub struct StaffQueue;

impl IdentityVerifier for StaffQueue {
    fn check(&self, _r: &Registration) -> Option<bool> {
        None
    }
}

/// An account waiting for staff to check the documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    pub account_id: i64,
    pub username: String,
    pub name: String,
    pub birth_date: String,
    pub id_doc_type: Option<String>,
    pub id_doc_number: Option<String>,
    pub registered_at: Millis,
}

/// The staff queue of unverified accounts, oldest first.
pub async fn verification_queue(store: &Store) -> Result<Vec<Queued>> {
    let rows = sqlx::query(
        "SELECT a.id, a.username, p.first_name, p.last_name, p.birth_date, p.id_doc_type, p.id_doc_number, a.created_at \
         FROM iaccounts a JOIN persons p ON p.id = a.person_id WHERE a.state = 'unverified' ORDER BY a.created_at, a.id",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Queued {
                account_id: r.try_get("id")?,
                username: r.try_get("username")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                birth_date: r.try_get("birth_date")?,
                id_doc_type: r.try_get("id_doc_type")?,
                id_doc_number: r.try_get("id_doc_number")?,
                registered_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// An i-Account as staff find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Found {
    pub account_id: i64,
    pub player_no: Option<String>,
    pub username: String,
    pub name: String,
    pub birth_date: String,
    pub state: super::AccountState,
}

/// The accounts (at most 50) whose player number, username or e-mail is `q`, or whose player's
/// name contains it; nothing for fewer than two characters.
pub async fn find_accounts(store: &Store, q: &str) -> Result<Vec<Found>> {
    let q = q.trim();
    if q.chars().count() < 2 {
        return Ok(Vec::new());
    }
    let like = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let rows = sqlx::query(
        "SELECT a.id, a.player_no, a.username, a.state, p.first_name, p.last_name, p.birth_date \
         FROM iaccounts a JOIN persons p ON p.id = a.person_id \
         WHERE a.player_no = $1 OR LOWER(a.username) = LOWER($1) OR LOWER(a.email) = LOWER($1) \
            OR LOWER(p.first_name || ' ' || p.last_name) LIKE LOWER($2) ESCAPE '\\' \
         ORDER BY a.id LIMIT 50",
    )
    .bind(q)
    .bind(like)
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            let state: String = r.try_get("state")?;
            Ok(Found {
                account_id: r.try_get("id")?,
                player_no: r.try_get("player_no")?,
                username: r.try_get("username")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                birth_date: r.try_get("birth_date")?,
                state: super::AccountState::from_code(&state).ok_or_else(|| Error::invalid("account state"))?,
            })
        })
        .collect()
}

/// Staff verified the documents: the account becomes active with its unique player number.
pub async fn verify(store: &Store, account_id: i64, actor: &Actor, now: Millis) -> Result<String> {
    if !matches!(actor, Actor::Staff { .. }) {
        return Err(Error::Forbidden);
    }
    let player_no = format!("P{:08}", account_id);
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE iaccounts SET state = 'active', player_no = $1 WHERE id = $2 AND state = 'unverified'")
        .bind(&player_no)
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::Conflict("the account is not waiting for verification".into()));
    }
    audit::record(&mut tx, now, actor, "iaccount.verify", &format!("iaccount:{account_id}"), Some("unverified"), Some("active")).await?;
    tx.commit().await?;
    Ok(player_no)
}

/// Staff refused the documents (unreadable, not the player's, a forgery, an age that does not
/// hold): the account is blocked and moves no money. The reason is kept in the audit log, in the
/// same transaction.
pub async fn refuse(store: &Store, account_id: i64, reason: &str, actor: &Actor, now: Millis) -> Result<()> {
    if !matches!(actor, Actor::Staff { .. }) {
        return Err(Error::Forbidden);
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid("a refusal needs its reason"));
    }
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE iaccounts SET state = 'blocked' WHERE id = $1 AND state = 'unverified'")
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n != 1 {
        return Err(Error::Conflict("the account is not waiting for verification".into()));
    }
    let after = serde_json::json!({ "state": "blocked", "reason": reason });
    audit::record(&mut tx, now, actor, "iaccount.verify_refused", &format!("iaccount:{account_id}"), Some("unverified"), Some(after)).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a login failed (the same answer whether the username exists or not, except a lockout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Wrong,
    #[error("too many failed attempts; try again later")]
    Locked,
}

/// Checks a player's password with lockout after [`MAX_FAILED_LOGINS`] failures. Returns the account id.
pub async fn login(store: &Store, username: &str, password: &str, now: Millis) -> Result<std::result::Result<i64, LoginError>> {
    let row = sqlx::query("SELECT id, password_hash, locked_until FROM iaccounts WHERE username = $1")
        .bind(username.trim())
        .fetch_optional(store.read())
        .await?;
    let Some(row) = row else {
        // Spend the same time as a real check, so a username cannot be probed by timing.
        let _ = crate::staff::verify_password(password, "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        return Ok(Err(LoginError::Wrong));
    };
    let id: i64 = row.try_get("id")?;
    if row.try_get::<Option<i64>, _>("locked_until")?.is_some_and(|t| t > now) {
        return Ok(Err(LoginError::Locked));
    }
    let hash: String = row.try_get("password_hash")?;
    let ok = crate::staff::verify_password(password, &hash);
    let mut tx = store.begin().await?;
    if ok {
        sqlx::query("UPDATE iaccounts SET failed_logins = 0, locked_until = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
    } else {
        sqlx::query(
            "UPDATE iaccounts SET locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END, \
             failed_logins = CASE WHEN failed_logins + 1 >= $1 THEN 0 ELSE failed_logins + 1 END WHERE id = $3",
        )
        .bind(MAX_FAILED_LOGINS)
        .bind(now + LOCKOUT_MS)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(if ok { Ok(id) } else { Err(LoginError::Wrong) })
}

/// A player found to be a minor: the account is closed at once and personal data deleted (RULES.md
/// 2, Privacy). The ledger stays (it holds no personal data); the person row keeps only its id.
/// A club membership of the same person ends too, in the same transaction: a minor may not be a
/// member (RULES.md 1, Membership), so it ends as a breach of the club's rules, which deletes the
/// points and free play, and the cards are blocked on every terminal.
pub async fn close_minor(store: &Store, rules: &club_rules::Rules, account_id: i64, actor: &Actor, now: Millis) -> Result<()> {
    if !matches!(actor, Actor::Staff { .. }) {
        return Err(Error::Forbidden);
    }
    let mut tx = store.begin().await?;
    let a = super::lock(&mut tx, account_id).await?;
    super::end_floor_membership(&mut tx, rules, a.person_id, club_rules::membership::EndReason::BreachOfClubRules, actor, now).await?;
    let erased = format!("erased-{account_id}");
    sqlx::query("UPDATE iaccounts SET state = 'closed', closed_at = $1, username = $2, email = $3, iban = $4, password_hash = '' WHERE id = $5")
        .bind(now)
        .bind(&erased)
        .bind(format!("{erased}@invalid"))
        .bind(&erased)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE persons SET first_name = '-', last_name = '-', birth_date = '0001-01-01', personal_id = NULL, email = NULL, phone = NULL, \
         address = NULL, city = NULL, postal_code = NULL, country = NULL, nationality = NULL, sex = NULL, id_doc_type = NULL, \
         id_doc_number = NULL, id_doc_country = NULL, id_doc_issuer = NULL, iban = NULL, data_blocked_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(a.person_id)
    .execute(&mut *tx)
    .await?;
    audit::record(&mut tx, now, actor, "iaccount.minor_closed", &format!("iaccount:{account_id}"), None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(())
}
