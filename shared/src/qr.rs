//! The QR string and the QR symbol.
//!
//! The QR string is `payload ‖ signature` in base64url without padding (RFC 4648
//! §5). Decoding is strict: padding, characters outside the alphabet and
//! non-zero trailing bits are all refused, so one ticket has exactly one string
//! and a flipped bit anywhere changes what is verified.
//!
//! Symbols are rendered at error-correction level Q (25 % of the symbol may be
//! lost): a ticket is shown on cracked phone screens and creased paper.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use image::{GrayImage, ImageFormat, Luma};
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::types::Color;
use qrcode::{EcLevel, QrCode, Version};
use thiserror::Error;

use crate::signing::SIGNATURE_LEN;
use crate::ticket::MAX_PAYLOAD_LEN;

/// Error-correction level of every ticket symbol.
pub const EC_LEVEL: EcLevel = EcLevel::Q;

/// Longest QR string a valid ticket can have; longer input is refused before
/// it is decoded.
pub const MAX_QR_STRING_LEN: usize = (MAX_PAYLOAD_LEN + SIGNATURE_LEN).div_ceil(3) * 4;

/// Why a string is not a well-formed QR string.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum QrStringError {
    /// Longer than any ticket.
    #[error("code too long to be a ticket")]
    TooLong,
    /// Not strict base64url without padding.
    #[error("code is not valid base64url")]
    BadBase64,
    /// Too short to hold a payload and a signature.
    #[error("code too short to be a ticket")]
    TooShort,
}

/// Encodes `payload ‖ signature` bytes as a QR string.
pub fn encode_string(signed: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(signed)
}

/// Decodes a QR string into `(payload, signature)`, refusing anything that is
/// not strict base64url of a plausible length.
pub fn decode_string(s: &str) -> Result<(Vec<u8>, [u8; SIGNATURE_LEN]), QrStringError> {
    if s.len() > MAX_QR_STRING_LEN {
        return Err(QrStringError::TooLong);
    }
    let mut bytes = URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| QrStringError::BadBase64)?;
    if bytes.len() <= SIGNATURE_LEN {
        return Err(QrStringError::TooShort);
    }
    let split = bytes.len() - SIGNATURE_LEN;
    let mut sig = [0u8; SIGNATURE_LEN];
    sig.copy_from_slice(&bytes[split..]);
    bytes.truncate(split);
    Ok((bytes, sig))
}

/// Why a symbol could not be rendered.
#[derive(Debug, Error)]
pub enum RenderError {
    /// The data does not fit any QR version.
    #[error("data does not fit a QR code: {0}")]
    TooLong(#[from] qrcode::types::QrError),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] image::ImageError),
}

/// Size facts of a rendered symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolInfo {
    /// QR version (1–40).
    pub version: i16,
    /// Modules per side, without the quiet zone.
    pub modules: usize,
}

fn symbol(text: &str) -> Result<QrCode, RenderError> {
    Ok(QrCode::with_error_correction_level(
        text.as_bytes(),
        EC_LEVEL,
    )?)
}

/// The eight mask patterns, in the order the `qrcode` crate tries them (a
/// tie goes to the first), with the format information each one writes at
/// error-correction level Q (ISO/IEC 18004 table C.1: the 15-bit BCH code
/// of `11` ‖ mask, XOR `101010000010010`).
const MASKS: [(MaskPattern, u16); 8] = [
    (MaskPattern::Checkerboard, 0x355f),
    (MaskPattern::HorizontalLines, 0x3068),
    (MaskPattern::VerticalLines, 0x3f31),
    (MaskPattern::DiagonalLines, 0x3a06),
    (MaskPattern::LargeCheckerboard, 0x24b4),
    (MaskPattern::Fields, 0x2183),
    (MaskPattern::Diamonds, 0x2eda),
    (MaskPattern::Meadow, 0x2bed),
];

