//! Reading and writing cookies (our values are base64url or plain codes, so
//! no encoding is needed; anything else is ignored).

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name`, if the request has it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `SameSite` policy.
#[derive(Clone, Copy)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level cross-site navigations (links from emails).
    Lax,
}

/// A `Set-Cookie` value: Path=/, HttpOnly, and Secure over https.
/// `max_age_secs` `None` makes a browser-session cookie; `Some(0)` deletes it.
pub fn set(
    name: &str,
    value: &str,
    max_age_secs: Option<i64>,
    same_site: SameSite,
    secure: bool,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly");
    s.push_str(match same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
    });
    if secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age_secs {
        s.push_str(&format!("; Max-Age={age}"));
    }
    // Names and values are ours (token alphabet), so this cannot fail; fall
    // back to an expired empty cookie rather than panicking.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", Some(0), SameSite::Lax, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_among_several_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; jo_session=abc; b=2"),
        );
        assert_eq!(get(&h, "jo_session"), Some("abc"));
        assert_eq!(get(&h, "jo"), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let v = set("x", "y", None, SameSite::Strict, true);
        assert_eq!(
            v.to_str().expect("ascii"),
            "x=y; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
