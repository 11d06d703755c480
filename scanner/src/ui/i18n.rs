//! The gate screen's words, in French (the default) and English.
//!
//! Everything the staff read goes through [`Texts`] or the functions here, so a
//! language switch changes the whole screen at once and a test can check both.

use jo_shared::revocation::RevocationReason;
use jo_shared::verify::Refusal;
use serde::{Deserialize, Serialize};

use super::worker::Alarm;

/// The screen's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    /// Français (default: the Games' staff speak French first).
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The other language (the Ctrl+L switch).
    pub fn toggled(self) -> Self {
        match self {
            Self::Fr => Self::En,
            Self::En => Self::Fr,
        }
    }

    /// The fixed texts of this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Self::Fr => &FR,
            Self::En => &EN,
        }
    }
}

/// Fixed texts of the screen.
#[derive(Debug)]
pub struct Texts {
    /// Opens the gate set-up window.
    pub setup: &'static str,
    /// Title of the gate set-up window.
    pub setup_title: &'static str,
    /// Gate name field.
    pub gate_name: &'static str,
    /// Shown when the gate name is empty.
    pub gate_name_needed: &'static str,
    /// No session synced yet.
    pub no_sessions_yet: &'static str,
    /// Save button.
    pub save: &'static str,
    /// Close button.
    pub close: &'static str,
    /// Heading of the LAN part of the set-up window.
    pub lan_peers: &'static str,
    /// Listening address field.
    pub peer_listen: &'static str,
    /// Peer list field.
    pub peer_list: &'static str,
    /// mDNS checkbox.
    pub mdns_find: &'static str,
    /// A listening address that is not `IP:port` (the text typed follows).
    pub peer_listen_bad: &'static str,
    /// "Line" before the number of a bad peer entry.
    pub line_word: &'static str,
    /// A peer entry that is not `host:port` (the text typed follows).
    pub peer_entry_bad: &'static str,
    /// Too many peers (the count and the most allowed follow).
    pub peers_too_many: &'static str,
    /// mDNS without a listening address.
    pub mdns_needs_listen: &'static str,
    /// Title of the enrolment screen.
    pub enroll_title: &'static str,
    /// Explains enrolment.
    pub enroll_intro: &'static str,
    /// Explains the enrolment QR.
    pub enroll_qr_hint: &'static str,
    /// Server URL field.
    pub server_url: &'static str,
    /// Enrolment code field.
    pub enroll_code: &'static str,
    /// Device label field.
    pub device_label: &'static str,
    /// Keyring fingerprint field.
    pub keyring_fingerprint: &'static str,
    /// Placeholder of the keyring fingerprint field.
    pub keyring_fingerprint_hint: &'static str,
    /// Shown when no fingerprint is given: the keyring is trusted on first use.
    pub first_use_warning: &'static str,
    /// The fingerprint typed is not 64 hex digits.
    pub fingerprint_invalid: &'static str,
    /// Enrol button.
    pub enroll_button: &'static str,
    /// While enrolling.
    pub enrolling: &'static str,
    /// Before the reason of a failed enrolment.
    pub enroll_failed: &'static str,
    /// Opens the enrolment window from the sync panel.
    pub enroll_open: &'static str,
    /// Sync now button.
    pub sync_now: &'static str,
    /// The server refuses this device.
    pub revoked: &'static str,
    /// Before the measured clock difference.
    pub skew: &'static str,
    /// Shown when the device clock is far from the server's.
    pub skew_warning: &'static str,
    /// Before the last sync error.
    pub sync_error: &'static str,
    /// Between a label and its value: French sets a space before the colon.
    pub colon: &'static str,
    /// Name of the switch button: the *other* language, as its speakers write it.
    pub switch_language: &'static str,
    /// Verdict heading for an admission (followed by the number of people).
    pub admit: &'static str,
    /// Verdict heading for a refusal.
    pub refused: &'static str,
    /// Verdict heading for a ticket already used.
    pub already_used: &'static str,
    /// Shown when no verdict is on screen.
    pub ready: &'static str,
    /// Under [`Self::ready`].
    pub ready_hint: &'static str,
    /// "person" (singular).
    pub person: &'static str,
    /// "people" (plural).
    pub people: &'static str,
    /// Label before the holder's name.
    pub holder: &'static str,
    /// Label before the session.
    pub session: &'static str,
    /// Label before the earlier entry's time.
    pub used_at: &'static str,
    /// Session not known to this device.
    pub unknown_session: &'static str,
    /// Marks a verdict typed in rather than read by the camera.
    pub via_manual: &'static str,
    /// Marks a code entered again within the repeat window.
    pub repeat: &'static str,
    /// Counters heading.
    pub counters: &'static str,
    /// Counter: people admitted.
    pub admitted_people: &'static str,
    /// Counter: refusals.
    pub refused_count: &'static str,
    /// Counter: already used.
    pub used_count: &'static str,
    /// Last scans heading.
    pub last_scans: &'static str,
    /// No scan yet.
    pub no_scans: &'static str,
    /// Sync heading.
    pub sync: &'static str,
    /// Device not enrolled with a server.
    pub not_enrolled: &'static str,
    /// Server reachable.
    pub online: &'static str,
    /// Server not reachable.
    pub offline: &'static str,
    /// Label before the last sync time.
    pub last_sync: &'static str,
    /// Other gates' admissions come from the server, live.
    pub learns_live: &'static str,
    /// They come from the gates on the LAN (server out of reach).
    pub learns_peers: &'static str,
    /// They come from nowhere: the gate decides alone.
    pub learns_alone: &'static str,
    /// Heading of the list of gates on the LAN.
    pub peers_seen: &'static str,
    /// No gate seen on the LAN.
    pub no_peers: &'static str,
    /// Before a peer's last-heard age (seconds).
    pub heard: &'static str,
    /// A peer whose connection is closed.
    pub peer_gone: &'static str,
    /// No sync yet.
    pub never: &'static str,
    /// Label before the number of scans waiting for upload.
    pub pending: &'static str,
    /// Shown next to a running sync's progress bar.
    pub syncing: &'static str,
    /// Manual entry label.
    pub manual_entry: &'static str,
    /// Manual entry placeholder.
    pub manual_hint: &'static str,
    /// Manual entry button.
    pub submit: &'static str,
    /// Camera heading.
    pub camera: &'static str,
    /// Choice: no camera (manual entry only).
    pub no_camera: &'static str,
    /// Camera status: opening.
    pub camera_starting: &'static str,
    /// Camera status: unavailable (followed by why).
    pub camera_unavailable: &'static str,
    /// Shown under an unavailable camera.
    pub camera_fallback: &'static str,
    /// A folder of frames replayed as the camera (followed by the folder).
    pub replay: &'static str,
    /// Folder replay finished.
    pub replay_ended: &'static str,
    /// Resolution picker label.
    pub resolution: &'static str,
    /// Button: list cameras again.
    pub refresh: &'static str,
    /// Gate label in the top bar.
    pub gate: &'static str,
    /// Sessions served, top bar.
    pub sessions_served: &'static str,
    /// The log could not be written: the staff must not admit.
    pub log_failed: &'static str,
    /// Help window title.
    pub help: &'static str,
    /// The offline band: the server is out of reach, the gate decides alone.
    pub offline_band: &'static str,
    /// Heading of the centre while something the gate needs is missing.
    pub not_ready: &'static str,
    /// Missing: no enrolment (and what to do).
    pub need_enrolment: &'static str,
    /// Missing: no key to verify tickets with (and what to do).
    pub need_keys: &'static str,
    /// Missing: no session chosen for this gate (and what to do).
    pub need_sessions: &'static str,
    /// Toggle that shows an error's technical detail.
    pub details: &'static str,
    /// A sync failed because the server could not be reached.
    pub sync_unreachable: &'static str,
    /// A sync failed for another reason.
    pub sync_failed: &'static str,
    /// What to do after a failed enrolment.
    pub enroll_failed_hint: &'static str,
    /// Under the log failure heading: what the staff do.
    pub log_failed_hint: &'static str,
    /// Session date: today.
    pub today: &'static str,
    /// Shortcut: serve no session.
    pub select_none: &'static str,
    /// Shortcut: serve today's sessions at this venue.
    pub select_today_here: &'static str,
    /// No session today at this venue.
    pub none_today_here: &'static str,
    /// Help lines: shortcut and what it does.
    pub help_lines: [(&'static str, &'static str); 5],
    /// Sync panel: the frame rate the camera actually delivers (a number follows).
    pub camera_rate: &'static str,
    /// The frame rate's unit.
    pub fps: &'static str,
}

