//! Typed configuration: defaults that run out of the box, overridden by flags
//! and `JO_*` environment variables (clap reads both).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// A secret string (SMTP password, …) that never prints, not even in `Debug`.
#[derive(Clone, Default)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(zeroize::Zeroizing::new(value))
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s.to_owned()))
    }
}

/// How the connection to the SMTP relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain SMTP (only for a relay on localhost or a test sink).
    None,
    /// SMTP then STARTTLS (required), usually port 587.
    Starttls,
    /// Implicit TLS ("SMTPS"), usually port 465.
    Tls,
}

/// SMTP relay settings; without a host, mail goes to the outbox directory.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Relay host name.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login, if the relay needs one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<Secret>,
}

/// Where the PostgreSQL database is, when the store runs on one.
#[derive(Clone, Debug)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/database` (may hold a password: never logged).
    pub url: Secret,
    /// The password, when not in the URL (`JO_DATABASE_PASSWORD` or the file
    /// named by `JO_DATABASE_PASSWORD_FILE`).
    pub password: Option<Secret>,
    /// Most connections this node keeps open.
    pub connections: usize,
}

/// Whether a `--database` value names a PostgreSQL database rather than a file.
pub fn is_postgres_url(value: &str) -> bool {
    value.starts_with("postgres://") || value.starts_with("postgresql://")
}

/// The database password from `JO_DATABASE_PASSWORD`, else from the file
/// named by `JO_DATABASE_PASSWORD_FILE` (a mounted secret; one trailing
/// newline dropped).
fn database_password() -> anyhow::Result<Option<Secret>> {
    if let Ok(p) = std::env::var("JO_DATABASE_PASSWORD") {
        return Ok(Some(Secret::new(p)));
    }
    let Some(file) = std::env::var_os("JO_DATABASE_PASSWORD_FILE") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "reading JO_DATABASE_PASSWORD_FILE {}",
            std::path::Path::new(&file).display()
        )
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(Some(Secret::new(
        text.strip_suffix('\r').unwrap_or(text).to_owned(),
    )))
}

/// The database of a `--database` value (else `JO_DATABASE_URL`, else
/// the default file under `data_dir`): a SQLite file, or PostgreSQL
/// settings with the password from the environment.
pub fn database_setting(
    value: Option<String>,
    data_dir: &std::path::Path,
    connections: usize,
) -> anyhow::Result<(PathBuf, Option<PostgresSettings>)> {
    let default_file = data_dir.join("jo.sqlite3");
    Ok(
        match value.or_else(|| std::env::var("JO_DATABASE_URL").ok()) {
            Some(url) if is_postgres_url(&url) => (
                default_file,
                Some(PostgresSettings {
                    url: Secret::new(url),
                    password: database_password()?,
                    connections,
                }),
            ),
            Some(path) => (PathBuf::from(path), None),
            None => (default_file, None),
        },
    )
}

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Params {
    /// Production parameters: above OWASP's minimum for argon2id (19 MiB, t=2,
    /// p=1): 46 MiB and two passes, about 100 ms per hash on one current core.
    pub const PRODUCTION: Self = Self {
        memory_kib: 47_104,
        iterations: 2,
        parallelism: 1,
    };

    /// Cheap parameters for tests only ([`Config::for_tests`]); `serve`
    /// always uses [`Argon2Params::PRODUCTION`].
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
}

/// Login-throttling policy.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    /// Failures per account (or per trusted device) before delays start.
    pub account_free_failures: u32,
    /// Failures per client address before delays start.
    pub address_free_failures: u32,
    /// First lock duration; it doubles with every further failure.
    pub base_lock_secs: i64,
    /// Longest lock: whatever an attacker does, the account opens again after it.
    pub max_lock_secs: i64,
    /// Failures older than this are forgotten.
    pub window_secs: i64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            address_free_failures: 20,
            base_lock_secs: 30,
            max_lock_secs: 15 * 60,
            window_secs: 60 * 60,
        }
    }
}

/// Session lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_secs: i64,
    /// A session ends this long after login, used or not.
    pub absolute_secs: i64,
    /// Time allowed between a correct password and the second factor.
    pub second_factor_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_secs: 2 * 60 * 60,
            absolute_secs: 12 * 60 * 60,
            second_factor_secs: 5 * 60,
        }
    }
}

