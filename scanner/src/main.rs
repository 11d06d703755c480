//! `jo-scanner`: the JO E-Tickets gate scanner.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jo_scanner::decode::FrameDecoder;
use jo_scanner::frames::{FolderSource, load_image};
use jo_scanner::gate::Gate;
use jo_scanner::headless;
use jo_scanner::store::Store;
use jo_scanner::sync;
use jo_scanner::ui::{self, AppOptions, Settings, worker::SourceChoice};

/// JO E-Tickets gate scanner: verifies tickets offline and uploads its scan log when online.
#[derive(Parser)]
#[command(name = "jo-scanner", version, about)]
struct Cli {
    /// Directory of the scanner's local state (keyring, revocations, scan log).
    #[arg(
        long,
        global = true,
        env = "JO_SCANNER_STATE",
        default_value = "jo-scanner-state"
    )]
    state: PathBuf,
    /// Decide as if the device clock read this Unix time (replaying a
    /// recording from another day, tests).
    #[arg(long, global = true, hide = true)]
    now: Option<i64>,
    /// GUI: open this camera (index in the system's list) instead of the saved choice.
    #[arg(long, value_name = "N")]
    camera: Option<u32>,
    /// GUI demo: replay a folder of frames as the camera.
    #[arg(long, env = "JO_SCANNER_FRAMES", hide = true, value_name = "DIR")]
    demo_frames: Option<PathBuf>,
    /// GUI: save a PNG of the window once it has settled, then quit (tests).
    #[arg(long, hide = true, value_name = "PNG")]
    screenshot: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Enrol this device with a server, using a one-time code from an admin.
    /// The server's keyring is pinned: by the fingerprint `--keyring` (as
    /// `jo-server enroll-code` and the admin console print it), or, without
    /// it, trusted on first use. Plain http:// only to this machine.
    Enroll {
        /// Server base URL, e.g. https://billets.example.org
        #[arg(long)]
        server: String,
        /// The one-time enrolment code.
        #[arg(long)]
        code: String,
        /// Fingerprint of the server's keyring (64 hex digits) to pin;
        /// without it the server's first keyring is trusted on first use.
        #[arg(long, value_name = "FINGERPRINT")]
        keyring: Option<String>,
        /// Name of this device in the admin console (default: the host name).
        #[arg(long)]
        label: Option<String>,
        /// PEM file of a private certificate authority that the server's
        /// https certificate chains to (an event's own CA); stored with the
        /// enrolment and trusted for every later sync.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
    },
    /// Synchronise now: scan log up; keyring, device list, sessions,
    /// revocations, entries down, each step on its own. Prints a JSON report
    /// (failed steps, alarms, the revocation list's age); exits non-zero when
    /// any step failed (nothing scanned is lost either way).
    Sync,
    /// Set the gate's name and the sessions it serves (ids as synced; none
    /// given: every synced session).
    Configure {
        /// Gate name shown in "already used at …" on other gates.
        #[arg(long)]
        gate: String,
        /// A session this gate serves (repeatable).
        #[arg(long = "session", value_name = "ID")]
        sessions: Vec<u32>,
    },
    /// Decode and verify images through the gate pipeline (each is a logged
    /// scan); one JSON object per line.
    Verify {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Use a folder of frames as the camera; one JSON line per frame, then a summary.
    Replay {
        /// Folder of image frames, read in name order.
        #[arg(long)]
        frames: PathBuf,
    },
    /// Runs the gate on ticket strings read from standard input, one per
    /// line, instead of camera frames (kiosks, tests, benchmarks). Each is
    /// decided and logged like a scan; meanwhile, with `--live`, other
    /// gates' admissions come from the server as they are stored and each
    /// admission goes up at once, and with peers (`--peer-listen`,
    /// `--peer`, `--mdns`) they are exchanged with the gates on the LAN.
    /// Prints one JSON line per scan (`verdict`…, `at_ms`) and per batch of
    /// entries learned (`learned`, `source`, `at_ms`). The lines `!cut` and
    /// `!heal` cut this gate off its peers and bring it back; `!status`
    /// prints the peers seen.
    Gate {
        /// Upload each admission at once and long-poll other gates' entries.
        #[arg(long)]
        live: bool,
        /// Accept other gates on this address (e.g. 0.0.0.0:47330).
        #[arg(long, value_name = "ADDR")]
        peer_listen: Option<std::net::SocketAddr>,
        /// Another gate to reach, host:port (repeat the flag for several).
        #[arg(long = "peer", value_name = "HOST:PORT")]
        peers: Vec<String>,
        /// Find the other gates with mDNS/DNS-SD.
        #[arg(long)]
        mdns: bool,
    },
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// This machine's name, the default device label.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "jo-scanner".to_owned())
}

