//! The HTTP accept loop, with a shutdown that loses no request.
//!
//! `axum::serve` loses requests when a node behind a proxy stops: on its
//! shutdown signal it drops the listener, so every connection still in the
//! kernel's accept queue is reset, and it tells each open connection to
//! shut down, which closes at once a connection whose first request has
//! not been read yet (hyper counts it as idle). The proxy has by then sent
//! the request on that connection, and it must not replay a POST (a
//! payment), so the buyer gets a 502. This loop instead, once stopping:
//! accepts what is already queued and closes the listener (so the proxy
//! sends new connections to another node), lets each connection read and
//! answer its first request before it closes (keep-alive off), closes
//! connections idle between requests at once, and waits for everything in
//! flight, up to the grace period the caller sets.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a connection accepted just before the shutdown may take to send
/// its first request. A proxy sends it as soon as the connection is up; a
/// client that opened a connection it never uses is closed after this.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(2);

/// A client that sends its request headers slower than this is cut off, so
/// slow senders cannot hold connections (and a shutdown) open.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The most connections taken from the accept queue at shutdown: the queue
/// holds at most the listen backlog, so this only bounds a broken kernel.
const MAX_DRAINED: usize = 65_536;

/// Serves `router` on `listener` until `stop` completes, then shuts down as
/// the module says. Returns once every connection has ended; the caller
/// bounds that wait with its grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Turns true when the shutdown begins; every connection task holds a
    // receiver, so `closed()` on the sender tells when they have all ended.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => spawn_connection(tcp, peer, &router, &stopping_rx),
                Err(e) => accept_failed(&e).await,
            },
        }
    }
    // Take what the kernel has already queued, then close the listener: a
    // connection that completes after this point is refused, and a proxy
    // passes a refused request to another node.
    let std_listener = listener.into_std()?;
    let mut drained = 0usize;
    while drained < MAX_DRAINED {
        match std_listener.accept() {
            Ok((tcp, peer)) => {
                drained += 1;
                match tcp
                    .set_nonblocking(true)
                    .and_then(|()| TcpStream::from_std(tcp))
                {
                    Ok(tcp) => spawn_connection(tcp, peer, &router, &stopping_rx),
                    Err(e) => tracing::warn!(error = %e, "a queued connection could not be served"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::warn!(error = %e, "accepting queued connections at shutdown");
                break;
            }
        }
    }
    drop(std_listener);
    if drained > 0 {
        tracing::info!(
            connections = drained,
            "served the connections queued at shutdown"
        );
    }
    let _ = stopping_tx.send(true);
    drop(stopping_rx);
    stopping_tx.closed().await;
    Ok(())
}

/// Serves one connection on its own task.
fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: &Router,
    stopping: &watch::Receiver<bool>,
) {
    // No Nagle delay: a response is written at once, not held back for
    // the client's delayed ACK of the previous one.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
    let router = router.clone();
    let mut stopping = stopping.clone();
    // Turns true when the connection's first request has been read.
    let (started_tx, mut started_rx) = watch::channel(false);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        started_tx.send_replace(true);
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let Ok(response) = router.oneshot(req).await;
            Ok::<_, Infallible>(response)
        }
    });
    tokio::spawn(async move {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        tokio::pin!(conn);
        let stop_requested = async {
            if stopping.wait_for(|s| *s).await.is_err() {
                // The server ended without a shutdown: nothing to wait for.
                std::future::pending::<()>().await;
            }
            // A connection that has not yet sent its first request would
            // be closed as idle: give it the time to send it.
            let _ = tokio::time::timeout(FIRST_REQUEST_WAIT, started_rx.wait_for(|s| *s)).await;
        };
        tokio::select! {
            result = conn.as_mut() => log_connection_end(result),
            () = stop_requested => {
                // Answers the request in progress, if any, then closes.
                conn.as_mut().graceful_shutdown();
                log_connection_end(conn.await);
            }
        }
        // `stopping` is dropped here, which is what the shutdown waits for.
    });
}

fn log_connection_end(result: hyper::Result<()>) {
    if let Err(e) = result {
        // Clients hang up mid-request all the time; not worth a warning.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Errors of one incoming connection (it was reset before it was
/// accepted): the next accept works.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// After a failed accept: a connection error is skipped; anything else
/// (out of file descriptors) is logged and waited out, as it may pass.
async fn accept_failed(e: &std::io::Error) {
    if is_connection_error(e) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
