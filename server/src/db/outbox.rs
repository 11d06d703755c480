//! The mail outbox (`mail_outbox`): every mail the server sends is first a
//! row here, written in the same transaction as what triggers it, so that a
//! node dying right after a commit cannot lose the mail: any node's drainer
//! ([`crate::mail::run_outbox`]) sends it.
//!
//! What a row holds: the recipient, the kind, and either the rendered mail
//! (account links, cancellation notices: a few hundred bytes) or, for an
//! order's confirmation, a reference (the order and the buyer's language):
//! its PDF is rendered when the mail is sent, from the tickets stored with
//! the order. Storing the PDF (tens of kilobytes a ticket) would write it
//! twice inside the payment's write lock, for a file the tickets already
//! define.
//!
//! Delivery: a drainer claims due rows with a lease (`locked_until`),
//! sends each, and marks it sent right after the relay accepts it. A row
//! whose sending failed is retried with exponential backoff
//! ([`retry_delay`]), and given up after [`MAX_ATTEMPTS`]. So a row is sent
//! at most once as far as SMTP allows, with one exception: a node that dies
//! (or loses the database) between the relay's acceptance and the mark
//! leaves the row leased, and once the lease runs out another node sends it
//! again. Rows are claimed so that two drainers never hold the same row:
//! PostgreSQL skips the rows another node has locked (`FOR UPDATE SKIP
//! LOCKED`), SQLite claims in an IMMEDIATE transaction (one writer at a
//! time).
//!
//! The body of a row is erased once the row is done with (sent or given
//! up): it may hold a single-use link, which must not outlive its use.

use super::sql::{Begin, Conn, Dialect, Optional, Row, Tx, params};
use super::{Store, StoreResult, now, relaxed_write_sql};

/// Attempts after which a mail is given up (about two hours of retries).
pub const MAX_ATTEMPTS: i64 = 20;

/// The wait after the first failed attempt; each further failure doubles it.
const FIRST_RETRY_SECS: i64 = 2;

/// The longest wait between two attempts.
const MAX_RETRY_SECS: i64 = 600;

/// The longest kept error message of a failed attempt.
const ERROR_CHARS: usize = 300;

/// What a mail is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// An account mail: address verification, password reset, "you already
    /// have an account".
    Account,
    /// An order's confirmation with its tickets (rendered when sent).
    OrderTickets,
    /// A session was cancelled: its ticket holders are told.
    SessionCancelled,
    /// A ticket was revoked (refunded, re-issued, cancelled by the
    /// organiser): its holder is told why and what happens next. Written by
    /// [`super::revocations`] with the revocation; not for a cancelled
    /// session, whose holders get [`MailKind::SessionCancelled`].
    TicketRevoked,
    /// A ticket transfer: the offer to its recipient (with its single-use
    /// link), or its outcome to the sender.
    Transfer,
    /// A re-issued ticket, to its new holder.
    TicketReissued,
}

impl MailKind {
    fn as_str(self) -> &'static str {
        match self {
            MailKind::Account => "account",
            MailKind::OrderTickets => "order_tickets",
            MailKind::SessionCancelled => "session_cancelled",
            MailKind::TicketRevoked => "ticket_revoked",
            MailKind::Transfer => "transfer",
            MailKind::TicketReissued => "ticket_reissued",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "account" => Ok(MailKind::Account),
            "order_tickets" => Ok(MailKind::OrderTickets),
            "session_cancelled" => Ok(MailKind::SessionCancelled),
            "ticket_revoked" => Ok(MailKind::TicketRevoked),
            "transfer" => Ok(MailKind::Transfer),
            "ticket_reissued" => Ok(MailKind::TicketReissued),
            other => Err(super::StoreError::Task(format!(
                "unknown mail kind {other:?} in the outbox"
            ))),
        }
    }
}

/// A mail to enqueue.
#[derive(Clone, Debug)]
pub struct Outgoing {
    kind: MailKind,
    to: String,
    lang: &'static str,
    subject: String,
    body: String,
    order_id: Option<i64>,
}

impl Outgoing {
    /// A mail rendered now. `lang` is a language code (`fr`, `en`). Not
    /// for an order's confirmation ([`enqueue_order_tickets`]: a reference
    /// to the order), which the table refuses without its order.
    pub fn rendered(
        kind: MailKind,
        to: String,
        lang: &'static str,
        subject: String,
        body: String,
    ) -> Self {
        Self {
            kind,
            to,
            lang,
            subject,
            body,
            order_id: None,
        }
    }
}

