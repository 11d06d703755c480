//! Offers: list, create, edit, put on sale or withdraw. A new active offer
//! is on sale at once: the shop reads the offers table, no code changes.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Admin, echo, has_control};
use crate::db::catalogue::{OfferInput, OfferRow, OfferSold};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, render};

/// The offer form as typed (echoed back on errors).
#[derive(Deserialize, Default, Clone)]
pub(super) struct OfferForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seats: String,
    #[serde(default)]
    price_percent: String,
    #[serde(default)]
    active: Option<String>,
}

impl OfferForm {
    fn from_row(o: &OfferRow) -> Self {
        Self {
            name: o.name.clone(),
            description: o.description.clone(),
            seats: o.seats.to_string(),
            price_percent: o.price_percent.to_string(),
            active: o.active.then(|| "1".to_owned()),
        }
    }

    fn echoed(&self) -> Self {
        Self {
            name: echo(&self.name, 80),
            description: echo(&self.description, 300),
            seats: echo(&self.seats, 10),
            price_percent: echo(&self.price_percent, 10),
            active: self.active.clone(),
        }
    }

    /// Whether the "on sale" box is ticked.
    fn is_active(&self) -> bool {
        self.active.is_some()
    }
}

/// Longest offer name.
const NAME_MAX: usize = 40;
/// Longest offer description.
const DESCRIPTION_MAX: usize = 200;

/// Checks every field; the errors name each field's problem.
fn parse(f: &OfferForm, errors: &mut FieldErrors) -> Option<OfferInput> {
    let name = f.name.trim();
    if name.is_empty() {
        errors.add("name", "admin.err.required");
    } else if name.chars().count() > NAME_MAX {
        errors.add("name", "admin.err.name_too_long");
    } else if has_control(name) {
        errors.add("name", "admin.err.control_chars");
    }
    let description = f.description.trim();
    if description.chars().count() > DESCRIPTION_MAX {
        errors.add("description", "admin.err.description_too_long");
    } else if has_control(description) {
        errors.add("description", "admin.err.control_chars");
    }
    let seats = f
        .seats
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| (1..=255).contains(s));
    if seats.is_none() {
        errors.add("seats", "admin.err.seats_range");
    }
    let percent = f
        .price_percent
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|p| (1..=1000).contains(p));
    if percent.is_none() {
        errors.add("price_percent", "admin.err.percent_range");
    }
    Some(OfferInput {
        name: name.to_owned(),
        description: description.to_owned(),
        seats: seats?,
        price_percent: percent?,
        active: f.is_active(),
    })
    .filter(|_| errors.is_empty())
}

/// `/admin/offers`.
#[derive(Template)]
#[template(path = "admin/offers.html")]
struct OffersPage<'a> {
    ctx: &'a PageCtx,
    offers: Vec<OfferSold>,
    form: OfferForm,
    errors: FieldErrors,
    notice: &'static str,
}

/// `/admin/offers/{id}`.
#[derive(Template)]
#[template(path = "admin/offer_edit.html")]
struct OfferEditPage<'a> {
    ctx: &'a PageCtx,
    offer: OfferRow,
    form: OfferForm,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: String,
}

async fn list_page(
    state: &AppState,
    ctx: &PageCtx,
    status: StatusCode,
    form: OfferForm,
    errors: FieldErrors,
    notice: &'static str,
) -> Result<Response> {
    let offers = state.store.admin_offers().await?;
    render(
        status,
        &OffersPage {
            ctx,
            offers,
            form,
            errors,
            notice,
        },
    )
}

/// `GET /admin/offers`.
pub(super) async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<Done>,
) -> Result<Response> {
    let notice = match q.done.as_str() {
        "created" => "admin.offers.created",
        "updated" => "admin.offers.updated",
        "activated" => "admin.offers.activated",
        "deactivated" => "admin.offers.deactivated",
        _ => "",
    };
    let form = OfferForm {
        active: Some("1".into()),
        ..OfferForm::default()
    };
    list_page(
        &state,
        &ctx,
        StatusCode::OK,
        form,
        FieldErrors::default(),
        notice,
    )
    .await
}

