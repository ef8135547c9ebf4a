//! The HTML form of a [`BudgetReport`]: one self-contained page (inline CSS, an inline
//! SVG plot, no script, no external font or image), so it can be mailed or archived
//! and opens the same anywhere.
//!
//! The plot shows the cumulative ε after each release (tight CKS20 conversion, solid),
//! the simple bound ρ + 2√(ρ ln 1/δ) (dashed), and the task's ε budget as a horizontal
//! line. The SVG is written here by hand: a few lines, points and labels.

use std::fmt::Write;

use crate::budget_report::BudgetReport;

/// Plot geometry (SVG user units).
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 56.0;

const CSS: &str = "
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px 32px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}
.sub{color:#5a6275;font-size:13px;margin-bottom:14px}
.trust{border-left:4px solid #2f6fdb;background:#eef3fc;padding:8px 12px;margin:10px 0 14px;font-weight:600}
.trust.none{border-color:#c0392b;background:#fcefed}
dl{display:grid;grid-template-columns:max-content auto;gap:3px 16px;font-size:14px;margin:0 0 16px}
dt{color:#5a6275}dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;margin-top:8px}
th,td{padding:4px 10px;border-bottom:1px solid #e1e4ea;text-align:right;white-space:nowrap}
th{background:#f4f5f8;font-weight:600}
td.l,th.l{text-align:left}
svg{display:block;margin:8px 0 18px;max-width:100%;height:auto}
.ok{color:#1e7d3a}
footer{color:#8a91a1;font-size:12px;margin-top:16px}
";

/// Renders `report` as a complete HTML document.
pub fn render(report: &BudgetReport) -> String {
    let mut h = String::new();
    let title = format!("Privacy budget: {}", report.task_name);
    // `write!` into a String cannot fail; the results are ignored below for brevity.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<h1>{}</h1><div class=\"sub\">task {} &middot; ledger of aggregator {} of {} \
         &middot; hash chain of {} entries <span class=\"ok\">verified</span></div>",
        escape(&title),
        escape(&report.task_id),
        report.aggregator_index,
        report.aggregators,
        report.releases.len()
    );
    let none = report.epsilon_budget.is_none();
    let _ = write!(
        h,
        "<div class=\"trust{}\">{}</div>\n<dl>",
        if none { " none" } else { "" },
        escape(&report.trust_assumption)
    );
    let mut item = |k: &str, v: String| {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    item("unit of privacy", report.unit_of_privacy.clone());
    item("accountant", report.accountant.clone());
    item("noise placement", report.noise.clone());
    if let (Some(eps), None) = (report.epsilon_budget, report.rho_budget) {
        item(
            "σ (quantised units)",
            report.sigma.map_or("-".into(), |s| format!("{s:.3}")),
        );
        item(
            "sensitivity Δ per record",
            format!("{}", report.sensitivity),
        );
        item(
            "budget",
            format!("ε = {eps} at δ = {}", fmt_delta(report.delta)),
        );
        item(
            "spent",
            format!(
                "ε = {:.4} in {} releases",
                report.epsilon_spent(),
                report.releases.len()
            ),
        );
    }
    if let (Some(eps), Some(rho)) = (report.epsilon_budget, report.rho_budget) {
        item(
            "σ (quantised units)",
            report.sigma.map_or("-".into(), |s| format!("{s:.3}")),
        );
        item("sensitivity Δ", format!("{}", report.sensitivity));
        item(
            "budget",
            format!(
                "ε = {eps} at δ = {} (ρ = {rho:.6})",
                fmt_delta(report.delta)
            ),
        );
        item(
            "spent",
            format!(
                "ε = {:.4} (ρ = {:.6}) in {} releases",
                report.epsilon_spent(),
                report.rho_spent(),
                report.releases.len()
            ),
        );
        item(
            "accounting",
            "zCDP; ε by the tight CKS20 conversion, simple bound ρ + 2√(ρ ln 1/δ) beside it".into(),
        );
    }
    h.push_str("</dl>\n");
    if none {
        h.push_str(
            "<p>No noise is added: the released sums are exact, so there is no ε to plot.</p>\n",
        );
    } else {
        h.push_str(&plot(report));
    }
    h.push_str(&table(report));
    h.push_str("<footer>Written by <code>cairn budget report</code>.</footer>\n</body></html>\n");
    h
}

fn table(report: &BudgetReport) -> String {
    let mut t = String::from(
        "<table><thead><tr><th>seq</th><th>round</th><th class=\"l\">time (UTC)</th>\
         <th>reports</th><th class=\"l\">noise</th><th>σ</th><th>ρ</th><th>ρ total</th>\
         <th>ε (tight)</th><th>ε (simple)</th><th>ε left</th></tr></thead><tbody>\n",
    );
    for r in &report.releases {
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{:.6}</td><td>{:.6}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            r.seq,
            r.round,
            escape(&r.time),
            r.report_count,
            escape(&r.noise),
            r.sigma.map_or("-".into(), |s| format!("{s:.3}")),
            r.rho,
            r.rho_total,
            r.epsilon,
            r.epsilon_simple,
            r.epsilon_remaining
                .map_or("-".into(), |e| format!("{e:.4}")),
        );
    }
    if report.releases.is_empty() {
        t.push_str("<tr><td colspan=\"11\" class=\"l\">no release yet</td></tr>\n");
    }
    t.push_str("</tbody></table>\n");
    t
}

/// The SVG plot of cumulative ε per release against the budget line.
fn plot(report: &BudgetReport) -> String {
    let budget = report.epsilon_budget.unwrap_or(0.0);
    let n = report.releases.len();
    let y_max_data = report
        .releases
        .iter()
        .map(|r| r.epsilon_simple.max(r.epsilon))
        .fold(budget, f64::max);
    let step = nice_step(y_max_data.max(f64::MIN_POSITIVE) / 5.0);
    let y_max = (y_max_data / step).ceil().max(1.0) * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Points sit inside the axes, a margin away from them.
    let inset = 24.0;
    let x_of = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + inset + (plot_w - 2.0 * inset) * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| TOP + plot_h * (1.0 - v / y_max);

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" font-family=\"Helvetica,Arial,sans-serif\" \
         font-size=\"12\"><title>Cumulative ε per release and the ε budget</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\n"
    );
    // Horizontal grid and y labels.
    let mut v = 0.0;
    while v <= y_max * (1.0 + 1e-9) {
        let y = y_of(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e8ee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5a6275\">{}</text>",
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            fmt_tick(v, step)
        );
        v += step;
    }
    // Axes.
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#1d2330\"/>\
         <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1d2330\"/>",
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        TOP + plot_h
    );
    // X labels: the round of each release (thinned to about 12 labels).
    let every = n.div_ceil(12).max(1);
    for (i, r) in report.releases.iter().enumerate() {
        if i % every == 0 || i + 1 == n {
            let x = x_of(i);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1d2330\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5a6275\">{}</text>",
                TOP + plot_h,
                TOP + plot_h + 5.0,
                TOP + plot_h + 19.0,
                r.round
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">round released</text>\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">cumulative ε at δ = {}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        TOP + plot_h / 2.0,
        fmt_delta(report.delta)
    );
    // Budget line.
    let yb = y_of(budget);
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yb:.1}\" y2=\"{yb:.1}\" stroke=\"#c0392b\" \
         stroke-width=\"2\" stroke-dasharray=\"8 5\"/>",
        LEFT + plot_w
    );
    // The two ε curves.
    let series = |s: &mut String, values: &[f64], colour: &str, dash: &str, marker: bool| {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\" {dash}/>",
            points.join(" ")
        );
        if marker {
            for p in &points {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"4\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"1.5\"/>"
                );
            }
        }
    };
    let simple: Vec<f64> = report.releases.iter().map(|r| r.epsilon_simple).collect();
    let tight: Vec<f64> = report.releases.iter().map(|r| r.epsilon).collect();
    series(
        &mut s,
        &simple,
        "#8a91a1",
        "stroke-dasharray=\"4 4\"",
        false,
    );
    series(&mut s, &tight, "#2f6fdb", "", true);
    // Legend, right of the plot.
    let lx = LEFT + plot_w + 16.0;
    let _ = writeln!(
        s,
        "<g font-size=\"12\">\
         <line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#2f6fdb\" stroke-width=\"2.5\"/>\
         <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#2f6fdb\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">ε (tight, CKS20)</text>\
         <line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#8a91a1\" stroke-width=\"2.5\" stroke-dasharray=\"4 4\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">ε (simple bound)</text>\
         <line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c0392b\" stroke-width=\"2\" stroke-dasharray=\"8 5\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\">budget ε = {}</text></g>",
        lx + 26.0,
        TOP + 10.0,
        TOP + 10.0,
        lx + 13.0,
        TOP + 10.0,
        lx + 32.0,
        TOP + 14.0,
        lx + 26.0,
        TOP + 32.0,
        TOP + 32.0,
        lx + 32.0,
        TOP + 36.0,
        lx + 26.0,
        TOP + 54.0,
        TOP + 54.0,
        lx + 32.0,
        TOP + 58.0,
        budget
    );
    if n == 0 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5a6275\">no release yet</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round step near `raw`: 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A tick label with as many decimals as the step needs.
fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// δ as people write it: `1e-6` rather than `0.000001`.
pub(crate) fn fmt_delta(delta: f64) -> String {
    if delta != 0.0 && delta.abs() < 1e-3 {
        format!("{delta:e}")
    } else {
        format!("{delta}")
    }
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(1.7), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert!((nice_step(0.013) - 0.02).abs() < 1e-15);
        assert_eq!(fmt_tick(0.4, 0.2), "0.4");
        assert_eq!(fmt_tick(10.0, 5.0), "10");
        assert_eq!(fmt_delta(1e-6), "1e-6");
        assert_eq!(fmt_delta(0.01), "0.01");
    }
}
