//! The `devices` aggregate: gate scanners and their one-time enrolment codes.
//!
//! An admin creates a code (`jo-server enroll-code`); the scanner redeems it
//! once, giving its public key, and gets a device id and a bearer token of
//! which the server keeps only the SHA-256.

use super::sql::{Begin, Conn, Optional, params};

use super::audit::{Actor, audit};
use super::{Store, StoreResult, now};

/// Stores a new enrolment code hash.
pub fn insert_code(
    conn: &Conn<'_>,
    code_hash: &[u8; 32],
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO enrollment_codes (code_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
        params![&code_hash[..], now, expires_at],
    )?;
    Ok(())
}

/// A device being enrolled.
pub struct NewDevice {
    /// Random id given to the device.
    pub id: String,
    /// Label for the admin console.
    pub label: String,
    /// The device's Ed25519 public key.
    pub public_key: [u8; 32],
    /// SHA-256 of its bearer token.
    pub token_hash: [u8; 32],
}

/// Spends a live code and creates the device, atomically; false if the code
/// is unknown, used or expired.
pub fn redeem(
    conn: &Conn<'_>,
    code_hash: &[u8; 32],
    device: &NewDevice,
    now: i64,
) -> StoreResult<bool> {
    let tx = conn.begin(Begin::Immediate)?;
    let live: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM enrollment_codes WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![&code_hash[..], now],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO devices (id, label, public_key, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![device.id, device.label, &device.public_key[..], &device.token_hash[..], now],
    )?;
    tx.execute(
        "UPDATE enrollment_codes SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1",
        params![&code_hash[..], now, device.id],
    )?;
    tx.commit()?;
    Ok(true)
}

/// The id of the live (not revoked) device holding this token hash.
pub fn by_token(conn: &Conn<'_>, token_hash: &[u8; 32]) -> StoreResult<Option<String>> {
    conn.query_row(
        "SELECT id FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL",
        params![&token_hash[..]],
        |r| r.get(0),
    )
    .optional()
}

/// A live device as the sync API authenticates it.
#[derive(Debug, Clone)]
pub struct AuthDevice {
    /// The device id.
    pub id: String,
    /// Its Ed25519 public key, which verifies its upload batches.
    pub public_key: [u8; 32],
    /// When it last synced (Unix seconds), if ever.
    pub last_sync_at: Option<i64>,
}

/// The live (not revoked) device holding this token hash, with what the API
/// needs of it. Unknown and revoked devices look alike: `None`.
pub fn authenticate(conn: &Conn<'_>, token_hash: &[u8; 32]) -> StoreResult<Option<AuthDevice>> {
    let row: Option<(String, Vec<u8>, Option<i64>)> = conn
        .query_row(
            "SELECT id, public_key, last_sync_at FROM devices
             WHERE token_hash = ?1 AND revoked_at IS NULL",
            params![&token_hash[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(id, key, last_sync_at)| {
        Some(AuthDevice {
            id,
            public_key: key.try_into().ok()?,
            last_sync_at,
        })
    }))
}

/// Replaces a live device's token hash, only if `old_hash` is still its
/// token (two concurrent rolls: one wins). False if nothing changed.
pub fn roll_token(
    conn: &Conn<'_>,
    id: &str,
    old_hash: &[u8; 32],
    new_hash: &[u8; 32],
) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE devices SET token_hash = ?3
         WHERE id = ?1 AND token_hash = ?2 AND revoked_at IS NULL",
        params![id, &old_hash[..], &new_hash[..]],
    )?;
    Ok(n == 1)
}

/// Revokes a device: its token stops working at once. False if it was
/// unknown or already revoked.
pub fn revoke(conn: &Conn<'_>, id: &str, now: i64) -> StoreResult<bool> {
    let n = conn.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    Ok(n == 1)
}

