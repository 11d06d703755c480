//! Gates that know about each other, measured: N headless gates
//! (`jo-scanner gate`, ticket strings instead of frames) against a real
//! `jo-server serve`, then over LAN peers with the server stopped. Prints,
//! for each N, the time from an admission at one gate to the entry being
//! installed at each other gate (its refusal ready), p50 and p95, online
//! and over the LAN, the server's memory and CPU with the gates'
//! long-polls held open, and the shop's speed (home pages served per
//! second) with those long-polls held against none.
//!
//! Run by `scripts/bench-gates.sh` (release build), which passes the
//! binaries: `JO_SERVER_BIN`, `JO_SCANNER_BIN`, and the gate counts as
//! arguments (default 2 10 50 200). The LAN is measured up to
//! [`LAN_MAX`] gates: a venue's gates dial each other, so N gates on one
//! machine are N² connections and threads, which measures the machine
//! rather than the protocol.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jo_server::Config;
use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use jo_shared::doublekey::{PurchaseKey, UserKey};
use serde_json::Value;

/// Admissions measured per run (each is heard by every other gate).
const SAMPLES: usize = 20;

/// Most gates measured over the LAN (a full mesh on one machine).
const LAN_MAX: usize = 50;

/// Clients asking for the shop's home page at once, and for how long.
const SHOP_CLIENTS: usize = 8;
const SHOP_FOR: Duration = Duration::from_secs(3);

/// The median of three [`shop_run`]s: one run on a shared 2-core machine
/// swings by tens of percent.
fn shop_rate(url: &str) -> anyhow::Result<f64> {
    let mut runs = [shop_run(url)?, shop_run(url)?, shop_run(url)?];
    runs.sort_by(f64::total_cmp);
    Ok(runs[1])
}

/// Home pages served per second to [`SHOP_CLIENTS`] clients asking in a
/// loop for [`SHOP_FOR`]; a page that is not 200 fails the run.
fn shop_run(url: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    let served = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SHOP_CLIENTS)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let client = reqwest::blocking::Client::new();
                    let mut n = 0;
                    while start.elapsed() < SHOP_FOR {
                        let r = client.get(format!("{url}/")).send()?;
                        if !r.status().is_success() {
                            bail!("home page: {}", r.status());
                        }
                        r.bytes()?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a shop client panicked"))?
            })
            .sum::<anyhow::Result<u64>>()
    })?;
    Ok(served as f64 / start.elapsed().as_secs_f64())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

