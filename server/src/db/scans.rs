//! Scans and their conflicts: the one module that writes `scans` and
//! `scan_conflicts`. The scanners' uploads of scan batches with conflict
//! detection, the page of other gates' entries a device syncs, and the
//! console's view of entries and conflicts.
//!
//! An upload is checked by the handler first (shape, hash chain, device
//! signature); [`store_batch`] then stores it in one IMMEDIATE transaction:
//! every new record and every conflict it raises, or nothing.

use std::collections::{HashMap, HashSet};

use super::devices;
use super::sql::{Begin, Conn, Optional, Row, ToValue, Value, params};
use super::{Store, StoreResult, now, tickets};
use crate::units::status::ConflictKind;
use jo_shared::api::{RemoteEntry, ScanId, ScanRecord, ScanVerdict};
use jo_shared::signing::Keyring;
use jo_shared::ticket::{TICKET_ID_LEN, TicketId};

/// A record that passed the handler's checks, with its hash.
#[derive(Debug, Clone)]
pub struct CheckedRecord {
    /// The record as uploaded.
    pub record: ScanRecord,
    /// Its hash ([`ScanRecord::hash`]).
    pub hash: [u8; 32],
    /// Its `prev_hash`, decoded.
    pub prev_hash: [u8; 32],
}

/// Why an admission does not prove itself, or `None` when it does. It must
/// carry the signed text of the ticket it names (so a real ticket was
/// scanned): the text this server issued for that ticket, or, for a ticket
/// it never issued, a text that verifies with its keyring (flagged as
/// `unknown_ticket` besides). And it must carry its device's signature over
/// the admission, which the other gates check against the signed device list
/// before they refuse that ticket on its word (a signature that does not
/// verify only hurts the device's own entries, so the server checks its
/// shape, not the curve: one Ed25519 verification fewer per scan).
fn unproven(
    rec: &ScanRecord,
    ticket: &TicketId,
    session: u32,
    issued_text: Option<&str>,
    keyring: &Keyring,
) -> Option<String> {
    let Some(raw) = rec.raw.as_deref().map(str::trim) else {
        return Some("admission without the scanned ticket text".into());
    };
    match issued_text {
        Some(text) if text == raw => {}
        Some(_) => return Some("the scanned text is not the ticket the server issued".into()),
        None => match jo_shared::verify::authenticate(raw, keyring) {
            Err(why) => {
                return Some(format!(
                    "the scanned text is not a valid ticket ({})",
                    why.code()
                ));
            }
            Ok(t) if t.ticket_id != *ticket || t.session_id != session => {
                return Some(
                    "the scanned ticket is not the ticket or session the admission names".into(),
                );
            }
            Ok(_) => {}
        },
    }
    if rec.signature.is_none() {
        return Some("admission without its device's signature".into());
    }
    None
}

