//! The gate screen's colours, chosen so that every text reads at 4.5:1 or
//! more against what it is drawn on (WCAG AA): the screen is read from a
//! step away, in daylight. The tests compute the ratios.

use eframe::egui::{self, Color32};

/// Admit: a green that white text reads on from a distance.
pub const GREEN: Color32 = Color32::from_rgb(0x1b, 0x7f, 0x3b);
/// Refused.
pub const RED: Color32 = Color32::from_rgb(0xb7, 0x1c, 0x1c);
/// Already used, and the offline band: amber, with dark text.
pub const AMBER: Color32 = Color32::from_rgb(0xf2, 0xa9, 0x00);
/// Text on amber.
pub const INK_ON_AMBER: Color32 = Color32::from_rgb(0x20, 0x18, 0x00);
/// Neutral background of the verdict panel when no verdict is shown.
pub const IDLE: Color32 = Color32::from_rgb(0x26, 0x2a, 0x33);
/// Text on the idle verdict panel.
pub const INK_ON_IDLE: Color32 = Color32::from_gray(225);
/// Panels and windows.
pub const PANEL: Color32 = Color32::from_gray(27);
/// Ordinary text on panels (egui's own grey, 140, is too faint in daylight).
pub const TEXT: Color32 = Color32::from_gray(225);
/// Secondary text on panels ("weak" in egui terms).
pub const MUTED: Color32 = Color32::from_gray(170);
/// Green for text on a panel: [`GREEN`] itself is too dark on near-black.
pub const GREEN_TEXT: Color32 = Color32::from_rgb(0x4c, 0xc7, 0x6a);
/// Red for text on a panel: [`RED`] itself is too dark on near-black.
pub const RED_TEXT: Color32 = Color32::from_rgb(0xff, 0x7a, 0x7a);
/// Background of the camera box before a frame arrives.
pub const CAMERA_BOX: Color32 = Color32::from_gray(20);

/// Every pair of text colour and background the screen draws, with where.
pub const TEXT_ON_BACKGROUND: [(&str, Color32, Color32); 14] = [
    ("text on panel", TEXT, PANEL),
    ("muted text on panel", MUTED, PANEL),
    ("green text on panel", GREEN_TEXT, PANEL),
    ("red text on panel", RED_TEXT, PANEL),
    ("amber text on panel", AMBER, PANEL),
    ("camera placeholder", MUTED, CAMERA_BOX),
    ("admit verdict", Color32::WHITE, GREEN),
    ("refused verdict", Color32::WHITE, RED),
    ("used verdict", INK_ON_AMBER, AMBER),
    ("offline band", INK_ON_AMBER, AMBER),
    ("alarm band", Color32::WHITE, RED),
    ("idle verdict", INK_ON_IDLE, IDLE),
    ("text in a field", TEXT, Color32::from_gray(10)),
    ("button text", TEXT, Color32::from_gray(60)),
];

/// Applies the readable colours to egui's dark theme.
pub fn apply(visuals: &mut egui::Visuals) {
    visuals.panel_fill = PANEL;
    visuals.window_fill = PANEL;
    visuals.widgets.noninteractive.fg_stroke.color = TEXT;
    visuals.widgets.inactive.fg_stroke.color = TEXT;
    visuals.weak_text_color = Some(MUTED);
}

/// Relative luminance of an sRGB colour (WCAG 2.x).
pub fn luminance(c: Color32) -> f64 {
    let lin = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.040_45 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.r()) + 0.7152 * lin(c.g()) + 0.0722 * lin(c.b())
}

/// WCAG contrast ratio of two colours, 1.0 to 21.0.
pub fn contrast_ratio(a: Color32, b: Color32) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_ratio_matches_the_wcag_reference_values() {
        assert!((contrast_ratio(Color32::BLACK, Color32::WHITE) - 21.0).abs() < 0.01);
        assert!((contrast_ratio(Color32::WHITE, Color32::WHITE) - 1.0).abs() < 1e-9);
        // egui's weak text (grey 140 at 60 %) on its panel: what this theme replaces.
        let weak = Color32::from_gray(140).gamma_multiply(0.6);
        assert!(contrast_ratio(weak, PANEL) < 3.0);
    }

    #[test]
    fn every_text_reads_at_four_and_a_half_to_one_on_its_background() {
        for (what, ink, bg) in TEXT_ON_BACKGROUND {
            let r = contrast_ratio(ink, bg);
            assert!(r >= 4.5, "{what}: {r:.2}:1");
        }
    }

    #[test]
    fn the_theme_sets_the_colours_egui_draws_text_with() {
        let mut v = egui::Visuals::dark();
        apply(&mut v);
        assert_eq!(v.text_color(), TEXT);
        assert_eq!(v.weak_text_color(), MUTED);
        assert!(contrast_ratio(v.weak_text_color(), v.panel_fill) >= 4.5);
        assert!(contrast_ratio(v.text_color(), v.window_fill) >= 4.5);
    }
}
