//! The `users` aggregate: accounts, their credentials and second factor.

use super::sql::{Begin, Conn, Optional, Row, params};

use super::StoreResult;

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Buys tickets.
    Buyer,
    /// Runs the admin console; must have two-factor authentication on.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Self {
        // The column has a CHECK constraint; anything unexpected gets the least privilege.
        if s == "admin" {
            Role::Admin
        } else {
            Role::Buyer
        }
    }
}

/// An account, without its secrets.
#[derive(Clone, Debug)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Public handle (unique, case-insensitive).
    pub username: String,
    /// Normalised email address (unique).
    pub email: String,
    /// Prénom.
    pub first_name: String,
    /// Nom.
    pub last_name: String,
    /// Role.
    pub role: Role,
    /// Whether the email address was confirmed.
    pub email_verified: bool,
    /// Whether TOTP two-factor authentication is on.
    pub totp_enabled: bool,
}

const USER_COLUMNS: &str =
    "id, username, email, first_name, last_name, role, email_verified_at IS NOT NULL, totp_enabled";

fn user_from_row(r: &Row<'_>) -> StoreResult<User> {
    let role: String = r.get(5)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        role: Role::parse(&role),
        email_verified: r.get(6)?,
        totp_enabled: r.get(7)?,
    })
}

/// A new account to insert.
pub struct NewUser {
    /// Username.
    pub username: String,
    /// Normalised email.
    pub email: String,
    /// Prénom.
    pub first_name: String,
    /// Nom.
    pub last_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The 256-bit user key (zeroised when dropped).
    pub user_key: jo_shared::doublekey::UserKey,
    /// Role.
    pub role: Role,
    /// Whether the email counts as verified already (admins created on the command line).
    pub email_verified: bool,
}

/// Why an insert was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// The username is taken.
    Username,
    /// The email is taken.
    Email,
}

/// Inserts an account; a taken username or email is a [`Conflict`], not an error.
pub fn insert(conn: &Conn<'_>, u: &NewUser, now: i64) -> StoreResult<Result<i64, Conflict>> {
    // Tell which constraint failed without parsing SQLite's message.
    let email_taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1)",
        params![&u.email],
        |r| r.get(0),
    )?;
    if email_taken {
        return Ok(Err(Conflict::Email));
    }
    let res = conn.query_row(
        "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key,
                            role, email_verified_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        params![
            u.username,
            u.email,
            u.first_name,
            u.last_name,
            u.password_hash,
            &u.user_key.as_bytes()[..],
            u.role.as_str(),
            u.email_verified.then_some(now),
            now
        ],
        |r| r.get(0),
    );
    match res {
        Ok(id) => Ok(Ok(id)),
        Err(e) if e.is_unique_violation() => {
            let email_taken: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1)",
                params![&u.email],
                |r| r.get(0),
            )?;
            Ok(Err(if email_taken {
                Conflict::Email
            } else {
                Conflict::Username
            }))
        }
        Err(e) => Err(e),
    }
}

/// Whether a username is taken (case-insensitively).
pub fn username_taken(conn: &Conn<'_>, username: &str) -> StoreResult<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
        params![username],
        |r| r.get(0),
    )
}

/// The account with this id.
pub fn get(conn: &Conn<'_>, id: i64) -> StoreResult<Option<User>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        params![id],
        user_from_row,
    )
    .optional()
}

/// The account with this normalised email, and its password hash.
pub fn find_by_email(conn: &Conn<'_>, email: &str) -> StoreResult<Option<(User, String)>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1"),
        params![email],
        |r| Ok((user_from_row(r)?, r.get(8)?)),
    )
    .optional()
}

/// The password hash of an account.
pub fn password_hash(conn: &Conn<'_>, id: i64) -> StoreResult<Option<String>> {
    conn.query_row(
        "SELECT password_hash FROM users WHERE id = ?1",
        params![id],
        |r| r.get(0),
    )
    .optional()
}

/// Replaces the prénom and nom.
pub fn set_names(conn: &Conn<'_>, id: i64, first_name: &str, last_name: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET first_name = ?1, last_name = ?2 WHERE id = ?3",
        params![first_name, last_name, id],
    )?;
    Ok(())
}

