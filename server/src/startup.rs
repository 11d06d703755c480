//! Building and running the application.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::password::PasswordHasher;
use crate::auth::secretbox::SecretBox;
use crate::config::Config;
use crate::db::Store;
use crate::mail::Mailer;
use crate::state::{App, AppState};

/// A built application, bound to its port, ready to run.
pub struct Application {
    port: u16,
    listener: TcpListener,
    state: AppState,
}

/// Creates a directory readable by its owner only.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", dir.display()))?;
    }
    Ok(())
}

/// Opens the store: creates the data directory and the database on first run.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    create_private_dir(&config.data_dir)?;
    if let Some(pg) = &config.postgres {
        let settings = crate::db::pg::config(
            pg.url.expose(),
            pg.password.as_ref().map(crate::config::Secret::expose),
        )?;
        let connections = pg.connections;
        // Its errors name host and database, never the password.
        return Ok(tokio::task::spawn_blocking(move || {
            Store::open_postgres(settings, connections)
        })
        .await??);
    }
    let db_path = config.database.clone();
    tokio::task::spawn_blocking(move || Store::open_sqlite(&db_path))
        .await?
        .with_context(|| format!("opening the database {}", config.database.display()))
}

impl Application {
    /// Prepares everything (data dir, database, signing key, fixtures, mail)
    /// and binds the listener; port 0 picks a free port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        let signer = load_or_create_signing_key(&config.keys_dir)?;
        // Refuse to start with a key the gates would not trust (missing
        // from the keyring, withdrawn) or a keyring they could not follow.
        let (_, chain) = crate::trust::current(&config.keys_dir, &signer)?;
        if let Some(newest) = chain.last() {
            tracing::info!(version = newest.version, "keyring chain up to date");
        }
        crate::fixtures::load(&store)
            .await
            .context("loading fixtures")?;
        let csrf_key = store.server_secret("csrf").await?;
        let device_key = store.server_secret("device_cookie").await?;
        let secret_box = SecretBox::load_or_create(&config.data_dir.join("totp.key"))?;
        let mailer = Mailer::new(&config)?;
        let hasher = PasswordHasher::new(config.argon2)?;

        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let local: SocketAddr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));
        let https = public_url.starts_with("https://");
        let public_origin = origin_of(&public_url);
        tracing::info!(address = %local, public_url, "listening");
        let state = AppState(Arc::new(App {
            config,
            store,
            hasher,
            mailer,
            signer: Arc::new(signer),
            secret_box,
            csrf_key,
            device_key,
            public_url,
            public_origin,
            https,
        }));
        Ok(Self {
            port: local.port(),
            listener,
            state,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT or SIGTERM, then lets requests in flight finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (graceful shutdown).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let holds = tokio::spawn(crate::web::shop::expire_holds_periodically(
            self.state.clone(),
        ));
        // Every node drains the shared outbox (mail written by any node).
        let outbox = tokio::spawn(crate::mail::run_outbox(self.state.clone()));
        let app = crate::web::router(self.state);
        // No Nagle delay: a response is written at once, not held back for
        // the client's delayed ACK of the previous one.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        housekeeping.abort();
        holds.abort();
        outbox.abort();
        tracing::info!("server stopped");
        result.context("serving HTTP")
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// The signing key of `keys_dir`, generated on first start. Key material is
/// never logged; only the key id is.
pub fn load_or_create_signing_key(keys_dir: &Path) -> anyhow::Result<jo_shared::TicketSigner> {
    if !keys_dir.join(jo_shared::keys::SIGNING_KEY_FILE).exists() {
        let g = jo_shared::keys::generate(keys_dir, false)
            .with_context(|| format!("generating the signing key in {}", keys_dir.display()))?;
        tracing::info!(key_id = %g.key_id.to_hex(), dir = %keys_dir.display(), "generated a ticket-signing key");
    }
    let signer = jo_shared::keys::load_signer(keys_dir)
        .with_context(|| format!("loading the signing key from {}", keys_dir.display()))?;
    tracing::info!(key_id = %signer.key_id().to_hex(), "ticket-signing key loaded");
    Ok(signer)
}

/// Deletes expired sessions every hour.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match state
            .store
            .purge_expired_sessions(state.config.sessions.idle_secs)
            .await
        {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session purge failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_strips_the_path() {
        assert_eq!(
            origin_of("https://billets.example.fr/jo"),
            "https://billets.example.fr"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
