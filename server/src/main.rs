//! `jo-server`: the JO E-Tickets issuance server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use jo_server::config::{Config, Secret, ServeArgs};

/// JO E-Tickets issuance server: web shop, admin console and scanner sync API.
#[derive(Parser)]
#[command(name = "jo-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant (serve's flags)
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the web shop (creates the data directory, database and signing key on first run).
    Serve(ServeArgs),
    /// Generate the ticket-signing key (PKCS#8 PEM, mode 0600) and the public keyring (SPKI PEM).
    Keygen {
        /// Directory of the key files.
        #[arg(long, env = "JO_KEYS_DIR")]
        keys: PathBuf,
        /// Rotate: replace an existing signing key (its public key stays in the keyring).
        #[arg(long)]
        force: bool,
    },
    /// Create an administrator. The password is read from stdin (first line)
    /// or from JO_ADMIN_PASSWORD, never from a flag.
    CreateAdmin {
        /// Data directory.
        #[arg(long = "data", env = "JO_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The database: a SQLite file [default: DATA/jo.sqlite3] or a
        /// PostgreSQL URL (as for `serve`).
        #[arg(long, env = "JO_DATABASE")]
        database: Option<String>,
        /// Admin's email address.
        #[arg(long)]
        email: String,
        /// Admin's username.
        #[arg(long)]
        username: String,
    },
    /// Prepare a demonstration install in a new data directory, for a
    /// five-minute tour: a session on today, a buyer with paid Solo, Duo and
    /// Famille tickets and one revoked ticket (QR PNG and PDF of each under
    /// DATA/demo/), a one-time scanner enrolment code; then print the
    /// commands of the tour. Refuses a database with accounts, orders or
    /// tickets.
    Demo {
        /// Data directory (the one `jo-server serve --data` then serves).
        #[arg(long = "data", env = "JO_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Print a one-time scanner enrolment code (the scanner trades it for a
    /// device identity with `jo-scanner enroll --code CODE`).
    EnrollCode {
        /// Data directory.
        #[arg(long = "data", env = "JO_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The database: a SQLite file [default: DATA/jo.sqlite3] or a
        /// PostgreSQL URL (as for `serve`).
        #[arg(long, env = "JO_DATABASE")]
        database: Option<String>,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
        ttl_hours: u32,
    },
    /// Copy every table of an evaluation install (its SQLite file) into an
    /// empty PostgreSQL database, in one transaction, then compare both
    /// sides table by table (rows and checksums): committed only if all
    /// match. Stop the server first. Keys stay files: carry the keys
    /// directory and DATA/totp.key over to the PostgreSQL nodes.
    MigrateToPostgres {
        /// The SQLite database, e.g. DATA/jo.sqlite3 (opened read-only).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database: `postgres://USER@HOST:PORT/DB` (also
        /// `JO_DATABASE_URL`; the password in `JO_DATABASE_PASSWORD` or
        /// `JO_DATABASE_PASSWORD_FILE`, not in the URL, which `ps` shows).
        #[arg(long, env = "JO_DATABASE", hide_env_values = true)]
        to: Option<String>,
    },
    /// Copy the SQLite database to FILE while the server keeps serving
    /// (SQLite's online backup: the database as of one instant), checked
    /// with `PRAGMA integrity_check` before it replaces FILE. Restore: stop
    /// the server, copy FILE over DATA/jo.sqlite3, delete its -wal and -shm
    /// files, start. PostgreSQL: use pg_dump (README, "Production").
    Backup {
        /// Data directory.
        #[arg(long = "data", env = "JO_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The database: a SQLite file [default: DATA/jo.sqlite3].
        #[arg(long, env = "JO_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// The backup file to write (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

/// Runs the command; an error is printed as one line, `error: ` and its
/// causes (never a backtrace, whatever RUST_BACKTRACE says), with a non-zero
/// exit status.
#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            jo_server::init_tracing(args.log_json);
            let config = Config::from_serve_args(args)?;
            jo_server::Application::build(config)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Keygen { keys, force } => {
            let g = jo_shared::keys::generate(&keys, force)
                .with_context(|| format!("keygen in {}", keys.display()))?;
            println!(
                "signing key {} written to {}",
                g.key_id,
                g.signing_key.display()
            );
            println!("public keyring written to {}", g.keyring.display());
            if let Some(old) = g.rotated_from {
                println!("rotated from key {old}: it stays in the keyring until withdrawn");
            }
        }
        Command::CreateAdmin {
            data_dir,
            database,
            email,
            username,
        } => {
            jo_server::init_tracing(false);
            let password = match std::env::var("JO_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => Secret::new(p),
                _ => jo_server::admin::read_password(&mut std::io::stdin().lock())?,
            };
            let mut config = Config::for_data_dir(data_dir);
            (config.database, config.postgres) =
                jo_server::config::database_setting(database, &config.data_dir, 2)?;
            let id = jo_server::admin::create_admin(&config, &email, &username, password).await?;
            println!(
                "admin {username} created (id {id}); two-factor enrolment is required at first login"
            );
        }
        Command::Demo { data_dir } => {
            let config = Config::for_data_dir(data_dir);
            let demo = jo_server::demo::run(&config).await?;
            print!("{}", demo.instructions("demo-gate"));
        }
        Command::EnrollCode {
            data_dir,
            database,
            ttl_hours,
        } => {
            let mut config = Config::for_data_dir(data_dir);
            (config.database, config.postgres) =
                jo_server::config::database_setting(database, &config.data_dir, 2)?;
            let code = jo_server::admin::create_enrollment_code(&config, ttl_hours).await?;
            // The code alone on stdout, for scripts; the explanation on stderr.
            println!("{code}");
            eprintln!("one-time scanner enrolment code, valid {ttl_hours} h");
            match jo_server::admin::keyring_fingerprint(&config) {
                Ok(fp) => eprintln!(
                    "keyring fingerprint (the gate pins it): {fp}\n  jo-scanner enroll --server URL --code {code} --keyring {fp}"
                ),
                Err(e) => eprintln!("no keyring fingerprint yet ({e:#}): start the server once"),
            }
        }
        Command::MigrateToPostgres { from, to } => migrate_command(from, to).await?,
        Command::Backup {
            data_dir,
            database,
            to,
        } => {
            let (file, postgres) = jo_server::config::database_setting(database, &data_dir, 1)?;
            if postgres.is_some() {
                anyhow::bail!(
                    "backup copies a SQLite database; this one is PostgreSQL: use pg_dump \
                     (and WAL archiving for point-in-time recovery), see README, Production"
                );
            }
            let report =
                tokio::task::spawn_blocking(move || jo_server::backup::backup_sqlite(&file, &to))
                    .await??;
            println!("{}", report.render());
        }
    }
    Ok(())
}

/// `migrate-to-postgres`: the copy runs on the blocking pool (both database
/// clients are synchronous); the comparison is printed whatever its outcome.
async fn migrate_command(from: PathBuf, to: Option<String>) -> anyhow::Result<()> {
    use jo_server::migrate::{MigrateError, migrate_to_postgres};
    let (_, settings) = jo_server::config::database_setting(to, std::path::Path::new("."), 1)?;
    let Some(settings) = settings else {
        anyhow::bail!("--to: a PostgreSQL URL (postgres://USER@HOST:PORT/DB) is needed");
    };
    let target = jo_server::db::pg::config(
        settings.url.expose(),
        settings.password.as_ref().map(Secret::expose),
    )?;
    let outcome = tokio::task::spawn_blocking(move || {
        migrate_to_postgres(&from, &target, &mut |line: &str| eprintln!("{line}"))
    })
    .await?;
    match outcome {
        Ok(report) => {
            print!("{}", report.render());
            println!("migrated: every table matches; committed");
            Ok(())
        }
        Err(e) => {
            if let MigrateError::Mismatch { report } = &e {
                print!("{}", report.render());
            }
            Err(e.into())
        }
    }
}
