//! Sync API benchmark: a real server on port 0 over a store seeded with
//! `JO_BENCH_TICKETS` tickets (default 1,000,000), `JO_BENCH_SCANS` earlier
//! scans (default 1,000,000) and a 100,000-entry revocation list; prints
//! figures. SQLite by default; `JO_BENCH_DATABASE=postgres://…` runs it on
//! a fresh database of that PostgreSQL server, seeded by COPY, and prints
//! the database's size.
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
use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use jo_server::{Application, Config};
use jo_shared::api::{
    EnrollRequest, EnrollResponse, EntriesResponse, KeyringResponse, RevocationDelta, ScanBatch,
    ScanBatchResponse, ScanId, ScanRecord, ScanVerdict, SessionsResponse, batch_message, paths,
};
use jo_shared::revocation::{ListBuilder, RevocationList, RevocationReason};
use jo_shared::ticket::TicketId;
use jo_shared::ticket::{HolderName, TicketPayload};
use jo_shared::{Keyring, TicketSigner};

#[path = "common/seed.rs"]
mod seed;
use seed::{Sink, Table, Val};

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

/// The tables seeded in bulk.
const ORDERS: Table = Table {
    name: "orders",
    columns: "id, number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key",
};
const LINES: Table = Table {
    name: "order_lines",
    columns: "id, order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents",
};
const TICKET_ROWS: Table = Table {
    name: "tickets",
    columns: "ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id, holder, admits, key_id, valid_from, valid_minutes, qr, issued_at",
};
const REVOCATION_ROWS: Table = Table {
    name: "revocations",
    columns: "version, ticket_id, reason, revoked_at, head",
};
const DEVICE_ROWS: Table = Table {
    name: "devices",
    columns: "id, label, public_key, token_hash, enrolled_at, gate, last_sync_at",
};
const SCAN_ROWS: Table = Table {
    name: "scans",
    columns: "scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id, verdict, reason, admits, gate, scanned_at, received_at",
};

/// Deterministic, well-spread ticket ids: SHA-256 of the index.
fn ticket_id(i: u64) -> [u8; 10] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(i.to_be_bytes());
    let mut id = [0u8; 10];
    id.copy_from_slice(&d[..10]);
    id
}

/// What is seeded.
#[derive(Clone, Copy)]
struct Sizes {
    tickets: usize,
    scans: usize,
}

