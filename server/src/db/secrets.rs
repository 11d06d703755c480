//! Server-generated secrets kept in the database (CSRF and device-cookie keys),
//! so every server sharing the database agrees on them.

use super::sql::{Conn, Optional, params};

use super::{StoreError, StoreResult};

/// The 32-byte secret `name`, created from the OS CSPRNG on first use.
pub fn get_or_create(conn: &Conn<'_>, name: &str) -> StoreResult<[u8; 32]> {
    let mut fresh = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut fresh).map_err(|e| StoreError::Task(e.to_string()))?;
    // Insert if absent, then read: concurrent first starts agree on one value.
    conn.execute(
        "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, &fresh[..]],
    )?;
    let value: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM server_secrets WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    value
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .ok_or_else(|| StoreError::Task(format!("server secret {name} is malformed")))
}
