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

/// Version and module count of the symbol for `text`.
pub fn symbol_info(text: &str) -> Result<SymbolInfo, RenderError> {
    let code = symbol(text)?;
    let version = match code.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    };
    Ok(SymbolInfo {
        version,
        modules: code.width(),
    })
}

/// Renders `text` as a grayscale image, `module_px` pixels a module, with the
/// standard 4-module quiet zone.
pub fn render_image(text: &str, module_px: u32) -> Result<GrayImage, RenderError> {
    let module_px = module_px.clamp(1, 64);
    Ok(symbol(text)?
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .build())
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

    #[test]
    fn blank_image_has_no_code() {
        let img = GrayImage::from_pixel(64, 64, Luma([255]));
        assert_eq!(decode_image(&img), Err(DecodeImageError::NotFound));
    }
}
