//! Staff accounts: roles and argon2id password hashes, and their administration (roles, disabling,
//! unlocking, password resets, a member of staff changing their own password).
//!
//! The consoles' login, lockout and sessions build on this; here are the accounts themselves.
//! Every change is audited with its before and after in its own transaction; a change that takes
//! access away (disabling, a password reset, losing roles) ends the account's sessions in that
//! same transaction. The floor always keeps one active administrator: the last one can neither be
//! disabled nor lose the role, so nobody is locked out of staff administration.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::Store;

/// What a staff member may do. A user may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reception,
    Croupier,
    PitBoss,
    Cashier,
    Bar,
    Manager,
    Administrator,
}

impl Role {
    pub const ALL: [Role; 7] =
        [Role::Reception, Role::Croupier, Role::PitBoss, Role::Cashier, Role::Bar, Role::Manager, Role::Administrator];

    pub fn code(self) -> &'static str {
        match self {
            Role::Reception => "reception",
            Role::Croupier => "croupier",
            Role::PitBoss => "pit_boss",
            Role::Cashier => "cashier",
            Role::Bar => "bar",
            Role::Manager => "manager",
            Role::Administrator => "administrator",
        }
    }

    pub fn from_code(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }
}

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes) and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::Config(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Config(format!("password hashing: {e}")))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Creates a staff account.
pub async fn create_user(
    store: &Store,
    username: &str,
    display_name: &str,
    password: &str,
    roles: &[Role],
    actor: &Actor,
    now: Millis,
) -> Result<i64> {
    if username.is_empty() || roles.is_empty() {
        return Err(Error::invalid("a staff account needs a username and at least one role"));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!("a staff password has at least {MIN_PASSWORD_CHARS} characters")));
    }
    let hash = hash_password(password)?;
    let roles_text = roles_text(roles);
    let mut tx = store.begin().await?;
    let id: i64 = match sqlx::query_scalar(
        "INSERT INTO staff_users (username, display_name, password_hash, roles, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(username)
    .bind(display_name)
    .bind(hash)
    .bind(&roles_text)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    {
        Err(e) if e.is_unique_violation() => return Err(Error::Conflict(format!("user {username} exists"))),
        other => other?,
    };
    audit::record(&mut tx, now, actor, "staff.create", &format!("staff:{id}"), None::<()>, Some(&roles_text)).await?;
    tx.commit().await?;
    Ok(id)
}

/// The shortest staff password.
pub const MIN_PASSWORD_CHARS: usize = 10;

fn roles_text(roles: &[Role]) -> String {
    Role::ALL.iter().filter(|r| roles.contains(r)).map(|r| r.code()).collect::<Vec<_>>().join(",")
}

/// Parses a stored role list; unknown codes are left out.
pub fn parse_roles(text: &str) -> Vec<Role> {
    text.split(',').filter_map(|c| Role::from_code(c.trim())).collect()
}

/// A staff account as its administrator sees it (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffAccount {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub language: String,
    pub locked_until: Option<Millis>,
    pub disabled: bool,
    pub created_at: Millis,
}

/// What [`StaffAccount`] is read from.
const ACCOUNT_COLUMNS: &str = "id, username, display_name, roles, language, locked_until, disabled_at, created_at";

/// Every staff account, by username.
pub async fn list(store: &Store) -> Result<Vec<StaffAccount>> {
    let rows = sqlx::query(AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM staff_users ORDER BY username")))
        .fetch_all(store.read())
        .await?;
    rows.iter().map(account_from_row).collect()
}

fn account_from_row(r: &sqlx::any::AnyRow) -> Result<StaffAccount> {
    use sqlx::Row;
    Ok(StaffAccount {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        roles: parse_roles(&r.try_get::<String, _>("roles")?),
        language: r.try_get("language")?,
        locked_until: r.try_get("locked_until")?,
        disabled: r.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        created_at: r.try_get("created_at")?,
    })
}

async fn account_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: i64) -> Result<StaffAccount> {
    let row = sqlx::query(AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM staff_users WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("staff account {id}")))?;
    account_from_row(&row)
}

/// Refuses a change that would leave no active administrator: `id` is the account changing.
async fn keep_an_administrator(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: i64) -> Result<()> {
    let others: Vec<String> = sqlx::query_scalar("SELECT roles FROM staff_users WHERE id <> $1 AND disabled_at IS NULL")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    if others.iter().any(|r| parse_roles(r).contains(&Role::Administrator)) {
        Ok(())
    } else {
        Err(Error::Conflict("this is the last active administrator".into()))
    }
}

