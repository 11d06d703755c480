//! Sessions (épreuves): list, create, edit (capacity never below the seats
//! sold or held; doors, start and end fixed once a valid ticket exists, since
//! tickets carry their signed validity window and are never reissued),
//! cancel (revokes every ticket and mails the buyers), re-issue every ticket
//! (new codes for all its holders, the old ones revoked).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Admin, echo, fmt_time, has_control, money};
use crate::db::catalogue::{AffectedBuyer, SessionInput, SessionRefusal, SessionRow};
use crate::db::outbox::{MailKind, Outgoing};
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::units::status::SessionStatus;
use crate::units::time::{paris, paris_to_utc, parse_iso_date};
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, render};

/// The session form as typed.
#[derive(Deserialize, Default, Clone)]
pub(super) struct SessionForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    sport_id: String,
    #[serde(default)]
    venue_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    doors_open_at: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    base_price: String,
    #[serde(default)]
    entry_rule: String,
    #[serde(default)]
    max_entries: String,
    #[serde(default)]
    entrance: String,
}

/// A Unix time as the value of a `datetime-local` input (Paris time).
fn local_input(utc: i64) -> String {
    let l = paris(utc);
    format!("{}T{}", l.iso_date(), l.hm())
}

/// Cents as the value of the price input, `12.50`.
fn euros_input(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl SessionForm {
    fn from_session(s: &SessionRow) -> Self {
        Self {
            code: s.code.clone(),
            sport_id: s.sport_id.to_string(),
            venue_id: s.venue_id.to_string(),
            title: s.title.clone(),
            starts_at: local_input(s.starts_at),
            ends_at: local_input(s.ends_at),
            doors_open_at: local_input(s.doors_open_at),
            capacity: s.capacity.to_string(),
            base_price: euros_input(s.base_price_cents),
            entry_rule: s.entry_rule.clone(),
            max_entries: s.max_entries.to_string(),
            entrance: s.entrance.clone(),
        }
    }

    fn echoed(&self) -> Self {
        Self {
            code: echo(&self.code, 40),
            sport_id: echo(&self.sport_id, 12),
            venue_id: echo(&self.venue_id, 12),
            title: echo(&self.title, 200),
            starts_at: echo(&self.starts_at, 20),
            ends_at: echo(&self.ends_at, 20),
            doors_open_at: echo(&self.doors_open_at, 20),
            capacity: echo(&self.capacity, 12),
            base_price: echo(&self.base_price, 16),
            entry_rule: echo(&self.entry_rule, 10),
            max_entries: echo(&self.max_entries, 6),
            entrance: echo(&self.entrance, 200),
        }
    }
}

/// `YYYY-MM-DDTHH:MM` (Paris time, as `datetime-local` sends it) to Unix seconds.
pub fn parse_local(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once('T').or_else(|| s.split_once(' '))?;
    let days = parse_iso_date(date)?;
    let time = time.get(0..5)?;
    let (h, m) = time.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    // Ticket validity windows are u32 seconds: keep dates inside 2000–2100.
    let utc = paris_to_utc(days, h * 60 + m);
    (946_684_800..4_102_444_800).contains(&utc).then_some(utc)
}

/// `12`, `12.5`, `12,50` euros to cents; at most 100 000 €.
pub fn parse_euros(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('€').trim().replace(',', ".");
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s.as_str(), ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 6
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let cents = whole.checked_mul(100)?.checked_add(frac)?;
    (cents <= 10_000_000).then_some(cents)
}

/// Largest capacity a session may have (the Stade de France holds 80 000).
const CAPACITY_MAX: i64 = 1_000_000;

fn parse(f: &SessionForm, errors: &mut FieldErrors) -> Option<SessionInput> {
    let code = f.code.trim().to_ascii_uppercase();
    if code.is_empty() {
        errors.add("code", "admin.err.required");
    } else if code.len() > 16
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errors.add("code", "admin.err.code_format");
    }
    let title = f.title.trim();
    if title.is_empty() {
        errors.add("title", "admin.err.required");
    } else if title.chars().count() > 120 {
        errors.add("title", "admin.err.title_too_long");
    } else if has_control(title) {
        errors.add("title", "admin.err.control_chars");
    }
    let sport_id = f.sport_id.trim().parse::<i64>().ok();
    if sport_id.is_none() {
        errors.add("sport_id", "admin.err.choose");
    }
    let venue_id = f.venue_id.trim().parse::<i64>().ok();
    if venue_id.is_none() {
        errors.add("venue_id", "admin.err.choose");
    }
    let starts = parse_local(&f.starts_at);
    if starts.is_none() {
        errors.add("starts_at", "admin.err.datetime");
    }
    let ends = parse_local(&f.ends_at);
    match (ends, starts) {
        (None, _) => errors.add("ends_at", "admin.err.datetime"),
        (Some(e), Some(s)) if e <= s => errors.add("ends_at", "admin.err.ends_before_start"),
        // Tickets are valid from the doors to an hour after the end: at most
        // 45 days in the ticket format.
        (Some(e), Some(s)) if e - s > 7 * 86_400 => errors.add("ends_at", "admin.err.too_long"),
        _ => {}
    }
    let doors = parse_local(&f.doors_open_at);
    match (doors, starts) {
        (None, _) => errors.add("doors_open_at", "admin.err.datetime"),
        (Some(d), Some(s)) if d > s => errors.add("doors_open_at", "admin.err.doors_after_start"),
        (Some(d), Some(s)) if s - d > 86_400 => {
            errors.add("doors_open_at", "admin.err.doors_too_early")
        }
        _ => {}
    }
    let capacity = f
        .capacity
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|c| (0..=CAPACITY_MAX).contains(c));
    if capacity.is_none() {
        errors.add("capacity", "admin.err.capacity_range");
    }
    let price = parse_euros(&f.base_price);
    if price.is_none() {
        errors.add("base_price", "admin.err.price");
    }
    let entry_rule = match f.entry_rule.as_str() {
        "single" | "multiple" => Some(f.entry_rule.clone()),
        _ => {
            errors.add("entry_rule", "admin.err.choose");
            None
        }
    };
    let max_entries = f
        .max_entries
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|m| (1..=20).contains(m));
    if max_entries.is_none() {
        errors.add("max_entries", "admin.err.max_entries");
    }
    if entry_rule.as_deref() == Some("single") && max_entries.is_some_and(|m| m != 1) {
        errors.add("max_entries", "admin.err.single_entry");
    }
    // Optional: printed on the ticket under the venue's address.
    let entrance = f.entrance.trim();
    if entrance.chars().count() > 120 {
        errors.add("entrance", "admin.err.entrance_too_long");
    } else if has_control(entrance) {
        errors.add("entrance", "admin.err.control_chars");
    }
    let input = SessionInput {
        code,
        sport_id: sport_id?,
        venue_id: venue_id?,
        title: title.to_owned(),
        starts_at: starts?,
        ends_at: ends?,
        doors_open_at: doors?,
        capacity: capacity?,
        base_price_cents: price?,
        entry_rule: entry_rule?,
        max_entries: max_entries?,
        entrance: entrance.to_owned(),
    };
    errors.is_empty().then_some(input)
}

