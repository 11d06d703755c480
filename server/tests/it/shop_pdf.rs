//! The PDF ticket as a gate sees it once printed: rendered by `pdftoppm`,
//! decoded by `zbarimg`, verified by the shared crate against the public key;
//! its text extractable by `pdftotext`, accents included.

use crate::common::shop::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn the_pdf_ticket_scans_and_verifies_with_the_buyers_name_and_admits() {
    let app = spawn_app().await;
    let b = buyer(&app, "elodie").await;
    // A holder with accents, as the PDF must print them.
    db(&app)
        .with(|c| c.execute(
            "UPDATE users SET first_name = 'Élodie', last_name = 'Lefèvre' WHERE username = 'elodie'", params![]))
        .expect("names");
    let sid = sql_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'ESC12'",
        &[],
    );
    // Where to go: the venue's address comes with the programme, the
    // entrance is the session's own (set in the console).
    db(&app)
        .with(|c| {
            c.execute(
                "UPDATE game_sessions SET entrance = 'Porte D, tribune Est' WHERE id = ?1",
                params![sid],
            )
        })
        .expect("entrance");
    let number = buy(&b, sid, "Famille", 1).await;
    let ids = ticket_ids(&b).await;
    assert_eq!(ids.len(), 1);

    let dir = tempfile::tempdir().expect("tempdir");
    for (url, name) in [
        (format!("/tickets/{}/ticket.pdf", ids[0]), "ticket.pdf"),
        (format!("/orders/{number}/tickets.pdf"), "order.pdf"),
    ] {
        let r = b.get(&url).await;
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let bytes = r.bytes().await.expect("body");
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("writes");
        std::fs::copy(&path, artifacts_dir().join(format!("shop-{name}"))).expect("artifact");

        let text = pdf_text(&path);
        for needle in [
            "Élodie Lefèvre",
            "Famille",
            "Ouverture des portes",
            "Nombre de personnes",
            &number,
            // The party size, large, and the advice for the day.
            "personnes",
            "entrent ensemble",
            "Avant de venir",
            "Ouverture des portes à",
            "contrôle de sécurité",
            "se présentent ensemble",
            "Adresse",
            "3 avenue du Général Eisenhower",
            "75008 Paris",
            "Entrée",
            "Porte D, tribune Est",
        ] {
            assert!(
                text.contains(needle),
                "{needle} not in the PDF text:\n{text}"
            );
        }
        // Printed at 150 dpi (a plain office printer), the QR must still read.
        let pages = pdf_to_pngs(&path, 150);
        assert_eq!(pages.len(), 1);
        std::fs::copy(&pages[0], artifacts_dir().join(format!("shop-{name}.png")))
            .expect("artifact");
        let codes = zbar(&pages[0]);
        assert_eq!(codes.len(), 1, "one QR code on the page");
        let p = verify_ticket(&app, &codes[0]);
        assert_eq!(p.holder, jo_shared::HolderName::shorten("Élodie Lefèvre"));
        assert_eq!(p.admits, 4);
        assert_eq!(i64::from(p.session_id), sid);
        assert_eq!(p.ticket_id.to_hex(), ids[0]);
    }
    // The QR is large enough on paper: at least 35 mm (here 70 mm) wide.
    // At 150 dpi, 35 mm = 207 px; measure the dark bounding box of its rows.
    let width = qr_width_px(&dir.path().join("ticket.pdf"), 150);
    assert!(width >= 207, "QR only {width} px wide at 150 dpi");
}

/// Width in pixels of the QR code on the rendered page: the dark bounding box
/// of the rows between the text block and the caption (pdftoppm -gray gives
/// a PGM, simple enough to read here).
fn qr_width_px(pdf: &std::path::Path, dpi: u32) -> u32 {
    let out = std::process::Command::new("pdftoppm")
        .args(["-gray", "-r", &dpi.to_string(), "-singlefile"])
        .arg(pdf)
        .output()
        .expect("pdftoppm");
    let pgm = out.stdout;
    // "P5\n<w> <h>\n255\n" then w*h bytes.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !pgm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let w: usize = fields[1].parse().expect("width");
    let h: usize = fields[2].parse().expect("height");
    let px = &pgm[i + 1..];
    let (mut min_x, mut max_x) = (w, 0);
    // The code's rows: it spans 49 % to 72 % of the page's height.
    for y in (h * 51 / 100)..(h * 70 / 100) {
        for x in 0..w {
            if px[y * w + x] < 100 {
                min_x = min_x.min(x);
                max_x = max_x.max(x);
            }
        }
    }
    u32::try_from(max_x.saturating_sub(min_x)).expect("width")
}
