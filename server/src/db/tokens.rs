//! The single-use links sent by email (address verification, password reset).

use super::sql::{Conn, Optional, params};

use super::StoreResult;

/// What a token is for; a token of one purpose never works for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms an email address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// Stores a token hash. Older unused tokens of the same purpose for the same
/// user are withdrawn: only the latest link works.
pub fn insert(
    conn: &Conn<'_>,
    hash: &[u8; 32],
    user_id: i64,
    purpose: Purpose,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE email_tokens SET used_at = ?3
         WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL",
        params![user_id, purpose.as_str(), now],
    )?;
    conn.execute(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![&hash[..], user_id, purpose.as_str(), now, expires_at],
    )?;
    Ok(())
}

/// The user of a live (unused, unexpired) token, without spending it.
pub fn peek(
    conn: &Conn<'_>,
    hash: &[u8; 32],
    purpose: Purpose,
    now: i64,
) -> StoreResult<Option<i64>> {
    conn.query_row(
        "SELECT user_id FROM email_tokens
             WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
        params![&hash[..], purpose.as_str(), now],
        |r| r.get(0),
    )
    .optional()
}

/// Spends a live token, returning its user; `None` if unknown, used or expired.
/// A single UPDATE, so two concurrent uses cannot both succeed.
pub fn consume(
    conn: &Conn<'_>,
    hash: &[u8; 32],
    purpose: Purpose,
    now: i64,
) -> StoreResult<Option<i64>> {
    conn.query_row(
        "UPDATE email_tokens SET used_at = ?3
             WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
             RETURNING user_id",
        params![&hash[..], purpose.as_str(), now],
        |r| r.get(0),
    )
    .optional()
}
