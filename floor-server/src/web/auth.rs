//! Staff login, logout, lockout, the per-route guard and the logged-in user.
//!
//! Key decision: the guard runs before every handler (see `web::table`): no session → 303 to the
//! login page (remembering where the user was going), a role not allowed → 403, a POST whose CSRF
//! token does not match the session's → 400, and nothing of the request reaches the handler.
//! Passwords are argon2id (`crate::staff`); five wrong passwords in a row lock the account for 15
//! minutes, and a per-process rate limit on login attempts slows guessing across accounts.
//!
//! Not here: player login (the i-Account pages use `session` with the `PLAYER` policy, and
//! [`form_token`] and [`PLAYER_LOGIN_LIMIT`] from here).

use std::num::NonZeroU32;
use std::sync::LazyLock;

use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sqlx::Row;

use super::i18n::{Lang, Tr};
use super::page::{self, Ctx, render};
use super::session::{self, Flash, PLAYER, STAFF, Session};
use super::{Access, Route};
use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::staff::{Role, verify_password};
use crate::store::Store;

/// Wrong passwords in a row that lock an account.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_MS: Millis = 15 * 60 * 1000;
/// The largest form body a console accepts (a register file upload is the largest).
const MAX_FORM_BYTES: usize = 8 * 1024 * 1024;
/// The cookie of the login form's double-submit token (there is no session yet to bind it to).
const LOGIN_CSRF_COOKIE: &str = "club_login";
/// Where a player without a session is sent (the online account's login page).
pub const PLAYER_LOGIN: &str = "/account/login";

/// A limit on the login attempts one process accepts: 5 a second, bursts of 20, across all
/// accounts. It slows guessing across many accounts, which the per-account lockout does not.
pub struct LoginLimit(LazyLock<DefaultDirectRateLimiter>);

impl LoginLimit {
    const fn new() -> LoginLimit {
        LoginLimit(LazyLock::new(|| {
            RateLimiter::direct(Quota::per_second(NonZeroU32::new(5).expect("5")).allow_burst(NonZeroU32::new(20).expect("20")))
        }))
    }

    /// Takes one attempt; `false` when the limit is reached (answer 429 without checking anything).
    pub fn allow(&self) -> bool {
        self.0.check().is_ok()
    }
}

/// Staff logins. Players have their own ([`PLAYER_LOGIN_LIMIT`]), so a flood of guesses at the
/// public player login cannot keep the staff out of the consoles.
static STAFF_LOGIN_LIMIT: LoginLimit = LoginLimit::new();
/// Player logins (`iaccount::player`).
pub static PLAYER_LOGIN_LIMIT: LoginLimit = LoginLimit::new();
/// Player registrations, on the form and the JSON API (each stored one costs an argon2id hash).
pub static REGISTRATION_LIMIT: LoginLimit = LoginLimit::new();

/// A CSRF token for a form shown before there is a session (a login or registration form):
/// a double-submit token, set as the cookie `cookie` and carried in the form's hidden field.
/// Returns the jar with the cookie and the token for the field.
pub fn form_token(jar: CookieJar, headers: &HeaderMap, cookie: &'static str) -> (CookieJar, String) {
    let token = session::random_token();
    (jar.add(session::cookie(cookie, token.clone(), headers)), token)
}

/// Whether a pre-session form sent the token its cookie holds (see [`form_token`]).
pub fn form_token_ok(jar: &CookieJar, cookie: &str, sent: &str) -> bool {
    jar.get(cookie).is_some_and(|c| !sent.is_empty() && session::tokens_match(c.value(), sent))
}

/// The logged-in staff member, put in the request by the guard.
#[derive(Clone)]
pub struct StaffUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub lang: Lang,
    pub session: Session,
}

impl std::fmt::Debug for StaffUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffUser").field("id", &self.id).field("username", &self.username).finish_non_exhaustive()
    }
}

