//! The ticket payload and its compact, versioned binary codec (format v1).
//!
//! The payload is what the server signs. It is kept small so that, with its
//! 64-byte Ed25519 signature and base64url, a ticket for a 30-character name fits
//! a version-10 QR symbol at error-correction level Q. Layout of format v1 (all
//! integers big-endian; the full specification is `fixtures/FORMAT.md`):
//!
//! | offset | size  | field                                                        |
//! |--------|-------|--------------------------------------------------------------|
//! | 0      | 1     | format version, `0x01`                                       |
//! | 1      | 4     | signing key id (first 4 bytes of SHA-256 of the public key)  |
//! | 5      | 10    | ticket id (first 10 bytes of the ticket secret)              |
//! | 15     | 1–5   | session id, unsigned LEB128, shortest form                   |
//! | …      | 1     | admits (1–255 people)                                        |
//! | …      | 4     | valid from, Unix seconds (u32)                               |
//! | …      | 2     | validity length in minutes (u16, ≥ 1)                        |
//! | …      | 1     | holder name header: bits 7–6 encoding, bits 5–0 length       |
//! | …      | n     | holder name                                                  |
//!
//! The holder name is either *packed* (encoding `01`: up to 32 characters of a
//! 64-symbol upper-case alphabet at 6 bits each, enough for most names written
//! in Latin script) or *UTF-8* (encoding `00`: up to 32 bytes). Nothing may
//! follow the name: trailing bytes are an error, so one payload has exactly one
//! encoding.

use std::fmt;

use thiserror::Error;

use crate::signing::KeyId;

/// The only payload format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;

/// Length in bytes of a [`TicketId`].
pub const TICKET_ID_LEN: usize = 10;

/// Longest holder name in the payload: characters when packed, bytes in UTF-8.
pub const MAX_HOLDER_LEN: usize = 32;

/// Largest encoded payload of format v1 (every field at its longest).
pub const MAX_PAYLOAD_LEN: usize = 1 + 4 + TICKET_ID_LEN + 5 + 1 + 4 + 2 + 1 + MAX_HOLDER_LEN;

/// The public identifier of a ticket: the first [`TICKET_ID_LEN`] bytes of the
/// ticket secret derived from the double key (see [`crate::doublekey`]).
///
/// It names the ticket in revocation lists and scan logs. Knowing it does not let
/// anyone make a ticket: only the server's signature does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(pub [u8; TICKET_ID_LEN]);

impl TicketId {
    /// Lower-case hexadecimal, the form used in JSON and in the admin console.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the lower- or upper-case hexadecimal form.
    pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
        if s.len() != TICKET_ID_LEN * 2 {
            return Err(DecodeError::BadTicketId);
        }
        let mut id = [0u8; TICKET_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| DecodeError::BadTicketId)?;
        Ok(Self(id))
    }
}

impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({})", self.to_hex())
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for TicketId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for TicketId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The 64 symbols of the packed holder-name alphabet, in code order.
///
/// Upper case only: a gate agent compares the name with an identity document,
/// where names are commonly printed in capitals. Digits are left out (names have
/// none) to make room for the accented capitals of European names.
pub const PACKED_ALPHABET: [char; 64] = [
    ' ', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R',
    'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', '-', '\'', '.', 'À', 'Á', 'Â', 'Ã', 'Ä', 'Å', 'Æ', 'Ç',
    'È', 'É', 'Ê', 'Ë', 'Ì', 'Í', 'Î', 'Ï', 'Ð', 'Ñ', 'Ò', 'Ó', 'Ô', 'Õ', 'Ö', 'Ø', 'Ù', 'Ú', 'Û',
    'Ü', 'Ý', 'Þ', 'Ÿ', 'Œ', 'Š', 'Ž',
];

fn packed_code(c: char) -> Option<u8> {
    PACKED_ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|i| u8::try_from(i).ok())
}

/// A holder name as it travels in the payload: at most [`MAX_HOLDER_LEN`]
/// characters (packed) or bytes (UTF-8), without control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HolderName(String);

