//! `jo-server demo`: a demonstration install for a five-minute tour.
//!
//! In a data directory with no accounts, orders or tickets, it prepares what
//! `jo-server serve --data DIR` then serves: the database with the fixtures,
//! the signing key, a session on today (doors open an hour ago), a buyer who
//! paid for a Solo, a Duo and a Famille ticket of it through the shop's own
//! checkout and payment path, one more Solo ticket revoked for fraud, each
//! ticket's QR code (PNG) and PDF under `DIR/demo/`, and a one-time scanner
//! enrolment code. [`Demo::instructions`] tells what to type next.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use jo_shared::doublekey::UserKey;
use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;

use crate::auth::password::PasswordHasher;
use crate::config::{Config, Secret};
use crate::db::Store;
use crate::db::audit::Actor;
use crate::db::catalogue::SessionInput;
use crate::db::orders::{CartOwner, CheckoutOutcome, PaymentResult, PaymentStart};
use crate::db::tickets::TicketView;
use crate::db::users::{NewUser, Role};
use crate::shop::payment::{
    CardDetails, CardForm, ChargeOutcome, ChargeRequest, PaymentGateway, SimulatedGateway,
};

/// Title of the demonstration session.
pub const SESSION_TITLE: &str = "Démonstration — séance du jour";
/// Programme code of the demonstration session.
pub const SESSION_CODE: &str = "DEMO";
/// E-mail address of the demonstration buyer.
pub const BUYER_EMAIL: &str = "visiteur.demo@example.com";
/// E-mail address of the demonstration admin (the actor of the demo's
/// console actions in the audit log).
pub const ADMIN_EMAIL: &str = "admin.demo@example.com";
/// Name of the holder printed on the demonstration tickets.
pub const HOLDER: &str = "Camille Martin";
/// The test card that always succeeds.
const TEST_CARD: &str = "4242 4242 4242 4242";

/// What `jo-server demo` prepared.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The folder of the tickets' PNG and PDF files (`DATA/demo`).
    pub files_dir: PathBuf,
    /// Id of the demonstration session (as the gates sync it).
    pub session_id: i64,
    /// The buyer's username.
    pub buyer_username: String,
    /// The buyer's password (random, printed once).
    pub buyer_password: String,
    /// The admin's username.
    pub admin_username: String,
    /// The admin's password (random, printed once; two-factor enrolment at
    /// first login).
    pub admin_password: String,
    /// Number of the paid order.
    pub order_number: String,
    /// The revoked ticket's public id (hex).
    pub revoked_ticket: String,
    /// The one-time scanner enrolment code.
    pub enrollment_code: String,
    /// Fingerprint of the server's keyring, which the gate pins.
    pub keyring_fingerprint: String,
}

/// Prepares the demonstration install in `config.data_dir`; refuses a
/// database that holds accounts, orders or tickets.
pub async fn run(config: &Config) -> anyhow::Result<Demo> {
    let store = crate::startup::open_store(config).await?;
    if store
        .has_accounts_or_sales()
        .await
        .context("reading the database")?
    {
        bail!(
            "{} already holds accounts, orders or tickets: the demo only runs on a new data directory",
            config.database.display()
        );
    }
    let keys_dir = config.keys_dir.clone();
    let signer = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let signer = crate::startup::load_or_create_signing_key(&keys_dir)?;
        // The keyring chain the gates pin, as the server writes it at start-up.
        crate::trust::current(&keys_dir, &signer)?;
        Ok(signer)
    })
    .await??;
    crate::fixtures::load(&store)
        .await
        .context("loading fixtures")?;

    let hasher = PasswordHasher::new(config.argon2)?;
    let admin_password = random_password()?;
    let admin_id = create_user(
        &store,
        &hasher,
        ("admin-demo", ADMIN_EMAIL, ("Admin", "Démo")),
        Role::Admin,
        &admin_password,
    )
    .await?;
    let buyer_password = random_password()?;
    let buyer_id = create_user(
        &store,
        &hasher,
        (
            "visiteur-demo",
            BUYER_EMAIL,
            HOLDER.split_once(' ').unwrap_or((HOLDER, HOLDER)),
        ),
        Role::Buyer,
        &buyer_password,
    )
    .await?;
    let actor = Actor {
        id: admin_id,
        username: "admin-demo".to_owned(),
        ip: "127.0.0.1".to_owned(),
    };

    let session_id = create_session(&store, actor.clone()).await?;
    let order_number = buy(
        &store,
        config,
        buyer_id,
        session_id,
        std::sync::Arc::new(signer),
    )
    .await?;
    let tickets = store
        .order_tickets_of(order_number.clone(), buyer_id)
        .await?
        .context("the demo order has no tickets")?;
    let named = name_tickets(&tickets)?;

    // The second Solo ticket is revoked, as an admin would from the console.
    let (_, revoked) = named
        .iter()
        .find(|(name, _)| *name == "revoked")
        .context("no ticket to revoke")?;
    let revoked_id = TicketId::from_hex(&revoked.ticket_hex)
        .with_context(|| format!("ticket id {}", revoked.ticket_hex))?;
    store
        .admin_revoke_ticket(
            actor,
            revoked_id,
            RevocationReason::Fraud,
            "demonstration: a ticket refused at the gate".to_owned(),
        )
        .await?
        .context("the ticket to revoke is missing")?;

    let files_dir = config.data_dir.join("demo");
    write_files(&files_dir, &named)?;

    let enrollment_code = crate::admin::create_enrollment_code(config, 24).await?;
    let keyring_fingerprint = crate::admin::keyring_fingerprint(config)?;
    Ok(Demo {
        data_dir: config.data_dir.clone(),
        files_dir,
        session_id,
        buyer_username: "visiteur-demo".to_owned(),
        buyer_password: buyer_password.expose().to_owned(),
        admin_username: "admin-demo".to_owned(),
        admin_password: admin_password.expose().to_owned(),
        order_number,
        revoked_ticket: revoked.ticket_hex.clone(),
        enrollment_code,
        keyring_fingerprint,
    })
}

