//! `host eval`: a trained run's model over a data set → the clinical evaluation report.
//!
//! ```text
//! REPORT/metrics.json      every number (report::Report); operating_point.threshold is the
//!                          threshold a bundle stores, chosen on the run's validation split
//! REPORT/predictions.csv   one row per image (predictions.rs), ungradable ones included
//! REPORT/index.html        static page: tables + roc.svg, reliability.svg, confusion.svg
//! REPORT/gradcam_{true_positive,false_negative,false_positive}.png   Grad-CAM montages
//! REPORT/MODEL_CARD.md     model card
//! ```
pub mod card;
pub mod gradcam;
pub mod html;
pub mod plots;
pub mod predictions;
pub mod report;
pub mod scorer;
pub mod subgroup;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use burn::module::Module;
use burn::tensor::Device;
use rand_chacha::ChaCha8Rng;
use shared::dataset::{Dataset, Split as SplitIndices};

use self::predictions::Prediction;
use self::report::{DataInfo, ModelInfo, Montage, OnnxInfo, Report, Settings};
use self::scorer::{OnnxModel, Scorer};
use crate::train::config::TrainConfig;
use crate::train::data::{self, Split};
use crate::train::{self as training};

/// The synthetic generator's CSV header: a manifest with exactly this header is synthetic.
const SYNTH_HEADER: &str = "id_code,diagnosis,sex,age_band,camera,site,patient_id,gradable";

/// A validated `host eval` job.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    /// The run directory of `host train`.
    pub run_dir: PathBuf,
    /// Score this ONNX export of the run with tract instead of the run's burn model.
    pub onnx: Option<PathBuf>,
    /// Data to evaluate; `None` = the run's own test split.
    pub data: Option<PathBuf>,
    /// Report folder.
    pub out: PathBuf,
    /// Target sensitivity of the operating point.
    pub target_sensitivity: f64,
    /// Subgroup margin.
    pub margin: f64,
    /// Images per Grad-CAM montage (0 = none).
    pub gradcam_per_kind: usize,
    /// Threads decoding images.
    pub threads: usize,
}

/// A run directory read back: config, split and the model to score.
pub struct Run {
    /// `config.json`.
    pub config: TrainConfig,
    /// `split.json`.
    pub split: SplitIndices,
    /// `model.bpk` in evaluation mode, or an ONNX export of it.
    pub scorer: Scorer,
    /// Digest of the run's weights.
    pub weights_sha256: String,
}

/// A JSON file of a run or report, parsed; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Loads a run directory written by `host train`, checking the weights against the digest
/// its `metrics.json` recorded; with `onnx`, scores that export of the run (checked against the
/// run's classes and preprocessing) instead of `model.bpk`.
pub fn load_run(dir: &Path, onnx: Option<&Path>, device: &Device) -> anyhow::Result<Run> {
    ensure!(
        dir.is_dir(),
        "{}: not a run directory of `host train`",
        dir.display()
    );
    let mut config: TrainConfig = read_json(&dir.join("config.json"))?;
    let split: SplitIndices = read_json(&dir.join("split.json"))?;
    // The architecture only: the weights come from model.bpk, not the pretrained file.
    config.pretrained = None;
    let metrics: serde_json::Value = read_json(&dir.join("metrics.json"))?;
    let recorded = metrics["weights_sha256"].as_str().map(str::to_owned);
    let (scorer, weights_sha256) = match onnx {
        Some(path) => {
            let m = OnnxModel::load(path, &config)?;
            let digest = recorded.with_context(|| {
                format!("{}: no weights_sha256", dir.join("metrics.json").display())
            })?;
            (Scorer::Onnx(m), digest)
        }
        None => {
            let path = dir.join("model.bpk");
            ensure!(
                path.is_file(),
                "{}: missing (training not finished?)",
                path.display()
            );
            let model = training::build_model(&config, device)?
                .try_load_file(&path)
                .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", path.display()))?
                .valid();
            let digest = training::weights_sha256(&model);
            if let Some(recorded) = recorded {
                ensure!(
                    recorded == digest,
                    "{}: weights digest {digest} differs from {recorded} in metrics.json",
                    path.display()
                );
            }
            (Scorer::Host(Box::new(model)), digest)
        }
    };
    Ok(Run {
        config,
        split,
        scorer,
        weights_sha256,
    })
}

