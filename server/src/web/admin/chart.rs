//! Server-rendered SVG charts: the geometry is computed here, the markup
//! is written by the `admin/charts.html` macros (no script, no CDN, and no
//! inline style, which the CSP forbids: presentation attributes only).

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

/// A horizontal bar chart.
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
}

const ROW_H: i64 = 34;
const LABEL_W: i64 = 150;
const BARS_W: i64 = 380;
const VALUE_W: i64 = 230;

impl BarChart {
    /// Bars for `(label, value, value text)`, scaled to the largest value.
    pub fn new(title: String, items: Vec<(String, i64, String)>) -> Self {
        let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
        let bars = items
            .into_iter()
            .enumerate()
            .map(|(n, (label, v, value))| {
                let n = i64::try_from(n).unwrap_or(0);
                let w = (v.max(0).saturating_mul(BARS_W) / max).max(i64::from(v > 0));
                Bar {
                    label: label.chars().take(20).collect(),
                    value,
                    y: n * ROW_H + 4,
                    w,
                    text_y: n * ROW_H + ROW_H / 2 + 4,
                    value_x: LABEL_W + w + 8,
                }
            })
            .collect::<Vec<_>>();
        let height = i64::try_from(bars.len()).unwrap_or(0) * ROW_H + 8;
        Self {
            title,
            bars,
            width: LABEL_W + BARS_W + VALUE_W,
            height,
            bar_x: LABEL_W,
            bar_h: ROW_H - 10,
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

/// A column chart over time.
pub struct ColumnChart {
    /// Accessible title.
    pub title: String,
    /// Columns, oldest first.
    pub columns: Vec<Column>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Bottom of the plot (x axis).
    pub base_y: i64,
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
        let max_v = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
        let n = i64::try_from(points.len()).unwrap_or(1).max(1);
        let slot = (PLOT_W / n).max(1);
        // A few points must not become slabs: columns stay at most 40 wide.
        let w = (slot * 8 / 10).clamp(1, 40);
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
        let base_y = PLOT_H + 10;
        let columns = points
            .into_iter()
            .enumerate()
            .map(|(i, (label, v, text))| {
                let i = i64::try_from(i).unwrap_or(0);
                let h = v.max(0).saturating_mul(PLOT_H) / max_v;
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
            title,
            columns,
            width: PLOT_W,
            height: PLOT_H + 40,
            base_y,
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