/// Seeds the programme (one session of `SEATS` per share of the tickets),
/// the tickets (the first `SEATS` for `SESSION`, with their signed text),
/// the revocation list, and earlier gates' scans of the other sessions.
/// The few set-up rows go through the server's own SQL layer; the bulk
/// through `sink`, called from `bulk` with ids from 1 (a fresh database).
fn seed_setup(db: &Direct, sizes: Sizes) -> anyhow::Result<(i64, i64)> {
    let t = now();
    Ok(db.with(|c| {
        c.execute("INSERT INTO sports (name) VALUES ('Bench') ON CONFLICT DO NOTHING", params![])?;
        c.execute(
            "INSERT INTO venues (name, city) VALUES ('Stade de bench', 'Saint-Denis') ON CONFLICT DO NOTHING",
            params![],
        )?;
        let user: i64 = c.query_row(
            "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, created_at)
             VALUES ('bench', 'bench@example.fr', 'B', 'B', 'x', ?1, ?2) RETURNING id",
            params![&[0u8; 32][..], t],
            |r| r.get(0),
        )?;
        let offer: i64 = c.query_row(
            "INSERT INTO offers (name, seats, price_percent, created_at, updated_at)
             VALUES ('Bench', 1, 100, ?1, ?1) RETURNING id",
            params![t],
            |r| r.get(0),
        )?;
        for s in 0..sizes.tickets.div_ceil(SEATS) as u32 {
            c.execute(
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
        Ok((user, offer))
    })?)
}

fn seed_bulk(
    sink: &mut Sink<'_>,
    sizes: Sizes,
    (user, offer): (i64, i64),
    server: &TicketSigner,
    seated: &mut Vec<(TicketId, String)>,
) -> anyhow::Result<()> {
    use Val::{B, I, Null, T};
    let t = now();
    // An order (and line) of 1,000 tickets for each session's share.
    let (mut o, mut l) = (0i64, 0i64);
    for i in 0..sizes.tickets {
        let id = ticket_id(i as u64);
        let session = i64::from(SESSION + (i / SEATS) as u32);
        if i % 1_000 == 0 {
            o += 1;
            l += 1;
            let number = format!("B{i:08}");
            sink.row(
                ORDERS,
                &[
                    I(o),
                    T(&number),
                    I(user),
                    T("paid"),
                    I(0),
                    I(t),
                    I(t),
                    I(t),
                    B(&[0; 32]),
                ],
            )?;
            sink.row(
                LINES,
                &[
                    I(l),
                    I(o),
                    I(session),
                    I(offer),
                    T("Bench"),
                    I(1),
                    I(1_000),
                    I(0),
                ],
            )?;
        }
        // The seated session's tickets carry their signed text, which the
        // gates' admissions must match; the others are never scanned here.
        let text = if i < SEATS {
            ticket_text(server, TicketId(id), t)
        } else {
            String::new()
        };
        sink.row(
            TICKET_ROWS,
            &[
                B(&id),
                I(o),
                I(l),
                I((i % 1_000) as i64),
                I(user),
                I(session),
                I(offer),
                T("HOLDER"),
                I(1),
                B(&[0; 4]),
                I(t),
                I(600),
                T(&text),
                I(t),
            ],
        )?;
        if i < SEATS {
            seated.push((TicketId(id), text));
        }
    }
    // The revocation list: tickets of the other sessions.
    let mut b = ListBuilder::default();
    for i in 0..REVOCATIONS {
        let id = ticket_id(SEATS as u64 + i);
        let e = b.push(TicketId(id), RevocationReason::Refunded, t);
        sink.row(
            REVOCATION_ROWS,
            &[
                I(e.version as i64),
                B(&id),
                I(i64::from(e.reason)),
                I(t),
                B(&b.head()),
            ],
        )?;
    }
    // Earlier gates' scans, of the other sessions' tickets (so that they
    // weigh on every lookup without making the bench's admissions doubles).
    for d in 0..GATES {
        let (dev, label) = (format!("past-{d}"), format!("Porte passée {d}"));
        // A token hash nobody can present (a real one is SHA-256 of a token).
        let mut token_hash = [0xEE; 32];
        token_hash[..8].copy_from_slice(&(d as u64).to_be_bytes());
        sink.row(
            DEVICE_ROWS,
            &[
                T(&dev),
                T(&label),
                B(&[0; 32]),
                B(&token_hash),
                I(t),
                T(&label),
                I(t),
            ],
        )?;
    }
    let others = sizes.tickets.saturating_sub(SEATS).max(1);
    for i in 0..sizes.scans {
        let n = SEATS + i % others;
        let d = i % GATES;
        let (scan_id, dev) = (format!("past-scan-{i}"), format!("past-{d}"));
        let session = i64::from(SESSION + (n.min(sizes.tickets - 1) / SEATS) as u32);
        sink.row(
            SCAN_ROWS,
            &[
                T(&scan_id),
                T(&dev),
                I((i / GATES) as i64 + 1),
                B(&[0; 32]),
                B(&[0; 32]),
                B(&ticket_id(n as u64)),
                I(session),
                T("admit"),
                Null,
                I(1),
                T("Porte passée"),
                I(t - 86_400),
                I(t - 86_000),
            ],
        )?;
    }
    Ok(())
}

/// Seeds `config`'s database (see [`seed_bulk`]); returns the database size
/// when on PostgreSQL.
fn seed(
    config: &Config,
    sizes: Sizes,
    server: &TicketSigner,
    seated: &mut Vec<(TicketId, String)>,
) -> anyhow::Result<Option<String>> {
    let ids = seed_setup(&Direct::open(config)?, sizes)?;
    match &config.postgres {
        Some(pg) => {
            let mut client = seed::pg_client(pg.url.expose())?;
            let mut sink = Sink::postgres(&mut client);
            seed_bulk(&mut sink, sizes, ids, server, seated)?;
            sink.finish()?;
            seed::pg_after_copy(&mut client, &["orders", "order_lines"])?;
            Ok(Some(seed::pg_size(&mut client)?))
        }
        None => {
            let mut c = rusqlite::Connection::open(&config.database)?;
            c.busy_timeout(Duration::from_secs(30))?;
            c.pragma_update(None, "synchronous", "OFF")?;
            let tx = c.transaction()?;
            let mut sink = Sink::Sqlite(&tx);
            seed_bulk(&mut sink, sizes, ids, server, seated)?;
            drop(sink);
            tx.commit()?;
            c.execute_batch("ANALYZE")?;
            Ok(None)
        }
    }
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
    let on_pg = std::env::var("JO_BENCH_DATABASE")
        .ok()
        .filter(|u| u.starts_with("postgres"));
    if let Some(url) = &on_pg {
        let db = jo_server::db::direct::scratch_postgres(url, "jo_bench_sync")?;
        config.postgres = Some(jo_server::config::PostgresSettings {
            url: jo_server::config::Secret::new(db),
            password: None,
            connections: 16,
        });
    }
    let sizes = Sizes {
        tickets: env_or("JO_BENCH_TICKETS", 1_000_000).max(SEATS),
        scans: env_or("JO_BENCH_SCANS", 1_000_000),
    };
    let tickets = sizes.tickets;
    println!(
        "-- {}: {} tickets, {} earlier scans, {REVOCATIONS} revocations",
        if on_pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        sizes.tickets,
        sizes.scans
    );
    let app = Application::build(config.clone()).await?;
    let server = jo_shared::keys::load_signer(&config.keys_dir)?;
    let server = std::sync::Arc::new(server);
    let base = format!("http://127.0.0.1:{}", app.port());

    let t = Instant::now();
    let signer = server.clone();
    let seed_config = config.clone();
    let (seated, size) = tokio::task::spawn_blocking(move || {
        let mut seated = Vec::with_capacity(SEATS);
        seed(&seed_config, sizes, &signer, &mut seated).map(|size| (seated, size))
    })
    .await??;
    println!(
        "seeded {tickets} tickets, {} scans, {REVOCATIONS} revocations in {}{}",
        sizes.scans,
        ms(t.elapsed()),
        size.map(|s| format!("; database size {s}"))
            .unwrap_or_default()
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
        "upload of 10,000 scans (10 batches of 1,000, conflict checks against {tickets} tickets): median {}, min {}, max {} (target ≤ 1 s)",
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