/// Gated, prepared images of `indices` with their predictions, in index order, and where
/// each prediction's prepared image sits in the returned split.
pub fn score(
    run: &Run,
    data: &Dataset,
    indices: &[usize],
    threads: usize,
    device: &Device,
) -> anyhow::Result<(Vec<Prediction>, Split, Vec<Option<usize>>)> {
    let cfg = &run.config;
    let split = data::load(data, indices, &cfg.preprocess, &cfg.quality, threads)?;
    let probs = run.scorer.probabilities(&split, cfg, device)?;
    let k = cfg.classes.len();
    let mut refused: HashMap<&Path, Vec<&str>> = HashMap::new();
    for (p, why) in &split.ungradable {
        refused.entry(p.as_path()).or_default().push(why);
    }
    let (mut preds, mut item_of, mut next) = (Vec::new(), Vec::new(), 0);
    for &i in indices {
        let s = &data.samples[i];
        let why = refused.get_mut(s.path.as_path()).and_then(|v| v.pop());
        let (probs, quality, item) = match why {
            Some(why) => (None, why.to_string(), None),
            None => {
                next += 1;
                (
                    Some(probs[(next - 1) * k..next * k].to_vec()),
                    String::new(),
                    Some(next - 1),
                )
            }
        };
        preds.push(Prediction {
            path: s.path.clone(),
            label: s.label,
            probs,
            quality,
            attributes: s.attributes.clone(),
        });
        item_of.push(item);
    }
    ensure!(next == split.items.len(), "prediction order lost");
    Ok((preds, split, item_of))
}

/// Whether a manifest was written by `host synth` (its exact header).
fn is_synthetic(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim() == SYNTH_HEADER))
        .unwrap_or(false)
}

/// Runs the whole evaluation and writes the report folder.
pub fn run(cfg: &EvalConfig) -> anyhow::Result<Report> {
    let device = Device::flex();
    let run = load_run(&cfg.run_dir, cfg.onnx.as_deref(), &device)?;
    let tc = &run.config;
    let train_path = tc.data.clone().context("config.json names no data set")?;
    let train_data = training::load_dataset(&train_path, tc.task)
        .with_context(|| format!("loading the run's data set {}", train_path.display()))?;
    ensure!(
        train_data.classes == tc.classes,
        "{}: classes {:?} differ from the run's {:?}",
        train_path.display(),
        train_data.classes,
        tc.classes
    );
    let positive = report::positive_classes(tc.task, tc.classes.len())?;
    let (val, _, _) = score(&run, &train_data, &run.split.val, cfg.threads, &device)?;
    let (test_data, indices, selection) = match &cfg.data {
        None => (
            train_data.clone(),
            run.split.test.clone(),
            "the test split of the run".to_string(),
        ),
        Some(p) => {
            let d = training::load_dataset(p, tc.task)
                .with_context(|| format!("loading --data {}", p.display()))?;
            ensure!(
                d.classes == tc.classes,
                "--data {}: classes {:?} differ from the model's {:?}",
                p.display(),
                d.classes,
                tc.classes
            );
            let all = (0..d.len()).collect();
            (d, all, "all images".to_string())
        }
    };
    let source = test_data.source.clone();
    let (test, split, item_of) = score(&run, &test_data, &indices, cfg.threads, &device)?;
    eprintln!(
        "scored {} validation and {} evaluated images ({} ungradable)",
        val.len(),
        test.len(),
        split.ungradable.len()
    );
    let settings = Settings {
        model: ModelInfo {
            run_dir: cfg.run_dir.display().to_string(),
            variant: tc.variant.to_string(),
            task: tc.task,
            classes: tc.classes.clone(),
            positive_classes: positive.iter().map(|&c| tc.classes[c].clone()).collect(),
            img_size: tc.preprocess.size,
            weights_sha256: run.weights_sha256.clone(),
            synthetic_training_data: is_synthetic(&train_path),
            onnx: match &run.scorer {
                Scorer::Onnx(m) => Some(OnnxInfo {
                    file: m.path.display().to_string(),
                    sha256: m.sha256.clone(),
                    quantization: m.quantization.clone(),
                }),
                Scorer::Host(_) => None,
            },
        },
        data: DataInfo {
            source: source.display().to_string(),
            selection,
        },
        positive: &positive,
        target_sensitivity: cfg.target_sensitivity,
        margin: cfg.margin,
    };
    let mut report = report::compute(settings, &val, &test)?;
    std::fs::create_dir_all(&cfg.out)
        .with_context(|| format!("creating report folder {}", cfg.out.display()))?;
    report.gradcam = montages(
        cfg, &run, &report, &test, &split, &item_of, &positive, &device,
    )?;
    write(cfg, &run, &report, &test, &positive)?;
    Ok(report)
}