/// The shop's timings and what one buyer may hold unpaid.
#[derive(Clone, Copy, Debug)]
pub struct ShopPolicy {
    /// How long an unpaid order holds its seats.
    pub hold_secs: i64,
    /// How often expired holds are swept (their seats return on sale).
    pub sweep_secs: u64,
    /// First wait before a seller's refund the gateway refused is tried
    /// again; it doubles with each refusal, up to an hour.
    pub payout_retry_secs: u64,
    /// Most unpaid, unexpired orders one buyer may have at once: without a
    /// cap, one account could hold a session's seats by checking out again
    /// every hold period.
    pub max_pending_orders: i64,
    /// Most seats one buyer may hold at once in unpaid orders, the order
    /// being placed included.
    pub max_held_seats: i64,
    /// How long a transfer offer stays open before the ticket returns to
    /// its sender.
    pub transfer_offer_secs: i64,
    /// Most times one ticket may change hands by transfer (its chain of
    /// re-issues counted): a tout's stock cannot be passed on endlessly.
    pub max_transfers_per_ticket: i64,
    /// The resale buyer's fee, in basis points of the face value (1 000:
    /// 10 %), added to what they pay.
    pub resale_buyer_fee_bp: i64,
    /// The resale seller's fee, in basis points of the face value (500:
    /// 5 %), kept from their refund.
    pub resale_seller_fee_bp: i64,
    /// Most tickets one buyer may hold or be buying for one session,
    /// primary and resale purchases together.
    pub max_tickets_per_session: i64,
}

impl Default for ShopPolicy {
    fn default() -> Self {
        Self {
            hold_secs: 15 * 60,
            sweep_secs: 30,
            payout_retry_secs: 30,
            max_pending_orders: 3,
            max_held_seats: 40,
            transfer_offer_secs: 7 * 24 * 3600,
            max_transfers_per_ticket: 2,
            resale_buyer_fee_bp: 1_000,
            resale_seller_fee_bp: 500,
            max_tickets_per_session: 10,
        }
    }
}

/// The scanners' sync API limits.
#[derive(Clone, Copy, Debug)]
pub struct ApiPolicy {
    /// Largest body of a scan upload, in bytes (other routes, enrolment
    /// included, keep the site's cap).
    pub body_limit_bytes: usize,
    /// Most records in one uploaded batch.
    pub max_batch_records: usize,
    /// Requests a device may make per second, on average.
    pub rate_per_sec: u32,
    /// Requests a device may make in a burst.
    pub rate_burst: u32,
    /// A scan whose device time is this much older than its arrival is a
    /// late upload (flagged for admins).
    pub late_upload_secs: i64,
    /// A scan whose device time is this much ahead of the server's is flagged
    /// as a late upload too (a device clock far off).
    pub future_tolerance_secs: i64,
    /// Enrolment attempts one client address may make per minute, on
    /// average (each opens a write transaction; codes are guessed nowhere
    /// else).
    pub enroll_per_minute: u32,
    /// Enrolment attempts one client address may make in a burst.
    pub enroll_burst: u32,
}

impl Default for ApiPolicy {
    fn default() -> Self {
        Self {
            body_limit_bytes: 8 * 1024 * 1024,
            max_batch_records: 1000,
            rate_per_sec: 10,
            rate_burst: 50,
            late_upload_secs: 60 * 60,
            future_tolerance_secs: 5 * 60,
            enroll_per_minute: 10,
            enroll_burst: 10,
        }
    }
}

