//! Time to first read of a ticket presented to the camera: a phone comes to
//! rest in front of the webcam over ten frames (30 fps), moving less and
//! less, blur fading. The camera runs on its own clock; the decoder takes the
//! newest frame whenever it is free (stale frames are dropped, never
//! queued), as the gate's scanning loop does. Prints p50 and p95 of the time
//! from the first frame to the first read, over many presentations of fresh
//! tickets.
//!
//! ```sh
//! cargo run --release -p jo-scanner --example presentations -- [COUNT] [SEED]
//! ```

use std::time::Duration;

use jo_scanner::decode::FrameDecoder;
use jo_scanner::synth::{self, Rng};

/// Frame interval at 30 fps.
const FRAME: Duration = Duration::from_micros(33_333);
/// Frames of one presentation.
const FRAMES: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(60), |c| c.parse())?;
    let seed = match args.next() {
        Some(s) => parse_seed(&s).ok_or("SEED: decimal or 0x hexadecimal")?,
        None => synth::SEED,
    };
    let mut rng = Rng(seed | 1);
    let mut decoder = FrameDecoder::new();
    let mut firsts = Vec::new();
    let mut unread = 0;
    for _ in 0..count {
        let code = synth::ticket_code(&mut rng);
        let sym = jo_shared::qr::render_image(&code, 6)?;
        let size = 300.0 + 100.0 * rng.unit();
        let (cx, cy) = (560.0 + 160.0 * rng.unit(), 300.0 + 120.0 * rng.unit());
        let (vx, vy) = ((rng.unit() - 0.5) * 120.0, (rng.unit() - 0.5) * 120.0);
        let angle = (rng.unit() - 0.5) * 30.0;
        let frames: Vec<_> = (0..FRAMES)
            .map(|i| {
                // Settling: what is left of the motion at frame i.
                let left = 1.0 - i as f32 / (FRAMES - 1) as f32;
                let quad = synth::rotated(
                    cx + vx * left,
                    cy + vy * left,
                    size,
                    angle * left + (rng.unit() - 0.5) * 2.0,
                );
                let mut f = synth::warp(&sym, quad, 170);
                let streak = (14.0 * left) as u32;
                if streak > 1 {
                    f = synth::motion_blur(&f, streak, 20.0 + 140.0 * rng.unit());
                }
                let sigma = 0.4 + 2.0 * left;
                f = image::imageops::blur(&f, sigma);
                synth::noise(&mut f, &mut rng, 6.0);
                f
            })
            .collect();
        // The decoder's clock against the camera's.
        let mut t = Duration::ZERO;
        let mut read = None;
        loop {
            let newest = ((t.as_micros() / FRAME.as_micros()) as usize).min(FRAMES - 1);
            let (found, took) = decoder.decode(&frames[newest]);
            t += took;
            if found.is_some_and(|f| f.text == code) {
                read = Some(t);
                break;
            }
            if newest == FRAMES - 1 {
                break;
            }
            // Wait for a frame newer than the one just tried.
            t = t.max(FRAME * (newest as u32 + 1));
        }
        match read {
            Some(t) => firsts.push(t.as_secs_f64() * 1e3),
            None => unread += 1,
        }
    }
    firsts.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        firsts
            .get(((firsts.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let p95 = pct(0.95);
    println!(
        "{count} presentations of {FRAMES} frames at 30 fps (1280x720): read {}, not read {unread}; \
         time to first read p50 {:.0} ms, p95 {p95:.0} ms, max {:.0} ms (target p95 <= 150 ms: {})",
        firsts.len(),
        pct(0.5),
        firsts.last().copied().unwrap_or(f64::NAN),
        if p95 <= 150.0 && unread == 0 {
            "met"
        } else {
            "NOT met"
        }
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
