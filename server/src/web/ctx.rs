//! What every page needs: language, CSRF token, who is logged in.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::cookies;
use crate::web::csrf::CsrfToken;
use crate::web::session::MaybeUser;

/// Name of the language cookie.
pub const LANG_COOKIE: &str = "jo_lang";

/// The request's language: the `jo_lang` cookie, else `Accept-Language`, else French.
pub fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    cookies::get(headers, LANG_COOKIE)
        .and_then(Lang::from_code)
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// The page context given to every template.
pub struct PageCtx {
    /// Language of the page.
    pub lang: Lang,
    /// CSRF token for the page's forms.
    pub csrf: String,
    /// Logged-in user's name, for the navigation.
    pub username: Option<String>,
    /// The logged-in user is an admin (the navigation links the console;
    /// the console's own guard still checks role and 2FA on every request).
    pub is_admin: bool,
    /// Path of the page (for the language switch to come back).
    pub path: String,
}

impl PageCtx {
    /// The text of a message key.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// Link that switches to the other language and comes back here.
    pub fn lang_switch_href(&self) -> String {
        format!(
            "/lang/{}?next={}",
            self.lang.other().code(),
            percent_encode(&self.path)
        )
    }
}

/// Percent-encodes everything but unreserved characters and '/'.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        Ok(Self {
            lang: lang_of(&parts.headers),
            csrf: parts
                .extensions
                .get::<CsrfToken>()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            is_admin: user
                .as_ref()
                .is_some_and(|u| u.user.role == crate::db::users::Role::Admin),
            username: user.map(|u| u.user.username),
            path: parts.uri.path().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_link_is_encoded() {
        let ctx = PageCtx {
            lang: Lang::Fr,
            csrf: String::new(),
            username: None,
            is_admin: false,
            path: "/a b\"<".into(),
        };
        assert_eq!(ctx.lang_switch_href(), "/lang/en?next=/a%20b%22%3C");
    }
}