impl HolderName {
    /// Builds the payload form of a person's name: whitespace collapsed, control
    /// characters removed, upper-cased when the whole name fits the packed
    /// alphabet (so that it packs at 6 bits a character), and cut at
    /// [`MAX_HOLDER_LEN`] on a character boundary. Never fails: the full name
    /// stays on the server; the payload carries what a gate agent needs to read.
    pub fn shorten(name: &str) -> Self {
        let cleaned: String = name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let upper = cleaned.to_uppercase();
        if upper.chars().all(|c| packed_code(c).is_some()) {
            let cut: String = upper.chars().take(MAX_HOLDER_LEN).collect();
            return Self(cut.trim_end().to_owned());
        }
        let mut cut = String::new();
        for c in cleaned.chars() {
            if cut.len() + c.len_utf8() > MAX_HOLDER_LEN {
                break;
            }
            cut.push(c);
        }
        Self(cut.trim_end().to_owned())
    }

    /// Accepts a name exactly as given, or says why it cannot travel in a payload.
    pub fn new(name: &str) -> Result<Self, EncodeError> {
        if name.chars().any(char::is_control) {
            return Err(EncodeError::HolderNameControl);
        }
        let fits = if Self::is_packable(name) {
            name.chars().count() <= MAX_HOLDER_LEN
        } else {
            name.len() <= MAX_HOLDER_LEN
        };
        if !fits {
            return Err(EncodeError::HolderNameTooLong);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_packable(s: &str) -> bool {
        s.chars().all(|c| packed_code(c).is_some())
    }
}

impl fmt::Debug for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderName({:?})", self.0)
    }
}

impl fmt::Display for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signed content of a ticket (format v1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketPayload {
    /// Id of the server key that signs this payload.
    pub key_id: KeyId,
    /// The ticket's public id, derived from the double key.
    pub ticket_id: TicketId,
    /// The session (épreuve) this ticket is for.
    pub session_id: u32,
    /// How many people this ticket admits (the offer's seats), 1 to 255.
    pub admits: u8,
    /// Start of the validity window, Unix seconds.
    pub valid_from: u32,
    /// Length of the validity window in minutes (at least 1).
    pub valid_minutes: u16,
    /// Holder's name, for the identity check at the gate.
    pub holder: HolderName,
}

/// Why a payload could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A ticket admits at least one person.
    #[error("a ticket must admit at least one person")]
    ZeroAdmits,
    /// The validity window is at least one minute long.
    #[error("the validity window must last at least one minute")]
    EmptyWindow,
    /// The holder name is longer than the payload allows.
    #[error("holder name longer than {MAX_HOLDER_LEN} characters/bytes")]
    HolderNameTooLong,
    /// Control characters have no place in a printed name.
    #[error("holder name contains control characters")]
    HolderNameControl,
}

/// Why bytes are not a valid payload. Each variant is a distinct, user-facing reason.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload is shorter than its fields require.
    #[error("ticket payload is truncated")]
    Truncated,
    /// A format version this build does not know (a newer or forged ticket).
    #[error("unsupported ticket format version {0}")]
    UnsupportedVersion(u8),
    /// The session id is not a shortest-form LEB128 u32.
    #[error("malformed session id")]
    BadSessionId,
    /// `admits` is zero.
    #[error("ticket admits nobody")]
    ZeroAdmits,
    /// The validity window is empty.
    #[error("empty validity window")]
    EmptyWindow,
    /// The holder-name header is malformed (unknown encoding, too long, bad UTF-8,
    /// control characters, non-zero padding bits).
    #[error("malformed holder name")]
    BadHolderName,
    /// Bytes follow the last field.
    #[error("unexpected bytes after the ticket payload")]
    TrailingBytes,
    /// A ticket id in text form is not 20 hexadecimal digits.
    #[error("ticket id must be {} hexadecimal digits", TICKET_ID_LEN * 2)]
    BadTicketId,
}

const HOLDER_UTF8: u8 = 0b00;
const HOLDER_PACKED: u8 = 0b01;

impl TicketPayload {
    /// End of the validity window, Unix seconds (exclusive).
    pub fn valid_until(&self) -> i64 {
        i64::from(self.valid_from) + i64::from(self.valid_minutes) * 60
    }

