//! Gates on the LAN with the server out of reach: three `jo-scanner gate`
//! processes on 127.0.0.1 with the peer list tell each other their
//! admissions; an unenrolled key and hostile input are ignored; a gate cut
//! off and brought back learns what it missed; with the server back, every
//! scan reaches it once and a ticket admitted at two gates that could not
//! hear each other is flagged `double_admit`. After the handshake, a
//! frame altered or replayed closes the connection, logged once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jo_scanner::peers::Message;
use jo_scanner::peers::channel::{self as peer_channel, Ends, Ephemeral, Opener, Sealer};
use jo_server::db::sql::params;

use crate::common::gate::GateProc;
use crate::common::{Server, enrolled_scanner, scanner_ok};

/// The figure asked is 2 s; the bound is generous for a loaded test machine
/// (the measured figures come from `scripts/bench-gates.sh`).
const BOUND: Duration = Duration::from_secs(4);

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn read_message(s: &mut TcpStream) -> Option<Message> {
    let body = read_raw(s)?;
    serde_json::from_slice(&body).ok()
}

/// What follows one frame's length.
fn read_raw(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A peer connection after the real handshake, with its frame keys.
struct PeerConn {
    s: TcpStream,
    sealer: Sealer,
    opener: Opener,
}

impl PeerConn {
    /// Sends one message, tagged as the gate expects.
    fn send(&mut self, m: &Message) {
        let f = self.sealed(m);
        self.s.write_all(&f).expect("writes");
    }

    /// One message's tagged frame, not sent.
    fn sealed(&mut self, m: &Message) -> Vec<u8> {
        self.sealer.seal(&serde_json::to_vec(m).expect("json"))
    }

    /// The next message from the gate, its tag checked.
    fn next(&mut self) -> Option<Message> {
        let raw = read_raw(&mut self.s)?;
        let body = self.opener.open(&raw).expect("the gate's frame is tagged");
        serde_json::from_slice(body).ok()
    }

    /// Whether the gate closes the connection within 5 s (reading, and
    /// checking, whatever it sent before).
    fn closed(&mut self) -> bool {
        self.s
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if read_raw(&mut self.s).is_none() {
                return true;
            }
        }
        false
    }
}

/// Connects to the gate at `at` as the enrolled gate whose state is `dir`
/// (its process stopped), through the real handshake.
fn connect_as(dir: &std::path::Path, at: &str) -> PeerConn {
    use ed25519_dalek::{Signer as _, SigningKey};
    use jo_shared::trust::{PeerHandshake, PeerRole};
    let store = jo_scanner::store::Store::open(dir).expect("store");
    let e = store.enrollment().expect("reads").expect("enrolled");
    let list = store.device_list().expect("reads").expect("device list");
    let key = SigningKey::from_bytes(&e.secret_key);
    let mut s = TcpStream::connect(at).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mine = [7u8; 32];
    let eph = Ephemeral::new().expect("random");
    let my_eph = eph.public;
    let hello = Message::Hello {
        version: jo_scanner::peers::PROTOCOL_VERSION,
        device_id: e.device_id.clone(),
        gate: "Porte C".into(),
        nonce: hex::encode(mine),
        ephemeral: hex::encode(my_eph),
    };
    s.write_all(&frame(&serde_json::to_vec(&hello).expect("json")))
        .expect("writes");
    let Some(Message::Welcome {
        device_id,
        nonce,
        ephemeral,
        ..
    }) = read_message(&mut s)
    else {
        panic!("no welcome");
    };
    let mut theirs = [0u8; 32];
    hex::decode_to_slice(&nonce, &mut theirs).expect("nonce");
    let mut their_eph = [0u8; 32];
    hex::decode_to_slice(&ephemeral, &mut their_eph).expect("ephemeral");
    let hs = PeerHandshake {
        dialer_id: &e.device_id,
        listener_id: &device_id,
        dialer_nonce: &mine,
        listener_nonce: &theirs,
        dialer_ephemeral: &my_eph,
        listener_ephemeral: &their_eph,
    };
    let proof = Message::Proof {
        signature: hex::encode(key.sign(&hs.message(PeerRole::Dialer)).to_bytes()),
    };
    s.write_all(&frame(&serde_json::to_vec(&proof).expect("json")))
        .expect("writes");
    let ends = Ends {
        dialer: true,
        dialer_id: &e.device_id,
        listener_id: &device_id,
        dialer_key: &key.verifying_key().to_bytes(),
        listener_key: &list.active_key(&device_id).expect("listener is live"),
        dialer_nonce: &mine,
        listener_nonce: &theirs,
    };
    let (sealer, opener) = peer_channel::derive(eph, &their_eph, &ends).expect("keys");
    PeerConn { s, sealer, opener }
}

