//! Server-side web sessions: a row per logged-in browser in `web_sessions`, on either backend, so
//! any floor-server process can serve any request and logging out ends the session everywhere.
//!
//! Key decision: the cookie carries a random 256-bit token; the database keeps only its SHA-256,
//! so a copy of the table logs nobody in. Each session has a synchronizer token for its forms
//! (CSRF), an idle and an absolute expiry, and a one-time flash message for the page after a form.
//! The cookie is `HttpOnly` and `SameSite=Strict`, and `Secure` unless the request came to a
//! loopback address (where plain HTTP never leaves the machine): on any other address a browser
//! then only sends it over TLS.
//!
//! Not here: who the subject is and what it may do (`auth` for staff; the i-Account for players).

use axum::http::HeaderMap;
use axum::http::header;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::clock::Millis;
use crate::error::Result;
use crate::store::Store;

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    Staff,
    Player,
}

impl SubjectKind {
    pub fn code(self) -> &'static str {
        match self {
            SubjectKind::Staff => "staff",
            SubjectKind::Player => "player",
        }
    }
}

/// How one kind of session lives: its cookie and its expiry.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub kind: SubjectKind,
    pub cookie: &'static str,
    /// Ends after this long without a request.
    pub idle_ms: Millis,
    /// Ends this long after login whatever happens.
    pub absolute_ms: Millis,
}

/// Staff consoles: 30 minutes idle, one 12-hour shift at most.
pub const STAFF: SessionPolicy =
    SessionPolicy { kind: SubjectKind::Staff, cookie: "club_staff", idle_ms: 30 * 60 * 1000, absolute_ms: 12 * 3600 * 1000 };

/// Online players: 15 minutes idle, 8 hours at most.
pub const PLAYER: SessionPolicy =
    SessionPolicy { kind: SubjectKind::Player, cookie: "club_player", idle_ms: 15 * 60 * 1000, absolute_ms: 8 * 3600 * 1000 };

/// `last_seen_at` is written at most this often (a request within it changes nothing).
const TOUCH_EVERY_MS: Millis = 60 * 1000;

/// A one-time message for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Flash {
        Flash { kind: "ok".into(), text: text.into() }
    }
    pub fn error(text: impl Into<String>) -> Flash {
        Flash { kind: "error".into(), text: text.into() }
    }
}

