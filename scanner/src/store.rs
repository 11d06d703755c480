//! The scanner's local store (SQLite): the keyring pinned at enrolment,
//! sessions, revocation list, the signed device list, entries seen, the
//! hash-chained scan log and sync cursors.
//!
//! Durability is the point: the database runs in WAL mode with
//! `synchronous = FULL`, so a committed scan is on disk before
//! [`Store::append_scan`] returns, and the verdict is shown only after that. A
//! crash or a power cut at any instant leaves every shown verdict in the log.

use std::path::Path;

use jo_shared::api::{
    EntryRule, GateSession, ScanId, ScanRecord, ScanVerdict, SignedDeviceList, SignedKeyring,
};
use jo_shared::revocation::{RevocationEntry, RevocationList};
use jo_shared::signing::{KeyId, Keyring, verifying_key_from_bytes};
use jo_shared::ticket::{TICKET_ID_LEN, TicketId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "scanner.sqlite3";

const MIGRATIONS: &[&str] = &[
    // 1: everything the gate needs offline.
    r#"
    CREATE TABLE device (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        server_url TEXT NOT NULL,
        device_id TEXT NOT NULL,
        token TEXT NOT NULL,
        secret_key BLOB NOT NULL,
        gate TEXT NOT NULL DEFAULT '',
        enrolled_at INTEGER NOT NULL
    );
    CREATE TABLE keyring (
        key_id TEXT PRIMARY KEY,
        public_key BLOB NOT NULL,
        withdrawn INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        json TEXT NOT NULL,
        selected INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE revocations (
        version INTEGER PRIMARY KEY,
        ticket_id BLOB NOT NULL,
        reason INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL
    );
    CREATE TABLE revocation_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        head BLOB NOT NULL,
        issued_at INTEGER NOT NULL
    );
    CREATE TABLE scans (
        seq INTEGER PRIMARY KEY,
        scan_id TEXT NOT NULL UNIQUE,
        record TEXT NOT NULL,
        hash BLOB NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX scans_pending ON scans (uploaded, seq);
    CREATE TABLE remote_entries (
        ticket_id BLOB NOT NULL,
        session_id INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        gate TEXT NOT NULL,
        scanned_at INTEGER NOT NULL,
        PRIMARY KEY (ticket_id, device_id, scanned_at)
    );
    CREATE TABLE sync_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: trust. The keyring statement pinned at enrolment (the gate's keys
    // derive from it; the old `keyring` table is read only by a gate that
    // has not pinned one yet), the signed device list, and other gates'
    // entries with their device's signature. Entries learned before they
    // were signed cannot be checked: they are forgotten and the feed is read
    // again from the start, so that only signed ones come back.
    r#"
    CREATE TABLE pinned_keyring (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        statement TEXT NOT NULL
    );
    CREATE TABLE device_list (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        issued_at INTEGER NOT NULL,
        list TEXT NOT NULL
    );
    DELETE FROM remote_entries;
    DELETE FROM sync_state WHERE key = 'entries_cursor';
    ALTER TABLE remote_entries ADD COLUMN scan_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE remote_entries ADD COLUMN signature TEXT NOT NULL DEFAULT '';
    "#,
    // 3: entries learned from gates on the LAN beside those from the
    // server, in one grow-only set merged by scan id: an admission heard
    // from both (or from two peers) counts once. `source` keeps where it
    // came from (the peer-learned part is capped); the gate's own log
    // (`scans`) is never touched by what peers say.
    r#"
    ALTER TABLE remote_entries ADD COLUMN source TEXT NOT NULL DEFAULT 'server';
    DELETE FROM remote_entries WHERE scan_id <> ''
        AND rowid NOT IN (SELECT MIN(rowid) FROM remote_entries GROUP BY scan_id);
    CREATE UNIQUE INDEX remote_entries_scan_id ON remote_entries (scan_id) WHERE scan_id <> '';
    "#,
];

/// Where another gate's entry was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySource {
    /// From the server's entries feed.
    Server,
    /// From a gate on the LAN ([`crate::peers`]).
    Peer,
}

impl EntrySource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Peer => "peer",
        }
    }
}

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("local database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// Stored data is not what this build wrote.
    #[error("local database holds invalid data: {0}")]
    Corrupt(String),
    /// The state directory cannot be created.
    #[error("state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An entry (admission) known to this device: its own or another gate's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownEntry {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Device time of the admission.
    pub scanned_at: i64,
    /// Gate.
    pub gate: String,
}

