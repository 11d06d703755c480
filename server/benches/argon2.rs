//! Time per argon2id hash with the production parameters (aim: 50–150 ms).
//! Run: `cargo bench -p jo-server --bench argon2`.

#![allow(missing_docs)]

use std::time::Instant;

use jo_server::auth::password::PasswordHasher;
use jo_server::config::{Argon2Params, Secret};

fn main() -> anyhow::Result<()> {
    let p = Argon2Params::PRODUCTION;
    let rt = tokio::runtime::Runtime::new()?;
    let hasher = PasswordHasher::new(p)?;
    let rounds = 20;
    let mut times_ms = Vec::with_capacity(rounds);
    let mut last = String::new();
    for i in 0..rounds {
        let start = Instant::now();
        last = rt.block_on(hasher.hash(Secret::new(format!("benchmark password {i}"))))?;
        times_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let start = Instant::now();
    let ok = rt.block_on(hasher.verify(
        Secret::new(format!("benchmark password {}", rounds - 1)),
        Some(last),
    ))?;
    let verify_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(ok);
    times_ms.sort_by(f64::total_cmp);
    let mean = times_ms.iter().sum::<f64>() / times_ms.len() as f64;
    println!(
        "argon2id m={} KiB t={} p={}: mean {mean:.1} ms/hash, min {:.1} ms, max {:.1} ms over {rounds} hashes; verify {verify_ms:.1} ms",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        times_ms[0],
        times_ms[times_ms.len() - 1],
    );
    Ok(())
}
