//! Gates of one venue talking over the LAN, for when the server is out of
//! reach (and beside it when it is not): each gate tells the others its
//! admissions and what it learned, so that a ticket admitted at one gate is
//! refused at the others within a second or two.
//!
//! What is trusted, and why:
//! - Only enrolled devices take part. A connection starts with a mutual
//!   handshake: each side sends a fresh 32-byte nonce and an ephemeral
//!   X25519 key, and signs, with its device key, both ids, both nonces and
//!   both ephemeral keys ([`jo_shared::trust::PeerHandshake`]); each checks the other's
//!   proof with the key the server-signed device list (synced, verified with
//!   the pinned keyring) gives for that device, which must be live. A
//!   laptop that is not enrolled, or a revoked gate, cannot finish it; a
//!   recorded handshake is useless in another connection (the nonces).
//! - Every frame after the handshake is authenticated, both ways: the
//!   handshake also carries an ephemeral X25519 key from each end, signed
//!   in the proofs, and the frame keys come from that exchange
//!   ([`channel`]); each frame carries an HMAC over its per-direction
//!   counter, so a frame altered, replayed, reordered or dropped (or sent
//!   by anyone but the peer that proved itself) closes the connection.
//! - Every admission is believed on its own device's signature, checked
//!   against the same list, never on the word of the peer that relays it:
//!   a peer can pass on another gate's admission, not forge one.
//! - What is learned is a grow-only set merged by scan id, kept apart from
//!   the gate's own log ([`Store::add_peer_entries`], capped): no peer can
//!   delete or rewrite an entry, and the log that goes up to the server is
//!   the gate's own, untouched.
//!
//! The protocol: TCP, frames of a 4-byte big-endian length and a JSON
//! [`Message`] (after the handshake, followed by its [`channel::TAG_LEN`]-byte
//! tag, counted in the length). The dialer sends `hello`, the listener
//! answers `welcome` (with its proof), the dialer sends `proof`; then each side sends
//! everything it knows (`entries`, in chunks), then what it learns as it
//! learns it, and a `ping` every second. Anything else — garbage, a frame
//! over [`MAX_FRAME`], more than [`MAX_FRAMES_PER_SEC`] frames a second, a
//! failed handshake, a frame whose tag is wrong — closes the connection with one log line (per peer
//! and kind); an admission signed by an unknown key is dropped, logged once.
//! Every thread here is its own: the scanning thread is only ever handed
//! new entries through the callback.
//!
//! Peers are found with mDNS/DNS-SD ([`SERVICE_TYPE`], the `mdns-sd`
//! crate) and from a configured list (`host:port`) for networks that block
//! multicast.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use jo_shared::api::{RemoteEntry, SignedDeviceList};
use jo_shared::trust::{PeerHandshake, PeerRole, verify_peer_proof};
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::sync::{check_entry, live::LiveStatus};

pub mod channel;

use channel::{Ends, Ephemeral, Opener, Sealer, TAG_LEN};

/// The DNS-SD service type gates announce and browse.
pub const SERVICE_TYPE: &str = "_jo-gate._tcp.local.";

/// Version of the peer protocol (2: ephemeral keys in the handshake, and
/// every later frame tagged).
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest frame accepted, bytes (500 entries are about 150 KB).
pub const MAX_FRAME: usize = 256 * 1024;

/// Largest frame before the handshake is done.
const MAX_HANDSHAKE_FRAME: usize = 4 * 1024;

/// Most entries sent in one frame.
pub const MAX_ENTRIES_PER_FRAME: usize = 500;

/// Most frames a peer may send per second, on average (bursts up to
/// [`FRAME_BURST`]); past it, the connection is closed.
pub const MAX_FRAMES_PER_SEC: f64 = 200.0;

/// Burst of frames allowed above the rate (the exchange at connection).
const FRAME_BURST: f64 = 2000.0;

/// Most peer connections at once (both directions).
pub const MAX_SESSIONS: usize = 128;

/// Most entries learned from peers kept in the store.
pub const DEFAULT_ENTRY_CAP: u64 = 200_000;

/// Most peers shown (and addresses dialled).
pub const MAX_PEERS: usize = 256;

/// Time a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer silent this long (it pings every second) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Time one write may take before the peer counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// Ping interval.
const PING_EVERY: Duration = Duration::from_secs(1);

/// How often this gate's store is read for what to tell its peers.
const STORE_POLL: Duration = Duration::from_millis(20);

/// Wait between attempts to reach a peer.
const REDIAL: Duration = Duration::from_millis(500);

