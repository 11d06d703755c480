//! Test helpers for the shop tests: buying through the real pages, reading
//! the database directly for assertions, decoding PDFs and QR images with
//! the system tools (pdftotext, pdftoppm, zbarimg).

use std::path::Path;
use std::process::Command;

use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use jo_shared::revocation::RevocationList;
use jo_shared::verify::{NoEntries, VerifyContext, verify};
use jo_shared::{TicketPayload, Verdict};
use reqwest::{Response, StatusCode};

use super::*;

/// The card that always succeeds.
pub const CARD_OK: &str = "4242 4242 4242 4242";
/// Declined: insufficient funds.
pub const CARD_FUNDS: &str = "4000 0000 0000 9995";
/// Declined: card declined.
pub const CARD_DECLINED: &str = "4000 0000 0000 0002";
/// Declined: network error.
pub const CARD_NETWORK: &str = "4000 0000 0000 0119";

/// The database of a running test app (reads see committed writes).
pub fn db(app: &TestApp) -> Direct {
    app.db()
}

/// One integer from SQL.
pub fn sql_i64(app: &TestApp, sql: &str, params: Params<'_>) -> i64 {
    query_i64(&app.db(), sql, params)
}

/// A registered, verified, logged-in buyer (named Marie Curie by the harness).
pub async fn buyer(app: &TestApp, username: &str) -> Browser {
    let email = format!("{username}@example.com");
    let b = registered_user(app, username, &email).await;
    let r = b.login(&email, GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    b
}

/// Session ids in the order the list shows them.
pub async fn session_ids(b: &Browser, query: &str) -> Vec<i64> {
    let (status, html) = b.get_text(&format!("/sessions{query}")).await;
    assert_eq!(status, StatusCode::OK);
    html.split("<h2><a href=\"/sessions/")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

/// The id of offer `name` on a session's page.
pub async fn offer_id(b: &Browser, session_id: i64, name: &str) -> i64 {
    let (_, html) = b.get_text(&format!("/sessions/{session_id}")).await;
    let marker = format!("id=\"add-{}\"", name.to_lowercase());
    let end = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no offer {name} on session {session_id}"));
    let before = &html[..end];
    let i = before
        .rfind("name=\"offer_id\" value=\"")
        .expect("offer field")
        + 23;
    before[i..]
        .split('"')
        .next()
        .expect("id")
        .parse()
        .expect("number")
}

/// Adds tickets to the cart through the session page's form.
pub async fn add_to_cart(b: &Browser, session_id: i64, offer: i64, quantity: i64) -> Response {
    b.submit(
        &format!("/sessions/{session_id}"),
        "/cart/add",
        &[
            ("session_id", &session_id.to_string()),
            ("offer_id", &offer.to_string()),
            ("quantity", &quantity.to_string()),
        ],
    )
    .await
}

/// POST /checkout from the cart page.
pub async fn checkout(b: &Browser) -> Response {
    b.submit("/cart", "/checkout", &[]).await
}

/// The order number of a `/orders/{n}/pay` redirect.
pub fn order_of_redirect(r: &Response) -> String {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "checkout did not redirect"
    );
    let to = location(r);
    to.strip_prefix("/orders/")
        .and_then(|s| s.strip_suffix("/pay"))
        .unwrap_or_else(|| panic!("unexpected redirect {to}"))
        .to_owned()
}

/// The payment form's CSRF token and idempotency key.
pub async fn pay_form(b: &Browser, number: &str) -> (String, String) {
    let (status, html) = b.get_text(&format!("/orders/{number}/pay")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let idem = between(&html, "name=\"idem\" value=\"", "\"").expect("idem key");
    (csrf_of(&html), idem)
}

/// Posts the payment form with a card and a given idempotency key.
pub async fn post_pay(b: &Browser, number: &str, csrf: &str, idem: &str, card: &str) -> Response {
    b.client
        .post(b.url(&format!("/orders/{number}/pay")))
        .form(&[
            ("csrf", csrf),
            ("idem", idem),
            ("card_holder", "Marie Curie"),
            ("card_number", card),
            ("card_expiry", "12/39"),
            ("card_cvv", "123"),
        ])
        .send()
        .await
        .expect("POST pay")
}

/// Pays an order with `card` through its payment page.
pub async fn pay(b: &Browser, number: &str, card: &str) -> Response {
    let (csrf, idem) = pay_form(b, number).await;
    post_pay(b, number, &csrf, &idem, card).await
}

/// Buys `quantity` tickets of offer `offer` for a session and pays with the
/// good card; returns the order number.
pub async fn buy(b: &Browser, session_id: i64, offer: &str, quantity: i64) -> String {
    let offer = offer_id(b, session_id, offer).await;
    let r = add_to_cart(b, session_id, offer, quantity).await;
    assert_redirect_to(&r, "/cart?added=1");
    let number = order_of_redirect(&checkout(b).await);
    let r = pay(b, &number, CARD_OK).await;
    assert_redirect_to(&r, &format!("/orders/{number}"));
    number
}

/// The public ids of the tickets on "Mes billets".
pub async fn ticket_ids(b: &Browser) -> Vec<String> {
    let (status, html) = b.get_text("/tickets").await;
    assert_eq!(status, StatusCode::OK);
    html.split("id=\"ticket-")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect()
}

/// Seats taken of a session.
pub fn seats_taken(app: &TestApp, session_id: i64) -> i64 {
    sql_i64(
        app,
        "SELECT seats_taken FROM game_sessions WHERE id = ?1",
        &[&session_id],
    )
}

/// The status of an order.
pub fn order_status(app: &TestApp, number: &str) -> String {
    db(app)
        .with(|c| {
            c.query_row(
                "SELECT status FROM orders WHERE number = ?1",
                params![number],
                |r| r.get(0),
            )
        })
        .expect("order")
}

/// Text with the fr-FR no-break spaces made plain.
pub fn plain(s: &str) -> String {
    s.replace(['\u{202f}', '\u{a0}'], " ")
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what} is needed for this test (poppler-utils, zbar-tools): {e}")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The text of a PDF (pdftotext).
pub fn pdf_text(pdf: &Path) -> String {
    String::from_utf8(run(
        Command::new("pdftotext").args([pdf.as_os_str(), "-".as_ref()]),
        "pdftotext",
    ))
    .expect("utf-8")
}

/// Renders a PDF's pages to PNG at `dpi` (pdftoppm); returns the files.
pub fn pdf_to_pngs(pdf: &Path, dpi: u32) -> Vec<std::path::PathBuf> {
    let prefix = pdf.with_extension("");
    run(
        Command::new("pdftoppm")
            .args(["-r", &dpi.to_string(), "-png"])
            .arg(pdf)
            .arg(&prefix),
        "pdftoppm",
    );
    let dir = pdf.parent().expect("dir");
    let stem = prefix
        .file_name()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stem}-")))
        })
        .collect();
    pages.sort();
    pages
}

