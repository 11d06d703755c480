//! Outgoing mail: SMTP (lettre, rustls) when a relay is configured; otherwise
//! each message is written as an `.eml` file to the outbox directory, so a
//! fresh install works with no mail server.
//!
//! Mail is sent in the background: a slow relay must neither slow a page nor
//! let response times reveal whether an address has an account. Every mail
//! is first a row of the database's outbox ([`crate::db::outbox`]), written
//! with what triggers it; [`run_outbox`], started on every node, sends the
//! rows (see there for what is guaranteed).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};
use crate::db::outbox::{Claimed, MailKind, Retry};
use crate::i18n::Lang;
use crate::state::AppState;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

/// Sends mail.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// A message to send.
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// A file attached to a mail (e.g. the PDF tickets of an order).
pub struct Attachment {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
}

impl Mailer {
    /// The mailer the configuration asks for (creating the outbox if needed).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let from: Mailbox = config.mail_from.parse().with_context(|| {
            format!("JO_MAIL_FROM {:?} is not a mail address", config.mail_from)
        })?;
        let transport = match &config.smtp {
            Some(s) => {
                let mut b = match s.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                            .context("SMTP STARTTLS settings")?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                        .context("SMTP TLS settings")?,
                };
                b = b.port(s.port).timeout(Some(Duration::from_secs(15)));
                if let (Some(user), Some(pass)) = (&s.username, &s.password) {
                    b = b.credentials(Credentials::new(user.clone(), pass.expose().to_owned()));
                }
                tracing::info!(host = %s.host, port = s.port, tls = ?s.tls, "mail goes to the SMTP relay");
                Transport::Smtp(b.build())
            }
            None => {
                let dir = config.outbox_dir();
                // Private: messages hold single-use links.
                crate::startup::create_private_dir(&dir)?;
                tracing::info!(outbox = %dir.display(), "no SMTP relay configured: mail is written to the outbox");
                Transport::Outbox {
                    transport: AsyncFileTransport::<Tokio1Executor>::new(&dir),
                    dir,
                }
            }
        };
        Ok(Self { transport, from })
    }

    /// Sends one message now. The body is never logged (it holds links with tokens).
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let to: Mailbox = mail.to.parse().context("recipient address")?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .context("building the message")?;
        self.deliver(message).await
    }

    /// Sends one message with attachments now (multipart/mixed: the text,
    /// then each file).
    pub async fn send_with_attachments(
        &self,
        mail: Mail,
        attachments: Vec<Attachment>,
    ) -> anyhow::Result<()> {
        use lettre::message::{MultiPart, SinglePart};
        let to: Mailbox = mail.to.parse().context("recipient address")?;
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(mail.body));
        for a in attachments {
            let ct = ContentType::parse(a.content_type).context("attachment content type")?;
            parts =
                parts.singlepart(lettre::message::Attachment::new(a.filename).body(a.bytes, ct));
        }
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(parts)
            .context("building the message")?;
        self.deliver(message).await
    }

    async fn deliver(&self, message: Message) -> anyhow::Result<()> {
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(message).await.context("SMTP delivery")?;
                tracing::info!("mail handed to the SMTP relay");
            }
            Transport::Outbox { transport, dir } => {
                let id = transport
                    .send(message)
                    .await
                    .context("writing to the outbox")?;
                tracing::info!(file = %dir.join(format!("{id}.eml")).display(), "mail written to the outbox");
            }
        }
        Ok(())
    }
}

/// What the holder of a revoked ticket is told about it.
pub struct RevokedTicket<'a> {
    /// The account holder's first name.
    pub first_name: &'a str,
    /// The session's title.
    pub title: &'a str,
    /// The session's start (seconds since the epoch).
    pub starts_at: i64,
    /// The name on the ticket.
    pub holder: &'a str,
    /// The order's number.
    pub order_number: &'a str,
}

/// The mail telling a ticket's holder that it was revoked, why, and what
/// happens next, in French then English (the holder's language is not
/// stored), for `reason` (never a cancelled session: that has its own mail).
pub fn ticket_revoked_mail(
    t: &RevokedTicket<'_>,
    reason: jo_shared::revocation::RevocationReason,
) -> (String, String) {
    use jo_shared::revocation::RevocationReason as R;
    let next = match reason {
        R::Refunded => "mail.revoked_next_refunded",
        R::Reissued => "mail.revoked_next_reissued",
        R::Transferred => "mail.revoked_next_transferred",
        R::SessionCancelled | R::Fraud | R::Other => "mail.revoked_next_other",
    };
    let text = |lang: Lang| {
        format!(
            "{} {},\n\n{}\n« {} », {}\n{} : {} · {} {}\n\n{}\n{}\n\n{}",
            lang.t("mail.tickets_hello"),
            t.first_name,
            lang.t("mail.revoked_intro"),
            t.title,
            crate::shop::when(t.starts_at, lang),
            lang.t("tickets.holder"),
            t.holder,
            lang.t("tickets.order"),
            t.order_number,
            lang.t(crate::web::shop::tickets::reason_key(reason)),
            lang.t(next),
            lang.t("mail.footer"),
        )
    };
    (
        format!(
            "{} / {}",
            Lang::Fr.t("mail.revoked_subject"),
            Lang::En.t("mail.revoked_subject")
        ),
        format!("{}\n\n— — —\n\n{}\n", text(Lang::Fr), text(Lang::En)),
    )
}

