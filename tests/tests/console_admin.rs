//! Staff administration in headless Chromium: an administrator creates an account (its password
//! shown once), changes its roles, and disables it; the account's sessions end with each change
//! that takes access away; the last administrator cannot lock everyone out; a member of staff
//! changes their own password. Screenshots in `target/browser-artefacts/admin/`.

use club_tests::T0;
use club_tests::browser::Browser;
use club_tests::web::{PASSWORD, WebClient, location, seed_staff};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_administrator_manages_staff_accounts_and_their_sessions() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let server = TestServer::start(store, T0, test_config()).await;
    let base = format!("http://{}", server.addr);
    let Some(mut b) = Browser::start("admin", &base).await else { return };
    b.login("administrator", PASSWORD).await;

    // A new cashier who also serves at the bar: the password is shown once, on this answer.
    b.goto("/admin/staff").await;
    b.fill("#new-username", "eva").await;
    b.fill("#new-name", "Eva Novak").await;
    for role in ["cashier", "bar"] {
        b.find(&format!("#new-role-{role}")).await.click().await.unwrap();
    }
    b.click("#new-create").await;
    let password = b.text("#staff-password code").await;
    assert_eq!(password.len(), 16, "{password}");
    b.screenshot("created").await;
    b.goto("/admin/staff").await;
    assert!(!b.page_text().await.contains(&password), "shown only once");

    // Eva logs in and works at both desks, but not here.
    let mut eva = WebClient::new(&base);
    eva.login("eva", &password).await;
    assert_eq!(eva.get("/cashier").await.status(), 200);
    assert_eq!(eva.get("/bar").await.status(), 200);
    assert_eq!(eva.get("/admin/staff").await.status(), 403);

    // She chooses her own password; the handed-over one stops working.
    let csrf = eva.csrf("/staff/account").await;
    let own = "eva's own long password";
    let r = eva.post_form("/staff/account/password", &[("csrf", &csrf), ("current", &password), ("new", own), ("repeat", own)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(eva.get("/cashier").await.status(), 200, "the session that changed it stays");
    assert_eq!(WebClient::new(&base).try_login("eva", &password).await.status(), 401);

    // The administrator takes the cashier role away: her session ends at once.
    b.goto("/admin/staff").await;
    b.find("#staff-eva input[value=cashier]").await.click().await.unwrap();
    b.click("#roles-eva").await;
    assert!(b.page_text().await.contains("The roles are saved."), "{}", b.page_text().await);
    let r = eva.get("/bar").await;
    assert_eq!((r.status().as_u16(), location(&r).starts_with("/login")), (303, true), "sessions end when roles are taken");
    eva.login("eva", own).await;
    assert_eq!(eva.get("/bar").await.status(), 200);
    assert_eq!(eva.get("/cashier").await.status(), 403);

    // The only administrator can neither drop the role nor disable themselves.
    b.find("#staff-administrator input[value=administrator]").await.click().await.unwrap();
    b.find("#staff-administrator input[value=manager]").await.click().await.unwrap();
    b.click("#roles-administrator").await;
    assert!(b.page_text().await.contains("last active administrator"), "{}", b.page_text().await);
    b.click("#disable-administrator").await;
    assert!(b.page_text().await.contains("your own account"), "{}", b.page_text().await);
    assert_eq!(b.path().await, "/admin/staff");

    // Disabled: the session ends, and the password no longer opens anything.
    b.click("#disable-eva").await;
    b.screenshot("disabled").await;
    assert!(b.text("#staff-eva").await.contains("Disabled"));
    assert_eq!(eva.get("/bar").await.status(), 303);
    assert_eq!(WebClient::new(&base).try_login("eva", own).await.status(), 401);
    b.click("#enable-eva").await;
    WebClient::new(&base).login("eva", own).await;

    // Every change is in the audit log, by the administrator (her own password change by her).
    let eva_id: i64 = sqlx::query_scalar("SELECT id FROM staff_users WHERE username = 'eva'").fetch_one(server.store.read()).await.unwrap();
    let audited: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT action, actor, before, after FROM audit_log WHERE subject = $1 AND action <> 'staff.login' ORDER BY id")
            .bind(format!("staff:{eva_id}"))
            .fetch_all(server.store.read())
            .await
            .unwrap();
    let actions: Vec<&str> = audited.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(actions, ["staff.create", "staff.password_change", "staff.roles", "staff.disable", "staff.enable"], "{audited:?}");
    assert!(audited[0].1.contains(":administrator"), "{audited:?}");
    assert!(audited[1].1.contains(":eva"), "{audited:?}");
    assert_eq!((audited[2].2.as_deref(), audited[2].3.as_deref()), (Some("\"cashier,bar\""), Some("\"bar\"")));
    assert!(audited.iter().all(|a| !format!("{a:?}").contains(own) && !format!("{a:?}").contains(&password)), "no password in the log");
    b.close().await;
    server.shutdown().await.unwrap();
}