impl Demo {
    /// The commands of the tour, with what each one shows, for a scanner
    /// state directory `state`.
    pub fn instructions(&self, state: &str) -> String {
        let data = self.data_dir.display();
        let files = self.files_dir.display();
        let (code, fp, id) = (
            &self.enrollment_code,
            &self.keyring_fingerprint,
            self.session_id,
        );
        format!(
            "Demonstration install ready in {data}.\n\
             Session {id} \"{SESSION_TITLE}\": doors open, valid at the gate now.\n\
             Buyer {BUYER_EMAIL} / password {bp} (order {order}: Solo, Duo, Famille; one more Solo revoked).\n\
             Admin {ADMIN_EMAIL} / password {ap} (two-factor enrolment at first login).\n\
             Tickets (QR PNG and PDF): {files}/{{solo,duo,famille,revoked}}.{{png,pdf}}\n\
             \n\
             1. In another terminal, serve the shop and the sync API on http://127.0.0.1:8080:\n\
             \x20  jo-server serve --data {data}\n\
             2. Enrol a gate with the one-time code (valid 24 h), pinning the keyring:\n\
             \x20  jo-scanner --state {state} enroll --server http://127.0.0.1:8080 --code {code} --keyring {fp}\n\
             3. Download keyring, sessions and revocations:\n\
             \x20  jo-scanner --state {state} sync\n\
             4. Name the gate and choose the session:\n\
             \x20  jo-scanner --state {state} configure --gate \"Porte démo\" --session {id}\n\
             5. Scan the Solo ticket: ADMIS (admit)\n\
             \x20  jo-scanner --state {state} verify {files}/solo.png\n\
             6. Scan it again: DÉJÀ UTILISÉ (used)\n\
             \x20  jo-scanner --state {state} verify {files}/solo.png\n\
             7. Scan the revoked ticket: REFUSÉ (revoked)\n\
             \x20  jo-scanner --state {state} verify {files}/revoked.png\n\
             8. The gate screen, the ticket images replayed as the camera:\n\
             \x20  JO_SCANNER_FRAMES={files} jo-scanner --state {state}\n",
            bp = self.buyer_password,
            ap = self.admin_password,
            order = self.order_number,
        )
    }
}

/// A random password of 16 URL-safe characters.
fn random_password() -> anyhow::Result<Secret> {
    let token = crate::auth::tokens::random_token().context("random password")?;
    Ok(Secret::new(token.chars().take(16).collect()))
}

/// Creates an account with a verified e-mail; its id.
async fn create_user(
    store: &Store,
    hasher: &PasswordHasher,
    (username, email, (first, last)): (&str, &str, (&str, &str)),
    role: Role,
    password: &Secret,
) -> anyhow::Result<i64> {
    let hash = hasher
        .hash(Secret::new(password.expose().to_owned()))
        .await?;
    let user = NewUser {
        username: username.to_owned(),
        email: email.to_owned(),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        password_hash: hash,
        user_key: UserKey::generate().context("user key")?,
        role,
        email_verified: true,
    };
    store
        .create_user(user)
        .await?
        .map_err(|c| anyhow::anyhow!("account {username} not created: {c:?}"))
}

