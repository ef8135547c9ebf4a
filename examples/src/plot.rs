//! SVG plot of macro-F1 over rounds, one line per training run.

use std::path::Path;

use plotters::prelude::*;
use thiserror::Error;

/// One line of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend label.
    pub label: String,
    /// Macro-F1 after each round (round 1 first).
    pub macro_f1: Vec<f64>,
}

/// Why the plot could not be drawn.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PlotError {
    /// Nothing to draw.
    #[error("no rounds to plot")]
    Empty,
    /// The drawing backend failed (e.g. the file could not be written).
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The output file.
        path: String,
        /// The backend's message.
        message: String,
    },
}

const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Writes an SVG of the curves (and a dashed horizontal line at `baseline`, labelled
/// `baseline_label`) to `path`.
pub fn write_macro_f1_svg(
    path: &Path,
    title: &str,
    curves: &[Curve],
    baseline: Option<(&str, f64)>,
) -> Result<(), PlotError> {
    let rounds = curves.iter().map(|c| c.macro_f1.len()).max().unwrap_or(0);
    if rounds == 0 {
        return Err(PlotError::Empty);
    }
    let draw_error = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_error(&e))?;
    let x_max = (rounds as u32).max(2);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(1u32..x_max, 0f64..1.0f64)
        .map_err(|e| draw_error(&e))?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc("macro-F1 (held-out)")
        .draw()
        .map_err(|e| draw_error(&e))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = curve
            .macro_f1
            .iter()
            .enumerate()
            .map(|(r, f)| (r as u32 + 1, *f));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| draw_error(&e))?
            .label(curve.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    if let Some((label, value)) = baseline {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                [(1, value), (x_max, value)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(|e| draw_error(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_error(&e))?;
    root.present().map_err(|e| draw_error(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_the_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f1.svg");
        let curves = [
            Curve {
                label: "centralised".into(),
                macro_f1: vec![0.2, 0.5, 0.7],
            },
            Curve {
                label: "FedAvg plaintext".into(),
                macro_f1: vec![0.1, 0.4, 0.6],
            },
        ];
        write_macro_f1_svg(&path, "test", &curves, Some(("majority", 0.1))).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("FedAvg plaintext") && svg.contains("majority"));
        assert!(matches!(
            write_macro_f1_svg(&path, "t", &[], None),
            Err(PlotError::Empty)
        ));
    }
}
