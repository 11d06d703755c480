//! A LAN of its own for a test: one network namespace per host, each with
//! one veth link to a bridge, the bridge in a namespace of its own too, so
//! that nothing the test sends can leave what it made (the machine's own
//! namespace gets no interface, address or route). Everything is removed
//! when the [`Lan`] is dropped, a failing or panicking test included.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The LAN's first three octets, a /24 (private: it exists only in the
/// test's namespaces, so it cannot clash with the machine's networks).
const PREFIX: [u8; 3] = [10, 47, 33];

/// Why there is no LAN here (not root, no `ip`, namespaces not allowed).
#[derive(Debug)]
pub struct Unavailable(pub String);

/// Hosts on one bridge. Dropped, the namespaces go, and with them the
/// bridge and the links.
pub struct Lan {
    /// The hosts' namespaces, for `ip netns exec`.
    pub hosts: Vec<String>,
    /// Their addresses, in the same order.
    pub addrs: Vec<Ipv4Addr>,
    /// Every namespace made so far, the bridge's first.
    made: Vec<String>,
    switch: String,
    bridge: String,
}

impl Lan {
    /// `n` hosts (at most 200) on one bridge with multicast on, each with
    /// an address on one /24, its link and loopback up, no default route.
    /// `Err` only when namespaces cannot be made here; any later step that
    /// fails is a test failure (what was made is removed first).
    pub fn new(n: usize) -> Result<Self, Unavailable> {
        assert!((1..=200).contains(&n), "{n} hosts");
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        // Names unique to this process (and to each LAN in it), so that
        // runs at the same time never share one. Interface names are at
        // most 15 bytes: the pid takes 7 at most.
        let tag = format!(
            "{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let switch = format!("jo-lan-{tag}-sw");
        let hosts: Vec<String> = (0..n).map(|i| format!("jo-lan-{tag}-h{i}")).collect();
        let addrs: Vec<Ipv4Addr> = (0..n)
            .map(|i| {
                let [a, b, c] = PREFIX;
                Ipv4Addr::new(a, b, c, 10 + i as u8)
            })
            .collect();
        let bridge = format!("jb{}", std::process::id());
        let mut lan = Self {
            hosts: hosts.clone(),
            addrs: addrs.clone(),
            made: Vec::new(),
            switch: switch.clone(),
            bridge: bridge.clone(),
        };
        // The first namespace tells whether this machine allows them.
        // Left over from a killed run whose pid this process now has: ours
        // to remove (the names carry the pid).
        for ns in std::iter::once(&switch).chain(&hosts) {
            let _ = ip(&["netns", "del", ns]);
        }
        ip(&["netns", "add", &switch]).map_err(Unavailable)?;
        lan.made.push(switch.clone());
        let must = |args: &[&str]| {
            if let Err(e) = ip(args) {
                panic!("setting up the test LAN: ip {}: {e}", args.join(" "));
            }
        };
        // Snooping off: with no querier on this LAN, a snooping bridge may
        // stop forwarding groups it has not seen joined; mDNS must reach
        // every port.
        must(&[
            "-n",
            &switch,
            "link",
            "add",
            "name",
            &bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        must(&["-n", &switch, "link", "set", &bridge, "up"]);
        for (i, (ns, addr)) in hosts.iter().zip(&addrs).enumerate() {
            must(&["netns", "add", ns]);
            lan.made.push(ns.clone());
            let port = format!("v{}h{i}", std::process::id());
            must(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ]);
            must(&["-n", &switch, "link", "set", &port, "master", &bridge]);
            must(&["-n", &switch, "link", "set", &port, "up"]);
            must(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            must(&["-n", ns, "link", "set", "eth0", "up"]);
            must(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Ok(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // The bridge, then the namespaces: a namespace removed takes its
        // interfaces with it, and a veth end gone takes its peer. A process
        // still running in one would keep it alive, unnamed, which is why
        // the gates are dropped (killed) before the LAN.
        let _ = ip(&["-n", &self.switch, "link", "del", &self.bridge]);
        for ns in self.made.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("test LAN: namespace {ns} not removed: {e}");
            }
        }
    }
}

/// Runs `ip ARGS…`; its error output when it fails or cannot run.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` cannot run ({e}); iproute2 is needed"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
