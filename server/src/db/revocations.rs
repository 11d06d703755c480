//! The revocation list: the one place that writes it, and so the one place
//! that tells a ticket's holder it was revoked (an outbox mail written in
//! the same transaction).
//!
//! Every revocation (refund, cancelled session, re-issue, fraud) goes through
//! [`super::tickets::revoke`], inside the caller's transaction, so that a ticket's status and
//! its entry in the signed list scanners sync can never disagree. Each row
//! keeps the hash-chain head after it ([`jo_shared::revocation`]), so the list
//! is resumed from its last row and signed without replaying it.

use super::outbox::{MailKind, Outgoing};
use super::sql::{Begin, Conn, Dialect, Optional, params};
use super::{Store, StoreError, StoreResult};
use jo_shared::revocation::{ListBuilder, RevocationEntry, RevocationReason};
use jo_shared::ticket::{TICKET_ID_LEN, TicketId};

/// The list's current version (0 when empty) and chain head.
pub fn state(conn: &Conn<'_>) -> StoreResult<(u64, [u8; 32])> {
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT version, head FROM revocations ORDER BY version DESC LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match last {
        Some((v, head)) => (
            u64::try_from(v).unwrap_or(0),
            head.try_into().unwrap_or([0; 32]),
        ),
        None => (0, [0; 32]),
    })
}

/// Appends `ticket_id` to the list. A ticket already on the list is a
/// no-op returning `None`; otherwise the new entry's version.
///
/// Only [`super::tickets`]' revocation calls this, in the same transaction
/// as the ticket's own status change. `notify` is false only when the
/// caller sends the holder a mail that already says the old code is gone
/// (a re-issue to the same account), so that they get one mail, not two.
pub(super) fn append(
    conn: &Conn<'_>,
    ticket_id: &TicketId,
    reason: RevocationReason,
    note: &str,
    now: i64,
    notify: bool,
) -> StoreResult<Option<u64>> {
    let listed: Option<i64> = conn
        .query_row(
            "SELECT version FROM revocations WHERE ticket_id = ?1",
            params![&ticket_id.0[..]],
            |r| r.get(0),
        )
        .optional()?;
    if listed.is_some() {
        return Ok(None);
    }
    let (version, head) = state(conn)?;
    let mut builder = ListBuilder::resume(version, head);
    let entry = builder.push(*ticket_id, reason, now);
    conn.execute(
        "INSERT INTO revocations (version, ticket_id, reason, revoked_at, head, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            i64::try_from(entry.version).unwrap_or(i64::MAX),
            &ticket_id.0[..],
            entry.reason,
            now,
            &builder.head()[..],
            note
        ],
    )?;
    if notify {
        notify_holder(conn, ticket_id, reason, now)?;
    }
    Ok(Some(entry.version))
}