    /// Encodes the payload (format v1).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.admits == 0 {
            return Err(EncodeError::ZeroAdmits);
        }
        if self.valid_minutes == 0 {
            return Err(EncodeError::EmptyWindow);
        }
        // Re-check the name: the field is public, so it may have been built by hand.
        let holder = HolderName::new(self.holder.as_str())?;
        let mut out = Vec::with_capacity(MAX_PAYLOAD_LEN);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.ticket_id.0);
        write_leb128(&mut out, self.session_id);
        out.push(self.admits);
        out.extend_from_slice(&self.valid_from.to_be_bytes());
        out.extend_from_slice(&self.valid_minutes.to_be_bytes());
        encode_holder(&mut out, holder.as_str());
        Ok(out)
    }

    /// Decodes a payload. Every malformed input is an error, never a panic; no
    /// allocation depends on a length read from the input beyond
    /// [`MAX_HOLDER_LEN`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let key_id = KeyId(r.array()?);
        let ticket_id = TicketId(r.array()?);
        let session_id = r.leb128_u32()?;
        let admits = r.u8()?;
        if admits == 0 {
            return Err(DecodeError::ZeroAdmits);
        }
        let valid_from = u32::from_be_bytes(r.array()?);
        let valid_minutes = u16::from_be_bytes(r.array()?);
        if valid_minutes == 0 {
            return Err(DecodeError::EmptyWindow);
        }
        let holder = decode_holder(&mut r)?;
        if !r.0.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self {
            key_id,
            ticket_id,
            session_id,
            admits,
            valid_from,
            valid_minutes,
            holder,
        })
    }
}

