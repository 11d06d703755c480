//! Memory and load time of the gate with a large revocation list:
//! `cargo run --release -p jo-scanner --example revocation_memory -- [N]`
//! (default 1,000,000). Builds a store holding N signed revocations the way a
//! sync leaves it, then measures the process's resident memory before and
//! after loading the gate, the load time, and a lookup through a scan.

use std::time::Instant;

use jo_scanner::gate::Gate;
use jo_scanner::store::Store;
use jo_shared::TicketSigner;
use jo_shared::revocation::{ListBuilder, RevocationDelta, RevocationList, RevocationReason};
use jo_shared::signing::Keyring;
use jo_shared::ticket::TicketId;

/// Resident set size of this process, KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile_dir()?;
    let signer = TicketSigner::generate()?;
    {
        let mut store = Store::open(&dir)?;
        store.replace_keyring(&[(signer.key_id(), *signer.verifying_key().as_bytes(), false)])?;
        let mut keyring = Keyring::new();
        keyring.add(signer.verifying_key())?;
        let mut builder = ListBuilder::default();
        let entries: Vec<_> = (0..n)
            .map(|i| {
                let mut id = [0u8; 10];
                id[..8].copy_from_slice(&i.to_be_bytes());
                builder.push(TicketId(id), RevocationReason::Refunded, 1_780_000_000)
            })
            .collect();
        let delta = RevocationDelta {
            from_version: 0,
            entries,
            state: builder.sign(&signer, 1_780_000_000),
        };
        let mut list = RevocationList::new();
        let t = Instant::now();
        list.apply(&delta, &keyring)?;
        let verify_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        store.add_revocations(&delta.entries, &list)?;
        println!(
            "{n} revocations: delta verified and applied in {verify_ms:.0} ms, stored in {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let before = rss_kib();
    let t = Instant::now();
    let mut gate = Gate::load(Store::open(&dir)?)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let after = rss_kib();
    let t = Instant::now();
    let scan = gate.scan("not a ticket", 1_780_000_000)?;
    println!(
        "gate load: {load_ms:.0} ms; resident memory {:.1} MB before, {:.1} MB after (+{:.1} MB, {:.1} bytes per revocation); a scan then takes {:.2} ms ({})",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64,
        t.elapsed().as_secs_f64() * 1e3,
        scan.verdict.reason_code().unwrap_or("admit"),
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("jo-revocation-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