/// Limits that decide a late upload.
#[derive(Debug, Clone, Copy)]
pub struct LatePolicy {
    /// Device time older than this before arrival: late.
    pub late_upload_secs: i64,
    /// Device time ahead of the server by more than this: late (clock off).
    pub future_tolerance_secs: i64,
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadOutcome {
    /// Records stored now.
    pub stored: u32,
    /// Records already stored (a retried upload).
    pub duplicates: Vec<ScanId>,
    /// Conflicts recorded.
    pub conflicts: u32,
    /// Conflicts recorded, per kind (kinds with none left out).
    pub conflicts_by_kind: Vec<(ConflictKind, u32)>,
}

/// A page of other devices' entries.
#[derive(Debug, Clone)]
pub struct EntriesPage {
    /// Entries, oldest first.
    pub entries: Vec<RemoteEntry>,
    /// Cursor to ask from next.
    pub next_cursor: u64,
    /// Whether more entries may wait.
    pub more: bool,
}

/// Admitted entries of one session at one gate.
#[derive(Debug, Clone)]
pub struct GateEntries {
    /// Session id (0: none).
    pub session_id: i64,
    /// Gate.
    pub gate: String,
    /// Admitting scans.
    pub scans: i64,
    /// People admitted.
    pub people: i64,
}

/// Scans of one verdict and reason.
#[derive(Debug, Clone)]
pub struct ReasonCount {
    /// `refuse` or `used`.
    pub verdict: String,
    /// Reason code.
    pub reason: String,
    /// Scans.
    pub scans: i64,
}

/// One stored conflict.
#[derive(Debug, Clone)]
pub struct ConflictRow {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: ConflictKind,
    /// Scan id.
    pub scan_id: String,
    /// Device id.
    pub device_id: String,
    /// Ticket code, hex.
    pub ticket: Option<String>,
    /// Details.
    pub detail: String,
    /// Detected, Unix seconds.
    pub detected_at: i64,
}

/// Everything the scans view shows.
#[derive(Debug, Clone, Default)]
pub struct ScansView {
    /// Admitted entries per session and gate.
    pub entries: Vec<GateEntries>,
    /// People admitted per hour (Unix hours), oldest first.
    pub hours: Vec<(i64, i64)>,
    /// Non-admitting scans by verdict and reason.
    pub refused: Vec<ReasonCount>,
    /// Conflicts per kind.
    pub conflict_counts: Vec<(ConflictKind, i64)>,
    /// The latest conflicts (of the chosen kind, if any).
    pub conflicts: Vec<ConflictRow>,
    /// Scans uploaded more than an hour after they were made.
    pub late_scans: i64,
    /// Scans in all.
    pub total_scans: i64,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ticket_id_of(blob: Option<Vec<u8>>) -> Option<TicketId> {
    let b: [u8; TICKET_ID_LEN] = blob?.try_into().ok()?;
    Some(TicketId(b))
}

/// Up to `limit` proven admissions after `cursor`, without those of
/// `device_id` and of revoked devices (whose admissions stay stored for the
/// admins, but no gate should refuse a ticket on their word).
pub fn entries_page(
    conn: &Conn<'_>,
    device_id: &str,
    cursor: u64,
    limit: usize,
) -> StoreResult<EntriesPage> {
    // The cursor moves over every admission row read, so that filtered rows
    // are not read again; `more` tells whether the page was full.
    let mut entries = Vec::new();
    let mut seen = 0usize;
    let mut next_cursor = cursor;
    conn.for_each(
        "SELECT s.id, s.ticket_id, s.session_id, s.device_id, s.gate, s.scanned_at,
                s.scan_id, s.signature, d.revoked_at IS NOT NULL
         FROM scans s JOIN devices d ON d.id = s.device_id
         WHERE s.verdict = 'admit' AND s.proven = 1 AND s.id > ?1 ORDER BY s.id LIMIT ?2",
        params![to_i64(cursor), to_i64(limit as u64)],
        |r| {
            seen += 1;
            next_cursor = u64::try_from(r.get::<i64>(0)?).unwrap_or(next_cursor);
            let dev: String = r.get(3)?;
            // The device's own entries are in its own log already.
            if dev == device_id || r.get::<bool>(8)? {
                return Ok(());
            }
            let (Some(ticket_id), Some(session), Some(scan_id), Some(signature)) = (
                ticket_id_of(r.get(1)?),
                r.get::<Option<i64>>(2)?.and_then(|s| u32::try_from(s).ok()),
                ScanId::parse(&r.get::<String>(6)?),
                r.get::<Option<String>>(7)?,
            ) else {
                return Ok(());
            };
            entries.push(RemoteEntry {
                scan_id,
                ticket_id,
                session_id: session,
                device_id: dev,
                gate: r.get(4)?,
                scanned_at: r.get(5)?,
                signature,
            });
            Ok(())
        },
    )?;
    Ok(EntriesPage {
        entries,
        next_cursor,
        more: seen == limit,
    })
}

fn verdict_str(v: ScanVerdict) -> &'static str {
    match v {
        ScanVerdict::Admit => "admit",
        ScanVerdict::Refuse => "refuse",
        ScanVerdict::Used => "used",
    }
}

/// Rows of one multi-row statement: few enough that a statement binds at
/// most 16 × 64 parameters (both databases take far more), many enough that
/// PostgreSQL's per-statement rollup triggers run once per 64 scans.
const ROWS_PER_STATEMENT: usize = 64;

/// `?{from}, ?{from + 1}, …` for `n` parameters.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `sql_for(n)` once per chunk of `keys` with the chunk bound as its
/// `n` parameters, collecting every row through `f`: a lookup of a whole
/// batch in a few statements instead of one per record.
fn query_in<K: ToValue, T>(
    conn: &Conn<'_>,
    keys: &[K],
    sql_for: impl Fn(&str) -> String,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT * 8) {
        let sql = sql_for(&placeholders(1, chunk.len()));
        let refs: Vec<&dyn ToValue> = chunk.iter().map(|k| k as &dyn ToValue).collect();
        conn.for_each(&sql, &refs, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
    }
    Ok(out)
}

/// A conflict found while a batch is stored, written after its scans.
struct Found {
    kind: ConflictKind,
    scan_id: ScanId,
    ticket: Option<TicketId>,
    detail: String,
}

/// What [`store_batch`] reads of the store once per batch, for every record.
#[derive(Default)]
struct BatchContext {
    /// Device and hash of scan ids already stored (this batch's included,
    /// as they are stored).
    stored: HashMap<String, (String, Vec<u8>)>,
    /// The ticket rows the batch's admissions name.
    issued: HashMap<[u8; TICKET_ID_LEN], IssuedTicket>,
    /// Revocations of those tickets: list version and time.
    revoked: HashMap<[u8; TICKET_ID_LEN], (i64, i64)>,
    /// Proven admissions of those tickets, oldest first (this batch's
    /// included, as they are stored), with their row ids.
    admitted: HashMap<[u8; TICKET_ID_LEN], Vec<(i64, Admitted)>>,
    /// Entries allowed per session.
    allowed: HashMap<u32, i64>,
}

/// A proven admission of a ticket, as a double admission's detail names it.
struct Admitted {
    device: String,
    scan_id: String,
    gate: String,
    at: i64,
}

fn blob_key(blob: Vec<u8>) -> StoreResult<[u8; TICKET_ID_LEN]> {
    <[u8; TICKET_ID_LEN]>::try_from(blob.as_slice())
        .map_err(|_| super::StoreError::Task("a stored ticket id has the wrong length".into()))
}

impl BatchContext {
    fn read(conn: &Conn<'_>, records: &[CheckedRecord]) -> StoreResult<Self> {
        let mut ctx = Self::default();
        let ids: Vec<&str> = records.iter().map(|c| c.record.scan_id.as_str()).collect();
        for (id, dev, hash) in query_in(
            conn,
            &ids,
            |p| format!("SELECT scan_id, device_id, hash FROM scans WHERE scan_id IN ({p})"),
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<Vec<u8>>(2)?,
                ))
            },
        )? {
            ctx.stored.insert(id, (dev, hash));
        }
        let mut tickets: Vec<[u8; TICKET_ID_LEN]> = records
            .iter()
            .filter(|c| c.record.verdict == ScanVerdict::Admit)
            .filter_map(|c| c.record.ticket_id.map(|t| t.0))
            .collect();
        tickets.sort_unstable();
        tickets.dedup();
        let blobs: Vec<&[u8]> = tickets.iter().map(|t| &t[..]).collect();
        for (id, t) in query_in(
            conn,
            &blobs,
            |p| format!("SELECT ticket_id, qr, session_id FROM tickets WHERE ticket_id IN ({p})"),
            |r| {
                Ok((
                    r.get::<Vec<u8>>(0)?,
                    IssuedTicket {
                        qr: r.get(1)?,
                        session_id: r.get(2)?,
                    },
                ))
            },
        )? {
            ctx.issued.insert(blob_key(id)?, t);
        }
        for (id, version, at) in query_in(
            conn,
            &blobs,
            |p| {
                format!(
                    "SELECT ticket_id, version, revoked_at FROM revocations WHERE ticket_id IN ({p})"
                )
            },
            |r| Ok((r.get::<Vec<u8>>(0)?, r.get(1)?, r.get(2)?)),
        )? {
            ctx.revoked.insert(blob_key(id)?, (version, at));
        }
        for (id, order, entry) in query_in(
            conn,
            &blobs,
            |p| {
                format!(
                    "SELECT ticket_id, id, device_id, scan_id, gate, scanned_at FROM scans
                     WHERE ticket_id IN ({p}) AND verdict = 'admit' AND proven = 1"
                )
            },
            |r| {
                Ok((
                    r.get::<Vec<u8>>(0)?,
                    r.get::<i64>(1)?,
                    Admitted {
                        device: r.get(2)?,
                        scan_id: r.get(3)?,
                        gate: r.get(4)?,
                        at: r.get(5)?,
                    },
                ))
            },
        )? {
            ctx.admitted
                .entry(blob_key(id)?)
                .or_default()
                .push((order, entry));
        }
        // Sorted here, not by the query: with ORDER BY id, PostgreSQL walks
        // every admission in id order (index `scans_admitted`) instead of
        // looking the batch's tickets up by `scans_by_ticket`.
        for v in ctx.admitted.values_mut() {
            v.sort_by_key(|(order, _)| *order);
        }
        Ok(ctx)
    }

    /// How many entries a ticket of `session` may make (single: 1).
    fn allowed_entries(&mut self, conn: &Conn<'_>, session: u32) -> StoreResult<i64> {
        if let Some(n) = self.allowed.get(&session) {
            return Ok(*n);
        }
        let n: i64 = conn
            .query_row(
                "SELECT CASE entry_rule WHEN 'multiple' THEN max_entries ELSE 1 END
                 FROM game_sessions WHERE id = ?1",
                params![i64::from(session)],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(1);
        self.allowed.insert(session, n);
        Ok(n)
    }
}

