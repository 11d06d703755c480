//! Ticket QR symbols as the shop serves them: each ticket's symbol is
//! encoded once and shared by its PNG (`/tickets/{id}/qr.png`) and its PDF
//! page (the order's confirmation mail, the PDF downloads).
//!
//! Encoding is one of the costliest steps of a checkout (~0.2 ms a ticket:
//! all eight masks are scored, as the QR standard asks), and a paid
//! ticket's QR is drawn at least twice (the mail's PDF, the QR shown on the
//! order page), then again each time "Mes billets" is opened. The symbol
//! itself comes from [`jo_shared::qr::Matrix`], so it is the same symbol
//! the scanners' code produces and reads.
//!
//! The PNG is written here (1 bit a pixel, deflate with runs only): the
//! symbol is black and white squares, so that is a few KiB, and it needs no
//! second pass through an image library.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use jo_shared::qr::RenderError;

/// A QR symbol with its 4-module quiet zone: `size` × `size` modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    size: u32,
    /// Row by row, true for a dark module.
    dark: Vec<bool>,
}

impl Symbol {
    /// Encodes `text` (always; see [`symbol`] for the shared copy).
    pub fn encode(text: &str) -> Result<Self, RenderError> {
        let m = jo_shared::qr::Matrix::encode(text)?;
        const QUIET: usize = 4;
        let side = m.width() + 2 * QUIET;
        let mut dark = Vec::with_capacity(side * side);
        for y in 0..side {
            for x in 0..side {
                dark.push(x >= QUIET && y >= QUIET && m.is_dark(x - QUIET, y - QUIET));
            }
        }
        Ok(Self {
            size: u32::try_from(side).unwrap_or(0),
            dark,
        })
    }

    /// Modules per side, quiet zone included.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether the module at column `x`, row `y` (from the top left) is dark.
    pub fn is_dark(&self, x: u32, y: u32) -> bool {
        x < self.size
            && usize::try_from(y * self.size + x)
                .ok()
                .and_then(|i| self.dark.get(i))
                .is_some_and(|d| *d)
    }

    /// A PNG of the symbol, `module_px` pixels a module (1 to 64): black on
    /// white, 1 bit a pixel.
    pub fn png(&self, module_px: u32) -> Vec<u8> {
        let px = module_px.clamp(1, 64);
        let side = self.size * px;
        let row_bytes = usize::try_from(side.div_ceil(8)).unwrap_or(0);
        // Filtered scanlines: each module row once ("None" filter), then its
        // repeats as "Up" (all zero bytes, which deflate turns into one run).
        let mut raw = Vec::with_capacity((row_bytes + 1) * usize::try_from(side).unwrap_or(0));
        let mut line = vec![0u8; row_bytes];
        let (size, px) = (self.size as usize, px as usize);
        for row in self.dark.chunks_exact(size) {
            line.fill(0);
            for (mx, dark) in row.iter().enumerate() {
                // White is 1 in 1-bit grayscale.
                if !dark {
                    for x in mx * px..(mx + 1) * px {
                        line[x / 8] |= 0x80 >> (x % 8);
                    }
                }
            }
            raw.push(0);
            raw.extend_from_slice(&line);
            for _ in 1..px {
                raw.push(2);
                raw.resize(raw.len() + row_bytes, 0);
            }
        }
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&side.to_be_bytes());
        // Bit depth 1, grayscale, deflate, adaptive filtering, no interlace.
        ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib(&raw));
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

/// Symbols of the tickets drawn lately, by QR string. Bounded: the oldest
/// entries go first (a symbol is about 4 KiB).
struct Cache {
    map: HashMap<String, Arc<Mutex<Option<Arc<Symbol>>>>>,
    order: VecDeque<String>,
}

const CACHE_ENTRIES: usize = 2048;

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| {
    Mutex::new(Cache {
        map: HashMap::new(),
        order: VecDeque::new(),
    })
});

