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

/// Where the browser tests find axe-core (npm), installed by
/// `scripts/setup-debian.sh`; `JO_AXE_JS` names another copy.
fn axe_source() -> String {
    let path = std::env::var_os("JO_AXE_JS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is required by the accessibility tests ({}: {e}): run scripts/setup-debian.sh",
            path.display()
        )
    })
}

/// One axe-core rule broken on a page.
#[derive(Debug, serde::Deserialize)]
pub struct Violation {
    /// The rule (e.g. `color-contrast`).
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// What the rule asks.
    pub help: String,
    /// The offending elements: selector and HTML, a few of them.
    pub nodes: Vec<String>,
}

impl Chrome {
    /// Runs axe-core on the current page at the window's current size and
    /// returns every violation. The script is handed to the browser by
    /// WebDriver, which the page's CSP does not govern: the pages stay as
    /// they are served.
    pub async fn axe(&self) -> Vec<Violation> {
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .expect("asks for axe");
        if loaded != serde_json::Value::Bool(true) {
            let src = axe_source();
            self.client
                .execute(&format!("{src}\nreturn true;"), vec![])
                .await
                .expect("injects axe-core");
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.map(v => ({
                     id: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + '  ' + n.html.slice(0, 200))
                 })))).catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await
            .expect("runs axe-core");
        serde_json::from_value(result).expect("axe violations")
    }

    /// Asserts that the current page has no critical and no serious axe
    /// violation at phone and desktop width (`what` names it in the message,
    /// which lists every violation found).
    pub async fn assert_accessible(&self, what: &str) {
        let mut bad = Vec::new();
        for (w, h) in [PHONE, DESKTOP] {
            self.client.set_window_size(w, h).await.expect("resizes");
            tokio::time::sleep(Duration::from_millis(100)).await;
            for v in self.axe().await {
                if matches!(v.impact.as_deref(), Some("critical" | "serious")) {
                    bad.push(format!(
                        "{what} at {w} px: {} ({}): {}\n      {}",
                        v.id,
                        v.impact.as_deref().unwrap_or("?"),
                        v.help,
                        v.nodes.join("\n      ")
                    ));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "axe-core finds {} serious or critical violation(s):\n  {}",
            bad.len(),
            bad.join("\n  ")
        );
    }

    /// Presses Tab until focus comes back round (or `limit` presses), and
    /// returns, for each control of the page that can take focus, whether
    /// Tab reached it, and for each focus seen its ring: outline width in
    /// px and the ring's contrast against what surrounds it.
    pub async fn tab_through(&self, limit: usize) -> TabReport {
        // Number every visible control, so the focus can be followed.
        let controls = self
            .client
            .execute(
                "const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex=\"-1\"])';
                 const all = [...document.querySelectorAll(sel)].filter(e =>
                     !e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden');
                 all.forEach((e, i) => e.setAttribute('data-tab-n', String(i)));
                 document.activeElement && document.activeElement.blur();
                 return all.map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || e.getAttribute('name') || '').trim().slice(0, 40));",
                vec![],
            )
            .await
            .expect("lists controls");
        let controls: Vec<String> = serde_json::from_value(controls).expect("names");
        let mut reached = vec![false; controls.len()];
        let mut rings = Vec::new();
        let mut previous = None;
        for _ in 0..limit {
            let el = self.client.active_element().await.expect("active element");
            el.send_keys("\u{E004}").await.expect("presses Tab");
            let seen = self
                .client
                .execute(
                    "const e = document.activeElement;
                     if (!e || e === document.body) return null;
                     const lum = c => {
                         const m = c.match(/[\\d.]+/g); if (!m) return null;
                         const [r, g, b] = m.slice(0, 3).map(v => { v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                         return 0.2126 * r + 0.7152 * g + 0.0722 * b;
                     };
                     const opaque = c => { const m = c.match(/[\\d.]+/g); return m && (m.length < 4 || parseFloat(m[3]) > 0.5); };
                     // What the ring is drawn on: the nearest ancestor with a background.
                     let p = e.parentElement, bg = 'rgb(255, 255, 255)';
                     while (p) { const c = getComputedStyle(p).backgroundColor; if (opaque(c)) { bg = c; break; } p = p.parentElement; }
                     const s = getComputedStyle(e);
                     const width = s.outlineStyle === 'none' ? 0 : parseFloat(s.outlineWidth);
                     const a = lum(s.outlineColor), b = lum(bg);
                     const contrast = (a === null || b === null) ? 0 : (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
                     return [e.getAttribute('data-tab-n'), width, contrast, e.tagName.toLowerCase() + ' ' + (e.textContent || e.getAttribute('name') || '').trim().slice(0, 40)];",
                    vec![],
                )
                .await
                .expect("reads the focus");
            let Some(seen) = seen.as_array().cloned() else {
                continue;
            };
            let n = seen[0].as_str().and_then(|s| s.parse::<usize>().ok());
            let width = seen[1].as_f64().unwrap_or(0.0);
            let contrast = seen[2].as_f64().unwrap_or(0.0);
            let name = seen[3].as_str().unwrap_or("").to_owned();
            // A date field takes several Tabs (its day, month, year…): the
            // same control again is not the focus coming round.
            if n.is_some() && n == previous {
                continue;
            }
            previous = n;
            if let Some(n) = n {
                match reached.get_mut(n) {
                    // Focus came round to a control already seen.
                    Some(true) => break,
                    Some(r) => *r = true,
                    None => {}
                }
            }
            rings.push(Ring {
                name,
                width,
                contrast,
            });
            if reached.iter().all(|r| *r) {
                break;
            }
        }
        TabReport {
            controls,
            reached,
            rings,
        }
    }
}

/// The focus ring of one control Tab reached.
#[derive(Debug)]
pub struct Ring {
    /// The control (tag and text).
    pub name: String,
    /// Outline width, px (0: none).
    pub width: f64,
    /// Contrast of the outline's colour against its surroundings.
    pub contrast: f64,
}

/// What [`Chrome::tab_through`] saw.
#[derive(Debug)]
pub struct TabReport {
    /// The page's visible controls.
    pub controls: Vec<String>,
    /// Whether Tab reached each.
    pub reached: Vec<bool>,
    /// The rings seen, in Tab order.
    pub rings: Vec<Ring>,
}