/// Writes the conflicts a batch raised, in the order they were found.
fn insert_conflicts(
    conn: &Conn<'_>,
    device_id: &str,
    found: &[Found],
    now: i64,
) -> StoreResult<()> {
    for chunk in found.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * 6 + 1, 6)))
            .collect();
        let sql = format!(
            "INSERT INTO scan_conflicts (kind, scan_id, device_id, ticket_id, detail, detected_at)
             VALUES {}",
            rows.join(", ")
        );
        let mut vals: Vec<Value<'_>> = Vec::with_capacity(chunk.len() * 6);
        for f in chunk {
            vals.extend([
                Value::Text(f.kind.as_str()),
                Value::Text(f.scan_id.as_str()),
                Value::Text(device_id),
                f.ticket.as_ref().map_or(Value::Null, |t| Value::Blob(&t.0)),
                Value::Text(&f.detail),
                Value::Int(now),
            ]);
        }
        let refs: Vec<&dyn ToValue> = vals.iter().map(|v| v as &dyn ToValue).collect();
        conn.execute(&sql, &refs)?;
    }
    Ok(())
}

/// Writes a batch's new scans, [`ROWS_PER_STATEMENT`] to a statement, in
/// the order of the device's log. `rows` pairs each with whether it is a
/// proven admission.
fn insert_scans(
    conn: &Conn<'_>,
    device_id: &str,
    rows: &[(&CheckedRecord, bool)],
    now: i64,
) -> StoreResult<()> {
    const COLUMNS: usize = 16;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
            .collect();
        let sql = format!(
            "INSERT INTO scans (scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id,
                                raw, verdict, reason, admits, gate, scanned_at, received_at,
                                signature, proven)
             VALUES {}",
            tuples.join(", ")
        );
        let mut vals: Vec<Value<'_>> = Vec::with_capacity(chunk.len() * COLUMNS);
        for (c, proven) in chunk {
            let rec = &c.record;
            vals.extend([
                Value::Text(rec.scan_id.as_str()),
                Value::Text(device_id),
                Value::Int(to_i64(rec.seq)),
                Value::Blob(&c.prev_hash),
                Value::Blob(&c.hash),
                rec.ticket_id
                    .as_ref()
                    .map_or(Value::Null, |t| Value::Blob(&t.0)),
                rec.session_id
                    .map_or(Value::Null, |s| Value::Int(i64::from(s))),
                rec.raw.to_value(),
                Value::Text(verdict_str(rec.verdict)),
                rec.reason.to_value(),
                Value::Int(i64::from(rec.admits)),
                Value::Text(&rec.gate),
                Value::Int(rec.scanned_at),
                Value::Int(now),
                rec.signature.to_value(),
                Value::Int(i64::from(*proven)),
            ]);
        }
        let refs: Vec<&dyn ToValue> = vals.iter().map(|v| v as &dyn ToValue).collect();
        conn.execute(&sql, &refs)?;
    }
    Ok(())
}

