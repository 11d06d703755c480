//! Helpers for the sync API tests: an enrolled device that keeps its own
//! hash chain and signs its batches like the scanner does, typed JSON calls
//! over HTTP, and direct seeding of the programme and tickets in the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jo_server::db::direct::Direct;
use jo_server::db::sql::{Conn, Dialect, params};
use jo_shared::TicketSigner;
use jo_shared::api::{
    ApiError, EnrollRequest, EnrollResponse, ScanBatch, ScanId, ScanRecord, ScanVerdict,
    batch_message, paths,
};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use reqwest::{Client, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::path::Path;

use super::TestApp;

/// The signed text of every ticket [`seed_tickets`] made, so that a test
/// device can upload admissions that prove themselves, as a gate does.
static TICKET_TEXT: std::sync::Mutex<Vec<(TicketId, String)>> = std::sync::Mutex::new(Vec::new());

/// The signed text of a seeded ticket.
pub fn ticket_text(id: &TicketId) -> Option<String> {
    TICKET_TEXT
        .lock()
        .expect("lock")
        .iter()
        .find(|(t, _)| t == id)
        .map(|(_, s)| s.clone())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A one-time enrolment code, made the way `jo-server enroll-code` makes it.
pub async fn enrollment_code(app: &TestApp) -> String {
    jo_server::admin::create_enrollment_code(&app.config, 1)
        .await
        .expect("enrolment code")
}

/// A connection to the running server's database.
pub fn db(app: &TestApp) -> Direct {
    app.db()
}

/// Inserts a scheduled session `id` (sport, venue, `max_entries` > 1 means
/// re-entry allowed) that runs from an hour ago to five hours from now.
pub fn seed_session(d: &Direct, id: u32, max_entries: u32) {
    d.with(|c| {
        insert_session(c, id, max_entries);
        Ok(())
    })
    .expect("seeds a session");
}

fn insert_session(c: &Conn<'_>, id: u32, max_entries: u32) {
    let t = now();
    c.execute(
        "INSERT INTO sports (name) VALUES ('Sport de test') ON CONFLICT DO NOTHING",
        params![],
    )
    .expect("sport");
    c.execute(
        "INSERT INTO venues (name, city) VALUES ('Arène de test', 'Paris') ON CONFLICT DO NOTHING",
        params![],
    )
    .expect("venue");
    c.execute(
        "INSERT INTO game_sessions (id, code, sport_id, venue_id, title, starts_at, ends_at,
             doors_open_at, capacity, base_price_cents, entry_rule, max_entries, created_at, updated_at)
         VALUES (?1, ?2, (SELECT id FROM sports WHERE name = 'Sport de test'),
             (SELECT id FROM venues WHERE name = 'Arène de test'), ?3, ?4, ?5, ?6, 100000, 1000,
             ?7, ?8, ?4, ?4)",
        params![
            id,
            format!("TEST-{id}"),
            format!("Épreuve {id}"),
            t - 3600,
            t + 5 * 3600,
            t - 7200,
            if max_entries > 1 { "multiple" } else { "single" },
            max_entries
        ],
    )
    .expect("session");
    if c.dialect() == Dialect::Postgres {
        // An explicit id does not advance the identity sequence.
        c.query_row(
            "SELECT setval(pg_get_serial_sequence('game_sessions', 'id'),
                 (SELECT MAX(id) FROM game_sessions))",
            params![],
            |_| Ok(()),
        )
        .expect("sequence");
    }
}

/// Issues `n` tickets for `session` (one paid order of a test buyer) and
/// returns their ids; `keys_dir` holds the server's signing key.
pub fn seed_tickets(d: &Direct, keys_dir: &Path, session: u32, n: usize) -> Vec<TicketId> {
    d.with(|c| Ok(insert_tickets(c, keys_dir, session, n)))
        .expect("seeds tickets")
}