/// How long a claimed outbox row is leased to this node. Longer than any
/// send may take ([`SEND_TIMEOUT`]): until it runs out, no other node sends
/// the row.
const LEASE_SECS: i64 = 30;

/// The longest a send (rendering included) may take before it counts as
/// failed: within the lease, so that a slow relay cannot make two nodes
/// send the same row.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Rows in flight at most (claimed, then sent concurrently over the
/// mailer's pool of connections): enough that a rush's confirmations go
/// out as fast as they are paid (8 fell 16 s behind 32 buyers checking out
/// on 2 cores).
const BATCH: usize = 32;

/// How often the outbox is looked at when nothing woke the drainer: rows
/// written by other nodes, retries that came due.
const POLL: Duration = Duration::from_secs(1);

/// Sends the outbox's mail, forever (every node runs one; the server aborts
/// it when it stops).
///
/// Each row is claimed with a lease, sent, and marked sent right after the
/// relay accepted it, so it is sent once as far as SMTP allows. A node that
/// dies between the relay's acceptance and the mark leaves the row leased:
/// once the lease ends, another node (or this one restarted) sends it again,
/// the one case of a mail received twice. A failed send is retried with
/// exponential backoff, and given up after
/// [`crate::db::outbox::MAX_ATTEMPTS`] with an error logged. Logs name the
/// row and its kind, never the body (it may hold a single-use link).
pub async fn run_outbox(state: AppState) {
    // Up to BATCH sends in flight, topped up whenever half of them are
    // done: the relay is kept busy without waiting for the slowest send of
    // a batch before claiming the next (measured on 2 cores under a rush:
    // batch after batch, a claim and then the slowest of 32 sends took
    // ~100 ms, ~320 mails/s, behind the checkouts being paid).
    let mut sends = tokio::task::JoinSet::new();
    loop {
        let room = BATCH - sends.len();
        // Whether every due row is claimed (or the outbox could not be read).
        let mut drained = false;
        if sends.len() <= BATCH / 2 {
            match state.store.claim_mail(LEASE_SECS, room).await {
                Ok(rows) => {
                    drained = rows.len() < room;
                    for row in rows {
                        let state = state.clone();
                        sends.spawn(async move { deliver_row(&state, row).await });
                    }
                }
                Err(e) => {
                    drained = true;
                    if e.is_unavailable() {
                        // The database is away: `/readyz` says so; once a poll.
                        tracing::debug!(error = %e, "outbox not drained: database unavailable");
                    } else {
                        tracing::warn!(error = %e, "outbox not drained");
                    }
                }
            }
        }
        if sends.is_empty() {
            // Nothing due, nothing in flight: until new mail or the next poll.
            tokio::select! {
                () = state.store.outbox_woken() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        } else if drained {
            // New mail may come before these are sent: claim it then.
            tokio::select! {
                _ = sends.join_next() => {}
                () = state.store.outbox_woken() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        } else {
            sends.join_next().await;
        }
    }
}

/// Sends one claimed row and records the outcome.
async fn deliver_row(state: &AppState, row: Claimed) {
    let (id, kind, attempts) = (row.id, row.kind, row.attempts);
    let sent = match tokio::time::timeout(SEND_TIMEOUT, send_row(state, row)).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("timed out after {SEND_TIMEOUT:?}")),
    };
    match sent {
        Ok(()) => {
            if let Err(e) = state.store.mail_sent(id).await {
                // The relay has it; the row stays leased and is sent again
                // when the lease runs out (the at-least-once case).
                tracing::warn!(outbox_id = id, error = %e, "mail sent but not marked sent");
            }
        }
        Err(e) => {
            let error = format!("{e:#}");
            match state.store.mail_failed(id, attempts, error.clone()).await {
                Ok(Retry::At(at)) => tracing::warn!(
                    outbox_id = id,
                    kind = ?kind,
                    attempts,
                    retry_in_secs = at - crate::units::time::now(),
                    error = %error,
                    "mail not sent; will retry"
                ),
                Ok(Retry::GivenUp) => tracing::error!(
                    outbox_id = id,
                    kind = ?kind,
                    attempts,
                    error = %error,
                    "mail given up after its last attempt"
                ),
                Err(db) => tracing::warn!(
                    outbox_id = id,
                    error = %db,
                    "mail not sent, and its failure not recorded (retried when its lease ends)"
                ),
            }
        }
    }
}

/// Renders (for an order's confirmation) and sends one row.
async fn send_row(state: &AppState, row: Claimed) -> anyhow::Result<()> {
    let lang = Lang::from_code(&row.lang).unwrap_or_default();
    match (row.kind, row.order_id) {
        (MailKind::OrderTickets, Some(order_id)) => {
            let (mail, attachments) =
                crate::web::shop::tickets::confirmation_mail(state, order_id, row.to, lang).await?;
            state.mailer.send_with_attachments(mail, attachments).await
        }
        (MailKind::OrderTickets, None) => Err(anyhow::anyhow!("confirmation without an order")),
        (
            MailKind::Account
            | MailKind::SessionCancelled
            | MailKind::TicketRevoked
            | MailKind::Transfer
            | MailKind::TicketReissued,
            _,
        ) => {
            state
                .mailer
                .send(Mail {
                    to: row.to,
                    subject: row.subject,
                    body: row.body,
                })
                .await
        }
    }
}