/// Français.
pub const FR: Texts = Texts {
    setup: "Porte et épreuves",
    setup_title: "Porte et épreuves servies",
    gate_name: "Nom de la porte",
    gate_name_needed: "Donnez un nom à la porte.",
    no_sessions_yet: "Aucune épreuve synchronisée pour l'instant.",
    save: "Enregistrer",
    close: "Fermer",
    lan_peers: "Portes du réseau local",
    peer_listen: "Écouter les autres portes sur",
    peer_list: "Autres portes (hôte:port, une par ligne)",
    mdns_find: "Trouver les portes du réseau automatiquement (mDNS)",
    peer_listen_bad: "Adresse d'écoute invalide (attendu IP:port, par ex. 0.0.0.0:47330)",
    line_word: "Ligne",
    peer_entry_bad: "pas de la forme hôte:port (par ex. 10.0.0.12:47330)",
    peers_too_many: "Trop de portes dans la liste",
    mdns_needs_listen: "La recherche automatique (mDNS) a besoin d'une adresse d'écoute.",
    enroll_title: "Enrôler cet appareil",
    enroll_intro: "Saisissez l'adresse du serveur et le code à usage unique donné par un administrateur.",
    enroll_qr_hint: "Ou présentez à la caméra le QR d'enrôlement affiché par l'administrateur.",
    server_url: "Adresse du serveur",
    enroll_code: "Code d'enrôlement",
    device_label: "Nom de cet appareil",
    keyring_fingerprint: "Empreinte du trousseau",
    keyring_fingerprint_hint: "64 chiffres hexadécimaux (QR ou console d'administration)",
    first_use_warning: "Sans empreinte, les clés du serveur sont acceptées de confiance à la première connexion : n'enrôlez ainsi qu'en https sur un réseau sûr.",
    fingerprint_invalid: "L'empreinte du trousseau doit compter 64 chiffres hexadécimaux.",
    enroll_button: "Enrôler",
    enrolling: "Enrôlement en cours…",
    enroll_failed: "Échec de l'enrôlement",
    enroll_open: "Enrôler…",
    sync_now: "Synchroniser",
    revoked: "Appareil refusé par le serveur (révoqué) : la vérification continue hors ligne, rien n'est synchronisé. Enrôlez-le à nouveau.",
    skew: "Décalage d'horloge",
    skew_warning: "L'heure de cet appareil est fausse : réglez-la.",
    sync_error: "Dernière synchronisation échouée",
    colon: " : ",
    switch_language: "English",
    admit: "ADMIS",
    refused: "REFUSÉ",
    already_used: "DÉJÀ UTILISÉ",
    ready: "Prêt",
    ready_hint: "Présentez le QR code du billet à la caméra",
    person: "personne",
    people: "personnes",
    holder: "Titulaire",
    session: "Épreuve",
    used_at: "Entré à",
    unknown_session: "épreuve inconnue",
    via_manual: "saisie manuelle",
    repeat: "même code, déjà compté",
    counters: "Compteurs",
    admitted_people: "Personnes admises",
    refused_count: "Refusés",
    used_count: "Déjà utilisés",
    last_scans: "Derniers passages",
    no_scans: "Aucun passage pour l'instant",
    sync: "Synchronisation",
    not_enrolled: "Appareil non enrôlé",
    online: "En ligne",
    offline: "Hors ligne",
    last_sync: "Dernière synchro",
    learns_live: "Entrées des autres portes : en direct (serveur)",
    learns_peers: "Entrées des autres portes : par le réseau local",
    learns_alone: "Entrées des autres portes : aucune source, la porte décide seule",
    peers_seen: "Portes voisines",
    no_peers: "aucune",
    heard: "entendue il y a",
    peer_gone: "déconnectée",
    never: "jamais",
    pending: "Passages à envoyer",
    syncing: "Synchronisation en cours",
    manual_entry: "Saisie manuelle",
    manual_hint: "Code du billet si le QR ne se lit pas",
    submit: "Valider",
    camera: "Caméra",
    no_camera: "Aucune (saisie manuelle)",
    camera_starting: "Ouverture de la caméra…",
    camera_unavailable: "Caméra indisponible",
    camera_fallback: "La saisie manuelle reste possible.",
    replay: "Relecture",
    replay_ended: "Relecture terminée",
    resolution: "Résolution",
    refresh: "Actualiser",
    gate: "Porte",
    sessions_served: "Épreuves",
    log_failed: "JOURNAL INDISPONIBLE — NE PAS ADMETTRE",
    help: "Aide",
    offline_band: "HORS LIGNE — les billets sont vérifiés sur place",
    not_ready: "Pas prêt",
    need_enrolment: "Appareil non enrôlé : enrôlez-le avec le code d'un administrateur (bouton « Enrôler… » à droite)",
    need_keys: "Aucune clé de vérification : synchronisez avec le serveur",
    need_sessions: "Aucune épreuve choisie pour cette porte : ouvrez « Porte et épreuves »",
    details: "Détails",
    sync_unreachable: "serveur injoignable, nouvel essai automatique ; les billets restent vérifiés sur place",
    sync_failed: "la synchronisation n'a pas abouti, nouvel essai automatique",
    enroll_failed_hint: "vérifiez l'adresse du serveur et le code, puis réessayez",
    log_failed_hint: "Le passage n'a pas pu être enregistré : n'admettez personne et prévenez un responsable.",
    today: "aujourd'hui",
    select_none: "Aucune",
    select_today_here: "Aujourd'hui ici",
    none_today_here: "Aucune épreuve aujourd'hui sur ce site.",
    help_lines: [
        ("Entrée", "valider la saisie manuelle"),
        ("Ctrl+M", "aller à la saisie manuelle"),
        ("Échap", "effacer le verdict"),
        ("Ctrl+L", "English / français"),
        ("F1", "afficher ou masquer l'aide"),
    ],
    camera_rate: "Caméra",
    fps: "images/s",
};