/// Whether an admission proves itself ([`unproven`]), before it is stored:
/// the reason when it does not.
fn admission_proof(
    rec: &ScanRecord,
    issued: Option<&IssuedTicket>,
    keyring: &Keyring,
) -> Option<String> {
    let (Some(ticket), Some(session)) = (&rec.ticket_id, rec.session_id) else {
        return Some("admission without its ticket and session".into());
    };
    if issued.is_some_and(|t| t.session_id != i64::from(session)) {
        return Some("the admission names another session than the ticket's".into());
    }
    unproven(rec, ticket, session, issued.map(|t| t.qr.as_str()), keyring)
}

/// What the store issued for a ticket: its signed text and its session.
struct IssuedTicket {
    qr: String,
    session_id: i64,
}

/// The conflicts an admission raises: unknown ticket, admitted after its
/// revocation, more entries than its session allows.
fn check_admission(
    conn: &Conn<'_>,
    ctx: &mut BatchContext,
    rec: &ScanRecord,
    ticket: &TicketId,
    found: &mut Vec<Found>,
) -> StoreResult<()> {
    let mut flag = |kind, detail: String| {
        found.push(Found {
            kind,
            scan_id: rec.scan_id.clone(),
            ticket: Some(*ticket),
            detail,
        });
    };
    let issued: Option<i64> = ctx.issued.get(&ticket.0).map(|t| t.session_id);
    if issued.is_none() {
        flag(
            ConflictKind::UnknownTicket,
            "admitted on a valid signature, but the server never issued this ticket".into(),
        );
    }
    if let Some(&(version, revoked_at)) = ctx.revoked.get(&ticket.0)
        && rec.scanned_at >= revoked_at
    {
        flag(
            ConflictKind::AdmittedAfterRevocation,
            format!(
                "admitted at {} (device time), revoked at {revoked_at} (list version {version})",
                rec.scanned_at
            ),
        );
    }
    let session = rec
        .session_id
        .or(issued.and_then(|s| u32::try_from(s).ok()));
    let allowed = match session {
        Some(s) => ctx.allowed_entries(conn, s)?,
        None => 1,
    };
    // Earlier proven admissions of the ticket, this batch's included: a
    // rogue device's unproven claims do not make a real entry a double one.
    let earlier: Vec<&Admitted> = ctx
        .admitted
        .get(&ticket.0)
        .map(|v| {
            v.iter()
                .map(|(_, e)| e)
                .filter(|e| e.scan_id != rec.scan_id.as_str())
                .collect()
        })
        .unwrap_or_default();
    if i64::try_from(earlier.len()).unwrap_or(i64::MAX) >= allowed {
        let others: Vec<String> = earlier
            .iter()
            .take(5)
            .map(|e| {
                format!(
                    "{} at gate {:?} at {} (scan {})",
                    e.device, e.gate, e.at, e.scan_id
                )
            })
            .collect();
        flag(
            ConflictKind::DoubleAdmit,
            format!(
                "entry {} of {allowed} allowed; also admitted by {}",
                earlier.len() + 1,
                others.join("; ")
            ),
        );
    }
    Ok(())
}

