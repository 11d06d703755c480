//! Makes webcam-like 1280×720 frames of ticket QR codes (see
//! `jo_scanner::synth`), ten degradations per code.
//!
//! ```sh
//! cargo run --release -p jo-scanner --example degrade_frames -- OUT_DIR [QR_STRING_FILE]
//! ```
//!
//! Without a strings file, it uses the committed test vectors' QR strings.
//! Deterministic: the same input always gives the same frames.

use std::path::PathBuf;

use jo_scanner::synth;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: degrade_frames OUT_DIR [QR_STRING_FILE]")?,
    );
    let codes: Vec<String> = match args.next() {
        Some(f) => std::fs::read_to_string(f)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        None => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/vectors/ticket-v1.json");
            let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root)?)?;
            doc["vectors"]
                .as_array()
                .ok_or("no vectors")?
                .iter()
                .filter_map(|v| v["qr_string"].as_str().map(str::to_owned))
                .collect()
        }
    };
    std::fs::create_dir_all(&out)?;
    let mut rng = synth::Rng(synth::SEED);
    let mut n = 0;
    for (i, code) in codes.iter().enumerate() {
        for (name, frame) in synth::variants(code, &mut rng)? {
            frame.save(out.join(format!("t{i}-{name}.png")))?;
            n += 1;
        }
    }
    println!("wrote {n} frames to {}", out.display());
    Ok(())
}
