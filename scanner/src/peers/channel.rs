//! The keys and tags of one peer connection once its handshake is done, so
//! that every later frame is authenticated both ways and cannot be
//! replayed, dropped, reordered or altered unnoticed.
//!
//! Each end brings a fresh X25519 key pair to the handshake; both public
//! halves are inside the proofs the two device keys sign (see
//! [`jo_shared::trust::PeerHandshake`]), so no one in the middle can
//! substitute its own. The Diffie-Hellman secret, which nobody who only
//! watched the handshake has, goes through HKDF-SHA256 (salt: both nonces;
//! info: a label, the direction, both device ids and both device keys) to
//! one HMAC-SHA256 key per direction. Each frame after the handshake is
//! `length ‖ body ‖ HMAC(key, counter ‖ body)`, the counter counting that
//! direction's frames from 0 and never sent: a replayed, dropped or
//! reordered frame has the wrong counter, an altered one the wrong body,
//! and either fails the tag.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes of the tag after each frame's body.
pub const TAG_LEN: usize = 32;

/// HKDF info label of the frame keys.
const KEY_LABEL: &[u8] = b"JO-PEER-FRAME-KEY-v2\0";

type HmacSha256 = Hmac<Sha256>;

/// This end's ephemeral X25519 key pair for one handshake (its secret is
/// wiped when dropped).
pub struct Ephemeral {
    secret: StaticSecret,
    /// The public half, sent in the handshake.
    pub public: [u8; 32],
}

impl Ephemeral {
    /// A fresh key pair; `None` if the system has no randomness to give.
    pub fn new() -> Option<Self> {
        let mut bytes = [0u8; 32];
        jo_shared::doublekey::random_bytes(&mut bytes).ok()?;
        // StaticSecret rather than EphemeralSecret only because it can be
        // built from bytes without a panic on a randomness failure; it is
        // used for this one exchange and dropped.
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Some(Self { secret, public })
    }
}

/// Who the two ends of a connection are, as their handshake said and
/// proved.
pub struct Ends<'a> {
    /// Whether this end dialled.
    pub dialer: bool,
    /// The dialer's device id.
    pub dialer_id: &'a str,
    /// The listener's device id.
    pub listener_id: &'a str,
    /// The dialer's device public key (from the signed device list, or its own).
    pub dialer_key: &'a [u8; 32],
    /// The listener's device public key.
    pub listener_key: &'a [u8; 32],
    /// The dialer's nonce.
    pub dialer_nonce: &'a [u8; 32],
    /// The listener's nonce.
    pub listener_nonce: &'a [u8; 32],
}

/// Derives this end's sealer (frames it sends) and opener (frames it
/// reads) from its ephemeral secret and the other end's ephemeral public
/// key. `None` if the other key is one of the few that force a known
/// secret (a low-order point): such a peer is refused.
pub fn derive(mine: Ephemeral, theirs: &[u8; 32], ends: &Ends<'_>) -> Option<(Sealer, Opener)> {
    let shared = mine.secret.diffie_hellman(&PublicKey::from(*theirs));
    if !shared.was_contributory() {
        return None;
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ends.dialer_nonce);
    salt[32..].copy_from_slice(ends.listener_nonce);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
    let key_for = |direction: u8| -> Option<[u8; 32]> {
        let mut info = Vec::with_capacity(KEY_LABEL.len() + 1 + 64 + 2 * 72);
        info.extend_from_slice(KEY_LABEL);
        info.push(direction);
        for id in [ends.dialer_id, ends.listener_id] {
            info.extend_from_slice(&(id.len() as u64).to_be_bytes());
            info.extend_from_slice(id.as_bytes());
        }
        info.extend_from_slice(ends.dialer_key);
        info.extend_from_slice(ends.listener_key);
        let mut okm = [0u8; 32];
        hk.expand(&info, &mut okm).ok()?;
        Some(okm)
    };
    // 1: dialer → listener, 2: listener → dialer.
    let to_listener = key_for(1)?;
    let to_dialer = key_for(2)?;
    let (send, recv) = if ends.dialer {
        (to_listener, to_dialer)
    } else {
        (to_dialer, to_listener)
    };
    Some((
        Sealer {
            mac: HmacSha256::new_from_slice(&send).ok()?,
            counter: 0,
        },
        Opener {
            mac: HmacSha256::new_from_slice(&recv).ok()?,
            counter: 0,
        },
    ))
}

