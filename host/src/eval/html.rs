//! `report/index.html`: one static page (inline CSS, no JavaScript) with the figures as
//! `<img>` files beside it and every table of `metrics.json`.
use std::fmt::Write;

use shared::metrics::Interval;

use super::plots::{CONFUSION_SVG, RELIABILITY_SVG, ROC_SVG};
use super::report::Report;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `0.912 (0.871–0.941)`.
pub fn ci(i: &Interval) -> String {
    format!("{:.3} ({:.3}–{:.3})", i.estimate, i.lo, i.hi)
}

fn opt_ci(i: &Option<Interval>) -> String {
    i.as_ref().map_or("–".into(), ci)
}

/// The page.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let op = &r.operating_point;
    let t = &op.test;
    let im = &r.imageability;
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fovea evaluation: {variant}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 72em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eef; }} td.l, th.l {{ text-align: left; }}
tr.flag td {{ background: #fdd; font-weight: bold; }}
.figs img {{ margin: 0 1em 1em 0; border: 1px solid #ddd; }}
.warn {{ background: #ffe8b0; padding: 0.6em; }}
</style></head><body>
<h1>Evaluation report: EfficientNet-{variant}, task {task}</h1>
"#,
        variant = escape(&r.model.variant),
        task = r.model.task.name(),
    );
    if r.model.synthetic_training_data {
        h.push_str(
            "<p class=\"warn\">Trained and evaluated on <b>synthetic</b> fundus images from \
             the fovea generator. These numbers say nothing about performance on real \
             patients.</p>\n",
        );
    }
    let _ = writeln!(
        h,
        "<p>Model run <code>{}</code>, weights SHA-256 <code>{}</code>. Data: {} of <code>{}</code>. \
         Positive (referable) classes: {}.</p>",
        escape(&r.model.run_dir),
        escape(&r.model.weights_sha256),
        escape(&r.data.selection),
        escape(&r.data.source),
        escape(&r.model.positive_classes.join(", ")),
    );
    if let Some(o) = &r.model.onnx {
        let _ = writeln!(
            h,
            "<p>Scored with tract (the device's runtime) from the ONNX file <code>{}</code>, \
             SHA-256 <code>{}</code>{}; heatmaps are class activation maps from its feature \
             output, as the device draws them.</p>",
            escape(&o.file),
            escape(&o.sha256),
            if o.quantization.is_some() {
                " (int8, <code>host quantize</code>)"
            } else {
                ""
            },
        );
    }
    let _ = write!(
        h,
        "<h2>Operating point</h2>\n<p>Threshold <b>{thr:.4}</b> (refer iff score ≥ threshold) was \
         <b>pre-set on the validation split</b> ({vn} gradable images) for a target sensitivity of \
         {target:.2} (validation sensitivity {vse:.3}, specificity {vsp:.3}), and is \
         <b>measured here</b>:</p>\n<table><tr><th class=l>measure</th><th>value (95% CI)</th></tr>\n\
         <tr><td class=l>sensitivity</td><td>{se}</td></tr>\n\
         <tr><td class=l>specificity</td><td>{sp}</td></tr>\n\
         <tr><td class=l>PPV</td><td>{ppv}</td></tr>\n<tr><td class=l>NPV</td><td>{npv}</td></tr>\n\
         <tr><td class=l>TP / FN / FP / TN</td><td>{tp} / {fn_} / {fp} / {tn}</td></tr>\n\
         <tr><td class=l>AUC (DeLong)</td><td>{auc}</td></tr>\n</table>\n",
        thr = op.threshold,
        vn = op.validation.n,
        target = op.target_sensitivity,
        vse = op.validation.sensitivity,
        vsp = op.validation.specificity,
        se = ci(&t.sensitivity),
        sp = ci(&t.specificity),
        ppv = opt_ci(&t.ppv),
        npv = opt_ci(&t.npv),
        tp = t.counts.tp,
        fn_ = t.counts.fn_,
        fp = t.counts.fp,
        tn = t.counts.tn,
        auc = ci(&r.roc.auc),
    );
    let _ = write!(
        h,
        "<h2>Imageability</h2>\n<p>{g} of {n} images gradable: {share}. The {u} ungradable images \
         were not scored and are excluded from every other number (never counted as \
         negative).</p>\n",
        g = im.gradable,
        n = im.total,
        share = ci(&im.share),
        u = im.ungradable,
    );
    let _ = write!(
        h,
        "<h2>Figures</h2>\n<div class=figs>\n<img src=\"{ROC_SVG}\" alt=\"ROC curve\" width=480 height=440>\n\
         <img src=\"{RELIABILITY_SVG}\" alt=\"reliability diagram\" width=480 height=440>\n\
         <img src=\"{CONFUSION_SVG}\" alt=\"confusion matrix\" width=480 height=440>\n</div>\n\
         <p>Expected calibration error of the referable probability: {ece:.4} ({bins} bins).</p>\n",
        ece = r.calibration.ece,
        bins = r.calibration.bins.len(),
    );
    h.push_str("<h2>Per class (arg-max)</h2>\n<table><tr><th class=l>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th></tr>\n");
    for c in &r.per_class {
        let _ = writeln!(
            h,
            "<tr><td class=l>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            escape(&c.class),
            c.support,
            c.precision,
            c.recall,
            c.f1
        );
    }
    let _ = write!(
        h,
        "</table>\n<p>Accuracy {:.3}, macro F1 {:.3}{}.</p>\n",
        r.accuracy,
        r.macro_f1,
        r.qwk.map_or(String::new(), |q| format!(
            ", quadratic weighted kappa {q:.3}"
        ))
    );
    let _ = write!(
        h,
        "<h2>Subgroups</h2>\n<p>Flagged (red) where a group's sensitivity is more than {:.0} \
         points below the overall {} and the 95% intervals do not overlap.</p>\n",
        r.subgroups.margin * 100.0,
        ci(&t.sensitivity)
    );
    if r.subgroups.tables.is_empty() {
        h.push_str("<p>The data has no subgroup column.</p>\n");
    }
    for tab in &r.subgroups.tables {
        let _ = write!(
            h,
            "<h3>{}</h3>\n<table><tr><th class=l>value</th><th>n</th><th>sensitivity</th>\
             <th>specificity</th><th>AUC</th><th class=l>flag</th></tr>\n",
            escape(&tab.column)
        );
        for row in &tab.rows {
            let _ = writeln!(
                h,
                "<tr{}><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td></tr>",
                if row.flagged { " class=flag" } else { "" },
                escape(&row.value),
                row.n,
                opt_ci(&row.sensitivity),
                opt_ci(&row.specificity),
                opt_ci(&row.auc),
                if row.flagged { "TRAILS" } else { "" }
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Where the model looked (Grad-CAM)</h2>\n");
    for m in &r.gradcam {
        let _ = writeln!(h, "<h3>{}</h3>", m.kind.replace('_', " "));
        match &m.file {
            Some(f) => {
                let _ = write!(
                    h,
                    "<p><img src=\"{}\" alt=\"Grad-CAM {}\"></p>\n<p><small>{}</small></p>\n",
                    escape(f),
                    escape(&m.kind),
                    escape(&m.images.join(", "))
                );
            }
            None => h.push_str("<p>No image of this kind.</p>\n"),
        }
    }
    h.push_str("<p>Numbers: <a href=\"metrics.json\">metrics.json</a>; per image: <a href=\"predictions.csv\">predictions.csv</a>; <a href=\"MODEL_CARD.md\">model card</a>.</p>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_intervals() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
        let i = Interval {
            estimate: 0.9,
            lo: 0.85,
            hi: 0.93456,
        };
        assert_eq!(ci(&i), "0.900 (0.850–0.935)");
    }
}
