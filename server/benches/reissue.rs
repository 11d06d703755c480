//! Re-issue benchmark: a store (SQLite by default) with `JO_BENCH_TICKETS`
//! valid tickets (default 10,000) of one session, all re-issued through
//! the console's session-wide operation (`Store::admin_reissue_session`:
//! for each ticket a new one, the old one revoked into the signed list and
//! the holder's mail; a few hundred tickets per transaction), as for a
//! leak of a session's codes or a mass change.
//! Prints re-issues per second, then the revocation delta a gate then
//! downloads (entries, JSON bytes) and the time a gate takes to verify and
//! apply it; then, for comparison, the one-ticket re-issue
//! (`Store::admin_reissue_ticket`, a transaction each) on 1,000 of them.
//! Targets: ≥ 1,000 re-issues/s on SQLite, the delta verified in ≤ 200 ms.
//!
//! `cargo bench -p jo-server --bench reissue` (or `scripts/bench-reissue.sh`).

use std::sync::Arc;
use std::time::Instant;

use jo_server::Config;
use jo_server::db::audit::Actor;
use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use jo_server::db::tickets::ReissueOutcome;
use jo_server::tickets::{TicketIssuer, TicketSpec};
use jo_shared::api::RevocationDelta;
use jo_shared::doublekey::{PurchaseKey, UserKey};
use jo_shared::revocation::{RevocationList, SignedListState};
use jo_shared::{Keyring, TicketId};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("JO_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let config = Config::for_tests(dir.path().join("data"));
    std::fs::create_dir_all(dir.path().join("data"))?;
    let store = jo_server::startup::open_store(&config).await?;
    let signer = jo_server::startup::load_or_create_signing_key(&config.keys_dir)?;
    // A second handle on the same key: one signs tickets, one the list state.
    let issuer: Arc<dyn TicketIssuer> = Arc::new(jo_shared::keys::load_signer(&config.keys_dir)?);

    // Seed: one session, one buyer, one paid order of n tickets, signed
    // as the shop signs them.
    let t = now();
    let db = Direct::open(&config)?;
    let user_key = UserKey::generate()?;
    let purchase_key = PurchaseKey::generate()?;
    let mut ids = Vec::with_capacity(n);
    db.with(|c| {
        c.batch("BEGIN")?;
        c.execute("INSERT INTO sports (name) VALUES ('Bench')", params![])?;
        c.execute("INSERT INTO venues (name, city) VALUES ('Stade', 'Saint-Denis')", params![])?;
        c.execute(
            "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, created_at)
             VALUES ('bench', 'bench@example.fr', 'Jeanne', 'Banc', 'x', ?1, ?2)",
            params![&user_key.as_bytes()[..], t],
        )?;
        c.execute(
            "INSERT INTO offers (name, seats, price_percent, created_at, updated_at) VALUES ('Solo', 1, 100, ?1, ?1)",
            params![t],
        )?;
        c.execute(
            "INSERT INTO game_sessions (id, code, sport_id, venue_id, title, starts_at, ends_at,
                 doors_open_at, capacity, base_price_cents, created_at, updated_at)
             VALUES (1, 'BENCH', 1, 1, 'Finale reportée', ?1, ?2, ?3, ?4, 1000, ?1, ?1)",
            params![t + 86_400, t + 90_000, t + 80_000, n as i64],
        )?;
        c.execute(
            "INSERT INTO orders (id, number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key)
             VALUES (1, 'BENCH-00001', 1, 'paid', 0, ?1, ?1, ?1, ?2)",
            params![t, &purchase_key.as_bytes()[..]],
        )?;
        c.execute(
            "INSERT INTO order_lines (id, order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
             VALUES (1, 1, 1, 1, 'Solo', 1, ?1, 1000)",
            params![n as i64],
        )?;
        for i in 0..n as u32 {
            let spec = TicketSpec {
                index: i,
                session_id: 1,
                admits: 1,
                valid_from: t + 80_000,
                valid_until: t + 93_600,
                holder: "Jeanne Banc",
            };
            let issued = issuer
                .issue(&user_key, &purchase_key, &spec)
                .map_err(|e| jo_server::db::StoreError::Task(e.to_string()))?;
            c.execute(
                "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id,
                     holder, admits, key_id, valid_from, valid_minutes, qr, status, issued_at)
                 VALUES (?1, 1, 1, ?2, 1, 1, 1, 'Jeanne Banc', 1, ?3, ?4, ?5, ?6, 'valid', ?7)",
                params![
                    &issued.ticket_id.0[..],
                    i,
                    &issued.key_id.0[..],
                    issued.valid_from,
                    issued.valid_minutes,
                    issued.qr,
                    t
                ],
            )?;
            ids.push(issued.ticket_id);
        }
        c.batch("COMMIT")
    })?;

    // Re-issue every ticket of the session through the console's
    // session-wide operation (a few hundred per transaction).
    let actor = Actor {
        id: 1,
        username: "bench".into(),
        ip: "127.0.0.1".into(),
    };
    let mail: Arc<jo_server::db::tickets::ReissueMail> =
        jo_server::web::shop::transfers::reissued_mail("https://billets.example".into()).into();
    let started = Instant::now();
    let done = store
        .admin_reissue_session(actor.clone(), 1, issuer.clone(), mail.clone())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no session"))?;
    let took = started.elapsed();
    anyhow::ensure!(
        done.reissued == n && done.left_out == 0,
        "re-issued {done:?} of {n}"
    );
    println!(
        "re-issue, session-wide: {n} tickets in {:.2} s = {:.0} re-issues/s (target ≥ 1,000/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    // The delta a gate synced before downloads now (pages as the API serves them).
    let mut entries = Vec::new();
    let mut since = 0u64;
    let (version, head) = loop {
        let page = store
            .revocation_page(since, 10_000)
            .await?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        since = page.version;
        let done = page.version >= page.latest;
        let end = (page.version, page.head);
        entries.extend(page.entries);
        if done {
            break end;
        }
    };
    let delta = RevocationDelta {
        from_version: 0,
        entries,
        state: SignedListState::sign(&signer, version, head, now()),
    };
    let json = serde_json::to_vec(&delta)?;
    let mut ring = Keyring::new();
    ring.add(signer.verifying_key())?;
    let started = Instant::now();
    let mut list = RevocationList::new();
    list.apply(&delta, &ring)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let verify = started.elapsed();
    anyhow::ensure!(
        list.lookup(&TicketId(ids[0].0)).is_some(),
        "old code not listed"
    );
    println!(
        "delta: {} entries, {} bytes of JSON ({:.1} KiB); verified and applied by a gate in {:.1} ms (target ≤ 200 ms)",
        delta.entries.len(),
        json.len(),
        json.len() as f64 / 1024.0,
        verify.as_secs_f64() * 1000.0
    );

    // For comparison, the console's one-ticket re-issue (one transaction
    // each) on up to 1,000 of the new tickets.
    let some: Vec<TicketId> = db
        .with(|c| {
            c.query_map(
                "SELECT ticket_id FROM tickets WHERE status = 'valid' ORDER BY id LIMIT 1000",
                params![],
                |r| r.get::<Vec<u8>>(0),
            )
        })?
        .into_iter()
        .filter_map(|b| {
            <[u8; jo_shared::ticket::TICKET_ID_LEN]>::try_from(b.as_slice())
                .ok()
                .map(TicketId)
        })
        .collect();
    let started = Instant::now();
    for id in &some {
        let out = store
            .admin_reissue_ticket(
                actor.clone(),
                *id,
                issuer.clone(),
                jo_server::web::shop::transfers::reissued_mail("https://billets.example".into()),
            )
            .await?;
        anyhow::ensure!(
            matches!(out, ReissueOutcome::Reissued(_)),
            "not re-issued: {out:?}"
        );
    }
    let took = started.elapsed();
    println!(
        "re-issue, one ticket at a time: {} tickets in {:.2} s = {:.0} re-issues/s",
        some.len(),
        took.as_secs_f64(),
        some.len() as f64 / took.as_secs_f64()
    );
    Ok(())
}