/// Where the first new record of a batch stands against what the device
/// uploaded before: `None` if it continues the stored chain, else the
/// conflict kind and detail.
fn chain_link(
    conn: &Conn<'_>,
    device_id: &str,
    first: &CheckedRecord,
) -> StoreResult<Option<(ConflictKind, String)>> {
    let seq = first.record.seq;
    if seq == 1 {
        return Ok((first.prev_hash != [0; 32]).then(|| {
            (
                ConflictKind::ChainBreak,
                "record 1 does not start from the zero hash".to_owned(),
            )
        }));
    }
    let hashes: Vec<Vec<u8>> = conn.query_map(
        "SELECT hash FROM scans WHERE device_id = ?1 AND seq = ?2",
        params![device_id, to_i64(seq - 1)],
        |r| r.get(0),
    )?;
    if hashes.is_empty() {
        let last: Option<i64> = conn.query_row(
            "SELECT max(seq) FROM scans WHERE device_id = ?1 AND seq < ?2",
            params![device_id, to_i64(seq)],
            |r| r.get(0),
        )?;
        let last = last.unwrap_or(0);
        return Ok(Some((
            ConflictKind::ChainGap,
            format!(
                "records {}..{} were never uploaded before record {seq}",
                last + 1,
                to_i64(seq) - 1
            ),
        )));
    }
    if hashes.iter().any(|h| h.as_slice() == first.prev_hash) {
        Ok(None)
    } else {
        Ok(Some((
            ConflictKind::ChainBreak,
            format!(
                "record {seq} does not follow the stored record {}: the log was altered or rewritten",
                seq - 1
            ),
        )))
    }
}

/// The one late-upload conflict of a batch's badly timed scans, named
/// after the `first` of them.
fn timing_conflict(first: &ScanRecord, detail: String) -> Found {
    Found {
        kind: ConflictKind::LateUpload,
        scan_id: first.scan_id.clone(),
        ticket: first.ticket_id,
        detail,
    }
}

