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

/// The LAN part of the set-up window, as the staff typed it: kept as text
/// until it is valid, so a typo is pointed at and nothing typed is lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerForm {
    /// Address to accept other gates on; empty: do not listen.
    pub listen: String,
    /// Other gates to dial, one `host:port` per line (commas also split).
    pub peers: String,
    /// Find the other gates with mDNS.
    pub mdns: bool,
    /// Why the last save was refused.
    pub error: Option<PeerFormError>,
}

/// What is wrong with the LAN part of the set-up window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFormError {
    /// The listening address is not `IP:port` (the text typed).
    Listen(String),
    /// An entry of the peer list is not `host:port` (its line, from 1,
    /// and the text typed).
    Peer {
        /// Line of the entry, from 1.
        line: usize,
        /// The entry as typed.
        entry: String,
    },
    /// More entries than a gate dials.
    TooMany(usize),
    /// mDNS announces the listening address, so it needs one.
    MdnsNeedsListen,
}

impl PeerForm {
    /// The form filled from the saved settings.
    pub fn of(settings: &Settings) -> Self {
        Self {
            listen: settings.peer_listen.clone().unwrap_or_default(),
            peers: settings.peers.join("\n"),
            mdns: settings.mdns,
            error: None,
        }
    }

    /// The listening address, the peer list and the mDNS choice the form
    /// holds, or the first thing wrong with it.
    pub fn parse(&self) -> Result<(Option<String>, Vec<String>, bool), PeerFormError> {
        let listen = match self.listen.trim() {
            "" => None,
            typed => match typed.parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(addr.to_string()),
                Err(_) => return Err(PeerFormError::Listen(typed.to_owned())),
            },
        };
        let mut peers: Vec<String> = Vec::new();
        for (i, line) in self.peers.lines().enumerate() {
            for entry in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !is_peer_target(entry) {
                    return Err(PeerFormError::Peer {
                        line: i + 1,
                        entry: entry.chars().take(80).collect(),
                    });
                }
                if !peers.iter().any(|p| p == entry) {
                    peers.push(entry.to_owned());
                }
            }
        }
        if peers.len() > crate::peers::MAX_PEERS {
            return Err(PeerFormError::TooMany(peers.len()));
        }
        if self.mdns && listen.is_none() {
            return Err(PeerFormError::MdnsNeedsListen);
        }
        Ok((listen, peers, self.mdns))
    }

    /// Puts the form into `settings` when it is valid; `Ok(true)` when
    /// that changed them (the peer node must start again).
    pub fn apply(&self, settings: &mut Settings) -> Result<bool, PeerFormError> {
        let (listen, peers, mdns) = self.parse()?;
        let changed =
            settings.peer_listen != listen || settings.peers != peers || settings.mdns != mdns;
        settings.peer_listen = listen;
        settings.peers = peers;
        settings.mdns = mdns;
        Ok(changed)
    }
}

/// Whether `entry` is `host:port` as the peer node dials it: an IPv4
/// address, an IPv6 address in brackets or a DNS name, and a port from 1.
/// Checked before saving so that a typo shows at once, rather than as a
/// gate that is silently never reached.
fn is_peer_target(entry: &str) -> bool {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return false;
    };
    if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    // A DNS name: labels of letters, digits and inner hyphens. A dotted
    // quad that did not parse above (`10.0.0.300`) is a typo, not a name.
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    labels_ok
        && !host
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
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

    #[test]
    fn the_peer_form_points_at_a_bad_entry_and_keeps_what_was_typed() {
        let form = |listen: &str, peers: &str, mdns| PeerForm {
            listen: listen.into(),
            peers: peers.into(),
            mdns,
            error: None,
        };
        let good = form(
            " 0.0.0.0:47330 ",
            "10.0.0.12:47330\nporte-3.stade.lan:47330, [fe80::1]:47330\n\n10.0.0.12:47330",
            true,
        );
        let mut s = Settings::default();
        assert_eq!(good.apply(&mut s), Ok(true));
        assert_eq!(s.peer_listen.as_deref(), Some("0.0.0.0:47330"));
        assert_eq!(
            s.peers,
            [
                "10.0.0.12:47330",
                "porte-3.stade.lan:47330",
                "[fe80::1]:47330"
            ],
            "trimmed, split on lines and commas, duplicates once"
        );
        assert!(s.mdns);
        assert_eq!(good.apply(&mut s), Ok(false), "nothing changed");
        // The form shows the saved settings back.
        let back = PeerForm::of(&s);
        assert_eq!(back.parse(), good.parse());

        for (peers, line, entry) in [
            ("10.0.0.12:47330\n10.0.0.13", 2, "10.0.0.13"),
            ("10.0.0.300:47330", 1, "10.0.0.300:47330"),
            ("a:0", 1, "a:0"),
            ("a:70000", 1, "a:70000"),
            ("fe80::1:47330", 1, "fe80::1:47330"),
            ("-bad.lan:1", 1, "-bad.lan:1"),
            ("ok:1\n\nporte 3:47330", 3, "porte 3:47330"),
            (":47330", 1, ":47330"),
        ] {
            let before = s.clone();
            let bad = form("", peers, false);
            assert_eq!(
                bad.apply(&mut s),
                Err(PeerFormError::Peer {
                    line,
                    entry: entry.into()
                }),
                "{peers:?}"
            );
            assert_eq!(s, before, "a refused form changes nothing");
        }
        assert_eq!(
            form("localhost:47330", "", false).parse(),
            Err(PeerFormError::Listen("localhost:47330".into())),
            "listening needs an address of this machine, not a name"
        );
        assert_eq!(
            form("", "", true).parse(),
            Err(PeerFormError::MdnsNeedsListen)
        );
        let many: Vec<String> = (0..=crate::peers::MAX_PEERS)
            .map(|i| format!("gate-{i}.lan:47330"))
            .collect();
        assert_eq!(
            form("", &many.join("\n"), false).parse(),
            Err(PeerFormError::TooMany(crate::peers::MAX_PEERS + 1))
        );
        assert_eq!(form("", "", false).parse(), Ok((None, Vec::new(), false)));
    }

    fn path_with(path: &Path, s: &Settings) -> PathBuf {
        s.save(path).expect("saves");
        path.to_path_buf()
    }
}
