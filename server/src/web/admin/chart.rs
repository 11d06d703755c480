//! Server-rendered SVG charts: the geometry is computed here, the markup
//! is written by the `admin/charts.html` macros (no script, no CDN, and no
//! inline style, which the CSP forbids: presentation attributes only).

/// The smallest box a chart is drawn in on a phone: a 320 px screen less
/// the page's and the figure's padding.
pub const PHONE_MIN_PX: i64 = 260;

/// The chart box from which the wide drawing is shown instead of the phone
/// one (`@container` in admin.css; keep the two equal).
pub const WIDE_MIN_PX: i64 = 600;

/// The smallest text size on screen, in CSS pixels.
pub const MIN_TEXT_PX: i64 = 12;

/// Width of the phone drawings, in SVG units: about a phone's chart box, so
/// they scale little either way.
const PHONE_W: i64 = 340;

/// The font size, in SVG units, that renders at [`MIN_TEXT_PX`] or more
/// when a drawing `width` units wide is scaled into `min_px` pixels.
pub fn font_units(width: i64, min_px: i64) -> i64 {
    let min_px = min_px.max(1);
    (MIN_TEXT_PX * width + min_px - 1) / min_px
}

/// One horizontal bar.
pub struct Bar {
    /// Label left of the bar.
    pub label: String,
    /// Value shown right of the bar.
    pub value: String,
    /// Top of the row.
    pub y: i64,
    /// Bar length.
    pub w: i64,
    /// Vertical centre of the row (for the text baseline).
    pub text_y: i64,
    /// Where the value text starts.
    pub value_x: i64,
}

/// One bar of the phone drawing: label and value on a line, the bar under.
pub struct PhoneBar {
    /// Label (left).
    pub label: String,
    /// Value (right).
    pub value: String,
    /// Baseline of the label line.
    pub text_y: i64,
    /// Top of the bar.
    pub bar_y: i64,
    /// Bar length.
    pub w: i64,
}

/// The phone drawing of a bar chart.
pub struct PhoneBars {
    /// Bars.
    pub bars: Vec<PhoneBar>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Height of a bar.
    pub bar_h: i64,
    /// Font size (SVG units).
    pub font: i64,
}

/// A horizontal bar chart, drawn twice: wide, and stacked for phones.
pub struct BarChart {
    /// Accessible title.
    pub title: String,
    /// Bars.
    pub bars: Vec<Bar>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Where bars start (after the labels).
    pub bar_x: i64,
    /// Height of a bar.
    pub bar_h: i64,
    /// Font size (SVG units) of the wide drawing.
    pub font: i64,
    /// The phone drawing.
    pub phone: PhoneBars,
}

const LABEL_W: i64 = 190;
const BARS_W: i64 = 340;
const VALUE_W: i64 = 230;

impl BarChart {
    /// Bars for `(label, value, value text)`, scaled to the largest value.
    pub fn new(title: String, items: Vec<(String, i64, String)>) -> Self {
        let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
        let width = LABEL_W + BARS_W + VALUE_W;
        let font = font_units(width, WIDE_MIN_PX);
        let row_h = font + 20;
        let phone_font = font_units(PHONE_W, PHONE_MIN_PX);
        let phone_bar_h = phone_font;
        let phone_row_h = phone_font + 6 + phone_bar_h + 14;
        let scaled =
            |v: i64, span: i64| (v.max(0).saturating_mul(span) / max).max(i64::from(v > 0));
        let mut bars = Vec::with_capacity(items.len());
        let mut phone = Vec::with_capacity(items.len());
        for (n, (label, v, value)) in items.into_iter().enumerate() {
            let n = i64::try_from(n).unwrap_or(0);
            let label: String = label.chars().take(20).collect();
            let w = scaled(v, BARS_W);
            bars.push(Bar {
                label: label.clone(),
                value: value.clone(),
                y: n * row_h + 4,
                w,
                // Baseline a third of a letter below the bar's middle: centred.
                text_y: n * row_h + row_h / 2 - 1 + font * 35 / 100,
                value_x: LABEL_W + w + 8,
            });
            let top = n * phone_row_h;
            phone.push(PhoneBar {
                label,
                value,
                text_y: top + phone_font,
                bar_y: top + phone_font + 6,
                w: scaled(v, PHONE_W),
            });
        }
        let count = i64::try_from(bars.len()).unwrap_or(0);
        Self {
            title,
            bars,
            width,
            height: count * row_h + 8,
            bar_x: LABEL_W,
            bar_h: row_h - 10,
            font,
            phone: PhoneBars {
                bars: phone,
                width: PHONE_W,
                height: count * phone_row_h + 4,
                bar_h: phone_bar_h,
                font: phone_font,
            },
        }
    }
}

/// One column of a time series.
pub struct Column {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width.
    pub w: i64,
    /// Height.
    pub h: i64,
    /// Tooltip (`<title>`): when and how much.
    pub tip: String,
}

/// One drawing of a column chart (wide, or for phones).
pub struct ColumnPlot {
    /// Columns, oldest first.
    pub columns: Vec<Column>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Bottom of the plot (x axis).
    pub base_y: i64,
    /// Font size (SVG units).
    pub font: i64,
}

