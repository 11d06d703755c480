//! Live gates against a real `jo-server`: an admission goes up as soon as
//! it is logged and reaches the other gate through its long-poll on the
//! entries feed, without waiting for the periodic sync.

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use jo_scanner::gate::{Gate, Synced};
use jo_scanner::store::Store;
use jo_scanner::sync::live;
use jo_shared::verify::Verdict;

use crate::common::{Server, enrolled_scanner, unix_now};

/// Generous against a loaded test machine; the figure itself comes from
/// `scripts/bench-gates.sh`.
const BOUND: Duration = Duration::from_secs(3);

#[test]
fn a_ticket_admitted_at_gate_a_is_refused_at_gate_b_within_a_second_with_a_gate_name() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("LIVE-TWO-GATES");
    let a_dir = data.path().join("gate-a");
    let b_dir = data.path().join("gate-b");
    enrolled_scanner(&server, &a_dir, "Porte A");
    enrolled_scanner(&server, &b_dir, "Porte B");
    // Gate A's device list predates gate B's enrolment: A syncs again so
    // that it knows B (as its periodic sync would).
    crate::common::scanner_ok(&a_dir, &["sync"]);
    let (_, qr) = server.ticket(session, 0, "Élodie Martin");

    let mut a = Gate::load(Store::open(&a_dir).expect("store")).expect("gate");
    let mut b = Gate::load(Store::open(&b_dir).expect("store")).expect("gate");
    let _live_a = live::spawn(&a_dir, |_, _| {}).expect("live threads");
    let (tx, rx) = channel();
    let live_b = live::spawn(&b_dir, move |_, entries| {
        let _ = tx.send(entries);
    })
    .expect("live threads");
    // B's long-poll is open before A admits (the server answered once).
    let open = Instant::now();
    while live_b
        .status
        .last_heard
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            open.elapsed() < Duration::from_secs(20),
            "no long-poll answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let admitted_at = Instant::now();
    let first = a.scan(&qr, unix_now()).expect("logged");
    assert!(matches!(first.verdict, Verdict::Admit { .. }), "{first:?}");
    let entries = rx
        .recv_timeout(BOUND)
        .expect("gate B learns the entry live");
    let latency = admitted_at.elapsed();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].gate, "Porte A");
    let store = b.store();
    let synced = Synced {
        keyring: store.keyring().expect("keyring"),
        sessions: store.sessions().expect("sessions"),
        revocations: None,
        entries,
    };
    b.install(synced);
    let second = b.scan(&qr, unix_now()).expect("logged");
    match &second.verdict {
        Verdict::AlreadyUsed { prior, .. } => assert_eq!(prior.gate, "Porte A"),
        other => panic!("gate B must refuse the ticket as used: {other:?}"),
    }
    assert!(latency < BOUND, "{latency:?}");

    // Both scans reached the server, each once, without a periodic sync.
    let until = Instant::now() + BOUND;
    while server.stored_scans().len() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored = server.stored_scans();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[1].2, "used");
}
