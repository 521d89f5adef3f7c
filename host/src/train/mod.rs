//! `host train`: data → split → prepared images → EfficientNet (burn, flex CPU backend) →
//! fit → final validation metrics, all recorded in the run directory.
//!
//! ```text
//! RUN_DIR/config.json     TrainConfig, written first
//! RUN_DIR/split.json      train/val/test indices into the data set
//! RUN_DIR/model.bpk       best weights (EMA when on), burnpack
//! RUN_DIR/history.json    per-epoch loss, validation metric, images/s, lr
//! RUN_DIR/metrics.json    final validation metrics of the best weights
//! RUN_DIR/checkpoint/     last epoch's model, EMA, optimizer and loop state (--resume)
//! ```
pub mod config;
pub mod data;
pub mod ema;
pub mod evaluate;
pub mod fit;
pub mod sampler;

use std::path::Path;

use anyhow::Context;
use burn::tensor::Device;
use serde::Serialize;
use shared::dataset::{self, CsvOptions, Dataset, SplitFractions};
use shared::metrics::ConfusionMatrix;
use shared::task::{Task, argmax};

use self::config::{HeadKind, TrainConfig};
use self::fit::{LoopState, RunFiles, write_json};
use burn::module::Module;

use crate::model::arch::Architecture;
use crate::model::import;
use crate::model::net::{EfficientNet, EfficientNetConfig, Head};

/// Final validation metrics of the best weights.
#[derive(Debug, Serialize)]
pub struct FinalMetrics {
    /// Headline metric name.
    pub headline: &'static str,
    /// Its value.
    pub value: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Macro F1.
    pub macro_f1: f64,
    /// Confusion matrix rows (true class) × columns (predicted).
    pub confusion: Vec<Vec<usize>>,
    /// Validation images scored.
    pub n: usize,
    /// Images the quality gate refused (train + val).
    pub ungradable_excluded: usize,
    /// Best epoch (0-based) and epochs run.
    pub best_epoch: usize,
    /// Epochs run.
    pub epochs_run: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// SHA-256 over every parameter's values in module order (ids excluded): two runs with
    /// the same seed and data give the same digest.
    pub weights_sha256: String,
}

/// Loads the data set a config names (a CSV manifest or an image folder).
pub fn load_dataset(path: &Path, task: Task) -> anyhow::Result<Dataset> {
    let data = if path.is_dir() {
        Dataset::from_folder(path)?
    } else {
        Dataset::from_csv(
            path,
            &CsvOptions {
                allow_empty_classes: true,
                ..Default::default()
            },
        )?
    };
    Ok(if task == Task::Referable {
        data.to_referable()?
    } else {
        data
    })
}

/// Runs a whole training job; `data` is already resolved (the synthetic default written).
pub fn run(
    cfg: &TrainConfig,
    data: &Dataset,
    out: &Path,
    resume: bool,
    threads: usize,
) -> anyhow::Result<FinalMetrics> {
    let device = Device::flex();
    device.seed(cfg.seed);
    let split = dataset::split(data, SplitFractions::default(), cfg.seed)?;
    write_json(&out.join("split.json"), &split)?;
    eprintln!(
        "data: {} images, {} classes; split train {} / val {} / test {}",
        data.len(),
        data.classes.len(),
        split.train.len(),
        split.val.len(),
        split.test.len()
    );
    let t = std::time::Instant::now();
    let train = data::load(data, &split.train, &cfg.preprocess, &cfg.quality, threads)?;
    let val = data::load(data, &split.val, &cfg.preprocess, &cfg.quality, threads)?;
    let ungradable = train.ungradable.len() + val.ungradable.len();
    eprintln!(
        "prepared {} train + {} val images at {} px in {:.1} s; {ungradable} ungradable left out",
        train.items.len(),
        val.items.len(),
        cfg.preprocess.size,
        t.elapsed().as_secs_f64()
    );
    let model = build_model(cfg, &device)?;
    let files = RunFiles {
        dir: out.to_path_buf(),
    };
    let (best, state) = fit::fit(cfg, model, &train, &val, &files, resume, &device)?;
    let probs = evaluate::predict(&best, &val, &cfg.preprocess, cfg.batch_size, &device);
    let mut metrics = final_metrics(cfg, &val.labels(), &probs, ungradable, &state)?;
    metrics.weights_sha256 = weights_sha256(&best);
    write_json(&out.join("metrics.json"), &metrics)?;
    Ok(metrics)
}