/// Creates today's session through the admin console's storage: doors open
/// an hour ago, start in five minutes (so it is still on sale while the demo
/// buys), end in four hours.
async fn create_session(store: &Store, actor: Actor) -> anyhow::Result<i64> {
    let (sports, venues) = store.admin_sports_venues().await?;
    let sport_id = sports.first().map(|s| s.0).context("no sport loaded")?;
    let venue_id = venues.first().map(|v| v.0).context("no venue loaded")?;
    let now = crate::units::time::now();
    let input = SessionInput {
        code: SESSION_CODE.to_owned(),
        sport_id,
        venue_id,
        title: SESSION_TITLE.to_owned(),
        starts_at: now + 5 * 60,
        ends_at: now + 4 * 3600,
        doors_open_at: now - 3600,
        capacity: 100,
        base_price_cents: 5000,
        entry_rule: "single".to_owned(),
        max_entries: 1,
        entrance: "Porte démo".to_owned(),
    };
    store
        .admin_create_session(actor, input)
        .await?
        .map_err(|r| anyhow::anyhow!("demo session not created: {r:?}"))
}

/// Buys two Solo, one Duo and one Famille ticket as the shop does (cart,
/// checkout, payment with the test card on the simulated gateway); the
/// order number.
async fn buy(
    store: &Store,
    config: &Config,
    user_id: i64,
    session_id: i64,
    signer: std::sync::Arc<jo_shared::TicketSigner>,
) -> anyhow::Result<String> {
    let offers = store.active_offers().await?;
    for (name, quantity) in [("Solo", 2), ("Duo", 1), ("Famille", 1)] {
        let offer = offers
            .iter()
            .find(|o| o.name == name)
            .with_context(|| format!("no active offer {name}"))?;
        store
            .cart_add(CartOwner::User(user_id), session_id, offer.id, quantity)
            .await?
            .map_err(|r| anyhow::anyhow!("{name} not added to the cart: {r:?}"))?;
    }
    let number = match store.checkout(user_id, config.shop).await? {
        CheckoutOutcome::Created(n) => n,
        other => bail!("checkout refused: {other:?}"),
    };
    let (year, month, _) =
        crate::units::time::civil_from_days(crate::units::time::now().div_euclid(86_400));
    let card = CardDetails::parse(
        &CardForm {
            number: TEST_CARD,
            expiry: "12/39",
            cvv: "123",
            holder: HOLDER,
        },
        year,
        month,
    )
    .map_err(|e| anyhow::anyhow!("test card refused: {e:?}"))?;
    let idem = crate::auth::tokens::random_token().context("idempotency key")?;
    let (brand, last4) = (card.brand(), card.last4());
    let charge_now: crate::db::orders::ChargeNow = {
        let (idem, reference) = (idem.clone(), number.clone());
        Box::new(move |amount_cents| {
            SimulatedGateway
                .charge_now(&ChargeRequest {
                    idempotency_key: &idem,
                    amount_cents,
                    reference: &reference,
                    card: &card,
                })
                .map(|o| match o {
                    ChargeOutcome::Approved { transaction_id } => Ok(transaction_id),
                    ChargeOutcome::Declined(r) => Err(r.code().to_owned()),
                })
        })
    };
    let start = store
        .begin_payment(
            number.clone(),
            user_id,
            idem,
            brand,
            last4,
            charge_now,
            signer,
            crate::i18n::Lang::Fr.code(),
        )
        .await?;
    match start {
        PaymentStart::Charged(PaymentResult::Paid) | PaymentStart::AlreadyPaid => Ok(number),
        other => bail!("payment of order {number} did not go through: {other:?}"),
    }
}

/// The tickets with their file names: the first Solo `solo`, the second
/// `revoked`, then `duo` and `famille`.
fn name_tickets(tickets: &[TicketView]) -> anyhow::Result<Vec<(&'static str, TicketView)>> {
    let of = |offer: &'static str| tickets.iter().filter(move |t| t.offer_name == offer);
    let mut solos = of("Solo");
    let named = vec![
        ("solo", solos.next().cloned()),
        ("revoked", solos.next().cloned()),
        ("duo", of("Duo").next().cloned()),
        ("famille", of("Famille").next().cloned()),
    ];
    named
        .into_iter()
        .map(|(name, t)| Ok((name, t.with_context(|| format!("no {name} ticket issued"))?)))
        .collect()
}

/// Writes `NAME.png` (the QR code) and `NAME.pdf` (the printed ticket) of
/// each ticket in `dir`.
fn write_files(dir: &Path, tickets: &[(&'static str, TicketView)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, t) in tickets {
        let png = crate::shop::qr::Symbol::encode(&t.qr)
            .with_context(|| format!("QR code of the {name} ticket"))?
            .png(8);
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        let pdf = crate::shop::tickets_pdf(std::slice::from_ref(t), crate::i18n::Lang::Fr)
            .with_context(|| format!("PDF of the {name} ticket"))?;
        let path = dir.join(format!("{name}.pdf"));
        std::fs::write(&path, pdf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
