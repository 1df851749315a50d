//! Who may join the club, and joining: the reception's checks before a person becomes a member
//! (RULES.md 1, "Membership"), the employee list, and the regulator's register of self-excluded
//! persons imported from its file.
//!
//! Key decision: the checks and the enrolment run in one write transaction, so a register import
//! or a ban committed a moment earlier is seen; a refusal writes nothing but its audit line
//! (with the reason, not the applicant's personal data).
//!
//! The register file (`register.csv`, UTF-8, comma separated, one header line):
//! `entry_id,personal_id,first_name,last_name,birth_date,starts_on,ends_on` with dates as
//! `YYYY-MM-DD` and `ends_on` empty for an exclusion without end. `entry_id` is the regulator's own
//! number for the entry; importing a file again adds only entries not seen before. A file with one
//! bad row is refused whole, naming the row, and nothing of it is stored.
//!
//! The employee file (`employees.csv`, same conventions):
//! `personal_id,first_name,last_name,birth_date,employer,relation` where `relation` is
//! `employee`, `partner`, `contractor` or `student`.
//!
//! Not here: card states (`club`), the ledgers, the pages.

use chrono::NaiveDate;
use club_rules::RulesError;
use club_rules::gate::Exclusion;
use club_rules::membership::{self, Applicant, JoinRefusal};
use floor_protocol::{CardNumber, ServerMessage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor};
use crate::broadcast;
use crate::club::{self, NewPerson};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// Why reception may not enrol a person: the rules' reasons (`club_rules::membership::may_join`)
/// and one of the register's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The rules refused: under 18, self-excluded (register or own list), banned, an employee.
    Rules(JoinRefusal),
    /// Already a member.
    AlreadyMember,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Rules(JoinRefusal::UnderAge) => "under_age",
            Refusal::Rules(JoinRefusal::SelfExcluded) => "self_excluded",
            Refusal::Rules(JoinRefusal::Banned) => "banned",
            Refusal::Rules(JoinRefusal::Employee) => "employee",
            Refusal::AlreadyMember => "already_member",
        }
    }
}

/// A new member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enrolled {
    pub person_id: i64,
    pub member_id: i64,
    /// The card issued with the enrolment, if a number was given (state `issued`).
    pub card_id: Option<i64>,
}

fn parse_date(s: &str, what: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| Error::invalid(format!("{what} must be YYYY-MM-DD")))
}

/// The first reason `p` may not join at `now`, or `None`: the person's exclusions and employee
/// status from the database, judged by the club's rule.
pub async fn check(tx: &mut Transaction<'static, Any>, p: &NewPerson, now: Millis) -> Result<Option<Refusal>> {
    let birth = parse_date(&p.birth_date, "birth date")?;
    let personal_id = p.personal_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    // A known person (same personal id) brings the exclusions recorded against their row too.
    let known: Option<i64> = match personal_id {
        Some(pid) => sqlx::query_scalar("SELECT id FROM persons WHERE personal_id = $1").bind(pid).fetch_optional(&mut **tx).await?,
        None => None,
    };
    if let Some(person) = known {
        let member: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE person_id = $1").bind(person).fetch_optional(&mut **tx).await?;
        if member.is_some() {
            return Ok(Some(Refusal::AlreadyMember));
        }
    }
    let at = crate::ledger::time(now)?;
    let kinds = club::active_exclusions(tx, known.unwrap_or(-1), personal_id, p.first_name.trim(), p.last_name.trim(), &p.birth_date, now).await?;
    let employee = p.is_employee || is_employee(tx, personal_id, p.first_name.trim(), p.last_name.trim(), &p.birth_date, now).await?;
    let applicant = Applicant {
        born_on: birth,
        exclusions: kinds.into_iter().map(|kind| Exclusion { kind, from: at, until: None }).collect(),
        employee,
    };
    match membership::may_join(&applicant, at.date_naive(), at) {
        Ok(()) => Ok(None),
        Err(RulesError::CannotJoin(why)) => Ok(Some(Refusal::Rules(why))),
        Err(e) => Err(Error::invalid(e.to_string())),
    }
}

