//! Staff accounts: roles and argon2id password hashes.
//!
//! The consoles' login, lockout and sessions build on this; here are the accounts themselves.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

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
    if password.chars().count() < 10 {
        return Err(Error::invalid("a staff password has at least 10 characters"));
    }
    let hash = hash_password(password)?;
    let roles_text = roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",");
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