/// Grad-CAM montages of the most confident true positives, the lowest-scored false negatives
/// and the highest-scored false positives.
#[allow(clippy::too_many_arguments)]
fn montages(
    cfg: &EvalConfig,
    run: &Run,
    report: &Report,
    preds: &[Prediction],
    split: &Split,
    item_of: &[Option<usize>],
    positive: &[usize],
    device: &Device,
) -> anyhow::Result<Vec<Montage>> {
    let thr = report.operating_point.threshold;
    let pre = &run.config.preprocess;
    let s = pre.size as usize;
    let mut out = Vec::new();
    for (kind, truth, called, highest_first) in [
        ("true_positive", true, true, true),
        ("false_negative", true, false, false),
        ("false_positive", false, true, true),
    ] {
        let mut chosen: Vec<(usize, f64)> = preds
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let score = p.score(positive)?;
                (positive.contains(&p.label) == truth && (score >= thr) == called)
                    .then_some((i, score))
            })
            .collect();
        chosen.sort_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if highest_first { o.reverse() } else { o }
        });
        chosen.truncate(cfg.gradcam_per_kind);
        let mut tiles = Vec::new();
        for &(i, _) in &chosen {
            let item = item_of[i].expect("scored images have an item");
            let (x, _) = data::batch::<ChaCha8Rng>(split, &[item], pre, None);
            if let Some(heat) = run.scorer.heatmap(x, s, positive, device)? {
                tiles.push(gradcam::overlay(&split.items[item].image, &heat));
            }
        }
        let file = if tiles.is_empty() {
            None
        } else {
            let name = format!("gradcam_{kind}.png");
            gradcam::write_montage(&cfg.out.join(&name), &tiles)?;
            Some(name)
        };
        out.push(Montage {
            kind: kind.into(),
            file,
            images: chosen
                .iter()
                .map(|&(i, _)| preds[i].path.display().to_string())
                .collect(),
        });
    }
    Ok(out)
}

fn write(
    cfg: &EvalConfig,
    run: &Run,
    report: &Report,
    preds: &[Prediction],
    positive: &[usize],
) -> anyhow::Result<()> {
    let out = &cfg.out;
    let path = out.join("metrics.json");
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    predictions::write_csv(
        &out.join("predictions.csv"),
        preds,
        &report.model.classes,
        positive,
        &predictions::attribute_columns(preds),
    )?;
    plots::draw_all(out, report)?;
    let path = out.join("index.html");
    std::fs::write(&path, html::render(report))
        .with_context(|| format!("writing {}", path.display()))?;
    let path = out.join("MODEL_CARD.md");
    std::fs::write(&path, card::render(report, &run.config))
        .with_context(|| format!("writing {}", path.display()))
}