fn insert_tickets(c: &Conn<'_>, keys_dir: &Path, session: u32, n: usize) -> Vec<TicketId> {
    let t = now();
    c.execute(
        "INSERT INTO users (username, email, first_name, last_name, password_hash,
             user_key, created_at)
         VALUES ('sync-buyer', 'sync-buyer@example.fr', 'Marie', 'Curie', 'x', ?2, ?1)
         ON CONFLICT DO NOTHING",
        params![t, [0u8; 32]],
    )
    .expect("user");
    let user: i64 = c
        .query_row(
            "SELECT id FROM users WHERE username = 'sync-buyer'",
            params![],
            |r| r.get(0),
        )
        .expect("user id");
    c.execute(
        "INSERT INTO offers (name, seats, price_percent, created_at, updated_at)
         VALUES ('Test sync', 1, 100, ?1, ?1) ON CONFLICT DO NOTHING",
        params![t],
    )
    .expect("offer");
    let offer: i64 = c
        .query_row(
            "SELECT id FROM offers WHERE name = 'Test sync'",
            params![],
            |r| r.get(0),
        )
        .expect("offer id");
    let mut number = [0u8; 8];
    jo_shared::doublekey::random_bytes(&mut number).expect("random");
    let mut purchase_key = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut purchase_key).expect("random");
    let order: i64 = c
        .query_row(
            "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at,
                 paid_at, purchase_key)
             VALUES (?1, ?2, 'paid', 0, ?3, ?3, ?3, ?4) RETURNING id",
            params![hex::encode(number), user, t, purchase_key],
            |r| r.get(0),
        )
        .expect("order");
    let line: i64 = c
        .query_row(
            "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity,
                 unit_price_cents)
             VALUES (?1, ?2, ?3, 'Test sync', 1, ?4, 0) RETURNING id",
            params![order, session, offer, n as i64],
            |r| r.get(0),
        )
        .expect("order line");
    let signer = server_signer(keys_dir);
    (0..n)
        .map(|i| {
            let mut id = [0u8; 10];
            jo_shared::doublekey::random_bytes(&mut id).expect("random");
            let text = signed_ticket_text(&signer, TicketId(id), session);
            c.execute(
                "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id,
                     offer_id, holder, admits, key_id, valid_from, valid_minutes, qr, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'MARIE CURIE', 1, ?8, ?9, 600, ?10, ?9)",
                params![
                    &id[..],
                    order,
                    line,
                    i as i64,
                    user,
                    session,
                    offer,
                    &signer.key_id().0[..],
                    t,
                    text
                ],
            )
            .expect("ticket");
            TicketId(id)
        })
        .collect()
}

/// The server's signing key, from its keys directory.
pub fn server_signer(keys_dir: &Path) -> TicketSigner {
    jo_shared::keys::load_signer(keys_dir).expect("signing key")
}

/// Signs a ticket of `session` with `signer` (valid from two hours ago for
/// ten hours) and remembers its text for [`ticket_text`].
pub fn signed_ticket_text(signer: &TicketSigner, id: TicketId, session: u32) -> String {
    let payload = TicketPayload {
        key_id: signer.key_id(),
        ticket_id: id,
        session_id: session,
        admits: 1,
        valid_from: u32::try_from(now() - 7200).expect("time"),
        valid_minutes: 600,
        holder: HolderName::shorten("MARIE CURIE"),
    };
    let text = jo_shared::qr::encode_string(&signer.sign_ticket(&payload).expect("signs"));
    TICKET_TEXT.lock().expect("lock").push((id, text.clone()));
    text
}

/// Conflict kinds recorded for a device, sorted.
pub fn conflict_kinds(d: &Direct, device_id: &str) -> Vec<String> {
    d.with(|c| {
        c.query_map(
            "SELECT kind FROM scan_conflicts WHERE device_id = ?1 ORDER BY kind",
            params![device_id],
            |r| r.get(0),
        )
    })
    .expect("reads")
}

/// Scans stored for a device.
pub fn stored_scans(d: &Direct, device_id: &str) -> i64 {
    d.with(|c| {
        c.query_row(
            "SELECT count(*) FROM scans WHERE device_id = ?1",
            params![device_id],
            |r| r.get(0),
        )
    })
    .expect("counts")
}