impl StaffUser {
    /// The audit log's name for this user.
    pub fn actor(&self) -> Actor {
        Actor::Staff { id: self.id, username: self.username.clone() }
    }
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
    pub fn tr(&self) -> Tr {
        Tr::new(self.lang)
    }
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> std::result::Result<Self, Self::Rejection> {
        parts.extensions.get::<StaffUser>().cloned().ok_or_else(|| Redirect::to("/login").into_response())
    }
}

/// A logged-in online player's session (`session::PLAYER`), put in the request by the guard of
/// [`Access::Player`] routes; `session.subject_id` is the player.
#[derive(Clone, Debug)]
pub struct PlayerSession(pub Session);

impl FromRequestParts<AppState> for PlayerSession {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> std::result::Result<Self, Self::Rejection> {
        parts.extensions.get::<PlayerSession>().cloned().ok_or_else(|| Redirect::to(PLAYER_LOGIN).into_response())
    }
}

/// What the guard of one route knows.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub access: Access,
}

/// Loads a staff account by id (enabled accounts only).
async fn load_staff(store: &Store, id: i64, session: Session) -> Result<Option<StaffUser>> {
    let row = sqlx::query("SELECT username, display_name, roles, language, disabled_at FROM staff_users WHERE id = $1")
        .bind(id)
        .fetch_optional(store.read())
        .await?;
    let Some(row) = row else { return Ok(None) };
    if row.try_get::<Option<i64>, _>("disabled_at")?.is_some() {
        return Ok(None);
    }
    let roles: String = row.try_get("roles")?;
    Ok(Some(StaffUser {
        id,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        roles: crate::staff::parse_roles(&roles),
        lang: Lang::from_code(&row.try_get::<String, _>("language")?).unwrap_or_default(),
        session,
    }))
}

/// The staff member a request's cookie names, if the session is alive.
pub async fn current_staff(state: &AppState, jar: &CookieJar) -> Result<Option<StaffUser>> {
    let Some(token) = jar.get(STAFF.cookie) else { return Ok(None) };
    let now = state.clock.now_ms();
    let Some(session) = session::load(&state.store, &STAFF, token.value(), now).await? else { return Ok(None) };
    load_staff(&state.store, session.subject_id, session).await
}