/// Tags the frames one end sends, in order.
pub struct Sealer {
    mac: HmacSha256,
    counter: u64,
}

impl Sealer {
    /// The whole frame for `body`: length (body and tag, 4 bytes BE) ‖ body
    /// ‖ tag. The caller sends frames in the order it seals them.
    pub fn seal(&mut self, body: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(&self.counter.to_be_bytes());
        mac.update(body);
        let tag = mac.finalize().into_bytes();
        // u64 frames never run out on a connection; wrapping would only
        // make the peer refuse the frame.
        self.counter = self.counter.wrapping_add(1);
        let n = u32::try_from(body.len() + TAG_LEN).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(4 + body.len() + TAG_LEN);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&tag);
        out
    }
}

/// Checks the frames one end reads, in order.
pub struct Opener {
    mac: HmacSha256,
    counter: u64,
}

impl Opener {
    /// The body of the next frame (what follows its length), if its tag is
    /// right for the next counter; `None` for a frame altered, replayed,
    /// reordered or after one dropped (the connection is then closed: the
    /// counter does not move on a refused frame).
    pub fn open<'a>(&mut self, frame: &'a [u8]) -> Option<&'a [u8]> {
        let split = frame.len().checked_sub(TAG_LEN)?;
        let (body, tag) = frame.split_at(split);
        let mut mac = self.mac.clone();
        mac.update(&self.counter.to_be_bytes());
        mac.update(body);
        // Constant time: the tag's bytes are not learned one by one.
        mac.verify_slice(tag).ok()?;
        self.counter = self.counter.checked_add(1)?;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> ((Sealer, Opener), (Sealer, Opener)) {
        let (d, l) = (
            Ephemeral::new().expect("random"),
            Ephemeral::new().expect("random"),
        );
        let (dp, lp) = (d.public, l.public);
        let ends = |dialer| Ends {
            dialer,
            dialer_id: "dev-a",
            listener_id: "dev-b",
            dialer_key: &[1; 32],
            listener_key: &[2; 32],
            dialer_nonce: &[3; 32],
            listener_nonce: &[4; 32],
        };
        (
            derive(d, &lp, &ends(true)).expect("keys"),
            derive(l, &dp, &ends(false)).expect("keys"),
        )
    }

    #[test]
    fn frames_sealed_by_one_end_open_at_the_other_in_order() {
        let ((mut ds, mut dopen), (mut ls, mut lopen)) = pair();
        for body in [&b"one"[..], b"two", b""] {
            let f = ds.seal(body);
            assert_eq!(lopen.open(&f[4..]), Some(body));
            let f = ls.seal(body);
            assert_eq!(dopen.open(&f[4..]), Some(body));
        }
    }

    #[test]
    fn an_altered_replayed_reordered_or_reflected_frame_is_refused() {
        let ((mut ds, mut dopen), (_, mut lopen)) = pair();
        let first = ds.seal(b"{\"type\":\"ping\"}");
        let second = ds.seal(b"{\"type\":\"ping\"}");
        let mut altered = first.clone();
        altered[6] ^= 1;
        assert!(lopen.open(&altered[4..]).is_none(), "altered");
        assert!(lopen.open(&second[4..]).is_none(), "reordered");
        assert!(lopen.open(&first[4..]).is_some());
        assert!(lopen.open(&first[4..]).is_none(), "replayed");
        // The other direction has its own key: a frame sent back to its
        // sender is not believed.
        assert!(dopen.open(&second[4..]).is_none(), "reflected");
        assert!(lopen.open(&[0; 3]).is_none(), "shorter than a tag");
    }

    #[test]
    fn a_low_order_ephemeral_key_is_refused() {
        let ends = Ends {
            dialer: true,
            dialer_id: "a",
            listener_id: "b",
            dialer_key: &[1; 32],
            listener_key: &[2; 32],
            dialer_nonce: &[3; 32],
            listener_nonce: &[4; 32],
        };
        assert!(derive(Ephemeral::new().expect("random"), &[0; 32], &ends).is_none());
    }
}
