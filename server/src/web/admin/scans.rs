//! Scans uploaded by the gates: entries per session and gate over time,
//! refused scans by reason, conflicts, late uploads; CSV exports of scans
//! and of sales.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::chart::ColumnChart;
use super::{Admin, fmt_time};
use crate::db::scans::{ConflictRow, GateEntries, ReasonCount};
use crate::error::Result;
use crate::state::AppState;
use crate::units::status::ConflictKind;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;

/// Conflicts listed on the page.
const CONFLICTS_SHOWN: i64 = 100;
/// Hours shown in the entries-over-time chart.
const HOURS_SHOWN: usize = 72;

/// An entries row with the session's name.
pub(super) struct EntryLine {
    e: GateEntries,
    session: String,
}

/// Refused scans of one reason, with the reason in words.
pub(super) struct RefusalLine {
    /// Message key of the reason.
    reason_key: String,
    /// The code as logged (shown beside the words, for searches).
    code: String,
    scans: i64,
}

/// The message key naming a logged reason code; codes this version does not
/// know (a newer scanner) get a generic name, their code still shown.
fn reason_key(code: &str) -> String {
    if jo_shared::verify::REASON_CODES.contains(&code) {
        format!("admin.scan_reason.{code}")
    } else {
        "admin.scan_reason.other".to_owned()
    }
}

/// Splits the non-admitted scans: refusals by reason, and the count of
/// tickets shown again after use, which are not refusals of a bad ticket.
fn refusals(counts: Vec<ReasonCount>) -> (Vec<RefusalLine>, i64) {
    let mut used = 0;
    let mut lines = Vec::new();
    for r in counts {
        if r.verdict == "used" {
            used += r.scans;
        } else {
            lines.push(RefusalLine {
                reason_key: reason_key(&r.reason),
                code: r.reason,
                scans: r.scans,
            });
        }
    }
    (lines, used)
}

/// A conflict row with display strings.
pub(super) struct ConflictLine {
    c: ConflictRow,
    detected: String,
}

/// `/admin/scans`.
#[derive(Template)]
#[template(path = "admin/scans.html")]
struct ScansPage<'a> {
    ctx: &'a PageCtx,
    /// Session choices: (id, title, selected).
    sessions: Vec<(i64, String, bool)>,
    /// Gate choices: (gate, selected).
    gates: Vec<(String, bool)>,
    /// Conflict kind choices: (kind, message key, selected).
    kinds: Vec<(ConflictKind, String, bool)>,
    entries: Vec<EntryLine>,
    over_time: ColumnChart,
    refused: Vec<RefusalLine>,
    used_scans: i64,
    conflict_counts: Vec<(ConflictKind, i64)>,
    conflicts: Vec<ConflictLine>,
    late_scans: i64,
    total_scans: i64,
    export_href: String,
}

/// Filters of the scans view and export.
#[derive(Deserialize)]
pub(super) struct ScanFilter {
    #[serde(default)]
    session: String,
    #[serde(default)]
    gate: String,
    #[serde(default)]
    kind: String,
}

impl ScanFilter {
    fn session(&self) -> Option<i64> {
        self.session.trim().parse().ok().filter(|s: &i64| *s >= 0)
    }

    fn gate(&self) -> Option<String> {
        let g = self.gate.trim();
        (!g.is_empty() && g.len() <= 64).then(|| g.to_owned())
    }

    /// The conflict kind, only if it is one.
    fn kind(&self) -> Option<ConflictKind> {
        ConflictKind::parse(&self.kind)
    }
}

/// `GET /admin/scans?session=&gate=&kind=`.
pub(super) async fn page(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(f): Query<ScanFilter>,
) -> Result<Response> {
    let session = f.session();
    let kind = f.kind();
    let gate = f.gate();
    let v = state
        .store
        .admin_scans(session, gate.clone(), kind, CONFLICTS_SHOWN)
        .await?;
    let sessions = state.store.admin_session_titles().await?;
    let gates = state.store.admin_gates().await?;
    let name_of = |id: i64| {
        sessions
            .iter()
            .find(|(s, _)| *s == id)
            .map_or_else(|| format!("#{id}"), |(_, t)| t.clone())
    };
    let entries = v
        .entries
        .into_iter()
        .map(|e| EntryLine {
            session: name_of(e.session_id),
            e,
        })
        .collect();
    let over_time = ColumnChart::new(
        ctx.t("admin.scans.chart_title").to_owned(),
        v.hours
            .iter()
            .map(|(h, people)| (fmt_time(h * 3600), *people, people.to_string()))
            .collect(),
        HOURS_SHOWN,
    )
    // Columns are hours: the axis ends where the last hour does.
    .ending_at(
        v.hours
            .last()
            .map_or_else(String::new, |(h, _)| fmt_time((h + 1) * 3600)),
    );
    let conflicts = v
        .conflicts
        .into_iter()
        .map(|c| ConflictLine {
            detected: fmt_time(c.detected_at),
            c,
        })
        .collect();
    let (refused, used_scans) = refusals(v.refused);
    let export_href = match session {
        Some(s) => format!("/admin/scans.csv?session={s}"),
        None => "/admin/scans.csv".to_owned(),
    };
    render(
        StatusCode::OK,
        &ScansPage {
            ctx: &ctx,
            sessions: sessions
                .into_iter()
                .map(|(id, t)| (id, t, session == Some(id)))
                .collect(),
            gates: gates
                .into_iter()
                .map(|g| {
                    let selected = gate.as_deref() == Some(g.as_str());
                    (g, selected)
                })
                .collect(),
            kinds: ConflictKind::ALL
                .iter()
                .map(|k| (*k, format!("admin.conflict.{k}"), kind == Some(*k)))
                .collect(),
            entries,
            over_time,
            refused,
            used_scans,
            conflict_counts: v.conflict_counts,
            conflicts,
            late_scans: v.late_scans,
            total_scans: v.total_scans,
            export_href,
        },
    )
}

