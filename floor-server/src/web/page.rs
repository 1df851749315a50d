//! What every page shares: the layout's context (language, user, menu, CSRF token, the one-time
//! message), rendering, the error pages, the start page and the style sheet.

use askama::Template;
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use super::auth::StaffUser;
use super::i18n::{Lang, Tr};
use super::session::{self, Flash};
use super::{Access, Route, roles};
use crate::app::AppState;
use crate::staff::Role;

/// A link of the menu.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    /// Catalogue key of its label.
    pub label: &'static str,
}

/// The consoles, in menu order, with the roles that see them.
const CONSOLES: &[(&str, &str, &[Role])] = &[
    ("/reception", "nav.reception", roles::RECEPTION),
    ("/pit", "nav.pit", roles::PIT),
    ("/cashier", "nav.cashier", roles::CASHIER),
    ("/bar", "nav.bar", roles::BAR),
    ("/manager", "nav.manager", roles::MANAGER),
    ("/manager/terminals", "nav.terminals", roles::TERMINALS),
    ("/iaccount/withdrawals", "nav.withdrawals", roles::MANAGER),
    ("/iaccount/accounts", "nav.iaccounts", roles::MANAGER),
    ("/iaccount/game-servers", "nav.game_servers", roles::GAME_SERVERS),
    ("/admin/staff", "nav.staff", roles::ADMIN),
];

/// The layout's context, passed to every template as `ctx`.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub t: Tr,
    /// The logged-in user's display name.
    pub user_name: Option<String>,
    /// The session's CSRF token: every form carries it as `csrf`.
    pub csrf: String,
    pub flash: Option<Flash>,
    pub nav: Vec<NavItem>,
    /// The page's own path (the language menu comes back to it).
    pub path: String,
    pub langs: Vec<(&'static str, &'static str)>,
}

impl Ctx {
    /// For a page without a logged-in user (the login page).
    pub fn anonymous(lang: Lang) -> Ctx {
        Ctx {
            t: Tr::new(lang),
            user_name: None,
            csrf: String::new(),
            flash: None,
            nav: Vec::new(),
            path: "/".into(),
            langs: Lang::ALL.iter().map(|l| (l.code(), l.name())).collect(),
        }
    }

    /// For a staff member's page at `path`; takes the session's one-time message.
    pub async fn staff(state: &AppState, user: &StaffUser, path: &str) -> Ctx {
        let flash = session::take_flash(&state.store, &user.session.id).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the flash message");
            None
        });
        Ctx { flash, ..Ctx::for_user(user, path) }
    }

    /// For a staff member's page, without reading the one-time message.
    pub fn for_user(user: &StaffUser, path: &str) -> Ctx {
        Ctx {
            t: user.tr(),
            user_name: Some(user.display_name.clone()),
            csrf: user.session.csrf.clone(),
            flash: None,
            nav: CONSOLES
                .iter()
                .filter(|(_, _, allowed)| Access::Roles(allowed).allows(&user.roles))
                .map(|&(href, label, _)| NavItem { href, label })
                .collect(),
            path: path.to_owned(),
            langs: Lang::ALL.iter().map(|l| (l.code(), l.name())).collect(),
        }
    }
}

/// Renders a template into an HTML answer (a 500 if the template fails, which it should not: the
/// templates are checked when the program is compiled).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    ctx: Ctx,
    title: String,
    text: String,
}

/// 403: the user's roles do not include this page.
pub fn forbidden(user: &StaffUser) -> Response {
    let t = user.tr();
    let page = MessagePage { ctx: Ctx::for_user(user, "/"), title: t.get("error.forbidden_title").into(), text: t.get("error.forbidden").into() };
    (StatusCode::FORBIDDEN, render(&page)).into_response()
}

/// 400: a form without the session's CSRF token (a stale page, or another site's form).
pub fn bad_form(user: &StaffUser) -> Response {
    let t = user.tr();
    let page = MessagePage { ctx: Ctx::for_user(user, "/"), title: t.get("error.bad_form_title").into(), text: t.get("error.bad_form").into() };
    (StatusCode::BAD_REQUEST, render(&page)).into_response()
}

/// Leaves `flash` for the next page and sends the browser to `to` (303, after a form).
pub async fn flash_back(state: &AppState, user: &StaffUser, flash: Flash, to: &str) -> Response {
    if let Err(e) = session::set_flash(&state.store, &user.session.id, &flash).await {
        return e.into_response();
    }
    Redirect::to(to).into_response()
}

/// The message a failed action shows: rule refusals and bad input in the user's words, other
/// failures as a generic error (logged).
pub fn error_text(t: &Tr, e: &crate::Error) -> String {
    match e {
        crate::Error::Invalid(m) | crate::Error::Conflict(m) | crate::Error::NotFound(m) => format!("{}: {m}", t.get("error.refused")),
        crate::Error::Forbidden => t.get("error.forbidden").to_owned(),
        e if e.is_unique_violation() => t.get("error.duplicate").to_owned(),
        e => {
            tracing::error!(error = %e, "console action failed");
            t.get("error.internal").to_owned()
        }
    }
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route { method: Method::GET, path: "/", access: Access::AnyStaff, handler: get(home) },
        Route { method: Method::GET, path: "/static/club.css", access: Access::Public, handler: get(css) },
        Route { method: Method::GET, path: "/static/refresh.js", access: Access::Public, handler: get(refresh_js) },
    ]
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: Ctx,
}

async fn home(axum::extract::State(state): axum::extract::State<AppState>, user: StaffUser) -> Response {
    // A member of one desk goes straight to it.
    if let [only] = Ctx::for_user(&user, "/").nav.as_slice() {
        return Redirect::to(only.href).into_response();
    }
    render(&HomePage { ctx: Ctx::staff(&state, &user, "/").await })
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/club.css"),
    )
        .into_response()
}

async fn refresh_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/refresh.js"),
    )
        .into_response()
}