/// Every enrolled device: id, public key, whether revoked (for the signed
/// device list gates check admissions against).
pub fn keys(conn: &Conn<'_>) -> StoreResult<Vec<(String, [u8; 32], bool)>> {
    // Bytewise order on both databases (the signed list is the same).
    let rows = conn.query_map(
        "SELECT id, public_key, revoked_at IS NOT NULL FROM devices ORDER BY id COLLATE \"binary\"",
        params![],
        |r| Ok((r.get::<String>(0)?, r.get::<Vec<u8>>(1)?, r.get::<bool>(2)?)),
    )?;
    let mut out = Vec::new();
    for (id, key, revoked) in rows {
        // The schema holds 32-byte keys; anything else cannot verify and is left out.
        if let Ok(key) = <[u8; 32]>::try_from(key) {
            out.push((id, key, revoked));
        }
    }
    Ok(out)
}

/// Records that a device talked to the sync API.
pub fn touch(conn: &Conn<'_>, id: &str, now: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE devices SET last_sync_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// A scanner device.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Device id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Gate it reports.
    pub gate: String,
    /// Enrolled, Unix seconds.
    pub enrolled_at: i64,
    /// Last sync, Unix seconds.
    pub last_sync_at: Option<i64>,
    /// Scans waiting on the device at its last sync.
    pub pending_uploads: i64,
    /// Clock skew seen at its last sync, seconds.
    pub clock_skew_secs: Option<i64>,
    /// Revoked, Unix seconds.
    pub revoked_at: Option<i64>,
}

/// What an upload tells of its device.
pub(super) struct Upload<'a> {
    /// Sequence number of the last record stored.
    pub last_seq: i64,
    /// Its hash (the chain head).
    pub last_hash: &'a [u8; 32],
    /// Scans still waiting on the device.
    pub pending: i64,
    /// The gate it reports.
    pub gate: &'a str,
    /// How far ahead of the server its newest scan is dated, seconds.
    pub clock_skew_secs: i64,
}

/// Records an upload on its device, inside the upload's transaction: the
/// chain head moves forward only, and the console's sync figures.
pub(super) fn record_upload(
    tx: &Conn<'_>,
    device_id: &str,
    up: Upload<'_>,
    now: i64,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE devices SET last_seq = ?2, last_hash = ?3 WHERE id = ?1 AND last_seq <= ?2",
        params![device_id, up.last_seq, &up.last_hash[..]],
    )?;
    tx.execute(
        "UPDATE devices SET last_sync_at = ?2, pending_uploads = ?3, gate = ?4,
                            clock_skew_secs = ?5
         WHERE id = ?1",
        params![device_id, now, up.pending, up.gate, up.clock_skew_secs],
    )?;
    Ok(())
}

