//! The web consoles: server-rendered pages (askama templates compiled into the binary, plain CSS,
//! no script framework) for reception, pit, cashier desk, bar and management, and the foundation
//! other web pages reuse: sessions, CSRF, login, roles, languages, security headers.
//!
//! Key decision: every route is declared once in [`table`] with the roles that may use it; the
//! router is built from that table and wraps each route in [`auth::guard`], which loads the
//! session, answers 303 to the login page without one and 403 for a role not listed, and checks
//! the form's CSRF token on every POST. The role-matrix test walks the same table, so a route
//! cannot be added without its roles, nor escape the test.
//!
//! To add pages: write handlers that take [`StaffUser`] (or [`auth::PlayerSession`]), templates
//! that `{% extends "base.html" %}` with a `ctx: Ctx` field, texts in every `i18n/<lang>.toml`,
//! and list the routes with their [`Access`] in [`table`]. Forms carry `csrf` (`ctx.csrf`);
//! handlers answer a form with [`consoles::done`]-style redirects and a [`session::Flash`].
//!
//! Not here: the rules and ledgers the consoles drive (`ledger`, `club`): handlers call them and
//! show their decisions.

pub mod auth;
pub mod consoles;
pub mod i18n;
pub mod page;
pub mod session;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::MethodRouter;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::staff::Role;

pub use auth::StaffUser;
pub use i18n::{Lang, Tr};
pub use page::{Ctx, render};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not (login page, style sheet).
    Public,
    /// Any logged-in staff member.
    AnyStaff,
    /// Staff holding at least one of these roles.
    Roles(&'static [Role]),
    /// A logged-in online player (a `session::PLAYER` session); without one, 303 to
    /// [`auth::PLAYER_LOGIN`]. The handler takes [`auth::PlayerSession`].
    Player,
}

impl Access {
    /// Whether a staff member with `roles` may use the route.
    pub fn allows(self, roles: &[Role]) -> bool {
        match self {
            Access::Public | Access::AnyStaff => true,
            Access::Roles(allowed) => roles.iter().any(|r| allowed.contains(r)),
            Access::Player => false,
        }
    }
}

/// One row of the route table.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: MethodRouter<AppState>,
}

/// A route as the role-matrix test sees it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// The only paths (besides `/static/…`) that answer without a login: login pages and the like.
/// A new public page is added here on purpose, never by accident (a test checks the table).
pub const PUBLIC_PATHS: &[&str] = &["/login"];

/// Role sets, named after the desks that use them.
pub mod roles {
    use crate::staff::Role;
    pub const RECEPTION: &[Role] = &[Role::Reception, Role::Manager];
    pub const PIT: &[Role] = &[Role::Croupier, Role::PitBoss, Role::Manager];
    pub const PIT_BOSS: &[Role] = &[Role::PitBoss, Role::Manager];
    pub const CASHIER: &[Role] = &[Role::Cashier, Role::Manager];
    pub const BAR: &[Role] = &[Role::Bar, Role::Manager];
    pub const MANAGER: &[Role] = &[Role::Manager];
    pub const TERMINALS: &[Role] = &[Role::Manager, Role::Administrator];
    /// Game servers can credit wins: not for the manager who approves payouts.
    pub const GAME_SERVERS: &[Role] = &[Role::Administrator];
    pub const ADMIN: &[Role] = &[Role::Administrator];
}

/// Every web route with its roles: the one list the router and the role-matrix test use.
pub fn table() -> Vec<Route> {
    let mut t = auth::routes();
    t.extend(page::routes());
    t.extend(consoles::routes());
    t.extend(crate::iaccount::player::routes());
    t
}

/// The route table without the handlers (for tests and documentation).
pub fn route_table() -> Vec<RouteInfo> {
    table().into_iter().map(|r| RouteInfo { method: r.method, path: r.path, access: r.access }).collect()
}

/// The web pages as a router to merge into the floor server's.
pub fn router(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for route in table() {
        let guarded = route.handler.route_layer(axum::middleware::from_fn_with_state(
            auth::Guard { state: state.clone(), access: route.access },
            auth::guard,
        ));
        router = router.route(route.path, guarded);
    }
    security_headers(router)
}

/// Headers every page carries: no framing, no sniffing, no referrer, scripts and styles only from
/// this server, and pages kept out of shared caches.
fn security_headers(router: Router<AppState>) -> Router<AppState> {
    let h = |v: &'static str| HeaderValue::from_static(v);
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            h("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, h("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, h("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, h("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, h("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            h("max-age=31536000"),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once_per_method() {
        let mut seen = std::collections::HashSet::new();
        for r in route_table() {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {} twice", r.method, r.path);
            assert!(r.path.starts_with('/'), "{}", r.path);
        }
    }

    #[test]
    fn only_the_listed_paths_are_public() {
        for r in route_table() {
            if r.access == Access::Public {
                assert!(PUBLIC_PATHS.contains(&r.path) || r.path.starts_with("/static/"), "{} {} is public but not in PUBLIC_PATHS", r.method, r.path);
            }
        }
    }
}
