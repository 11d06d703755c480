//! Figures of the shared ticket crate, printed as plain text:
//!
//! ```sh
//! cargo bench -p jo-shared
//! ```
//!
//! signing/s, verifications/s (full `verify`, one core), revocation lookups/s
//! with 1 M entries and their memory, QR render time, rqrr decode time of a
//! ticket inside a 1280×720 frame, and the QR version of a ticket with a
//! 30-character holder name.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use image::{GrayImage, Luma};
use jo_shared::qr;
use jo_shared::revocation::{ListBuilder, RevocationDelta, RevocationList, RevocationReason};
use jo_shared::signing::{KeyId, Keyring, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use jo_shared::verify::{NoEntries, Verdict, VerifyContext, verify};

/// Runs `f` repeatedly for about `budget` and returns (iterations, elapsed).
fn measure(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    (n, start.elapsed())
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Resident set size of this process in bytes (Linux), for a memory delta.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn payload(holder: &str) -> TicketPayload {
    TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([0x42; 10]),
        session_id: 4242,
        admits: 4,
        valid_from: 1_785_000_000,
        valid_minutes: 360,
        holder: HolderName::shorten(holder),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing:
    // stay quick there, since the figures only matter under `cargo bench`.
    let quick = !std::env::args().any(|a| a == "--bench");
    let budget = if quick {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(2)
    };
    let revocations = if quick { 10_000 } else { 1_000_000 };

    let signer = TicketSigner::new(SigningKey::from_bytes(&[7; 32]));
    let p = payload("Jean-Christophe Martin-Lefèvre");
    let mut ring = Keyring::new();
    ring.add(signer.verifying_key()).expect("adds");

    println!(
        "jo-shared benchmark{}",
        if quick { " (quick mode)" } else { "" }
    );

    let (n, d) = measure(budget, || {
        black_box(signer.sign_ticket(black_box(&p)).expect("signs"));
    });
    println!("ticket signing:            {:>10.0} /s", per_sec(n, d));

    let code = qr::encode_string(&signer.sign_ticket(&p).expect("signs"));
    let empty = RevocationList::new();
    let ctx = VerifyContext {
        keyring: &ring,
        sessions: &[4242],
        now: 1_785_000_600,
        skew_secs: 300,
        revocations: &empty,
        entries: &NoEntries,
    };
    assert!(matches!(verify(&code, &ctx), Verdict::Admit { .. }));
    let (n, d) = measure(budget, || {
        black_box(verify(black_box(&code), &ctx));
    });
    let vps = per_sec(n, d);
    println!(
        "full verify (1 core):      {vps:>10.0} /s   (target >= 20000/s: {})",
        if vps >= 20_000.0 { "met" } else { "NOT met" }
    );

    // Revocation list with many entries, built through the signed-delta path.
    let rss_before = rss_bytes();
    let mut builder = ListBuilder::default();
    let entries: Vec<_> = (0..revocations as u64)
        .map(|i| {
            let mut id = [0u8; 10];
            // Spread like real ids (HMAC output): a cheap mix of the counter.
            id[..8].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
            id[8..].copy_from_slice(&(i as u16).to_le_bytes());
            builder.push(TicketId(id), RevocationReason::Refunded, 1_785_000_000)
        })
        .collect();
    let delta = RevocationDelta {
        from_version: 0,
        entries,
        state: builder.sign(&signer, 1_785_000_000),
    };
    let t = Instant::now();
    let mut list = RevocationList::new();
    list.apply(&delta, &ring).expect("applies");
    let apply = t.elapsed();
    let probe: Vec<TicketId> = delta
        .entries
        .iter()
        .step_by(97)
        .map(|e| e.ticket_id)
        .collect();
    let first_probe = probe[0];
    drop(delta);
    let rss_after = rss_bytes();
    let mut i = 0usize;
    let (n, d) = measure(budget, || {
        let id = &probe[i % probe.len()];
        i += 1;
        black_box(list.lookup(black_box(id)));
    });
    let missing = TicketId([0xff; 10]);
    assert!(list.lookup(&missing).is_none());
    assert!(list.lookup(&first_probe).is_some());
    println!(
        "revocation delta apply:    {:>10.1} ms for {} entries (verify chain + signature + insert)",
        apply.as_secs_f64() * 1e3,
        list.len()
    );
    println!(
        "revocation lookups:        {:>10.0} /s with {} entries",
        per_sec(n, d),
        list.len()
    );
    println!(
        "revocation memory:         {:>10.1} MB table ({:.1} bytes/entry){}",
        list.heap_bytes() as f64 / 1e6,
        list.heap_bytes() as f64 / list.len() as f64,
        match (rss_before, rss_after) {
            (Some(a), Some(b)) =>
                format!(", RSS grew {:.1} MB", (b.saturating_sub(a)) as f64 / 1e6),
            _ => String::new(),
        }
    );

    let (n, d) = measure(budget, || {
        black_box(qr::Matrix::encode(black_box(&code)).expect("encodes"));
    });
    println!(
        "QR symbol (mask chosen):   {:>10.3} ms",
        d.as_secs_f64() * 1e3 / n as f64
    );
    let (n, d) = measure(budget, || {
        black_box(qr::render_png(black_box(&code), 8).expect("renders"));
    });
    println!(
        "QR render to PNG:          {:>10.3} ms",
        d.as_secs_f64() * 1e3 / n as f64
    );
    let (n, d) = measure(budget, || {
        black_box(qr::render_svg(black_box(&code)).expect("renders"));
    });
    println!(
        "QR render to SVG:          {:>10.3} ms",
        d.as_secs_f64() * 1e3 / n as f64
    );

    // A ticket shown on a phone, somewhere in a 1280×720 webcam frame.
    let symbol = qr::render_image(&code, 4).expect("renders");
    let mut frame = GrayImage::from_pixel(1280, 720, Luma([170]));
    image::imageops::overlay(&mut frame, &symbol, 500, 180);
    assert_eq!(
        qr::decode_image(&frame).expect("decodes"),
        vec![code.clone()]
    );
    let reps = if quick { 3 } else { 50 };
    let t = Instant::now();
    for _ in 0..reps {
        black_box(qr::decode_image(black_box(&frame)).expect("decodes"));
    }
    println!(
        "rqrr decode, 1280x720:     {:>10.2} ms per frame (whole frame, no help)",
        t.elapsed().as_secs_f64() * 1e3 / f64::from(reps)
    );

    let info = qr::symbol_info(&code).expect("renders");
    println!(
        "QR for a 30-char holder:   version {} ({} modules, {} chars, EC level Q; target version <= 10: {})",
        info.version,
        info.modules,
        code.len(),
        if info.version <= 10 { "met" } else { "NOT met" }
    );
}
