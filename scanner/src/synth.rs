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

/// The kinds of webcam frame the held-out set has, in the order a set
/// cycles through them. Every kind but `nominal` stresses one thing a gate
/// sees; `combined` several at once.
pub const KINDS: [&str; 15] = [
    "nominal",
    "far",
    "perspective",
    "rotation",
    "blur",
    "motion",
    "glare",
    "dark",
    "low-contrast",
    "noise",
    "jpeg",
    "screen",
    "shadow",
    "damaged",
    "combined",
];

/// A number in `lo..hi`.
fn between(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.unit()
}

/// A ticket string as the server issues it: a random signing key (the
/// server's are random too), a random ticket id, session, admissions and a
/// holder name of random length, signed by the shared crate's signer (the
/// one the server signs with). Names of every length give QR versions 9 and
/// 10, as real tickets have.
pub fn ticket_code(rng: &mut Rng) -> String {
    use jo_shared::signing::{KeyId, TicketSigner};
    use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let signer = TicketSigner::new(ed25519_dalek::SigningKey::from_bytes(&seed));
    let mut id = [0u8; 10];
    for b in &mut id {
        *b = (rng.next_u64() >> 56) as u8;
    }
    const FIRST: [&str; 8] = [
        "Inès",
        "Hugo",
        "Chloé",
        "Nina",
        "Léa",
        "Mathis",
        "Zoé",
        "Jean-Baptiste",
    ];
    const LAST: [&str; 8] = [
        "Moreau",
        "Bernard",
        "Dubois",
        "Roux",
        "N'Diaye",
        "Lefèvre-Rousseau",
        "Da Silva Fernandes",
        "Martin",
    ];
    let name = format!(
        "{} {}",
        FIRST[(rng.next_u64() % 8) as usize],
        LAST[(rng.next_u64() % 8) as usize]
    );
    let payload = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId(id),
        session_id: 1 + (rng.next_u64() % 5000) as u32,
        admits: 1 + (rng.next_u64() % 4) as u8,
        valid_from: 1_780_000_000 + (rng.next_u64() % 10_000_000) as u32,
        valid_minutes: 240,
        holder: HolderName::shorten(&name),
    };
    // Encoding fails only on zero admissions or an empty window, never
    // chosen above; an empty string would then show as a miss, not a panic.
    signer
        .sign_ticket(&payload)
        .map(|b| qr::encode_string(&b))
        .unwrap_or_default()
}

/// A symbol of side in `sizes` centred near the frame's middle, turned by up to
/// `tilt` degrees, its corners moved by up to `skew` of its side (a
/// ticket held not quite square to the camera).
fn placed(rng: &mut Rng, sizes: (f32, f32), tilt: f32, skew: f32) -> [(f32, f32); 4] {
    let size = between(rng, sizes.0, sizes.1);
    let cx = between(rng, 640.0 - 200.0, 640.0 + 200.0);
    let cy = between(
        rng,
        (size * 0.75).min(360.0),
        (720.0 - size * 0.75).max(360.0),
    );
    let deg = between(rng, -tilt, tilt);
    rotated(cx, cy, size, deg).map(|(x, y)| {
        (
            x + between(rng, -skew, skew) * size,
            y + between(rng, -skew, skew) * size,
        )
    })
}

/// Blur along a direction: the mean of `len` copies shifted along `deg`
/// (a phone still moving when the frame is taken).
pub fn motion_blur(img: &GrayImage, len: u32, deg: f32) -> GrayImage {
    let (s, c) = deg.to_radians().sin_cos();
    let len = len.max(1);
    let offsets: Vec<(i64, i64)> = (0..len)
        .map(|i| {
            let t = i as f32 - (len - 1) as f32 / 2.0;
            ((t * c).round() as i64, (t * s).round() as i64)
        })
        .collect();
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let sum: u32 = offsets
            .iter()
            .map(|(dx, dy)| {
                let sx = (i64::from(x) + dx).clamp(0, w - 1) as u32;
                let sy = (i64::from(y) + dy).clamp(0, h - 1) as u32;
                u32::from(img.get_pixel(sx, sy).0[0])
            })
            .sum();
        Luma([(sum / len) as u8])
    })
}

/// Re-encodes as JPEG at `quality` and decodes again (a webcam's MJPEG).
pub fn jpeg(img: &GrayImage, quality: u8) -> GrayImage {
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    if img.write_with_encoder(enc).is_err() {
        return img.clone();
    }
    image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .map_or_else(|_| img.clone(), |i| i.to_luma8())
}

/// Darkens everything on one side of a line through `(cx, cy)` at `deg`,
/// with a soft edge (a hand or a cap between the lamp and the ticket).
pub fn shadow(img: &mut GrayImage, cx: f32, cy: f32, deg: f32, depth: f32) {
    let (s, c) = deg.to_radians().sin_cos();
    for (x, y, p) in img.enumerate_pixels_mut() {
        let d = (x as f32 - cx) * c + (y as f32 - cy) * s;
        let k = (d / 25.0).clamp(0.0, 1.0) * depth;
        p.0[0] = (f32::from(p.0[0]) * (1.0 - k)) as u8;
    }
}

