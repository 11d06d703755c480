//! A fake sync server that says whatever a test tells it to: canned JSON
//! answers by method and path, on a plain `std::net` listener. It plays an
//! honest server until the test makes it lie (a forged keyring, forged
//! entries, an old revocation list, a `409 list_ahead`), and records every
//! request so the test can see what the gate sent.

#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// Path with its query.
    pub path: String,
    /// The body, as text.
    pub body: String,
}

impl Request {
    /// `"GET /api/v1/keyring"`, without the query.
    pub fn route(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

#[derive(Default)]
struct State {
    /// By `"METHOD /path?query"` first, then `"METHOD /path"`.
    routes: HashMap<String, (u16, String)>,
    requests: Vec<Request>,
}

/// The fake server; stops when dropped.
pub struct FakeServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve(conn, &st);
                }
            }
        });
        Self {
            url: format!("http://{addr}"),
            state,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    /// Answers `route` (`"GET /api/v1/keyring"`, or with its query to
    /// answer one query only) with `status` and `body` as JSON.
    pub fn answer(&self, route: &str, status: u16, body: &impl serde::Serialize) {
        let json = serde_json::to_string(body).expect("serialises");
        self.state
            .lock()
            .expect("lock")
            .routes
            .insert(route.to_owned(), (status, json));
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("lock").requests.clone()
    }

    /// The routes requested (`"GET /api/v1/entries"`), in order.
    pub fn routes(&self) -> Vec<String> {
        self.requests().iter().map(Request::route).collect()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.state.lock().expect("lock").requests.clear();
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, json) = {
        let mut s = state.lock().expect("lock");
        let found = s
            .routes
            .get(&format!("{} {}", request.method, request.path))
            .or_else(|| s.routes.get(&request.route()))
            .cloned();
        s.requests.push(request);
        found.unwrap_or((
            404,
            r#"{"error":"not_found","message":"no such API route"}"#.to_owned(),
        ))
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Status",
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = conn.flush();
}