/// The network for a config, with pretrained weights when given.
pub fn build_model(cfg: &TrainConfig, device: &Device) -> anyhow::Result<EfficientNet> {
    let arch = Architecture::new(cfg.variant, cfg.classes.len() as u32);
    let head = match cfg.head {
        HeadKind::Linear => Head::Linear,
        HeadKind::Mlp => Head::Mlp,
    };
    let mut model = EfficientNetConfig::new(&arch, head)
        .with_same_padding(cfg.tf_padding)
        .with_dropout(cfg.dropout)
        .with_drop_connect(cfg.drop_connect)
        .init(device);
    eprintln!(
        "model: {} with {} trainable parameters",
        cfg.variant,
        model.trainable_parameters()
    );
    if let Some(path) = &cfg.pretrained {
        model = import_pretrained(model, path, cfg.variant)?;
    }
    set_bn_momentum(&mut model, cfg.bn_momentum);
    if cfg.freeze_backbone {
        model = model.freeze_backbone();
    }
    Ok(model)
}

/// Copies pretrained weights into `model`, requiring the whole backbone and reporting what
/// was left out: a `.pth` / `.safetensors` state dict by efficientnet_pytorch names, a fovea
/// ONNX export by its names, any other ONNX file (timm, Keras) by its graph's structure.
pub fn import_pretrained(
    model: EfficientNet,
    path: &Path,
    variant: crate::model::scaling::Variant,
) -> anyhow::Result<EfficientNet> {
    let weights = crate::weights::load(path)?;
    let (imported, report) = if weights.format != crate::weights::Format::Onnx {
        import::import_efficientnet_pytorch(model, &weights)
    } else if weights.get("stem.conv.weight").is_some() {
        import::import_fovea_onnx(model, &weights)
    } else {
        let layers = import::onnx_layers::read(path)?;
        import::structural::import_onnx_by_structure(model, &layers)
    };
    anyhow::ensure!(
        report.backbone_complete(),
        "--pretrained {}: does not fit {variant}: missing {:?}; mis-shaped {:?}; padding {:?}",
        path.display(),
        report.missing,
        report.mis_shaped,
        report.padding
    );
    eprintln!(
        "pretrained: {} tensors from {}; {} unexpected {:?}; head {}",
        report.loaded,
        path.display(),
        report.unexpected.len(),
        report.unexpected,
        if report.head_skipped.is_empty() {
            "imported"
        } else {
            "fresh (the file's classifier does not fit: other class count, or none)"
        }
    );
    for note in &report.notes {
        eprintln!("pretrained: note: {note}");
    }
    Ok(imported)
}

/// Sets the running-statistics momentum of every BatchNorm layer.
pub(crate) fn set_bn_momentum(model: &mut EfficientNet, momentum: f64) {
    model.stem.bn.momentum = momentum;
    model.head_conv.bn.momentum = momentum;
    for b in &mut model.blocks {
        if let Some(e) = b.expand.as_mut() {
            e.bn.momentum = momentum;
        }
        b.depthwise.bn.momentum = momentum;
        b.project.bn.momentum = momentum;
    }
}

fn final_metrics(
    cfg: &TrainConfig,
    labels: &[usize],
    probs: &[f32],
    ungradable: usize,
    state: &LoopState,
) -> anyhow::Result<FinalMetrics> {
    let classes = cfg.classes.len();
    let predicted: Vec<usize> = probs.chunks(classes).map(argmax).collect();
    let cm =
        ConfusionMatrix::from_labels(labels, &predicted, classes).context("confusion matrix")?;
    let headline = cfg.task.headline(labels, probs, classes)?;
    let (_, best_epoch) = state.best.unwrap_or((f64::NAN, 0));
    Ok(FinalMetrics {
        headline: headline.name,
        value: headline.value,
        accuracy: cm.accuracy(),
        macro_f1: cm.macro_f1(),
        confusion: cm.rows(),
        n: labels.len(),
        ungradable_excluded: ungradable,
        best_epoch,
        epochs_run: state.epochs_done,
        stopped_early: state.stopped_early,
        weights_sha256: String::new(),
    })
}

/// SHA-256 of every float parameter's little-endian bytes, in module order.
pub fn weights_sha256(model: &EfficientNet) -> String {
    struct Bytes(Vec<u8>);
    impl burn::module::ModuleVisitor for Bytes {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            let values: Vec<f32> = param
                .val()
                .into_data()
                .try_into_vec()
                .expect("f32 parameters");
            self.0.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
    }
    let mut bytes = Bytes(Vec::new());
    model.visit(&mut bytes);
    shared::bundle::sha256_hex(&bytes.0)
}
