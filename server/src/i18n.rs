//! User-facing text, French first, English second.
//!
//! Every string shown to a user is a key of [`MESSAGES`]; templates call
//! `ctx.t("key")`. A unit test checks that every key used in a template or in
//! the code exists in both languages.

use std::collections::HashMap;
use std::sync::LazyLock;

mod admin;
mod shop;

/// Every message table: each area keeps its own, merged into one index.
pub const TABLES: &[&[(&str, &str, &str)]] = &[MESSAGES, shop::MESSAGES, admin::MESSAGES];

/// A supported language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// Français (default).
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The language code (`fr`, `en`), as in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// Parses a language code.
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (for the switch link).
    pub fn other(self) -> Self {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }

    /// The preferred supported language of an `Accept-Language` header, by
    /// quality; French when none is supported.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',').take(20) {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::from_code(primary)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Fr, |(_, l)| l)
    }

    /// The text of `key` in this language; the key itself if it is unknown
    /// (a test guarantees that never happens for keys in the code).
    pub fn t(self, key: &str) -> &'static str {
        match INDEX.get(key) {
            Some((fr, en)) => match self {
                Lang::Fr => fr,
                Lang::En => en,
            },
            None => {
                tracing::warn!(key, "missing translation");
                "?"
            }
        }
    }
}

static INDEX: LazyLock<HashMap<&'static str, (&'static str, &'static str)>> = LazyLock::new(|| {
    TABLES
        .iter()
        .flat_map(|t| t.iter())
        .map(|(k, fr, en)| (*k, (*fr, *en)))
        .collect()
});

