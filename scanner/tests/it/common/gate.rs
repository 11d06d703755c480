//! A `jo-scanner gate` process driven over its standard input and output:
//! ticket strings in, one JSON line per verdict and per batch of entries
//! learned out, `!status`, `!cut` and `!heal` for its peers.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running gate; dropped, it is killed.
pub struct GateProc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    /// The lines read and not yet matched.
    seen: Vec<Value>,
    /// Its stderr so far (also copied to the test's).
    errors: Arc<Mutex<Vec<String>>>,
}

impl GateProc {
    /// Starts `jo-scanner --state STATE gate ARGS…` and waits for its
    /// `ready` line; the gate and the address its peers listener took.
    pub fn start(state: &std::path::Path, args: &[&str]) -> (Self, String) {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_jo-scanner")), state, args)
    }

    /// Like [`GateProc::start`], in the network namespace `netns` (through
    /// `ip netns exec`, which execs the gate: the child is the gate itself,
    /// so that killing it leaves nothing running in the namespace).
    pub fn start_in(netns: &str, state: &std::path::Path, args: &[&str]) -> (Self, String) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_jo-scanner")]);
        Self::spawn(cmd, state, args)
    }

    fn spawn(mut cmd: Command, state: &std::path::Path, args: &[&str]) -> (Self, String) {
        let mut child = cmd
            .arg("--state")
            .arg(state)
            .arg("gate")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("jo-scanner gate starts");
        let stdin = child.stdin.take().expect("stdin");
        let stderr = child.stderr.take().expect("stderr");
        let errors = Arc::new(Mutex::new(Vec::new()));
        let e = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                e.lock().expect("lock").push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("JSON line {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut g = Self {
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            errors,
        };
        let ready = g.wait(|v| v["ready"] == true, Duration::from_secs(20));
        let at = ready["peer_listen"].as_str().unwrap_or_default().to_owned();
        (g, at)
    }

    /// Writes one line to its standard input.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("writes to the gate");
        self.stdin.flush().expect("flush");
    }

    /// The first line (read or to come) that `pred` accepts.
    pub fn try_wait(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Option<Value> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Some(self.seen.remove(i));
        }
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(v) => self.seen.push(v),
                Err(_) => return None,
            }
        }
    }

    /// Like [`GateProc::try_wait`], failing the test when no line comes.
    pub fn wait(&mut self, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        self.try_wait(pred, within)
            .unwrap_or_else(|| panic!("no such line within {within:?}; seen {:?}", self.seen))
    }

    /// Shows it a ticket string; its verdict line.
    pub fn scan(&mut self, qr: &str) -> Value {
        self.send(qr);
        self.wait(|v| v.get("verdict").is_some(), Duration::from_secs(10))
    }

    /// Its `!status` line: the peers seen, where it learns from.
    pub fn status(&mut self) -> Value {
        self.send("!status");
        self.wait(|v| v.get("peers").is_some(), Duration::from_secs(10))
    }

    /// Waits until `n` peers are connected.
    pub fn await_peers(&mut self, n: usize) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status();
            let up = s["peers"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|x| x["connected"] == true).count());
            if up >= n {
                return;
            }
            assert!(Instant::now() < until, "{n} peers not connected: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its stderr lines that contain `needle` (for a failure's message).
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.errors
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// How many of its stderr lines contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.errors
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The line saying it learned the scan `scan_id`, if one comes within
    /// `within`.
    pub fn learned(&mut self, scan_id: &str, within: Duration) -> Option<Value> {
        self.try_wait(
            |v| {
                v["scan_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == scan_id))
            },
            within,
        )
    }
}

impl Drop for GateProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
