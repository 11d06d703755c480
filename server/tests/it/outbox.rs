//! The mail outbox: a mail written while the relay is down goes out when it
//! comes back; two drainers on one database never send a row twice; and
//! mail survives `kill -9`: of a single node (sent once it is restarted),
//! and of one of two nodes on PostgreSQL in the middle of payments (sent by
//! the survivor), with no paid order without its tickets, no ticket without
//! a paid order, and every confirmation delivered exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jo_server::config::{Secret, SmtpSettings, SmtpTls};
use jo_server::db::direct::Direct;
use jo_server::db::outbox::{self, MailKind, Outgoing};
use jo_server::db::sql::Begin;
use jo_server::{Config, auth::password::PasswordHasher, config::Argon2Params};
use reqwest::StatusCode;
use reqwest::cookie::Jar;

use crate::common::shop::*;
use crate::common::smtp::{Received, SmtpSink};
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

/// A port nothing listens on (bound, then released): a relay that is down.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn smtp_to(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
    }
}

/// Polls `f` every 100 ms until it holds, for up to `secs` seconds.
async fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_mail_written_while_the_relay_is_down_goes_out_when_it_is_back() {
    let port = dead_port();
    let app = spawn_app_with(|c| c.smtp = Some(smtp_to(port))).await;
    let b = Browser::new(&app);
    let r = b.register("lise", "lise@example.com", GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/register/done");
    // The verification mail is in the outbox, failing, backing off (its
    // second attempt over, not in flight: no lease).
    let d = app.db();
    wait_until(20, "two failed attempts", || {
        query_i64(
            &d,
            "SELECT COALESCE(MAX(attempts), 0) FROM mail_outbox
              WHERE sent_at IS NULL AND last_error IS NOT NULL AND locked_until IS NULL",
            &[],
        ) >= 2
    })
    .await;
    let (next, error): (i64, String) = d
        .with(|c| {
            c.query_row(
                "SELECT next_attempt_at, last_error FROM mail_outbox WHERE recipient = ?1",
                params!["lise@example.com"],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("reads the row");
    assert!(
        next > jo_server::units::time::now(),
        "the next attempt waits"
    );
    assert!(error.contains("SMTP"), "{error}");
    assert!(!error.contains("token"), "no link in the error: {error}");

    // The relay comes back on its port: the next attempt delivers.
    let mut sink = SmtpSink::start_on(port).await;
    let mail = sink
        .next_within(Duration::from_secs(15))
        .await
        .expect("the mail arrives once the relay is back");
    assert_eq!(mail.rcpt_to, vec!["lise@example.com".to_owned()]);
    let body = mail_body(&mail.data);
    let token = link_token(&body, "/verify-email");
    // The link works, and the row is done: marked sent, its link erased.
    let r = b
        .submit(
            &format!("/verify-email?token={token}"),
            "/verify-email",
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_until(5, "the row marked sent", || {
        query_i64(
            &d,
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND body = ''",
            &[],
        ) == 1
    })
    .await;
    assert!(
        sink.next_within(Duration::from_secs(3)).await.is_none(),
        "sent once"
    );
}

/// Enqueues `n` account mails in one transaction, to `prefix{i}@example.com`.
fn enqueue_many(d: &Direct, prefix: &str, n: usize) {
    d.with(|c| {
        let tx = c.begin(Begin::Immediate)?;
        let t = jo_server::units::time::now();
        for i in 0..n {
            let mail = Outgoing::rendered(
                MailKind::Account,
                format!("{prefix}{i}@example.com"),
                "fr",
                format!("Message {i}"),
                format!("Corps du message {i}"),
            );
            outbox::enqueue(&tx, &mail, t)?;
        }
        tx.commit()
    })
    .expect("enqueues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_drainers_on_one_database_never_send_a_row_twice() {
    let mut sink = SmtpSink::start().await;
    let app = spawn_app_with(|c| c.smtp = Some(smtp_to(sink.port))).await;
    let other = second_node(&app).await;
    let n = 60;
    enqueue_many(&app.db(), "pair", n);
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..n {
        let m = sink
            .next_within(Duration::from_secs(20))
            .await
            .expect("every mail arrives");
        for to in m.rcpt_to {
            *got.entry(to).or_default() += 1;
        }
    }
    // Nothing more comes: no row was sent twice.
    assert!(sink.next_within(Duration::from_secs(3)).await.is_none());
    assert_eq!(got.len(), n, "every recipient got its mail");
    assert!(got.values().all(|&k| k == 1), "{got:?}");
    assert_eq!(
        query_i64(
            &app.db(),
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NOT NULL AND attempts = 1",
            &[]
        ),
        n as i64,
        "each sent on its first attempt"
    );
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_take_each_row_once() {
    // The claim itself, raced by four connections at once (on PostgreSQL,
    // rows another claim holds are skipped, not waited for).
    let app = spawn_app_with(|c| c.smtp = Some(smtp_to(dead_port()))).await;
    // Far in the future: the app's own drainer leaves these rows alone.
    let due = jo_server::units::time::now() + 100_000;
    let n = 200;
    app.db()
        .with(|c| {
            let tx = c.begin(Begin::Immediate)?;
            for i in 0..n {
                let mail = Outgoing::rendered(
                    MailKind::Account,
                    format!("race{i}@example.com"),
                    "en",
                    "S".into(),
                    "B".into(),
                );
                let id = outbox::enqueue(&tx, &mail, 0)?;
                tx.execute(
                    "UPDATE mail_outbox SET next_attempt_at = ?2 WHERE id = ?1",
                    params![id, due],
                )?;
            }
            tx.commit()
        })
        .expect("enqueues");
    let config = app.config.clone();
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || {
                let d = Direct::open(&config).expect("opens");
                let mut mine = Vec::new();
                loop {
                    let batch = d.with(|c| outbox::claim(c, due, 30, 7)).expect("claims");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.join().expect("no panic"));
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), n, "every row claimed once");
    assert_eq!(distinct.len(), n, "no row claimed twice");
}

// ----- real jo-server processes, killed with SIGKILL

/// A `jo-server serve` process.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    /// Starts the binary on `config`'s data directory and database, with
    /// mail to the relay on `smtp_port`, and waits until it listens.
    fn start(config: &Config, smtp_port: u16) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data")
            .arg(&config.data_dir)
            .args(["--bind", "127.0.0.1:0", "--smtp-host", "127.0.0.1"])
            .args(["--smtp-port", &smtp_port.to_string(), "--smtp-tls", "none"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("JO_DATABASE")
            .env_remove("JO_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(pg) = &config.postgres {
            cmd.arg("--database").arg(pg.url.expose());
        }
        let mut child = cmd.spawn().expect("starts jo-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Read the log to its end: a full pipe would block the server.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut addr = None;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            if let Some(rest) = line.split("address=").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        let addr = addr.expect("the node logs its address");
        Self {
            child,
            addr: format!("http://{addr}"),
        }
    }

    /// `kill -9`.
    fn kill9(&mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown, no flush.
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser on `node`.
fn browser(node: &Node) -> Browser {
    let jar = Arc::new(Jar::default());
    Browser {
        client: reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        jar,
        base: node.addr.clone(),
    }
}

/// Inserts `n` verified buyers `{prefix}{i}@example.com` (password
/// [`GOOD_PASSWORD`]).
async fn insert_buyers(d: &Direct, prefix: &str, n: usize) {
    let hash = PasswordHasher::new(Argon2Params::INSECURE_FOR_TESTS)
        .expect("hasher")
        .hash(Secret::new(GOOD_PASSWORD.to_owned()))
        .await
        .expect("hashes");
    crate::common::shop::insert_buyers(d, prefix, &hash, n);
}

/// Logs buyer `i` in on `node`, puts one Solo ticket of session `sid` in
/// the cart and checks out: the browser and the order number to pay.
async fn ready_to_pay(node: &Node, prefix: &str, i: usize, sid: i64) -> (Browser, String) {
    let b = browser(node);
    let r = b
        .login(&format!("{prefix}{i}@example.com"), GOOD_PASSWORD)
        .await;
    assert_redirect_to(&r, "/");
    let solo = offer_id(&b, sid, "Solo").await;
    assert_redirect_to(&add_to_cart(&b, sid, solo, 1).await, "/cart?added=1");
    let number = order_of_redirect(&checkout(&b).await);
    (b, number)
}

fn ten10(d: &Direct) -> i64 {
    query_i64(d, "SELECT id FROM game_sessions WHERE code = 'TEN10'", &[])
}

/// The paid orders' numbers.
fn paid_orders(d: &Direct) -> BTreeSet<String> {
    d.with(|c| {
        c.query_map(
            "SELECT number FROM orders WHERE status = 'paid'",
            params![],
            |r| r.get(0),
        )
    })
    .expect("lists the paid orders")
    .into_iter()
    .collect()
}

/// No paid order without its tickets, no ticket without a paid order, and
/// exactly one confirmation in the outbox per paid order.
fn assert_orders_consistent(d: &Direct) {
    let q = |sql: &str| query_i64(d, sql, &[]);
    assert_eq!(
        q("SELECT COUNT(*) FROM orders o WHERE o.status = 'paid'
              AND (SELECT COUNT(*) FROM tickets t WHERE t.order_id = o.id)
                  <> (SELECT COALESCE(SUM(l.quantity), 0) FROM order_lines l WHERE l.order_id = o.id)"),
        0,
        "a paid order without all its tickets"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM tickets t JOIN orders o ON o.id = t.order_id WHERE o.status <> 'paid'"
        ),
        0,
        "a ticket without a paid order"
    );
    assert_eq!(
        q("SELECT COUNT(*) FROM orders o WHERE o.status = 'paid'
              AND (SELECT COUNT(*) FROM mail_outbox m WHERE m.order_id = o.id) <> 1"),
        0,
        "a paid order without exactly one confirmation in the outbox"
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM mail_outbox m JOIN orders o ON o.id = m.order_id
            WHERE o.status <> 'paid'"
        ),
        0,
        "a confirmation of an unpaid order"
    );
}

/// Collects the confirmation mails that reach `sink` until every order of
/// `expected` has one (within `secs`), then `quiet` more; returns the
/// count per order number (every confirmation seen, expected or not).
async fn confirmations(
    sink: &mut SmtpSink,
    expected: &BTreeSet<String>,
    secs: u64,
    quiet: Duration,
) -> BTreeMap<String, usize> {
    fn number_of(m: &Received) -> Option<String> {
        let rest = m.data.split("filename=\"billets-").nth(1)?;
        rest.split(".pdf\"").next().map(str::to_owned)
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(secs);
    while !expected.iter().all(|n| got.contains_key(n)) {
        let left = until.saturating_duration_since(Instant::now());
        let Some(m) = sink.next_within(left).await else {
            break;
        };
        if let Some(n) = number_of(&m) {
            *got.entry(n).or_default() += 1;
        }
    }
    while let Some(m) = sink.next_within(quiet).await {
        if let Some(n) = number_of(&m) {
            *got.entry(n).or_default() += 1;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_of_a_node_killed_with_its_relay_down_goes_out_after_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = test_config(data.path().join("data"));
    let mut node = Node::start(&config, dead_port());
    let d = Direct::open(&config).expect("opens the database");
    insert_buyers(&d, "solo", 3).await;
    let sid = ten10(&d);
    for i in 0..3 {
        let (b, number) = ready_to_pay(&node, "solo", i, sid).await;
        let r = pay(&b, &number, CARD_OK).await;
        assert_redirect_to(&r, &format!("/orders/{number}"));
    }
    let paid = paid_orders(&d);
    assert_eq!(paid.len(), 3);
    // Each confirmation was tried and failed: the relay is down.
    wait_until(20, "an attempt at every confirmation", || {
        query_i64(
            &d,
            "SELECT COUNT(*) FROM mail_outbox WHERE order_id IS NOT NULL AND attempts >= 1
                AND sent_at IS NULL AND locked_until IS NULL",
            &[],
        ) == 3
    })
    .await;
    node.kill9();
    assert_orders_consistent(&d);

    // The relay is back, and so is the node: every confirmation, once.
    let mut sink = SmtpSink::start().await;
    let _node = Node::start(&config, sink.port);
    let got = confirmations(&mut sink, &paid, 60, Duration::from_secs(3)).await;
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        paid,
        "{got:?}"
    );
    assert!(got.values().all(|&k| k == 1), "sent once each: {got:?}");
    assert_eq!(
        query_i64(
            &d,
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL",
            &[]
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_during_payments_loses_no_order_and_no_mail() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = test_config(data.path().join("data"));
    if config.postgres.is_none() {
        assert!(
            std::env::var("JO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "JO_TEST_DATABASE_URL is not set"
        );
        eprintln!("skipped: two nodes need PostgreSQL (JO_TEST_DATABASE_URL)");
        return;
    }
    let mut sink = SmtpSink::start().await;
    // The node to be killed has no working relay: every mail of its
    // payments must come from the survivor.
    let mut doomed = Node::start(&config, dead_port());
    let survivor = Node::start(&config, sink.port);
    let d = Direct::open(&config).expect("opens the database");
    let n = 40;
    insert_buyers(&d, "rush", n).await;
    let sid = ten10(&d);

    // Every buyer has an order to pay, half of them on each node.
    let doomed_addr = doomed.addr.clone();
    let nodes = [&doomed, &survivor];
    let mut ready = Vec::new();
    for i in 0..n {
        ready.push(ready_to_pay(nodes[i % 2], "rush", i, sid).await);
    }
    assert_eq!(
        ready.iter().filter(|(b, _)| b.base == doomed_addr).count(),
        n / 2
    );

    // They pay one after another, 60 ms apart on each node, and the doomed
    // node is killed a quarter of the way in: payments are in flight on
    // both nodes then.
    let on_doomed: BTreeSet<String> = ready
        .iter()
        .filter(|(b, _)| b.base == doomed_addr)
        .map(|(_, number)| number.clone())
        .collect();
    let mut tasks = Vec::new();
    for (i, (b, number)) in ready.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60 * (i as u64 / 2))).await;
            // A request cut by the kill (or sent after it) is an error
            // here, not a panic.
            let r = b
                .client
                .get(b.url(&format!("/orders/{number}/pay")))
                .send()
                .await
                .ok()?;
            let status = r.status();
            let html = r.text().await.ok()?;
            if status != StatusCode::OK {
                return None;
            }
            let idem = between(&html, "name=\"idem\" value=\"", "\"")?;
            let r = b
                .client
                .post(b.url(&format!("/orders/{number}/pay")))
                .form(&[
                    ("csrf", csrf_of(&html).as_str()),
                    ("idem", idem.as_str()),
                    ("card_holder", "Jean Dupont"),
                    ("card_number", CARD_OK),
                    ("card_expiry", "12/39"),
                    ("card_cvv", "123"),
                ])
                .send()
                .await
                .ok()?;
            Some(r.status())
        }));
    }
    let d2 = Direct::open(&config).expect("opens");
    wait_until(30, "a few payments", || paid_orders(&d2).len() >= n / 4).await;
    doomed.kill9();
    let mut answered = 0;
    for t in tasks {
        if let Ok(Some(status)) = t.await {
            assert!(!status.is_server_error(), "{status}");
            answered += 1;
        }
    }
    assert!(answered >= n / 2, "the survivor's buyers were all answered");

    let paid = paid_orders(&d);
    assert!(paid.len() >= n / 4, "{} paid", paid.len());
    assert!(paid.len() < n, "the kill came before the last payments");
    let paid_on_doomed = paid.intersection(&on_doomed).count();
    assert!(
        paid_on_doomed > 0,
        "the killed node took payments before it died"
    );
    eprintln!(
        "{} of {n} orders paid, {paid_on_doomed} of them on the killed node",
        paid.len()
    );
    assert_orders_consistent(&d);
    // Every paid order's confirmation, exactly once, all from the
    // survivor (a row the dead node had leased waits for its lease).
    let got = confirmations(&mut sink, &paid, 90, Duration::from_secs(3)).await;
    let missing: Vec<&String> = paid.iter().filter(|n| !got.contains_key(*n)).collect();
    assert!(missing.is_empty(), "no mail for {missing:?}");
    assert!(
        got.keys().all(|n| paid.contains(n)),
        "a mail for an unpaid order: {got:?}"
    );
    assert!(got.values().all(|&k| k == 1), "sent once each: {got:?}");
    assert_eq!(
        query_i64(
            &d,
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL",
            &[]
        ),
        0
    );
}