/// The symbol of a ticket's QR string, encoded once while it stays in a
/// small process-wide cache. Concurrent callers for one ticket wait for a
/// single encoding. Blocks: call it off the async workers.
pub fn symbol(text: &str) -> Result<Arc<Symbol>, RenderError> {
    let slot = {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.map.get(text) {
            Some(slot) => slot.clone(),
            None => {
                if cache.order.len() >= CACHE_ENTRIES
                    && let Some(old) = cache.order.pop_front()
                {
                    cache.map.remove(&old);
                }
                let slot = Arc::new(Mutex::new(None));
                cache.map.insert(text.to_owned(), slot.clone());
                cache.order.push_back(text.to_owned());
                slot
            }
        }
    };
    let mut entry = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = entry.as_ref() {
        return Ok(s.clone());
    }
    let s = Arc::new(Symbol::encode(text)?);
    *entry = Some(s.clone());
    Ok(s)
}

/// Appends a PNG chunk.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// CRC-32 (ISO 3309), as PNG chunks carry.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for b in data {
        c = CRC_TABLE[usize::from((c as u8) ^ b)] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// Writes bits least significant first, as deflate wants them.
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= value << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate stores most significant bit first.
    fn put_code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    /// A literal byte or end-of-block (256) with the fixed code.
    fn literal(&mut self, v: u32) {
        match v {
            0..=143 => self.put_code(0x30 + v, 8),
            144..=255 => self.put_code(0x190 + v - 144, 9),
            256..=279 => self.put_code(v - 256, 7),
            _ => self.put_code(0xC0 + v - 280, 8),
        }
    }
}

