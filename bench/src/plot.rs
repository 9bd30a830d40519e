//! `--plot out.svg`: a run's latency distributions as one SVG chart, latency (ms) over
//! percentile on the usual log axis (each step right is ten times rarer: 90 %, 99 %,
//! 99.9 %, …), one line per distribution (send→ack, send→push). Hand-written SVG: a few
//! lines of markup, no plotting crate.

use std::fmt::Write as _;

use crate::report::{CURVE_DECADES, Report};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// The chart of `report`'s latency distributions.
pub fn svg(report: &Report) -> String {
    let top_ms = report
        .latencies
        .iter()
        .flat_map(|l| l.curve.iter().map(|(_, ms)| *ms))
        .fold(0.0, f64::max);
    let y_max = nice_ceiling(top_ms);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |q: f64| LEFT + plot_w * (-(1.0 - q).max(1e-9).log10() / CURVE_DECADES).min(1.0);
    let y = |ms: f64| TOP + plot_h * (1.0 - ms / y_max);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{} — latency by percentile</text>"#,
        escape(&format!("{} ({})", report.scenario, report.target))
    );
    // Grid and axes: a line per percentile decade, five latency steps.
    for decade in 0..=CURVE_DECADES as u32 {
        let q = 1.0 - 10f64.powi(-(decade as i32));
        let gx = x(q);
        let _ = writeln!(
            out,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            percentile_label(decade)
        );
    }
    for step in 0..=5 {
        let ms = y_max * f64::from(step) / 5.0;
        let gy = y(ms);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            gy + 4.0,
            format_ms(ms)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">latency (ms)</text>"#,
        TOP + plot_h / 2.0
    );
    // One line per distribution, and its legend entry with count and p99.
    for (i, latency) in report.latencies.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = latency
            .curve
            .iter()
            .map(|(q, ms)| format!("{:.1},{:.1}", x(*q), y(*ms)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let lx = LEFT + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{ly:.1}">{} (n={}, p50 {} ms, p99 {} ms)</text>"#,
            ly - 4.0,
            lx + 20.0,
            ly - 4.0,
            lx + 26.0,
            escape(&latency.name),
            latency.count,
            format_ms(latency.p50_ms),
            format_ms(latency.p99_ms)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing measured).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let scale = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * scale)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * scale)
}

/// `0%`, `90%`, `99%`, `99.9%`, … for decade 0, 1, 2, 3, …
fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

fn format_ms(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::Recorder;

    #[test]
    fn one_line_per_distribution_within_the_chart() {
        let mut report = Report::new("grpc-conversation", "http://127.0.0.1:50051");
        let (mut ack, mut push) = (Recorder::new(), Recorder::new());
        for ms in 1..=1000 {
            ack.record(Duration::from_micros(ms * 10));
            push.record(Duration::from_micros(ms * 25));
        }
        report.latency("send-ack", &ack);
        report.latency("send-push", &push);
        let svg = svg(&report);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("send-ack (n=1000") && svg.contains("send-push (n=1000"));
        for label in ["0%", "90%", "99%", "99.9%", "99.999%"] {
            assert!(svg.contains(&format!(">{label}<")), "axis label {label}");
        }
        // Every point inside the plot area.
        let points = svg
            .split("points=\"")
            .skip(1)
            .flat_map(|rest| rest.split('"').next().unwrap_or("").split(' '))
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse::<f64>().expect("x"), y.parse::<f64>().expect("y"))
            });
        for (px, py) in points {
            assert!((LEFT..=WIDTH - RIGHT).contains(&px), "x {px}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&py), "y {py}");
        }
    }

    #[test]
    fn axis_helpers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(12.0), 20.0);
        assert_eq!(nice_ceiling(50.0), 50.0);
        assert_eq!(percentile_label(2), "99%");
        assert_eq!(percentile_label(4), "99.99%");
        assert_eq!(escape("a<b&c"), "a&lt;b&amp;c");
    }
}
