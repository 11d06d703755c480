//! The page templates (askama, auto-escaped, all extending `layout.html`).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::db::users::User;
use crate::error::AppError;
use crate::web::ctx::PageCtx;

/// Errors of a form, as (field name, message key), shown next to each field.
#[derive(Default, Debug)]
pub struct FieldErrors(Vec<(&'static str, &'static str)>);

impl FieldErrors {
    /// Records an error on `field` (the first one per field is shown).
    pub fn add(&mut self, field: &'static str, key: &'static str) {
        if self.get(field).is_none() {
            self.0.push((field, key));
        }
    }

    /// Records a new-password check failure next to the field it is about:
    /// a mismatch under the confirmation, anything else under the password.
    pub fn add_password_error(&mut self, key: &'static str) {
        let field = if key == "err.password_mismatch" {
            "password_confirm"
        } else {
            "password"
        };
        self.add(field, key);
    }

    /// The message key of `field`'s error.
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, k)| *k)
    }

    /// Whether there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders a template with a status.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Result<Response, AppError> {
    Ok((status, Html(page.render()?)).into_response())
}

/// `/`.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
}

/// A title, a message and an optional link.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Message key of the title.
    pub title_key: &'static str,
    /// Message key of the text.
    pub text_key: &'static str,
    /// `success`, `error`, `info` or `warning`.
    pub kind: &'static str,
    /// Link target, or empty.
    pub link_href: &'static str,
    /// Message key of the link text.
    pub link_key: &'static str,
}

/// `/register`.
#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// Submitted username.
    pub username: &'a str,
    /// Submitted email.
    pub email: &'a str,
    /// Submitted prénom.
    pub first_name: &'a str,
    /// Submitted nom.
    pub last_name: &'a str,
}

/// `/login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// Submitted email.
    pub email: &'a str,
    /// Message key of a notice, or empty.
    pub notice: &'static str,
    /// Kind of the notice.
    pub notice_kind: &'static str,
}

/// `/login/totp`.
#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// Message key of an error notice, or empty.
    pub notice: &'static str,
}

/// `/verify-email`.
#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The token from the link.
    pub token: &'a str,
}

/// `/password/forgot`.
#[derive(Template)]
#[template(path = "forgot.html")]
pub struct ForgotPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// Submitted email.
    pub email: &'a str,
}

/// `/password/reset`.
#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// The token from the link.
    pub token: &'a str,
}

/// `/account`.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors of the password form.
    pub errors: FieldErrors,
    /// The user.
    pub user: &'a User,
    /// Whether the user is an admin.
    pub is_admin: bool,
    /// Unused recovery codes.
    pub recovery_left: i64,
    /// Prénom shown in the profile form.
    pub first_name: &'a str,
    /// Nom shown in the profile form.
    pub last_name: &'a str,
    /// Message key of a success notice, or empty.
    pub notice: &'static str,
}

/// `/account/2fa` while two-factor is off.
#[derive(Template)]
#[template(path = "twofa_setup.html")]
pub struct TwofaSetupPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// The secret in base32.
    pub secret: String,
    /// Whether this is an admin who must enrol before going on.
    pub admin_required: bool,
}

/// `/account/2fa` while two-factor is on.
#[derive(Template)]
#[template(path = "twofa_manage.html")]
pub struct TwofaManagePage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Field errors.
    pub errors: FieldErrors,
    /// Whether the user is an admin (who may not turn 2FA off).
    pub is_admin: bool,
}

/// The recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The codes.
    pub codes: Vec<String>,
}