/// A live session.
#[derive(Clone)]
pub struct Session {
    /// SHA-256 (hex) of the cookie token: the row's key.
    pub id: String,
    pub kind: SubjectKind,
    pub subject_id: i64,
    /// The synchronizer token its forms carry.
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("kind", &self.kind).field("subject_id", &self.subject_id).finish_non_exhaustive()
    }
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two tokens.
pub fn tokens_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Starts a session for `subject_id`; returns the cookie token (shown to the browser only).
pub async fn create(store: &Store, policy: &SessionPolicy, subject_id: i64, now: Millis) -> Result<(String, Session)> {
    let token = random_token();
    let session = Session {
        id: hash(&token),
        kind: policy.kind,
        subject_id,
        csrf: random_token(),
        created_at: now,
        expires_at: now + policy.absolute_ms,
    };
    let mut tx = store.begin().await?;
    sqlx::query(
        "INSERT INTO web_sessions (id, subject_kind, subject_id, csrf_token, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(&session.id)
    .bind(policy.kind.code())
    .bind(subject_id)
    .bind(&session.csrf)
    .bind(now)
    .bind(session.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((token, session))
}

/// The live session a cookie token names, or `None` when it is unknown, of another kind, ended,
/// past its absolute expiry or idle too long. Records the request time (at most once a minute).
pub async fn load(store: &Store, policy: &SessionPolicy, token: &str, now: Millis) -> Result<Option<Session>> {
    let id = hash(token);
    let row = sqlx::query(
        "SELECT subject_kind, subject_id, csrf_token, created_at, last_seen_at, expires_at, ended_at FROM web_sessions WHERE id = $1",
    )
    .bind(&id)
    .fetch_optional(store.read())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.try_get("subject_kind")?;
    let last_seen: Millis = row.try_get("last_seen_at")?;
    let expires_at: Millis = row.try_get("expires_at")?;
    let ended: Option<Millis> = row.try_get("ended_at")?;
    if kind != policy.kind.code() || ended.is_some() || now >= expires_at || now - last_seen >= policy.idle_ms {
        return Ok(None);
    }
    if now - last_seen >= TOUCH_EVERY_MS {
        let mut tx = store.begin().await?;
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(Some(Session {
        id,
        kind: policy.kind,
        subject_id: row.try_get("subject_id")?,
        csrf: row.try_get("csrf_token")?,
        created_at: row.try_get("created_at")?,
        expires_at,
    }))
}

/// Ends one session (logout).
pub async fn end(store: &Store, session_id: &str, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of a subject (a disabled account, a changed password).
pub async fn end_all(store: &Store, kind: SubjectKind, subject_id: i64, now: Millis) -> Result<u64> {
    let mut tx = store.begin().await?;
    let n = sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE subject_kind = $2 AND subject_id = $3 AND ended_at IS NULL")
        .bind(now)
        .bind(kind.code())
        .bind(subject_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Leaves a message for the session's next page.
pub async fn set_flash(store: &Store, session_id: &str, flash: &Flash) -> Result<()> {
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE web_sessions SET flash = $1 WHERE id = $2")
        .bind(serde_json::to_string(flash).expect("flash serialises"))
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the session's message, if any (it is shown once).
pub async fn take_flash(store: &Store, session_id: &str) -> Result<Option<Flash>> {
    let text: Option<Option<String>> =
        sqlx::query_scalar("SELECT flash FROM web_sessions WHERE id = $1").bind(session_id).fetch_optional(store.read()).await?;
    let Some(Some(text)) = text else { return Ok(None) };
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE web_sessions SET flash = NULL WHERE id = $1").bind(session_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(serde_json::from_str(&text).ok())
}

/// Whether the request came to a loopback host (`Host` header), where cookies need no `Secure`.
pub fn is_loopback_request(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A session cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` off loopback).
pub fn cookie(name: &'static str, value: String, headers: &HeaderMap) -> Cookie<'static> {
    Cookie::build((name, value)).http_only(true).same_site(SameSite::Strict).path("/").secure(!is_loopback_request(headers)).build()
}

/// A cookie that removes `name` from the browser.
pub fn removal(name: &'static str, headers: &HeaderMap) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), headers);
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Backend;
    use crate::testing::TestDb;

    async fn sessions_expire_when_idle_or_old_and_end_at_logout(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else { return };
        let store = db.store().await;
        let (token, s) = create(&store, &STAFF, 7, 1_000).await.unwrap();
        assert_eq!(s.subject_id, 7);
        assert_ne!(s.id, token, "the database keeps a hash, not the token");
        // Another kind of session does not accept it.
        assert!(load(&store, &PLAYER, &token, 1_000).await.unwrap().is_none());
        // Used every 20 minutes: alive (each use moves the idle window).
        let mut t = 1_000;
        for _ in 0..3 {
            t += 20 * 60 * 1000;
            assert!(load(&store, &STAFF, &token, t).await.unwrap().is_some(), "alive at {t}");
        }
        // 30 minutes without a request: gone.
        assert!(load(&store, &STAFF, &token, t + STAFF.idle_ms).await.unwrap().is_none());
        // The absolute limit holds even for a busy session.
        let (busy, _) = create(&store, &STAFF, 8, 0).await.unwrap();
        let mut t = 0;
        while t + 10 * 60 * 1000 < STAFF.absolute_ms {
            t += 10 * 60 * 1000;
            assert!(load(&store, &STAFF, &busy, t).await.unwrap().is_some());
        }
        assert!(load(&store, &STAFF, &busy, STAFF.absolute_ms).await.unwrap().is_none());
        // Logout ends it at once; an unknown token is nobody.
        let (third, s3) = create(&store, &STAFF, 9, 0).await.unwrap();
        set_flash(&store, &s3.id, &Flash::ok("saved")).await.unwrap();
        assert_eq!(take_flash(&store, &s3.id).await.unwrap(), Some(Flash::ok("saved")));
        assert_eq!(take_flash(&store, &s3.id).await.unwrap(), None, "a flash shows once");
        end(&store, &s3.id, 10).await.unwrap();
        assert!(load(&store, &STAFF, &third, 11).await.unwrap().is_none());
        assert!(load(&store, &STAFF, &random_token(), 11).await.unwrap().is_none());
        store.close().await;
    }

    async fn ending_all_sessions_of_a_subject_leaves_others_alive(backend: Backend) {
        let Some(db) = TestDb::new(backend).await else { return };
        let store = db.store().await;
        let (a, _) = create(&store, &STAFF, 1, 0).await.unwrap();
        let (b, _) = create(&store, &STAFF, 1, 0).await.unwrap();
        let (c, _) = create(&store, &STAFF, 2, 0).await.unwrap();
        assert_eq!(end_all(&store, SubjectKind::Staff, 1, 5).await.unwrap(), 2);
        assert!(load(&store, &STAFF, &a, 6).await.unwrap().is_none());
        assert!(load(&store, &STAFF, &b, 6).await.unwrap().is_none());
        assert!(load(&store, &STAFF, &c, 6).await.unwrap().is_some());
        store.close().await;
    }

    crate::on_both_backends!(sessions_expire_when_idle_or_old_and_end_at_logout, ending_all_sessions_of_a_subject_leaves_others_alive);

    #[test]
    fn cookies_are_secure_off_loopback() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        let c = cookie("club_staff", "x".into(), &h);
        assert_eq!(c.secure(), Some(false));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        h.insert(header::HOST, "floor.casino.example".parse().unwrap());
        assert_eq!(cookie("club_staff", "x".into(), &h).secure(), Some(true));
        h.insert(header::HOST, "[::1]:8443".parse().unwrap());
        assert!(is_loopback_request(&h));
        assert!(!is_loopback_request(&HeaderMap::new()));
    }

    #[test]
    fn tokens_are_256_bits_and_compare_exactly() {
        let t = random_token();
        assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert!(tokens_match(&t, &t.clone()));
        assert!(!tokens_match(&t, &random_token()));
        assert!(!tokens_match(&t, ""));
    }
}
