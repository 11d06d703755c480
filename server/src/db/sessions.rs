//! The `sessions` aggregate: server-side login sessions.
//!
//! Only the SHA-256 of a session id is stored, so a copy of the database does
//! not let anyone ride a session.

use super::sql::{Begin, Conn, Optional, params};

use super::StoreResult;
use super::users::{User, get};

/// How far a session got through login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; the TOTP code is still due.
    SecondFactor,
    /// Fully logged in.
    Full,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::Full => "full",
        }
    }
}

/// A live session and its user.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The user.
    pub user: User,
    /// The login stage.
    pub stage: Stage,
    /// Whether this session passed the second factor (at login, or by
    /// enrolling it): what the admin console requires, since the account
    /// having 2FA on says nothing of a session opened before enrolment.
    pub second_factor: bool,
    /// When the session was last used (Unix seconds).
    pub last_seen_at: i64,
}

/// Creates a session; `second_factor` says whether it passed the second
/// factor (recorded as the time it did).
pub fn insert(
    conn: &Conn<'_>,
    id_hash: &[u8; 32],
    user_id: i64,
    stage: Stage,
    second_factor: bool,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, stage, created_at, last_seen_at, expires_at,
                               second_factor_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        params![
            &id_hash[..],
            user_id,
            stage.as_str(),
            now,
            expires_at,
            second_factor.then_some(now)
        ],
    )?;
    Ok(())
}

/// What a session id hash leads to.
pub enum Lookup {
    /// A live session.
    Live(SessionInfo),
    /// A session past its absolute expiry or idle too long: to be deleted.
    Expired,
    /// No such session (or its user is gone).
    Missing,
}

/// The session with this id hash, live only if not past its absolute expiry
/// and used within `idle_secs`. Reads only: the caller deletes an expired
/// row (see [`delete`]).
pub fn lookup(
    conn: &Conn<'_>,
    id_hash: &[u8; 32],
    now: i64,
    idle_secs: i64,
) -> StoreResult<Lookup> {
    let row: Option<(i64, String, i64, i64, bool)> = conn
        .query_row(
            "SELECT user_id, stage, last_seen_at, expires_at, second_factor_at IS NOT NULL
             FROM sessions WHERE id_hash = ?1",
            params![&id_hash[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((user_id, stage, last_seen_at, expires_at, second_factor)) = row else {
        return Ok(Lookup::Missing);
    };
    if now >= expires_at || now - last_seen_at >= idle_secs {
        return Ok(Lookup::Expired);
    }
    let stage = if stage == "full" {
        Stage::Full
    } else {
        Stage::SecondFactor
    };
    Ok(match get(conn, user_id)? {
        Some(user) => Lookup::Live(SessionInfo {
            user,
            stage,
            second_factor,
            last_seen_at,
        }),
        None => Lookup::Missing,
    })
}

/// Records activity (for the idle timeout).
pub fn touch(conn: &Conn<'_>, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
        params![&id_hash[..], now],
    )?;
    Ok(())
}

/// Ends a session.
pub fn delete(conn: &Conn<'_>, id_hash: &[u8; 32]) -> StoreResult<()> {
    conn.execute(
        "DELETE FROM sessions WHERE id_hash = ?1",
        params![&id_hash[..]],
    )?;
    Ok(())
}

/// Ends every session of a user but `keep`.
pub fn delete_others(conn: &Conn<'_>, user_id: i64, keep: Option<&[u8; 32]>) -> StoreResult<()> {
    match keep {
        Some(k) => conn.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND id_hash <> ?2",
            params![user_id, &k[..]],
        )?,
        None => conn.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?,
    };
    Ok(())
}

/// Replaces session `old` (if any) by a new one with a fresh id, atomically:
/// used at login and at every privilege change, against session fixation.
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    conn: &Conn<'_>,
    old: Option<&[u8; 32]>,
    new: &[u8; 32],
    user_id: i64,
    stage: Stage,
    second_factor: bool,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    let tx = conn.begin(Begin::Immediate)?;
    if let Some(old) = old {
        delete(&tx, old)?;
    }
    insert(&tx, new, user_id, stage, second_factor, now, expires_at)?;
    tx.commit()?;
    Ok(())
}

/// The absolute expiry of a session.
pub fn expires_at(conn: &Conn<'_>, id_hash: &[u8; 32]) -> StoreResult<Option<i64>> {
    conn.query_row(
        "SELECT expires_at FROM sessions WHERE id_hash = ?1",
        params![&id_hash[..]],
        |r| r.get(0),
    )
    .optional()
}

/// Deletes expired sessions (housekeeping).
pub fn purge_expired(conn: &Conn<'_>, now: i64, idle_secs: i64) -> StoreResult<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
        params![now, idle_secs],
    )
}