async fn end_sessions(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: i64, now: Millis) -> Result<()> {
    sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE subject_kind = 'staff' AND subject_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets an account's roles (at least one). Taking roles away ends its sessions, so the next page
/// it asks for is checked against what it holds now.
pub async fn set_roles(store: &Store, id: i64, roles: &[Role], actor: &Actor, now: Millis) -> Result<()> {
    if roles.is_empty() {
        return Err(Error::invalid("a staff account needs at least one role"));
    }
    let mut tx = store.begin().await?;
    let before = account_in(&mut tx, id).await?;
    if before.roles.contains(&Role::Administrator) && !roles.contains(&Role::Administrator) && !before.disabled {
        keep_an_administrator(&mut tx, id).await?;
    }
    let after = roles_text(roles);
    sqlx::query("UPDATE staff_users SET roles = $1 WHERE id = $2").bind(&after).bind(id).execute(&mut *tx).await?;
    if before.roles.iter().any(|r| !roles.contains(r)) {
        end_sessions(&mut tx, id, now).await?;
    }
    audit::record(&mut tx, now, actor, "staff.roles", &format!("staff:{id}"), Some(roles_text(&before.roles)), Some(after)).await?;
    tx.commit().await?;
    Ok(())
}

/// Disables an account (its sessions end at once; it cannot log in) or enables it again. Nobody
/// disables their own account.
pub async fn set_disabled(store: &Store, id: i64, disabled: bool, actor: &Actor, now: Millis) -> Result<()> {
    if disabled && matches!(actor, Actor::Staff { id: me, .. } if *me == id) {
        return Err(Error::Conflict("you cannot disable your own account".into()));
    }
    let mut tx = store.begin().await?;
    let before = account_in(&mut tx, id).await?;
    if disabled && before.roles.contains(&Role::Administrator) {
        keep_an_administrator(&mut tx, id).await?;
    }
    let at = disabled.then_some(now);
    sqlx::query("UPDATE staff_users SET disabled_at = $1 WHERE id = $2").bind(at).bind(id).execute(&mut *tx).await?;
    if disabled {
        end_sessions(&mut tx, id, now).await?;
    }
    let what = if disabled { "staff.disable" } else { "staff.enable" };
    audit::record(&mut tx, now, actor, what, &format!("staff:{id}"), Some(before.disabled), Some(disabled)).await?;
    tx.commit().await?;
    Ok(())
}

/// Lifts a lockout after repeated failed logins.
pub async fn unlock(store: &Store, id: i64, actor: &Actor, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    let before = account_in(&mut tx, id).await?;
    sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
    audit::record(&mut tx, now, actor, "staff.unlock", &format!("staff:{id}"), before.locked_until, None::<()>).await?;
    tx.commit().await?;
    Ok(())
}

/// A password to hand over in person: 16 characters from an alphabet without look-alikes
/// (about 79 bits).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// Gives an account a new random password, lifts its lockout and ends its sessions. Returns the
/// account's username and the password (shown once, to hand over in person).
pub async fn reset_password(store: &Store, id: i64, actor: &Actor, now: Millis) -> Result<(String, String)> {
    let password = random_password();
    let hash = hash_password(&password)?;
    let mut tx = store.begin().await?;
    let account = account_in(&mut tx, id).await?;
    sqlx::query("UPDATE staff_users SET password_hash = $1, failed_logins = 0, locked_until = NULL WHERE id = $2").bind(hash).bind(id).execute(&mut *tx).await?;
    end_sessions(&mut tx, id, now).await?;
    audit::record(&mut tx, now, actor, "staff.password_reset", &format!("staff:{id}"), None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok((account.username, password))
}

/// A member of staff changes their own password, giving the current one. Their other sessions
/// end; `keep_session` (the one making the change) stays.
pub async fn change_password(store: &Store, actor: &Actor, current: &str, new: &str, keep_session: &str, now: Millis) -> Result<()> {
    let Actor::Staff { id, .. } = actor else { return Err(Error::Forbidden) };
    let id = *id;
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!("a staff password has at least {MIN_PASSWORD_CHARS} characters")));
    }
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM staff_users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.read())
        .await?
        .ok_or_else(|| Error::NotFound(format!("staff account {id}")))?;
    if !verify_password(current, &stored) {
        return Err(Error::invalid("the current password is not right"));
    }
    let hash = hash_password(new)?;
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE staff_users SET password_hash = $1 WHERE id = $2").bind(hash).bind(id).execute(&mut *tx).await?;
    sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE subject_kind = 'staff' AND subject_id = $2 AND ended_at IS NULL AND id <> $3")
        .bind(now)
        .bind(id)
        .bind(keep_session)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, now, actor, "staff.password_change", &format!("staff:{id}"), None::<()>, None::<()>).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("anything", "not a hash"));
    }
}
