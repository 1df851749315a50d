//! The staff login in headless Chromium: a wrong password, a login, the user's language, logout.
//! Screenshots in `target/browser-artefacts/login/`.

use club_tests::T0;
use club_tests::browser::Browser;
use club_tests::web::{PASSWORD, seed_staff};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_language_and_logout() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let store = db.store().await;
    seed_staff(&store, T0).await;
    let server = TestServer::start(store, T0, test_config()).await;
    let Some(mut b) = Browser::start("login", &format!("http://{}", server.addr)).await else { return };

    // A page without a session sends the browser to the login page, and back after it.
    b.goto("/?from=test").await;
    assert_eq!(b.path().await, "/login?next=%2F%3Ffrom%3Dtest");
    b.fill("#username", "manager").await;
    b.fill("#password", "not the password").await;
    b.click("#login").await;
    assert!(b.page_text().await.contains("Wrong username or password."));
    b.screenshot("wrong-password").await;
    b.fill("#password", PASSWORD).await;
    b.click("#login").await;
    b.find("#logout").await;
    assert_eq!(b.path().await, "/?from=test");
    b.screenshot("home").await;

    // Slovenian, stored with the user.
    b.select("select[name=lang]", "sl").await;
    b.click("form[action='/account/language'] button").await;
    assert!(b.text("#logout").await.contains("Odjava"));
    b.screenshot("home-sl").await;
    let lang: String = sqlx::query_scalar("SELECT language FROM staff_users WHERE username = 'manager'").fetch_one(server.store.read()).await.unwrap();
    assert_eq!(lang, "sl");

    b.click("#logout").await;
    b.find("#login").await;
    assert_eq!(b.path().await, "/login");
    b.goto("/").await;
    assert!(b.path().await.starts_with("/login"), "logged out");
    b.close().await;
    server.shutdown().await.unwrap();
}
