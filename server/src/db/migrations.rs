//! Numbered schema migrations, tracked in `PRAGMA user_version`.
//!
//! Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Never edit a released
//! migration: later issues append new ones (orders, tickets, devices, scans…).

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, StoreResult};

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[
    // 1: accounts and authentication.
    r#"
    CREATE TABLE users (
        id                  INTEGER PRIMARY KEY,
        username            TEXT NOT NULL UNIQUE COLLATE NOCASE,
        email               TEXT NOT NULL UNIQUE,
        first_name          TEXT NOT NULL,
        last_name           TEXT NOT NULL,
        password_hash       TEXT NOT NULL,
        user_key            BLOB NOT NULL CHECK (length(user_key) = 32),
        role                TEXT NOT NULL DEFAULT 'buyer' CHECK (role IN ('buyer', 'admin')),
        email_verified_at   INTEGER,
        totp_secret         BLOB,
        totp_enabled        INTEGER NOT NULL DEFAULT 0 CHECK (totp_enabled IN (0, 1)),
        totp_pending_secret BLOB,
        totp_last_step      INTEGER NOT NULL DEFAULT 0,
        created_at          INTEGER NOT NULL
    ) STRICT;

    -- Server-side sessions; the cookie holds a random id, the table its SHA-256.
    CREATE TABLE sessions (
        id_hash      BLOB PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        stage        TEXT NOT NULL CHECK (stage IN ('second_factor', 'full')),
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_user ON sessions(user_id);

    -- Single-use links sent by email, stored as SHA-256.
    CREATE TABLE email_tokens (
        token_hash BLOB PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    ) STRICT;
    CREATE INDEX email_tokens_by_user ON email_tokens(user_id);

    -- Two-factor recovery codes, stored as SHA-256 (each has 80 random bits).
    CREATE TABLE recovery_codes (
        user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code_hash BLOB NOT NULL,
        used_at   INTEGER,
        PRIMARY KEY (user_id, code_hash)
    ) STRICT;

    -- Failed-login counters per account, trusted device or client address.
    CREATE TABLE login_throttle (
        bucket          TEXT PRIMARY KEY,
        failures        INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL,
        locked_until    INTEGER NOT NULL
    ) STRICT;

    -- Server-generated secrets (CSRF and device-cookie keys).
    CREATE TABLE server_secrets (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;
    "#,
    // 2: gate scanner devices and their one-time enrolment codes.
    r#"
    -- A device is created when it redeems an enrolment code.
    CREATE TABLE devices (
        id          TEXT PRIMARY KEY,
        label       TEXT NOT NULL,
        public_key  BLOB NOT NULL CHECK (length(public_key) = 32),
        token_hash  BLOB NOT NULL UNIQUE,
        enrolled_at INTEGER NOT NULL,
        revoked_at  INTEGER
    ) STRICT;

    -- One-time enrolment codes, stored as SHA-256 (each has 100 random bits).
    CREATE TABLE enrollment_codes (
        code_hash  BLOB PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER,
        device_id  TEXT REFERENCES devices(id)
    ) STRICT;
    "#,
    // 3: the programme, offers, orders, tickets, revocation list, scans.
    include_str!("migrations/0003_programme_tickets_sync.sql"),
    // 4: the shop's carts and payments.
    include_str!("migrations/0004_shop.sql"),
    // 5: the sync API's own state.
    include_str!("migrations/0005_sync.sql"),
    // 6: the admin console (audit log).
    include_str!("migrations/0006_admin.sql"),
    // 7: sessions that passed the second factor; pending TOTP secrets bound to a session.
    include_str!("migrations/0007_second_factor_sessions.sql"),
    // 8: admissions prove themselves (ticket text, gate signature); a new conflict kind.
    include_str!("migrations/0008_trusted_admissions.sql"),
    // 9: nothing on SQLite; PostgreSQL's rollup triggers fire per statement.
    include_str!("migrations/0009_rollups_per_statement.sql"),
    // 10: the mail outbox (mail written with what triggers it, sent by any node).
    include_str!("migrations/0010_mail_outbox.sql"),
    // 11: the mail kind of a revoked ticket's notice.
    include_str!("migrations/0011_ticket_revoked_mail.sql"),
    // 12: holder names per ticket, transfers, a re-issued ticket's own purchase key.
    include_str!("migrations/0012_transfers.sql"),
    // 13: a venue's address and a session's entrance, printed on the ticket.
    include_str!("migrations/0013_venue_address_entrance.sql"),
    // 14: resale tickets in the cart; an order's lines name the listings they buy.
    include_str!("migrations/0014_resale_in_cart.sql"),
    // 15: a buyer's limits found from the buyer, not by walking the session's rows.
    include_str!("migrations/0015_buyer_limits_indexes.sql"),
];

/// Applies every pending migration in one IMMEDIATE transaction, so two
/// servers starting at once cannot both migrate.
pub fn apply(conn: &mut Connection) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_idempotent() {
        let mut conn = Connection::open_in_memory().expect("opens");
        apply(&mut conn).expect("migrates");
        apply(&mut conn).expect("second run is a no-op");
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.pragma_update(None, "user_version", 999).expect("sets");
        assert!(matches!(apply(&mut conn), Err(StoreError::TooNew { .. })));
    }
}