/// `(key, français, English)`: accounts, security and the site's frame.
pub const MESSAGES: &[(&str, &str, &str)] = &[
    ("site.name", "JO E-Tickets", "JO E-Tickets"),
    (
        "site.tagline",
        "Billetterie officielle des Jeux",
        "Official Games ticketing",
    ),
    ("nav.home", "Accueil", "Home"),
    ("nav.login", "Connexion", "Log in"),
    ("nav.register", "Créer un compte", "Create an account"),
    ("nav.account", "Mon compte", "My account"),
    ("nav.logout", "Déconnexion", "Log out"),
    ("nav.lang_other", "English", "Français"),
    ("nav.skip", "Aller au contenu", "Skip to content"),
    ("nav.main", "Navigation principale", "Main navigation"),
    (
        "home.title",
        "Bienvenue sur la billetterie",
        "Welcome to the ticket office",
    ),
    (
        "home.lead",
        "Achetez vos billets pour les épreuves, recevez-les sur votre téléphone et par courriel, et présentez le QR code à l'entrée.",
        "Buy your tickets for the events, get them on your phone and by email, and show the QR code at the gate.",
    ),
    (
        "home.cta_register",
        "Créez votre compte pour commencer.",
        "Create your account to get started.",
    ),
    ("home.hello", "Bonjour", "Hello"),
    (
        "form.errors",
        "Le formulaire contient des erreurs : corrigez les champs signalés.",
        "The form has errors: please fix the fields marked below.",
    ),
    ("form.required", "obligatoire", "required"),
    ("field.username", "Nom d'utilisateur", "Username"),
    ("field.email", "Adresse électronique", "Email address"),
    ("field.first_name", "Prénom", "First name"),
    ("field.last_name", "Nom", "Last name"),
    ("field.password", "Mot de passe", "Password"),
    (
        "field.password_confirm",
        "Confirmation du mot de passe",
        "Confirm password",
    ),
    (
        "field.current_password",
        "Mot de passe actuel",
        "Current password",
    ),
    ("field.new_password", "Nouveau mot de passe", "New password"),
    ("field.code", "Code à 6 chiffres", "6-digit code"),
    (
        "field.code_or_recovery",
        "Code à 6 chiffres ou code de secours",
        "6-digit code or recovery code",
    ),
    (
        "hint.username",
        "3 à 32 caractères : lettres, chiffres, « . », « _ » ou « - ».",
        "3 to 32 characters: letters, digits, '.', '_' or '-'.",
    ),
    (
        "hint.password",
        "Au moins 12 caractères. Une phrase de plusieurs mots est idéale ; les mots de passe courants sont refusés.",
        "At least 12 characters. A phrase of several words is ideal; common passwords are refused.",
    ),
    ("register.title", "Créer un compte", "Create an account"),
    ("register.submit", "Créer mon compte", "Create my account"),
    (
        "register.have_account",
        "Déjà un compte ? Connectez-vous.",
        "Already have an account? Log in.",
    ),
    (
        "register.done_title",
        "Vérifiez votre boîte de réception",
        "Check your inbox",
    ),
    (
        "register.done_text",
        "Si cette adresse peut être utilisée, un courriel vient d'y être envoyé avec un lien pour confirmer votre compte. Le lien est valable 24 heures.",
        "If this address can be used, we have just sent it an email with a link to confirm your account. The link is valid for 24 hours.",
    ),
    (
        "verify.title",
        "Confirmer votre adresse",
        "Confirm your address",
    ),
    (
        "verify.text",
        "Cliquez sur le bouton pour confirmer votre adresse électronique.",
        "Click the button to confirm your email address.",
    ),
    (
        "verify.submit",
        "Confirmer mon adresse",
        "Confirm my address",
    ),
    (
        "verify.done",
        "Votre adresse est confirmée. Vous pouvez vous connecter.",
        "Your address is confirmed. You can log in.",
    ),
    (
        "verify.invalid",
        "Ce lien n'est pas valable : il a expiré ou a déjà servi.",
        "This link is not valid: it has expired or was already used.",
    ),
    ("login.title", "Connexion", "Log in"),
    ("login.submit", "Se connecter", "Log in"),
    (
        "login.forgot",
        "Mot de passe oublié ?",
        "Forgot your password?",
    ),
    (
        "login.no_account",
        "Pas encore de compte ? Créez-en un.",
        "No account yet? Create one.",
    ),
    (
        "login.bad_credentials",
        "Adresse ou mot de passe incorrect.",
        "Wrong email address or password.",
    ),
    (
        "login.throttled",
        "Trop de tentatives. Réessayez dans quelques minutes, ou réinitialisez votre mot de passe.",
        "Too many attempts. Try again in a few minutes, or reset your password.",
    ),
    (
        "login.unverified",
        "Confirmez d'abord votre adresse : nous venons de vous renvoyer le lien.",
        "Please confirm your address first: we have just sent you the link again.",
    ),
    (
        "login.expired",
        "Votre session a expiré. Reconnectez-vous.",
        "Your session has expired. Please log in again.",
    ),
    (
        "totp.title",
        "Vérification en deux étapes",
        "Two-step verification",
    ),
    (
        "totp.text",
        "Saisissez le code affiché par votre application d'authentification, ou l'un de vos codes de secours.",
        "Enter the code shown by your authenticator app, or one of your recovery codes.",
    ),
    ("totp.submit", "Vérifier", "Verify"),
    (
        "totp.bad_code",
        "Code incorrect ou déjà utilisé.",
        "Wrong or already used code.",
    ),
    (
        "forgot.title",
        "Mot de passe oublié",
        "Forgot your password",
    ),
    (
        "forgot.text",
        "Indiquez l'adresse de votre compte : nous vous enverrons un lien pour choisir un nouveau mot de passe.",
        "Enter your account's address: we will send you a link to choose a new password.",
    ),
    ("forgot.submit", "Envoyer le lien", "Send the link"),
    (
        "forgot.done",
        "Si un compte existe pour cette adresse, un lien de réinitialisation vient d'y être envoyé. Il est valable une heure.",
        "If an account exists for this address, a reset link has just been sent to it. It is valid for one hour.",
    ),
    ("reset.title", "Nouveau mot de passe", "New password"),
    ("reset.submit", "Changer le mot de passe", "Change password"),
    (
        "reset.done",
        "Votre mot de passe a été changé et toutes vos sessions ont été fermées. Vous pouvez vous connecter.",
        "Your password has been changed and all your sessions were closed. You can log in.",
    ),
    ("account.title", "Mon compte", "My account"),
    ("account.profile", "Profil", "Profile"),
    (
        "account.change_password",
        "Changer de mot de passe",
        "Change password",
    ),
    (
        "account.profile_saved",
        "Profil enregistré.",
        "Profile saved.",
    ),
    ("account.save_profile", "Enregistrer", "Save"),
    (
        "account.password_changed",
        "Mot de passe changé. Vos autres sessions ont été fermées.",
        "Password changed. Your other sessions were closed.",
    ),
    ("account.security", "Sécurité", "Security"),
    (
        "account.2fa",
        "Vérification en deux étapes (TOTP)",
        "Two-step verification (TOTP)",
    ),
    ("account.2fa_on", "activée", "on"),
    ("account.2fa_off", "désactivée", "off"),
    (
        "account.2fa_manage",
        "Gérer la vérification en deux étapes",
        "Manage two-step verification",
    ),
    (
        "account.recovery_left",
        "Codes de secours restants :",
        "Recovery codes left:",
    ),
    ("account.role_admin", "Administrateur", "Administrator"),
    ("account.role_buyer", "Acheteur", "Buyer"),
    ("account.role", "Rôle", "Role"),
    (
        "2fa.title",
        "Vérification en deux étapes",
        "Two-step verification",
    ),
    (
        "2fa.admin_required",
        "Les administrateurs doivent activer la vérification en deux étapes avant de continuer.",
        "Administrators must turn on two-step verification before going on.",
    ),
    (
        "2fa.step1",
        "1. Scannez ce QR code avec votre application d'authentification (Google Authenticator, FreeOTP, Aegis…).",
        "1. Scan this QR code with your authenticator app (Google Authenticator, FreeOTP, Aegis…).",
    ),
    (
        "2fa.qr_alt",
        "QR code de configuration de l'application d'authentification",
        "Authenticator app set-up QR code",
    ),
    (
        "2fa.secret_label",
        "Ou saisissez cette clé à la main :",
        "Or type this key by hand:",
    ),
    (
        "2fa.step2",
        "2. Saisissez le code à 6 chiffres affiché par l'application.",
        "2. Enter the 6-digit code shown by the app.",
    ),
    ("2fa.enable", "Activer", "Turn on"),
    (
        "2fa.bad_code",
        "Code incorrect. Vérifiez l'heure de votre téléphone et réessayez.",
        "Wrong code. Check your phone's clock and try again.",
    ),
    (
        "2fa.new_secret",
        "Ce code ne correspond à aucune clé en cours d'activation dans cette session (une autre session a pu en commencer une). Scannez la nouvelle clé ci-dessous, puis saisissez son code.",
        "This code matches no key being set up in this session (another session may have started one). Scan the new key below, then enter its code.",
    ),
    (
        "2fa.codes_title",
        "Vos codes de secours",
        "Your recovery codes",
    ),
    (
        "2fa.codes_text",
        "La vérification en deux étapes est activée. Conservez ces codes en lieu sûr : chacun permet une seule connexion si vous perdez votre téléphone. Ils ne seront plus affichés.",
        "Two-step verification is on. Keep these codes somewhere safe: each lets you log in once if you lose your phone. They will not be shown again.",
    ),
    ("2fa.continue", "Continuer", "Continue"),
    (
        "2fa.is_on",
        "La vérification en deux étapes est activée.",
        "Two-step verification is on.",
    ),
    ("2fa.disable", "Désactiver", "Turn off"),
    (
        "2fa.disable_text",
        "Pour la désactiver, confirmez avec votre mot de passe et un code.",
        "To turn it off, confirm with your password and a code.",
    ),
    (
        "2fa.admin_cannot_disable",
        "Les administrateurs ne peuvent pas désactiver la vérification en deux étapes.",
        "Administrators cannot turn two-step verification off.",
    ),
    (
        "err.required",
        "Ce champ est obligatoire.",
        "This field is required.",
    ),
    (
        "err.email_invalid",
        "Saisissez une adresse électronique valide, par exemple nom@exemple.fr.",
        "Enter a valid email address, for example name@example.com.",
    ),
    (
        "err.username_invalid",
        "3 à 32 caractères : lettres, chiffres, « . », « _ » ou « - », en commençant par une lettre ou un chiffre.",
        "3 to 32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.",
    ),
    (
        "err.username_taken",
        "Ce nom d'utilisateur est déjà pris.",
        "This username is already taken.",
    ),
    (
        "err.name_format",
        "Ce nom contient un caractère invisible ou de mise en forme (inversion du sens d'écriture, espace sans largeur, trait d'union conditionnel…) ou un caractère de contrôle : retirez-le. Le nom est vérifié à l'entrée contre une pièce d'identité.",
        "This name holds an invisible or formatting character (a text direction override, a zero-width space, a soft hyphen…) or a control character: remove it. The name is checked at the gate against an identity document.",
    ),
    (
        "err.name_invalid",
        "100 caractères au plus.",
        "At most 100 characters.",
    ),
    (
        "err.password_short",
        "Le mot de passe doit compter au moins 12 caractères.",
        "The password must be at least 12 characters long.",
    ),
    (
        "err.password_long",
        "Le mot de passe doit compter au plus 128 caractères.",
        "The password must be at most 128 characters long.",
    ),
    (
        "err.password_weak",
        "Ce mot de passe est trop facile à deviner (mot de passe courant ou proche de vos informations). Essayez une phrase de plusieurs mots.",
        "This password is too easy to guess (a common password or close to your details). Try a phrase of several words.",
    ),
    (
        "err.password_mismatch",
        "Les deux mots de passe ne correspondent pas.",
        "The two passwords do not match.",
    ),
    (
        "err.current_password",
        "Mot de passe actuel incorrect.",
        "Wrong current password.",
    ),
    ("error.title", "Erreur", "Error"),
    (
        "error.bad_request",
        "La requête n'est pas valable.",
        "The request is not valid.",
    ),
    (
        "error.forbidden",
        "Action refusée : le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et réessayez.",
        "Action refused: the form has expired or does not come from this site. Reload the page and try again.",
    ),
    ("error.not_found", "Page introuvable.", "Page not found."),
    (
        "error.too_large",
        "La requête est trop volumineuse.",
        "The request is too large.",
    ),
    (
        "error.internal",
        "Une erreur interne est survenue. Réessayez dans un instant.",
        "An internal error occurred. Please try again in a moment.",
    ),
    (
        "error.unavailable",
        "Le service est momentanément indisponible. Réessayez dans quelques secondes.",
        "The service is unavailable for a moment. Try again in a few seconds.",
    ),
    (
        "error.back_home",
        "Retour à l'accueil",
        "Back to the home page",
    ),
    (
        "mail.verify_subject",
        "Confirmez votre adresse – JO E-Tickets",
        "Confirm your address – JO E-Tickets",
    ),
    (
        "mail.verify_body",
        "Bonjour,\n\nPour confirmer votre compte JO E-Tickets, ouvrez ce lien (valable 24 heures) :\n\n",
        "Hello,\n\nTo confirm your JO E-Tickets account, open this link (valid for 24 hours):\n\n",
    ),
    (
        "mail.exists_subject",
        "Tentative d'inscription – JO E-Tickets",
        "Registration attempt – JO E-Tickets",
    ),
    (
        "mail.exists_body",
        "Bonjour,\n\nQuelqu'un a essayé de créer un compte JO E-Tickets avec votre adresse, qui a déjà un compte. Si c'était vous, connectez-vous ou réinitialisez votre mot de passe :\n\n",
        "Hello,\n\nSomeone tried to create a JO E-Tickets account with your address, which already has one. If it was you, log in or reset your password:\n\n",
    ),
    (
        "mail.reset_subject",
        "Réinitialisation du mot de passe – JO E-Tickets",
        "Password reset – JO E-Tickets",
    ),
    (
        "mail.reset_body",
        "Bonjour,\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable une heure) :\n\n",
        "Hello,\n\nTo choose a new password, open this link (valid for one hour):\n\n",
    ),
    (
        "mail.footer",
        "\n\nSi vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n",
        "\n\nIf you did not ask for this, ignore this message.\n",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,fr;q=0.8"),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language("de-DE,fr;q=0.5,en;q=0.4"),
            Lang::Fr
        );
        assert_eq!(Lang::from_accept_language("de"), Lang::Fr);
        assert_eq!(Lang::from_accept_language(""), Lang::Fr);
        assert_eq!(Lang::from_accept_language("en;q=0"), Lang::Fr);
        assert_eq!(Lang::from_accept_language(";;;,q=,en;q=abc"), Lang::En);
    }

    #[test]
    fn keys_are_unique_and_translated() {
        let all: Vec<_> = TABLES.iter().flat_map(|t| t.iter()).collect();
        assert_eq!(INDEX.len(), all.len(), "duplicate key");
        for (k, fr, en) in all {
            assert!(!fr.is_empty() && !en.is_empty(), "{k} lacks a translation");
        }
    }

    /// Every `t("…")` in the templates and every `"err.…"`-style key in the
    /// sources names a message.
    #[test]
    fn every_key_used_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        let mut dirs = vec![root.join("templates"), root.join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.is_file() {
                    texts.push((path.clone(), std::fs::read_to_string(&path).expect("read")));
                }
            }
        }
        // A quoted piece that starts like a known key ("shop.", "err.", …) must be one.
        let mut prefixes: Vec<String> = INDEX
            .keys()
            .filter_map(|k| k.split_once('.').map(|(p, _)| format!("{p}.")))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        for (path, text) in &texts {
            for piece in text.split('"') {
                let looks_like_key = prefixes.iter().any(|p| piece.starts_with(p))
                    && piece.len() < 40
                    && piece.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_'
                    });
                if looks_like_key
                    && piece.contains('.')
                    && !piece.ends_with('.')
                    && ![".html", ".key", ".pem", ".svg", ".css"]
                        .iter()
                        .any(|ext| piece.ends_with(ext))
                {
                    assert!(
                        INDEX.contains_key(piece),
                        "{}: unknown message key {piece}",
                        path.display()
                    );
                }
            }
        }
    }
}