/// Scales brightness by `gain` (an under-exposed frame).
pub fn exposure(img: &mut GrayImage, gain: f32) {
    for p in img.pixels_mut() {
        p.0[0] = (f32::from(p.0[0]) * gain).min(255.0) as u8;
    }
}

/// Stains and scratches over up to `share` of the symbol's data area, in
/// modules (`sym` rendered at `module_px`, quiet zone of 4): finder
/// patterns are spared, as error correction cannot help there.
fn damage(sym: &mut GrayImage, module_px: u32, rng: &mut Rng, share: f32) {
    let modules = sym.width() / module_px - 8;
    let finder = |mx: u32, my: u32| {
        let near = |v: u32| v < 9 || v + 9 > modules;
        near(mx) && near(my) && !(mx + 9 > modules && my + 9 > modules)
    };
    let target = (share * (modules * modules) as f32) as u32;
    let mut hit = 0;
    let mut tries = 0;
    while hit < target && tries < 200 {
        tries += 1;
        let (bw, bh) = (
            1 + (rng.next_u64() % 6) as u32,
            1 + (rng.next_u64() % 3) as u32,
        );
        let (mx, my) = (
            (rng.next_u64() % u64::from(modules)) as u32,
            (rng.next_u64() % u64::from(modules)) as u32,
        );
        if (mx..mx + bw).any(|x| (my..my + bh).any(|y| finder(x, y))) {
            continue;
        }
        let v = if rng.unit() < 0.5 { 40 } else { 235 };
        for y in my..(my + bh).min(modules) {
            for x in mx..(mx + bw).min(modules) {
                for py in 0..module_px {
                    for px in 0..module_px {
                        sym.put_pixel(
                            (x + 4) * module_px + px,
                            (y + 4) * module_px + py,
                            Luma([v]),
                        );
                    }
                }
                hit += 1;
            }
        }
    }
}

/// How hard a generated set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tier {
    /// Each kind at the strength a gate sees on an ordinary day: every
    /// decoder reads most frames.
    #[default]
    Standard,
    /// Each kind pushed further (codes farther away, stronger blur and
    /// motion, heavier JPEG and noise, more damage, dimmer and flatter
    /// pictures): the decoders part ways here.
    Hard,
}

impl Tier {
    /// The tier's name on the command line (`standard`, `hard`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Hard => "hard",
        }
    }

    /// The tier of a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(Self::Standard),
            "hard" => Some(Self::Hard),
            _ => None,
        }
    }
}

/// The ranges one tier draws a frame's parameters from.
struct Strength {
    far: (f32, f32),
    skew: f32,
    damage: (f32, f32),
    blur: (f32, f32),
    motion: (f32, f32),
    glare: (f32, f32),
    dark: (f32, f32),
    low_lo: (f32, f32),
    low_span: (f32, f32),
    noise: (f32, f32),
    jpeg: (f32, f32),
    moire: (f32, f32),
    shadow: (f32, f32),
    combined_blur: (f32, f32),
    combined_contrast: (u8, u8),
    combined_noise: (f32, f32),
    combined_jpeg: (f32, f32),
}

const STANDARD: Strength = Strength {
    far: (150.0, 200.0),
    skew: 0.12,
    damage: (0.06, 0.12),
    blur: (1.4, 2.2),
    motion: (5.0, 10.0),
    glare: (110.0, 170.0),
    dark: (0.18, 0.3),
    low_lo: (80.0, 110.0),
    low_span: (35.0, 55.0),
    noise: (35.0, 55.0),
    jpeg: (8.0, 20.0),
    moire: (20.0, 35.0),
    shadow: (0.45, 0.65),
    combined_blur: (0.8, 1.2),
    combined_contrast: (60, 200),
    combined_noise: (12.0, 22.0),
    combined_jpeg: (30.0, 50.0),
};

const HARD: Strength = Strength {
    far: (80.0, 115.0),
    skew: 0.2,
    damage: (0.08, 0.14),
    blur: (2.2, 3.4),
    motion: (8.0, 14.0),
    glare: (160.0, 230.0),
    dark: (0.09, 0.16),
    low_lo: (70.0, 120.0),
    low_span: (14.0, 26.0),
    noise: (55.0, 85.0),
    jpeg: (3.0, 8.0),
    moire: (35.0, 55.0),
    shadow: (0.65, 0.85),
    combined_blur: (1.2, 1.9),
    combined_contrast: (70, 160),
    combined_noise: (18.0, 30.0),
    combined_jpeg: (12.0, 25.0),
};

/// One webcam-like frame of `code`, of the given kind (one of [`KINDS`];
/// anything else is `nominal`), every parameter drawn from `rng`, at the
/// standard tier.
pub fn frame(kind: &str, code: &str, rng: &mut Rng) -> Result<GrayImage, qr::RenderError> {
    frame_at(kind, code, rng, Tier::Standard)
}