/// How often the device list and gate name are read again from the store
/// (the sync thread replaces them).
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// A peer heard within this long counts for "learns from peers".
const HEARD_RECENTLY_SECS: i64 = 5;

/// One frame of the peer protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Dialer → listener: who it says it is, and its fresh nonce (hex).
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u32,
        /// Its device id.
        device_id: String,
        /// Its gate's name (shown only).
        gate: String,
        /// 32 random bytes, hex.
        nonce: String,
        /// Its ephemeral X25519 public key for this connection, hex.
        ephemeral: String,
    },
    /// Listener → dialer: who it is, its nonce, and its proof.
    Welcome {
        /// Its device id.
        device_id: String,
        /// Its gate's name (shown only).
        gate: String,
        /// 32 random bytes, hex.
        nonce: String,
        /// Its ephemeral X25519 public key for this connection, hex.
        ephemeral: String,
        /// Its device key's signature over the handshake message, hex.
        signature: String,
    },
    /// Dialer → listener: the dialer's proof.
    Proof {
        /// Its device key's signature over the handshake message, hex.
        signature: String,
    },
    /// Signed admissions (each checked on its own device's signature).
    Entries {
        /// At most [`MAX_ENTRIES_PER_FRAME`].
        entries: Vec<RemoteEntry>,
    },
    /// Still there.
    Ping,
}

/// How this gate takes part.
#[derive(Debug, Clone, Default)]
pub struct PeerConfig {
    /// Address to accept peers on (`None`: dial only).
    pub listen: Option<SocketAddr>,
    /// Peers to dial, `host:port` (for networks without multicast).
    pub peers: Vec<String>,
    /// Announce and browse with mDNS/DNS-SD.
    pub mdns: bool,
    /// Most peer-learned entries kept (0: [`DEFAULT_ENTRY_CAP`]).
    pub entry_cap: u64,
}

/// A peer as the sync panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSeen {
    /// Its device id.
    pub device_id: String,
    /// Its gate's name.
    pub gate: String,
    /// Where it was reached.
    pub addr: String,
    /// When it was last heard (Unix seconds).
    pub last_heard: i64,
    /// Whether a connection is open.
    pub connected: bool,
}

/// Where the gate learns other gates' admissions from right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learning {
    /// From the server, live (a long-poll is open).
    Live,
    /// From gates on the LAN (the server is out of reach).
    Peers,
    /// From nobody: the gate decides alone.
    Alone,
}

/// What the peer and live threads tell the sync panel.
#[derive(Debug, Default)]
pub struct Board {
    peers: Mutex<BTreeMap<String, PeerSeen>>,
    live: Mutex<Option<Arc<LiveStatus>>>,
    learned: AtomicU64,
    dropped: AtomicU64,
}

impl Board {
    /// The live link's status, for [`Board::learning`].
    pub fn set_live(&self, status: Arc<LiveStatus>) {
        if let Ok(mut l) = self.live.lock() {
            *l = Some(status);
        }
    }

    /// The peers seen, by device id.
    pub fn peers(&self) -> Vec<PeerSeen> {
        self.peers
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Entries learned from peers since start.
    pub fn learned(&self) -> u64 {
        self.learned.load(Ordering::Relaxed)
    }

    /// Frames or entries dropped (bad input) since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Where the gate learns from at `now` (Unix seconds).
    pub fn learning(&self, now: i64) -> Learning {
        let live = self
            .live
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .is_some_and(|l| l.connected.load(Ordering::Relaxed));
        if live {
            return Learning::Live;
        }
        let heard = self
            .peers()
            .iter()
            .any(|p| p.connected && now.saturating_sub(p.last_heard) <= HEARD_RECENTLY_SECS);
        if heard {
            Learning::Peers
        } else {
            Learning::Alone
        }
    }

    /// Notes that a peer was heard (or that its connection closed).
    pub(crate) fn heard(&self, device_id: &str, gate: &str, addr: &str, connected: bool) {
        let Ok(mut peers) = self.peers.lock() else {
            return;
        };
        if !peers.contains_key(device_id) && peers.len() >= MAX_PEERS {
            return;
        }
        let p = peers
            .entry(device_id.to_owned())
            .or_insert_with(|| PeerSeen {
                device_id: device_id.to_owned(),
                gate: String::new(),
                addr: String::new(),
                last_heard: 0,
                connected,
            });
        gate.clone_into(&mut p.gate);
        addr.clone_into(&mut p.addr);
        p.last_heard = now_secs();
        p.connected = connected;
    }
}

/// The process's board (one gate per process), read by the sync panel.
pub fn board() -> &'static Board {
    static BOARD: OnceLock<Board> = OnceLock::new();
    BOARD.get_or_init(Board::default)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why the peer node could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The device is not enrolled: it has no key to prove itself with.
    #[error("peers: this device is not enrolled (no device key to prove itself with)")]
    NotEnrolled,
    /// The store failed.
    #[error("peers: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The listening socket or a thread could not be made.
    #[error("peers: {0}")]
    Io(#[from] std::io::Error),
}

/// The running peer node; dropped, it stops (its threads end within a
/// second or so).
pub struct Peers {
    hub: Arc<Hub>,
    /// The address it accepts peers on, if any (the port chosen for `:0`).
    pub listening: Option<SocketAddr>,
    _mdns: Option<mdns_sd::ServiceDaemon>,
}

impl Peers {
    /// Adds a peer to dial (`host:port`), e.g. one found by mDNS.
    pub fn add_peer(&self, target: &str) {
        self.hub.add_target(target);
    }

