//! The rollups the console reads (scan totals per level, admissions per
//! hour, sales per day) are kept by triggers as rows arrive, on SQLite per
//! row and on PostgreSQL per statement. Whatever the batches, they must
//! equal a count made from scratch over the raw rows.

use jo_shared::api::ScanVerdict;
use reqwest::StatusCode;

use crate::common::api::{ApiDevice, db, json_of, now, seed_session, seed_tickets};
use crate::common::shop::{buy, buyer};
use crate::common::*;

/// Rows of `sql`, each as text, sorted: two queries' rows compare equal
/// whatever their order and integer widths.
fn rows(d: &jo_server::db::direct::Direct, sql: &str) -> Vec<String> {
    let mut out: Vec<String> = d
        .with(|c| {
            c.query_map(sql, params![], |r| {
                let mut cells = Vec::new();
                for i in 0.. {
                    match r.get::<Option<String>>(i) {
                        Ok(v) => cells.push(v.unwrap_or_default()),
                        Err(_) => break,
                    }
                }
                Ok(cells.join("|"))
            })
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    out.sort();
    out
}

#[tokio::test]
async fn rollups_equal_a_recount_after_batches_of_scans_and_sales() {
    let app = spawn_app().await;
    let d = db(&app);
    // A session of the programme, for sales (before the seeded ones, which
    // start earlier and have no offers).
    let session = crate::common::admin::first_session(&app);
    seed_session(&d, 910_001, 1);
    seed_session(&d, 910_002, 3);
    let a = seed_tickets(&d, &app.config.keys_dir, 910_001, 40);
    let b = seed_tickets(&d, &app.config.keys_dir, 910_002, 20);

    // Two gates upload batches of every verdict, some late, over two hours.
    let t = now();
    for (gate, tickets, session) in [("Porte A", &a, 910_001u32), ("Porte B", &b, 910_002)] {
        let mut dev = ApiDevice::enroll(&app, gate).await;
        for chunk in tickets.chunks(7) {
            let mut records = Vec::new();
            for (i, id) in chunk.iter().enumerate() {
                let at = t - 3_600 * (i as i64 % 3) - 10;
                records.push(dev.record(ScanVerdict::Admit, Some(*id), Some(session), at));
                if i % 3 == 0 {
                    records.push(dev.record(ScanVerdict::Used, Some(*id), Some(session), at + 5));
                }
            }
            records.push(dev.record(ScanVerdict::Refuse, None, None, t));
            let _: serde_json::Value =
                json_of(dev.upload(&dev.batch(records)).await, StatusCode::OK).await;
        }
    }
    // Sales: two buyers, several offers and quantities.
    let marie = buyer(&app, "rollup_m").await;
    buy(&marie, session, "Solo", 2).await;
    buy(&marie, session, "Duo", 1).await;
    let paul = buyer(&app, "rollup_p").await;
    buy(&paul, session, "Solo", 1).await;

    // And many rows in one statement, as a bulk load (COPY, INSERT …
    // SELECT) writes them: a statement trigger sees them all at once.
    d.with(|c| {
        c.execute(
            "INSERT INTO scans (scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id, raw,
                 verdict, reason, admits, gate, scanned_at, received_at, signature, proven)
             SELECT scan_id || '-bulk', device_id, seq + 100000, prev_hash, hash, ticket_id, session_id,
                 raw, verdict, reason, admits, gate, scanned_at - 7200, received_at, signature, proven
             FROM scans",
            params![],
        )
    })
    .expect("bulk insert");
    let scans = query_i64(&d, "SELECT count(*) FROM scans", &[]);
    assert!(scans > 120, "{scans} scans stored");
    assert_eq!(
        rows(
            &d,
            "SELECT CAST(level AS TEXT), CAST(session_id AS TEXT), gate, verdict, reason,
                    CAST(scans AS TEXT), CAST(people AS TEXT), CAST(late AS TEXT)
             FROM scan_totals WHERE scans <> 0"
        ),
        rows(
            &d,
            "SELECT CAST(l.level AS TEXT),
                    CAST(CASE WHEN l.level IN (0, 1) THEN coalesce(s.session_id, 0) ELSE -1 END AS TEXT),
                    CASE WHEN l.level IN (0, 2) THEN s.gate ELSE '' END,
                    s.verdict, coalesce(s.reason, ''), CAST(count(*) AS TEXT),
                    CAST(sum(s.admits) AS TEXT),
                    CAST(sum(CASE WHEN s.received_at - s.scanned_at > 3600 THEN 1 ELSE 0 END) AS TEXT)
             FROM scans s CROSS JOIN scan_levels l
             GROUP BY 1, 2, 3, 4, 5"
        ),
        "scan totals"
    );
    assert_eq!(
        rows(
            &d,
            "SELECT CAST(level AS TEXT), CAST(session_id AS TEXT), gate, CAST(hour AS TEXT),
                    CAST(scans AS TEXT), CAST(people AS TEXT)
             FROM scan_hours WHERE scans <> 0"
        ),
        rows(
            &d,
            "SELECT CAST(l.level AS TEXT),
                    CAST(CASE WHEN l.level IN (0, 1) THEN coalesce(s.session_id, 0) ELSE -1 END AS TEXT),
                    CASE WHEN l.level IN (0, 2) THEN s.gate ELSE '' END,
                    CAST(s.scanned_at / 3600 AS TEXT), CAST(count(*) AS TEXT), CAST(sum(s.admits) AS TEXT)
             FROM scans s CROSS JOIN scan_levels l WHERE s.verdict = 'admit'
             GROUP BY 1, 2, 3, 4"
        ),
        "admissions per hour"
    );
    assert_eq!(
        rows(
            &d,
            "SELECT CAST(session_id AS TEXT), CAST(offer_id AS TEXT), CAST(day AS TEXT),
                    CAST(tickets AS TEXT), CAST(seats AS TEXT), CAST(revenue_cents AS TEXT)
             FROM sales_daily WHERE tickets <> 0"
        ),
        rows(
            &d,
            "SELECT CAST(t.session_id AS TEXT), CAST(t.offer_id AS TEXT), CAST(t.issued_at / 86400 AS TEXT),
                    CAST(count(*) AS TEXT), CAST(sum(t.admits) AS TEXT), CAST(sum(ol.unit_price_cents) AS TEXT)
             FROM tickets t JOIN order_lines ol ON ol.id = t.order_line_id JOIN orders o ON o.id = t.order_id
             WHERE t.replaces IS NULL AND o.status = 'paid'
             GROUP BY 1, 2, 3"
        ),
        "sales per day"
    );
}