/// A session row of the list.
pub(super) struct SessionLine {
    s: SessionRow,
    starts: String,
    price: String,
}

/// `/admin/sessions`.
#[derive(Template)]
#[template(path = "admin/sessions.html")]
struct SessionsPage<'a> {
    ctx: &'a PageCtx,
    sessions: Vec<SessionLine>,
}

/// `/admin/sessions/new` and `/admin/sessions/{id}`.
#[derive(Template)]
#[template(path = "admin/session_form.html")]
struct SessionFormPage<'a> {
    ctx: &'a PageCtx,
    /// The session edited, `None` when creating.
    session: Option<SessionRow>,
    form: SessionForm,
    errors: FieldErrors,
    sports: Vec<(i64, String)>,
    venues: Vec<(i64, String)>,
    notice: &'static str,
    /// Valid tickets of the session edited: when any, its times are shown
    /// read-only, with why.
    sold: i64,
    /// After a session-wide re-issue: tickets re-issued, tickets left out.
    reissued: Option<(usize, usize)>,
}

/// `GET /admin/sessions`.
pub(super) async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response> {
    let sessions = state
        .store
        .admin_sessions()
        .await?
        .into_iter()
        .map(|s| SessionLine {
            starts: fmt_time(s.starts_at),
            price: money(s.base_price_cents),
            s,
        })
        .collect();
    render(
        StatusCode::OK,
        &SessionsPage {
            ctx: &ctx,
            sessions,
        },
    )
}

async fn form_page(
    state: &AppState,
    ctx: &PageCtx,
    status: StatusCode,
    session: Option<SessionRow>,
    form: SessionForm,
    errors: FieldErrors,
    notice: &'static str,
) -> Result<Response> {
    form_page_after(state, ctx, status, session, form, errors, notice, None).await
}

