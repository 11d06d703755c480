//! The gate's persisted settings: language, camera choice, how old a
//! revocation list may grow while the server answers before the gate warns,
//! and how it reaches the other gates of the venue on the LAN.
//!
//! Kept apart from runtime handles (worker, channels, textures) and stored as
//! a small JSON file in the state directory, so that a restarted laptop comes
//! back in the same language with the same camera.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::i18n::Lang;

/// File name of the settings inside the state directory.
pub const SETTINGS_FILE: &str = "gui-settings.json";

/// A camera resolution, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Resolutions offered in the picker: 720p reads a phone held at arm's
/// length; 480p is for slow laptops; 1080p for codes held far away.
pub const RESOLUTIONS: [Resolution; 3] = [
    Resolution {
        width: 640,
        height: 480,
    },
    Resolution {
        width: 1280,
        height: 720,
    },
    Resolution {
        width: 1920,
        height: 1080,
    },
];

impl Default for Resolution {
    fn default() -> Self {
        RESOLUTIONS[1]
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.width, self.height)
    }
}

/// What the staff chose, kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Screen language.
    pub lang: Lang,
    /// Camera index (`None`: manual entry only).
    pub camera: Option<u32>,
    /// Requested camera resolution.
    pub resolution: Resolution,
    /// Oldest revocation list, in seconds since the server signed it, that
    /// the gate holds without a loud warning while the server answers (the
    /// GUI's sync panel and `jo-scanner sync` both say so past it).
    pub max_list_age_secs: u64,
    /// Address to accept other gates on (e.g. `0.0.0.0:47330`); `None`:
    /// this gate does not listen (it may still dial [`Settings::peers`]).
    pub peer_listen: Option<String>,
    /// Other gates to reach, `host:port`, for networks that block multicast.
    pub peers: Vec<String>,
    /// Find the other gates with mDNS/DNS-SD (needs `peer_listen`).
    pub mdns: bool,
}

impl Settings {
    /// The peer node's configuration; `None` when it is off (no address
    /// to listen on and no peer to dial). A listening address that does
    /// not parse is reported and left out.
    pub fn peer_config(&self) -> Option<crate::peers::PeerConfig> {
        let listen = self
            .peer_listen
            .as_deref()
            .and_then(|a| match a.trim().parse() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    eprintln!("jo-scanner: peer_listen {a:?}: {e}; not listening");
                    None
                }
            });
        if listen.is_none() && self.peers.is_empty() {
            return None;
        }
        Some(crate::peers::PeerConfig {
            listen,
            peers: self.peers.clone(),
            mdns: self.mdns,
            entry_cap: 0,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lang: Lang::Fr,
            camera: Some(0),
            resolution: Resolution::default(),
            max_list_age_secs: crate::sync::DEFAULT_MAX_LIST_AGE_SECS,
            peer_listen: None,
            peers: Vec::new(),
            mdns: false,
        }
    }
}

impl Settings {
    /// The settings file of a state directory.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(SETTINGS_FILE)
    }

    /// Loads settings; a missing or unreadable file gives the defaults, since
    /// a gate must open whatever happened to a preference file.
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    /// Saves settings (write to a temporary file, then rename, so a crash
    /// never leaves half a file).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_files_give_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Settings::path_in(dir.path());
        assert_eq!(Settings::load(&path), Settings::default());
        let s = Settings {
            lang: Lang::En,
            camera: None,
            resolution: RESOLUTIONS[0],
            max_list_age_secs: 120,
            peer_listen: Some("0.0.0.0:47330".into()),
            peers: vec!["10.0.0.12:47330".into()],
            mdns: true,
        };
        s.save(&path).expect("saves");
        assert_eq!(Settings::load(&path), s);
        std::fs::write(&path, "{not json").expect("write");
        assert_eq!(Settings::load(&path), Settings::default());
        // A file from before the setting existed gets its default.
        std::fs::write(&path, r#"{"lang":"En","camera":null}"#).expect("write");
        let old = Settings::load(&path);
        assert_eq!(old.lang, Lang::En);
        assert_eq!(
            old.max_list_age_secs,
            crate::sync::DEFAULT_MAX_LIST_AGE_SECS
        );
        assert!(
            old.peer_config().is_none(),
            "peers are off unless configured"
        );
        let on = Settings::load(&path_with(&path, &s));
        let config = on.peer_config().expect("on");
        assert_eq!(config.listen, Some("0.0.0.0:47330".parse().expect("addr")));
        assert_eq!(config.peers, ["10.0.0.12:47330"]);
    }

    fn path_with(path: &Path, s: &Settings) -> PathBuf {
        s.save(path).expect("saves");
        path.to_path_buf()
    }
}
