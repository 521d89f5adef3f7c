//! The report's figures as SVG, drawn with plotters (no JavaScript, no system fonts: the
//! browser draws the text): ROC curve with the operating point, reliability diagram, and the
//! confusion matrix as a heat map.
use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::report::Report;

/// File names of the figures inside the report folder.
pub const ROC_SVG: &str = "roc.svg";
/// Reliability diagram.
pub const RELIABILITY_SVG: &str = "reliability.svg";
/// Confusion matrix.
pub const CONFUSION_SVG: &str = "confusion.svg";

const SIDE: (u32, u32) = (480, 440);

fn err<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow!("drawing {what}: {e:?}")
}

/// Draws every figure into `dir`.
pub fn draw_all(dir: &Path, r: &Report) -> anyhow::Result<()> {
    roc(&dir.join(ROC_SVG), r)?;
    reliability(&dir.join(RELIABILITY_SVG), r)?;
    confusion(&dir.join(CONFUSION_SVG), r)
}

/// ROC curve, chance diagonal and the operating point measured on the evaluated images.
pub fn roc(path: &Path, r: &Report) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIDE).into_drawing_area();
    root.fill(&WHITE).map_err(err("ROC"))?;
    let auc = r.roc.auc;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "ROC, AUC {:.3} (95% CI {:.3}-{:.3})",
                auc.estimate, auc.lo, auc.hi
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(err("ROC"))?;
    chart
        .configure_mesh()
        .x_desc("1 - specificity")
        .y_desc("sensitivity")
        .draw()
        .map_err(err("ROC"))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], &BLACK.mix(0.3)))
        .map_err(err("ROC"))?;
    let c = &r.roc.curve;
    chart
        .draw_series(LineSeries::new(
            c.fpr.iter().copied().zip(c.tpr.iter().copied()),
            BLUE.stroke_width(2),
        ))
        .map_err(err("ROC"))?;
    let t = &r.operating_point.test;
    chart
        .draw_series(std::iter::once(Circle::new(
            (1.0 - t.specificity.estimate, t.sensitivity.estimate),
            6,
            RED.filled(),
        )))
        .map_err(err("ROC"))?;
    root.present().map_err(err("ROC"))
}

/// Mean confidence against observed positive share per bin, with the diagonal.
pub fn reliability(path: &Path, r: &Report) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIDE).into_drawing_area();
    root.fill(&WHITE).map_err(err("reliability diagram"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Reliability, ECE {:.3}", r.calibration.ece),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(err("reliability diagram"))?;
    chart
        .configure_mesh()
        .x_desc("predicted probability of referable disease")
        .y_desc("observed share referable")
        .draw()
        .map_err(err("reliability diagram"))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], &BLACK.mix(0.3)))
        .map_err(err("reliability diagram"))?;
    chart
        .draw_series(r.calibration.bins.iter().filter(|b| b.count > 0).map(|b| {
            Rectangle::new(
                [(b.lo, 0.0), (b.hi, b.accuracy.unwrap_or(0.0))],
                BLUE.mix(0.35).filled(),
            )
        }))
        .map_err(err("reliability diagram"))?;
    chart
        .draw_series(
            r.calibration
                .bins
                .iter()
                .filter_map(|b| Some((b.mean_confidence?, b.accuracy?)))
                .map(|p| Circle::new(p, 4, RED.filled())),
        )
        .map_err(err("reliability diagram"))?;
    root.present().map_err(err("reliability diagram"))
}

/// The confusion matrix as shaded cells with their counts.
pub fn confusion(path: &Path, r: &Report) -> anyhow::Result<()> {
    let k = r.confusion.len();
    let root = SVGBackend::new(path, SIDE).into_drawing_area();
    root.fill(&WHITE).map_err(err("confusion matrix"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Confusion matrix (rows: truth)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0..k, 0..k)
        .map_err(err("confusion matrix"))?;
    let names = r.model.classes.clone();
    let name = move |i: &usize| names.get(*i).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_label_formatter(&name)
        .y_label_formatter(&|i| {
            (k - 1)
                .checked_sub(*i)
                .and_then(|j| r.model.classes.get(j).cloned())
                .unwrap_or_default()
        })
        .draw()
        .map_err(err("confusion matrix"))?;
    let max = r
        .confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (t, row) in r.confusion.iter().enumerate() {
        for (p, &n) in row.iter().enumerate() {
            let y = k - 1 - t;
            let shade = n as f64 / max;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(p, y), (p + 1, y + 1)],
                    BLUE.mix(0.1 + 0.8 * shade).filled(),
                )))
                .map_err(err("confusion matrix"))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    n.to_string(),
                    (p, y + 1),
                    ("sans-serif", 16).into_font().color(&BLACK),
                )))
                .map_err(err("confusion matrix"))?;
        }
    }
    root.present().map_err(err("confusion matrix"))
}