async fn is_employee(
    tx: &mut Transaction<'static, Any>,
    personal_id: Option<&str>,
    first: &str,
    last: &str,
    birth: &str,
    now: Millis,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM employees WHERE (ended_at IS NULL OR ended_at > $1) AND \
         ((personal_id IS NOT NULL AND personal_id = $2) OR (LOWER(first_name) = LOWER($3) AND LOWER(last_name) = LOWER($4) AND birth_date = $5))",
    )
    .bind(now)
    .bind(personal_id)
    .bind(first)
    .bind(last)
    .bind(birth)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n > 0)
}

/// Enrols `p` as a Bronze member (and issues `card`, if given), or says why not. A refusal is
/// audited (its reason only) and stores nothing else.
pub async fn enrol(store: &Store, p: &NewPerson, card: Option<&CardNumber>, actor: &Actor, now: Millis) -> Result<std::result::Result<Enrolled, Refusal>> {
    if p.first_name.trim().is_empty() || p.last_name.trim().is_empty() {
        return Err(Error::invalid("first and last name are required"));
    }
    let mut tx = store.begin().await?;
    if let Some(refusal) = check(&mut tx, p, now).await? {
        drop(tx);
        let mut tx = store.begin().await?;
        audit::record(&mut tx, now, actor, "member.enrol_refused", "applicant", None::<()>, Some(refusal)).await?;
        tx.commit().await?;
        return Ok(Err(refusal));
    }
    let personal_id = p.personal_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let existing: Option<i64> = match personal_id {
        Some(pid) => sqlx::query_scalar("SELECT id FROM persons WHERE personal_id = $1").bind(pid).fetch_optional(&mut *tx).await?,
        None => None,
    };
    let person = NewPerson { personal_id: personal_id.map(str::to_owned), ..p.clone() };
    let person_id = match existing {
        Some(id) => id,
        None => club::create_person(&mut tx, &person, now).await?,
    };
    let member_id = club::create_member(&mut tx, person_id, now).await?;
    let card_id = match card {
        Some(c) => Some(club::issue_card(&mut tx, member_id, c, now).await?),
        None => None,
    };
    audit::record(
        &mut tx,
        now,
        actor,
        "member.enrol",
        &format!("member:{member_id}"),
        None::<()>,
        Some(serde_json::json!({ "person_id": person_id, "member_no": club::member_number(member_id), "card_id": card_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(Enrolled { person_id, member_id, card_id }))
}

/// One row of the regulator's register file.
#[derive(Debug, Clone, Deserialize)]
struct RegisterRow {
    entry_id: String,
    personal_id: Option<String>,
    first_name: String,
    last_name: String,
    birth_date: String,
    starts_on: String,
    ends_on: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub rows: u64,
    pub added: u64,
}

fn day_start(d: NaiveDate) -> Millis {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis()
}

fn blank(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn read_rows<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    reader
        .deserialize::<T>()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| Error::invalid(format!("row {}: {e}", i + 2))))
        .collect()
}

/// Imports the regulator's register file (see the module header) and blocks, on every terminal,
/// the active cards of members it names. All rows or none.
pub async fn import_register(store: &Store, bytes: &[u8], actor: &Actor, now: Millis) -> Result<Imported> {
    let rows: Vec<RegisterRow> = read_rows(bytes)?;
    let mut parsed = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let line = i + 2;
        let bad = |m: &str| Error::invalid(format!("row {line}: {m}"));
        if r.entry_id.is_empty() || r.first_name.is_empty() || r.last_name.is_empty() {
            return Err(bad("entry_id, first_name and last_name are required"));
        }
        let birth = parse_date(&r.birth_date, "birth_date").map_err(|_| bad("birth_date must be YYYY-MM-DD"))?;
        let starts = parse_date(&r.starts_on, "starts_on").map_err(|_| bad("starts_on must be YYYY-MM-DD"))?;
        let ends = match blank(r.ends_on.clone()) {
            Some(e) => Some(parse_date(&e, "ends_on").map_err(|_| bad("ends_on must be YYYY-MM-DD"))?),
            None => None,
        };
        if ends.is_some_and(|e| e <= starts) {
            return Err(bad("ends_on is not after starts_on"));
        }
        parsed.push((r.entry_id, blank(r.personal_id), r.first_name, r.last_name, birth.to_string(), day_start(starts), ends.map(day_start)));
    }
    let mut tx = store.begin().await?;
    let mut added = 0u64;
    for (entry, personal_id, first, last, birth, starts, ends) in &parsed {
        let key = format!("register:{entry}");
        let n = sqlx::query(
            "INSERT INTO exclusions (kind, personal_id, first_name, last_name, birth_date, starts_at, ends_at, reason, created_by, created_at, source_key) \
             VALUES ('register', $1, $2, $3, $4, $5, $6, 'register import', $7, $8, $9) ON CONFLICT (source_key) DO NOTHING",
        )
        .bind(personal_id)
        .bind(first)
        .bind(last)
        .bind(birth)
        .bind(starts)
        .bind(ends)
        .bind(actor.code())
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        added += n;
        if n == 1 && *starts <= now && ends.is_none_or(|e| e > now) {
            let cards: Vec<String> = sqlx::query_scalar(
                "SELECT c.card_number FROM cards c JOIN members m ON m.id = c.member_id JOIN persons p ON p.id = m.person_id \
                 WHERE c.state = 'active' AND ((p.personal_id IS NOT NULL AND p.personal_id = $1) OR \
                 (LOWER(p.first_name) = LOWER($2) AND LOWER(p.last_name) = LOWER($3) AND p.birth_date = $4))",
            )
            .bind(personal_id)
            .bind(first)
            .bind(last)
            .bind(birth)
            .fetch_all(&mut *tx)
            .await?;
            for card in cards {
                broadcast::queue(&mut tx, now, &ServerMessage::BlockCard { card: CardNumber::new(card) }).await?;
            }
        }
    }
    let sha = hex::encode(Sha256::digest(bytes));
    let import_id: i64 = sqlx::query_scalar(
        "INSERT INTO register_imports (file_sha256, rows_read, rows_added, imported_by, imported_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&sha)
    .bind(parsed.len() as i64)
    .bind(added as i64)
    .bind(actor.code())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let result = Imported { rows: parsed.len() as u64, added };
    audit::record(&mut tx, now, actor, "register.import", &format!("register_import:{import_id}"), None::<()>, Some((&sha, result))).await?;
    tx.commit().await?;
    Ok(result)
}

/// A person on the employee list.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Employee {
    pub personal_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub employer: String,
    pub relation: String,
}

