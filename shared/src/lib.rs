//! What the JO E-Tickets issuance server and the offline gate scanner must agree
//! on, written once:
//!
//! - [`ticket`]: the signed ticket payload and its compact, versioned binary codec;
//! - [`doublekey`]: user key, purchase key and the derivation of a ticket's secret
//!   from `user key ‖ purchase key`;
//! - [`signing`]: Ed25519 ticket signing, key ids and the public [`signing::Keyring`];
//! - [`keys`]: key files (PKCS#8 / SPKI PEM) as written by `jo-server keygen`;
//! - [`qr`]: the QR string (`payload ‖ signature`, base64url), QR rendering and decoding;
//! - [`verify`]: the one entry point that turns a scanned string into a [`verify::Verdict`];
//! - [`revocation`]: the signed, versioned, append-only revocation list;
//! - [`trust`]: what a gate trusts: the signed keyring chain pinned at
//!   enrolment, the signed device list, signed admissions;
//! - [`api`]: the request and response types of the scanners' sync API.
//!
//! Every decoder in this crate treats its input as hostile: it returns an error,
//! never panics, and never allocates from an untrusted length field.

pub mod api;
pub mod doublekey;
pub mod keys;
pub mod qr;
pub mod revocation;
pub mod signing;
pub mod ticket;
pub mod trust;
pub mod verify;

pub use signing::{KeyId, Keyring, TicketSigner};
pub use ticket::{HolderName, TicketId, TicketPayload};
pub use verify::{Verdict, VerifyContext};