/// A claimed row, to send now.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The row.
    pub id: i64,
    /// What it is.
    pub kind: MailKind,
    /// Recipient address.
    pub to: String,
    /// Language code of the mail (`fr`, `en`).
    pub lang: String,
    /// Subject (empty for an order's confirmation: rendered when sent).
    pub subject: String,
    /// Body (empty for an order's confirmation).
    pub body: String,
    /// The order of a confirmation.
    pub order_id: Option<i64>,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Tried again at this time (seconds since the epoch).
    At(i64),
    /// Given up: too many attempts.
    GivenUp,
}

/// The wait after failed attempt number `attempts` (1-based): 2 s, 4 s,
/// 8 s… up to 10 minutes.
pub fn retry_delay(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_SECS)
}

/// Enqueues `mail`, due now, inside the caller's transaction. Returns the
/// row's id.
pub fn enqueue(c: &Conn<'_>, mail: &Outgoing, now: i64) -> StoreResult<i64> {
    c.query_row(
        "INSERT INTO mail_outbox (kind, recipient, lang, subject, body, order_id, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
        params![
            mail.kind.as_str(),
            mail.to,
            mail.lang,
            mail.subject,
            mail.body,
            mail.order_id,
            now
        ],
        |r| r.get(0),
    )
}

/// Enqueues the confirmation of the order that payment `payment_id` paid,
/// to its buyer, in language `lang`, inside the payment's transaction.
pub fn enqueue_order_tickets(
    c: &Conn<'_>,
    payment_id: i64,
    lang: &'static str,
    now: i64,
) -> StoreResult<()> {
    // The parameters of a SELECT list have no column type to take on
    // PostgreSQL: the times are cast (the others are text).
    let n = c.execute(
        "INSERT INTO mail_outbox (kind, recipient, lang, subject, body, order_id, created_at, next_attempt_at)
         SELECT ?2, u.email, ?3, '', '', o.id, CAST(?4 AS BIGINT), CAST(?4 AS BIGINT)
           FROM payments p JOIN orders o ON o.id = p.order_id JOIN users u ON u.id = o.user_id
          WHERE p.id = ?1",
        params![payment_id, MailKind::OrderTickets.as_str(), lang, now],
    )?;
    if n == 1 {
        Ok(())
    } else {
        Err(super::StoreError::NoRows)
    }
}

/// A write transaction for the drainer's own statements. SQLite: IMMEDIATE
/// (its one writer is what keeps two claims apart). PostgreSQL: a plain
/// transaction, without the store's [`super::sql::WRITE_LOCK`]: the rows'
/// own locks keep two claims apart, and the drainer must not queue behind
/// payments on every node.
fn drainer_tx<'c>(c: &Conn<'c>) -> StoreResult<Tx<'c>> {
    match c.dialect() {
        Dialect::Sqlite => c.begin(Begin::Immediate),
        Dialect::Postgres => c.begin(Begin::Deferred),
    }
}

fn claimed_from_row(r: &Row<'_>) -> StoreResult<Claimed> {
    Ok(Claimed {
        id: r.get(0)?,
        kind: MailKind::parse(&r.get::<String>(1)?)?,
        to: r.get(2)?,
        lang: r.get(3)?,
        subject: r.get(4)?,
        body: r.get(5)?,
        order_id: r.get(6)?,
        attempts: r.get(7)?,
    })
}

/// Claims up to `limit` due rows for `lease_secs`, counting an attempt for
/// each. A row stays claimed until marked ([`mark_sent`], [`mark_failed`])
/// or until its lease runs out (its node died): then any drainer may claim
/// it again.
pub fn claim(c: &Conn<'_>, now: i64, lease_secs: i64, limit: usize) -> StoreResult<Vec<Claimed>> {
    // The one difference between the dialects: PostgreSQL locks the rows
    // picked, skipping those a concurrent claim holds; SQLite needs no row
    // lock (its claims are one at a time).
    let lock = match c.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE mail_outbox SET locked_until = ?2, attempts = attempts + 1
          WHERE id IN (SELECT id FROM mail_outbox
                        WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
                          AND (locked_until IS NULL OR locked_until <= ?1)
                        ORDER BY next_attempt_at, id LIMIT ?3 {lock})
          RETURNING id, kind, recipient, lang, subject, body, order_id, attempts"
    );
    let tx = drainer_tx(c)?;
    let mut rows = tx.query_map(
        &sql,
        params![now, now.saturating_add(lease_secs), limit],
        claimed_from_row,
    )?;
    tx.commit()?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Marks a row sent (right after the relay accepted it), erasing its body.
