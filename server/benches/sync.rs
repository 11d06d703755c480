//! Sync API benchmark: a real server on port 0 over a store seeded with
//! 1,000,000 tickets and a 100,000-entry revocation list; prints figures.
//!
//! - upload of 10,000 scans (10 signed batches of 1,000), target ≤ 1 s;
//! - a revocation delta of 10,000 entries, target ≤ 200 ms;
//! - the full down-sync of a new device at an 80,000-seat session whose
//!   80,000 entries were uploaded by 8 other gates (keyring, sessions, the
//!   whole revocation list, every entry), target ≤ 2 s.
//!
//! `cargo bench -p jo-server --bench sync` (or `scripts/bench-sync.sh`).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jo_server::{Application, Config};
use jo_shared::api::{
    EnrollRequest, EnrollResponse, EntriesResponse, KeyringResponse, RevocationDelta, ScanBatch,
    ScanBatchResponse, ScanId, ScanRecord, ScanVerdict, SessionsResponse, batch_message, paths,
};
use jo_shared::revocation::{ListBuilder, RevocationList, RevocationReason};
use jo_shared::ticket::TicketId;
use jo_shared::ticket::{HolderName, TicketPayload};
use jo_shared::{Keyring, TicketSigner};
use rusqlite::{Connection, params};

const TICKETS: usize = 1_000_000;
const SEATS: usize = 80_000;
const SESSION: u32 = 990_001;
const REVOCATIONS: u64 = 100_000;
const GATES: usize = 8;
const BATCH: usize = 1_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Seeds the programme, 1 M tickets (the first `SEATS` for `SESSION`) and
/// the revocation list, in one transaction with prepared statements.
fn seed(
    db: &std::path::Path,
    server: &TicketSigner,
    seated: &mut Vec<(TicketId, String)>,
) -> anyhow::Result<()> {
    let mut c = Connection::open(db)?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let tx = c.transaction()?;
    let t = now();
    tx.execute("INSERT OR IGNORE INTO sports (name) VALUES ('Bench')", [])?;
    tx.execute(
        "INSERT OR IGNORE INTO venues (name, city) VALUES ('Stade de bench', 'Saint-Denis')",
        [],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO users (username, email, first_name, last_name, password_hash, user_key, created_at)
         VALUES ('bench', 'bench@example.fr', 'B', 'B', 'x', zeroblob(32), ?1)",
        [t],
    )?;
    let user: i64 = tx.query_row("SELECT id FROM users WHERE username = 'bench'", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT OR IGNORE INTO offers (name, seats, price_percent, created_at, updated_at)
         VALUES ('Bench', 1, 100, ?1, ?1)",
        [t],
    )?;
    let offer: i64 = tx.query_row("SELECT id FROM offers WHERE name = 'Bench'", [], |r| {
        r.get(0)
    })?;
    let sessions = TICKETS.div_ceil(SEATS);
    for s in 0..sessions as u32 {
        tx.execute(
            "INSERT INTO game_sessions (id, code, sport_id, venue_id, title, starts_at, ends_at,
                 doors_open_at, capacity, base_price_cents, created_at, updated_at)
             VALUES (?1, ?2, (SELECT id FROM sports WHERE name = 'Bench'),
                 (SELECT id FROM venues WHERE name = 'Stade de bench'), 'Finale', ?3, ?4, ?5,
                 ?6, 1000, ?3, ?3)",
            params![
                SESSION + s,
                format!("BENCH-{s}"),
                t - 3600,
                t + 3 * 3600,
                t - 7200,
                SEATS as i64
            ],
        )?;
    }
    let mut order = tx.prepare(
        "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key)
         VALUES (?1, ?2, 'paid', 0, ?3, ?3, ?3, zeroblob(32))",
    )?;
    let mut line = tx.prepare(
        "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
         VALUES (?1, ?2, ?3, 'Bench', 1, 1000, 0)",
    )?;
    let mut ticket = tx.prepare(
        "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id,
             holder, admits, key_id, valid_from, valid_minutes, qr, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'HOLDER', 1, zeroblob(4), ?8, 600, ?9, ?8)",
    )?;
    // Deterministic, well-spread ids: SHA-256 of the index.
    let (mut o, mut l) = (0i64, 0i64);
    for i in 0..TICKETS {
        use sha2::Digest;
        let d = sha2::Sha256::digest((i as u64).to_be_bytes());
        let mut id = [0u8; 10];
        id.copy_from_slice(&d[..10]);
        let session = SESSION + (i / SEATS) as u32;
        // An order (and line) of 1,000 tickets for each session's share.
        if i % 1_000 == 0 {
            order.execute(params![format!("B{i:08}"), user, t])?;
            o = tx.last_insert_rowid();
            line.execute(params![o, session, offer])?;
            l = tx.last_insert_rowid();
        }
        // The seated session's tickets carry their signed text, which the
        // gates' admissions must match; the others are never scanned here.
        let text = if i < SEATS {
            ticket_text(server, TicketId(id), t)
        } else {
            String::new()
        };
        ticket.execute(params![
            &id[..],
            o,
            l,
            (i % 1_000) as i64,
            user,
            session,
            offer,
            t,
            text
        ])?;
        if i < SEATS {
            seated.push((TicketId(id), text));
        }
    }
    drop((order, line, ticket));
    // The revocation list: tickets of the other sessions.
    let mut b = ListBuilder::default();
    let mut rev = tx.prepare(
        "INSERT INTO revocations (version, ticket_id, reason, revoked_at, head) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for i in 0..REVOCATIONS {
        use sha2::Digest;
        let d = sha2::Sha256::digest((SEATS as u64 + i).to_be_bytes());
        let mut id = [0u8; 10];
        id.copy_from_slice(&d[..10]);
        let e = b.push(TicketId(id), RevocationReason::Refunded, t);
        rev.execute(params![
            e.version as i64,
            &id[..],
            e.reason,
            t,
            &b.head()[..]
        ])?;
    }
    drop(rev);
    tx.commit()?;
    Ok(())
}