impl Proc {
    fn gate(bin: &Path, state: &Path, args: &[String]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .arg("--state")
            .arg(state)
            .arg("gate")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("jo-scanner gate")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
        })
    }

    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn wait(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> anyhow::Result<Value> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Ok(self.seen.remove(i));
        }
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return Ok(v),
                Ok(v) => self.seen.push(v),
                Err(_) => bail!("no awaited line within {within:?}"),
            }
        }
    }

    fn status(&mut self) -> anyhow::Result<Value> {
        self.send("!status")?;
        self.wait(|v| v.get("peers").is_some(), Duration::from_secs(10))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(bin: &Path, state: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(bin)
        .arg("--state")
        .arg(state)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "jo-scanner {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null))
}

/// Resident memory (KiB) and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0);
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            // Fields 14 and 15 of stat (utime, stime), counted after the name.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    (rss, cpu)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Admits `tickets` one by one at gates in turn; the delays (ms) until
/// every other gate installed each entry.
fn measure(gates: &mut [Proc], tickets: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    let n = gates.len();
    for (k, qr) in tickets.iter().enumerate() {
        let at = k % n;
        gates[at].send(qr)?;
        let v = gates[at].wait(|v| v.get("verdict").is_some(), Duration::from_secs(10))?;
        if v["verdict"] != "admit" {
            bail!("expected an admission: {v}");
        }
        let id = v["scan_id"].as_str().unwrap_or_default().to_owned();
        let t0 = v["at_ms"].as_u64().unwrap_or(0);
        for (j, g) in gates.iter_mut().enumerate() {
            if j == at {
                continue;
            }
            let l = g.wait(
                |v| {
                    v["scan_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|i| i == id.as_str()))
                },
                Duration::from_secs(30),
            )?;
            out.push(l["at_ms"].as_u64().unwrap_or(0).saturating_sub(t0));
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn bench(n: usize, server_bin: &Path, scanner_bin: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("server");
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    // Generous limits: one machine plays a whole venue.
    let mut server = Command::new(server_bin)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("JO_API_RATE_PER_SEC", "100000")
        .env("JO_API_RATE_BURST", "1000000")
        .env("JO_ENROLL_RATE_PER_MIN", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("jo-server serve")?;
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{url}/api/v1/openapi.json"))
        .send()
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let config = Config::for_data_dir(data.clone());
    let now = unix_now();
    let session: i64 = Direct::open(&config)?.with(|c| {
        c.execute(
            "INSERT INTO sports (name) VALUES ('Athlétisme') ON CONFLICT DO NOTHING",
            params![],
        )?;
        c.execute(
            "INSERT INTO venues (name, city) VALUES ('Stade de France', 'Saint-Denis')
             ON CONFLICT DO NOTHING",
            params![],
        )?;
        c.execute(
            "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                doors_open_at, capacity, base_price_cents, created_at, updated_at)
             VALUES ('BENCH-GATES', (SELECT id FROM sports WHERE name = 'Athlétisme'),
                (SELECT id FROM venues WHERE name = 'Stade de France'), '100 m, finale',
                ?1, ?2, ?3, 80000, 5000, ?1, ?1)",
            params![now, now + 3 * 3600, now - 3600],
        )?;
        c.query_row(
            "SELECT id FROM game_sessions WHERE code = 'BENCH-GATES'",
            params![],
            |r| r.get(0),
        )
    })?;
    let session = u32::try_from(session)?;
    let signer = jo_shared::keys::load_signer(&config.keys_dir)?;
    let ticket = |i: u32| -> anyhow::Result<String> {
        Ok(jo_server::tickets::issue(
            &signer,
            &UserKey::generate()?,
            &PurchaseKey::generate()?,
            &jo_server::tickets::TicketSpec {
                index: i,
                session_id: session,
                admits: 1,
                valid_from: now - 2 * 3600,
                valid_until: now + 4 * 3600,
                holder: "Bench",
            },
        )?
        .qr)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let states: Vec<PathBuf> = (0..n).map(|i| dir.path().join(format!("g{i}"))).collect();
    for (i, s) in states.iter().enumerate() {
        let code = rt.block_on(jo_server::admin::create_enrollment_code(&config, 1))?;
        run(
            scanner_bin,
            s,
            &[
                "enroll",
                "--server",
                &url,
                "--code",
                &code,
                "--label",
                &format!("g{i}"),
            ],
        )?;
    }
    // After every enrolment: each gate's signed device list names them all.
    for (i, s) in states.iter().enumerate() {
        run(scanner_bin, s, &["sync"])?;
        run(
            scanner_bin,
            s,
            &["configure", "--gate", &format!("Porte {i}")],
        )?;
    }
    let (rss0, _) = usage(server.id());
    let shop_none = shop_rate(&url)?;

    // Online: every gate holds a long-poll; admissions go up at once.
    let mut gates = states
        .iter()
        .map(|s| Proc::gate(scanner_bin, s, &["--live".to_owned()]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for g in &mut gates {
        g.wait(|v| v["ready"] == true, Duration::from_secs(30))?;
    }
    let until = Instant::now() + Duration::from_secs(60);
    for g in &mut gates {
        while g.status()?["learning"] != "live" {
            if Instant::now() > until {
                bail!("a gate's long-poll did not open");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Held open and idle: the server's memory and CPU.
    std::thread::sleep(Duration::from_secs(1));
    let (rss1, cpu1) = usage(server.id());
    let idle = Duration::from_secs(10);
    std::thread::sleep(idle);
    let (rss2, cpu2) = usage(server.id());
    let ticks = 100.0; // USER_HZ on Linux
    let cpu_idle = (cpu2 - cpu1) as f64 / ticks / idle.as_secs_f64() * 100.0;
    let gates_cpu = |gates: &[Proc]| gates.iter().map(|g| usage(g.child.id()).1).sum::<u64>();
    let (g0, t0) = (gates_cpu(&gates), Instant::now());
    let shop_held = shop_rate(&url)?;
    let gates_busy = (gates_cpu(&gates) - g0) as f64 / ticks / t0.elapsed().as_secs_f64() * 100.0;
    // Every long-poll still held after the shop's rush.
    for g in &mut gates {
        let s = g.status()?;
        if s["learning"] != "live" {
            bail!("a gate lost its long-poll under the shop's load: {s}");
        }
    }
    let tickets: Vec<String> = (0..SAMPLES as u32)
        .map(ticket)
        .collect::<anyhow::Result<_>>()?;
    let (_, cpu3) = usage(server.id());
    let t = Instant::now();
    let online = measure(&mut gates, &tickets)?;
    let (rss4, cpu4) = usage(server.id());
    let cpu_busy = (cpu4 - cpu3) as f64 / ticks / t.elapsed().as_secs_f64() * 100.0;
    drop(gates);

    // Over the LAN, the server stopped: gate i dials every gate before it.
    let _ = server.kill();
    let _ = server.wait();
    let lan = if n <= LAN_MAX {
        Some(lan(n, &states, scanner_bin, &ticket)?)
    } else {
        None
    };
    let lan_words = match &lan {
        Some(l) => format!("LAN p50 {:>4} ms p95 {:>4} ms", pct(l, 0.5), pct(l, 0.95)),
        None => format!("LAN not run (over {LAN_MAX} gates)"),
    };
    println!(
        "{n:>3} gates | online p50 {:>4} ms p95 {:>4} ms | {lan_words} | \
         server RSS {:.1} MiB before, {:.1} MiB with {n} long-polls held ({:+.1} KiB each), \
         {:.1} MiB after the admissions | CPU {cpu_idle:.1} % held idle, {cpu_busy:.1} % while admitting \
         | shop home page {shop_none:.0}/s with no long-poll, {shop_held:.0}/s with {n} held ({:+.1} %; \
         the {n} gates' own CPU meanwhile {gates_busy:.0} % of a core)",
        pct(&online, 0.5),
        pct(&online, 0.95),
        rss0 as f64 / 1024.0,
        rss2 as f64 / 1024.0,
        (rss2 as f64 - rss0 as f64) / n as f64,
        rss4 as f64 / 1024.0,
        (shop_held / shop_none - 1.0) * 100.0,
    );
    let _ = rss1;
    Ok(())
}

/// The LAN run: the gates started again without the server, gate i
/// dialling every gate before it; the delays of [`measure`].
fn lan(
    n: usize,
    states: &[PathBuf],
    scanner_bin: &Path,
    ticket: &dyn Fn(u32) -> anyhow::Result<String>,
) -> anyhow::Result<Vec<u64>> {
    let mut gates: Vec<Proc> = Vec::new();
    let mut addrs: Vec<String> = Vec::new();
    for s in states {
        let mut args = vec!["--peer-listen".to_owned(), "127.0.0.1:0".to_owned()];
        for a in &addrs {
            args.push("--peer".to_owned());
            args.push(a.clone());
        }
        let mut g = Proc::gate(scanner_bin, s, &args)?;
        let ready = g.wait(|v| v["ready"] == true, Duration::from_secs(30))?;
        addrs.push(ready["peer_listen"].as_str().unwrap_or_default().to_owned());
        gates.push(g);
    }
    let until = Instant::now() + Duration::from_secs(120);
    for g in &mut gates {
        loop {
            let s = g.status()?;
            let up = s["peers"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|x| x["connected"] == true).count());
            if up + 1 >= n {
                break;
            }
            if Instant::now() > until {
                bail!("peers did not all connect: {s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let lan_tickets: Vec<String> = (SAMPLES as u32..2 * SAMPLES as u32)
        .map(ticket)
        .collect::<anyhow::Result<_>>()?;
    measure(&mut gates, &lan_tickets)
}

fn main() -> anyhow::Result<()> {
    let server_bin = PathBuf::from(std::env::var("JO_SERVER_BIN").context("JO_SERVER_BIN")?);
    let scanner_bin = PathBuf::from(std::env::var("JO_SCANNER_BIN").context("JO_SCANNER_BIN")?);
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![2, 10, 50, 200]
    } else {
        counts
    };
    println!(
        "admission at one gate -> entry installed at each other gate ({SAMPLES} admissions, \
         each heard by all the others); online through the server (long-poll), then over LAN \
         peers with the server stopped; the shop's home page rate with the long-polls held"
    );
    for n in counts {
        bench(n, &server_bin, &scanner_bin).with_context(|| format!("{n} gates"))?;
    }
    Ok(())
}