pub fn mark_sent(c: &Conn<'_>, id: i64, now: i64) -> StoreResult<()> {
    let tx = drainer_tx(c)?;
    tx.execute(
        "UPDATE mail_outbox SET sent_at = ?2, locked_until = NULL, body = ''
          WHERE id = ?1 AND sent_at IS NULL",
        params![id, now],
    )?;
    tx.commit()
}

/// Records a failed attempt (number `attempts`): the row is due again
/// after [`retry_delay`], or given up after [`MAX_ATTEMPTS`] (its body
/// erased). `error` is what failed, never the mail's content.
pub fn mark_failed(
    c: &Conn<'_>,
    id: i64,
    attempts: i64,
    error: &str,
    now: i64,
) -> StoreResult<Retry> {
    let error: String = error.chars().take(ERROR_CHARS).collect();
    let tx = drainer_tx(c)?;
    let retry = if attempts >= MAX_ATTEMPTS {
        tx.execute(
            "UPDATE mail_outbox SET failed_at = ?2, locked_until = NULL, body = '', last_error = ?3
              WHERE id = ?1 AND sent_at IS NULL",
            params![id, now, error],
        )?;
        Retry::GivenUp
    } else {
        let at = now.saturating_add(retry_delay(attempts));
        tx.execute(
            "UPDATE mail_outbox SET next_attempt_at = ?2, locked_until = NULL, last_error = ?3
              WHERE id = ?1 AND sent_at IS NULL",
            params![id, at, error],
        )?;
        Retry::At(at)
    };
    tx.commit()?;
    Ok(retry)
}

/// Rows still to send (neither sent nor given up).
pub fn pending(c: &Conn<'_>) -> StoreResult<i64> {
    c.query_row(
        "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        params![],
        |r| r.get(0),
    )
}

/// What an order's confirmation is rendered from.
#[derive(Clone, Debug)]
pub struct OrderMailFacts {
    /// Order number.
    pub number: String,
    /// The buyer.
    pub user_id: i64,
    /// The buyer's first name.
    pub first_name: String,
}

fn order_mail_facts(c: &Conn<'_>, order_id: i64) -> StoreResult<Option<OrderMailFacts>> {
    c.query_row(
        "SELECT o.number, o.user_id, u.first_name FROM orders o JOIN users u ON u.id = o.user_id
          WHERE o.id = ?1",
        params![order_id],
        |r| {
            Ok(OrderMailFacts {
                number: r.get(0)?,
                user_id: r.get(1)?,
                first_name: r.get(2)?,
            })
        },
    )
    .optional()
}

impl Store {
    /// Mails waiting to be sent (neither sent nor given up): the outbox's
    /// depth, across every node.
    pub async fn outbox_depth(&self) -> StoreResult<i64> {
        self.pool.read_sql(pending).await
    }