struct Device {
    id: String,
    token: String,
    key: TicketSigner,
    seq: u64,
    last: [u8; 32],
}

async fn enroll(http: &reqwest::Client, base: &str, config: &Config) -> anyhow::Result<Device> {
    let code = jo_server::admin::create_enrollment_code(config, 1).await?;
    let key = TicketSigner::generate()?;
    let body = serde_json::to_vec(&EnrollRequest {
        code,
        device_public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        label: "bench".into(),
    })?;
    let r = http
        .post(format!("{base}{}", paths::ENROLL))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    let e: EnrollResponse = serde_json::from_slice(&r.bytes().await?)?;
    Ok(Device {
        id: e.device_id,
        token: e.token,
        key,
        seq: 0,
        last: [0; 32],
    })
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    d: &Device,
    path: &str,
) -> anyhow::Result<T> {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(&d.token)
        .send()
        .await?
        .error_for_status()?;
    Ok(serde_json::from_slice(&r.bytes().await?)?)
}

/// The signed text of a ticket of `SESSION` issued at `t`, as its holder shows it.
fn ticket_text(server: &TicketSigner, id: TicketId, t: i64) -> String {
    let payload = TicketPayload {
        key_id: server.key_id(),
        ticket_id: id,
        session_id: SESSION,
        admits: 1,
        valid_from: u32::try_from(t).unwrap_or(0),
        valid_minutes: 600,
        holder: HolderName::shorten("BENCH"),
    };
    jo_shared::qr::encode_string(&server.sign_ticket(&payload).unwrap_or_default())
}

