//! Parsed form inputs: each type is built only by `parse`, so holding one
//! means the value was checked. Errors are i18n message keys.

use zxcvbn::Score;

/// Largest accepted password, in characters (bounds hashing and estimator work).
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Smallest accepted password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A normalised email address (trimmed, lower-case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email address; the error is a message key.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err("err.required");
        }
        if s.len() > 254 || has_control(&s) || s.contains(char::is_whitespace) {
            return Err("err.email_invalid");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("err.email_invalid");
        };
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        if !(domain_ok && local_ok) {
            return Err("err.email_invalid");
        }
        Ok(Self(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A username: 3–32 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username; the error is a message key.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("err.required");
        }
        let ok = (3..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("err.username_invalid")
        }
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The code points of Unicode general category Cf ("format", Unicode 15.1):
/// invisible characters that change how the text around them is shown —
/// bidirectional overrides, embeddings and isolates, zero-width spaces and
/// joiners, the soft hyphen, the byte order mark, tags… Inclusive ranges.
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` may not appear in a person's name: a control character, a
/// format character (general category Cf: a right-to-left override shows
/// "Marie\u{202E}eiruC" as "MarieCurie"), or a line or paragraph separator.
/// A holder's name is read at the gate against an identity document, so
/// what is shown must be exactly what was typed.
pub fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A nom or prénom: 1–100 characters, none of them a control or an
/// invisible format character ([`is_forbidden_in_name`]). Names of account
/// holders become the holder names printed and signed on tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a name; the error is a message key.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("err.required");
        }
        if s.chars().any(is_forbidden_in_name) {
            return Err("err.name_format");
        }
        if s.chars().count() > 100 {
            return Err("err.name_invalid");
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password against the policy: 12 to 128 characters, equal to
/// its confirmation, and rated "safely unguessable" (score ≥ 3) by zxcvbn,
/// which refuses common passwords and ones built from the user's own details.
pub fn check_new_password(
    password: &str,
    confirmation: &str,
    user_inputs: &[&str],
) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n == 0 {
        return Err("err.required");
    }
    if n < PASSWORD_MIN_CHARS {
        return Err("err.password_short");
    }
    if n > PASSWORD_MAX_CHARS {
        return Err("err.password_long");
    }
    let inputs: Vec<&str> = user_inputs
        .iter()
        .copied()
        .filter(|s| !s.is_empty())
        .collect();
    if zxcvbn::zxcvbn(password, &inputs).score() < Score::Three {
        return Err("err.password_weak");
    }
    if password != confirmation {
        return Err("err.password_mismatch");
    }
    Ok(())
}

/// [`check_new_password`] on the blocking pool: the estimator can take tens
/// of milliseconds on long inputs, too long for an async worker thread.
pub async fn check_new_password_off_thread(
    password: &str,
    confirmation: &str,
    user_inputs: &[&str],
) -> anyhow::Result<Result<(), &'static str>> {
    let password = zeroize::Zeroizing::new(password.to_owned());
    let confirmation = zeroize::Zeroizing::new(confirmation.to_owned());
    let inputs: Vec<String> = user_inputs.iter().map(|s| (*s).to_owned()).collect();
    Ok(tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        check_new_password(&password, &confirmation, &refs)
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Alice@Example.FR ").expect("valid").as_str(),
            "alice@example.fr"
        );
        for bad in [
            "",
            "alice",
            "a@b",
            "a b@c.fr",
            "<script>@x.fr",
            "a@@b.fr",
            "a@b..",
            "a\u{7}b@x.fr",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn usernames_are_restricted() {
        assert!(Username::parse("alice_99").is_ok());
        for bad in [
            "",
            "ab",
            "<b>",
            "a b c",
            "'; DROP TABLE users;--",
            "_lead",
            &"x".repeat(33),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_allow_unicode_but_not_control_characters() {
        assert!(PersonName::parse("Élodie-Anaïs").is_ok());
        assert!(
            PersonName::parse("O'Brien <b>").is_ok(),
            "escaped on output, not refused"
        );
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert!(PersonName::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn names_refuse_format_characters_and_separators() {
        for bad in [
            "Marie\u{202E}eiruC",
            "\u{2067}Curie\u{2069}",
            "Ma\u{200B}rie",
            "Ma\u{200C}rie",
            "Marie\u{200D}",
            "Marie\u{200E}",
            "\u{FEFF}Marie",
            "Ma\u{00AD}rie",
            "Marie\u{2060}",
            "Marie\u{061C}",
            "Marie\u{E0041}",
            "Marie\u{2028}Curie",
            "Marie\u{2029}Curie",
            "Ma\u{7}rie",
            "Ma\u{9F}rie",
        ] {
            assert_eq!(PersonName::parse(bad), Err("err.name_format"), "{bad:?}");
        }
        // Letters, marks, apostrophes and hyphens of any script are names.
        for good in [
            "Éloïse-Anaïs",
            "N'Diaye",
            "عائشة",
            "李小龍",
            "Ōtani",
            "Nguyễn",
        ] {
            assert!(PersonName::parse(good).is_ok(), "{good:?}");
        }
        // Around the listed ranges, nothing else is caught.
        for c in [
            '\u{00AC}', '\u{00AE}', '\u{200A}', '\u{2010}', '\u{2065}', '\u{2070}', '\u{FEFE}',
            '\u{FF00}',
        ] {
            assert!(!is_forbidden_in_name(c), "{c:?}");
        }
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            check_new_password("short", "short", &[]),
            Err("err.password_short")
        );
        assert_eq!(
            check_new_password("password1234", "password1234", &[]),
            Err("err.password_weak")
        );
        assert_eq!(
            check_new_password("azertyuiop123", "azertyuiop123", &[]),
            Err("err.password_weak")
        );
        assert_eq!(
            check_new_password(
                "alice.martin2024",
                "alice.martin2024",
                &["alice.martin", "alice"]
            ),
            Err("err.password_weak")
        );
        assert_eq!(
            check_new_password("Vélo-Seine-Marathon-42", "Vélo-Seine-Marathon-43", &[]),
            Err("err.password_mismatch")
        );
        assert!(
            check_new_password("Vélo-Seine-Marathon-42", "Vélo-Seine-Marathon-42", &[]).is_ok()
        );
        let long = "x".repeat(129);
        assert_eq!(
            check_new_password(&long, &long, &[]),
            Err("err.password_long")
        );
    }
}
