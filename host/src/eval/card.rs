//! `report/MODEL_CARD.md` (Mitchell et al. 2019, "Model Cards for Model Reporting"): intended
//! use, data, metrics with intervals, subgroups, known limits, variant and hashes, all taken
//! from the report and the run's config.
use std::fmt::Write;

use super::html::ci;
use super::report::Report;
use crate::train::config::TrainConfig;

/// The card's Markdown.
pub fn render(r: &Report, cfg: &TrainConfig) -> String {
    let mut m = String::new();
    let op = &r.operating_point;
    let t = &op.test;
    let _ = write!(
        m,
        "# Model card: EfficientNet-{variant} ({task})\n\n\
         ## Model\n\n\
         - Variant: EfficientNet-{variant}, {head:?} head, input {size}×{size} px, classes {classes:?}\n\
         - Weights SHA-256 (parameter values, as `host train` records it): `{sha}`\n\
         - Run directory: `{run}`; pretrained from: {pre}\n\
         {onnx}\
         - Preprocessing and quality gate: as in the run's `config.json` (they travel with the bundle)\n\n\
         ## Intended use\n\n\
         Screening for referable diabetic retinopathy (positive classes: {pos}) on colour fundus \
         photographs, at the point of capture, to decide who is referred to an ophthalmologist. \
         Not for diagnosis, grading for treatment, or any image the quality gate refuses: those \
         are reported as ungradable and need a re-take or a human grader. Not validated for \
         other diseases, children, or cameras outside those in the evaluation data.\n\n\
         ## Data\n\n\
         - Training data: `{data}`\n\
         - Evaluated on: {sel} of `{src}` ({n} images, {g} gradable)\n",
        variant = r.model.variant,
        task = r.model.task.name(),
        head = cfg.head,
        size = r.model.img_size,
        classes = r.model.classes,
        sha = r.model.weights_sha256,
        run = r.model.run_dir,
        onnx = r.model.onnx.as_ref().map_or(String::new(), |o| format!(
            "- Scored as the ONNX file `{}` (SHA-256 `{}`{}) with tract, the device's runtime\n",
            o.file,
            o.sha256,
            if o.quantization.is_some() {
                ", int8 from `host quantize`"
            } else {
                ""
            }
        )),
        pre = cfg
            .pretrained
            .as_ref()
            .map_or("none (random initialisation)".into(), |p| format!(
                "`{}`",
                p.display()
            )),
        pos = r.model.positive_classes.join(", "),
        data = cfg
            .data
            .as_ref()
            .map_or("synthetic default".into(), |p| p.display().to_string()),
        sel = r.data.selection,
        src = r.data.source,
        n = r.imageability.total,
        g = r.imageability.gradable,
    );
    if r.model.synthetic_training_data {
        m.push_str(
            "\n> **Synthetic-data caveat.** This model was trained (and here evaluated) on \
             images drawn by fovea's synthetic fundus generator. Its lesions, cameras and \
             demographics are simulations; nothing below predicts performance on real \
             patients. Evaluate on a real, representative set before any clinical use.\n",
        );
    }
    let _ = write!(
        m,
        "\n## Metrics (95 % intervals)\n\n\
         Operating threshold **{thr:.4}** (refer iff score ≥ threshold), pre-set on the validation \
         split for target sensitivity {target:.2}, measured on the evaluated images:\n\n\
         | measure | value |\n|---|---|\n\
         | sensitivity (Wilson) | {se} |\n| specificity (Wilson) | {sp} |\n\
         | AUC (DeLong) | {auc} |\n| imageability (Wilson) | {im} |\n\
         | accuracy / macro F1 (arg-max) | {acc:.3} / {f1:.3} |\n\
         | expected calibration error | {ece:.4} |\n",
        thr = op.threshold,
        target = op.target_sensitivity,
        se = ci(&t.sensitivity),
        sp = ci(&t.specificity),
        auc = ci(&r.roc.auc),
        im = ci(&r.imageability.share),
        acc = r.accuracy,
        f1 = r.macro_f1,
        ece = r.calibration.ece,
    );
    if let Some(q) = r.qwk {
        let _ = writeln!(m, "| quadratic weighted kappa | {q:.3} |");
    }
    let _ = write!(
        m,
        "\n## Subgroups\n\nSensitivity per group; **flagged** when more than {:.0} points below \
         overall with non-overlapping intervals.\n\n| column | value | n | sensitivity | specificity | AUC | flag |\n|---|---|---|---|---|---|---|\n",
        r.subgroups.margin * 100.0
    );
    let opt = |i: &Option<shared::metrics::Interval>| i.as_ref().map_or("–".into(), ci);
    let mut flagged = Vec::new();
    for tab in &r.subgroups.tables {
        for row in &tab.rows {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} |",
                tab.column,
                row.value,
                row.n,
                opt(&row.sensitivity),
                opt(&row.specificity),
                opt(&row.auc),
                if row.flagged { "**TRAILS**" } else { "" }
            );
            if row.flagged {
                flagged.push(format!("{} = {}", tab.column, row.value));
            }
        }
    }
    m.push_str("\n## Known limits\n\n");
    if !flagged.is_empty() {
        let _ = writeln!(
            m,
            "- Sensitivity trails the overall in: {}. Do not deploy there without a fix.",
            flagged.join("; ")
        );
    }
    let _ = write!(
        m,
        "- {u} of {n} evaluated images were ungradable and are not scored; the gate decides, not \
         the model.\n\
         - Intervals are per-image; both eyes of a patient are not independent, so they are \
         somewhat too narrow.\n\
         - The threshold was chosen on {vn} validation images; with few positives its \
         sensitivity on new data varies (see the interval above).\n\
         - Grad-CAM shows where the gradient of the referable probability is large, not a \
         segmentation of lesions.\n",
        u = r.imageability.ungradable,
        n = r.imageability.total,
        vn = op.validation.n,
    );
    m
}