    /// Enqueues one mail on its own (one not tied to another write), then
    /// wakes this node's drainer.
    pub async fn enqueue_mail(&self, mail: Outgoing) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| enqueue(c, &mail, now()).map(|_| ()))
            .await?;
        self.wake_outbox();
        Ok(())
    }

    /// Claims due mails for this node's drainer (see [`claim`]).
    ///
    /// The drainer's own writes (claim, sent, failed) do not wait for the
    /// disk ([`relaxed_write_sql`]): on SQLite each durable commit holds the
    /// one writer for an fsync, which the payments queue behind. What a
    /// crash of the machine can lose of them is safe: a lost claim is
    /// claimed again, a lost failure retried sooner, a lost "sent" is the
    /// documented at-least-once case (the mail goes again). The row itself
    /// was written durably, with what triggered it.
    pub async fn claim_mail(&self, lease_secs: i64, limit: usize) -> StoreResult<Vec<Claimed>> {
        self.pool
            .run_sql(move |c| relaxed_write_sql(c, |c| claim(c, now(), lease_secs, limit)))
            .await
    }

    /// Marks a claimed mail sent (relaxed: see [`Store::claim_mail`]).
    pub async fn mail_sent(&self, id: i64) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| relaxed_write_sql(c, |c| mark_sent(c, id, now())))
            .await
    }

    /// Records a failed attempt at a claimed mail (see [`mark_failed`];
    /// relaxed: see [`Store::claim_mail`]).
    pub async fn mail_failed(&self, id: i64, attempts: i64, error: String) -> StoreResult<Retry> {
        self.pool
            .run_sql(move |c| relaxed_write_sql(c, |c| mark_failed(c, id, attempts, &error, now())))
            .await
    }

    /// What an order's confirmation mail is rendered from; `None` if there
    /// is no such order.
    pub async fn order_mail_facts(&self, order_id: i64) -> StoreResult<Option<OrderMailFacts>> {
        self.pool
            .read_sql(move |c| order_mail_facts(c, order_id))
            .await
    }

    /// Tells this node's drainer that mail was just enqueued (the others
    /// find it on their next poll).
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    /// Completes when [`Store::wake_outbox`] is called (or was, since the
    /// last wait).
    pub async fn outbox_woken(&self) {
        self.outbox_wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(1), 2);
        assert_eq!(retry_delay(2), 4);
        assert_eq!(retry_delay(3), 8);
        assert_eq!(retry_delay(9), 512);
        assert_eq!(retry_delay(10), MAX_RETRY_SECS);
        assert_eq!(retry_delay(MAX_ATTEMPTS), MAX_RETRY_SECS);
        assert_eq!(retry_delay(i64::MAX), MAX_RETRY_SECS);
        assert_eq!(retry_delay(0), 2);
        assert_eq!(retry_delay(-5), 2);
    }

    #[test]
    fn a_claimed_row_is_not_claimed_again_until_its_lease_ends() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("opens");
        super::super::migrations::apply(&mut conn).expect("migrates");
        let c = Conn::Sqlite(&conn);
        let mail = Outgoing::rendered(
            MailKind::Account,
            "a@example.com".into(),
            "fr",
            "Sujet".into(),
            "Lien secret".into(),
        );
        let id = enqueue(&c, &mail, 100).expect("enqueues");
        assert_eq!(pending(&c).expect("counts"), 1);
        let first = claim(&c, 100, 30, 10).expect("claims");
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].id, first[0].attempts), (id, 1));
        assert!(claim(&c, 129, 30, 10).expect("claims").is_empty(), "leased");
        // The node died: once the lease ends, another drainer takes it.
        let again = claim(&c, 130, 30, 10).expect("claims");
        assert_eq!((again[0].id, again[0].attempts), (id, 2));
        assert_eq!(
            mark_failed(&c, id, 2, "SMTP delivery: refused", 131).expect("marks"),
            Retry::At(135)
        );
        assert!(
            claim(&c, 134, 30, 10).expect("claims").is_empty(),
            "backoff"
        );
        let third = claim(&c, 135, 30, 10).expect("claims");
        assert_eq!(third[0].body, "Lien secret");
        mark_sent(&c, id, 136).expect("marks");
        assert_eq!(pending(&c).expect("counts"), 0);
        assert!(claim(&c, 10_000, 30, 10).expect("claims").is_empty());
        let body: String = c
            .query_row(
                "SELECT body FROM mail_outbox WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .expect("reads");
        assert_eq!(body, "", "the link is erased once sent");
    }

    #[test]
    fn a_mail_is_given_up_after_its_last_attempt() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("opens");
        super::super::migrations::apply(&mut conn).expect("migrates");
        let c = Conn::Sqlite(&conn);
        let mail = Outgoing::rendered(
            MailKind::SessionCancelled,
            "b@example.com".into(),
            "en",
            "S".into(),
            "B".into(),
        );
        let id = enqueue(&c, &mail, 0).expect("enqueues");
        assert_eq!(
            mark_failed(&c, id, MAX_ATTEMPTS, "relay refused", 5).expect("marks"),
            Retry::GivenUp
        );
        assert_eq!(pending(&c).expect("counts"), 0);
        assert!(claim(&c, i64::MAX / 2, 30, 10).expect("claims").is_empty());
    }
}