/// An enrolled scanner: its key, its token, and its hash chain.
pub struct ApiDevice {
    pub id: String,
    pub token: String,
    pub key: TicketSigner,
    pub base: String,
    pub client: Client,
    pub gate: String,
    /// Last position and hash of its log.
    pub seq: u64,
    pub last_hash: [u8; 32],
}

/// A POST of JSON, any token.
pub async fn post_json(
    client: &Client,
    url: &str,
    token: Option<&str>,
    body: &impl Serialize,
) -> Response {
    let mut req = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).expect("serializes"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("POST")
}

/// The JSON body of a response, after checking its status.
pub async fn json_of<T: DeserializeOwned>(r: Response, status: StatusCode) -> T {
    let got = r.status();
    let body = r.bytes().await.expect("body");
    assert_eq!(
        got,
        status,
        "unexpected status; body: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)))
}

/// The [`ApiError`] of a response, after checking its status.
pub async fn api_error(r: Response, status: StatusCode) -> ApiError {
    json_of(r, status).await
}

impl ApiDevice {
    /// Enrols a new device with a fresh code.
    pub async fn enroll(app: &TestApp, gate: &str) -> Self {
        let code = enrollment_code(app).await;
        let key = TicketSigner::generate().expect("key");
        let client = Client::new();
        let r = post_json(
            &client,
            &format!("{}{}", app.addr, paths::ENROLL),
            None,
            &EnrollRequest {
                code,
                device_public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
                label: format!("Laptop {gate}"),
            },
        )
        .await;
        let e: EnrollResponse = json_of(r, StatusCode::OK).await;
        assert!((e.server_time - now()).abs() < 60);
        Self {
            id: e.device_id,
            token: e.token,
            key,
            base: app.addr.clone(),
            client,
            gate: gate.to_owned(),
            seq: 0,
            last_hash: [0; 32],
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET with this device's token.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    /// GET, expecting 200 and a `T`.
    pub async fn get_ok<T: DeserializeOwned>(&self, path: &str) -> T {
        json_of(self.get(path).await, StatusCode::OK).await
    }

    /// The next record of this device's log (not uploaded yet).
    pub fn record(
        &mut self,
        verdict: ScanVerdict,
        ticket: Option<TicketId>,
        session: Option<u32>,
        scanned_at: i64,
    ) -> ScanRecord {
        self.seq += 1;
        let admit = verdict == ScanVerdict::Admit;
        let mut r = ScanRecord {
            scan_id: ScanId::generate().expect("random"),
            seq: self.seq,
            prev_hash: hex::encode(self.last_hash),
            ticket_id: ticket,
            session_id: session,
            // An admission carries the scanned ticket; a refusal its evidence.
            raw: if admit {
                ticket.as_ref().and_then(ticket_text)
            } else {
                Some("JO1-illisible".to_owned())
            },
            verdict,
            reason: (!admit).then(|| "bad_signature".to_owned()),
            admits: u8::from(admit),
            gate: self.gate.clone(),
            scanned_at,
            signature: None,
        };
        r.signature = r
            .admission(&self.id)
            .map(|a| hex::encode(self.key.sign(&jo_shared::trust::admission_message(&a))));
        self.last_hash = r.hash();
        r
    }

    /// An admission of `ticket` now.
    pub fn admit(&mut self, ticket: TicketId, session: u32) -> ScanRecord {
        self.record(ScanVerdict::Admit, Some(ticket), Some(session), now())
    }

    /// A batch of `records`, signed with this device's key.
    pub fn batch(&self, records: Vec<ScanRecord>) -> ScanBatch {
        let last = records.last().expect("a record");
        let sig = self
            .key
            .sign(&batch_message(&self.id, last.seq, &last.hash()));
        ScanBatch {
            records,
            signature: hex::encode(sig),
            pending: 0,
        }
    }

    /// POSTs a batch.
    pub async fn upload(&self, batch: &ScanBatch) -> Response {
        post_json(
            &self.client,
            &self.url(paths::SCANS),
            Some(&self.token),
            batch,
        )
        .await
    }
}