/// Whether mask `pattern` inverts the data module at column `x`, row `y`.
// Written as ISO/IEC 18004 table 10 writes them, `… mod 2 = 0`.
#[allow(clippy::manual_is_multiple_of)]
fn mask_inverts(pattern: MaskPattern, x: usize, y: usize) -> bool {
    match pattern {
        MaskPattern::Checkerboard => (x + y) % 2 == 0,
        MaskPattern::HorizontalLines => y % 2 == 0,
        MaskPattern::VerticalLines => x % 3 == 0,
        MaskPattern::DiagonalLines => (x + y) % 3 == 0,
        MaskPattern::LargeCheckerboard => (y / 2 + x / 3) % 2 == 0,
        MaskPattern::Fields => (x * y) % 2 + (x * y) % 3 == 0,
        MaskPattern::Diamonds => ((x * y) % 2 + (x * y) % 3) % 2 == 0,
        MaskPattern::Meadow => ((x + y) % 2 + (x * y) % 3) % 2 == 0,
    }
}

/// Where the two copies of the format information go, most significant
/// bit first; negative coordinates count from the far edge.
const FORMAT_MAIN: [(i32, i32); 15] = [
    (0, 8),
    (1, 8),
    (2, 8),
    (3, 8),
    (4, 8),
    (5, 8),
    (7, 8),
    (8, 8),
    (8, 7),
    (8, 5),
    (8, 4),
    (8, 3),
    (8, 2),
    (8, 1),
    (8, 0),
];
const FORMAT_SIDE: [(i32, i32); 15] = [
    (8, -1),
    (8, -2),
    (8, -3),
    (8, -4),
    (8, -5),
    (8, -6),
    (8, -7),
    (-8, 8),
    (-7, 8),
    (-6, 8),
    (-5, 8),
    (-4, 8),
    (-3, 8),
    (-2, 8),
    (-1, 8),
];

/// Widest symbol scored with one machine word a row (version 27); wider
/// symbols, never a ticket, are left to the `qrcode` crate's own scoring.
const MAX_FAST_WIDTH: usize = 128;

/// A QR symbol's modules, without the quiet zone.
///
/// The same symbol as `qrcode::QrCode::with_error_correction_level(text,
/// EC_LEVEL)`, found faster. That crate draws and scores each of the eight
/// masks module by module, with a heap allocation per module and direction
/// when it looks for finder-like patterns: over a millisecond a ticket, the
/// largest CPU cost of a checkout. Here each row is one 128-bit word, a mask
/// is applied with one AND and XOR a row, and the standard's four penalty
/// rules (N1 runs, N2 blocks, N3 finder-like patterns, N4 balance) are
/// counted with shifts and popcounts, with the crate's arithmetic, so the
/// chosen mask is the same (a test compares both, module by module, over
/// many inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    version: i16,
    width: usize,
    /// Row by row, true for a dark module.
    dark: Vec<bool>,
}

