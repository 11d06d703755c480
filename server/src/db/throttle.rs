//! Failed-login counters ("buckets": an account, a trusted device, a client
//! address) and their temporary locks.

use super::sql::{Conn, Optional, params};

use super::StoreResult;

/// When the first of `buckets` that is locked opens again, if any is locked.
pub fn locked_until(conn: &Conn<'_>, buckets: &[&str], now: i64) -> StoreResult<Option<i64>> {
    let mut latest: Option<i64> = None;
    for b in buckets {
        let until: Option<i64> = conn
            .query_row(
                "SELECT locked_until FROM login_throttle WHERE bucket = ?1",
                params![b],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(u) = until.filter(|u| *u > now) {
            latest = Some(latest.map_or(u, |l| l.max(u)));
        }
    }
    Ok(latest)
}

/// Counts a failure; once `free` failures are passed, locks the bucket for
/// `base_secs · 2^(extra failures)`, capped at `max_secs`. Failures older than
/// `window_secs` are forgotten.
pub fn record_failure(
    conn: &Conn<'_>,
    bucket: &str,
    now: i64,
    free: u32,
    base_secs: i64,
    max_secs: i64,
    window_secs: i64,
) -> StoreResult<()> {
    let previous: Option<(i64, i64)> = conn
        .query_row(
            "SELECT failures, last_failure_at FROM login_throttle WHERE bucket = ?1",
            params![bucket],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let failures = match previous {
        Some((n, last)) if now - last < window_secs => n.saturating_add(1),
        _ => 1,
    };
    let extra = failures - i64::from(free);
    let locked_until = if extra > 0 {
        let shift = u32::try_from(extra - 1).unwrap_or(u32::MAX).min(20);
        now + base_secs.saturating_mul(1_i64 << shift).min(max_secs)
    } else {
        0
    };
    conn.execute(
        "INSERT INTO login_throttle (bucket, failures, last_failure_at, locked_until)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bucket) DO UPDATE SET failures = ?2, last_failure_at = ?3, locked_until = ?4",
        params![bucket, failures, now, locked_until],
    )?;
    Ok(())
}

/// Gives back one failure counted in advance by a reservation whose attempt
/// succeeded ([`crate::db::Store::reserve_attempt`]); lifts the bucket's lock
/// if that brings it back within its `free` failures (only failures past
/// them lock it).
pub fn release(conn: &Conn<'_>, bucket: &str, free: u32) -> StoreResult<()> {
    conn.execute(
        "UPDATE login_throttle
         SET failures = failures - 1,
             locked_until = CASE WHEN failures - 1 <= ?2 THEN 0 ELSE locked_until END
         WHERE bucket = ?1 AND failures > 0",
        params![bucket, i64::from(free)],
    )?;
    Ok(())
}

/// Forgets a bucket's failures (after a successful login or password reset).
pub fn clear(conn: &Conn<'_>, bucket: &str) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM login_throttle WHERE bucket = ?1",
        params![bucket],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> rusqlite::Connection {
        let mut c = rusqlite::Connection::open_in_memory().expect("opens");
        crate::db::migrations::apply(&mut c).expect("migrates");
        c
    }

    #[test]
    fn lock_grows_then_caps_and_expires() {
        let raw = db();
        let c = Conn::Sqlite(&raw);
        let now = 1_000_000;
        for i in 0..5 {
            record_failure(&c, "a:x", now + i, 5, 30, 900, 3600).expect("records");
        }
        assert_eq!(locked_until(&c, &["a:x"], now + 5).expect("reads"), None);
        record_failure(&c, "a:x", now + 5, 5, 30, 900, 3600).expect("records");
        assert_eq!(
            locked_until(&c, &["a:x"], now + 5).expect("reads"),
            Some(now + 35)
        );
        record_failure(&c, "a:x", now + 6, 5, 30, 900, 3600).expect("records");
        assert_eq!(
            locked_until(&c, &["a:x"], now + 6).expect("reads"),
            Some(now + 66)
        );
        for i in 0..100 {
            record_failure(&c, "a:x", now + 7 + i, 5, 30, 900, 3600).expect("records");
        }
        // Capped: never longer than max_secs after the last failure.
        assert_eq!(
            locked_until(&c, &["a:x"], now + 106).expect("reads"),
            Some(now + 106 + 900)
        );
        assert_eq!(
            locked_until(&c, &["a:x"], now + 106 + 900).expect("reads"),
            None
        );
        clear(&c, "a:x").expect("clears");
        assert_eq!(locked_until(&c, &["a:x"], now + 107).expect("reads"), None);
    }

    #[test]
    fn a_released_failure_lifts_the_lock_it_caused() {
        let raw = db();
        let c = Conn::Sqlite(&raw);
        let now = 1_000_000;
        for i in 0..4 {
            record_failure(&c, "i:x", now + i, 3, 30, 900, 3600).expect("records");
        }
        assert!(
            locked_until(&c, &["i:x"], now + 4)
                .expect("reads")
                .is_some()
        );
        release(&c, "i:x", 3).expect("releases");
        assert_eq!(locked_until(&c, &["i:x"], now + 4).expect("reads"), None);
        // A release never goes below zero, nor creates a row.
        for _ in 0..5 {
            release(&c, "i:x", 3).expect("releases");
            release(&c, "i:none", 3).expect("releases");
        }
        let n: i64 = c
            .query_row(
                "SELECT failures FROM login_throttle WHERE bucket = 'i:x'",
                params![],
                |r| r.get(0),
            )
            .expect("reads");
        assert_eq!(n, 0);
    }
}
