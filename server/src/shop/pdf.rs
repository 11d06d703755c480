//! Ticket PDFs, written by hand: one A4 page per ticket, text in the
//! standard Helvetica fonts (WinAnsi encoding, so "Élodie" and "épreuve" come
//! out of `pdftotext` as typed) and the QR code drawn as vector squares, so it
//! stays sharp at any zoom and prints at 70 mm.
//!
//! A dependency-free writer keeps the output small (a few KiB a page) and
//! fast (well under a millisecond a ticket once its QR symbol is known);
//! only what a ticket needs is here.

use std::fmt::Write as _;

use crate::i18n::Lang;

/// Side of the printed QR code, in points (70 mm; 1 pt = 0.3528 mm).
const QR_SIDE_PT: f64 = 198.4;
const PAGE_W: f64 = 595.28;
const PAGE_H: f64 = 841.89;

/// Everything printed on one ticket.
#[derive(Debug, Clone)]
pub struct PdfTicket {
    /// Session title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Venue and city.
    pub venue: String,
    /// The venue's postal address ("" when not known).
    pub address: String,
    /// Entrance or gate information ("" when none).
    pub entrance: String,
    /// Date and start time, as shown to the buyer.
    pub when: String,
    /// Doors-open time.
    pub doors: String,
    /// Holder's name.
    pub holder: String,
    /// People admitted.
    pub admits: u8,
    /// Offer name.
    pub offer: String,
    /// Public order number.
    pub order_number: String,
    /// Public ticket id (hex).
    pub ticket_ref: String,
    /// The signed QR string.
    pub qr: String,
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The QR string does not fit a QR code.
    #[error(transparent)]
    Qr(#[from] jo_shared::qr::RenderError),
}

/// Maps text to WinAnsiEncoding bytes (what the standard fonts use); a
/// character outside it becomes '?'.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            'Œ' => 0x8C,
            'œ' => 0x9C,
            'Š' => 0x8A,
            'š' => 0x9A,
            'Ÿ' => 0x9F,
            'Ž' => 0x8E,
            'ž' => 0x9E,
            '\u{202f}' | '\u{a0}' => 0xA0,
            c if (' '..='~').contains(&c) => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            c if ('\u{a1}'..='\u{ff}').contains(&c) => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => b'?',
        })
        .collect()
}

/// A PDF string literal: `(` … `)` with `\`, `(` and `)` escaped.
fn pdf_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'(');
    for b in win_ansi(s) {
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
}

/// Cuts `s` to `max` characters with an ellipsis.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The smallest text on a ticket, in points: readable once printed.
pub const MIN_TEXT_PT: f64 = 9.0;

fn text(out: &mut Vec<u8>, font: &str, size: f64, x: f64, y: f64, s: &str) {
    debug_assert!(size >= MIN_TEXT_PT, "text below {MIN_TEXT_PT} pt");
    out.extend_from_slice(format!("BT /{font} {size} Tf {x:.2} {y:.2} Td ").as_bytes());
    pdf_string(out, s);
    out.extend_from_slice(b" Tj ET\n");
}

/// About how wide `s` is in Helvetica at `size` points (half an em a
/// character on average; bold a little more).
fn approx_width(s: &str, size: f64, bold: bool) -> f64 {
    let em = if bold { 0.56 } else { 0.5 };
    s.chars().count() as f64 * size * em
}

/// Text centred on `cx`.
fn centred(out: &mut Vec<u8>, font: &str, size: f64, cx: f64, y: f64, s: &str) {
    let w = approx_width(s, size, font == "F2");
    text(out, font, size, cx - w / 2.0, y, s);
}

/// Splits `s` into lines of at most `max` characters, at plain spaces (a
/// no-break space, as before French punctuation, holds).
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `y` measured from the top of the page, in PDF's coordinates (from the
/// bottom).
fn top(y: f64) -> f64 {
    PAGE_H - y
}

/// Where the QR code's top edge is, from the top of the page (the tests
/// measure the code there).
pub const QR_TOP_PT: f64 = 410.0;