const RELATIONS: [&str; 4] = ["employee", "partner", "contractor", "student"];

fn validate_employee(e: &Employee) -> Result<()> {
    if e.first_name.trim().is_empty() || e.last_name.trim().is_empty() || e.employer.trim().is_empty() {
        return Err(Error::invalid("first name, last name and employer are required"));
    }
    parse_date(&e.birth_date, "birth date")?;
    if !RELATIONS.contains(&e.relation.trim()) {
        return Err(Error::invalid("relation is employee, partner, contractor or student"));
    }
    Ok(())
}

async fn insert_employee(tx: &mut Transaction<'static, Any>, e: &Employee, actor: &Actor, now: Millis) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO employees (personal_id, first_name, last_name, birth_date, employer, relation, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(blank(e.personal_id.clone()))
    .bind(e.first_name.trim())
    .bind(e.last_name.trim())
    .bind(e.birth_date.trim())
    .bind(e.employer.trim())
    .bind(e.relation.trim())
    .bind(actor.code())
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

/// Adds one person to the employee list.
pub async fn add_employee(store: &Store, e: &Employee, actor: &Actor, now: Millis) -> Result<i64> {
    validate_employee(e)?;
    let mut tx = store.begin().await?;
    let id = insert_employee(&mut tx, e, actor, now).await?;
    audit::record(&mut tx, now, actor, "employee.add", &format!("employee:{id}"), None::<()>, Some(serde_json::json!({ "employer": e.employer, "relation": e.relation })))
        .await?;
    tx.commit().await?;
    Ok(id)
}

/// Imports an employee file (see the module header): all rows or none.
pub async fn import_employees(store: &Store, bytes: &[u8], actor: &Actor, now: Millis) -> Result<Imported> {
    let rows: Vec<Employee> = read_rows(bytes)?;
    for (i, e) in rows.iter().enumerate() {
        validate_employee(e).map_err(|err| Error::invalid(format!("row {}: {err}", i + 2)))?;
    }
    let mut tx = store.begin().await?;
    for e in &rows {
        insert_employee(&mut tx, e, actor, now).await?;
    }
    let result = Imported { rows: rows.len() as u64, added: rows.len() as u64 };
    audit::record(&mut tx, now, actor, "employee.import", "employees", None::<()>, Some(result)).await?;
    tx.commit().await?;
    Ok(result)
}

/// Ends an employee row (the person left the operator or partner).
pub async fn end_employee(store: &Store, id: i64, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE employees SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL").bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
    if n != 1 {
        return Err(Error::NotFound(format!("current employee {id}")));
    }
    audit::record(&mut tx, now, actor, "employee.end", &format!("employee:{id}"), None::<()>, Some(now)).await?;
    tx.commit().await?;
    Ok(())
}

/// A row of the employee list, for the page.
#[derive(Debug, Clone)]
pub struct EmployeeRow {
    pub id: i64,
    pub name: String,
    pub birth_date: String,
    pub employer: String,
    pub relation: String,
}

/// The current employee list.
pub async fn employees(store: &Store) -> Result<Vec<EmployeeRow>> {
    let rows = sqlx::query(
        "SELECT id, first_name, last_name, birth_date, employer, relation FROM employees WHERE ended_at IS NULL ORDER BY last_name, first_name, id",
    )
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EmployeeRow {
                id: r.try_get("id")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                birth_date: r.try_get("birth_date")?,
                employer: r.try_get("employer")?,
                relation: r.try_get("relation")?,
            })
        })
        .collect()
}

