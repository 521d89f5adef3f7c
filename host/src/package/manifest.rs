//! The bundle manifest of a `host train` run: task, classes, preprocessing and quality gate
//! exactly as trained, the operating threshold `host eval` chose on validation (or a stated
//! default), and a summary of the run.
use std::path::Path;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use shared::bundle::{FORMAT_VERSION, Manifest, OperatingThreshold, sha256};
use shared::task::Task;

use crate::eval::report::positive_classes;
use crate::train::config::TrainConfig;

/// Threshold on the positive-class probability when no evaluation report is given.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// Name of the screening operating point.
pub const OPERATING_POINT: &str = "referable";

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

/// The run's training configuration (`RUN_DIR/config.json`), validated.
pub fn read_config(run: &Path) -> anyhow::Result<TrainConfig> {
    let path = run.join("config.json");
    let cfg: TrainConfig = serde_json::from_value(read_json(&path)?)
        .with_context(|| format!("{}: not a `host train` config", path.display()))?;
    cfg.validate()
        .with_context(|| format!("checking {}", path.display()))?;
    Ok(cfg)
}

/// The manifest for `model` (ONNX bytes) trained as `run`; `report` is a `host eval` folder
/// whose operating threshold is used (it must describe this run's weights).
pub fn build(
    run: &Path,
    report: Option<&Path>,
    model: &[u8],
    created_unix: u64,
) -> anyhow::Result<Manifest> {
    let cfg = read_config(run)?;
    let metrics_path = run.join("metrics.json");
    let metrics = read_json(&metrics_path)?;
    let n = cfg.classes.len();
    let screening =
        matches!(cfg.task, Task::Grade | Task::Referable) || (cfg.task == Task::Classes && n == 2);
    let mut thresholds = Vec::new();
    let mut operating = Value::Null;
    if let Some(dir) = report {
        let path = dir.join("metrics.json");
        let rep = read_json(&path)?;
        let ours = metrics["weights_sha256"].as_str();
        let theirs = rep["model"]["weights_sha256"].as_str();
        ensure!(
            ours.is_some() && ours == theirs,
            "{}: the report evaluates weights {theirs:?}, the run {} has {ours:?}",
            path.display(),
            run.display()
        );
        // A report of an ONNX file (tract's scores) chose its threshold for that file only.
        if let Some(onnx) = rep["model"]["onnx"]["sha256"].as_str() {
            let bundled = shared::bundle::sha256_hex(model);
            ensure!(
                onnx == bundled,
                "{}: the report scored {} (SHA-256 {onnx}), not the model being bundled \
                 ({bundled}); evaluate this file or the run",
                path.display(),
                rep["model"]["onnx"]["file"]
                    .as_str()
                    .unwrap_or("an ONNX file"),
            );
        }
        let op = &rep["operating_point"];
        let threshold = op["threshold"]
            .as_f64()
            .with_context(|| format!("{}: no operating_point.threshold", path.display()))?;
        let positive = positive_classes(cfg.task, n)?;
        thresholds.push(OperatingThreshold {
            name: OPERATING_POINT.into(),
            positive_classes: positive.iter().map(|&c| c as u32).collect(),
            threshold: threshold as f32,
            target_sensitivity: op["target_sensitivity"].as_f64().map(|s| s as f32),
        });
        operating = op.clone();
    } else if screening {
        let positive = positive_classes(cfg.task, n)?;
        thresholds.push(OperatingThreshold {
            name: OPERATING_POINT.into(),
            positive_classes: positive.iter().map(|&c| c as u32).collect(),
            threshold: DEFAULT_THRESHOLD,
            target_sensitivity: None,
        });
    }
    let summary = json!({
        "run": run.display().to_string(),
        "config": serde_json::to_value(&cfg)?,
        "metrics": metrics,
        "operating_point": operating,
    });
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        variant: cfg.variant.to_string(),
        classes: cfg.classes.clone(),
        task: cfg.task,
        preprocess: cfg.preprocess.clone(),
        quality: cfg.quality.clone(),
        operating_thresholds: thresholds,
        train_summary_json: summary.to_string(),
        model_format: "onnx".into(),
        model_sha256: sha256(model),
        created_unix,
        tool_version: concat!("fovea-host ", env!("CARGO_PKG_VERSION")).into(),
    };
    manifest
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: manifest: {e}", run.display()))?;
    Ok(manifest)
}