/// The content stream of one ticket page: the header band; the title; the
/// details on the left and the number of people admitted, large, on the
/// right; the QR code, 70 mm, centred; arrival and security advice; the
/// footer.
fn page_content(t: &PdfTicket, lang: Lang) -> Result<Vec<u8>, PdfError> {
    let mut c = Vec::with_capacity(16 * 1024);
    let blue = "0.114 0.227 0.541";
    // Blue band with the site name.
    c.extend_from_slice(format!("{blue} rg 0 {:.2} {PAGE_W:.2} 90 re f\n", top(90.0)).as_bytes());
    c.extend_from_slice(b"1 g\n");
    text(&mut c, "F2", 24.0, 40.0, top(48.0), lang.t("site.name"));
    text(
        &mut c,
        "F1",
        12.0,
        40.0,
        top(70.0),
        lang.t("tickets.pdf_kind"),
    );
    c.extend_from_slice(b"0 g\n");
    text(&mut c, "F2", 20.0, 40.0, top(128.0), &fit(&t.title, 44));
    text(&mut c, "F1", 13.0, 40.0, top(148.0), &fit(&t.sport, 60));

    // The details, each label above its value.
    let admits = t.admits.to_string();
    let rows: [(&str, &str); 8] = [
        ("tickets.date", &t.when),
        ("tickets.doors", &t.doors),
        ("tickets.venue", &t.venue),
        ("tickets.holder", &t.holder),
        ("tickets.admits", &admits),
        ("tickets.offer", &t.offer),
        ("tickets.order", &t.order_number),
        ("tickets.ref", &t.ticket_ref),
    ];
    let mut y = 180.0;
    for (key, value) in rows {
        c.extend_from_slice(b"0.3 g\n");
        text(&mut c, "F1", 9.5, 40.0, top(y), lang.t(key));
        c.extend_from_slice(b"0 g\n");
        text(&mut c, "F2", 12.0, 40.0, top(y + 13.0), &fit(value, 44));
        y += 28.0;
    }

    // The number of people admitted, large, in a framed box on the right:
    // what the gate counts through, seen from across a queue.
    let (bx, bw, by, bh) = (360.0, 195.0, 168.0, 150.0);
    let cx = bx + bw / 2.0;
    c.extend_from_slice(
        format!(
            "0.93 0.95 0.99 rg {bx:.2} {:.2} {bw:.2} {bh:.2} re f {blue} RG 2 w {bx:.2} {:.2} {bw:.2} {bh:.2} re S\n",
            top(by + bh),
            top(by + bh)
        )
        .as_bytes(),
    );
    c.extend_from_slice(format!("{blue} rg\n").as_bytes());
    centred(&mut c, "F2", 64.0, cx, top(by + 82.0), &admits);
    let people = if t.admits > 1 {
        lang.t("tickets.pdf_people")
    } else {
        lang.t("tickets.pdf_person")
    };
    centred(&mut c, "F2", 16.0, cx, top(by + 108.0), people);
    if t.admits > 1 {
        centred(
            &mut c,
            "F1",
            10.0,
            cx,
            top(by + 130.0),
            lang.t("tickets.pdf_together"),
        );
    }
    c.extend_from_slice(b"0 g\n");

    // Where to go, under the box: the venue's address (street, then postcode
    // and town, split at its first comma) and the session's entrance, each
    // only when known.
    let mut y = by + bh + 16.0;
    if !t.address.is_empty() {
        c.extend_from_slice(b"0.3 g\n");
        text(&mut c, "F1", 9.5, bx, top(y), lang.t("tickets.address"));
        c.extend_from_slice(b"0 g\n");
        let (street, town) = t.address.split_once(", ").unwrap_or((&t.address, ""));
        text(
            &mut c,
            "F1",
            10.5,
            bx,
            top(y + 13.0),
            &fit(street.trim(), 34),
        );
        if !town.is_empty() {
            text(&mut c, "F1", 10.5, bx, top(y + 26.0), &fit(town.trim(), 34));
        }
        y += 42.0;
    }
    if !t.entrance.is_empty() {
        c.extend_from_slice(b"0.3 g\n");
        text(&mut c, "F1", 9.5, bx, top(y), lang.t("tickets.entrance"));
        c.extend_from_slice(b"0 g\n");
        text(&mut c, "F2", 11.0, bx, top(y + 13.0), &fit(&t.entrance, 30));
    }

    // The QR code: one filled rectangle per run of dark modules in a row,
    // in module units (whole numbers) scaled by one transformation matrix.
    let symbol = super::qr::symbol(&t.qr)?;
    let w = symbol.size();
    let module = QR_SIDE_PT / f64::from(w.max(1));
    let x0 = (PAGE_W - QR_SIDE_PT) / 2.0;
    let mut q = String::with_capacity(8 * 1024);
    let _ = writeln!(
        q,
        "q 0 g {module:.5} 0 0 {module:.5} {x0:.3} {:.3} cm",
        top(QR_TOP_PT + QR_SIDE_PT)
    );
    for row in 0..w {
        let mut col = 0;
        while col < w {
            if symbol.is_dark(col, row) {
                let start = col;
                while col < w && symbol.is_dark(col, row) {
                    col += 1;
                }
                // PDF's y axis goes up: row 0 is the top one.
                let _ = writeln!(q, "{start} {} {} 1 re", w - 1 - row, col - start);
            } else {
                col += 1;
            }
        }
    }
    q.push_str("f Q\n");
    c.extend_from_slice(q.as_bytes());
    centred(
        &mut c,
        "F2",
        12.0,
        PAGE_W / 2.0,
        top(QR_TOP_PT + QR_SIDE_PT + 22.0),
        lang.t("tickets.pdf_show"),
    );

    // Arrival and security advice, in a grey box across the page.
    let (ax, aw, ay, ah) = (40.0, PAGE_W - 80.0, 648.0, 150.0);
    c.extend_from_slice(
        format!(
            "0.95 g {ax:.2} {:.2} {aw:.2} {ah:.2} re f 0 g\n",
            top(ay + ah)
        )
        .as_bytes(),
    );
    text(
        &mut c,
        "F2",
        12.0,
        ax + 12.0,
        top(ay + 20.0),
        lang.t("tickets.pdf_advice"),
    );
    let mut advice = vec![format!(
        "{} {}. {}",
        lang.t("tickets.pdf_advice_doors"),
        t.doors,
        lang.t("tickets.pdf_advice_early")
    )];
    advice.push(lang.t("tickets.pdf_advice_security").to_owned());
    if t.admits > 1 {
        advice.push(lang.t("tickets.pdf_advice_group").to_owned());
    }
    advice.push(lang.t("tickets.pdf_advice_screen").to_owned());
    let mut ly = ay + 38.0;
    'advice: for item in &advice {
        for (i, line) in wrap(item, 100).iter().enumerate() {
            if ly > ay + ah - 8.0 {
                break 'advice;
            }
            let (x, s) = if i == 0 {
                (ax + 12.0, format!("• {line}"))
            } else {
                (ax + 21.0, line.clone())
            };
            text(&mut c, "F1", 10.0, x, top(ly), &s);
            ly += 13.5;
        }
    }
    text(
        &mut c,
        "F1",
        9.0,
        40.0,
        top(815.0),
        lang.t("tickets.pdf_footer"),
    );
    Ok(c)
}