/// Whether the peer at `at` closed the connection without a welcome.
fn closed_without_welcome(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    !String::from_utf8_lossy(&buf).contains("welcome")
}

#[test]
fn gates_on_the_lan_refuse_a_ticket_admitted_elsewhere_while_the_server_is_out_of_reach() {
    let data = tempfile::tempdir().expect("tempdir");
    let server_dir = data.path().join("server");
    let server = Server::start(&server_dir, 0);
    let port = server.port;
    let session = server.session_on_now("LAN-THREE-GATES");
    let dirs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|g| data.path().join(format!("gate-{g}")))
        .collect();
    for (dir, name) in dirs.iter().zip(["Porte A", "Porte B", "Porte C"]) {
        enrolled_scanner(&server, dir, name);
    }
    // Each gate's signed device list names all three.
    for dir in &dirs {
        scanner_ok(dir, &["sync"]);
    }
    let tickets: Vec<String> = (0..4)
        .map(|i| server.ticket(session, i, "Awa Traoré").1)
        .collect();
    server.stop();

    let arg = |d: &std::path::Path| d.to_path_buf();
    let (mut a, at_a) =
        GateProc::start(&arg(&dirs[0]), &["--live", "--peer-listen", "127.0.0.1:0"]);
    let (mut b, at_b) = GateProc::start(
        &arg(&dirs[1]),
        &["--live", "--peer-listen", "127.0.0.1:0", "--peer", &at_a],
    );
    let (mut c, _) = GateProc::start(
        &arg(&dirs[2]),
        &[
            "--live",
            "--peer-listen",
            "127.0.0.1:0",
            "--peer",
            &at_a,
            "--peer",
            &at_b,
        ],
    );
    a.await_peers(2);
    b.await_peers(2);
    c.await_peers(2);
    let s = b.status();
    assert_eq!(s["learning"], "peers", "{s}");

    // Admitted at A: refused at B and C, with A's name, within the bound.
    let admitted = a.scan(&tickets[0]);
    assert_eq!(admitted["verdict"], "admit", "{admitted}");
    let id = admitted["scan_id"].as_str().expect("scan id").to_owned();
    let t0 = admitted["at_ms"].as_u64().expect("at_ms");
    for g in [&mut b, &mut c] {
        let l = g.learned(&id, BOUND).expect("learned from a peer");
        assert_eq!(l["source"], "peer", "{l}");
        let ms = l["at_ms"].as_u64().expect("at_ms").saturating_sub(t0);
        assert!(ms < BOUND.as_millis() as u64, "{ms} ms");
        let v = g.scan(&tickets[0]);
        assert_eq!(v["verdict"], "used", "{v}");
        assert_eq!(v["used_gate"], "Porte A", "{v}");
    }

    // A valid-looking key that the device list does not name: refused at
    // the handshake, before anything is signed for it.
    let mut stranger = TcpStream::connect(&at_a).expect("connects");
    let hello = Message::Hello {
        version: jo_scanner::peers::PROTOCOL_VERSION,
        device_id: "dev-not-enrolled".into(),
        gate: "Porte X".into(),
        nonce: "ab".repeat(32),
        ephemeral: "cd".repeat(32),
    };
    stranger
        .write_all(&frame(&serde_json::to_vec(&hello).expect("json")))
        .expect("writes");
    assert!(closed_without_welcome(&mut stranger));
    // Garbage, a huge frame and a flood of pings before any handshake: each
    // connection is dropped, and the gate goes on deciding at once.
    for bad in [
        b"\x00\x00\x00\x05hello".to_vec(),
        (u32::MAX).to_be_bytes().to_vec(),
        frame(br#"{"type":"ping"}"#).repeat(5000),
    ] {
        let mut s = TcpStream::connect(&at_b).expect("connects");
        let _ = s.write_all(&bad);
        assert!(closed_without_welcome(&mut s));
    }
    let quick = Instant::now();
    let v = b.scan(&tickets[3]);
    assert_eq!(v["verdict"], "admit", "{v}");
    assert!(quick.elapsed() < Duration::from_secs(2));
    for g in [&mut a, &mut b] {
        let s = g.status();
        let names: Vec<_> = s["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .map(|p| p["gate"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(!names.iter().any(|n| n == "Porte X"), "{s}");
        assert_eq!(names.len(), 2, "{s}");
    }

    // C cut off: A's next admission reaches B, not C; the same ticket is
    // admitted at C too (it cannot know).
    c.send("!cut");
    c.wait(|v| v["peers_cut"] == true, Duration::from_secs(5));
    let second = a.scan(&tickets[1]);
    assert_eq!(second["verdict"], "admit");
    let id2 = second["scan_id"].as_str().expect("scan id").to_owned();
    b.learned(&id2, BOUND).expect("B learns");
    let dup_at_c = c.scan(&tickets[1]);
    assert_eq!(
        dup_at_c["verdict"], "admit",
        "C could not hear A: {dup_at_c}"
    );
    assert!(c.learned(&id2, Duration::from_secs(1)).is_none());
    // Healed: C learns what it missed, and A learns C's admission.
    c.send("!heal");
    c.learned(&id2, Duration::from_secs(10))
        .expect("C learns after the partition");
    let dup_id = dup_at_c["scan_id"].as_str().expect("scan id").to_owned();
    a.learned(&dup_id, Duration::from_secs(10))
        .expect("A learns C's admission");
    let v = c.scan(&tickets[2]);
    assert_eq!(v["verdict"], "admit");

    // The server back: every gate's log reaches it, each scan once.
    let server = Server::start(&server_dir, port);
    let expected = 7; // A: 2 admits; B: 1 used, 1 admit; C: 1 used, 2 admits.
    let until = Instant::now() + Duration::from_secs(60);
    while server.stored_scans().len() < expected && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let stored = server.stored_scans();
    assert_eq!(stored.len(), expected, "{stored:?}");
    let mut ids: Vec<_> = stored.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), expected);
    // The ticket admitted at A and at C while they could not hear each
    // other is flagged for the admins.
    let kinds: Vec<String> = server
        .db()
        .with(|c| {
            c.query_map(
                "SELECT kind FROM scan_conflicts WHERE scan_id = ?1 OR scan_id = ?2",
                params![id2.as_str(), dup_id.as_str()],
                |r| r.get(0),
            )
        })
        .expect("reads");
    assert!(kinds.iter().any(|k| k == "double_admit"), "{kinds:?}");

    // An enrolled peer (C's identity, its process stopped) relaying an
    // admission signed by an unknown key: dropped, the connection kept;
    // then garbage after the handshake: the connection is closed.
    drop(c);
    // A sees the connection of the stopped process close first.
    std::thread::sleep(Duration::from_millis(500));
    let mut conn = connect_as(&dirs[2], &at_a);
    let forged = jo_shared::api::RemoteEntry {
        scan_id: jo_shared::api::ScanId::generate().expect("id"),
        ticket_id: jo_shared::ticket::TicketId([9; 10]),
        session_id: session,
        device_id: "dev-not-enrolled".into(),
        gate: "Porte X".into(),
        scanned_at: crate::common::unix_now(),
        signature: "ab".repeat(64),
    };
    let forged_id = forged.scan_id.to_string();
    conn.send(&Message::Entries {
        entries: vec![forged],
    });
    assert!(a.learned(&forged_id, Duration::from_secs(2)).is_none());
    let before = a.status()["dropped"].as_u64().expect("dropped");
    let garbage = conn.sealer.seal(b"{not json");
    conn.s.write_all(&garbage).expect("writes");
    assert!(conn.closed());
    let after = a.status()["dropped"].as_u64().expect("dropped");
    assert!(after > before, "{before} -> {after}");
    let v = a.scan(&tickets[2]);
    assert_eq!(v["verdict"], "used", "A learned C's admission of it: {v}");
}