/// English.
pub const EN: Texts = Texts {
    setup: "Gate and sessions",
    setup_title: "Gate and sessions served",
    gate_name: "Gate name",
    gate_name_needed: "Give the gate a name.",
    no_sessions_yet: "No session synced yet.",
    save: "Save",
    close: "Close",
    lan_peers: "Gates on the local network",
    peer_listen: "Listen for other gates on",
    peer_list: "Other gates (host:port, one per line)",
    mdns_find: "Find the network's gates automatically (mDNS)",
    peer_listen_bad: "Not a listening address (expected IP:port, e.g. 0.0.0.0:47330)",
    line_word: "Line",
    peer_entry_bad: "not host:port (e.g. 10.0.0.12:47330)",
    peers_too_many: "Too many gates in the list",
    mdns_needs_listen: "Finding gates automatically (mDNS) needs a listening address.",
    enroll_title: "Enrol this device",
    enroll_intro: "Type the server address and the one-time code an administrator gave you.",
    enroll_qr_hint: "Or hold the administrator's enrolment QR code up to the camera.",
    server_url: "Server address",
    enroll_code: "Enrolment code",
    device_label: "This device's name",
    keyring_fingerprint: "Keyring fingerprint",
    keyring_fingerprint_hint: "64 hex digits (QR code or admin console)",
    first_use_warning: "Without a fingerprint, the server's keys are trusted on first connection: enrol that way only over https on a network you trust.",
    fingerprint_invalid: "The keyring fingerprint must have 64 hex digits.",
    enroll_button: "Enrol",
    enrolling: "Enrolling…",
    enroll_failed: "Enrolment failed",
    enroll_open: "Enrol…",
    sync_now: "Sync now",
    revoked: "Device refused by the server (revoked): checking goes on offline, nothing syncs. Enrol it again.",
    skew: "Clock difference",
    skew_warning: "This device's clock is wrong: set it.",
    sync_error: "Last sync failed",
    colon: ": ",
    switch_language: "Français",
    admit: "ADMIT",
    refused: "REFUSED",
    already_used: "ALREADY USED",
    ready: "Ready",
    ready_hint: "Hold the ticket's QR code up to the camera",
    person: "person",
    people: "people",
    holder: "Holder",
    session: "Session",
    used_at: "Entered at",
    unknown_session: "unknown session",
    via_manual: "typed in",
    repeat: "same code, already counted",
    counters: "Counters",
    admitted_people: "People admitted",
    refused_count: "Refused",
    used_count: "Already used",
    last_scans: "Last scans",
    no_scans: "No scans yet",
    sync: "Sync",
    not_enrolled: "Device not enrolled",
    online: "Online",
    offline: "Offline",
    last_sync: "Last sync",
    learns_live: "Other gates' entries: live (server)",
    learns_peers: "Other gates' entries: over the local network",
    learns_alone: "Other gates' entries: no source, the gate decides alone",
    peers_seen: "Gates nearby",
    no_peers: "none",
    heard: "heard",
    peer_gone: "disconnected",
    never: "never",
    pending: "Scans waiting to upload",
    syncing: "Syncing",
    manual_entry: "Manual entry",
    manual_hint: "Ticket code when the QR won't read",
    submit: "Check",
    camera: "Camera",
    no_camera: "None (manual entry)",
    camera_starting: "Opening the camera…",
    camera_unavailable: "Camera unavailable",
    camera_fallback: "Manual entry still works.",
    replay: "Replay",
    replay_ended: "Replay finished",
    resolution: "Resolution",
    refresh: "Refresh",
    gate: "Gate",
    sessions_served: "Sessions",
    log_failed: "LOG UNAVAILABLE — DO NOT ADMIT",
    help: "Help",
    offline_band: "OFFLINE — tickets are checked here",
    not_ready: "Not ready",
    need_enrolment: "Device not enrolled: enrol it with an administrator's code (the “Enrol…” button on the right)",
    need_keys: "No verification key: sync with the server",
    need_sessions: "No session chosen for this gate: open “Gate and sessions”",
    details: "Details",
    sync_unreachable: "server unreachable, retrying automatically; tickets are still checked here",
    sync_failed: "the sync did not complete, retrying automatically",
    enroll_failed_hint: "check the server address and the code, then try again",
    log_failed_hint: "The scan could not be recorded: admit no one and tell a supervisor.",
    today: "today",
    select_none: "None",
    select_today_here: "Today here",
    none_today_here: "No session today at this venue.",
    help_lines: [
        ("Enter", "check the typed code"),
        ("Ctrl+M", "go to manual entry"),
        ("Esc", "clear the verdict"),
        ("Ctrl+L", "français / English"),
        ("F1", "show or hide this help"),
    ],
    camera_rate: "Camera",
    fps: "fps",
};

