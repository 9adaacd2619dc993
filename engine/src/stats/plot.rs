//! A latency percentile plot as SVG: latency against percentile on the usual
//! "nines" scale (50%, 90%, 99%, 99.9%, ...), drawn by hand: no plotting crate.

use hdrhistogram::Histogram;
use std::fmt::Write;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 500.0;
const MARGIN: f64 = 70.0;

/// Position on the x axis for quantile `q`: log10(1 / (1 - q)), so each
/// "nine" takes the same width.
fn nines(q: f64) -> f64 {
    (1.0 / (1.0 - q.min(0.999_999))).log10()
}

/// The plot of `h` (values in ns) with `title`.
pub(crate) fn percentile_svg(h: &Histogram<u64>, title: &str) -> String {
    let points = percentile_points(h);
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let scale = Scale { y_max };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="30" text-anchor="middle" font-size="16">{}</text>
<line x1="{MARGIN}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{}" stroke="black"/>
"#,
        WIDTH / 2.0,
        escape(title),
        HEIGHT - MARGIN,
        WIDTH - MARGIN,
        HEIGHT - MARGIN,
        HEIGHT - MARGIN
    );
    grid(&mut svg, &scale);
    let path: Vec<String> = points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", scale.x(x), scale.y(y)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="end">{} samples, max {:.1} µs</text>"#,
        WIDTH - MARGIN,
        MARGIN - 10.0,
        h.len(),
        h.max() as f64 / 1000.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Nines of the percentile shown at the right edge (99.9999%).
const MAX_NINES: f64 = 6.0;

/// (nines, latency in µs) along the curve, 100 points per nine.
fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=600)
        .map(|i| {
            let x = f64::from(i) / 100.0;
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

/// From (nines, µs) to the drawing's coordinates.
struct Scale {
    y_max: f64,
}

impl Scale {
    fn x(&self, nines: f64) -> f64 {
        MARGIN + nines / MAX_NINES * (WIDTH - 2.0 * MARGIN)
    }

    fn y(&self, us: f64) -> f64 {
        HEIGHT - MARGIN - us / self.y_max * (HEIGHT - 2.0 * MARGIN)
    }
}

/// The percentile lines and labels, the latency lines and labels, and the
/// axis titles.
fn grid(svg: &mut String, scale: &Scale) {
    for (label, q) in [
        ("0%", 0.0),
        ("90%", 0.9),
        ("99%", 0.99),
        ("99.9%", 0.999),
        ("99.99%", 0.9999),
        ("99.999%", 0.99999),
        ("99.9999%", 0.999_999),
    ] {
        let x = scale.x(nines(q));
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{MARGIN}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            HEIGHT - MARGIN,
            HEIGHT - MARGIN + 18.0
        );
    }
    for i in 0..=5 {
        let v = scale.y_max * f64::from(i) / 5.0;
        let y = scale.y(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{MARGIN}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            WIDTH - MARGIN,
            MARGIN - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text><text x="18" y="{}" transform="rotate(-90 18 {})" text-anchor="middle">latency (µs)</text>"#,
        WIDTH / 2.0,
        HEIGHT - 20.0,
        HEIGHT / 2.0,
        HEIGHT / 2.0
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_a_rising_curve_in_a_well_formed_svg() {
        let mut h = super::super::histogram::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let svg = percentile_svg(&h, "a <test>");
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;test&gt;"));
        assert!(svg.contains("1000 samples"));
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}