impl Store {
    /// Stores a new scanner enrolment code (its hash), valid `ttl_secs`.
    pub async fn create_enrollment_code(
        &self,
        code_hash: [u8; 32],
        ttl_secs: i64,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                insert_code(c, &code_hash, t, t + ttl_secs)
            })
            .await
    }

    /// Spends an enrolment code and creates the device; false if the code is not live.
    pub async fn redeem_enrollment_code(
        &self,
        code_hash: [u8; 32],
        device: NewDevice,
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| redeem(c, &code_hash, &device, now()))
            .await
    }

    /// The live device holding a bearer token (by its hash).
    pub async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<String>> {
        self.pool.run_sql(move |c| by_token(c, &token_hash)).await
    }

    /// The live device holding a bearer token (by its hash).
    pub async fn api_device(&self, token_hash: [u8; 32]) -> StoreResult<Option<AuthDevice>> {
        self.pool
            .read_blocking_sql(move |c| authenticate(c, &token_hash))
            .await
    }

    /// Every enrolled device's id, public key and whether it is revoked.
    pub async fn device_keys(&self) -> StoreResult<Vec<(String, [u8; 32], bool)>> {
        self.pool.read_blocking_sql(keys).await
    }

    /// Records that a device synced now.
    pub async fn touch_device(&self, id: String) -> StoreResult<()> {
        self.pool.run_sql(move |c| touch(c, &id, now())).await
    }

    /// Replaces a device's token; false if `old_hash` is no longer its token.
    pub async fn roll_device_token(
        &self,
        id: String,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| roll_token(c, &id, &old_hash, &new_hash))
            .await
    }

    /// Revokes a device: its next API call gets 401.
    pub async fn revoke_device(&self, id: String) -> StoreResult<bool> {
        self.pool.run_sql(move |c| revoke(c, &id, now())).await
    }

    /// Every device, live ones first, then by enrolment.
    pub async fn admin_devices(&self) -> StoreResult<Vec<DeviceRow>> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_map(
                    "SELECT id, label, gate, enrolled_at, last_sync_at, pending_uploads, clock_skew_secs, revoked_at
                     FROM devices ORDER BY revoked_at IS NOT NULL, enrolled_at DESC",
                    params![],
                    |r| {
                        Ok(DeviceRow {
                            id: r.get(0)?,
                            label: r.get(1)?,
                            gate: r.get(2)?,
                            enrolled_at: r.get(3)?,
                            last_sync_at: r.get(4)?,
                            pending_uploads: r.get(5)?,
                            clock_skew_secs: r.get(6)?,
                            revoked_at: r.get(7)?,
                        })
                    },
                )
            })
            .await
    }

    /// Live (unused, unexpired) enrolment codes.
    pub async fn admin_live_codes(&self) -> StoreResult<i64> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_row(
                    "SELECT count(*) FROM enrollment_codes WHERE used_at IS NULL AND expires_at > ?1",
                    params![now()],
                    |r| r.get(0),
                )
            })
            .await
    }

    /// Stores a new one-time enrolment code (its hash only).
    pub async fn admin_create_enrollment_code(
        &self,
        actor: Actor,
        code_hash: [u8; 32],
        ttl_secs: i64,
    ) -> StoreResult<i64> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                insert_code(&tx, &code_hash, t, t + ttl_secs)?;
                // The code itself never enters the log: only its expiry.
                audit(
                    &tx,
                    &actor,
                    "device.enrollment_code",
                    "device:new",
                    &format!("expires_at={}", t + ttl_secs),
                    t,
                )?;
                tx.commit()?;
                Ok(t + ttl_secs)
            })
            .await
    }

    /// Revokes a device; false if there is no such live device.
    pub async fn admin_revoke_device(&self, actor: Actor, id: String) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                if !revoke(&tx, &id, t)? {
                    return Ok(false);
                }
                audit(&tx, &actor, "device.revoke", &format!("device:{id}"), "", t)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str) -> NewDevice {
        NewDevice {
            id: id.into(),
            label: "Porte A".into(),
            public_key: [1; 32],
            token_hash: [id.len() as u8; 32],
        }
    }

    #[test]
    fn a_code_enrols_one_device_once_before_it_expires() {
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        crate::db::migrations::apply(&mut raw).expect("migrates");
        let c = Conn::Sqlite(&raw);
        insert_code(&c, &[7; 32], 100, 200).expect("inserts");
        insert_code(&c, &[8; 32], 100, 150).expect("inserts");
        assert!(
            !redeem(&c, &[9; 32], &device("x"), 110).expect("runs"),
            "unknown code"
        );
        assert!(
            !redeem(&c, &[8; 32], &device("xy"), 150).expect("runs"),
            "expired code"
        );
        assert!(redeem(&c, &[7; 32], &device("dev1"), 110).expect("runs"));
        assert!(
            !redeem(&c, &[7; 32], &device("dev22"), 111).expect("runs"),
            "used code"
        );
        assert_eq!(
            by_token(&c, &[4; 32]).expect("reads").as_deref(),
            Some("dev1")
        );
        assert_eq!(by_token(&c, &[5; 32]).expect("reads"), None);

        let d = authenticate(&c, &[4; 32]).expect("reads").expect("live");
        assert_eq!((d.id.as_str(), d.public_key), ("dev1", [1; 32]));
        assert!(roll_token(&c, "dev1", &[4; 32], &[6; 32]).expect("rolls"));
        assert!(
            !roll_token(&c, "dev1", &[4; 32], &[7; 32]).expect("runs"),
            "the old token cannot roll again"
        );
        assert!(authenticate(&c, &[4; 32]).expect("reads").is_none());
        assert!(authenticate(&c, &[6; 32]).expect("reads").is_some());
        assert!(revoke(&c, "dev1", 120).expect("revokes"));
        assert!(!revoke(&c, "dev1", 121).expect("runs"), "already revoked");
        assert!(authenticate(&c, &[6; 32]).expect("reads").is_none());
    }
}