/// An alarm, in words that tell the staff what happened and whom to tell.
pub fn alarm_text(lang: Lang, alarm: &Alarm) -> String {
    let fr = lang == Lang::Fr;
    match alarm {
        Alarm::RevocationsBehind => pick(
            fr,
            "LA LISTE DE RÉVOCATION DU SERVEUR EST EN RETARD SUR CELLE DE CETTE PORTE : le serveur \
             a sans doute été restauré depuis une sauvegarde. Prévenez les administrateurs. La \
             porte garde sa liste.",
            "THE SERVER'S REVOCATION LIST IS BEHIND THIS GATE'S: the server was probably restored \
             from a back-up. Tell the admins. The gate keeps its list.",
        ),
        Alarm::KeyringRefused => pick(
            fr,
            "CLÉS DU SERVEUR REFUSÉES : elles ne sont pas signées par une clé que cette porte \
             connaît (un proxy ou un faux serveur, sans doute). La porte garde ses clés ; prévenez les administrateurs.",
            "SERVER KEYS REFUSED: they are not signed by a key this gate trusts (probably a proxy \
             or a rogue server). The gate keeps its keys; tell the admins.",
        ),
        Alarm::DeviceListRefused => pick(
            fr,
            "Liste des appareils refusée (signature invalide ou ancienne) : les entrées des \
             autres portes ne sont pas prises en compte. Prévenez les administrateurs.",
            "Device list refused (bad or old signature): other gates' entries are not taken \
             into account. Tell the admins.",
        ),
        Alarm::ListStale { age_secs } => {
            let minutes = age_secs / 60;
            if fr {
                format!(
                    "LISTE DE RÉVOCATION ANCIENNE : signée il y a {minutes} min alors que le \
                     serveur répond. Des billets révoqués depuis peuvent passer : prévenez les \
                     administrateurs."
                )
            } else {
                format!(
                    "OLD REVOCATION LIST: signed {minutes} min ago although the server answers. \
                     Tickets revoked since may get through: tell the admins."
                )
            }
        }
        Alarm::EntriesRefused { count } => {
            if fr {
                format!(
                    "{count} entrée(s) d'autres portes ignorée(s) : signature invalide ou \
                     appareil révoqué."
                )
            } else {
                format!(
                    "{count} entries from other gates ignored: bad signature or revoked device."
                )
            }
        }
    }
}

