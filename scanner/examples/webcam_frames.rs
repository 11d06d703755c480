//! Writes a seeded set of webcam-like 1280×720 frames of fresh ticket codes
//! (see `jo_scanner::synth::webcam_set`), cycling through the fifteen kinds,
//! with `manifest.tsv` (file, kind, the code shown) beside them.
//!
//! ```sh
//! cargo run --release -p jo-scanner --example webcam_frames -- OUT_DIR [SEED] [COUNT] [TIER]
//! ```
//!
//! SEED defaults to the tuning seed (`synth::SEED`), COUNT to 300, TIER to
//! `standard` (`hard`: every kind pushed further, see `synth::Tier`).

use std::io::Write;
use std::path::PathBuf;

use jo_scanner::synth;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: webcam_frames OUT_DIR [SEED] [COUNT] [standard|hard]";
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let seed = match args.next() {
        Some(s) => parse_seed(&s).ok_or(usage)?,
        None => synth::SEED,
    };
    let count: usize = match args.next() {
        Some(c) => c.parse().map_err(|_| usage)?,
        None => 300,
    };
    let tier = match args.next() {
        Some(t) => synth::Tier::parse(&t).ok_or(usage)?,
        None => synth::Tier::Standard,
    };
    std::fs::create_dir_all(&out)?;
    let mut manifest = std::io::BufWriter::new(std::fs::File::create(out.join("manifest.tsv"))?);
    for (i, f) in synth::webcam_set_at(seed, count, tier)?.iter().enumerate() {
        let name = format!("{i:04}-{}.png", f.kind);
        f.image.save(out.join(&name))?;
        writeln!(manifest, "{name}\t{}\t{}", f.kind, f.code)?;
    }
    manifest.flush()?;
    println!(
        "wrote {count} frames (seed {seed:#x}, {} tier) to {}",
        tier.name(),
        out.display()
    );
    Ok(())
}

/// A seed in decimal or `0x` hexadecimal.
fn parse_seed(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16).ok(),
        None => s.parse().ok(),
    }
}