/// One webcam-like frame of `code` of the given kind, at `tier`.
pub fn frame_at(
    kind: &str,
    code: &str,
    rng: &mut Rng,
    tier: Tier,
) -> Result<GrayImage, qr::RenderError> {
    let k = match tier {
        Tier::Standard => &STANDARD,
        Tier::Hard => &HARD,
    };
    let mut sym = qr::render_image(code, 6)?;
    let bg = between(rng, 140.0, 200.0) as u8;
    let mut f = match kind {
        "far" => warp(&sym, placed(rng, k.far, 6.0, 0.0), bg),
        "perspective" => warp(&sym, placed(rng, (300.0, 420.0), 10.0, k.skew), bg),
        "rotation" => {
            let size = between(rng, 280.0, 380.0);
            let q = placed(rng, (size, size), 0.0, 0.0);
            let (cx, cy) = ((q[0].0 + q[2].0) / 2.0, (q[0].1 + q[2].1) / 2.0);
            warp(&sym, rotated(cx, cy, size, between(rng, 0.0, 360.0)), bg)
        }
        "damaged" => {
            let share = between(rng, k.damage.0, k.damage.1);
            damage(&mut sym, 6, rng, share);
            warp(&sym, placed(rng, (300.0, 400.0), 8.0, 0.0), bg)
        }
        "combined" => warp(&sym, placed(rng, (260.0, 380.0), 12.0, 0.06), bg),
        _ => warp(&sym, placed(rng, (280.0, 420.0), 8.0, 0.01), bg),
    };
    match kind {
        "blur" => f = image::imageops::blur(&f, between(rng, k.blur.0, k.blur.1)),
        "motion" => {
            f = motion_blur(
                &f,
                between(rng, k.motion.0, k.motion.1) as u32,
                between(rng, 0.0, 180.0),
            );
        }
        "glare" => {
            let (cx, cy) = (between(rng, 450.0, 830.0), between(rng, 200.0, 520.0));
            glare(
                &mut f,
                cx,
                cy,
                between(rng, 120.0, 240.0),
                between(rng, k.glare.0, k.glare.1),
            );
        }
        "dark" => exposure(&mut f, between(rng, k.dark.0, k.dark.1)),
        "low-contrast" => {
            let lo = between(rng, k.low_lo.0, k.low_lo.1) as u8;
            contrast(
                &mut f,
                lo,
                lo + between(rng, k.low_span.0, k.low_span.1) as u8,
            );
        }
        "noise" => {
            let level = between(rng, k.noise.0, k.noise.1);
            noise(&mut f, rng, level);
        }
        "jpeg" => f = jpeg(&f, between(rng, k.jpeg.0, k.jpeg.1) as u8),
        "screen" => {
            // A phone screen filmed: the screen's own contrast, the
            // camera's moiré over it.
            contrast(&mut f, 30, 230);
            moire(
                &mut f,
                between(rng, 4.5, 6.5),
                between(rng, k.moire.0, k.moire.1),
            );
        }
        "shadow" => {
            let (cx, cy) = (between(rng, 500.0, 780.0), between(rng, 250.0, 470.0));
            shadow(
                &mut f,
                cx,
                cy,
                between(rng, 0.0, 360.0),
                between(rng, k.shadow.0, k.shadow.1),
            );
        }
        "combined" => {
            f = image::imageops::blur(&f, between(rng, k.combined_blur.0, k.combined_blur.1));
            contrast(&mut f, k.combined_contrast.0, k.combined_contrast.1);
            let (cx, cy) = (between(rng, 500.0, 780.0), between(rng, 250.0, 470.0));
            glare(&mut f, cx, cy, 200.0, between(rng, 60.0, 100.0));
            let level = between(rng, k.combined_noise.0, k.combined_noise.1);
            noise(&mut f, rng, level);
            f = jpeg(&f, between(rng, k.combined_jpeg.0, k.combined_jpeg.1) as u8);
        }
        _ => {}
    }
    // Every frame, like every webcam's, has some sensor noise.
    if kind != "noise" && kind != "combined" {
        let level = if kind == "dark" { 3.0 } else { 6.0 };
        noise(&mut f, rng, level);
    }
    Ok(f)
}

/// One frame of a generated set: its kind, the code it shows and the picture.
pub struct SetFrame {
    /// One of [`KINDS`].
    pub kind: &'static str,
    /// The ticket string the frame shows.
    pub code: String,
    /// The 1280×720 frame.
    pub image: GrayImage,
}

/// `count` frames from `seed`, cycling through [`KINDS`], each of a fresh
/// ticket, at the standard tier. The same seed and count always give the
/// same frames.
pub fn webcam_set(seed: u64, count: usize) -> Result<Vec<SetFrame>, qr::RenderError> {
    webcam_set_at(seed, count, Tier::Standard)
}

/// `count` frames from `seed` at `tier` (the same tickets as the standard
/// set of that seed, harder pictures of them).
pub fn webcam_set_at(
    seed: u64,
    count: usize,
    tier: Tier,
) -> Result<Vec<SetFrame>, qr::RenderError> {
    // xorshift must not start at zero.
    let mut rng = Rng(seed | 1);
    (0..count)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let code = ticket_code(&mut rng);
            let image = frame_at(kind, &code, &mut rng, tier)?;
            Ok(SetFrame { kind, code, image })
        })
        .collect()
}
