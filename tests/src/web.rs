//! A plain HTTP client for the web consoles (no browser): login, cookies, CSRF tokens, and the
//! staff accounts the console tests log in with.

use floor_server::audit::Actor;
use floor_server::staff::{self, Role};
use floor_server::store::Store;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

/// The password every test staff account gets.
pub const PASSWORD: &str = "correct horse battery";

/// Creates one staff account per role, named after the role's code (`reception`, `pit_boss`…).
pub async fn seed_staff(store: &Store, now: i64) -> Vec<(Role, i64)> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let id = staff::create_user(store, role.code(), &format!("Test {}", role.code()), PASSWORD, &[role], &Actor::System("test-seed"), now)
            .await
            .expect("staff account");
        out.push((role, id));
    }
    out
}

/// A logged-in (or not) HTTP client that keeps its session cookie by hand and never follows
/// redirects, so a test sees every 303.
pub struct WebClient {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: Vec<(String, String)>,
}

fn cookie_pair(set_cookie: &str) -> Option<(String, String)> {
    let first = set_cookie.split(';').next()?;
    let (k, v) = first.split_once('=')?;
    Some((k.trim().to_owned(), v.trim().to_owned()))
}

/// The value of `<input name="NAME" value="...">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl WebClient {
    pub fn new(base: &str) -> WebClient {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("http client");
        WebClient { http, base: base.trim_end_matches('/').to_owned(), cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(SET_COOKIE) {
            if let Some((k, val)) = v.to_str().ok().and_then(cookie_pair) {
                self.cookies.retain(|(n, _)| *n != k);
                if !val.is_empty() {
                    self.cookies.push((k, val));
                }
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let r = self.http.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await.expect("GET");
        self.keep_cookies(&r);
        r
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body: String = form_body(fields);
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&r);
        r
    }

    /// Uploads `bytes` as the file field `file` of a multipart form, with the session's CSRF
    /// token in the URL (as the console's upload forms send it).
    pub async fn post_file(&mut self, path: &str, csrf: &str, filename: &str, bytes: &[u8]) -> reqwest::Response {
        let boundary = "club-test-boundary-7d1f";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = self
            .http
            .post(format!("{}{path}{sep}csrf={}", self.base, enc(csrf)))
            .header(COOKIE, self.cookie_header())
            .header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&r);
        r
    }

    /// Logs in through the login form; panics unless it succeeds.
    pub async fn login(&mut self, username: &str, password: &str) {
        let r = self.try_login(username, password).await;
        assert_eq!(r.status(), 303, "login of {username}: {}", r.text().await.unwrap_or_default());
    }

    /// Submits the login form and returns the answer.
    pub async fn try_login(&mut self, username: &str, password: &str) -> reqwest::Response {
        let page = self.get("/login").await.text().await.expect("login page");
        let token = hidden_field(&page, "login_csrf").expect("login form token");
        self.post_form("/login", &[("username", username), ("password", password), ("login_csrf", &token), ("next", "/")]).await
    }

    /// The CSRF token of a page's forms.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await.text().await.expect("page");
        hidden_field(&page, "csrf").unwrap_or_else(|| panic!("no csrf field on {path}"))
    }
}

/// `a=1&b=2`, URL-encoded.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a redirect answer points.
pub fn location(r: &reqwest::Response) -> String {
    r.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}