/// Why a ticket was refused, in words the staff can say to the holder.
pub fn refusal_text(lang: Lang, refusal: &Refusal) -> String {
    let fr = lang == Lang::Fr;
    match refusal {
        Refusal::BadEncoding => pick(fr, "Ce code n'est pas un billet", "Not a ticket code"),
        Refusal::UnsupportedVersion { version } => {
            if fr {
                format!("Format de billet inconnu (v{version})")
            } else {
                format!("Unknown ticket format (v{version})")
            }
        }
        Refusal::Malformed => pick(fr, "Billet mal formé", "Malformed ticket"),
        Refusal::UnknownKey => pick(
            fr,
            "Signé par une clé inconnue : synchronisez avec le serveur",
            "Signed by an unknown key: sync with the server",
        ),
        Refusal::WithdrawnKey => pick(fr, "Clé de signature retirée", "Signing key withdrawn"),
        Refusal::BadSignature => pick(
            fr,
            "Signature invalide : billet falsifié ou modifié",
            "Invalid signature: forged or altered ticket",
        ),
        Refusal::WrongSession => pick(fr, "Pas pour cette épreuve", "Wrong session for this gate"),
        Refusal::NotYetValid => pick(fr, "Pas encore valable", "Not valid yet"),
        Refusal::Expired => pick(fr, "Billet expiré", "Ticket expired"),
        Refusal::Revoked { reason } => {
            let why = revocation_text(lang, *reason);
            if fr {
                format!("Billet révoqué : {why}")
            } else {
                format!("Ticket revoked: {why}")
            }
        }
    }
}

