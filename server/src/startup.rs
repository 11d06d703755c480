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
    /// The `/metrics` listener and the recorder it renders, when enabled.
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
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
        Self::build_with_gateway(config, Arc::new(crate::shop::payment::SimulatedGateway)).await
    }

    /// [`Application::build`] with another payment gateway than the
    /// simulated one (a real acquirer's, or a test's that fails on cue).
    pub async fn build_with_gateway(
        config: Config,
        gateway: crate::shop::payment::Gateway,
    ) -> anyhow::Result<Self> {
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
        let metrics = match config.metrics_addr {
            Some(addr) => Some((
                crate::metrics::bind(addr).await?,
                crate::metrics::install()?,
            )),
            None => None,
        };
        let local: SocketAddr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));
        let https = public_url.starts_with("https://");
        let public_origin = origin_of(&public_url);
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
            gateway,
        }));
        Ok(Self {
            port: local.port(),
            listener,
            state,
            metrics,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`, when `--metrics-addr` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// Serves until SIGINT or SIGTERM, then lets requests in flight finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = shutdown_signal()?;
        self.run_until(stop).await
    }

    /// Serves until `stop` completes, then shuts down gracefully: the
    /// connections already queued are taken and the listener closes (a
    /// proxy sends new requests to another node), the background jobs are
    /// told to stop, and requests in flight finish, those just arrived
    /// included (a payment is never cut in half; see [`crate::serve`]), for at most
    /// [`Config::shutdown_grace`]: past it the process ends with whatever
    /// is still running (each database transaction commits or rolls back
    /// as a whole, so nothing half-written stays).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Logged here, once the caller's stop (the signal handlers of
        // `run_until_stopped`) is in place: whoever reads this line and
        // then asks the server to stop gets a graceful stop.
        if let Ok(local) = self.listener.local_addr() {
            tracing::info!(address = %local, public_url = %self.state.public_url, "listening");
        }
        let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
        let background = [
            spawn_until_stopped(stopping.clone(), housekeeping(self.state.clone())),
            spawn_until_stopped(
                stopping.clone(),
                crate::web::shop::expire_holds_periodically(self.state.clone()),
            ),
            // Every node pays the resale sellers still owed (a refund the
            // gateway refused is tried again, with a backoff).
            spawn_until_stopped(
                stopping.clone(),
                crate::web::shop::resale::settle_payouts_periodically(self.state.clone()),
            ),
            // Every node drains the shared outbox (mail written by any node).
            spawn_until_stopped(
                stopping.clone(),
                crate::mail::run_outbox(self.state.clone()),
            ),
        ];
        let metrics = self.metrics.map(|(listener, handle)| {
            tokio::spawn(crate::metrics::serve(
                listener,
                handle,
                self.state.clone(),
                stopping.clone(),
            ))
        });
        let grace = self.state.config.shutdown_grace;
        let app = crate::web::router(self.state);
        let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            stop.await;
            let _ = stopping_tx.send(true);
            let _ = signalled_tx.send(());
        };
        let server = crate::serve::serve(self.listener, app, stop);
        let drain_deadline = async move {
            // Never fires unless a shutdown was asked for.
            if signalled.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            r = server => r,
            () = drain_deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still in flight after the grace period; stopping anyway");
                Ok(())
            }
        };
        for job in background.into_iter().chain(metrics) {
            // A job stops at its next await; one in the middle of a
            // database call lets that call finish on the blocking pool.
            if tokio::time::timeout(Duration::from_secs(5), job)
                .await
                .is_err()
            {
                tracing::warn!("a background job did not stop in time");
            }
        }
        tracing::info!("server stopped");
        result.context("serving HTTP")
    }
}

/// Runs a periodic background job until `stopping` turns true (the
/// server's shutdown), so that no new round starts once it has begun.
pub fn spawn_until_stopped(
    mut stopping: tokio::sync::watch::Receiver<bool>,
    job: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            () = job => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    })
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

/// SIGINT or SIGTERM. The handlers are installed here, before the first
/// request is served, not when the returned future is first polled: the
/// accept loop may serve a request before it polls its stop future, and a
/// SIGTERM sent after that answer would otherwise end the process at once
/// instead of stopping it gracefully.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("cannot listen for SIGTERM: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot listen for SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested; finishing requests in flight");
    })
}

/// Ctrl-C, where there are no Unix signals.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown requested; finishing requests in flight");
    })
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