const LEN_BASE: [u32; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// A zlib stream of `data`: one fixed-Huffman deflate block whose only
/// matches repeat the previous byte (runs), which is all a QR image needs.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits {
        out: Vec::with_capacity(data.len() / 8 + 64),
        acc: 0,
        n: 0,
    };
    bits.out.extend_from_slice(&[0x78, 0x01]);
    // Final block, fixed Huffman codes.
    bits.put(1, 1);
    bits.put(1, 2);
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        bits.literal(u32::from(b));
        i += 1;
        // Then as much of the run of `b` as follows, 258 bytes a match at most.
        let mut run = data[i..].iter().take_while(|&&x| x == b).count();
        while run >= 3 {
            let len = run.min(258);
            let len32 = u32::try_from(len).unwrap_or(258);
            let code = LEN_BASE
                .iter()
                .rposition(|&base| base <= len32)
                .unwrap_or(0);
            bits.literal(257 + u32::try_from(code).unwrap_or(0));
            bits.put(len32 - LEN_BASE[code], LEN_EXTRA[code]);
            // Distance 1: distance code 0, five bits, no extra bits.
            bits.put_code(0, 5);
            i += len;
            run -= len;
        }
        for _ in 0..run {
            bits.literal(u32::from(b));
            i += 1;
        }
    }
    bits.literal(256);
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    // Adler-32, reduced every 5,552 bytes (the most that cannot overflow)
    // rather than twice a byte.
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(5552) {
        for &x in block {
            a += u32::from(x);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    bits.out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    bits.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket_qr() -> String {
        let signer = jo_shared::TicketSigner::generate().expect("key");
        crate::tickets::issue(
            &signer,
            &jo_shared::doublekey::UserKey::generate().expect("random"),
            &jo_shared::doublekey::PurchaseKey::generate().expect("random"),
            &crate::tickets::TicketSpec {
                index: 3,
                session_id: 42,
                admits: 2,
                valid_from: 1_900_000_000,
                valid_until: 1_900_010_000,
                holder: "Élodie Martin",
            },
        )
        .expect("issues")
        .qr
    }

    #[test]
    fn the_symbol_is_the_shared_encoders() {
        let qr = ticket_qr();
        let s = Symbol::encode(&qr).expect("encodes");
        let img = jo_shared::qr::render_image(&qr, 1).expect("renders");
        assert_eq!(s.size(), img.width());
        for y in 0..s.size() {
            for x in 0..s.size() {
                assert_eq!(
                    s.is_dark(x, y),
                    img.get_pixel(x, y).0[0] < 128,
                    "({x}, {y})"
                );
            }
        }
        // The cache hands out the same symbol.
        assert_eq!(*symbol(&qr).expect("cached"), s);
        assert!(Arc::ptr_eq(
            &symbol(&qr).expect("a"),
            &symbol(&qr).expect("b")
        ));
    }

    #[test]
    fn crc_and_adler_match_known_values() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let z = zlib(b"Wikipedia");
        assert_eq!(&z[z.len() - 4..], &0x11E6_0398u32.to_be_bytes());
    }

    /// A minimal inflater for what [`zlib`] writes (one fixed-Huffman block).
    fn inflate_fixed(z: &[u8]) -> Vec<u8> {
        assert_eq!(&z[..2], &[0x78, 0x01]);
        let data = &z[2..z.len() - 4];
        let mut pos = 0usize;
        let mut bit = |n: u32| -> u32 {
            let mut v = 0;
            for k in 0..n {
                let b = (data[pos / 8] >> (pos % 8)) & 1;
                v |= u32::from(b) << k;
                pos += 1;
            }
            v
        };
        assert_eq!(bit(1), 1, "final block");
        assert_eq!(bit(2), 1, "fixed codes");
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Read a fixed literal/length code, most significant bit first.
            let mut code = 0u32;
            let mut len = 0;
            let sym = loop {
                code = (code << 1) | bit(1);
                len += 1;
                match len {
                    7 if code <= 0x17 => break code + 256,
                    8 if (0x30..=0xBF).contains(&code) => break code - 0x30,
                    8 if (0xC0..=0xC7).contains(&code) => break code - 0xC0 + 280,
                    9 if (0x190..=0x1FF).contains(&code) => break code - 0x190 + 144,
                    _ => assert!(len < 9, "bad code"),
                }
            };
            match sym {
                0..=255 => out.push(u8::try_from(sym).expect("byte")),
                256 => break,
                _ => {
                    let c = usize::try_from(sym - 257).expect("index");
                    let n = LEN_BASE[c] + bit(LEN_EXTRA[c]);
                    let mut d = 0;
                    for _ in 0..5 {
                        d = (d << 1) | bit(1);
                    }
                    assert_eq!(d, 0, "distance 1 only");
                    for _ in 0..n {
                        let last = *out.last().expect("a byte to repeat");
                        out.push(last);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn deflate_round_trips() {
        let mut data = vec![7u8; 1000];
        data.extend_from_slice(b"abcabc");
        data.extend(std::iter::repeat_n(0u8, 300));
        data.extend((0..=255u8).cycle().take(700));
        assert_eq!(inflate_fixed(&zlib(&data)), data);
        assert_eq!(inflate_fixed(&zlib(&[])), Vec::<u8>::new());
    }

    #[test]
    fn zlib_ends_with_the_adler32_of_the_data() {
        let trailer = |data: &[u8]| {
            let z = zlib(data);
            u32::from_be_bytes(z[z.len() - 4..].try_into().expect("4 bytes"))
        };
        assert_eq!(trailer(b"Wikipedia"), 0x11E6_0398);
        // Longer than one deferred-reduction block, bytes at their largest.
        let data: Vec<u8> = (0..20_000u32).map(|i| 255 - (i % 7) as u8).collect();
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &data {
            a = (a + u32::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(trailer(&data), (b << 16) | a);
    }

    #[test]
    fn the_png_shows_the_symbol() {
        let s = Symbol::encode(&ticket_qr()).expect("encodes");
        let px = 6;
        let png = s.png(px);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let side = u32::from_be_bytes(png[16..20].try_into().expect("width"));
        assert_eq!(side, s.size() * px);
        // One IDAT chunk after the 33 bytes of signature and IHDR.
        let len =
            usize::try_from(u32::from_be_bytes(png[33..37].try_into().expect("len"))).expect("len");
        assert_eq!(&png[37..41], b"IDAT");
        let raw = inflate_fixed(&png[41..41 + len]);
        let row_bytes = usize::try_from(side.div_ceil(8)).expect("row");
        let mut prev = vec![0u8; row_bytes];
        for y in 0..side {
            let at = usize::try_from(y).expect("y") * (row_bytes + 1);
            let mut line = raw[at + 1..at + 1 + row_bytes].to_vec();
            match raw[at] {
                0 => {}
                2 => line
                    .iter_mut()
                    .zip(&prev)
                    .for_each(|(b, p)| *b = b.wrapping_add(*p)),
                f => panic!("filter {f}"),
            }
            for x in 0..side {
                let white = line[usize::try_from(x / 8).expect("x")] & (0x80 >> (x % 8)) != 0;
                assert_eq!(!white, s.is_dark(x / px, y / px), "pixel ({x}, {y})");
            }
            prev = line;
        }
        assert!(png.len() < 8 * 1024, "{} bytes", png.len());
    }
}