/// Persons matching a search: part of a name, a birth date, a card number or a member number.
#[derive(Debug, Clone)]
pub struct Found {
    pub person_id: i64,
    pub name: String,
    pub birth_date: String,
    pub member_no: Option<String>,
    pub member_state: Option<String>,
    pub tier: Option<String>,
}

/// Finds persons by name (part of the first or last name), birth date and/or card number.
pub async fn search(store: &Store, name: &str, birth_date: &str, card: &str) -> Result<Vec<Found>> {
    let name = name.trim().to_lowercase();
    let birth = birth_date.trim();
    let card = card.trim();
    if name.is_empty() && birth.is_empty() && card.is_empty() {
        return Ok(Vec::new());
    }
    let card = if card.is_empty() { String::new() } else { club::normalise_card(&CardNumber::new(card)).unwrap_or_else(|_| card.to_owned()) };
    let pattern = format!("%{name}%");
    let rows = sqlx::query(
        "SELECT p.id, p.first_name, p.last_name, p.birth_date, m.member_no, m.state, m.tier FROM persons p \
         LEFT JOIN members m ON m.person_id = p.id \
         WHERE ($1 = '' OR LOWER(p.first_name || ' ' || p.last_name) LIKE $2 OR LOWER(p.last_name) LIKE $2) \
           AND ($3 = '' OR p.birth_date = $3) \
           AND ($4 = '' OR m.member_no = $4 OR EXISTS (SELECT 1 FROM cards c WHERE c.member_id = m.id AND c.card_number = $4)) \
         ORDER BY p.last_name, p.first_name, p.id LIMIT 50",
    )
    .bind(&name)
    .bind(&pattern)
    .bind(birth)
    .bind(&card)
    .fetch_all(store.read())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Found {
                person_id: r.try_get("id")?,
                name: format!("{} {}", r.try_get::<String, _>("first_name")?, r.try_get::<String, _>("last_name")?),
                birth_date: r.try_get("birth_date")?,
                member_no: r.try_get("member_no")?,
                member_state: r.try_get("state")?,
                tier: r.try_get("tier")?,
            })
        })
        .collect()
}