    /// Stops dialling `target` and closes every connection to or from
    /// that address.
    pub fn forget_peer(&self, target: &str) {
        self.hub.remove_target(target);
    }

    /// Cuts this gate off its peers (`true`: every connection closed,
    /// none made or accepted) or brings it back; back, it exchanges
    /// everything known again, so it learns what it missed.
    pub fn set_cut_off(&self, cut: bool) {
        self.hub.cut.store(cut, Ordering::Relaxed);
        if cut {
            for s in self.hub.sessions() {
                s.close();
            }
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.hub.stop.store(true, Ordering::Relaxed);
        for s in self.hub.sessions() {
            s.close();
        }
        if let Some(m) = &self._mdns {
            let _ = m.shutdown();
        }
    }
}

struct Me {
    device_id: String,
    gate: String,
    key: SigningKey,
}

struct Session {
    id: u64,
    peer: String,
    addr: String,
    dialer: String,
    /// The stream and the sealer together: frames go out in the order
    /// their counters were taken.
    writer: Mutex<(TcpStream, Sealer)>,
    alive: AtomicBool,
}

impl Session {
    /// Sends one message body (JSON), tagged.
    fn send(&self, body: &[u8]) -> bool {
        if !self.alive.load(Ordering::Relaxed) {
            return false;
        }
        let ok = self
            .writer
            .lock()
            .map(|mut w| {
                let (stream, sealer) = &mut *w;
                let frame = sealer.seal(body);
                stream.write_all(&frame).is_ok()
            })
            .unwrap_or(false);
        if !ok {
            self.close();
        }
        ok
    }

    fn close(&self) {
        self.alive.store(false, Ordering::Relaxed);
        if let Ok(w) = self.writer.lock() {
            let _ = w.0.shutdown(Shutdown::Both);
        }
    }
}

struct Hub {
    me: Mutex<Me>,
    devices: Mutex<Option<SignedDeviceList>>,
    store: Mutex<Store>,
    sessions: Mutex<Vec<Arc<Session>>>,
    targets: Mutex<Vec<String>>,
    dialing: Mutex<HashSet<String>>,
    /// Target → the device found there (self included, not dialled again).
    found_at: Mutex<HashMap<String, String>>,
    logged: Mutex<HashSet<String>>,
    connections: AtomicUsize,
    next_id: AtomicU64,
    entry_cap: u64,
    stop: AtomicBool,
    cut: AtomicBool,
    learned: Box<dyn Fn(Vec<RemoteEntry>) + Send + Sync>,
}

impl Hub {
    /// One log line per peer and kind of trouble, however often it recurs.
    fn log_once(&self, peer: &str, kind: &str, detail: &str) {
        board().dropped.fetch_add(1, Ordering::Relaxed);
        let Ok(mut logged) = self.logged.lock() else {
            return;
        };
        if logged.len() >= 4096 {
            return;
        }
        if logged.insert(format!("{peer}\0{kind}")) {
            eprintln!("jo-scanner: peer {peer}: {kind}: {detail} (further ones not logged)");
        }
    }

    fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|x| x.alive.load(Ordering::Relaxed))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn add_target(&self, target: &str) {
        let t = target.trim();
        if t.is_empty() || t.len() > 300 {
            return;
        }
        if let Ok(mut ts) = self.targets.lock()
            && !ts.iter().any(|x| x == t)
            && ts.len() < MAX_PEERS
        {
            ts.push(t.to_owned());
        }
    }