/// Renders tickets as a PDF, one page each.
pub fn render(tickets: &[PdfTicket], lang: Lang) -> Result<Vec<u8>, PdfError> {
    let mut out: Vec<u8> = Vec::with_capacity(24 * 1024 * tickets.len().max(1));
    let mut offsets: Vec<usize> = Vec::new();
    out.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    let n = tickets.len();
    // Objects: 1 catalog, 2 pages, 3 and 4 fonts, then (page, content) pairs, then info.
    let page_id = |i: usize| 5 + 2 * i;
    let info_id = 5 + 2 * n;
    let mut obj = |out: &mut Vec<u8>, body: &[u8]| {
        let id = offsets.len() + 1;
        offsets.push(out.len());
        out.extend_from_slice(format!("{id} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, b"<< /Type /Catalog /Pages 2 0 R >>");
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", page_id(i))).collect();
    obj(
        &mut out,
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).as_bytes(),
    );
    obj(
        &mut out,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    );
    obj(
        &mut out,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    );
    for (i, t) in tickets.iter().enumerate() {
        let content = page_content(t, lang)?;
        obj(
            &mut out,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                page_id(i) + 1
            )
            .as_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(&content);
        stream.extend_from_slice(b"\nendstream");
        obj(&mut out, &stream);
    }
    let mut info = b"<< /Producer (JO E-Tickets) /Title ".to_vec();
    pdf_string(&mut info, lang.t("tickets.pdf_kind"));
    info.extend_from_slice(b" >>");
    obj(&mut out, &info);
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for off in &offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info {info_id} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            offsets.len() + 1
        )
        .as_bytes(),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_french_letters() {
        assert_eq!(win_ansi("Élodie"), b"\xC9lodie");
        assert_eq!(win_ansi("épreuve €"), b"\xE9preuve \x80");
        assert_eq!(win_ansi("日"), b"?");
        let mut s = Vec::new();
        pdf_string(&mut s, "a(b)\\");
        assert_eq!(s, b"(a\\(b\\)\\\\)");
    }

    #[test]
    fn a_pdf_has_one_page_per_ticket_and_a_valid_xref() {
        let t = PdfTicket {
            title: "Finale 100 m hommes".into(),
            sport: "Athlétisme".into(),
            venue: "Stade de France, Saint-Denis".into(),
            address: "ZAC du Cornillon Nord, 93216 Saint-Denis".into(),
            entrance: "Porte D, tribune Est".into(),
            when: "dimanche 4 août 2024, 21:50".into(),
            doors: "20:20".into(),
            holder: "Élodie Martin".into(),
            admits: 4,
            offer: "Famille".into(),
            order_number: "ABCD-1234".into(),
            ticket_ref: "00112233445566778899".into(),
            qr: "A".repeat(80),
        };
        let pdf = render(&[t.clone(), t], Lang::Fr).expect("renders");
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 2"));
        let xref: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|s| s.lines().next())
            .and_then(|s| s.parse().ok())
            .expect("startxref");
        assert!(pdf[xref..].starts_with(b"xref"));
    }

    /// Every font size set in the page streams (`/F1 12 Tf`).
    fn font_sizes(pdf: &[u8]) -> Vec<f64> {
        let text = String::from_utf8_lossy(pdf);
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .windows(3)
            .filter(|w| w[0].starts_with("/F") && w[2] == "Tf")
            .filter_map(|w| w[1].parse().ok())
            .collect()
    }

    #[test]
    fn every_text_is_9_pt_or_more_and_the_party_size_is_large() {
        let mut t = PdfTicket {
            title: "Finale 100 m hommes".into(),
            sport: "Athlétisme".into(),
            venue: "Stade de France, Saint-Denis".into(),
            address: "ZAC du Cornillon Nord, 93216 Saint-Denis".into(),
            entrance: "Porte D, tribune Est".into(),
            when: "dimanche 4 août 2024, 21:50".into(),
            doors: "20:20".into(),
            holder: "Élodie Martin".into(),
            admits: 4,
            offer: "Famille".into(),
            order_number: "ABCD-1234".into(),
            ticket_ref: "00112233445566778899".into(),
            qr: "A".repeat(80),
        };
        for lang in [Lang::Fr, Lang::En] {
            let pdf = render(std::slice::from_ref(&t), lang).expect("renders");
            let sizes = font_sizes(&pdf);
            assert!(sizes.len() > 20, "{sizes:?}");
            assert!(sizes.iter().all(|s| *s >= MIN_TEXT_PT), "{sizes:?}");
            // The party size: the largest text of the page.
            let largest = sizes.iter().copied().fold(0.0, f64::max);
            assert_eq!(largest, 64.0);
            assert!(String::from_utf8_lossy(&pdf).contains("(4) Tj"));
        }
        // The advice fits its box: its last words are printed.
        let en = render(std::slice::from_ref(&t), Lang::En).expect("renders");
        let en_text = String::from_utf8_lossy(&en);
        assert!(
            en_text.contains("event.) Tj"),
            "{}",
            en_text
                .lines()
                .filter(|l| l.contains("Tj"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        t.admits = 1;
        let one = render(&[t], Lang::Fr).expect("renders");
        assert!(String::from_utf8_lossy(&one).contains("(personne) Tj"));
    }

    #[test]
    fn advice_wraps_at_spaces() {
        assert_eq!(wrap("un deux trois", 7), ["un deux", "trois"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        assert_eq!(
            wrap("anticonstitutionnellement", 5),
            ["anticonstitutionnellement"]
        );
    }
}
