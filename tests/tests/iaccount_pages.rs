//! The player pages' own defences, over HTTP against the server on port 0, on both databases: the
//! registration and login forms carry a token that a POST must send back (a form posted from
//! another site has no way to read it), and player logins are limited per account (lockout) and
//! per process (429).

use club_tests::T0;
use club_tests::web::{WebClient, hidden_field};
use floor_server::iaccount::testkit::{self, registration};
use floor_server::store::Backend;
use floor_server::testing::{TestDb, TestServer, test_config};

async fn start(backend: Backend) -> Option<(TestDb, TestServer)> {
    let db = TestDb::new(backend).await?;
    let store = db.store().await;
    let server = TestServer::start(store, T0, test_config()).await;
    Some((db, server))
}

async fn accounts(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM iaccounts").fetch_one(server.store.read()).await.unwrap()
}

/// The registration form's fields for player `n`.
fn fields(n: u32) -> Vec<(&'static str, String)> {
    let r = registration(n, chrono::NaiveDate::from_ymd_opt(1985, 3, 9).unwrap());
    vec![
        ("username", r.username),
        ("password", r.password),
        ("email", r.email),
        ("first_name", r.first_name),
        ("last_name", r.last_name),
        ("birth_date", r.birth_date),
        ("personal_id", r.personal_id),
        ("iban", r.iban),
        ("phone", r.phone),
        ("address", r.address),
        ("city", r.city),
        ("postal_code", r.postal_code),
        ("country", r.country),
        ("nationality", r.nationality),
        ("id_doc_type", r.id_doc_type),
        ("id_doc_number", r.id_doc_number),
        ("id_doc_country", r.id_doc_country),
        ("id_doc_issuer", r.id_doc_issuer),
    ]
}

async fn post(c: &mut WebClient, path: &str, fields: &[(&str, String)], token: Option<&str>) -> reqwest::Response {
    let mut f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(t) = token {
        f.push(("form_token", t));
    }
    c.post_form(path, &f).await
}

async fn a_registration_without_the_form_token_is_refused_and_stores_nothing(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let mut c = WebClient::new(&format!("http://{}", server.addr));
    // Another site's form: no token and no cookie.
    let r = post(&mut c, "/account/register", &fields(1), None).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("form expired"));
    // The cookie from our page but a token that is not the one it holds.
    let page = c.get("/account/register").await.text().await.unwrap();
    let token = hidden_field(&page, "form_token").expect("the form carries a token");
    let r = post(&mut c, "/account/register", &fields(1), Some("not-the-token")).await;
    assert_eq!(r.status(), 400);
    // The right token without its cookie (a token copied to another browser).
    let mut other = WebClient::new(&c.base);
    assert_eq!(post(&mut other, "/account/register", &fields(1), Some(&token)).await.status(), 400);
    assert_eq!(accounts(&server).await, 0, "nothing was stored");
    // The page's own form goes through.
    let page = c.get("/account/register").await.text().await.unwrap();
    let token = hidden_field(&page, "form_token").unwrap();
    let r = post(&mut c, "/account/register", &fields(1), Some(&token)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(accounts(&server).await, 1);
    server.shutdown().await.unwrap();
}