fn revocation_text(lang: Lang, reason: RevocationReason) -> &'static str {
    let fr = lang == Lang::Fr;
    match reason {
        RevocationReason::Refunded => pickstr(fr, "remboursé", "refunded"),
        RevocationReason::SessionCancelled => pickstr(fr, "épreuve annulée", "session cancelled"),
        RevocationReason::Reissued => pickstr(fr, "remplacé par un autre billet", "reissued"),
        RevocationReason::Fraud => pickstr(fr, "fraude", "fraud"),
        RevocationReason::Transferred => pickstr(fr, "cédé à une autre personne", "transferred"),
        RevocationReason::Other => pickstr(fr, "autre motif", "other reason"),
    }
}

fn pick(fr: bool, french: &str, english: &str) -> String {
    pickstr(fr, french, english).to_owned()
}

fn pickstr<'a>(fr: bool, french: &'a str, english: &'a str) -> &'a str {
    if fr { french } else { english }
}

/// The offline band's count: "3 passages en attente d'envoi".
pub fn pending_upload(lang: Lang, n: u64) -> String {
    match (lang, n) {
        (Lang::Fr, 0) => "Aucun passage en attente d'envoi".to_owned(),
        (Lang::Fr, 1) => "1 passage en attente d'envoi".to_owned(),
        (Lang::Fr, n) => format!("{n} passages en attente d'envoi"),
        (Lang::En, 0) => "No scans waiting to upload".to_owned(),
        (Lang::En, 1) => "1 scan waiting to upload".to_owned(),
        (Lang::En, n) => format!("{n} scans waiting to upload"),
    }
}