impl Matrix {
    /// Encodes `text` at [`EC_LEVEL`] in the smallest version it fits.
    pub fn encode(text: &str) -> Result<Self, RenderError> {
        let bits = qrcode::bits::encode_auto(text.as_bytes(), EC_LEVEL)?;
        let version = bits.version();
        let number = match version {
            Version::Normal(v) | Version::Micro(v) => v,
        };
        let width = usize::try_from(version.width()).unwrap_or(0);
        if width > MAX_FAST_WIDTH || matches!(version, Version::Micro(_)) {
            let code = symbol(text)?;
            return Ok(Self {
                version: number,
                width: code.width(),
                dark: code
                    .to_colors()
                    .into_iter()
                    .map(|c| c == Color::Dark)
                    .collect(),
            });
        }
        let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC_LEVEL)?;
        let mut canvas = Canvas::new(version, EC_LEVEL);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data, &ec);

        // Before masking: the dark modules, and the modules a mask may invert
        // (data and error correction; function patterns are already final).
        let (mut base, mut maskable) = (vec![0u128; width], vec![0u128; width]);
        for y in 0..width {
            for x in 0..width {
                let module = canvas.get(coord(x), coord(y));
                let bit = 1u128 << x;
                match module {
                    Module::Masked(Color::Dark) => base[y] |= bit,
                    Module::Masked(Color::Light) => {}
                    Module::Unmasked(c) => {
                        maskable[y] |= bit;
                        if c == Color::Dark {
                            base[y] |= bit;
                        }
                    }
                    Module::Empty => maskable[y] |= bit,
                }
            }
        }

        let mut best: Option<(u32, Vec<u128>)> = None;
        let mut rows = vec![0u128; width];
        for (pattern, format) in MASKS {
            // Every mask repeats every 12 rows (periods 2, 3, 4 and 6).
            let period: Vec<u128> = (0..12)
                .map(|y| {
                    (0..width)
                        .filter(|&x| mask_inverts(pattern, x, y))
                        .fold(0u128, |acc, x| acc | (1u128 << x))
                })
                .collect();
            for (y, row) in rows.iter_mut().enumerate() {
                *row = base[y] ^ (maskable[y] & period[y % 12]);
            }
            for coords in [&FORMAT_MAIN, &FORMAT_SIDE] {
                for (i, (x, y)) in coords.iter().enumerate() {
                    let dark = format & (1 << (14 - i)) != 0;
                    let (x, y) = (wrap(*x, width), wrap(*y, width));
                    if dark {
                        rows[y] |= 1u128 << x;
                    } else {
                        rows[y] &= !(1u128 << x);
                    }
                }
            }
            let score = penalty(&rows, width);
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, rows.clone()));
            }
        }
        let rows = best.map(|(_, r)| r).unwrap_or_default();
        let dark = rows
            .iter()
            .flat_map(|row| (0..width).map(move |x| row >> x & 1 == 1))
            .collect();
        Ok(Self {
            version: number,
            width,
            dark,
        })
    }

    /// QR version (1–40).
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark (outside: light).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark.get(y * self.width + x).is_some_and(|d| *d)
    }
}

/// A coordinate for `qrcode`'s canvas (widths are at most 177).
fn coord(v: usize) -> i16 {
    i16::try_from(v).unwrap_or(i16::MAX)
}

/// A coordinate of the format tables: negative counts from the far edge.
fn wrap(v: i32, width: usize) -> usize {
    let w = i32::try_from(width).unwrap_or(0);
    usize::try_from(if v < 0 { v + w } else { v }).unwrap_or(0)
}

/// The low `n` bits set (`n` ≤ 128).
fn low_bits(n: usize) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// Penalty score of a masked symbol, one word a row (bit x = column x, set
/// for dark), computed as the `qrcode` crate computes it, rule by rule.
fn penalty(rows: &[u128], width: usize) -> u32 {
    let w = width;
    if !(7..=MAX_FAST_WIDTH).contains(&w) || rows.len() != w {
        return u32::MAX;
    }
    let mut cols = vec![0u128; w];
    for (y, row) in rows.iter().enumerate() {
        let mut bits = *row;
        while bits != 0 {
            let x = bits.trailing_zeros() as usize;
            cols[x] |= 1u128 << y;
            bits &= bits - 1;
        }
    }
    let mut score = 0u32;
    for lines in [rows, cols.as_slice()] {
        let mut finders = 0u32;
        for line in lines {
            score += run_penalty(*line, w);
            finders += finder_like(*line, w);
        }
        // The three finder patterns match 9 times in each direction; the
        // crate takes those out.
        score += 40 * finders.saturating_sub(9);
    }
    // N2: each 2 × 2 block of one colour (overlaps counted): 3.
    let pairs = low_bits(w - 1);
    for ab in rows.windows(2) {
        let (a, b) = (ab[0], ab[1]);
        let same = !(a ^ (a >> 1)) & !(b ^ (b >> 1)) & !(a ^ b) & pairs;
        score += 3 * same.count_ones();
    }
    // N4: distance of the dark share from 50 %, in half-percent steps.
    let dark: usize = rows.iter().map(|r| r.count_ones() as usize).sum();
    let ratio = dark * 200 / (w * w);
    score + u32::try_from(ratio.abs_diff(100)).unwrap_or(u32::MAX)
}

