//! A real browser for tests: Debian's headless Chromium driven over WebDriver by `chromedriver`.
//!
//! [`Browser::start`] runs chromedriver on a free port and opens a session with the flags this
//! sandbox needs (no sandbox, no GPU, no background networking, a fresh profile). A missing
//! chromedriver or Chromium fails the test with the package to install: a browser test never
//! passes by not running. Dropping the [`Browser`] ends chromedriver and every browser process it
//! started.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::signal;

/// A browser session and the chromedriver behind it. Dropping it ends both.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: std::path::PathBuf,
}

impl Browser {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that the browsers it starts can be ended with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver is needed for browser tests (Debian: apt-get install chromium chromium-driver): {e}")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("dice-lab-chromium-{port}"));
        let mut options = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1100,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot open a Chromium session (is chromium installed?): {e}")
            });
        Self {
            client,
            driver,
            profile,
        }
    }

    /// Opens `url` and waits until the page says the WebAssembly has hydrated it.
    pub async fn open_hydrated(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
        self.wait_until("the page hydrates", Duration::from_secs(20), async || {
            self.client
                .execute("return document.body.dataset.ready === 'true'", vec![])
                .await
                .is_ok_and(|v| v == json!(true))
        })
        .await;
    }

    /// Waits (at most `timeout`) until `ready` holds; panics naming `what` otherwise.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut ready: impl AsyncFnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        while !ready().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element with id `id`.
    pub async fn click(&self, id: &str) {
        let element = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id} to click: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
    }

    /// Chooses `die` in the page's die menu.
    pub async fn choose(&self, die: &str) {
        let select = self.client.find(Locator::Id("die")).await.unwrap();
        select
            .select_by_value(die)
            .await
            .unwrap_or_else(|e| panic!("no die {die} to choose: {e}"));
    }

    /// Types `times` into the page's times field and clicks Roll Multiple.
    pub async fn roll_multiple(&self, times: &str) {
        let input = self.client.find(Locator::Id("times")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(times).await.unwrap();
        self.click("roll-multiple").await;
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
        {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    /// The text of the element with id `id`, or "" when there is none.
    pub async fn text(&self, id: &str) -> String {
        match self.client.find(Locator::Id(id)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Saves a PNG screenshot to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("a screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        signal::group(self.driver.id(), signal::SIGKILL);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