/// The flags and environment variables of `jo-server serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "JO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Data directory: database, keys, outbox (created on first run).
    #[arg(long = "data", env = "JO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The database: a SQLite file [default: DATA/jo.sqlite3], or a
    /// PostgreSQL URL `postgres://USER@HOST:PORT/DB` shared by several nodes
    /// (also `JO_DATABASE_URL`; the password in `JO_DATABASE_PASSWORD` or
    /// `JO_DATABASE_PASSWORD_FILE`, not in the URL, which `ps` shows).
    #[arg(long, env = "JO_DATABASE")]
    pub database: Option<String>,
    /// PostgreSQL: most connections this node keeps open.
    #[arg(long, env = "JO_DATABASE_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub database_connections: u16,
    /// Directory of the ticket-signing keys [default: DATA/keys].
    #[arg(long = "keys", env = "JO_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Public base URL used in emails and to decide on Secure cookies and HSTS
    /// [default: http://BIND].
    #[arg(long, env = "JO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay host; without it, mail is written as .eml files to DATA/outbox.
    #[arg(long, env = "JO_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP relay port [default: 587 with starttls, 465 with tls, 25 otherwise].
    #[arg(long, env = "JO_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// SMTP transport security.
    #[arg(long, env = "JO_SMTP_TLS", value_enum, default_value = "starttls")]
    pub smtp_tls: SmtpTls,
    /// SMTP login.
    #[arg(long, env = "JO_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password (environment only: a flag would show in `ps`).
    #[arg(skip)]
    pub smtp_password: Option<Secret>,
    /// Sender address of outgoing mail.
    #[arg(
        long,
        env = "JO_MAIL_FROM",
        default_value = "JO E-Tickets <billetterie@localhost>"
    )]
    pub mail_from: String,
    /// Reverse proxy whose X-Forwarded-For header gives the client address
    /// (repeat, or comma-separate in the variable). Without it, the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "JO_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "JO_LOG_JSON")]
    pub log_json: bool,
    /// Minutes an unpaid order holds its seats.
    #[arg(long, env = "JO_HOLD_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u16).range(1..=1440))]
    pub hold_minutes: u16,
    /// Most unpaid orders holding seats one buyer may have at once.
    #[arg(long, env = "JO_MAX_PENDING_ORDERS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_pending_orders: u16,
    /// Most seats one buyer may hold at once in unpaid orders.
    #[arg(long, env = "JO_MAX_HELD_SEATS", default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub max_held_seats: u16,
    /// Resale buyer's fee, basis points of the face value (1000 = 10 %).
    #[arg(long, env = "JO_RESALE_BUYER_FEE_BP", default_value_t = 1_000, value_parser = clap::value_parser!(u16).range(0..=5_000))]
    pub resale_buyer_fee_bp: u16,
    /// Resale seller's fee, basis points of the face value (500 = 5 %).
    #[arg(long, env = "JO_RESALE_SELLER_FEE_BP", default_value_t = 500, value_parser = clap::value_parser!(u16).range(0..=5_000))]
    pub resale_seller_fee_bp: u16,
    /// Most tickets one buyer may hold or be buying for one session,
    /// primary and resale together.
    #[arg(long, env = "JO_MAX_TICKETS_PER_SESSION", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_tickets_per_session: u32,
    /// Most times one ticket may change hands by transfer.
    #[arg(long, env = "JO_MAX_TRANSFERS_PER_TICKET", default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=100))]
    pub max_transfers_per_ticket: u16,
    /// Hours a transfer offer stays open before the ticket returns to its sender.
    #[arg(long, env = "JO_TRANSFER_OFFER_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u16).range(1..=2_000))]
    pub transfer_offer_hours: u16,
    /// Sync API: requests per second each scanner device may make on average.
    #[arg(long, env = "JO_API_RATE_PER_SEC", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub api_rate_per_sec: u32,
    /// Sync API: requests each scanner device may make in a burst.
    #[arg(long, env = "JO_API_RATE_BURST", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_rate_burst: u32,
    /// Sync API: enrolment attempts one client address may make per minute
    /// (and in a burst).
    #[arg(long, env = "JO_ENROLL_RATE_PER_MIN", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub enroll_rate_per_min: u32,
    /// Seconds that requests in flight at SIGTERM/SIGINT may take to finish
    /// before the process exits anyway (keep it below the container's stop
    /// timeout).
    #[arg(long, env = "JO_SHUTDOWN_GRACE_SECS", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=3600))]
    pub shutdown_grace_secs: u16,
    /// Serve Prometheus metrics at `/metrics` on this address (e.g.
    /// 127.0.0.1:9100; keep it off the public network). Off by default.
    #[arg(long, env = "JO_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// Everything the application needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// SQLite database file (unused when `postgres` is set).
    pub database: PathBuf,
    /// The PostgreSQL database, if the store runs on one instead of SQLite.
    pub postgres: Option<PostgresSettings>,
    /// Ticket-signing keys directory.
    pub keys_dir: PathBuf,
    /// Public base URL without a trailing slash; `None` means `http://` + the bound address.
    pub public_url: Option<String>,
    /// SMTP relay; `None` writes mail to the outbox.
    pub smtp: Option<SmtpSettings>,
    /// Sender address of outgoing mail.
    pub mail_from: String,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Login throttling.
    pub throttle: ThrottlePolicy,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Shop timings (seat holds).
    pub shop: ShopPolicy,
    /// Sync API limits.
    pub api: ApiPolicy,
    /// Longest wait for requests in flight once a shutdown is asked for.
    pub shutdown_grace: std::time::Duration,
    /// Where `/metrics` is served (Prometheus text format); `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// The configuration of `jo-server serve`, with its defaults filled in.
    pub fn from_serve_args(args: ServeArgs) -> anyhow::Result<Self> {
        // An empty variable is no setting: a compose file passes
        // `JO_SMTP_HOST=` for "no relay".
        let smtp_password = std::env::var("JO_SMTP_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret::new);
        let smtp_host = args.smtp_host.filter(|h| !h.trim().is_empty());
        let smtp_username = args.smtp_username.filter(|u| !u.is_empty());
        let smtp = match smtp_host {
            None => None,
            Some(host) => Some(SmtpSettings {
                port: args.smtp_port.unwrap_or(match args.smtp_tls {
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                }),
                host,
                tls: args.smtp_tls,
                username: smtp_username,
                password: args.smtp_password.or(smtp_password),
            }),
        };
        if let Some(url) = &args.public_url {
            check_public_url(url).context("invalid JO_PUBLIC_URL / --public-url")?;
        }
        let (database, postgres) = database_setting(
            args.database,
            &args.data_dir,
            usize::from(args.database_connections),
        )?;
        Ok(Self {
            bind: args.bind,
            database,
            postgres,
            keys_dir: args.keys_dir.unwrap_or_else(|| args.data_dir.join("keys")),
            data_dir: args.data_dir,
            public_url: args.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            smtp,
            mail_from: args.mail_from,
            argon2: Argon2Params::PRODUCTION,
            throttle: ThrottlePolicy::default(),
            sessions: SessionPolicy::default(),
            body_limit_bytes: 64 * 1024,
            trusted_proxies: args.trusted_proxies,
            shop: ShopPolicy {
                hold_secs: i64::from(args.hold_minutes) * 60,
                max_pending_orders: i64::from(args.max_pending_orders),
                max_held_seats: i64::from(args.max_held_seats),
                resale_buyer_fee_bp: i64::from(args.resale_buyer_fee_bp),
                resale_seller_fee_bp: i64::from(args.resale_seller_fee_bp),
                max_tickets_per_session: i64::from(args.max_tickets_per_session),
                max_transfers_per_ticket: i64::from(args.max_transfers_per_ticket),
                transfer_offer_secs: i64::from(args.transfer_offer_hours) * 3_600,
                ..ShopPolicy::default()
            },
            api: ApiPolicy {
                rate_per_sec: args.api_rate_per_sec,
                rate_burst: args.api_rate_burst,
                enroll_per_minute: args.enroll_rate_per_min,
                enroll_burst: args.enroll_rate_per_min,
                ..ApiPolicy::default()
            },
            shutdown_grace: std::time::Duration::from_secs(u64::from(args.shutdown_grace_secs)),
            metrics_addr: args.metrics_addr,
        })
    }

    /// The defaults with everything under `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: data_dir.join("jo.sqlite3"),
            postgres: None,
            keys_dir: data_dir.join("keys"),
            data_dir,
            public_url: None,
            smtp: None,
            mail_from: "JO E-Tickets <billetterie@localhost>".to_owned(),
            argon2: Argon2Params::PRODUCTION,
            throttle: ThrottlePolicy::default(),
            sessions: SessionPolicy::default(),
            body_limit_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
            shop: ShopPolicy::default(),
            api: ApiPolicy::default(),
            shutdown_grace: std::time::Duration::from_secs(20),
            metrics_addr: None,
        }
    }

    /// A configuration for tests: everything under `data_dir`, a free port,
    /// cheap password hashing, mail to the outbox.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            argon2: Argon2Params::INSECURE_FOR_TESTS,
            ..Self::for_data_dir(data_dir)
        }
    }

    /// The outbox directory of the embedded mail transport.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