/// N1 of one line: each run of 5 + k modules of one colour scores 3 + k.
fn run_penalty(line: u128, w: usize) -> u32 {
    // Bit k set where module k differs from module k + 1: a run ends there.
    let mut ends = (line ^ (line >> 1)) & low_bits(w - 1);
    let (mut score, mut start) = (0u32, 0usize);
    let mut add = |len: usize| {
        if len >= 5 {
            score += u32::try_from(len - 2).unwrap_or(0);
        }
    };
    while ends != 0 {
        let k = ends.trailing_zeros() as usize;
        add(k + 1 - start);
        start = k + 1;
        ends &= ends - 1;
    }
    add(w - start);
    score
}

/// N3 of one line: how many 1:1:3:1:1 dark-light patterns lack four light
/// modules on at least one side (the edge counts as light).
fn finder_like(line: u128, w: usize) -> u32 {
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    let mut at = low_bits(w - 6);
    for (k, dark) in FINDER.iter().enumerate() {
        at &= if *dark { line >> k } else { !line >> k };
    }
    let mut count = 0;
    while at != 0 {
        let j = at.trailing_zeros() as usize;
        let before = low_bits(j) & !low_bits(j.saturating_sub(4));
        let after = low_bits((j + 11).min(w)) & !low_bits(j + 7);
        if line & before == 0 || line & after == 0 {
            count += 1;
        }
        at &= at - 1;
    }
    count
}

/// Version and module count of the symbol for `text`.
pub fn symbol_info(text: &str) -> Result<SymbolInfo, RenderError> {
    let m = Matrix::encode(text)?;
    Ok(SymbolInfo {
        version: m.version(),
        modules: m.width(),
    })
}

/// Renders `text` as a grayscale image, `module_px` pixels a module, with the
/// standard 4-module quiet zone.
pub fn render_image(text: &str, module_px: u32) -> Result<GrayImage, RenderError> {
    let module_px = module_px.clamp(1, 64);
    let m = Matrix::encode(text)?;
    let quiet = 4u32;
    let modules = u32::try_from(m.width()).unwrap_or(0) + 2 * quiet;
    let side = modules * module_px;
    Ok(GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / module_px, y / module_px);
        let dark =
            mx >= quiet && my >= quiet && m.is_dark((mx - quiet) as usize, (my - quiet) as usize);
        Luma([if dark { 0 } else { 255 }])
    }))
}

/// Renders `text` as a PNG file's bytes.
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, RenderError> {
    let img = render_image(text, module_px)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Renders `text` as a standalone SVG document (scales to any size in a page or PDF).
pub fn render_svg(text: &str) -> Result<String, RenderError> {
    Ok(symbol(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(200, 200)
        .build())
}

/// Largest image side accepted by [`decode_image`]: bigger images are refused
/// rather than allowed to take unbounded time and memory.
pub const MAX_DECODE_SIDE: u32 = 8192;

/// Why no QR string came out of an image.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeImageError {
    /// No QR symbol was found or none could be read.
    #[error("no readable QR code in the image")]
    NotFound,
    /// The image is larger than [`MAX_DECODE_SIDE`].
    #[error("image too large")]
    TooLarge,
}

/// A QR symbol read from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The symbol's text.
    pub text: String,
    /// The symbol's corners in image pixels (clockwise from top-left), so a
    /// caller can look again in the same region of the next frame.
    pub corners: [(i32, i32); 4],
}