/// Enqueues the mail telling the ticket's holder it was revoked, in the
/// revocation's transaction, so that every revocation (refund, re-issue,
/// transfer, fraud) mails its holder exactly once, from this one writer
/// (or, for a re-issue to the same account, in the new ticket's mail).
/// A cancelled session's holders are not mailed here: the cancellation
/// sends each buyer one mail for all their tickets of it.
fn notify_holder(
    conn: &Conn<'_>,
    ticket_id: &TicketId,
    reason: RevocationReason,
    now: i64,
) -> StoreResult<()> {
    if reason == RevocationReason::SessionCancelled {
        return Ok(());
    }
    #[allow(clippy::type_complexity)]
    let facts: Option<(String, String, String, i64, String, String)> = conn
        .query_row(
            "SELECT u.email, u.first_name, s.title, s.starts_at, t.holder, o.number
               FROM tickets t JOIN users u ON u.id = t.user_id
               JOIN game_sessions s ON s.id = t.session_id JOIN orders o ON o.id = t.order_id
              WHERE t.ticket_id = ?1",
            params![&ticket_id.0[..]],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    // A list entry without a stored ticket (the schema's own tests) has
    // nobody to tell.
    let Some((email, first_name, title, starts_at, holder, order_number)) = facts else {
        return Ok(());
    };
    let (subject, body) = crate::mail::ticket_revoked_mail(
        &crate::mail::RevokedTicket {
            first_name: &first_name,
            title: &title,
            starts_at,
            holder: &holder,
            order_number: &order_number,
        },
        reason,
    );
    super::outbox::enqueue(
        conn,
        &Outgoing::rendered(MailKind::TicketRevoked, email, "fr", subject, body),
        now,
    )?;
    Ok(())
}

/// The entries after `since`, in order, at most `limit` of them.
pub fn entries_since(
    conn: &Conn<'_>,
    since: u64,
    limit: usize,
) -> StoreResult<Vec<RevocationEntry>> {
    conn.query_map(
        "SELECT version, ticket_id, reason, revoked_at FROM revocations
         WHERE version > ?1 ORDER BY version LIMIT ?2",
        params![
            i64::try_from(since).unwrap_or(i64::MAX),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            let id: Vec<u8> = r.get(1)?;
            let mut tid = [0u8; TICKET_ID_LEN];
            if id.len() == TICKET_ID_LEN {
                tid.copy_from_slice(&id);
            }
            Ok(RevocationEntry {
                version: u64::try_from(r.get::<i64>(0)?).unwrap_or(0),
                ticket_id: TicketId(tid),
                reason: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        },
    )
}

/// The chain head after `version` (the zero head for version 0), to sign a
/// partial delta's end state.
pub fn head_at(conn: &Conn<'_>, version: u64) -> StoreResult<Option<[u8; 32]>> {
    if version == 0 {
        return Ok(Some([0; 32]));
    }
    let head: Option<Vec<u8>> = conn
        .query_row(
            "SELECT head FROM revocations WHERE version = ?1",
            params![i64::try_from(version).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(head.and_then(|h| h.try_into().ok()))
}

/// A page of the revocation list.
#[derive(Debug, Clone)]
pub struct RevocationPage {
    /// Entries after the asked version, in order.
    pub entries: Vec<RevocationEntry>,
    /// The version the page ends at (the asked version when empty).
    pub version: u64,
    /// The chain head at `version`.
    pub head: [u8; 32],
    /// The list's latest version.
    pub latest: u64,
}

/// Why a revocation page cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationPageError {
    /// The device holds a version the server does not have (the server was
    /// restored from an older backup, or the device is confused).
    Ahead {
        /// The server's version.
        latest: u64,
    },
}

/// Up to `limit` revocation entries after `since`, with the state they lead to.
pub fn revocation_page(
    conn: &Conn<'_>,
    since: u64,
    limit: usize,
) -> StoreResult<Result<RevocationPage, RevocationPageError>> {
    // One read transaction: the page and the head it ends at agree even if a
    // revocation is committed meanwhile.
    let tx = conn.begin(Begin::Deferred)?;
    if tx.dialect() == Dialect::Postgres {
        // PostgreSQL's default isolation reads each statement on a new
        // snapshot; SQLite's read transaction reads one.
        tx.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")?;
    }
    let (latest, latest_head) = state(&tx)?;
    if since > latest {
        return Ok(Err(RevocationPageError::Ahead { latest }));
    }
    let entries = entries_since(&tx, since, limit)?;
    let (version, head) = match entries.last() {
        None => (since, head_at(&tx, since)?),
        Some(e) if e.version == latest => (latest, Some(latest_head)),
        Some(e) => (e.version, head_at(&tx, e.version)?),
    };
    tx.commit()?;
    let head = head.ok_or_else(|| StoreError::Decode {
        column: 0,
        message: format!("no chain head at version {version}"),
    })?;
    Ok(Ok(RevocationPage {
        entries,
        version,
        head,
        latest,
    }))
}

/// Why each of user `user_id`'s revoked tickets was revoked: (ticket id
/// hex, reason), for "my tickets" to say it in words.
pub fn reasons_of_user(
    conn: &Conn<'_>,
    user_id: i64,
) -> StoreResult<Vec<(String, RevocationReason)>> {
    conn.query_map(
        "SELECT r.ticket_id, r.reason FROM revocations r
           JOIN tickets t ON t.ticket_id = r.ticket_id
          WHERE t.user_id = ?1",
        params![user_id],
        |r| {
            let id: Vec<u8> = r.get(0)?;
            let code: i64 = r.get(1)?;
            Ok((
                hex::encode(id),
                RevocationReason::from_code(u8::try_from(code).unwrap_or(0)),
            ))
        },
    )
}

impl Store {
    /// Why each of a buyer's revoked tickets was revoked (ticket id hex,
    /// reason).
    pub async fn revocation_reasons_of(
        &self,
        user_id: i64,
    ) -> StoreResult<Vec<(String, RevocationReason)>> {
        self.pool
            .read_blocking_sql(move |c| reasons_of_user(c, user_id))
            .await
    }

    /// A page of the revocation list after `since`.
    pub async fn revocation_page(
        &self,
        since: u64,
        limit: usize,
    ) -> StoreResult<Result<RevocationPage, RevocationPageError>> {
        self.pool
            .read_blocking_sql(move |c| revocation_page(c, since, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jo_shared::revocation::{RevocationDelta, RevocationList};
    use jo_shared::{Keyring, TicketSigner};

    #[test]
    fn revocations_form_a_list_the_shared_crate_accepts() {
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        crate::db::migrations::apply(&mut raw).expect("migrates");
        let c = Conn::Sqlite(&raw);
        let signer = TicketSigner::generate().expect("key");
        let mut keyring = Keyring::new();
        keyring.add(signer.verifying_key()).expect("adds");

        assert_eq!(state(&c).expect("reads").0, 0);
        for i in 0..5u8 {
            let v = append(
                &c,
                &TicketId([i; 10]),
                RevocationReason::Fraud,
                "",
                100,
                true,
            )
            .expect("revokes");
            assert_eq!(v, Some(u64::from(i) + 1));
        }
        assert_eq!(
            append(
                &c,
                &TicketId([2; 10]),
                RevocationReason::Refunded,
                "",
                101,
                true
            )
            .expect("runs"),
            None,
            "a ticket is listed once"
        );
        let (version, head) = state(&c).expect("reads");
        assert_eq!(version, 5);

        // A device with nothing, then a device at version 2, both catch up.
        for since in [0u64, 2] {
            let mut list = RevocationList::new();
            if since > 0 {
                let first = RevocationDelta {
                    from_version: 0,
                    entries: entries_since(&c, 0, since as usize).expect("reads"),
                    state: jo_shared::revocation::SignedListState::sign(
                        &signer,
                        since,
                        head_at(&c, since).expect("reads").expect("exists"),
                        100,
                    ),
                };
                list.apply(&first, &keyring).expect("applies");
            }
            let delta = RevocationDelta {
                from_version: since,
                entries: entries_since(&c, since, 1000).expect("reads"),
                state: jo_shared::revocation::SignedListState::sign(&signer, version, head, 100),
            };
            list.apply(&delta, &keyring).expect("applies");
            assert_eq!(list.len(), 5);
            assert_eq!(
                list.lookup(&TicketId([3; 10])),
                Some(RevocationReason::Fraud)
            );
        }
    }
}
