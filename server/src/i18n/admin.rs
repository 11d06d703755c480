//! Messages of the admin pages: `(key, français, English)`, keys prefixed `admin.`
//! (or another prefix of this area) and unique across every table.

/// The admin area's messages.
pub const MESSAGES: &[(&str, &str, &str)] = &[];