/// The top bar's sessions: their count and the first, "3 épreuves : Finale
/// 100 m …", so that a long list never runs off the screen.
pub fn sessions_summary(lang: Lang, first: Option<&str>, count: usize) -> String {
    let fr = lang == Lang::Fr;
    match (first, count) {
        (None, _) | (_, 0) => pick(fr, "Aucune épreuve choisie", "No session chosen"),
        (Some(first), 1) => {
            if fr {
                format!("1 épreuve : {first}")
            } else {
                format!("1 session: {first}")
            }
        }
        (Some(first), n) => {
            if fr {
                format!("{n} épreuves : {first} …")
            } else {
                format!("{n} sessions: {first} …")
            }
        }
    }
}

/// "1 personne", "4 people".
pub fn people(lang: Lang, n: u8) -> String {
    let t = lang.texts();
    format!("{n} {}", if n == 1 { t.person } else { t.people })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_distinct_words_in_both_languages() {
        let all = [
            Refusal::BadEncoding,
            Refusal::UnsupportedVersion { version: 9 },
            Refusal::Malformed,
            Refusal::UnknownKey,
            Refusal::WithdrawnKey,
            Refusal::BadSignature,
            Refusal::WrongSession,
            Refusal::NotYetValid,
            Refusal::Expired,
            Refusal::Revoked {
                reason: RevocationReason::Refunded,
            },
        ];
        for lang in [Lang::Fr, Lang::En] {
            let words: std::collections::BTreeSet<String> =
                all.iter().map(|r| refusal_text(lang, r)).collect();
            assert_eq!(words.len(), all.len(), "{lang:?}");
        }
        assert_ne!(
            refusal_text(Lang::Fr, &Refusal::Expired),
            refusal_text(Lang::En, &Refusal::Expired)
        );
    }

    #[test]
    fn every_alarm_is_said_in_both_languages() {
        let all = [
            Alarm::RevocationsBehind,
            Alarm::KeyringRefused,
            Alarm::DeviceListRefused,
            Alarm::ListStale { age_secs: 1800 },
            Alarm::EntriesRefused { count: 3 },
        ];
        for a in &all {
            assert_ne!(alarm_text(Lang::Fr, a), alarm_text(Lang::En, a), "{a:?}");
        }
        assert!(alarm_text(Lang::Fr, &all[0]).contains("sauvegarde"));
        assert!(alarm_text(Lang::En, &all[0]).contains("back-up"));
        assert!(alarm_text(Lang::En, &all[3]).contains("30 min"));
    }

    #[test]
    fn no_reason_or_alarm_is_phrased_as_a_question() {
        let refusals = [
            Refusal::UnknownKey,
            Refusal::WithdrawnKey,
            Refusal::BadSignature,
        ];
        let alarms = [
            Alarm::RevocationsBehind,
            Alarm::KeyringRefused,
            Alarm::DeviceListRefused,
        ];
        for lang in [Lang::Fr, Lang::En] {
            for r in &refusals {
                assert!(!refusal_text(lang, r).contains('?'), "{r:?}");
            }
            for a in &alarms {
                assert!(!alarm_text(lang, a).contains('?'), "{a:?}");
            }
            let t = lang.texts();
            for text in [t.need_enrolment, t.need_keys, t.need_sessions] {
                assert!(!text.contains('?'), "{text}");
            }
        }
    }

    #[test]
    fn pending_and_sessions_agree_in_number() {
        assert_eq!(pending_upload(Lang::Fr, 3), "3 passages en attente d'envoi");
        assert_eq!(pending_upload(Lang::Fr, 1), "1 passage en attente d'envoi");
        assert_eq!(pending_upload(Lang::En, 2), "2 scans waiting to upload");
        assert_eq!(
            sessions_summary(Lang::Fr, Some("Finale 100 m"), 3),
            "3 épreuves : Finale 100 m …"
        );
        assert_eq!(
            sessions_summary(Lang::En, Some("Final"), 1),
            "1 session: Final"
        );
        assert_eq!(
            sessions_summary(Lang::Fr, None, 0),
            "Aucune épreuve choisie"
        );
    }

    #[test]
    fn people_agree_in_number() {
        assert_eq!(people(Lang::Fr, 1), "1 personne");
        assert_eq!(people(Lang::En, 4), "4 people");
    }
}
