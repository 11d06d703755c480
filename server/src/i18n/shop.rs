//! Messages of the shop pages: `(key, français, English)`, keys prefixed `shop.`
//! (or another prefix of this area) and unique across every table.

/// The shop area's messages.
pub const MESSAGES: &[(&str, &str, &str)] = &[];