/// Decodes every QR symbol rqrr finds in a grayscale image, in detection order.
pub fn decode_symbols(img: &GrayImage) -> Result<Vec<Decoded>, DecodeImageError> {
    if img.width() > MAX_DECODE_SIDE || img.height() > MAX_DECODE_SIDE {
        return Err(DecodeImageError::TooLarge);
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        // x < w and y < h by rqrr's contract; get_pixel_checked keeps us panic-free anyway.
        img.get_pixel_checked(x as u32, y as u32)
            .map_or(255, |p| p.0[0])
    });
    let found: Vec<Decoded> = prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| {
            let corners = g.bounds.map(|p| (p.x, p.y));
            g.decode().ok().map(|(_, text)| Decoded { text, corners })
        })
        .collect();
    if found.is_empty() {
        return Err(DecodeImageError::NotFound);
    }
    Ok(found)
}

/// Decodes every QR symbol rqrr finds in a grayscale image; the strings of the
/// symbols that could be read, in detection order.
pub fn decode_image(img: &GrayImage) -> Result<Vec<String>, DecodeImageError> {
    Ok(decode_symbols(img)?.into_iter().map(|d| d.text).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trips_and_is_strict() {
        let bytes: Vec<u8> = (0u8..100).collect();
        let s = encode_string(&bytes);
        assert!(!s.contains('='));
        let (payload, sig) = decode_string(&s).expect("decodes");
        assert_eq!(payload, &bytes[..36]);
        assert_eq!(&sig[..], &bytes[36..]);
        assert_eq!(
            decode_string(&format!("{s}=")),
            Err(QrStringError::BadBase64)
        );
        assert_eq!(decode_string("a+b/"), Err(QrStringError::BadBase64));
        assert_eq!(decode_string("AAAA"), Err(QrStringError::TooShort));
        assert_eq!(
            decode_string(&"A".repeat(MAX_QR_STRING_LEN + 1)),
            Err(QrStringError::TooLong)
        );
    }

    #[test]
    fn rendered_symbol_decodes_with_rqrr() {
        let text = "hello-ticket_0123456789";
        let img = render_image(text, 6).expect("renders");
        assert_eq!(decode_image(&img).expect("decodes"), vec![text.to_owned()]);
        let svg = render_svg(text).expect("svg");
        assert!(svg.contains("<svg"));
        let png = render_png(text, 4).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    /// The fast mask choice gives, module for module, the symbol the
    /// `qrcode` crate gives: ticket-like strings of every length a ticket can
    /// have, and other lengths and alphabets (other versions and modes).
    #[test]
    fn matrix_is_the_qrcode_crate_symbol() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut masks_seen = std::collections::HashSet::new();
        for len in (1..=MAX_QR_STRING_LEN).chain([300, 500, 900, 1200]) {
            for alphabet in [B64, b"0123456789".as_slice(), b"ABC123 $%*+-./:".as_slice()] {
                let text: String = (0..len)
                    .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                    .collect();
                let ours = Matrix::encode(&text).expect("encodes");
                let theirs = symbol(&text).expect("encodes");
                assert_eq!(ours.width(), theirs.width(), "{text}");
                let colors = theirs.to_colors();
                for y in 0..ours.width() {
                    for x in 0..ours.width() {
                        assert_eq!(
                            ours.is_dark(x, y),
                            colors[y * ours.width() + x] == Color::Dark,
                            "module ({x}, {y}) of {text:?}"
                        );
                    }
                }
                // The format information (row 8, columns 0–5) tells the mask.
                masks_seen.insert((0..6).map(|x| ours.is_dark(x, 8)).collect::<Vec<_>>());
            }
        }
        // Many different masks were chosen, so the comparison covers the scoring.
        assert!(masks_seen.len() >= 6, "{} masks", masks_seen.len());
    }

    #[test]
    fn blank_image_has_no_code() {
        let img = GrayImage::from_pixel(64, 64, Luma([255]));
        assert_eq!(decode_image(&img), Err(DecodeImageError::NotFound));
    }
}