/// [`form_page`], with the counts of a session-wide re-issue just done.
#[allow(clippy::too_many_arguments)]
async fn form_page_after(
    state: &AppState,
    ctx: &PageCtx,
    status: StatusCode,
    session: Option<SessionRow>,
    form: SessionForm,
    errors: FieldErrors,
    notice: &'static str,
    reissued: Option<(usize, usize)>,
) -> Result<Response> {
    let (sports, venues) = state.store.admin_sports_venues().await?;
    let sold = match &session {
        Some(s) => state.store.admin_session_valid_tickets(s.id).await?,
        None => 0,
    };
    render(
        status,
        &SessionFormPage {
            ctx,
            session,
            form,
            errors,
            sports,
            venues,
            notice,
            sold,
            reissued,
        },
    )
}

/// `GET /admin/sessions/new`.
pub(super) async fn new_form(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response> {
    let form = SessionForm {
        entry_rule: "single".into(),
        max_entries: "1".into(),
        ..SessionForm::default()
    };
    form_page(
        &state,
        &ctx,
        StatusCode::OK,
        None,
        form,
        FieldErrors::default(),
        "",
    )
    .await
}

fn refusal_error(errors: &mut FieldErrors, r: SessionRefusal) -> Result<()> {
    match r {
        SessionRefusal::CodeTaken => errors.add("code", "admin.err.code_taken"),
        SessionRefusal::BelowTaken(_) => errors.add("capacity", "admin.err.capacity_below_sold"),
        SessionRefusal::BadReference => errors.add("sport_id", "admin.err.choose"),
        SessionRefusal::Cancelled => errors.add("title", "admin.err.session_cancelled"),
        SessionRefusal::TimesLocked(_) => {
            for field in ["doors_open_at", "starts_at", "ends_at"] {
                errors.add(field, "admin.err.times_locked");
            }
        }
        SessionRefusal::NotFound => return Err(AppError::NotFound),
    }
    Ok(())
}

/// `POST /admin/sessions`.
pub(super) async fn create(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<SessionForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::default();
    if let Some(input) = parse(&f, &mut errors) {
        match state.store.admin_create_session(admin.actor, input).await? {
            Ok(id) => {
                tracing::info!(session_id = id, "session created");
                return Ok(
                    Redirect::to(&format!("/admin/sessions/{id}?done=created")).into_response()
                );
            }
            Err(r) => refusal_error(&mut errors, r)?,
        }
    }
    form_page(
        &state,
        &ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        f.echoed(),
        errors,
        "",
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: String,
    /// After a re-issue: how many were re-issued and left out (shown to
    /// the admin only; a hand-edited URL only changes their own notice).
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    left: Option<usize>,
}

/// `GET /admin/sessions/{id}`.
pub(super) async fn edit(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
    Query(q): Query<Done>,
) -> Result<Response> {
    let s = state
        .store
        .game_session(id)
        .await?
        .ok_or(AppError::NotFound)?;
    let notice = match q.done.as_str() {
        "created" => "admin.sessions.created",
        "updated" => "admin.sessions.updated",
        "cancelled" => "admin.sessions.cancelled_notice",
        _ => "",
    };
    let reissued = (q.done == "reissued").then(|| (q.n.unwrap_or(0), q.left.unwrap_or(0)));
    let form = SessionForm::from_session(&s);
    form_page_after(
        &state,
        &ctx,
        StatusCode::OK,
        Some(s),
        form,
        FieldErrors::default(),
        notice,
        reissued,
    )
    .await
}

/// `POST /admin/sessions/{id}`.
pub(super) async fn update(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
    Form(f): Form<SessionForm>,
) -> Result<Response> {
    let s = state
        .store
        .game_session(id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    if let Some(mut input) = parse(&f, &mut errors) {
        // A time sent back as the form showed it is unchanged: keep the exact
        // stored value (the form has minutes only), so that editing another
        // field never counts as moving the session.
        for (typed, stored, parsed) in [
            (&f.doors_open_at, s.doors_open_at, &mut input.doors_open_at),
            (&f.starts_at, s.starts_at, &mut input.starts_at),
            (&f.ends_at, s.ends_at, &mut input.ends_at),
        ] {
            if typed.trim() == local_input(stored) {
                *parsed = stored;
            }
        }
        match state
            .store
            .admin_update_session(admin.actor, id, input)
            .await?
        {
            Ok(()) => {
                return Ok(
                    Redirect::to(&format!("/admin/sessions/{id}?done=updated")).into_response()
                );
            }
            Err(r) => refusal_error(&mut errors, r)?,
        }
    }
    form_page(
        &state,
        &ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(s),
        f.echoed(),
        errors,
        "",
    )
    .await
}

/// The session page again, its confirmation box `field` marked with
/// `message`: a session-wide action asked for without the box ticked.
async fn unconfirmed(
    state: &AppState,
    ctx: &PageCtx,
    id: i64,
    field: &'static str,
    message: &'static str,
) -> Result<Response> {
    let s = state
        .store
        .game_session(id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    let form = SessionForm::from_session(&s);
    form_page(
        state,
        ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(s),
        form,
        errors,
        "",
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/sessions/{id}/cancel`: needs the confirmation box ticked.
pub(super) async fn cancel(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
    Form(f): Form<CancelForm>,
) -> Result<Response> {
    if f.confirm != "1" {
        return unconfirmed(&state, &ctx, id, "confirm", "admin.err.confirm_cancel").await;
    }
    if state.store.game_session(id).await?.is_none() {
        return Err(AppError::NotFound);
    }
    match state
        .store
        .admin_cancel_session(admin.actor, id, Box::new(cancellation_mail))
        .await?
    {
        Some(done) => {
            tracing::info!(
                session_id = id,
                revoked = done.revoked,
                buyers = done.buyers.len(),
                "session cancelled"
            );
            Ok(Redirect::to(&format!("/admin/sessions/{id}?done=cancelled")).into_response())
        }
        // Already cancelled (e.g. a double submit): show it as it is.
        None => Ok(Redirect::to(&format!("/admin/sessions/{id}")).into_response()),
    }
}

#[derive(Deserialize)]
pub(super) struct ReissueForm {
    #[serde(default)]
    confirm_reissue: String,
}

/// `POST /admin/sessions/{id}/reissue`: every valid ticket of the session
/// re-issued to its holder (new code, the old one revoked `reissued` and
/// refused by the gates after their next sync, each holder mailed the new
/// one); needs its confirmation box ticked.
pub(super) async fn reissue(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<i64>,
    Form(f): Form<ReissueForm>,
) -> Result<Response> {
    if f.confirm_reissue != "1" {
        return unconfirmed(
            &state,
            &ctx,
            id,
            "confirm_reissue",
            "admin.err.confirm_reissue",
        )
        .await;
    }
    let done = state
        .store
        .admin_reissue_session(
            admin.actor,
            id,
            state.signer.clone(),
            crate::web::shop::transfers::reissued_mail(state.public_url.clone()).into(),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    tracing::info!(
        session_id = id,
        reissued = done.reissued,
        left_out = done.left_out,
        "session re-issued"
    );
    Ok(Redirect::to(&format!(
        "/admin/sessions/{id}?done=reissued&n={}&left={}",
        done.reissued, done.left_out
    ))
    .into_response())
}

/// The mail telling a buyer that session `title` is cancelled, in French
/// then English (their language is not stored). Enqueued with the
/// cancellation, in its transaction: the outbox sends it.
fn cancellation_mail(title: &str, b: &AffectedBuyer) -> Outgoing {
    let text = |lang: Lang| {
        format!(
            "{} {},\n\n{} « {} » {}\n{}: {}\n\n{}",
            lang.t("admin.mail.cancel_hello"),
            b.first_name,
            lang.t("admin.mail.cancel_session"),
            title,
            lang.t("admin.mail.cancel_is_cancelled"),
            lang.t("admin.mail.cancel_tickets"),
            b.tickets,
            lang.t("admin.mail.cancel_refund"),
        )
    };
    Outgoing::rendered(
        MailKind::SessionCancelled,
        b.email.clone(),
        Lang::Fr.code(),
        format!(
            "{} / {}",
            Lang::Fr.t("admin.mail.cancel_subject"),
            Lang::En.t("admin.mail.cancel_subject")
        ),
        format!("{}\n\n— — —\n\n{}\n", text(Lang::Fr), text(Lang::En)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_local_times_parse_strictly() {
        assert_eq!(parse_euros("12"), Some(1200));
        assert_eq!(parse_euros("12,5"), Some(1250));
        assert_eq!(parse_euros("0.05 €"), Some(5));
        for bad in ["", "-1", "1.234", "1e3", "abc", "9999999"] {
            assert_eq!(parse_euros(bad), None, "{bad}");
        }
        // Summer time in Paris: UTC+2.
        assert_eq!(parse_local("2024-08-03T19:30"), Some(1_722_706_200));
        for bad in [
            "2024-08-03",
            "2024-13-03T19:30",
            "2024-08-03T25:00",
            "1969-01-01T00:00",
        ] {
            assert_eq!(parse_local(bad), None, "{bad}");
        }
        assert_eq!(local_input(1_722_706_200), "2024-08-03T19:30");
    }
}