/// Stores a checked batch of `device_id`'s log in one transaction and
/// records the conflicts it raises.
///
/// What the checks need is read for the whole batch at once and the rows
/// are written a chunk to a statement: on PostgreSQL every statement is a
/// round trip and fires the rollup triggers once, so one statement per
/// record made a 1,000-record batch cost thousands of both.
pub fn store_batch(
    conn: &Conn<'_>,
    device_id: &str,
    records: &[CheckedRecord],
    pending: u64,
    late: LatePolicy,
    keyring: &Keyring,
    now: i64,
) -> StoreResult<UploadOutcome> {
    let tx = conn.begin(Begin::Immediate)?;
    let mut out = UploadOutcome::default();
    let mut found: Vec<Found> = Vec::new();
    let mut ctx = BatchContext::read(&tx, records)?;
    let mut rows: Vec<(&CheckedRecord, bool)> = Vec::with_capacity(records.len());
    let mut late_scans: Vec<&CheckedRecord> = Vec::new();
    let mut future_scans: Vec<&CheckedRecord> = Vec::new();
    // Positions of this batch already used by other scans of the device:
    // its log forked (restored from a backup?). One range query per batch.
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        let ids: HashSet<&str> = records.iter().map(|c| c.record.scan_id.as_str()).collect();
        let taken: Vec<(String, i64)> = tx.query_map(
            "SELECT scan_id, seq FROM scans WHERE device_id = ?1 AND seq BETWEEN ?2 AND ?3",
            params![device_id, to_i64(first.record.seq), to_i64(last.record.seq)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((other, seq)) = taken.iter().find(|(id, _)| !ids.contains(id.as_str())) {
            let at = records
                .iter()
                .find(|c| to_i64(c.record.seq) == *seq)
                .unwrap_or(first);
            found.push(Found {
                kind: ConflictKind::ChainBreak,
                scan_id: at.record.scan_id.clone(),
                ticket: at.record.ticket_id,
                detail: format!(
                    "position {seq} already holds scan {other}: the device's log forked (restored from a backup?)"
                ),
            });
        }
    }
    for (i, c) in records.iter().enumerate() {
        let rec = &c.record;
        match ctx.stored.get(rec.scan_id.as_str()) {
            Some((dev, hash)) if dev == device_id && hash[..] == c.hash[..] => {
                out.duplicates.push(rec.scan_id.clone());
                continue;
            }
            Some((dev, _)) => {
                // A random v4 id repeated with other content: a rewritten log
                // or a forgery. The stored record stays; the clash is flagged.
                found.push(Found {
                    kind: ConflictKind::ChainBreak,
                    scan_id: rec.scan_id.clone(),
                    ticket: rec.ticket_id,
                    detail: format!(
                        "scan id already stored with different content (from device {dev}); record {} not stored",
                        rec.seq
                    ),
                });
                continue;
            }
            None => {}
        }
        // Inside a batch the handler checked the chain; the first record
        // links to what was uploaded before.
        if i == 0
            && let Some((kind, detail)) = chain_link(&tx, device_id, c)?
        {
            found.push(Found {
                kind,
                scan_id: rec.scan_id.clone(),
                ticket: rec.ticket_id,
                detail,
            });
        }
        let admission = rec.verdict == ScanVerdict::Admit;
        let unproven = match (&rec.ticket_id, admission) {
            (Some(t), true) => admission_proof(rec, ctx.issued.get(&t.0), keyring),
            (None, true) => admission_proof(rec, None, keyring),
            (_, false) => None,
        };
        let proven = admission && unproven.is_none();
        ctx.stored.insert(
            rec.scan_id.as_str().to_owned(),
            (device_id.to_owned(), c.hash.to_vec()),
        );
        rows.push((c, proven));
        out.stored += 1;
        if let Some(why) = unproven {
            found.push(Found {
                kind: ConflictKind::UnprovenAdmission,
                scan_id: rec.scan_id.clone(),
                ticket: rec.ticket_id,
                detail: format!("{why}; kept out of the entries other gates sync"),
            });
        }
        if admission && let Some(ticket) = &rec.ticket_id {
            check_admission(&tx, &mut ctx, rec, ticket, &mut found)?;
            if proven {
                // Not stored yet: after every stored row.
                ctx.admitted.entry(ticket.0).or_default().push((
                    i64::MAX,
                    Admitted {
                        device: device_id.to_owned(),
                        scan_id: rec.scan_id.as_str().to_owned(),
                        gate: rec.gate.clone(),
                        at: rec.scanned_at,
                    },
                ));
            }
        }
        if now.saturating_sub(rec.scanned_at) > late.late_upload_secs {
            late_scans.push(c);
        } else if rec.scanned_at.saturating_sub(now) > late.future_tolerance_secs {
            future_scans.push(c);
        }
    }
    insert_scans(&tx, device_id, &rows, now)?;
    // One conflict per batch for timing: a gate offline all day would
    // otherwise bury the admin console under one line per scan.
    let times = |v: &[&CheckedRecord]| v.iter().map(|c| c.record.scanned_at).collect::<Vec<_>>();
    if let (Some(first), Some(oldest)) = (late_scans.first(), times(&late_scans).into_iter().min())
    {
        found.push(timing_conflict(
            &first.record,
            format!(
                "{} scans uploaded more than {} s after they were made (oldest {} s before arrival)",
                late_scans.len(),
                late.late_upload_secs,
                now.saturating_sub(oldest)
            ),
        ));
    }
    if let (Some(first), Some(newest)) =
        (future_scans.first(), times(&future_scans).into_iter().max())
    {
        found.push(timing_conflict(
            &first.record,
            format!(
                "{} scans dated in the future (up to {} s ahead of the server): the device clock is off",
                future_scans.len(),
                newest.saturating_sub(now)
            ),
        ));
    }
    insert_conflicts(&tx, device_id, &found, now)?;
    out.conflicts = u32::try_from(found.len()).unwrap_or(u32::MAX);
    out.conflicts_by_kind = ConflictKind::ALL
        .iter()
        .filter_map(|&kind| {
            let n = found.iter().filter(|f| f.kind == kind).count();
            (n > 0).then(|| (kind, u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .collect();
    if let Some(last) = records.last() {
        let newest = records
            .iter()
            .map(|c| c.record.scanned_at)
            .max()
            .unwrap_or(now);
        devices::record_upload(
            &tx,
            device_id,
            devices::Upload {
                last_seq: to_i64(last.record.seq),
                last_hash: &last.hash,
                pending: to_i64(pending),
                gate: &last.record.gate,
                clock_skew_secs: newest.saturating_sub(now).max(0),
            },
            now,
        )?;
    }
    tx.commit()?;
    Ok(out)
}

/// The sync API's and the console's scan calls.
impl Store {
    /// A page of the admissions other devices uploaded after `cursor`.
    pub async fn entries_page(
        &self,
        device_id: String,
        cursor: u64,
        limit: usize,
    ) -> StoreResult<EntriesPage> {
        self.pool
            .read_blocking_sql(move |c| entries_page(c, &device_id, cursor, limit))
            .await
    }

    /// The newest scan's row id (0 with none): what a node's entries
    /// long-polls watch to learn of rows another node stored.
    pub async fn last_scan_id(&self) -> StoreResult<i64> {
        self.pool
            .read_sql(|c| {
                c.query_row("SELECT COALESCE(max(id), 0) FROM scans", params![], |r| {
                    r.get(0)
                })
            })
            .await
    }

    /// Stores a checked batch of a device's log (whole or not at all).
    pub async fn store_scan_batch(
        &self,
        device_id: String,
        records: Vec<CheckedRecord>,
        pending: u64,
        late: LatePolicy,
        keyring: Keyring,
    ) -> StoreResult<UploadOutcome> {
        self.pool
            .run_sql(move |c| store_batch(c, &device_id, &records, pending, late, &keyring, now()))
            .await
    }

    /// The scans view, for one session or all (`session` = `None`) and one
    /// gate or all, with the
    /// latest `conflict_limit` conflicts (of `kind`, when given).
    pub async fn admin_scans(
        &self,
        session: Option<i64>,
        gate: Option<String>,
        kind: Option<ConflictKind>,
        conflict_limit: i64,
    ) -> StoreResult<ScansView> {
        self.pool
            .read_blocking_sql(move |c| {
                // The rollup level that answers this filter (see migration 6).
                let (level, sid, g) = match (session, gate.as_deref()) {
                    (None, None) => (3, -1, ""),
                    (Some(s), None) => (1, s, ""),
                    (None, Some(g)) => (2, -1, g),
                    (Some(s), Some(g)) => (0, s, g),
                };
                // Level-0 rows (per session and gate), narrowed by the filter;
                // one fixed statement per filter so the primary key is used.
                // A parameter a statement does not filter on is still named
                // (`CAST(?1 AS BIGINT) = CAST(?1 AS BIGINT)`, typed for
                // PostgreSQL), as both statements take the same two. Gates
                // sort bytewise on both databases.
                let entries_sql = match (session.is_some(), gate.is_some()) {
                    (false, false) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND verdict = 'admit'
                           AND CAST(?1 AS BIGINT) = CAST(?1 AS BIGINT)
                           AND CAST(?2 AS TEXT) = CAST(?2 AS TEXT)
                         ORDER BY session_id, gate COLLATE \"binary\""
                    }
                    (true, false) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND session_id = ?1 AND verdict = 'admit'
                           AND CAST(?2 AS TEXT) = CAST(?2 AS TEXT)
                         ORDER BY session_id, gate COLLATE \"binary\""
                    }
                    (false, true) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND gate = ?2 AND verdict = 'admit'
                           AND CAST(?1 AS BIGINT) = CAST(?1 AS BIGINT)
                         ORDER BY session_id, gate COLLATE \"binary\""
                    }
                    (true, true) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND session_id = ?1 AND gate = ?2 AND verdict = 'admit'
                         ORDER BY session_id, gate COLLATE \"binary\""
                    }
                };
                let entries = c.query_map(entries_sql, params![sid, g], |r| {
                    Ok(GateEntries {
                        session_id: r.get(0)?,
                        gate: r.get(1)?,
                        scans: r.get(2)?,
                        people: r.get(3)?,
                    })
                })?;
                let hours = c.query_map(
                    "SELECT hour, people FROM scan_hours
                     WHERE level = ?1 AND session_id = ?2 AND gate = ?3 ORDER BY hour",
                    params![level, sid, g],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let refused = c.query_map(
                    "SELECT verdict, reason, scans FROM scan_totals
                     WHERE level = ?1 AND session_id = ?2 AND gate = ?3 AND verdict <> 'admit'
                     ORDER BY scans DESC",
                    params![level, sid, g],
                    |r| {
                        Ok(ReasonCount {
                            verdict: r.get(0)?,
                            reason: r.get(1)?,
                            scans: r.get(2)?,
                        })
                    },
                )?;
                let (total_scans, late_scans): (i64, i64) = c.query_row(
                    "SELECT coalesce(sum(scans), 0), coalesce(sum(late), 0) FROM scan_totals
                     WHERE level = ?1 AND session_id = ?2 AND gate = ?3",
                    params![level, sid, g],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let conflict_counts = c.query_map(
                    "SELECT kind, count(*) FROM scan_conflicts GROUP BY kind",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let conflicts_sql = if kind.is_some() {
                    "SELECT id, kind, scan_id, device_id, ticket_id, detail, detected_at
                     FROM scan_conflicts WHERE kind = ?1
                     ORDER BY detected_at DESC, id DESC LIMIT ?2"
                } else {
                    "SELECT id, kind, scan_id, device_id, ticket_id, detail, detected_at
                     FROM scan_conflicts WHERE CAST(?1 AS TEXT) IS NULL
                     ORDER BY detected_at DESC, id DESC LIMIT ?2"
                };
                let conflicts = c.query_map(conflicts_sql, params![kind, conflict_limit], |r| {
                    Ok(ConflictRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        scan_id: r.get(2)?,
                        device_id: r.get(3)?,
                        ticket: tickets::ticket_hex(r.get(4)?),
                        detail: r.get(5)?,
                        detected_at: r.get(6)?,
                    })
                })?;
                Ok(ScansView {
                    entries,
                    hours,
                    refused,
                    conflict_counts,
                    conflicts,
                    late_scans,
                    total_scans,
                })
            })
            .await
    }

    /// Gates that scanned something, for the scans view's filter (bytewise
    /// order on both databases).
    pub async fn admin_gates(&self) -> StoreResult<Vec<String>> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_map(
                    "SELECT gate FROM scan_totals WHERE level = 2
                     GROUP BY gate ORDER BY gate COLLATE \"binary\"",
                    params![],
                    |r| r.get(0),
                )
            })
            .await
    }

    /// Session titles by id (for the scans view's labels and filter).
    pub async fn admin_session_titles(&self) -> StoreResult<Vec<(i64, String)>> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_map(
                    "SELECT id, code || ' · ' || title FROM game_sessions ORDER BY starts_at, id",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }
}
