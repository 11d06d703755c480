//! Gates that find each other by mDNS alone: three `jo-scanner gate`
//! processes, each in a network namespace of its own on a bridge the test
//! makes ([`Lan`]), with no peer list and no server within reach. A ticket
//! admitted at one is refused at the other two, with its gate's name,
//! within 2 s. Needs root (namespaces); skipped, with one line saying why,
//! where they cannot be made.

use std::time::{Duration, Instant};

use crate::common::gate::GateProc;
use crate::common::netns::Lan;
use crate::common::{Server, enrolled_scanner, scanner_ok};

/// The figure the gates are held to: admitted at one, refused at the
/// others within this.
const WITHIN: Duration = Duration::from_secs(2);

/// Time the gates get to find and reach each other (mDNS's first query
/// and announcement go out at start, then a handshake each).
const DISCOVERY: Duration = Duration::from_secs(15);

#[test]
fn gates_on_a_lan_find_each_other_by_mdns_alone_and_refuse_a_ticket_admitted_elsewhere() {
    // Made first, dropped last: the gates in its namespaces go before it.
    let lan = match Lan::new(3) {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!(
                "SKIPPED: mDNS gates test: no network namespaces here ({})",
                why.0
            );
            return;
        }
    };
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("LAN-MDNS");
    let names = ["Porte A", "Porte B", "Porte C"];
    let dirs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|g| data.path().join(format!("gate-{g}")))
        .collect();
    let mut devices = Vec::new();
    for (dir, name) in dirs.iter().zip(names) {
        devices.push(enrolled_scanner(&server, dir, name));
    }
    // Each gate's signed device list names all three.
    for dir in &dirs {
        scanner_ok(dir, &["sync"]);
    }
    let ticket = server.ticket(session, 0, "Awa Traoré").1;
    // Stopped, and out of reach anyway: it listened on the machine's
    // loopback, which no namespace of the LAN sees.
    server.stop();

    // No `--peer`: whatever they find, they find by mDNS. The same port on
    // each, as on a real LAN (one gate a host).
    let started = Instant::now();
    let mut gates: Vec<GateProc> = dirs
        .iter()
        .zip(&lan.hosts)
        .map(|(dir, ns)| {
            GateProc::start_in(
                ns,
                dir,
                &["--live", "--peer-listen", "0.0.0.0:47330", "--mdns"],
            )
            .0
        })
        .collect();
    for (g, name) in gates.iter_mut().zip(names) {
        let until = started + DISCOVERY;
        loop {
            let s = g.status();
            let peers = s["peers"].as_array().cloned().unwrap_or_default();
            let up: Vec<_> = peers.iter().filter(|p| p["connected"] == true).collect();
            if up.len() == 2 {
                // The other two, each reached on the LAN's addresses.
                for p in &up {
                    assert_ne!(p["gate"], name, "{s}");
                    assert!(devices.iter().any(|d| p["device_id"] == d.as_str()), "{s}");
                    let addr = p["addr"].as_str().unwrap_or_default();
                    assert!(
                        lan.addrs.iter().any(|a| addr.starts_with(&format!("{a}:"))),
                        "{name} reached a peer outside the LAN: {s}"
                    );
                }
                assert_eq!(s["learning"], "peers", "{s}");
                break;
            }
            assert!(
                Instant::now() < until,
                "{name}: {} of 2 peers found by mDNS within {DISCOVERY:?}: {s}",
                up.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    eprintln!(
        "mDNS: the three gates found and reached each other {} ms after they started",
        started.elapsed().as_millis()
    );

    // Admitted at A: refused at B and C as already used at "Porte A".
    let (a, others) = gates.split_first_mut().expect("three gates");
    let admitted = a.scan(&ticket);
    assert_eq!(admitted["verdict"], "admit", "{admitted}");
    let id = admitted["scan_id"].as_str().expect("scan id").to_owned();
    let t0 = admitted["at_ms"].as_u64().expect("at_ms");
    for (g, name) in others.iter_mut().zip(&names[1..]) {
        // Generous to wait for, strict to judge: the time is the gates'
        // own (one clock, the same machine), from the admission's line at
        // A to the entry installed at this gate, i.e. its refusal ready.
        let l = g
            .learned(&id, 4 * WITHIN)
            .unwrap_or_else(|| panic!("{name} did not learn A's admission"));
        assert_eq!(l["source"], "peer", "{l}");
        let ms = l["at_ms"].as_u64().expect("at_ms").saturating_sub(t0);
        eprintln!("mDNS: admitted at Porte A, refusal ready at {name} after {ms} ms");
        assert!(
            u128::from(ms) <= WITHIN.as_millis(),
            "{name}: {ms} ms, over {WITHIN:?}"
        );
        let v = g.scan(&ticket);
        assert_eq!(v["verdict"], "used", "{name}: {v}");
        assert_eq!(v["used_gate"], "Porte A", "{name}: {v}");
    }
    // Nothing refused on the way: no gate dialled itself at the address it
    // announced (it hears its own announcement), nor broke off a handshake.
    for (g, name) in gates.iter_mut().zip(names) {
        let s = g.status();
        assert_eq!(s["dropped"], 0, "{name}: {s}");
    }
    drop(gates);
    drop(lan);
}