/// Accepts `http://host[:port][/path]` or `https://…`, nothing else.
pub fn check_public_url(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => bail!("expected http://HOST[:PORT] or https://HOST[:PORT], got {url:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "hunter2hunter2");
    }

    #[test]
    fn public_url_must_be_http_or_https() {
        assert!(check_public_url("https://billets.example.fr").is_ok());
        assert!(check_public_url("http://127.0.0.1:8080").is_ok());
        assert!(check_public_url("javascript:alert(1)").is_err());
        assert!(check_public_url("https://").is_err());
        assert!(check_public_url("ftp://x").is_err());
    }

    #[test]
    fn a_database_value_is_a_file_or_a_postgres_url() {
        let dir = std::path::Path::new("/srv/jo");
        let (file, pg) =
            database_setting(Some("/var/lib/jo/shop.db".into()), dir, 4).expect("file");
        assert_eq!(file, PathBuf::from("/var/lib/jo/shop.db"));
        assert!(pg.is_none());
        let (_, pg) =
            database_setting(Some("postgresql://jo@db:5432/jo".into()), dir, 4).expect("url");
        let pg = pg.expect("postgres");
        assert_eq!(pg.url.expose(), "postgresql://jo@db:5432/jo");
        assert_eq!(pg.connections, 4);
        // The URL is a secret: it may hold the password.
        assert!(!format!("{pg:?}").contains("db:5432"));
    }

    #[test]
    fn production_argon2_meets_owasp_minimum() {
        let p = Argon2Params::PRODUCTION;
        // OWASP: m=19 MiB with t=2, or m=46 MiB with t=1, p=1.
        assert!(p.memory_kib >= 19 * 1024 && p.iterations >= 2);
    }
}
