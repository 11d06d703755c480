//! Headless browser harness: Debian's `chromium` driven through
//! `chromedriver` (WebDriver) with fantoccini. Later issues (shop, admin)
//! reuse it: `Chrome::start()`, then `goto`, `fill`, `click`, `screenshot`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// Phone and desktop viewport widths used for screenshots.
pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 900);

/// A chromedriver process and a headless chromium session.
pub struct Chrome {
    driver: Child,
    pub client: Client,
}

fn require_tool(name: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is required by the browser tests: apt-get install {package}"
    );
}

impl Chrome {
    /// Starts chromedriver on a free port and opens a headless chromium.
    pub async fn start() -> Self {
        require_tool("chromedriver", "chromium-driver");
        require_tool("chromium", "chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if http
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not start on port {port}");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                // French first, as the site's main audience (Accept-Language).
                "prefs": { "intl.accept_languages": "fr-FR,fr" },
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--lang=fr-FR", format!("--window-size={},{}", DESKTOP.0, DESKTOP.1)]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("chromium session (is chromium installed?)");
        Self { driver, client }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigates");
    }

    /// Types `value` into the input with this id.
    pub async fn fill(&self, id: &str, value: &str) {
        let el = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|_| panic!("no #{id}"));
        el.clear().await.expect("clears");
        el.send_keys(value).await.expect("types");
    }

    /// Clicks the element matching a CSS selector.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css}"))
            .click()
            .await
            .expect("clicks");
    }

    /// Waits until the path of the current URL is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self
                .client
                .current_url()
                .await
                .is_ok_and(|u| u.path() == path)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!("browser did not reach {path}; it is at {now}");
    }

    /// Waits until an element matches a CSS selector (after a form post to the same path).
    pub async fn wait_for(&self, css: &str) {
        for _ in 0..100 {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let src = self.client.source().await.unwrap_or_default();
        panic!(
            "no {css} appeared; page is:\n{}",
            &src[..src.len().min(3000)]
        );
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// Saves a screenshot at the given viewport size under target/test-artifacts.
    pub async fn screenshot(&self, name: &str, (w, h): (u32, u32)) -> PathBuf {
        self.client.set_window_size(w, h).await.expect("resizes");
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = super::artifacts_dir().join(format!("{name}-{w}.png"));
        std::fs::write(&path, png).expect("writes screenshot");
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // Our own child, by handle: never leave a chromedriver behind.
        let _ = self.driver.kill();
    }
}