impl ColumnPlot {
    fn new(points: &[(String, i64, String)], width: i64, font: i64) -> Self {
        let max_v = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
        let n = i64::try_from(points.len()).unwrap_or(1).max(1);
        let slot = (width / n).max(1);
        // A few points must not become slabs: columns stay at most 40 wide.
        let w = (slot * 8 / 10).clamp(1, 40);
        // The top line holds the "max" label.
        let top = font + 8;
        let base_y = top + PLOT_H;
        let columns = points
            .iter()
            .enumerate()
            .map(|(i, (label, v, text))| {
                let i = i64::try_from(i).unwrap_or(0);
                let h = (*v).max(0).saturating_mul(PLOT_H) / max_v;
                Column {
                    x: i * slot + (slot - w) / 2,
                    y: base_y - h,
                    w,
                    h,
                    tip: format!("{label} : {text}"),
                }
            })
            .collect();
        Self {
            columns,
            width,
            height: base_y + font + 12,
            base_y,
            font,
        }
    }
}

/// A column chart over time, drawn twice: wide, and for phones.
pub struct ColumnChart {
    /// Accessible title.
    pub title: String,
    /// Columns, oldest first (of the wide drawing).
    pub columns: Vec<Column>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Bottom of the plot (x axis).
    pub base_y: i64,
    /// Font size (SVG units) of the wide drawing.
    pub font: i64,
    /// The phone drawing.
    pub phone: ColumnPlot,
    /// Label of the first column.
    pub first: String,
    /// Label of the last column.
    pub last: String,
    /// Largest value, as text (top of the scale).
    pub max: String,
}

const PLOT_W: i64 = 720;
const PLOT_H: i64 = 180;

impl ColumnChart {
    /// Columns for `(label, value, value text)`, oldest first; at most the
    /// last `keep` points.
    pub fn new(title: String, mut points: Vec<(String, i64, String)>, keep: usize) -> Self {
        if points.len() > keep {
            points.drain(..points.len() - keep);
        }
        let first = points.first().map(|p| p.0.clone()).unwrap_or_default();
        // One column: its label once, not at both ends of the axis.
        let last = match points.len() {
            0 | 1 => String::new(),
            _ => points.last().map(|p| p.0.clone()).unwrap_or_default(),
        };
        let max = points
            .iter()
            .max_by_key(|p| p.1)
            .map(|p| p.2.clone())
            .unwrap_or_default();
        let wide = ColumnPlot::new(&points, PLOT_W, font_units(PLOT_W, WIDE_MIN_PX));
        let phone = ColumnPlot::new(&points, PHONE_W, font_units(PHONE_W, PHONE_MIN_PX));
        Self {
            title,
            columns: wide.columns,
            width: wide.width,
            height: wide.height,
            base_y: wide.base_y,
            font: wide.font,
            phone,
            first,
            last,
            max,
        }
    }
}

impl ColumnChart {
    /// Labels the right end of the axis with where the last column ends
    /// (the end of the last hour, say), so that both ends never read alike.
    pub fn ending_at(mut self, end: String) -> Self {
        if !self.columns.is_empty() {
            self.last = end;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let c = BarChart::new(
            "t".into(),
            vec![
                ("a".into(), 10, "10".into()),
                ("b".into(), 5, "5".into()),
                ("c".into(), 0, "0".into()),
            ],
        );
        assert_eq!(c.bars[0].w, BARS_W);
        assert_eq!(c.bars[1].w, BARS_W / 2);
        assert_eq!(c.bars[2].w, 0);
        let empty = BarChart::new("t".into(), vec![]);
        assert!(empty.bars.is_empty());
    }

    #[test]
    fn columns_keep_the_latest_points() {
        let pts = (0..100)
            .map(|i| (i.to_string(), i, i.to_string()))
            .collect();
        let c = ColumnChart::new("t".into(), pts, 30);
        assert_eq!(c.columns.len(), 30);
        assert_eq!(c.first, "70");
        assert_eq!(c.max, "99");
        let top = c.columns.last().expect("column");
        assert_eq!(top.h, PLOT_H);
        assert_eq!(c.phone.columns.len(), 30);
        assert_eq!(c.phone.columns.last().map(|c| c.h), Some(PLOT_H));
    }

    #[test]
    fn labels_render_at_12_px_or_more_in_the_smallest_box_of_each_drawing() {
        let px = |font: i64, width: i64, box_px: i64| font as f64 * box_px as f64 / width as f64;
        let bars = BarChart::new("t".into(), vec![("a".into(), 1, "1".into())]);
        let cols = ColumnChart::new("t".into(), vec![("a".into(), 1, "1".into())], 10);
        for (what, font, width, smallest) in [
            ("bars, wide", bars.font, bars.width, WIDE_MIN_PX),
            (
                "bars, phone",
                bars.phone.font,
                bars.phone.width,
                PHONE_MIN_PX,
            ),
            ("columns, wide", cols.font, cols.width, WIDE_MIN_PX),
            (
                "columns, phone",
                cols.phone.font,
                cols.phone.width,
                PHONE_MIN_PX,
            ),
        ] {
            let rendered = px(font, width, smallest);
            assert!(
                rendered >= 12.0,
                "{what}: {rendered:.1} px in a {smallest} px box"
            );
        }
        // At 390 px the phone drawing's box is about 332 px.
        assert!(px(bars.phone.font, bars.phone.width, 332) >= 12.0);
        assert_eq!(font_units(720, 600), 15);
        assert_eq!(font_units(340, 260), 16);
    }

    #[test]
    fn both_ends_of_an_axis_never_show_the_same_label() {
        let one = ColumnChart::new("t".into(), vec![("19:00".into(), 3, "3".into())], 72);
        assert_eq!((one.first.as_str(), one.last.as_str()), ("19:00", ""));
        let one = one.ending_at("20:00".into());
        assert_eq!((one.first.as_str(), one.last.as_str()), ("19:00", "20:00"));
        let none = ColumnChart::new("t".into(), vec![], 72).ending_at("x".into());
        assert_eq!(none.last, "");
    }
}
