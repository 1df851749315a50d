//! The role matrix: every web route (from the router's own table) against every staff role gives
//! the page or 403, and without a login the login page; plus login lockout and logout.

use club_tests::T0;
use club_tests::web::{PASSWORD, WebClient, location, seed_staff};
use floor_server::staff::Role;
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};
use floor_server::web::auth::PLAYER_LOGIN;
use floor_server::web::{Access, route_table};
use reqwest::Method;

/// A concrete path for a route pattern (`{id}` → `1`).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn start(backend: Backend) -> Option<(TestDb, TestServer)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let server = TestServer::start(store, T0, test_config()).await;
    Some((db, server))
}

async fn every_route_allows_its_roles_and_refuses_the_others(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let base = format!("http://{}", server.addr);
    let routes = route_table();
    assert!(routes.len() >= 5, "the route table lists the pages");

    // No login: every non-public route sends the browser to the login page.
    let mut anonymous = WebClient::new(&base);
    for r in &routes {
        if r.access == Access::Public {
            continue;
        }
        let path = concrete(r.path);
        let resp = if r.method == Method::GET { anonymous.get(&path).await } else { anonymous.post_form(&path, &[]).await };
        let login = if r.access == Access::Player { PLAYER_LOGIN } else { "/login" };
        assert_eq!(resp.status(), 303, "{} {path} without login", r.method);
        assert!(location(&resp).starts_with(login), "{} {path} without login goes to {}", r.method, location(&resp));
    }

    for role in Role::ALL {
        let mut c = WebClient::new(&base);
        c.login(role.code(), PASSWORD).await;
        for r in &routes {
            let path = concrete(r.path);
            let allowed = r.access.allows(&[role]);
            // POSTs carry no CSRF token: an allowed role gets past the role check and is stopped
            // at the token (400), so no action runs; a refused role gets 403 first.
            let resp = if r.method == Method::GET { c.get(&path).await } else { c.post_form(&path, &[]).await };
            let status = resp.status().as_u16();
            let what = format!("{} {path} as {}", r.method, role.code());
            if r.access == Access::Player {
                // A staff session is not a player's: the player login page.
                assert_eq!((status, location(&resp).as_str()), (303, PLAYER_LOGIN), "{what}");
            } else if allowed {
                assert_ne!(status, 403, "{what} is allowed");
                assert!(!location(&resp).starts_with("/login"), "{what} stays logged in");
                if r.method == Method::POST && r.access != Access::Public {
                    assert_eq!(status, 400, "{what} without a CSRF token");
                } else {
                    assert!(status < 500, "{what}: {status}");
                }
            } else {
                assert_eq!(status, 403, "{what} is refused");
            }
        }
    }
    server.shutdown().await.unwrap();
}

async fn five_wrong_passwords_lock_the_account_and_logout_ends_the_session(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let base = format!("http://{}", server.addr);
    let mut c = WebClient::new(&base);
    for _ in 0..4 {
        let r = c.try_login("manager", "wrong password!").await;
        assert_eq!(r.status(), 401);
    }
    // The right password still works before the fifth failure, and resets the count.
    c.login("manager", PASSWORD).await;
    let mut other = WebClient::new(&base);
    for _ in 0..5 {
        other.try_login("reception", "wrong password!").await;
    }
    let r = other.try_login("reception", PASSWORD).await;
    assert_eq!(r.status(), 401, "locked even with the right password");
    assert!(r.text().await.unwrap().contains("locked"));
    // After 15 minutes the account opens again.
    server.clock.advance(15 * 60 * 1000 + 1);
    other.login("reception", PASSWORD).await;

    // Logout ends the session: the old cookie no longer opens a page.
    let kept = c.cookies.clone();
    let token = c.csrf("/").await;
    let r = c.post_form("/logout", &[("csrf", &token)]).await;
    assert_eq!(r.status(), 303);
    let mut replay = WebClient::new(&base);
    replay.cookies = kept;
    let r = replay.get("/").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login"));
    // The login and logout are in the audit log.
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'staff.%' ORDER BY id")
        .fetch_all(server.store.read())
        .await
        .unwrap();
    assert!(actions.contains(&"staff.login".to_owned()) && actions.contains(&"staff.logout".to_owned()) && actions.contains(&"staff.locked".to_owned()), "{actions:?}");
    server.shutdown().await.unwrap();
}

async fn pages_carry_security_headers_and_sessions_expire_when_idle(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let base = format!("http://{}", server.addr);
    let mut c = WebClient::new(&base);
    let r = c.get("/login").await;
    let h = r.headers();
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let set_cookie = h["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    c.login("manager", PASSWORD).await;
    assert_eq!(c.get("/").await.status(), 200);
    server.clock.advance(31 * 60 * 1000);
    let r = c.get("/").await;
    assert_eq!(r.status(), 303, "idle for 31 minutes: logged out");
    server.shutdown().await.unwrap();
}

floor_server::on_both_backends!(
    every_route_allows_its_roles_and_refuses_the_others,
    five_wrong_passwords_lock_the_account_and_logout_ends_the_session,
    pages_carry_security_headers_and_sessions_expire_when_idle,
);