/// The QR strings zbarimg reads in an image.
pub fn zbar(image: &Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(image)
        .output()
        .expect("zbarimg is needed for this test: apt-get install zbar-tools");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Verifies a QR string against the server's public keyring (as a gate
/// would, at the start of the ticket's validity) and returns its payload.
pub fn verify_ticket(app: &TestApp, qr: &str) -> TicketPayload {
    let keyring = jo_shared::keys::load_keyring(&app.config.keys_dir).expect("keyring");
    let (payload, _) = jo_shared::qr::decode_string(qr).expect("QR string");
    let p = TicketPayload::decode(&payload).expect("payload");
    let ctx = VerifyContext {
        keyring: &keyring,
        sessions: &[p.session_id],
        now: i64::from(p.valid_from) + 60,
        skew_secs: 0,
        revocations: &RevocationList::new(),
        entries: &NoEntries,
    };
    match verify(qr, &ctx) {
        Verdict::Admit { ticket } => ticket,
        other => panic!("ticket refused: {other:?}"),
    }
}

/// Inserts `n` verified buyers `{prefix}{i}` (`{prefix}{i}@example.com`)
/// with the password hash `hash`: no argon2 work per account.
pub fn insert_buyers(d: &Direct, prefix: &str, hash: &str, n: usize) {
    d.with(|c| {
        for i in 0..n {
            let mut user_key = [0u8; 32];
            jo_shared::doublekey::random_bytes(&mut user_key).expect("random");
            c.execute(
                "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key,
                     role, email_verified_at, created_at)
                 VALUES (?1, ?2, 'Jean', 'Dupont', ?3, ?4, 'buyer', 1, 1)",
                params![
                    format!("{prefix}{i}"),
                    format!("{prefix}{i}@example.com"),
                    hash,
                    user_key
                ],
            )?;
        }
        Ok(())
    })
    .expect("inserts the buyers");
}

/// Creates `n` verified buyers sharing the password of an existing one (a
/// copy of its hash), and logs each in.
pub async fn many_buyers(app: &TestApp, template: &str, n: usize) -> Vec<Browser> {
    let d = db(app);
    let hash: String = d
        .with(|c| {
            c.query_row(
                "SELECT password_hash FROM users WHERE username = ?1",
                params![template],
                |r| r.get(0),
            )
        })
        .expect("reads the template's hash");
    insert_buyers(&d, "crowd", &hash, n);
    let mut out = Vec::with_capacity(n);
    let mut tasks = Vec::new();
    for i in 0..n {
        let b = Browser::new(app);
        tasks.push(tokio::spawn(async move {
            let r = b
                .login(&format!("crowd{i}@example.com"), GOOD_PASSWORD)
                .await;
            assert_redirect_to(&r, "/");
            b
        }));
    }
    for t in tasks {
        out.push(t.await.expect("login task"));
    }
    out
}