/// Replaces the password hash.
pub fn set_password(conn: &Conn<'_>, id: i64, hash: &str) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![hash, id],
    )?;
    Ok(())
}

/// Marks the email verified (idempotent: keeps the first time).
pub fn mark_email_verified(conn: &Conn<'_>, id: i64, now: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, ?1) WHERE id = ?2",
        params![now, id],
    )?;
    Ok(())
}

/// The active TOTP secret, when two-factor authentication is on.
pub fn totp_secret(conn: &Conn<'_>, id: i64) -> StoreResult<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT totp_secret FROM users WHERE id = ?1 AND totp_enabled = 1",
            params![id],
            |r| r.get::<Option<Vec<u8>>>(0),
        )
        .optional()?
        .flatten())
}

/// The secret being enrolled (shown as a QR code until confirmed), if the
/// session with id hash `session` created it: another session of the
/// account never gets it, so it cannot read the seed being confirmed.
pub fn totp_pending_secret(
    conn: &Conn<'_>,
    id: i64,
    session: &[u8; 32],
) -> StoreResult<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT totp_pending_secret FROM users WHERE id = ?1 AND totp_pending_session = ?2",
            params![id, &session[..]],
            |r| r.get::<Option<Vec<u8>>>(0),
        )
        .optional()?
        .flatten())
}

/// Stores a new secret to enrol, bound to the session (id hash) that will
/// show and confirm it; replaces any other session's pending secret.
pub fn set_totp_pending_secret(
    conn: &Conn<'_>,
    id: i64,
    secret: &[u8],
    session: &[u8; 32],
) -> StoreResult<()> {
    conn.execute(
        "UPDATE users SET totp_pending_secret = ?1, totp_pending_session = ?3 WHERE id = ?2",
        params![secret, id, &session[..]],
    )?;
    Ok(())
}

/// Records that the code of time step `step` was used; false when that step
/// (or a later one) was used already, which makes every code single-use.
pub fn use_totp_step(conn: &Conn<'_>, id: i64, step: i64) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE users SET totp_last_step = ?1 WHERE id = ?2 AND totp_last_step < ?1",
        params![step, id],
    )?;
    Ok(n == 1)
}

/// Turns two-factor on with the pending secret of session `session` (id
/// hash), replaces the recovery codes and ends every other session of the
/// account, in one transaction: a session opened with the password alone
/// must not outlive the enrolment. False if that session has no pending secret.
pub fn enable_totp(
    conn: &Conn<'_>,
    id: i64,
    used_step: i64,
    recovery_hashes: &[[u8; 32]],
    session: &[u8; 32],
) -> StoreResult<bool> {
    let tx = conn.begin(Begin::Immediate)?;
    let n = tx.execute(
        "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL,
                          totp_pending_session = NULL, totp_enabled = 1, totp_last_step = ?2
         WHERE id = ?1 AND totp_pending_secret IS NOT NULL AND totp_pending_session = ?3",
        params![id, used_step, &session[..]],
    )?;
    if n != 1 {
        return Ok(false);
    }
    super::sessions::delete_others(&tx, id, Some(session))?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", params![id])?;
    for h in recovery_hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![id, &h[..]],
        )?;
    }
    tx.commit()?;
    Ok(true)
}

/// Turns two-factor off, drops its secret and recovery codes and ends every
/// session of the account but `keep` (id hash), in one transaction: a change
/// of the second factor, like one of the password, ends the other sessions.
pub fn disable_totp(conn: &Conn<'_>, id: i64, keep: &[u8; 32]) -> StoreResult<()> {
    let tx = conn.begin(Begin::Immediate)?;
    tx.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL,
                          totp_pending_session = NULL, totp_enabled = 0
         WHERE id = ?1",
        params![id],
    )?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", params![id])?;
    super::sessions::delete_others(&tx, id, Some(keep))?;
    tx.commit()?;
    Ok(())
}

/// Spends a recovery code; false if it is unknown or used.
pub fn use_recovery_code(conn: &Conn<'_>, id: i64, hash: &[u8; 32], now: i64) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![id, &hash[..], now],
    )?;
    Ok(n == 1)
}

/// Unused recovery codes left.
pub fn recovery_codes_left(conn: &Conn<'_>, id: i64) -> StoreResult<i64> {
    conn.query_row(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        params![id],
        |r| r.get(0),
    )
}
