//! CSRF protection for every state-changing request outside `/api/` (the
//! API authenticates with bearer tokens, not cookies).
//!
//! Each browser gets a random `jo_csrf` cookie (HttpOnly, SameSite=Strict);
//! forms carry `csrf = HMAC(server key, cookie)`. A POST is accepted only if
//! that field matches, its `Origin` (when sent) is this site, and the browser
//! does not flag it as cross-site. Another site can neither read the cookie
//! nor compute the MAC, so it cannot forge the field.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::tokens::{ct_eq, is_token_shaped, mac, random_token};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::cookies;

/// The CSRF token to embed in this request's forms.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// The token matching a CSRF cookie value.
pub fn token_for(key: &[u8; 32], cookie_value: &str) -> String {
    mac(key, &[b"csrf", cookie_value.as_bytes()])
}

/// A new CSRF cookie (rotated at login and logout), as a `Set-Cookie` value.
pub fn fresh_cookie(state: &AppState) -> Result<axum::http::HeaderValue, AppError> {
    let value = random_token()?;
    Ok(cookies::set(
        state.cookie_name("jo_csrf"),
        &value,
        None,
        cookies::SameSite::Strict,
        state.https,
    ))
}

fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && (site == "cross-site" || site == "same-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Older clients send no Origin; the token still protects them.
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == state.public_origin {
        return true;
    }
    // The site reached under another name than the public URL (e.g. localhost):
    // the browser sets Host itself, so Origin == scheme://Host is same-origin.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    !host.is_empty()
        && (origin.strip_prefix("http://") == Some(host)
            || origin.strip_prefix("https://") == Some(host))
}

/// The value of field `name` in an urlencoded body (our tokens need no decoding).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    body.split(|b| *b == b'&')
        .filter_map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            Some((it.next()?, it.next()?))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The API authenticates with bearer tokens; static files need no token
    // (and must not carry a Set-Cookie, being cacheable).
    if path.starts_with("/api/")
        || (safe && (path.starts_with("/static/") || (path == "/healthz" || path == "/readyz")))
    {
        return next.run(req).await;
    }
    let cookie_name = state.cookie_name("jo_csrf");
    let existing = cookies::get(req.headers(), cookie_name)
        .filter(|v| is_token_shaped(v))
        .map(str::to_owned);
    let (cookie_value, fresh) = match existing {
        Some(v) => (v, false),
        None => match random_token() {
            Ok(v) => (v, true),
            Err(e) => return AppError::from(e).into_response(),
        },
    };
    let token = token_for(&state.csrf_key, &cookie_value);
    let mut req = req;
    if !safe {
        let urlencoded = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        // A fresh cookie means the request came without one: it cannot carry a valid token.
        let refusal = if fresh {
            Some("no CSRF cookie")
        } else if !urlencoded {
            Some("not an urlencoded form")
        } else if !same_origin(req.headers(), &state) {
            Some("cross-origin request")
        } else {
            None
        };
        if let Some(reason) = refusal {
            tracing::warn!(path = %req.uri().path(), reason, "request refused by CSRF protection");
            return AppError::Forbidden.into_response();
        }
        let (parts, body) = req.into_parts();
        let bytes = match to_bytes(body, state.config.body_limit_bytes).await {
            Ok(b) => b,
            Err(_) => return AppError::TooLarge.into_response(),
        };
        if !form_field(&bytes, "csrf").is_some_and(|t| ct_eq(t, &token)) {
            tracing::warn!(path = %parts.uri.path(), "request refused: CSRF token missing or wrong");
            return AppError::Forbidden.into_response();
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(CsrfToken(token));
    let mut res = next.run(req).await;
    let handler_set_it = res.headers().get_all(header::SET_COOKIE).iter().any(|v| {
        v.as_bytes()
            .starts_with(format!("{cookie_name}=").as_bytes())
    });
    if fresh && !handler_set_it {
        res.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(
                cookie_name,
                &cookie_value,
                None,
                cookies::SameSite::Strict,
                state.https,
            ),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field() {
        assert_eq!(form_field(b"a=1&csrf=xyz&b=2", "csrf"), Some("xyz"));
        assert_eq!(form_field(b"csrfx=1&xcsrf=2", "csrf"), None);
        assert_eq!(form_field(b"csrf", "csrf"), None);
        assert_eq!(form_field(b"", "csrf"), None);
    }
}
