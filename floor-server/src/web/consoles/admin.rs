//! Staff administration (administrators): the staff accounts with their roles and state; create an
//! account, change its roles, disable or enable it, lift a lockout, reset its password (a random
//! one, shown once). And for every member of staff, their own account: change their password.
//!
//! The rules (the last administrator, sessions ending, audit) live in `crate::staff`; this is the
//! page over them.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{done, when};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::staff::{self, Role};
use crate::web::auth::StaffUser;
use crate::web::page::{Ctx, render};
use crate::web::{Access, Route, roles};

pub(super) fn routes() -> Vec<Route> {
    let a = Access::Roles(roles::ADMIN);
    vec![
        Route { method: Method::GET, path: "/admin/staff", access: a, handler: get(staff_page) },
        Route { method: Method::POST, path: "/admin/staff", access: a, handler: post(create) },
        Route { method: Method::POST, path: "/admin/staff/{id}/roles", access: a, handler: post(set_roles) },
        Route { method: Method::POST, path: "/admin/staff/{id}/disable", access: a, handler: post(disable) },
        Route { method: Method::POST, path: "/admin/staff/{id}/enable", access: a, handler: post(enable) },
        Route { method: Method::POST, path: "/admin/staff/{id}/unlock", access: a, handler: post(unlock) },
        Route { method: Method::POST, path: "/admin/staff/{id}/password", access: a, handler: post(reset_password) },
        Route { method: Method::GET, path: "/staff/account", access: Access::AnyStaff, handler: get(account_page) },
        Route { method: Method::POST, path: "/staff/account/password", access: Access::AnyStaff, handler: post(change_password) },
    ]
}

/// A form's fields, repeated ones (the role boxes) included.
fn fields(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
}

/// The roles ticked on a form (`role=<code>`, once per box).
fn ticked_roles(f: &[(String, String)]) -> Vec<Role> {
    Role::ALL.into_iter().filter(|r| f.iter().any(|(k, v)| k == "role" && v == r.code())).collect()
}

struct AccountRow {
    id: i64,
    username: String,
    display_name: String,
    /// Every role with whether the account holds it, for the boxes.
    roles: Vec<(&'static str, bool)>,
    language: String,
    locked: String,
    disabled: bool,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/staff.html")]
struct StaffPage {
    ctx: Ctx,
    accounts: Vec<AccountRow>,
    all_roles: Vec<&'static str>,
    /// A password just set: (username, password), shown once on this answer.
    password: Option<(String, String)>,
}

async fn load(state: &AppState, user: &StaffUser, password: Option<(String, String)>) -> Result<StaffPage> {
    let now = state.clock.now_ms();
    let accounts = staff::list(&state.store)
        .await?
        .into_iter()
        .map(|a| AccountRow {
            roles: Role::ALL.iter().map(|r| (r.code(), a.roles.contains(r))).collect(),
            locked: a.locked_until.filter(|t| *t > now).map(|t| when(state, t)).unwrap_or_default(),
            created: when(state, a.created_at),
            id: a.id,
            username: a.username,
            display_name: a.display_name,
            language: a.language,
            disabled: a.disabled,
        })
        .collect();
    // A page that shows a password is not the place for the session's one-time message.
    let ctx = if password.is_some() { Ctx::for_user(user, "/admin/staff") } else { Ctx::staff(state, user, "/admin/staff").await };
    Ok(StaffPage { ctx, accounts, all_roles: Role::ALL.iter().map(|r| r.code()).collect(), password })
}

fn page(r: Result<StaffPage>) -> Response {
    match r {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
    }
}

async fn staff_page(State(state): State<AppState>, user: StaffUser) -> Response {
    page(load(&state, &user, None).await)
}

async fn create(State(state): State<AppState>, user: StaffUser, body: Bytes) -> Response {
    let now = state.clock.now_ms();
    let f = fields(&body);
    let username = field(&f, "username").to_owned();
    let result = async {
        let display_name = match field(&f, "display_name") {
            "" => username.clone(),
            name => name.to_owned(),
        };
        // The account starts with a random password, handed over in person, like a reset.
        let password = staff::random_password();
        staff::create_user(&state.store, &username, &display_name, &password, &ticked_roles(&f), &user.actor(), now).await?;
        Ok::<_, Error>(password)
    }
    .await;
    match result {
        Ok(password) => page(load(&state, &user, Some((username, password))).await),
        Err(e) => done(&state, &user, Err(e), "/admin/staff").await,
    }
}

async fn set_roles(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>, body: Bytes) -> Response {
    let now = state.clock.now_ms();
    let result = staff::set_roles(&state.store, id, &ticked_roles(&fields(&body)), &user.actor(), now).await.map(|()| user.tr().get("admin.roles_set").to_owned());
    done(&state, &user, result, "/admin/staff").await
}

async fn disable(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = staff::set_disabled(&state.store, id, true, &user.actor(), now).await.map(|()| user.tr().get("admin.disabled_done").to_owned());
    done(&state, &user, result, "/admin/staff").await
}

async fn enable(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = staff::set_disabled(&state.store, id, false, &user.actor(), now).await.map(|()| user.tr().get("admin.enabled_done").to_owned());
    done(&state, &user, result, "/admin/staff").await
}

async fn unlock(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = staff::unlock(&state.store, id, &user.actor(), now).await.map(|()| user.tr().get("admin.unlocked").to_owned());
    done(&state, &user, result, "/admin/staff").await
}

async fn reset_password(State(state): State<AppState>, user: StaffUser, Path(id): Path<i64>) -> Response {
    let now = state.clock.now_ms();
    let result = staff::reset_password(&state.store, id, &user.actor(), now).await;
    match result {
        Ok(shown) => page(load(&state, &user, Some(shown)).await),
        Err(e) => done(&state, &user, Err(e), "/admin/staff").await,
    }
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    ctx: Ctx,
    username: String,
    roles: String,
}

async fn account_page(State(state): State<AppState>, user: StaffUser) -> Response {
    let roles = user.roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(", ");
    render(&AccountPage { ctx: Ctx::staff(&state, &user, "/staff/account").await, username: user.username.clone(), roles })
}

async fn change_password(State(state): State<AppState>, user: StaffUser, body: Bytes) -> Response {
    let now = state.clock.now_ms();
    let f = fields(&body);
    let t = user.tr();
    let result = async {
        if field(&f, "new") != field(&f, "repeat") {
            return Err(Error::invalid(t.get("admin.passwords_differ")));
        }
        staff::change_password(&state.store, &user.actor(), field(&f, "current"), field(&f, "new"), &user.session.id, now).await?;
        Ok(t.get("admin.password_changed").to_owned())
    }
    .await;
    done(&state, &user, result, "/staff/account").await
}