#[test]
fn a_peer_frame_altered_or_replayed_after_the_handshake_closes_the_connection() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("LAN-FRAME-TAGS");
    let dirs: Vec<_> = ["a", "b"]
        .iter()
        .map(|g| data.path().join(format!("gate-{g}")))
        .collect();
    for (dir, name) in dirs.iter().zip(["Porte A", "Porte B"]) {
        enrolled_scanner(&server, dir, name);
    }
    for dir in &dirs {
        scanner_ok(dir, &["sync"]);
    }
    let ticket = server.ticket(session, 0, "Awa Traoré").1;
    server.stop();
    let (mut a, at_a) = GateProc::start(&dirs[0], &["--live", "--peer-listen", "127.0.0.1:0"]);

    // Normal exchange, as B (its process not running): A's frames carry
    // right tags, B's tagged pings keep the connection, and A's admission
    // reaches B.
    let mut conn = connect_as(&dirs[1], &at_a);
    let admitted = a.scan(&ticket);
    assert_eq!(admitted["verdict"], "admit", "{admitted}");
    let id = admitted["scan_id"].as_str().expect("scan id").to_owned();
    let until = Instant::now() + BOUND;
    let mut told = false;
    while !told && Instant::now() < until {
        conn.send(&Message::Ping);
        match conn.next() {
            Some(Message::Entries { entries }) => {
                told = entries.iter().any(|e| e.scan_id.to_string() == id);
            }
            Some(_) => {}
            None => panic!("A closed a connection whose frames were right"),
        }
    }
    assert!(told, "A's admission reached B");
    let recorded = conn.sealed(&Message::Ping);
    drop(conn);
    let s = a.status();
    assert_eq!(
        s["dropped"],
        0,
        "nothing refused so far: {s} {:?}",
        a.log_lines("peer")
    );

    // An altered frame: one byte of its body flipped.
    let mut conn = connect_as(&dirs[1], &at_a);
    let mut altered = conn.sealed(&Message::Ping);
    altered[6] ^= 0x20;
    conn.s.write_all(&altered).expect("writes");
    assert!(conn.closed(), "an altered frame closes the connection");

    // A replayed frame: the same tagged ping twice in one connection.
    let mut conn = connect_as(&dirs[1], &at_a);
    let ping = conn.sealed(&Message::Ping);
    conn.s.write_all(&ping).expect("writes");
    conn.s.write_all(&ping).expect("writes");
    assert!(conn.closed(), "a replayed frame closes the connection");

    // A frame recorded in an earlier connection, replayed in a new one.
    let mut conn = connect_as(&dirs[1], &at_a);
    conn.s.write_all(&recorded).expect("writes");
    assert!(conn.closed(), "a frame from another connection is refused");

    // An untagged frame after the handshake (the old protocol).
    let mut conn = connect_as(&dirs[1], &at_a);
    conn.s
        .write_all(&frame(br#"{"type":"ping"}"#))
        .expect("writes");
    assert!(conn.closed(), "an untagged frame closes the connection");

    let s = a.status();
    assert_eq!(s["dropped"], 4, "each refused frame counted: {s}");
    // Logged once, however often it recurs.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a.logged("frame not authenticated"), 1);
    // And the gate still decides at once.
    let quick = Instant::now();
    let v = a.scan(&ticket);
    assert!(v["verdict"].is_string(), "{v}");
    assert!(quick.elapsed() < Duration::from_secs(2));
}