/// This device's server enrolment.
#[derive(Clone)]
pub struct Enrollment {
    /// Server base URL, no trailing slash.
    pub server_url: String,
    /// The id the server gave this device.
    pub device_id: String,
    /// Bearer token of the sync API.
    pub token: String,
    /// The device's Ed25519 secret key (signs upload batches).
    pub secret_key: [u8; 32],
}

impl std::fmt::Debug for Enrollment {
    // The token and key stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("server_url", &self.server_url)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// The local store.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and applies migrations.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir_err = |source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        // The database holds the device's private key and API token: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(dir_err)?;
        }
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(dir_err)?;
        }
        Self::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: the WAL is fsynced at every commit, so a committed scan survives a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this scanner ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(Self { conn })
    }

    /// The device's gate name ('' before one is chosen).
    pub fn gate(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("SELECT gate FROM device WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or_default())
    }

    /// The device id this scanner was enrolled under (`None` before enrolment;
    /// a gate name set locally does not make an enrolment).
    pub fn device_id(&self) -> Result<Option<String>> {
        let id: Option<String> = self
            .conn
            .query_row("SELECT device_id FROM device WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(id.filter(|id| !id.is_empty()))
    }

    /// The server enrolment, if this device has one.
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        let row: Option<(String, String, String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT server_url, device_id, token, secret_key FROM device WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((server_url, device_id, token, key)) = row else {
            return Ok(None);
        };
        if device_id.is_empty() {
            return Ok(None);
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| StoreError::Corrupt("device key length".into()))?;
        Ok(Some(Enrollment {
            server_url,
            device_id,
            token,
            secret_key: key,
        }))
    }

    /// Saves a new enrolment (keeping the gate name) and the keyring
    /// statement pinned with it, in one transaction, replacing any earlier
    /// enrolment. The device list held is dropped: it was checked against
    /// the old trust root.
    pub fn save_enrollment(
        &mut self,
        e: &Enrollment,
        pinned: &SignedKeyring,
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO device (id, server_url, device_id, token, secret_key, gate, enrolled_at)
             VALUES (1, ?1, ?2, ?3, ?4, '', ?5)
             ON CONFLICT (id) DO UPDATE SET server_url = excluded.server_url,
                device_id = excluded.device_id, token = excluded.token,
                secret_key = excluded.secret_key, enrolled_at = excluded.enrolled_at",
            params![e.server_url, e.device_id, e.token, &e.secret_key[..], now],
        )?;
        put_pinned(&tx, pinned)?;
        tx.execute("DELETE FROM device_list", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the API token (after a roll).
    pub fn set_token(&mut self, token: &str) -> Result<()> {
        self.conn
            .execute("UPDATE device SET token = ?1 WHERE id = 1", [token])?;
        Ok(())
    }

    /// Sets an unpinned keyring by hand: a gate set up without a server
    /// (tests, demos), or what a gate enrolled before keyrings were signed
    /// held. Once a statement is pinned ([`Store::pin_keyring`]) it alone
    /// decides the keyring and this table is no longer read.
    pub fn replace_keyring(&mut self, keys: &[(KeyId, [u8; 32], bool)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM keyring", [])?;
        for (id, key, withdrawn) in keys {
            tx.execute(
                "INSERT INTO keyring (key_id, public_key, withdrawn) VALUES (?1, ?2, ?3)",
                params![id.to_hex(), &key[..], withdrawn],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Pins a keyring statement (the caller checked it: [`jo_shared::trust::pin`]
    /// at enrolment, [`jo_shared::trust::advance`] afterwards).
    pub fn pin_keyring(&mut self, statement: &SignedKeyring) -> Result<()> {
        let tx = self.conn.transaction()?;
        put_pinned(&tx, statement)?;
        tx.commit()?;
        Ok(())
    }

    /// The keyring statement pinned, if any.
    pub fn pinned_keyring(&self) -> Result<Option<SignedKeyring>> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT statement FROM pinned_keyring WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("pinned keyring: {e}")))
        })
        .transpose()
    }

    /// The keyring the gate verifies with: the pinned statement's, or, on a
    /// gate that has pinned none yet, the keys set by hand or synced before
    /// keyrings were signed.
    pub fn keyring(&self) -> Result<Keyring> {
        if let Some(statement) = self.pinned_keyring()? {
            return statement
                .keyring()
                .map_err(|e| StoreError::Corrupt(format!("pinned keyring: {e}")));
        }
        self.unpinned_keyring()
    }

    fn unpinned_keyring(&self) -> Result<Keyring> {
        let mut ring = Keyring::new();
        let mut withdrawn = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, public_key, withdrawn FROM keyring")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        for row in rows {
            let (id, key, w) = row?;
            let key = verifying_key_from_bytes(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("public key {id}")))?;
            let got = ring
                .add(key)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if w {
                withdrawn.push(got);
            }
        }
        for id in withdrawn {
            ring.withdraw(id);
        }
        Ok(ring)
    }

    /// Replaces the sessions with the synced ones, keeping which were selected
    /// for this gate. A session new to the gate starts selected only while
    /// the gate is not set up yet (no gate name: the set-up window then
    /// offers every session ticked); once it is, a new session starts
    /// unselected, so that a gate set up for one venue never starts admitting
    /// a session added later at another.
    pub fn replace_sessions(&mut self, sessions: &[GateSession]) -> Result<()> {
        let tx = self.conn.transaction()?;
        let configured = tx
            .query_row("SELECT gate FROM device WHERE id = 1", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .is_some_and(|g| !g.is_empty());
        let keep: Vec<(u32, bool)> = {
            let mut stmt = tx.prepare("SELECT id, selected FROM sessions")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute("DELETE FROM sessions", [])?;
        for s in sessions {
            let selected = keep
                .iter()
                .find(|(id, _)| *id == s.id)
                .map_or(!configured, |(_, sel)| *sel);
            let json = serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO sessions (id, json, selected) VALUES (?1, ?2, ?3)",
                params![s.id, json, selected],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sessions, with whether this gate serves each.
    pub fn sessions(&self) -> Result<Vec<(GateSession, bool)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT json, selected FROM sessions ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (json, sel) = row?;
            let s: GateSession =
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((s, sel));
        }
        Ok(out)
    }

    /// Chooses which sessions this gate serves.
    pub fn select_sessions(&mut self, ids: &[u32]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE sessions SET selected = 0", [])?;
        for id in ids {
            tx.execute("UPDATE sessions SET selected = 1 WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores verified revocation entries and the state they lead to, in one
    /// transaction (the caller verified them with [`RevocationList::apply`]).
    pub fn add_revocations(
        &mut self,
        entries: &[RevocationEntry],
        list: &RevocationList,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO revocations (version, ticket_id, reason, revoked_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in entries {
                stmt.execute(params![
                    e.version as i64,
                    &e.ticket_id.0[..],
                    e.reason,
                    e.revoked_at
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO revocation_state (id, version, head, issued_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, head = excluded.head, issued_at = excluded.issued_at",
            params![list.version() as i64, &list.head()[..], list.issued_at()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The revocation list as last verified.
    pub fn revocations(&self) -> Result<RevocationList> {
        let state: Option<(i64, Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT version, head, issued_at FROM revocation_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((version, head, issued_at)) = state else {
            return Ok(RevocationList::new());
        };
        let head: [u8; 32] = head
            .try_into()
            .map_err(|_| StoreError::Corrupt("revocation head".into()))?;
        let mut stmt = self
            .conn
            .prepare("SELECT ticket_id, reason FROM revocations WHERE version <= ?1")?;
        let rows = stmt.query_map([version], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u8>(1)?))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, reason) = row?;
            entries.push((ticket_id(&id)?, reason));
        }
        Ok(RevocationList::restore(
            version as u64,
            head,
            issued_at,
            entries,
        ))
    }

    /// Appends a scan to the log, chained to the previous one, and commits it
    /// durably. Returns the stored record (with its `seq` and `prev_hash`).
    pub fn append_scan(&mut self, mut record: ScanRecord) -> Result<ScanRecord> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT seq, hash FROM scans ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (seq, prev) = match last {
            Some((seq, hash)) => (seq as u64 + 1, hex::encode(hash)),
            None => (1, "0".repeat(64)),
        };
        record.seq = seq;
        record.prev_hash = prev;
        let hash = record.hash();
        let json =
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            "INSERT INTO scans (seq, scan_id, record, hash) VALUES (?1, ?2, ?3, ?4)",
            params![seq as i64, record.scan_id.as_str(), json, &hash[..]],
        )?;
        tx.commit()?;
        Ok(record)
    }

    /// Scans not yet uploaded, oldest first, at most `limit`.
    pub fn pending_scans(&self, limit: usize) -> Result<Vec<ScanRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT record FROM scans WHERE uploaded = 0 ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| r.get::<_, String>(0))?;
        rows.map(|r| serde_json::from_str(&r?).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    /// Number of scans waiting for upload.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM scans WHERE uploaded = 0", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Marks scans as uploaded.
    pub fn mark_uploaded(&mut self, ids: &[ScanId]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE scans SET uploaded = 1 WHERE scan_id = ?1",
                [id.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every scan in the log, oldest first.
    pub fn all_scans(&self) -> Result<Vec<ScanRecord>> {
        let mut stmt = self.conn.prepare("SELECT record FROM scans ORDER BY seq")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| serde_json::from_str(&r?).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    /// Records entries other devices uploaded (learned at sync), with their
    /// device's signature as evidence, and returns those that were new
    /// (an entry already known, by scan id, is not handed to the gate
    /// twice). The caller checked each against the signed device list: only
    /// verified entries may be stored, since the gate refuses tickets on
    /// their word.
    pub fn add_remote_entries(
        &mut self,
        entries: &[jo_shared::api::RemoteEntry],
    ) -> Result<Vec<jo_shared::api::RemoteEntry>> {
        self.add_entries(entries, EntrySource::Server, u64::MAX)
    }

    /// Records entries learned from gates on the LAN (each checked by the
    /// caller against the signed device list), merged by scan id with
    /// everything known; returns the new ones. At most `cap` peer-learned
    /// entries are kept: past it, new ones are dropped (a flood of valid
    /// but endless admissions cannot fill the disk).
    pub fn add_peer_entries(
        &mut self,
        entries: &[jo_shared::api::RemoteEntry],
        cap: u64,
    ) -> Result<Vec<jo_shared::api::RemoteEntry>> {
        self.add_entries(entries, EntrySource::Peer, cap)
    }

    fn add_entries(
        &mut self,
        entries: &[jo_shared::api::RemoteEntry],
        source: EntrySource,
        cap: u64,
    ) -> Result<Vec<jo_shared::api::RemoteEntry>> {
        // Immediate: a read transaction that later writes may be refused
        // at once (its snapshot stale) when another connection wrote
        // meanwhile; taking the write lock first lets the busy timeout wait.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut held: u64 = if cap == u64::MAX {
            0
        } else {
            tx.query_row(
                "SELECT COUNT(*) FROM remote_entries WHERE source = ?1",
                [source.as_str()],
                |r| r.get::<_, i64>(0),
            )? as u64
        };
        let mut new = Vec::new();
        for e in entries {
            if held >= cap {
                break;
            }
            let n = tx.execute(
                "INSERT OR IGNORE INTO remote_entries
                    (ticket_id, session_id, device_id, gate, scanned_at, scan_id, signature, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &e.ticket_id.0[..],
                    e.session_id,
                    e.device_id,
                    e.gate,
                    e.scanned_at,
                    e.scan_id.as_str(),
                    e.signature,
                    source.as_str()
                ],
            )?;
            if n == 1 {
                held += 1;
                new.push(e.clone());
            }
        }
        tx.commit()?;
        Ok(new)
    }

    /// Entries learned from `source`.
    pub fn remote_entry_count(&self, source: EntrySource) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM remote_entries WHERE source = ?1",
            [source.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Signed admissions this gate can vouch for to its peers, after the
    /// positions `after` (`(last own seq, last other rowid)`):
    /// its own admissions from the log (signed at the
    /// scan, under `device_id`) and every other gate's it learned, `limit`
    /// in all (the own ones first). Each
    /// carries its device's signature, so a peer believes it on that
    /// signature alone, not on this gate's word. Returns the entries and
    /// the positions to ask from next.
    pub fn shareable_entries(
        &self,
        device_id: &str,
        after: (u64, u64),
        limit: usize,
    ) -> Result<(Vec<jo_shared::api::RemoteEntry>, (u64, u64))> {
        let (mut own_at, mut other_at) = after;
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT seq, record FROM scans WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![own_at as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (seq, json) = row?;
            own_at = own_at.max(seq as u64);
            let r: ScanRecord =
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let (ScanVerdict::Admit, Some(ticket_id), Some(session_id), Some(signature)) =
                (r.verdict, r.ticket_id, r.session_id, r.signature)
                && !device_id.is_empty()
            {
                out.push(jo_shared::api::RemoteEntry {
                    scan_id: r.scan_id,
                    ticket_id,
                    session_id,
                    device_id: device_id.to_owned(),
                    gate: r.gate,
                    scanned_at: r.scanned_at,
                    signature,
                });
            }
        }
        // `limit` in all: the rest of it for other gates' entries.
        let rest = limit.saturating_sub(out.len());
        if rest == 0 {
            return Ok((out, (own_at, other_at)));
        }
        let mut stmt = self.conn.prepare(
            "SELECT rowid, ticket_id, session_id, device_id, gate, scanned_at, scan_id, signature
             FROM remote_entries WHERE rowid > ?1 AND scan_id <> '' ORDER BY rowid LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![other_at as i64, rest as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        for row in rows {
            let (rowid, id, session, device, gate, scanned_at, scan_id, signature) = row?;
            other_at = other_at.max(rowid as u64);
            let (Some(scan_id), Ok(session_id)) = (ScanId::parse(&scan_id), u32::try_from(session))
            else {
                continue;
            };
            out.push(jo_shared::api::RemoteEntry {
                scan_id,
                ticket_id: ticket_id(&id)?,
                session_id,
                device_id: device,
                gate,
                scanned_at,
                signature,
            });
        }
        Ok((out, (own_at, other_at)))
    }

    /// Every admission known: this device's admitted scans and other devices'.
    pub fn known_entries(&self) -> Result<Vec<KnownEntry>> {
        let mut out = Vec::new();
        for r in self.all_scans()? {
            if let (ScanVerdict::Admit, Some(id)) = (r.verdict, r.ticket_id) {
                out.push(KnownEntry {
                    ticket_id: id,
                    scanned_at: r.scanned_at,
                    gate: r.gate,
                });
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT ticket_id, gate, scanned_at FROM remote_entries")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (id, gate, scanned_at) = row?;
            out.push(KnownEntry {
                ticket_id: ticket_id(&id)?,
                scanned_at,
                gate,
            });
        }
        Ok(out)
    }

    /// Stores the device list (the caller verified it with the pinned keyring).
    pub fn save_device_list(&mut self, list: &SignedDeviceList) -> Result<()> {
        let json = serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO device_list (id, issued_at, list) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET issued_at = excluded.issued_at, list = excluded.list",
            params![list.issued_at, json],
        )?;
        Ok(())
    }

    /// The device list last verified, if any.
    pub fn device_list(&self) -> Result<Option<SignedDeviceList>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT list FROM device_list WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("device list: {e}")))
        })
        .transpose()
    }

    /// A sync cursor or other small setting.
    pub fn get_state(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets a sync cursor or other small setting.
    pub fn set_state(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Sets the gate name, creating a local-only device row when none exists.
    pub fn set_gate(&mut self, gate: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO device (id, server_url, device_id, token, secret_key, gate, enrolled_at)
             VALUES (1, '', '', '', X'', ?1, 0)
             ON CONFLICT (id) DO UPDATE SET gate = excluded.gate",
            [gate],
        )?;
        Ok(())
    }

    /// Entry rule of a session, `Single` when the session is unknown.
    pub fn entry_rule_of(sessions: &[(GateSession, bool)], id: u32) -> EntryRule {
        sessions
            .iter()
            .find(|(s, _)| s.id == id)
            .map_or(EntryRule::Single, |(s, _)| s.entry_rule)
    }
}

fn put_pinned(tx: &rusqlite::Transaction<'_>, statement: &SignedKeyring) -> Result<()> {
    let json = serde_json::to_string(statement).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let version = i64::try_from(statement.version)
        .map_err(|_| StoreError::Corrupt("keyring version out of range".into()))?;
    tx.execute(
        "INSERT INTO pinned_keyring (id, version, statement) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, statement = excluded.statement",
        params![version, json],
    )?;
    Ok(())
}

fn ticket_id(bytes: &[u8]) -> Result<TicketId> {
    let id: [u8; TICKET_ID_LEN] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("ticket id length".into()))?;
    Ok(TicketId(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use jo_shared::TicketSigner;
    use jo_shared::signing::KeyLookup;

    fn session(id: u32) -> GateSession {
        GateSession {
            id,
            sport: "Escrime".into(),
            title: format!("Session {id}"),
            venue: "Grand Palais".into(),
            starts_at: 1_785_000_000,
            ends_at: 1_785_007_200,
            doors_open_at: 1_784_996_400,
            entry_rule: EntryRule::Single,
        }
    }

    fn selected(store: &Store) -> Vec<u32> {
        store
            .sessions()
            .expect("sessions")
            .into_iter()
            .filter(|(_, sel)| *sel)
            .map(|(s, _)| s.id)
            .collect()
    }

    #[test]
    fn a_session_added_after_the_gate_is_set_up_starts_unselected() {
        let mut store = Store::in_memory().expect("store");
        // First sync, gate not set up: every session offered ticked.
        store
            .replace_sessions(&[session(1), session(2)])
            .expect("sessions");
        assert_eq!(selected(&store), [1, 2]);
        store.set_gate("Porte A").expect("gate");
        store.select_sessions(&[1]).expect("select");
        // A session added later (at another venue): not admitted here.
        store
            .replace_sessions(&[session(1), session(2), session(3)])
            .expect("sessions");
        assert_eq!(selected(&store), [1]);
    }

    #[test]
    fn the_pinned_statement_alone_decides_the_keyring() {
        let a = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let b = TicketSigner::new(SigningKey::from_bytes(&[2; 32]));
        let mut store = Store::in_memory().expect("store");
        store
            .replace_keyring(&[(a.key_id(), *a.verifying_key().as_bytes(), false)])
            .expect("keyring");
        assert!(store.pinned_keyring().expect("reads").is_none());
        assert!(matches!(
            store.keyring().expect("ring").lookup(a.key_id()),
            KeyLookup::Active(_)
        ));
        let mut ring = Keyring::new();
        ring.add(b.verifying_key()).expect("adds");
        let statement = SignedKeyring::sign(1, &ring, &[&b]);
        store.pin_keyring(&statement).expect("pins");
        assert_eq!(store.pinned_keyring().expect("reads"), Some(statement));
        let held = store.keyring().expect("ring");
        assert!(matches!(held.lookup(b.key_id()), KeyLookup::Active(_)));
        assert_eq!(held.lookup(a.key_id()), KeyLookup::Unknown);
    }

    #[test]
    fn a_store_from_before_signed_entries_forgets_its_unsigned_ones() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(MIGRATIONS[0]).expect("schema 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO remote_entries (ticket_id, session_id, device_id, gate, scanned_at)
             VALUES (?1, 1, 'dev-b', 'Porte B', 1785000000)",
            [&[7u8; TICKET_ID_LEN][..]],
        )
        .expect("entry");
        conn.execute(
            "INSERT INTO sync_state (key, value) VALUES ('entries_cursor', '42')",
            [],
        )
        .expect("cursor");
        let store = Store::init(conn).expect("migrates");
        assert!(store.known_entries().expect("entries").is_empty());
        assert_eq!(store.get_state("entries_cursor").expect("reads"), None);
        assert!(store.pinned_keyring().expect("reads").is_none());
        assert!(store.device_list().expect("reads").is_none());
    }
}