async fn player_login_needs_the_form_token_locks_the_account_and_is_rate_limited(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let id = testkit::active_account(&server.store, 1, T0).await.unwrap();
    let r = registration(1, chrono::NaiveDate::from_ymd_opt(1980, 5, 17).unwrap());
    let mut c = WebClient::new(&format!("http://{}", server.addr));
    let login = |user: &str, pass: &str| vec![("username", user.to_owned()), ("password", pass.to_owned())];

    // Without the form's token: refused before the password is even looked at.
    let resp = post(&mut c, "/account/login", &login(&r.username, &r.password), None).await;
    assert_eq!(resp.status(), 400);
    assert!(c.cookies.iter().all(|(k, _)| k != "club_player"), "no session without the token");

    // Five wrong passwords lock the account: the right one is refused too.
    for _ in 0..5 {
        let token = hidden_field(&c.get("/account/login").await.text().await.unwrap(), "form_token").unwrap();
        assert_eq!(post(&mut c, "/account/login", &login(&r.username, "wrong password!"), Some(&token)).await.status(), 401);
    }
    let token = hidden_field(&c.get("/account/login").await.text().await.unwrap(), "form_token").unwrap();
    let resp = post(&mut c, "/account/login", &login(&r.username, &r.password), Some(&token)).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("locked"));

    // A burst of tries (at the locked account, which answers without hashing, so the burst is
    // fast): the process's limit answers 429 before any check.
    let mut limited = 0;
    for _ in 0..40 {
        let token = hidden_field(&c.get("/account/login").await.text().await.unwrap(), "form_token").unwrap();
        let resp = post(&mut c, "/account/login", &login(&r.username, "guess guess guess"), Some(&token)).await;
        if resp.status() == 429 {
            limited += 1;
            assert!(resp.text().await.unwrap().contains("Too many attempts"));
        }
    }
    assert!(limited > 0, "too many tries get 429");

    // After the lockout and a pause, the player logs in with the page's form.
    server.clock.advance(15 * 60 * 1000 + 1);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let token = hidden_field(&c.get("/account/login").await.text().await.unwrap(), "form_token").unwrap();
    let resp = post(&mut c, "/account/login", &login(&r.username, &r.password), Some(&token)).await;
    assert_eq!(resp.status(), 303);
    let page = c.get("/account").await.text().await.unwrap();
    assert!(page.contains(&r.username), "logged in as account {id}");
    server.shutdown().await.unwrap();
}

/// A burst at the JSON registration API (each stored registration costs an argon2id hash): the
/// process's limit answers 429 before anything is checked or stored; the form shares the limit.
async fn registrations_are_rate_limited_on_the_api_and_the_form(backend: Backend) {
    let Some((_db, server)) = start(backend).await else { return };
    let http = reqwest::Client::new();
    let url = format!("http://{}/iaccount/api/register", server.addr);
    // All at once: the limit, not the hashing, decides.
    let mut burst = tokio::task::JoinSet::new();
    for n in 1..=40 {
        let (http, url) = (http.clone(), url.clone());
        let r = registration(n, chrono::NaiveDate::from_ymd_opt(1985, 3, 9).unwrap());
        burst.spawn(async move { (n, http.post(&url).json(&r).send().await.unwrap().status().as_u16()) });
    }
    let (mut stored, mut limited) = (0, 0);
    while let Some(answer) = burst.join_next().await {
        match answer.unwrap() {
            (_, 200) => stored += 1,
            (_, 429) => limited += 1,
            (n, other) => panic!("registration {n}: {other}"),
        }
    }
    assert!(limited > 0 && stored >= 20, "a burst of 20 passes, then 429: {stored} stored, {limited} limited");
    assert_eq!(accounts(&server).await, stored, "nothing stored for a limited request");
    // The same on the form: 30 browsers post at once.
    let mut forms = tokio::task::JoinSet::new();
    for n in 41..=70 {
        let mut c = WebClient::new(&format!("http://{}", server.addr));
        let token = hidden_field(&c.get("/account/register").await.text().await.unwrap(), "form_token").unwrap();
        forms.spawn(async move { post(&mut c, "/account/register", &fields(n), Some(&token)).await.status().as_u16() });
    }
    let (mut form_stored, mut form_limited) = (0, 0);
    while let Some(status) = forms.join_next().await {
        match status.unwrap() {
            200 => form_stored += 1,
            429 => form_limited += 1,
            other => panic!("form registration: {other}"),
        }
    }
    assert!(form_limited > 0, "the form passes the same kind of limit: {form_stored} stored");
    assert_eq!(accounts(&server).await, stored + form_stored);
    server.shutdown().await.unwrap();
}

floor_server::on_both_backends!(
    a_registration_without_the_form_token_is_refused_and_stores_nothing,
    player_login_needs_the_form_token_locks_the_account_and_is_rate_limited,
    registrations_are_rate_limited_on_the_api_and_the_form,
);
