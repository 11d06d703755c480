//! Outgoing mail: SMTP (lettre, rustls) when a relay is configured; otherwise
//! each message is written as an `.eml` file to the outbox directory, so a
//! fresh install works with no mail server.
//!
//! Mail is sent in the background: a slow relay must neither slow a page nor
//! let response times reveal whether an address has an account.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};

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