fn open_gate(cli: &Cli) -> anyhow::Result<Gate> {
    let store = Store::open(&cli.state)
        .with_context(|| format!("opening scanner state in {}", cli.state.display()))?;
    Ok(Gate::load(store)?)
}

fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Runs the command; an error is printed as one line, `error: ` and its
/// causes (never a backtrace, whatever RUST_BACKTRACE says), with a non-zero
/// exit status.
/// What the `gate` loop waits for.
enum Input {
    Text(String),
    Learned(&'static str, Vec<jo_shared::api::RemoteEntry>),
    End,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn peer_status() -> serde_json::Value {
    let board = jo_scanner::peers::board();
    let seen: Vec<_> = board
        .peers()
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "device_id": p.device_id,
                "gate": p.gate,
                "addr": p.addr,
                "connected": p.connected,
                "last_heard": p.last_heard,
            })
        })
        .collect();
    serde_json::json!({
        "peers": seen,
        "learning": format!("{:?}", board.learning(unix_now())).to_lowercase(),
        "learned_from_peers": board.learned(),
        "dropped": board.dropped(),
    })
}

/// `jo-scanner gate`: ticket strings from standard input, entries learned
/// from the server and the peers meanwhile, all decided on one thread.
fn run_gate(cli: &Cli, live: bool, peers: &jo_scanner::peers::PeerConfig) -> anyhow::Result<()> {
    let mut gate = open_gate(cli)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let _live = if live {
        let tx = tx.clone();
        let l = sync::live::spawn(&cli.state, move |_, entries| {
            let _ = tx.send(Input::Learned("server", entries));
        })?;
        jo_scanner::peers::board().set_live(l.status.clone());
        Some(l)
    } else {
        None
    };
    let node = if peers.listen.is_some() || !peers.peers.is_empty() {
        let tx = tx.clone();
        let node = jo_scanner::peers::spawn(&cli.state, peers, move |entries| {
            let _ = tx.send(Input::Learned("peer", entries));
        })?;
        Some(node)
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    // The address first: a caller that asked for port 0 learns the port.
    print_json(
        &mut out,
        &serde_json::json!({
            "ready": true,
            "peer_listen": node.as_ref().and_then(|n| n.listening).map(|a| a.to_string()),
        }),
    )?;
    let input = tx.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if input.send(Input::Text(line)).is_err() {
                return;
            }
        }
        let _ = input.send(Input::End);
    });
    drop(tx);
    let mut n = 0usize;
    while let Ok(next) = rx.recv() {
        match next {
            Input::Text(text) => match text.trim() {
                "" => {}
                cmd @ ("!cut" | "!heal") => {
                    if let Some(node) = &node {
                        node.set_cut_off(cmd == "!cut");
                    }
                    print_json(&mut out, &serde_json::json!({ "peers_cut": cmd == "!cut" }))?;
                }
                "!status" => print_json(&mut out, &peer_status())?,
                text => {
                    n += 1;
                    let label = format!("line-{n}");
                    let line = headless::scan_text(&mut gate, text, &label, now_or(cli.now))?;
                    let mut v = serde_json::to_value(&line)?;
                    v["at_ms"] = serde_json::json!(unix_ms());
                    print_json(&mut out, &v)?;
                }
            },
            Input::Learned(source, entries) => {
                let store = gate.store();
                let synced = jo_scanner::gate::Synced {
                    keyring: store.keyring()?,
                    sessions: store.sessions()?,
                    revocations: None,
                    entries,
                };
                let ids: Vec<String> = synced
                    .entries
                    .iter()
                    .map(|e| e.scan_id.to_string())
                    .collect();
                let gates: Vec<String> = synced.entries.iter().map(|e| e.gate.clone()).collect();
                gate.install(synced);
                print_json(
                    &mut out,
                    &serde_json::json!({
                        "learned": ids.len(),
                        "source": source,
                        "scan_ids": ids,
                        "gates": gates,
                        "at_ms": unix_ms(),
                    }),
                )?;
            }
            Input::End => break,
        }
    }
    Ok(())
}