    fn remove_target(&self, target: &str) {
        if let Ok(mut ts) = self.targets.lock() {
            ts.retain(|x| x != target);
        }
        let device = self
            .found_at
            .lock()
            .ok()
            .and_then(|f| f.get(target).cloned());
        for s in self.sessions() {
            if s.addr == target || device.as_deref() == Some(s.peer.as_str()) {
                s.close();
            }
        }
    }

    fn key_of(&self, device_id: &str) -> Option<[u8; 32]> {
        self.devices.lock().ok()?.as_ref()?.active_key(device_id)
    }

    /// Sends one message body to every peer (each tags it with its own key).
    fn broadcast(&self, body: &[u8]) {
        for s in self.sessions() {
            s.send(body);
        }
    }

    /// Registers a session after its handshake, keeping one connection per
    /// pair of gates: the one dialled by the smaller device id (both ends
    /// decide alike).
    fn register(&self, session: Arc<Session>) -> bool {
        let Ok(mut all) = self.sessions.lock() else {
            return false;
        };
        all.retain(|s| s.alive.load(Ordering::Relaxed));
        if let Some(other) = all.iter().find(|s| s.peer == session.peer).cloned() {
            let keep_new = session.dialer < other.dialer;
            if keep_new {
                other.close();
                all.retain(|s| s.id != other.id);
            } else {
                return false;
            }
        }
        all.push(session);
        true
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut all) = self.sessions.lock() {
            all.retain(|s| s.id != id);
        }
    }

    /// Checks and stores what a peer sent; hands the new ones to the gate.
    fn take_entries(&self, from: &str, entries: Vec<RemoteEntry>) {
        let own = self
            .me
            .lock()
            .map(|m| m.device_id.clone())
            .unwrap_or_default();
        let mut believed = Vec::with_capacity(entries.len());
        {
            let Ok(devices) = self.devices.lock() else {
                return;
            };
            let Some(devices) = devices.as_ref() else {
                return;
            };
            for e in entries {
                if e.device_id == own {
                    continue;
                }
                match check_entry(devices, &e) {
                    Ok(()) => believed.push(e),
                    Err(why) => self.log_once(from, "entry not believed", &why),
                }
            }
        }
        if believed.is_empty() {
            return;
        }
        let new = match self.store.lock() {
            Ok(mut store) => match store.add_peer_entries(&believed, self.entry_cap) {
                Ok(new) => new,
                Err(e) => {
                    self.log_once("store", "entries not stored", &e.to_string());
                    return;
                }
            },
            Err(_) => return,
        };
        if !new.is_empty() {
            board()
                .learned
                .fetch_add(new.len() as u64, Ordering::Relaxed);
            (self.learned)(new);
        }
    }
}

/// A message's body (JSON), to be tagged by a session.
fn body_of(m: &Message) -> Vec<u8> {
    serde_json::to_vec(m).unwrap_or_default()
}

/// An untagged frame: the handshake's only.
fn frame_of(m: &Message) -> Vec<u8> {
    let body = body_of(m);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Why a frame was not read.
enum ReadError {
    /// The connection ended or timed out.
    Gone,
    /// Too large.
    Huge(usize),
    /// Not a message.
    Garbage(String),
}

/// What follows one frame's length, at most `max` bytes.
fn read_raw(stream: &mut TcpStream, max: usize) -> Result<Vec<u8>, ReadError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|_| ReadError::Gone)?;
    let n = u32::from_be_bytes(len) as usize;
    if n > max {
        return Err(ReadError::Huge(n));
    }
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).map_err(|_| ReadError::Gone)?;
    Ok(body)
}

/// An untagged frame (the handshake's).
fn read_frame(stream: &mut TcpStream, max: usize) -> Result<Message, ReadError> {
    let body = read_raw(stream, max)?;
    serde_json::from_slice(&body).map_err(|e| ReadError::Garbage(e.to_string()))
}

fn nonce() -> Option<[u8; 32]> {
    let mut n = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut n).ok()?;
    Some(n)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Starts the peer node on the store in `dir`. `learned` is called, from
