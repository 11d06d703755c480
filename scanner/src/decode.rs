//! QR decoding helped for webcams: rqrr alone takes ~20 ms on a 1280×720
//! frame and misses blurred or low-contrast codes, so each frame goes through
//! cheap attempts first and dearer ones only when those fail:
//!
//! 1. the region where the last code was found (a code held up to the camera
//!    stays put for a second or two), at half scale when the code is large;
//! 2. the frame at half resolution (a quarter of the pixels; a phone screen's
//!    modules are still several pixels wide);
//! 3. the full frame;
//! 4. the half-resolution frame binarised at Otsu's threshold (dim screens,
//!    glare).
//!
//! The first attempt that reads a code wins.

use std::time::{Duration, Instant};

use image::{GrayImage, Luma};
use jo_shared::qr::{self, Decoded};

/// Which attempt read the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The last code's region.
    Region,
    /// Half resolution.
    Half,
    /// Full resolution.
    Full,
    /// Otsu-binarised half resolution.
    Binarised,
}

/// A successful decode.
#[derive(Debug, Clone)]
pub struct Found {
    /// The code's text.
    pub text: String,
    /// Which attempt read it.
    pub attempt: Attempt,
}

/// Remembers where the last code was, across frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    region: Option<(u32, u32, u32, u32)>,
    /// The last code was large enough to read its region at half scale.
    big: bool,
}

/// Side, in frame pixels, above which a code is read at half scale in its
/// region: tickets are QR version 10 at most (57 modules), so 240 px keeps
/// more than 2 px per module after halving.
const BIG_CODE_SIDE: i32 = 240;

impl FrameDecoder {
    /// A decoder with no region yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame. Returns the code found, if any, and the time taken.
    pub fn decode(&mut self, frame: &GrayImage) -> (Option<Found>, Duration) {
        let start = Instant::now();
        let found = self.attempts(frame);
        (found, start.elapsed())
    }

    fn attempts(&mut self, frame: &GrayImage) -> Option<Found> {
        if let Some((x, y, w, h)) = self.region
            && x + w <= frame.width()
            && y + h <= frame.height()
        {
            let crop = image::imageops::crop_imm(frame, x, y, w, h).to_image();
            // A large code keeps modules of several pixels at half scale,
            // where rqrr works on a quarter of the pixels.
            let (crop, scale) = if self.big {
                (half(&crop), 2)
            } else {
                (crop, 1)
            };
            if let Some(d) = first(&crop) {
                self.remember(&d, x, y, scale, frame);
                return Some(Found {
                    text: d.text,
                    attempt: Attempt::Region,
                });
            }
        }
        let half = half(frame);
        if let Some(d) = first(&half) {
            self.remember(&d, 0, 0, 2, frame);
            return Some(Found {
                text: d.text,
                attempt: Attempt::Half,
            });
        }
        if let Some(d) = first(frame) {
            self.remember(&d, 0, 0, 1, frame);
            return Some(Found {
                text: d.text,
                attempt: Attempt::Full,
            });
        }
        // rqrr thresholds adaptively, so a contrast stretch alone never read
        // more (measured on the degraded set); a global Otsu threshold does,
        // for dim screens and glare.
        let binarised = binarise(&half);
        if let Some(d) = first(&binarised) {
            self.remember(&d, 0, 0, 2, frame);
            return Some(Found {
                text: d.text,
                attempt: Attempt::Binarised,
            });
        }
        self.region = None;
        None
    }

    /// Keeps the code's bounding box (in frame pixels) with a margin of half
    /// its size, for the next frame.
    fn remember(&mut self, d: &Decoded, ox: u32, oy: u32, scale: i32, frame: &GrayImage) {
        let xs = d.corners.map(|c| c.0 * scale + ox as i32);
        let ys = d.corners.map(|c| c.1 * scale + oy as i32);
        let (min_x, max_x) = (
            xs.iter().min().copied().unwrap_or(0),
            xs.iter().max().copied().unwrap_or(0),
        );
        let (min_y, max_y) = (
            ys.iter().min().copied().unwrap_or(0),
            ys.iter().max().copied().unwrap_or(0),
        );
        let mx = (max_x - min_x) / 2;
        let my = (max_y - min_y) / 2;
        self.big = (max_x - min_x).min(max_y - min_y) >= BIG_CODE_SIDE;
        let x0 = (min_x - mx).max(0) as u32;
        let y0 = (min_y - my).max(0) as u32;
        let x1 = ((max_x + mx).max(0) as u32).min(frame.width());
        let y1 = ((max_y + my).max(0) as u32).min(frame.height());
        self.region = (x1 > x0 + 20 && y1 > y0 + 20).then(|| (x0, y0, x1 - x0, y1 - y0));
    }
}