/// `POST /admin/offers`.
pub(super) async fn create(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<OfferForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::default();
    let Some(input) = parse(&f, &mut errors) else {
        return list_page(
            &state,
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            f.echoed(),
            errors,
            "",
        )
        .await;
    };
    match state.store.admin_create_offer(admin.actor, input).await? {
        Ok(id) => {
            tracing::info!(offer_id = id, "offer created");
            Ok(Redirect::to("/admin/offers?done=created").into_response())
        }
        Err(_) => {
            errors.add("name", "admin.err.name_taken");
            list_page(
                &state,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                f.echoed(),
                errors,
                "",
            )
            .await
        }
    }
}

/// `GET /admin/offers/{id}`.
pub(super) async fn edit(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
) -> Result<Response> {
    let offer = state.store.offer(id).await?.ok_or(AppError::NotFound)?;
    render(
        StatusCode::OK,
        &OfferEditPage {
            ctx: &ctx,
            form: OfferForm::from_row(&offer),
            offer,
            errors: FieldErrors::default(),
        },
    )
}

/// `POST /admin/offers/{id}`.
pub(super) async fn update(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
    Form(f): Form<OfferForm>,
) -> Result<Response> {
    let offer = state.store.offer(id).await?.ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    if let Some(input) = parse(&f, &mut errors) {
        match state
            .store
            .admin_update_offer(admin.actor, id, input)
            .await?
        {
            Ok(true) => return Ok(Redirect::to("/admin/offers?done=updated").into_response()),
            Ok(false) => return Err(AppError::NotFound),
            Err(_) => errors.add("name", "admin.err.name_taken"),
        }
    }
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &OfferEditPage {
            ctx: &ctx,
            offer,
            form: f.echoed(),
            errors,
        },
    )
}

#[derive(Deserialize)]
pub(super) struct ActiveForm {
    #[serde(default)]
    active: String,
}

/// `POST /admin/offers/{id}/active`: `active=1` puts on sale, `0` withdraws.
pub(super) async fn set_active(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Form(f): Form<ActiveForm>,
) -> Result<Response> {
    let active = match f.active.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::BadRequest),
    };
    if !state
        .store
        .admin_set_offer_active(admin.actor, id, active)
        .await?
    {
        return Err(AppError::NotFound);
    }
    let to = if active {
        "/admin/offers?done=activated"
    } else {
        "/admin/offers?done=deactivated"
    };
    Ok(Redirect::to(to).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, seats: &str, percent: &str) -> OfferForm {
        OfferForm {
            name: name.into(),
            description: String::new(),
            seats: seats.into(),
            price_percent: percent.into(),
            active: Some("1".into()),
        }
    }

    #[test]
    fn offers_are_validated_field_by_field() {
        let mut e = FieldErrors::default();
        let ok = parse(&form("  Groupe 8 ", "8", "80"), &mut e).expect("valid");
        assert_eq!(ok.name, "Groupe 8");
        assert!(ok.active);

        let mut e = FieldErrors::default();
        assert!(parse(&form("", "0", "abc"), &mut e).is_none());
        assert_eq!(e.get("name"), Some("admin.err.required"));
        assert_eq!(e.get("seats"), Some("admin.err.seats_range"));
        assert_eq!(e.get("price_percent"), Some("admin.err.percent_range"));

        let mut e = FieldErrors::default();
        assert!(parse(&form("a\u{0}b", "256", "1001"), &mut e).is_none());
        assert_eq!(e.get("name"), Some("admin.err.control_chars"));
        assert_eq!(e.get("seats"), Some("admin.err.seats_range"));

        let mut e = FieldErrors::default();
        assert!(parse(&form(&"x".repeat(41), "1", "1"), &mut e).is_none());
        assert_eq!(e.get("name"), Some("admin.err.name_too_long"));
    }
}