/// a peer thread, with each batch of entries new to this gate (checked and
/// stored). The device must be enrolled and hold a verified device list
/// (synced at least once) to be believed by anyone, and to believe anyone.
pub fn spawn(
    dir: &Path,
    config: &PeerConfig,
    learned: impl Fn(Vec<RemoteEntry>) + Send + Sync + 'static,
) -> Result<Peers, PeerError> {
    let store = Store::open(dir)?;
    let enrollment = store.enrollment()?.ok_or(PeerError::NotEnrolled)?;
    let me = Me {
        device_id: enrollment.device_id.clone(),
        gate: store.gate()?,
        key: SigningKey::from_bytes(&enrollment.secret_key),
    };
    let devices = store.device_list()?;
    let hub = Arc::new(Hub {
        me: Mutex::new(me),
        devices: Mutex::new(devices),
        store: Mutex::new(store),
        sessions: Mutex::new(Vec::new()),
        targets: Mutex::new(Vec::new()),
        dialing: Mutex::new(HashSet::new()),
        found_at: Mutex::new(HashMap::new()),
        logged: Mutex::new(HashSet::new()),
        connections: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        entry_cap: if config.entry_cap == 0 {
            DEFAULT_ENTRY_CAP
        } else {
            config.entry_cap
        },
        stop: AtomicBool::new(false),
        cut: AtomicBool::new(false),
        learned: Box::new(learned),
    });
    for p in &config.peers {
        hub.add_target(p);
    }
    let mut listening = None;
    if let Some(addr) = config.listen {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        listening = Some(listener.local_addr()?);
        let h = hub.clone();
        std::thread::Builder::new()
            .name("scanner-peers-accept".into())
            .spawn(move || accept_loop(&h, &listener))?;
    }
    let h = hub.clone();
    let d = dir.to_path_buf();
    std::thread::Builder::new()
        .name("scanner-peers-tell".into())
        .spawn(move || tell_loop(&h, &d))?;
    let h = hub.clone();
    std::thread::Builder::new()
        .name("scanner-peers-dial".into())
        .spawn(move || dial_loop(&h))?;
    let mdns = if config.mdns {
        match listening {
            Some(at) => start_mdns(&hub, at),
            None => {
                eprintln!("jo-scanner: peers: mDNS needs a listening address; off");
                None
            }
        }
    } else {
        None
    };
    Ok(Peers {
        hub,
        listening,
        _mdns: mdns,
    })
}

