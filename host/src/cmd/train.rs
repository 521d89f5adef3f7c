//! `host train`: fine-tune or train an EfficientNet variant on a data set (default: the
//! embedded synthetic fundus set, drawn into the run directory).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use shared::preprocess::{AugmentConfig, PreprocessConfig};
use shared::quality::QualityConfig;
use shared::task::Task;

use crate::model::scaling::Variant;
use crate::synth::{self, SynthConfig};
use crate::train::config::{HeadKind, TrainConfig};
use crate::train::{self, fit::write_json};

/// Arguments of `host train`.
#[derive(clap::Args)]
pub struct Args {
    /// EfficientNet variant.
    #[arg(long, value_enum, default_value = "b0")]
    variant: Variant,
    /// CSV manifest (APTOS, EyePACS, generic) or image folder; default: a synthetic set.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Task: grade (5 DR grades, QWK), referable (grade ≥ 2, AUC), classes (any, accuracy).
    #[arg(long, default_value = "grade")]
    task: Task,
    /// Classifier head.
    #[arg(long, value_enum, default_value = "linear")]
    head: HeadKind,
    /// Pretrained weights: efficientnet_pytorch / EfficientNet-Lite `.pth` (legacy or zip) or
    /// `.safetensors` (see scripts/fetch-weights.sh), or a fovea ONNX export (`host export`).
    #[arg(long)]
    pretrained: Option<PathBuf>,
    /// Classifier dropout (default: the variant's, 0.2 for B0 … 0.5 for B7).
    #[arg(long)]
    dropout: Option<f64>,
    /// Drop-connect rate of the last block (timm --drop-path).
    #[arg(long, default_value_t = 0.2)]
    drop_connect: f64,
    /// Symmetric `k / 2` padding (timm weights) instead of TF "SAME" (EfficientNet-Lite weights).
    #[arg(long)]
    symmetric_padding: bool,
    /// BatchNorm running-statistics momentum (0.01 = the TF reference, for long runs).
    #[arg(long, default_value_t = 0.1)]
    bn_momentum: f64,
    /// Train the head only.
    #[arg(long)]
    freeze_backbone: bool,
    /// Epochs at most.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-2)]
    weight_decay: f64,
    /// Warm-up epochs.
    #[arg(long, default_value_t = 1)]
    warmup_epochs: usize,
    /// Model input side in pixels (default: the variant's resolution).
    #[arg(long)]
    img_size: Option<u32>,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f32,
    /// Inverse-frequency class weights in the loss.
    #[arg(long)]
    class_weights: bool,
    /// Class-balanced sampling.
    #[arg(long)]
    balanced: bool,
    /// EMA decay of the weights (0 = off).
    #[arg(long, default_value_t = 0.998)]
    ema: f64,
    /// Early-stopping patience in epochs.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run directory.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue the run in `--out` from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Images in the synthetic default set.
    #[arg(long, default_value_t = 400)]
    synth_n: usize,
    /// Threads decoding and preparing images.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs `host train`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let out = &args.out;
    let size = args
        .img_size
        .unwrap_or_else(|| args.variant.scaling().resolution);
    let mut cfg = TrainConfig {
        variant: args.variant,
        head: args.head,
        task: args.task,
        classes: Vec::new(),
        data: args.data.clone(),
        pretrained: args.pretrained.clone(),
        tf_padding: !args.symmetric_padding,
        dropout: args.dropout.unwrap_or(args.variant.scaling().dropout),
        drop_connect: args.drop_connect,
        bn_momentum: args.bn_momentum,
        freeze_backbone: args.freeze_backbone,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        warmup_epochs: args.warmup_epochs,
        label_smoothing: args.label_smoothing,
        class_weights: args.class_weights,
        balanced_sampling: args.balanced,
        ema_decay: args.ema,
        patience: args.patience,
        seed: args.seed,
        preprocess: PreprocessConfig {
            size,
            ..Default::default()
        },
        quality: QualityConfig::default(),
        augment: AugmentConfig::default(),
    };
    cfg.validate_options()?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating run directory {}", out.display()))?;
    let data_path = match &args.data {
        Some(p) => p.clone(),
        None => {
            let dir = out.join("data");
            let csv = dir.join("train.csv");
            if !csv.exists() {
                let synth_cfg =
                    SynthConfig::new(args.synth_n, args.seed, (2 * size).clamp(256, 512))?;
                let summary = synth::generate(&synth_cfg, &dir)?;
                eprintln!(
                    "synthetic default: {} images in {}",
                    summary.images,
                    dir.display()
                );
            }
            csv
        }
    };
    let data = train::load_dataset(&data_path, args.task)
        .with_context(|| format!("loading {}", data_path.display()))?;
    cfg.classes = data.classes.clone();
    cfg.data = Some(data_path);
    cfg.validate()?;
    write_json(&out.join("config.json"), &cfg)?;
    let m = train::run(&cfg, &data, out, args.resume, args.threads)?;
    println!(
        "{}: best validation {} {:.4} (epoch {} of {}{}), accuracy {:.3}, macro F1 {:.3}, n = {}; {} ungradable left out",
        args.variant,
        m.headline,
        m.value,
        m.best_epoch + 1,
        m.epochs_run,
        if m.stopped_early {
            ", stopped early"
        } else {
            ""
        },
        m.accuracy,
        m.macro_f1,
        m.n,
        m.ungradable_excluded
    );
    println!(
        "run directory: {} (config.json, model.bpk, metrics.json, history.json)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
