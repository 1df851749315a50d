//! Browser tests: Debian's Chromium, headless, driven through chromedriver (WebDriver) with
//! `fantoccini`. Each [`Browser`] starts its own chromedriver on a free port and its own Chromium
//! profile, so tests run side by side; screenshots land in `target/browser-artefacts/<test>/` and
//! their paths are printed (nextest keeps the output of failed tests).
//!
//! When chromium or chromedriver is missing the test prints `skipped: …` and passes, except under
//! `CLUB_REQUIRE_ALL=1` (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::process::{Child, Command};

/// How long a page element is waited for.
pub const ELEMENT_WAIT: Duration = Duration::from_secs(10);

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Where this test binary's screenshots go: `<target>/browser-artefacts/<test>/`.
pub fn artefact_dir(test: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // <target>/<profile>/deps/<test binary>
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
    target.join("browser-artefacts").join(test)
}

/// A headless Chromium under WebDriver.
pub struct Browser {
    pub client: Client,
    /// The base URL pages are relative to (the floor server).
    pub base: String,
    test: String,
    shots: usize,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium for test `test`, with pages relative to `base`.
    /// `None` (after printing why) when Chromium is not installed and not required.
    pub async fn start(test: &str, base: &str) -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (first_existing(CHROMIUM), first_existing(CHROMEDRIVER)) else {
            let msg = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";
            if floor_server::testing::require_all() {
                panic!("browser required (CLUB_REQUIRE_ALL=1): {msg}");
            }
            eprintln!("skipped: {msg}");
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--lang=en-GB", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": "en-GB,en" },
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver at {url} did not start a session: {e}"),
            }
        };
        Some(Browser { client, base: base.trim_end_matches('/').to_owned(), test: test.to_owned(), shots: 0, _driver: child, _profile: profile })
    }

    /// Opens `path` on the server.
    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current path (and query).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        let mut p = url.path().to_owned();
        if let Some(q) = url.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    }

    /// Waits for the element `css` and returns it.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.wait().at_most(ELEMENT_WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("element {css}: {e}"))
    }

    /// Replaces the value of the input `css` with `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap_or_else(|err| panic!("clear {css}: {err}"));
        e.send_keys(value).await.unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Chooses the option with value `value` of the select `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Clicks `css` (a link, or a button that submits its form) and waits until the next page has
    /// replaced this one and finished loading.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.client.execute("window.__clubOldPage = true;", vec![]).await.expect("mark the page");
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        let deadline = Instant::now() + ELEMENT_WAIT;
        loop {
            let state = self
                .client
                .execute("return (window.__clubOldPage === true) ? 'old' : document.readyState;", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            if state.as_deref() == Some("complete") {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} did not load a new page");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Logs in through the login form.
    pub async fn login(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("#login").await;
        self.find("#logout").await;
    }

    /// Saves a PNG of the page as `<nn>-<label>.png` and prints its path.
    pub async fn screenshot(&mut self, label: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {label}: {e}"));
        let dir = artefact_dir(&self.test);
        std::fs::create_dir_all(&dir).expect("artefact dir");
        self.shots += 1;
        let path = dir.join(format!("{:02}-{label}.png", self.shots));
        std::fs::write(&path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    /// Ends the browser session (Chromium exits; chromedriver is killed on drop).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