fn now_or(fixed: Option<i64>) -> i64 {
    fixed.unwrap_or_else(unix_now)
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let now = |fixed: Option<i64>| fixed.unwrap_or_else(unix_now);
    match &cli.command {
        Some(Command::Verify { images }) => {
            let mut gate = open_gate(cli)?;
            let mut out = std::io::stdout().lock();
            for path in images {
                let label = path.display().to_string();
                // Each image is its own picture: no region carried over,
                // every decoding attempt on it.
                let mut decoder = FrameDecoder::photo();
                let mut line = headless::process(
                    &mut gate,
                    &mut decoder,
                    load_image(path),
                    &label,
                    now(cli.now),
                    true,
                )?;
                line.file = label;
                print_json(&mut out, &line)?;
            }
        }
        Some(Command::Gate {
            live,
            peer_listen,
            peers,
            mdns,
        }) => {
            run_gate(
                cli,
                *live,
                &jo_scanner::peers::PeerConfig {
                    listen: *peer_listen,
                    peers: peers.clone(),
                    mdns: *mdns,
                    entry_cap: 0,
                },
            )?;
        }
        Some(Command::Replay { frames }) => {
            let mut gate = open_gate(cli)?;
            let mut source = FolderSource::open(frames)?;
            let mut out = std::io::stdout().lock();
            let mut failed = None;
            let summary = headless::replay(
                &mut gate,
                &mut source,
                || now(cli.now),
                |line| {
                    if let Err(e) = print_json(&mut out, line) {
                        failed.get_or_insert(e);
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e);
            }
            print_json(&mut out, &serde_json::json!({ "summary": summary }))?;
        }
        None => {
            let gate = open_gate(cli)?;
            let source = match (&cli.demo_frames, cli.camera) {
                (Some(dir), _) => Some(SourceChoice::Folder(dir.clone())),
                (None, Some(index)) => Some(SourceChoice::Camera {
                    index,
                    resolution: Settings::load(&Settings::path_in(&cli.state)).resolution,
                }),
                (None, None) => None,
            };
            ui::run(
                gate,
                AppOptions {
                    settings_path: Some(Settings::path_in(&cli.state)),
                    source,
                    fixed_now: cli.now,
                    screenshot: cli.screenshot.clone(),
                    sync_state: Some(cli.state.clone()),
                    sync_interval: None,
                },
            )?;
        }
        Some(Command::Enroll {
            server,
            code,
            label,
            keyring,
            ca_cert,
        }) => {
            let ca_pem = match ca_cert {
                Some(path) => {
                    let meta = std::fs::metadata(path)
                        .with_context(|| format!("--ca-cert {}", path.display()))?;
                    // A CA bundle is a few kilobytes; refuse to read anything huge.
                    anyhow::ensure!(
                        meta.len() <= 1024 * 1024,
                        "--ca-cert {}: larger than 1 MiB, not a certificate",
                        path.display()
                    );
                    let pem = std::fs::read_to_string(path)
                        .with_context(|| format!("--ca-cert {}", path.display()))?;
                    sync::parse_ca_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", path.display()))?;
                    Some(pem)
                }
                None => None,
            };
            let fingerprint = match keyring {
                Some(fp) => Some(jo_shared::trust::parse_fingerprint(fp).with_context(|| {
                    format!("--keyring {fp:?}: a keyring fingerprint is 64 hex digits")
                })?),
                None => None,
            };
            let mut store = Store::open(&cli.state)
                .with_context(|| format!("opening scanner state in {}", cli.state.display()))?;
            let label = label.clone().unwrap_or_else(host_name);
            let enrolled = sync::enroll_with_ca(
                &mut store,
                server,
                code,
                &label,
                fingerprint.as_ref(),
                ca_pem.as_deref(),
            )
            .with_context(|| format!("enrolling with {server}"))?;
            if enrolled.pinned_by == sync::PinnedBy::FirstUse {
                eprintln!(
                    "jo-scanner: no --keyring given: the server's keyring was trusted on first use; \
                     compare its fingerprint with the admin console's"
                );
            }
            print_json(
                &mut std::io::stdout().lock(),
                &serde_json::json!({
                    "enrolled": true,
                    "device_id": enrolled.answer.device_id,
                    "server": server.trim().trim_end_matches('/'),
                    "skew_secs": unix_now() - enrolled.answer.server_time,
                    "keyring_version": enrolled.pinned.version,
                    "keyring_fingerprint": enrolled.pinned.fingerprint_hex().ok(),
                    "keyring_pinned_by": enrolled.pinned_by,
                }),
            )?;
        }
        Some(Command::Sync) => {
            let mut store = Store::open(&cli.state)
                .with_context(|| format!("opening scanner state in {}", cli.state.display()))?;
            let max_age = Settings::load(&Settings::path_in(&cli.state)).max_list_age_secs;
            let mut list = store.revocations()?;
            let mut report = sync::SyncReport::default();
            let result = sync::sync_into(&mut store, &mut list, &mut report, &mut |_, _| {});
            let online = !matches!(
                result,
                Err(sync::SyncError::Offline(_) | sync::SyncError::NotEnrolled)
            );
            let age = sync::list_age_secs(&list, report.skew_secs, now(cli.now));
            let stale = online && age > i64::try_from(max_age).unwrap_or(i64::MAX);
            let mut alarms: Vec<String> = report.alarms().map(|f| f.error.to_string()).collect();
            if stale {
                alarms.push(format!(
                    "the revocation list was signed {age} s ago (more than {max_age} s) although \
                     the server answers: it is not being refreshed; tell the admins"
                ));
            }
            let failures: Vec<_> = report
                .failures
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "step": f.step,
                        "kind": f.error.kind(),
                        "error": f.error.to_string(),
                    })
                })
                .collect();
            print_json(
                &mut std::io::stdout().lock(),
                &serde_json::json!({
                    "ok": result.is_ok(),
                    "error": result.as_ref().err().map(ToString::to_string),
                    "failed_steps": report.failures.iter().map(|f| f.step).collect::<Vec<_>>(),
                    "failures": failures,
                    "alarms": alarms,
                    "keyring_changed": report.keyring_changed,
                    "keyring_version": report.keyring_version,
                    "sessions_changed": report.sessions_changed,
                    "revocations_added": report.revocations_added,
                    "revocation_version": list.version(),
                    "revocations_issued_at": list.issued_at(),
                    "revocations_age_secs": age,
                    "revocations_stale": stale,
                    "entries_added": report.entries.len(),
                    "entries_refused": report.entries_refused,
                    "entries_refused_why": report.entries_refused_why,
                    "uploaded": report.uploaded,
                    "duplicates": report.duplicates,
                    "conflicts": report.conflicts,
                    "pending": store.pending_count()?,
                    "skew_secs": report.skew_secs,
                }),
            )?;
            for a in &alarms {
                eprintln!("jo-scanner: ALARM: {a}");
            }
            for f in &report.failures {
                eprintln!("jo-scanner: {} failed: {}", f.step.name(), f.error);
            }
            if let Err(e) = result {
                anyhow::bail!("sync failed: {e}");
            }
        }
        Some(Command::Configure { gate, sessions }) => {
            let gate = gate.trim();
            anyhow::ensure!(
                !gate.is_empty() && gate.chars().count() <= 64,
                "the gate name must have 1 to 64 characters"
            );
            let mut store = Store::open(&cli.state)
                .with_context(|| format!("opening scanner state in {}", cli.state.display()))?;
            let known: Vec<u32> = store.sessions()?.iter().map(|(s, _)| s.id).collect();
            if let Some(unknown) = sessions.iter().find(|id| !known.contains(id)) {
                anyhow::bail!(
                    "session {unknown} is not among the synced sessions {known:?}; run `jo-scanner sync` first"
                );
            }
            let chosen = if sessions.is_empty() {
                &known
            } else {
                sessions
            };
            store.set_gate(gate)?;
            store.select_sessions(chosen)?;
            print_json(
                &mut std::io::stdout().lock(),
                &serde_json::json!({ "gate": gate, "sessions": chosen }),
            )?;
        }
    }
    Ok(())
}