fn first(img: &GrayImage) -> Option<Decoded> {
    qr::decode_symbols(img).ok()?.into_iter().next()
}

/// Half resolution by averaging 2×2 blocks (cheaper than a general resize,
/// and averaging smooths sensor noise and screen moiré).
pub fn half(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    let src = img.as_raw();
    let stride = img.width() as usize;
    GrayImage::from_fn(w, h, |x, y| {
        let (x, y) = (2 * x as usize, 2 * y as usize);
        let s = u16::from(src[y * stride + x])
            + u16::from(src[y * stride + x + 1])
            + u16::from(src[(y + 1) * stride + x])
            + u16::from(src[(y + 1) * stride + x + 1]);
        Luma([(s / 4) as u8])
    })
}

/// Black and white at Otsu's threshold.
pub fn binarise(img: &GrayImage) -> GrayImage {
    let hist = histogram(img);
    let total: f64 = hist.iter().map(|&n| f64::from(n)).sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * f64::from(n))
        .sum();
    let (mut w_b, mut sum_b, mut best, mut threshold) = (0.0, 0.0, 0.0, 128u8);
    for (i, &n) in hist.iter().enumerate() {
        w_b += f64::from(n);
        if w_b == 0.0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += i as f64 * f64::from(n);
        let m_b = sum_b / w_b;
        let m_f = (sum_all - sum_b) / w_f;
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            threshold = i as u8;
        }
    }
    let mut out = img.clone();
    for p in out.pixels_mut() {
        p.0[0] = if p.0[0] > threshold { 255 } else { 0 };
    }
    out
}

fn histogram(img: &GrayImage) -> [u32; 256] {
    let mut h = [0u32; 256];
    for p in img.pixels() {
        h[usize::from(p.0[0])] += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with_code(
        text: &str,
        module_px: u32,
        at: (i64, i64),
        contrast: Option<(u8, u8)>,
    ) -> GrayImage {
        let mut sym = qr::render_image(text, module_px).expect("renders");
        if let Some((dark, light)) = contrast {
            for p in sym.pixels_mut() {
                p.0[0] = if p.0[0] < 128 { dark } else { light };
            }
        }
        let bg = contrast.map_or(200, |(_, l)| l);
        let mut frame = GrayImage::from_pixel(1280, 720, Luma([bg]));
        image::imageops::overlay(&mut frame, &sym, at.0, at.1);
        frame
    }

    #[test]
    fn reads_at_half_resolution_then_in_the_remembered_region() {
        let text = "ATJSzVkQEBAQEBAQEBAQZQFqZPBAAWhLNBSJFADVSJFAr1ynxCFFQY2pwRRJzHaSvTzXsLC2vRSP4lQ46K38c2DOGC60ZsH8WZwxv2H6qvkvq685cMPsN3Ua90SprUXeCw";
        let frame = frame_with_code(text, 6, (400, 150), None);
        let mut d = FrameDecoder::new();
        let (found, _) = d.decode(&frame);
        let found = found.expect("reads");
        assert_eq!(found.text, text);
        assert_eq!(found.attempt, Attempt::Half);
        let (again, _) = d.decode(&frame);
        assert_eq!(again.expect("reads").attempt, Attempt::Region);
    }

    #[test]
    fn low_contrast_codes_are_read_after_binarising() {
        let text = "low-contrast-ticket-0123456789";
        let frame = frame_with_code(text, 4, (300, 200), Some((120, 150)));
        let mut d = FrameDecoder::new();
        let (found, _) = d.decode(&frame);
        assert_eq!(found.expect("reads").text, text);
    }

    #[test]
    fn empty_frames_find_nothing_and_forget_the_region() {
        let mut d = FrameDecoder::new();
        let (found, _) = d.decode(&GrayImage::from_pixel(640, 480, Luma([90])));
        assert!(found.is_none());
        assert!(d.region.is_none());
    }
}
