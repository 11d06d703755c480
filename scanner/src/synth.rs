//! Synthetic webcam frames of ticket QR codes, degraded the way a gate sees
//! them: perspective, rotation, blur, glare, low contrast, screen moiré, sensor
//! noise. Deterministic (a fixed-seed generator), so tests, the replay
//! benchmark and `scripts/decode-rate.sh` see the same frames every run.

use image::{GrayImage, Luma};
use jo_shared::qr;

/// Width of a synthetic frame (a 720p webcam).
pub const FRAME_W: u32 = 1280;
/// Height of a synthetic frame.
pub const FRAME_H: u32 = 720;

/// A small deterministic generator (xorshift64*), so frames are reproducible.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Places `sym` on a 1280×720 background through the homography that maps
/// the symbol's corners to `quad` (clockwise from top-left), bilinear sampling.
pub fn warp(sym: &GrayImage, quad: [(f32, f32); 4], background: u8) -> GrayImage {
    let (w, h) = (sym.width() as f32, sym.height() as f32);
    let src = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    // Homography from destination to source: solve the 8×8 system.
    let hm = homography(quad, src);
    GrayImage::from_fn(FRAME_W, FRAME_H, |x, y| {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        let d = hm[6] * fx + hm[7] * fy + 1.0;
        let sx = (hm[0] * fx + hm[1] * fy + hm[2]) / d;
        let sy = (hm[3] * fx + hm[4] * fy + hm[5]) / d;
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return Luma([background]);
        }
        let (x0, y0) = (sx.floor(), sy.floor());
        let (ax, ay) = (sx - x0, sy - y0);
        let p = |dx: u32, dy: u32| f32::from(sym.get_pixel(x0 as u32 + dx, y0 as u32 + dy).0[0]);
        let v = p(0, 0) * (1.0 - ax) * (1.0 - ay)
            + p(1, 0) * ax * (1.0 - ay)
            + p(0, 1) * (1.0 - ax) * ay
            + p(1, 1) * ax * ay;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

/// The 3×3 homography (h33 = 1) mapping points `from` to points `to`.
fn homography(from: [(f32, f32); 4], to: [(f32, f32); 4]) -> [f32; 8] {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (f64::from(from[i].0), f64::from(from[i].1));
        let (u, v) = (f64::from(to[i].0), f64::from(to[i].1));
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..8 {
        let p = (c..8)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, p);
        let pivot = a[c];
        if pivot[c] == 0.0 {
            continue;
        }
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, pv) in row.iter_mut().zip(pivot.iter()).skip(c) {
                    *x -= f * pv;
                }
            }
        }
    }
    let mut h = [0f32; 8];
    for (i, (hi, row)) in h.iter_mut().zip(a.iter()).enumerate() {
        *hi = (row[8] / row[i]) as f32;
    }
    h
}

/// Adds a bright spot (a lamp's reflection on a phone screen).
pub fn glare(img: &mut GrayImage, cx: f32, cy: f32, radius: f32, strength: f32) {
    for (x, y, p) in img.enumerate_pixels_mut() {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / radius;
        let add = strength * (1.0 - d).max(0.0);
        p.0[0] = (f32::from(p.0[0]) + add).min(255.0) as u8;
    }
}

/// Squeezes brightness into `lo..hi` (a dim screen, a grey print).
pub fn contrast(img: &mut GrayImage, lo: u8, hi: u8) {
    for p in img.pixels_mut() {
        p.0[0] = (f32::from(lo) + f32::from(p.0[0]) / 255.0 * f32::from(hi - lo)) as u8;
    }
}

/// Adds a diagonal interference pattern (a screen filmed by a camera).
pub fn moire(img: &mut GrayImage, period: f32, amplitude: f32) {
    for (x, y, p) in img.enumerate_pixels_mut() {
        let v = ((x as f32 * 0.93 + y as f32 * 0.37) * std::f32::consts::TAU / period).sin()
            * amplitude;
        p.0[0] = (f32::from(p.0[0]) + v).clamp(0.0, 255.0) as u8;
    }
}

/// Adds sensor noise.
pub fn noise(img: &mut GrayImage, rng: &mut Rng, amplitude: f32) {
    for p in img.pixels_mut() {
        let v = (rng.unit() - 0.5) * 2.0 * amplitude;
        p.0[0] = (f32::from(p.0[0]) + v).clamp(0.0, 255.0) as u8;
    }
}

/// An axis-aligned square at `(x, y)`.
pub fn quad_rect(x: f32, y: f32, size: f32) -> [(f32, f32); 4] {
    [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
}

/// A square of side `size` centred on `(cx, cy)`, turned by `deg` degrees.
pub fn rotated(cx: f32, cy: f32, size: f32, deg: f32) -> [(f32, f32); 4] {
    let (s, c) = deg.to_radians().sin_cos();
    let h = size / 2.0;
    [(-h, -h), (h, -h), (h, h), (-h, h)].map(|(x, y)| (cx + x * c - y * s, cy + x * s + y * c))
}

/// The named degradations of one code, as 1280×720 frames.
pub fn variants(
    code: &str,
    rng: &mut Rng,
) -> Result<Vec<(&'static str, GrayImage)>, qr::RenderError> {
    let sym = qr::render_image(code, 8)?;
    Ok(vec![
        ("clean", warp(&sym, quad_rect(460.0, 140.0, 380.0), 180)),
        ("small", warp(&sym, quad_rect(560.0, 250.0, 250.0), 180)),
        (
            "perspective",
            warp(
                &sym,
                [
                    (470.0, 120.0),
                    (860.0, 170.0),
                    (830.0, 560.0),
                    (450.0, 600.0),
                ],
                150,
            ),
        ),
        (
            "rotated",
            warp(&sym, rotated(640.0, 360.0, 360.0, 23.0), 170),
        ),
        (
            "blur",
            image::imageops::blur(&warp(&sym, quad_rect(450.0, 130.0, 400.0), 180), 1.6),
        ),
        ("glare", {
            let mut f = warp(&sym, quad_rect(450.0, 130.0, 400.0), 180);
            glare(&mut f, 600.0, 260.0, 220.0, 150.0);
            f
        }),
        ("low-contrast", {
            let mut f = warp(&sym, quad_rect(450.0, 130.0, 400.0), 200);
            contrast(&mut f, 95, 140);
            f
        }),
        ("moire", {
            let mut f = warp(&sym, quad_rect(450.0, 130.0, 400.0), 180);
            moire(&mut f, 5.3, 38.0);
            f
        }),
        ("noisy", {
            let mut f = warp(&sym, quad_rect(450.0, 130.0, 400.0), 180);
            noise(&mut f, rng, 45.0);
            f
        }),
        ("combined", {
            let mut f = warp(
                &sym,
                [
                    (480.0, 140.0),
                    (850.0, 190.0),
                    (820.0, 560.0),
                    (470.0, 590.0),
                ],
                160,
            );
            f = image::imageops::blur(&f, 1.0);
            contrast(&mut f, 70, 190);
            glare(&mut f, 700.0, 300.0, 200.0, 90.0);
            noise(&mut f, rng, 20.0);
            f
        }),
    ])
}

/// The generator's fixed seed.
pub const SEED: u64 = 0x4A4F_2024_5041_5249;

/// An empty frame: the gate's view when nobody holds up a ticket.
pub fn empty_frame(rng: &mut Rng) -> GrayImage {
    let mut f = GrayImage::from_pixel(FRAME_W, FRAME_H, Luma([150]));
    noise(&mut f, rng, 20.0);
    f
}