fn login_redirect(uri: &axum::http::Uri, method: &Method) -> Response {
    let target = if *method == Method::GET { uri.path_and_query().map_or("/", |p| p.as_str()) } else { "/" };
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// The CSRF token a form or upload sent: the `csrf` field of a URL-encoded body, else the `csrf`
/// query parameter (multipart uploads carry it in their action URL).
fn sent_csrf(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Option<String> {
    let field = |bytes: &[u8]| form_urlencoded::parse(bytes).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if form && let Some(t) = field(body) {
        return Some(t);
    }
    query.and_then(|q| field(q.as_bytes()))
}

/// The guard every web route runs first (see the module header).
pub async fn guard(State(g): State<Guard>, jar: CookieJar, request: Request, next: Next) -> Response {
    if g.access == Access::Public {
        return next.run(request).await;
    }
    if g.access == Access::Player {
        return player_guard(&g.state, &jar, request, next).await;
    }
    let user = match current_staff(&g.state, &jar).await {
        Ok(Some(u)) => u,
        Ok(None) => return login_redirect(request.uri(), request.method()),
        Err(e) => return e.into_response(),
    };
    if !g.access.allows(&user.roles) {
        return page::forbidden(&user);
    }
    let mut request = match checked_body(request, &user.session.csrf).await {
        Ok(r) => r,
        Err(resp) if resp.status() == StatusCode::BAD_REQUEST => return page::bad_form(&user),
        Err(resp) => return resp,
    };
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// A body read whole (forms are small), with the CSRF token it carries checked against `expected`.
async fn checked_body(request: Request, expected: &str) -> std::result::Result<Request, Response> {
    let (parts, body) = request.into_parts();
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Ok(Request::from_parts(parts, body));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    if !sent_csrf(&parts.headers, parts.uri.query(), &bytes).is_some_and(|t| session::tokens_match(&t, expected)) {
        return Err(StatusCode::BAD_REQUEST.into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

async fn player_guard(state: &AppState, jar: &CookieJar, request: Request, next: Next) -> Response {
    let now = state.clock.now_ms();
    let session = match jar.get(PLAYER.cookie) {
        Some(token) => match session::load(&state.store, &PLAYER, token.value(), now).await {
            Ok(s) => s,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let Some(session) = session else { return Redirect::to(PLAYER_LOGIN).into_response() };
    let mut request = match checked_body(request, &session.csrf).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    request.extensions_mut().insert(PlayerSession(session));
    next.run(request).await
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route { method: Method::GET, path: "/login", access: Access::Public, handler: get(login_page) },
        Route { method: Method::POST, path: "/login", access: Access::Public, handler: post(login) },
        Route { method: Method::POST, path: "/logout", access: Access::AnyStaff, handler: post(logout) },
        Route { method: Method::POST, path: "/account/language", access: Access::AnyStaff, handler: post(set_language) },
    ]
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Ctx,
    next: String,
    login_csrf: String,
    error: Option<String>,
    username: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    lang: Option<String>,
}

/// A safe place to go after login: a path on this server, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn request_lang(headers: &HeaderMap, asked: Option<&str>) -> Lang {
    asked
        .and_then(Lang::from_code)
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language))
        .unwrap_or_default()
}

fn login_form(headers: &HeaderMap, jar: CookieJar, lang: Lang, next: String, error: Option<String>, username: String, status: StatusCode) -> Response {
    let (jar, token) = form_token(jar, headers, LOGIN_CSRF_COOKIE);
    let page = LoginPage { ctx: Ctx::anonymous(lang), next, login_csrf: token, error, username };
    (status, jar, render(&page)).into_response()
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, Query(q): Query<NextQuery>) -> Response {
    if let Ok(Some(_)) = current_staff(&state, &jar).await {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    let lang = request_lang(&headers, q.lang.as_deref());
    login_form(&headers, jar, lang, safe_next(q.next.as_deref()), None, String::new(), StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    login_csrf: String,
    #[serde(default)]
    lang: Option<String>,
}

/// Why a login failed; every kind shows the same words to the browser.
enum LoginOutcome {
    Ok { id: i64 },
    Wrong,
    Locked,
}

async fn check_login(store: &Store, username: &str, password: &str, now: Millis) -> Result<LoginOutcome> {
    let row = sqlx::query("SELECT id, password_hash, failed_logins, locked_until, disabled_at FROM staff_users WHERE username = $1")
        .bind(username)
        .fetch_optional(store.read())
        .await?;
    let Some(row) = row else {
        // Spend the same time as a real check, so timing does not tell which usernames exist.
        let _ = verify_password(password, DUMMY_HASH.as_str());
        return Ok(LoginOutcome::Wrong);
    };
    let id: i64 = row.try_get("id")?;
    let hash: String = row.try_get("password_hash")?;
    let locked_until: Option<Millis> = row.try_get("locked_until")?;
    if row.try_get::<Option<Millis>, _>("disabled_at")?.is_some() {
        let _ = verify_password(password, &hash);
        return Ok(LoginOutcome::Wrong);
    }
    if locked_until.is_some_and(|t| t > now) {
        return Ok(LoginOutcome::Locked);
    }
    let actor = Actor::Staff { id, username: username.to_owned() };
    let mut tx = store.begin().await?;
    if verify_password(password, &hash) {
        sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit::record(&mut tx, now, &actor, "staff.login", &format!("staff:{id}"), None::<()>, None::<()>).await?;
        tx.commit().await?;
        return Ok(LoginOutcome::Ok { id });
    }
    // Counted in the database (atomically), so several processes share one count.
    let failed: i64 = sqlx::query_scalar("UPDATE staff_users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let outcome = if failed >= MAX_FAILED_LOGINS {
        sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = $1 WHERE id = $2").bind(now + LOCKOUT_MS).bind(id).execute(&mut *tx).await?;
        audit::record(&mut tx, now, &Actor::System("login"), "staff.locked", &format!("staff:{id}"), None::<()>, Some(now + LOCKOUT_MS)).await?;
        LoginOutcome::Locked
    } else {
        LoginOutcome::Wrong
    };
    tx.commit().await?;
    Ok(outcome)
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| crate::staff::hash_password("no such user password").expect("hash"));

async fn login(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, axum::Form(form): axum::Form<LoginForm>) -> Response {
    let lang = request_lang(&headers, form.lang.as_deref());
    let t = Tr::new(lang);
    let next = safe_next(form.next.as_deref());
    if !form_token_ok(&jar, LOGIN_CSRF_COOKIE, &form.login_csrf) {
        return login_form(&headers, jar, lang, next, Some(t.get("login.expired").to_owned()), form.username, StatusCode::BAD_REQUEST);
    }
    if !STAFF_LOGIN_LIMIT.allow() {
        return login_form(&headers, jar, lang, next, Some(t.get("login.slow_down").to_owned()), form.username, StatusCode::TOO_MANY_REQUESTS);
    }
    let now = state.clock.now_ms();
    let username = form.username.trim().to_owned();
    let outcome = match check_login(&state.store, &username, &form.password, now).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match outcome {
        LoginOutcome::Ok { id } => match session::create(&state.store, &STAFF, id, now).await {
            Ok((token, _)) => {
                let jar = jar.remove(session::removal(LOGIN_CSRF_COOKIE, &headers)).add(session::cookie(STAFF.cookie, token, &headers));
                (jar, Redirect::to(&next)).into_response()
            }
            Err(e) => e.into_response(),
        },
        LoginOutcome::Wrong => login_form(&headers, jar, lang, next, Some(t.get("login.wrong").to_owned()), username, StatusCode::UNAUTHORIZED),
        LoginOutcome::Locked => login_form(&headers, jar, lang, next, Some(t.get("login.locked").to_owned()), username, StatusCode::UNAUTHORIZED),
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, jar: CookieJar, user: StaffUser) -> Response {
    let now = state.clock.now_ms();
    let result = async {
        session::end(&state.store, &user.session.id, now).await?;
        let mut tx = state.store.begin().await?;
        audit::record(&mut tx, now, &user.actor(), "staff.logout", &format!("staff:{}", user.id), None::<()>, None::<()>).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = result {
        return e.into_response();
    }
    (jar.remove(session::removal(STAFF.cookie, &headers)), Redirect::to("/login")).into_response()
}

#[derive(Deserialize)]
struct LanguageForm {
    lang: String,
    #[serde(default)]
    back: Option<String>,
}

async fn set_language(State(state): State<AppState>, user: StaffUser, axum::Form(form): axum::Form<LanguageForm>) -> Response {
    let Some(lang) = Lang::from_code(&form.lang) else {
        return page::flash_back(&state, &user, Flash::error(user.tr().get("error.invalid")), "/").await;
    };
    let now = state.clock.now_ms();
    let result = async {
        let mut tx = state.store.begin().await?;
        sqlx::query("UPDATE staff_users SET language = $1 WHERE id = $2").bind(lang.code()).bind(user.id).execute(&mut *tx).await?;
        audit::record(&mut tx, now, &user.actor(), "staff.language", &format!("staff:{}", user.id), Some(user.lang.code()), Some(lang.code()))
            .await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&safe_next(form.back.as_deref())).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_login_only_local_paths() {
        assert_eq!(safe_next(Some("/pit?x=1")), "/pit?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_csrf_token_comes_from_the_form_or_the_upload_url() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        assert_eq!(sent_csrf(&h, None, b"a=1&csrf=abc%2B").as_deref(), Some("abc+"));
        assert_eq!(sent_csrf(&h, None, b"a=1"), None);
        h.insert(header::CONTENT_TYPE, "multipart/form-data; boundary=x".parse().unwrap());
        assert_eq!(sent_csrf(&h, Some("csrf=q"), b"csrf=ignored").as_deref(), Some("q"));
        assert_eq!(sent_csrf(&h, None, b"csrf=ignored"), None);
    }
}