/// Uploads admissions of `tickets` in signed batches, each admission with
/// its ticket text and the gate's signature, as a gate sends them; returns
/// the time taken (the server checks both signatures of every admission).
async fn upload(
    http: &reqwest::Client,
    base: &str,
    d: &mut Device,
    tickets: &[(TicketId, String)],
) -> anyhow::Result<Duration> {
    let gate = format!("Porte {}", &d.id[4..8]);
    let batches: Vec<ScanBatch> = tickets
        .chunks(BATCH)
        .map(|chunk| {
            let records: Vec<ScanRecord> = chunk
                .iter()
                .map(|(t, text)| {
                    d.seq += 1;
                    let mut r = ScanRecord {
                        scan_id: ScanId::generate().expect("random"),
                        seq: d.seq,
                        prev_hash: hex::encode(d.last),
                        ticket_id: Some(*t),
                        session_id: Some(SESSION),
                        raw: Some(text.clone()),
                        verdict: ScanVerdict::Admit,
                        reason: None,
                        admits: 1,
                        gate: gate.clone(),
                        scanned_at: now(),
                        signature: None,
                    };
                    r.signature = r
                        .admission(&d.id)
                        .map(|a| hex::encode(d.key.sign(&jo_shared::trust::admission_message(&a))));
                    d.last = r.hash();
                    r
                })
                .collect();
            let sig = d.key.sign(&batch_message(&d.id, d.seq, &d.last));
            ScanBatch {
                records,
                signature: hex::encode(sig),
                pending: 0,
            }
        })
        .collect();
    let start = Instant::now();
    for b in &batches {
        let body = serde_json::to_vec(b)?;
        let r = http
            .post(format!("{base}{}", paths::SCANS))
            .bearer_auth(&d.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .error_for_status()?;
        let a: ScanBatchResponse = serde_json::from_slice(&r.bytes().await?)?;
        anyhow::ensure!(
            a.stored as usize == b.records.len() && a.conflicts == 0,
            "upload: {a:?}"
        );
    }
    Ok(start.elapsed())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path().join("data"));
    config.api.rate_per_sec = 1_000_000;
    config.api.rate_burst = 1_000_000;
    config.api.enroll_burst = 1_000;
    let app = Application::build(config.clone()).await?;
    let server = jo_shared::keys::load_signer(&config.keys_dir)?;
    let server = std::sync::Arc::new(server);
    let base = format!("http://127.0.0.1:{}", app.port());

    let t = Instant::now();
    let db = config.database.clone();
    let signer = server.clone();
    let seated = tokio::task::spawn_blocking(move || {
        let mut seated = Vec::with_capacity(SEATS);
        seed(&db, &signer, &mut seated).map(|()| seated)
    })
    .await??;
    println!(
        "seeded {TICKETS} tickets, {REVOCATIONS} revocations in {}",
        ms(t.elapsed())
    );
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();

    // Up: 8 gates upload 10,000 admissions each.
    let mut uploads = Vec::new();
    for g in 0..GATES {
        let mut d = enroll(&http, &base, &config).await?;
        let share = &seated[g * SEATS / GATES..(g + 1) * SEATS / GATES];
        uploads.push(upload(&http, &base, &mut d, share).await?);
    }
    let mut sorted = uploads.clone();
    sorted.sort();
    println!(
        "upload of 10,000 scans (10 batches of 1,000, conflict checks against {TICKETS} tickets): median {}, min {}, max {} (target ≤ 1 s)",
        ms(sorted[GATES / 2]),
        ms(sorted[0]),
        ms(sorted[GATES - 1])
    );

    // A new device: its full down-sync.
    let d = enroll(&http, &base, &config).await?;
    let start = Instant::now();
    let keyring: KeyringResponse = get(&http, &base, &d, paths::KEYRING).await?;
    let sessions: SessionsResponse = get(&http, &base, &d, paths::SESSIONS).await?;
    let t_meta = start.elapsed();
    let mut deltas = Vec::new();
    let mut since = 0;
    loop {
        let delta: RevocationDelta = get(
            &http,
            &base,
            &d,
            &format!("{}?since={since}", paths::REVOCATIONS),
        )
        .await?;
        if delta.entries.is_empty() {
            break;
        }
        since = delta.state.version;
        deltas.push(delta);
    }
    let t_rev = start.elapsed() - t_meta;
    let mut entries = 0;
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let page: EntriesResponse = get(
            &http,
            &base,
            &d,
            &format!("{}?cursor={cursor}&limit=10000", paths::ENTRIES),
        )
        .await?;
        entries += page.entries.len();
        cursor = page.next_cursor;
        pages += 1;
        if !page.more {
            break;
        }
    }
    let total = start.elapsed();
    let t_entries = total - t_meta - t_rev;
    anyhow::ensure!(entries == SEATS, "{entries} entries");
    anyhow::ensure!(sessions.sessions.iter().any(|s| s.id == SESSION));
    // What the device then does with the list (not the server's time).
    let ring: Keyring = jo_shared::trust::pin(&keyring.chain, None)?.keyring()?;
    let v = Instant::now();
    let mut list = RevocationList::new();
    for delta in &deltas {
        list.apply(delta, &ring)?;
    }
    println!(
        "full down-sync of a new device, 80,000-seat session: {} (target ≤ 2 s) = keyring+sessions {}, \
         {REVOCATIONS} revocations in {} pages {}, {entries} entries in {pages} pages {}; \
         verifying and applying the list on the device: {}",
        ms(total),
        ms(t_meta),
        deltas.len(),
        ms(t_rev),
        ms(t_entries),
        ms(v.elapsed())
    );

    // A device 10,000 revocations behind.
    let mut times = Vec::new();
    for _ in 0..11 {
        let s = Instant::now();
        let delta: RevocationDelta = get(
            &http,
            &base,
            &d,
            &format!("{}?since={}", paths::REVOCATIONS, REVOCATIONS - 10_000),
        )
        .await?;
        times.push(s.elapsed());
        anyhow::ensure!(delta.entries.len() == 10_000);
    }
    times.sort();
    println!(
        "revocation delta of 10,000 entries (signed, over HTTP, parsed): median {}, max {} (target ≤ 200 ms)",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
