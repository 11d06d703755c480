//! The web shop's domain: the payment gateway ([`payment`]), ticket PDFs
//! ([`pdf`]), QR symbols encoded once per ticket ([`qr`]) and the glue that
//! turns stored tickets into what buyers receive. Money and Paris time are
//! in [`crate::units`], below storage.

pub mod payment;
pub mod pdf;
pub mod qr;

use crate::db::tickets::TicketView;
use crate::i18n::Lang;
use crate::units::time;

/// "samedi 3 août 2024, 19:30" in the page's language, Paris time.
pub fn when(utc: i64, lang: Lang) -> String {
    let l = time::paris(utc);
    match lang {
        Lang::Fr => format!("{}, {}", l.date_long(true), l.hm()),
        Lang::En => format!("{}, {}", l.date_long(false), l.hm()),
    }
}

/// "19:30", Paris time.
pub fn hm(utc: i64) -> String {
    time::paris(utc).hm()
}

/// The PDF page of a stored ticket.
pub fn pdf_ticket(t: &TicketView, lang: Lang) -> pdf::PdfTicket {
    pdf::PdfTicket {
        title: t.title.clone(),
        sport: t.sport.clone(),
        venue: format!("{}, {}", t.venue, t.city),
        address: t.address.clone(),
        entrance: t.entrance.clone(),
        when: when(t.starts_at, lang),
        doors: hm(t.doors_open_at),
        holder: t.holder.clone(),
        admits: u8::try_from(t.admits).unwrap_or(u8::MAX),
        offer: t.offer_name.clone(),
        order_number: t.order_number.clone(),
        ticket_ref: t.ticket_hex.clone(),
        qr: t.qr.clone(),
    }
}

/// A PDF of these tickets (one page each).
pub fn tickets_pdf(tickets: &[TicketView], lang: Lang) -> Result<Vec<u8>, pdf::PdfError> {
    let pages: Vec<pdf::PdfTicket> = tickets.iter().map(|t| pdf_ticket(t, lang)).collect();
    pdf::render(&pages, lang)
}
