//! A graceful shutdown loses no request a proxy has already sent: the
//! connections open or queued when the shutdown begins get their answer,
//! and only then does the node refuse new ones (the proxy's cue to send
//! them to another node).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::spawn_app;

/// Sends one request on `tcp` and reads the answer to the end: the read
/// ends only because the server closes the connection after its answer, as
/// it is shutting down (a reset is an error here).
async fn request_on(mut tcp: TcpStream, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("request sent");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the answer comes before the timeout")
        .expect("the connection is not reset");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn connections_open_when_the_shutdown_begins_are_answered_then_new_ones_refused() {
    let mut app = spawn_app().await;
    let addr = format!("127.0.0.1:{}", app.port);
    // Many connections at once, some still in the kernel's accept queue
    // when the shutdown begins, none of which has sent its request yet
    // (the state a proxy's connection is in for a moment after connect).
    let mut open = Vec::new();
    for _ in 0..32 {
        open.push(TcpStream::connect(&addr).await.expect("connects"));
    }
    app.stop();
    // The shutdown is under way before any request is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answers = futures_join(open.into_iter().map(|tcp| request_on(tcp, "/healthz"))).await;
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 200"), "answered: {a:?}");
        assert!(a.ends_with("ok"), "the whole body: {a:?}");
    }
    // Then the node refuses new connections (bounded wait for the last
    // connection task to end).
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a stopped node still accepts connections");
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<String> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("request task"));
    }
    out
}