fn start_mdns(hub: &Arc<Hub>, at: SocketAddr) -> Option<mdns_sd::ServiceDaemon> {
    let daemon = match mdns_sd::ServiceDaemon::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("jo-scanner: peers: mDNS off: {e}");
            return None;
        }
    };
    let device = hub
        .me
        .lock()
        .map(|m| m.device_id.clone())
        .unwrap_or_default();
    // DNS labels: the device id, kept to safe characters.
    let instance: String = device
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    let host = format!("{instance}.local.");
    let info = mdns_sd::ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &host,
        "",
        at.port(),
        &[("device", device.as_str())][..],
    )
    .map(mdns_sd::ServiceInfo::enable_addr_auto);
    match info.and_then(|i| daemon.register(i)) {
        Ok(()) => {}
        Err(e) => eprintln!("jo-scanner: peers: mDNS announce failed: {e}"),
    }
    match daemon.browse(SERVICE_TYPE) {
        Ok(events) => {
            let h = hub.clone();
            let own = device.clone();
            let spawned = std::thread::Builder::new()
                .name("scanner-peers-mdns".into())
                .spawn(move || {
                    while let Ok(event) = events.recv() {
                        if h.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let mdns_sd::ServiceEvent::ServiceResolved(info) = event {
                            // This gate's own announcement comes back to it
                            // (mdns-sd sends on every interface, the
                            // loopback included, and hears itself on each).
                            // Dialled, the address only turns out to be this
                            // gate, and the accepting end counts and logs a
                            // handshake broken off: skipped. The TXT record
                            // is not authenticated, which is why it is only
                            // used to skip: who a peer is, the handshake
                            // says; a stranger announcing this gate's id
                            // hides nothing but its own announcement.
                            if info.get_property_val_str("device") == Some(own.as_str()) {
                                continue;
                            }
                            // IPv4 only: an IPv6 link-local address needs
                            // its interface, which a host:port target lacks.
                            for ip in info.get_addresses().iter().filter(|ip| ip.is_ipv4()) {
                                let at = SocketAddr::new(ip.to_ip_addr(), info.get_port());
                                h.add_target(&at.to_string());
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                eprintln!("jo-scanner: peers: mDNS browse off: {e}");
            }
        }
        Err(e) => eprintln!("jo-scanner: peers: mDNS browse failed: {e}"),
    }
    Some(daemon)
}

fn accept_loop(hub: &Arc<Hub>, listener: &TcpListener) {
    while !hub.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, addr)) => {
                if hub.cut.load(Ordering::Relaxed) {
                    drop(stream);
                    continue;
                }
                if hub.connections.load(Ordering::Relaxed) >= MAX_SESSIONS {
                    hub.log_once(&addr.ip().to_string(), "too many connections", "refused");
                    continue;
                }
                let h = hub.clone();
                hub.connections.fetch_add(1, Ordering::Relaxed);
                let spawned = std::thread::Builder::new()
                    .name("scanner-peer".into())
                    .spawn(move || {
                        run_session(&h, stream, &addr.to_string(), false);
                        h.connections.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    hub.connections.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn dial_loop(hub: &Arc<Hub>) {
    while !hub.stop.load(Ordering::Relaxed) {
        if hub.cut.load(Ordering::Relaxed) {
            std::thread::sleep(REDIAL);
            continue;
        }
        let targets = hub.targets.lock().map(|t| t.clone()).unwrap_or_default();
        let connected: HashSet<String> = hub.sessions().iter().map(|s| s.peer.clone()).collect();
        let own = hub
            .me
            .lock()
            .map(|m| m.device_id.clone())
            .unwrap_or_default();
        for t in targets {
            let found = hub.found_at.lock().ok().and_then(|f| f.get(&t).cloned());
            if found
                .as_ref()
                .is_some_and(|d| *d == own || connected.contains(d))
            {
                continue;
            }
            let fresh = hub.dialing.lock().is_ok_and(|mut d| d.insert(t.clone()));
            if !fresh || hub.connections.load(Ordering::Relaxed) >= MAX_SESSIONS {
                if fresh && let Ok(mut d) = hub.dialing.lock() {
                    d.remove(&t);
                }
                continue;
            }
            let h = hub.clone();
            hub.connections.fetch_add(1, Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("scanner-peer".into())
                .spawn(move || {
                    dial(&h, &t);
                    h.connections.fetch_sub(1, Ordering::Relaxed);
                    if let Ok(mut d) = h.dialing.lock() {
                        d.remove(&t);
                    }
                });
            if spawned.is_err() {
                hub.connections.fetch_sub(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(REDIAL);
    }
}

fn dial(hub: &Arc<Hub>, target: &str) {
    let Some(addr) = target.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        hub.log_once(target, "unknown address", "not host:port");
        return;
    };
    let Ok(stream) = TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT) else {
        return;
    };
    run_session(hub, stream, target, true);
}

/// What a finished handshake gives: the peer's device id and gate name,
/// and the keys of the frames that follow.
type Handshaken = (String, String, Sealer, Opener);

/// The handshake, from either end.
fn handshake(
    hub: &Hub,
    stream: &mut TcpStream,
    dialer: bool,
    at: &str,
) -> Result<Handshaken, String> {
    let (my_id, my_gate, key) = {
        let me = hub.me.lock().map_err(|_| "poisoned".to_owned())?;
        (me.device_id.clone(), me.gate.clone(), me.key.clone())
    };
    let my_key = key.verifying_key().to_bytes();
    let mine = nonce().ok_or("no randomness")?;
    let eph = Ephemeral::new().ok_or("no randomness")?;
    let my_eph = eph.public;
    let read = |s: &mut TcpStream| match read_frame(s, MAX_HANDSHAKE_FRAME) {
        Ok(m) => Ok(m),
        Err(ReadError::Gone) => Err("closed during the handshake".to_owned()),
        Err(ReadError::Huge(n)) => Err(format!("handshake frame of {n} bytes")),
        Err(ReadError::Garbage(e)) => Err(format!("not a handshake message: {e}")),
    };
    let write = |s: &mut TcpStream, m: &Message| {
        s.write_all(&frame_of(m))
            .map_err(|e| format!("write failed: {e}"))
    };
    let not_live = |device_id: &str| {
        format!(
            "device {} is not live in the signed device list",
            clip(device_id)
        )
    };
    let low_order = || "ephemeral key refused (low order)".to_owned();
    if dialer {
        write(
            stream,
            &Message::Hello {
                version: PROTOCOL_VERSION,
                device_id: my_id.clone(),
                gate: my_gate,
                nonce: hex::encode(mine),
                ephemeral: hex::encode(my_eph),
            },
        )?;
        let Message::Welcome {
            device_id,
            gate,
            nonce,
            ephemeral,
            signature,
        } = read(stream)?
        else {
            return Err("expected welcome".into());
        };
        if device_id == my_id {
            // This gate's own address (configured or announced): not a peer.
            if let Ok(mut f) = hub.found_at.lock() {
                f.insert(at.to_owned(), my_id);
            }
            return Err(String::new());
        }
        let theirs = hex32(&nonce).ok_or("bad nonce")?;
        let their_eph = hex32(&ephemeral).ok_or("bad ephemeral key")?;
        let their_key = hub.key_of(&device_id).ok_or_else(|| not_live(&device_id))?;
        let hs = PeerHandshake {
            dialer_id: &my_id,
            listener_id: &device_id,
            dialer_nonce: &mine,
            listener_nonce: &theirs,
            dialer_ephemeral: &my_eph,
            listener_ephemeral: &their_eph,
        };
        verify_peer_proof(&their_key, &hs.message(PeerRole::Listener), &signature)
            .map_err(|e| e.to_string())?;
        let ends = Ends {
            dialer: true,
            dialer_id: &my_id,
            listener_id: &device_id,
            dialer_key: &my_key,
            listener_key: &their_key,
            dialer_nonce: &mine,
            listener_nonce: &theirs,
        };
        let (sealer, opener) = channel::derive(eph, &their_eph, &ends).ok_or_else(low_order)?;
        write(
            stream,
            &Message::Proof {
                signature: hex::encode(key.sign(&hs.message(PeerRole::Dialer)).to_bytes()),
            },
        )?;
        Ok((device_id, clip(&gate), sealer, opener))
    } else {
        let Message::Hello {
            version,
            device_id,
            gate,
            nonce,
            ephemeral,
        } = read(stream)?
        else {
            return Err("expected hello".into());
        };
        if version != PROTOCOL_VERSION {
            return Err(format!("protocol version {version}"));
        }
        let theirs = hex32(&nonce).ok_or("bad nonce")?;
        let their_eph = hex32(&ephemeral).ok_or("bad ephemeral key")?;
        // Refused before anything is signed for it.
        let their_key = hub.key_of(&device_id).ok_or_else(|| not_live(&device_id))?;
        let ends = Ends {
            dialer: false,
            dialer_id: &device_id,
            listener_id: &my_id,
            dialer_key: &their_key,
            listener_key: &my_key,
            dialer_nonce: &theirs,
            listener_nonce: &mine,
        };
        let (sealer, opener) = channel::derive(eph, &their_eph, &ends).ok_or_else(low_order)?;
        let hs = PeerHandshake {
            dialer_id: &device_id,
            listener_id: &my_id,
            dialer_nonce: &theirs,
            listener_nonce: &mine,
            dialer_ephemeral: &their_eph,
            listener_ephemeral: &my_eph,
        };
        write(
            stream,
            &Message::Welcome {
                device_id: my_id.clone(),
                gate: my_gate,
                nonce: hex::encode(mine),
                ephemeral: hex::encode(my_eph),
                signature: hex::encode(key.sign(&hs.message(PeerRole::Listener)).to_bytes()),
            },
        )?;
        let Message::Proof { signature } = read(stream)? else {
            return Err("expected proof".into());
        };
        verify_peer_proof(&their_key, &hs.message(PeerRole::Dialer), &signature)
            .map_err(|e| e.to_string())?;
        Ok((device_id, clip(&gate), sealer, opener))
    }
}

fn run_session(hub: &Arc<Hub>, mut stream: TcpStream, at: &str, dialer: bool) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    let who = at.rsplit_once(':').map_or(at, |(host, _)| host).to_owned();
    let (peer, gate, sealer, mut opener) = match handshake(hub, &mut stream, dialer, at) {
        Ok(p) => p,
        Err(why) => {
            if !why.is_empty() {
                hub.log_once(&who, "handshake refused", &why);
            }
            return;
        }
    };
    if let Ok(mut f) = hub.found_at.lock()
        && dialer
        && f.len() < MAX_PEERS
    {
        f.insert(at.to_owned(), peer.clone());
    }
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let own = hub
        .me
        .lock()
        .map(|m| m.device_id.clone())
        .unwrap_or_default();
    let session = Arc::new(Session {
        id: hub.next_id.fetch_add(1, Ordering::Relaxed),
        peer: peer.clone(),
        addr: at.to_owned(),
        dialer: if dialer { own } else { peer.clone() },
        writer: Mutex::new((writer, sealer)),
        alive: AtomicBool::new(true),
    });
    if hub.cut.load(Ordering::Relaxed) || !hub.register(session.clone()) {
        return;
    }
    board().heard(&peer, &gate, at, true);
    // Everything known, first: a gate back from a partition learns what it
    // missed. Entries told meanwhile may come twice (merged by scan id).
    let dir_store = hub
        .store
        .lock()
        .ok()
        .and_then(|s| s.device_id().ok().flatten());
    let mut after = (0, 0);
    loop {
        let chunk = hub.store.lock().ok().and_then(|s| {
            s.shareable_entries(
                dir_store.as_deref().unwrap_or(""),
                after,
                MAX_ENTRIES_PER_FRAME,
            )
            .ok()
        });
        let Some((entries, next)) = chunk else { break };
        if entries.is_empty() && next == after {
            break;
        }
        after = next;
        if !entries.is_empty() && !session.send(&body_of(&Message::Entries { entries })) {
            break;
        }
    }
    let mut tokens = FRAME_BURST;
    let mut last = Instant::now();
    while session.alive.load(Ordering::Relaxed) && !hub.stop.load(Ordering::Relaxed) {
        let raw = match read_raw(&mut stream, MAX_FRAME + TAG_LEN) {
            Ok(raw) => raw,
            Err(ReadError::Gone) => break,
            Err(ReadError::Huge(n)) => {
                hub.log_once(
                    &who,
                    "frame too large",
                    &format!("{n} bytes; connection closed"),
                );
                break;
            }
            Err(ReadError::Garbage(e)) => {
                hub.log_once(&who, "garbage", &format!("{e}; connection closed"));
                break;
            }
        };
        // The tag first: nothing in a frame that is not the peer's next one
        // is parsed, let alone believed.
        let Some(body) = opener.open(&raw) else {
            hub.log_once(
                &who,
                "frame not authenticated",
                "wrong tag (altered, replayed, reordered or out of place); connection closed",
            );
            break;
        };
        let msg: Message = match serde_json::from_slice(body) {
            Ok(m) => m,
            Err(e) => {
                hub.log_once(&who, "garbage", &format!("{e}; connection closed"));
                break;
            }
        };
        let now = Instant::now();
        tokens =
            (tokens + now.duration_since(last).as_secs_f64() * MAX_FRAMES_PER_SEC).min(FRAME_BURST);
        last = now;
        tokens -= 1.0;
        if tokens < 0.0 {
            hub.log_once(&who, "flood", "too many frames; connection closed");
            break;
        }
        board().heard(&peer, &gate, at, true);
        match msg {
            Message::Ping => {}
            Message::Entries { entries } => {
                if entries.len() > MAX_ENTRIES_PER_FRAME {
                    hub.log_once(
                        &who,
                        "frame too large",
                        "too many entries; connection closed",
                    );
                    break;
                }
                hub.take_entries(&who, entries);
            }
            _ => {
                hub.log_once(
                    &who,
                    "unexpected message",
                    "after the handshake; connection closed",
                );
                break;
            }
        }
    }
    session.close();
    hub.unregister(session.id);
    board().heard(&peer, &gate, at, false);
}

/// Tells the peers what this gate's store learns (its own admissions, and
/// other gates' from the server or from peers), pings them, and reloads
/// the device list and gate name the sync thread may have replaced.
fn tell_loop(hub: &Arc<Hub>, dir: &Path) {
    let Ok(store) = Store::open(dir) else {
        eprintln!("jo-scanner: peers: the store cannot be read; telling nothing");
        return;
    };
    let own = store.device_id().ok().flatten().unwrap_or_default();
    // From the current end of the log: what was there before is sent to
    // each peer at connection.
    let mut after = (u64::MAX, u64::MAX);
    if let Ok((_, end)) = store.shareable_entries(&own, (0, 0), usize::MAX >> 1) {
        after = end;
    }
    let mut last_ping = Instant::now();
    let mut last_reload = Instant::now();
    while !hub.stop.load(Ordering::Relaxed) {
        std::thread::sleep(STORE_POLL);
        if let Ok((entries, next)) = store.shareable_entries(&own, after, MAX_ENTRIES_PER_FRAME) {
            after = next;
            if !entries.is_empty() {
                hub.broadcast(&body_of(&Message::Entries { entries }));
            }
        }
        if last_ping.elapsed() >= PING_EVERY {
            last_ping = Instant::now();
            hub.broadcast(&body_of(&Message::Ping));
        }
        if last_reload.elapsed() >= RELOAD_EVERY {
            last_reload = Instant::now();
            if let Ok(Some(list)) = store.device_list()
                && let Ok(mut d) = hub.devices.lock()
            {
                *d = Some(list);
            }
            if let (Ok(gate), Ok(mut me)) = (store.gate(), hub.me.lock()) {
                me.gate = gate;
            }
        }
    }
}
