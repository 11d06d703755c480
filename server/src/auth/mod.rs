//! Authentication building blocks: password hashing and policy, random
//! tokens, TOTP, recovery codes. No HTTP here; see `web` for the flows.

pub mod password;
pub mod secretbox;
pub mod tokens;
pub mod totp;