fn write_leb128(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn encode_holder(out: &mut Vec<u8>, name: &str) {
    if HolderName::is_packable(name) {
        let codes: Vec<u8> = name.chars().filter_map(packed_code).collect();
        // Length ≤ MAX_HOLDER_LEN (32) < 64: checked by HolderName::new.
        out.push((HOLDER_PACKED << 6) | (codes.len() as u8 & 0x3f));
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        for code in codes {
            acc = (acc << 6) | u32::from(code);
            bits += 6;
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        if bits > 0 {
            // Padding bits are zero, and the decoder insists on it.
            out.push((acc << (8 - bits)) as u8);
        }
    } else {
        out.push((HOLDER_UTF8 << 6) | (name.len() as u8 & 0x3f));
        out.extend_from_slice(name.as_bytes());
    }
}

fn decode_holder(r: &mut Reader<'_>) -> Result<HolderName, DecodeError> {
    let header = r.u8()?;
    let len = usize::from(header & 0x3f);
    if len > MAX_HOLDER_LEN {
        return Err(DecodeError::BadHolderName);
    }
    let name = match header >> 6 {
        HOLDER_UTF8 => {
            let raw = r.take(len)?;
            let s = std::str::from_utf8(raw).map_err(|_| DecodeError::BadHolderName)?;
            s.to_owned()
        }
        HOLDER_PACKED => {
            let raw = r.take((len * 6).div_ceil(8))?;
            let mut name = String::with_capacity(len * 2);
            let mut acc: u32 = 0;
            let mut bits = 0u32;
            let mut bytes = raw.iter();
            for _ in 0..len {
                while bits < 6 {
                    let b = bytes.next().ok_or(DecodeError::Truncated)?;
                    acc = (acc << 8) | u32::from(*b);
                    bits += 8;
                }
                bits -= 6;
                let code = ((acc >> bits) & 0x3f) as usize;
                acc &= (1 << bits) - 1;
                name.push(PACKED_ALPHABET[code]);
            }
            if acc != 0 {
                return Err(DecodeError::BadHolderName);
            }
            name
        }
        _ => return Err(DecodeError::BadHolderName),
    };
    // The same rules as for encoding: so decode(encode(x)) == x and nothing else decodes.
    let holder = HolderName::new(&name).map_err(|_| DecodeError::BadHolderName)?;
    let packable = HolderName::is_packable(&name);
    if (header >> 6 == HOLDER_UTF8) == packable {
        // A name that packs is always packed: one payload, one encoding.
        return Err(DecodeError::BadHolderName);
    }
    Ok(holder)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn leb128_u32(&mut self) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.u8()?;
            let low = u32::from(b & 0x7f);
            if i == 4 && low > 0x0f {
                return Err(DecodeError::BadSessionId);
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                // Shortest form only: a final zero byte after the first is padding.
                if i > 0 && b == 0 {
                    return Err(DecodeError::BadSessionId);
                }
                return Ok(v);
            }
        }
        Err(DecodeError::BadSessionId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(holder: &str) -> TicketPayload {
        TicketPayload {
            key_id: KeyId([1, 2, 3, 4]),
            ticket_id: TicketId([9; TICKET_ID_LEN]),
            session_id: 4242,
            admits: 4,
            valid_from: 1_753_000_000,
            valid_minutes: 300,
            holder: HolderName::shorten(holder),
        }
    }

    #[test]
    fn every_field_round_trips() {
        let p = sample("Élodie Müller-Dupont");
        let bytes = p.encode().expect("encodes");
        let back = TicketPayload::decode(&bytes).expect("decodes");
        assert_eq!(back, p);
        assert_eq!(back.holder.as_str(), "ÉLODIE MÜLLER-DUPONT");
        assert_eq!(back.session_id, 4242);
        assert_eq!(back.admits, 4);
        assert_eq!(back.valid_until(), 1_753_000_000 + 300 * 60);
    }

    #[test]
    fn extreme_values_round_trip() {
        for session_id in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut p = sample("A");
            p.session_id = session_id;
            p.admits = u8::MAX;
            p.valid_from = u32::MAX;
            p.valid_minutes = u16::MAX;
            let back = TicketPayload::decode(&p.encode().expect("encodes")).expect("decodes");
            assert_eq!(back, p);
        }
    }

    #[test]
    fn names_outside_the_alphabet_travel_as_utf8() {
        let p = sample("王小明 Wang");
        assert_eq!(p.holder.as_str(), "王小明 Wang");
        let bytes = p.encode().expect("encodes");
        assert_eq!(TicketPayload::decode(&bytes).expect("decodes"), p);
    }

    #[test]
    fn thirty_character_name_packs_into_23_bytes() {
        let p = sample("Jean-Christophe Martin-Lefèvre");
        assert_eq!(p.holder.as_str().chars().count(), 30);
        let bytes = p.encode().expect("encodes");
        let fixed = 1 + 4 + TICKET_ID_LEN + 2 + 1 + 4 + 2 + 1;
        assert_eq!(bytes.len(), fixed + 23);
    }

    #[test]
    fn shorten_cuts_long_names_and_cleans_whitespace() {
        let h = HolderName::shorten("  Marie-Antoinette   Josèphe Jeanne de Habsbourg-Lorraine ");
        // Cut at 32 characters, then the trailing space dropped.
        assert_eq!(h.as_str(), "MARIE-ANTOINETTE JOSÈPHE JEANNE");
        let long_utf8 = HolderName::shorten(&"名".repeat(40));
        assert!(long_utf8.as_str().len() <= MAX_HOLDER_LEN);
        assert_eq!(long_utf8.as_str().chars().count(), 10);
        assert_eq!(HolderName::shorten("a\u{0}b\tc").as_str(), "AB C");
    }

    #[test]
    fn unknown_version_is_refused_with_its_number() {
        let mut bytes = sample("A").encode().expect("encodes");
        bytes[0] = 2;
        assert_eq!(
            TicketPayload::decode(&bytes),
            Err(DecodeError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample("Zoé").encode().expect("encodes");
        for n in 0..bytes.len() {
            assert!(TicketPayload::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            TicketPayload::decode(&longer),
            Err(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // Session id 5 written in two bytes.
        let at = 1 + 4 + TICKET_ID_LEN;
        let mut q = sample("A");
        q.session_id = 5;
        let mut canonical = q.encode().expect("encodes");
        canonical.splice(at..at + 1, [0x85, 0x00]);
        assert_eq!(
            TicketPayload::decode(&canonical),
            Err(DecodeError::BadSessionId)
        );
        // A packable name written as UTF-8.
        let mut utf8 = sample("AB").encode().expect("encodes");
        let hdr = utf8.len() - 3;
        utf8.truncate(hdr);
        utf8.extend_from_slice(&[2, b'A', b'B']);
        assert_eq!(
            TicketPayload::decode(&utf8),
            Err(DecodeError::BadHolderName)
        );
    }

    #[test]
    fn bad_fields_are_refused_on_encode() {
        let mut p = sample("A");
        p.admits = 0;
        assert_eq!(p.encode(), Err(EncodeError::ZeroAdmits));
        let mut p = sample("A");
        p.valid_minutes = 0;
        assert_eq!(p.encode(), Err(EncodeError::EmptyWindow));
        assert_eq!(
            HolderName::new(&"x".repeat(33)),
            Err(EncodeError::HolderNameTooLong)
        );
        assert_eq!(HolderName::new("a\nb"), Err(EncodeError::HolderNameControl));
    }

    #[test]
    fn ticket_id_hex_round_trips_and_rejects_garbage() {
        let id = TicketId([0xab; TICKET_ID_LEN]);
        assert_eq!(TicketId::from_hex(&id.to_hex()), Ok(id));
        assert!(TicketId::from_hex("zz").is_err());
        assert!(TicketId::from_hex(&"g".repeat(20)).is_err());
    }
}