/// A cell made safe for spreadsheets: one starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return would be read as a formula (CSV
/// injection), so it gets a leading apostrophe.
pub fn csv_cell(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s
    }
}

/// Bytes written before a chunk is handed to the response.
const CHUNK_BYTES: usize = 64 * 1024;

/// A CSV response fed by a store export running on the blocking pool:
/// records become chunks on a bounded channel (a slow client slows the
/// reader instead of filling memory).
fn csv_response<F, Fut>(
    filename: &'static str,
    header_row: &'static [&'static str],
    run: F,
) -> Response
where
    F: FnOnce(Box<dyn FnMut(Option<Vec<String>>) -> bool + Send>) -> Fut + Send + 'static,
    Fut: Future<Output = crate::db::StoreResult<()>> + Send,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let mut w = csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES * 2));
    let header_ok = w.write_record(header_row).is_ok();
    let mut failed = !header_ok;
    let sink = Box::new(move |record: Option<Vec<String>>| -> bool {
        if failed {
            return false;
        }
        let end = record.is_none();
        if let Some(r) = record
            && w.write_record(r.into_iter().map(csv_cell)).is_err()
        {
            failed = true;
            return false;
        }
        if end || w.get_ref().len() >= CHUNK_BYTES {
            let full = std::mem::replace(&mut w, csv::Writer::from_writer(Vec::new()));
            let Ok(chunk) = full.into_inner() else {
                failed = true;
                return false;
            };
            if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                // The client went away: stop reading.
                return false;
            }
        }
        true
    });
    tokio::spawn(async move {
        if let Err(e) = run(sink).await {
            tracing::error!(error = %e, filename, "CSV export failed");
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                if filename == "scans.csv" {
                    "attachment; filename=\"scans.csv\""
                } else {
                    "attachment; filename=\"sales.csv\""
                },
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /admin/scans.csv?session=`: every scan (of one session), oldest first.
pub(super) async fn scans_csv(
    _admin: Admin,
    State(state): State<AppState>,
    Query(f): Query<ScanFilter>,
) -> Result<Response> {
    let session = f.session();
    Ok(csv_response(
        "scans.csv",
        &[
            "id",
            "scan_id",
            "device_id",
            "device_label",
            "gate",
            "session_id",
            "ticket_id",
            "verdict",
            "reason",
            "admits",
            "scanned_at",
            "received_at",
        ],
        move |sink| async move { state.store.admin_export_scans(session, sink).await },
    ))
}

/// `GET /admin/sales.csv`: one row per order line of paid or refunded orders.
pub(super) async fn sales_csv(_admin: Admin, State(state): State<AppState>) -> Result<Response> {
    Ok(csv_response(
        "sales.csv",
        &[
            "order",
            "status",
            "paid_at",
            "refunded_at",
            "email",
            "buyer",
            "session_code",
            "session",
            "offer",
            "seats",
            "quantity",
            "unit_price_eur",
            "total_eur",
        ],
        move |sink| async move { state.store.admin_export_sales(sink).await },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(verdict: &str, reason: &str, scans: i64) -> ReasonCount {
        ReasonCount {
            verdict: verdict.into(),
            reason: reason.into(),
            scans,
        }
    }

    #[test]
    fn used_tickets_are_not_counted_among_refusals_and_every_reason_has_words() {
        let (lines, used) = refusals(vec![
            count("refuse", "not_yet_valid", 4),
            count("used", "already_used", 7),
            count("refuse", "from_the_future", 1),
        ]);
        assert_eq!(used, 7);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].reason_key, "admin.scan_reason.not_yet_valid");
        assert_eq!(lines[1].reason_key, "admin.scan_reason.other");
        assert_eq!(lines[1].code, "from_the_future");
        for code in jo_shared::verify::REASON_CODES {
            let key = reason_key(code);
            for lang in [crate::i18n::Lang::Fr, crate::i18n::Lang::En] {
                let text = lang.t(&key);
                assert!(text != "?" && !text.contains('_'), "{code}: {text}");
            }
        }
    }

    #[test]
    fn formula_cells_are_defused() {
        for bad in ["=1+1", "+33", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(bad.to_owned()).starts_with('\''), "{bad:?}");
        }
        assert_eq!(csv_cell("Porte A".into()), "Porte A");
        assert_eq!(csv_cell(String::new()), "");
    }
}
