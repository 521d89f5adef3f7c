//! `host export`: write a trained run (or a freshly built / pretrained network) as ONNX, with
//! optional reference inputs and host logits for the checkers.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use burn::module::{Module, RunningState};
use burn::tensor::{Device, Distribution, Tensor};
use shared::preprocess::PreprocessConfig;
use shared::task::Task;

use crate::export::{self, Metadata, reference};
use crate::model::arch::Architecture;
use crate::model::net::conv_bn::ConvBn;
use crate::model::net::{EfficientNet, EfficientNetConfig, Head};
use crate::model::scaling::Variant;
use crate::train::{self, config::HeadKind, config::TrainConfig};

/// Arguments of `host export`.
#[derive(clap::Args)]
pub struct Args {
    /// Run directory written by `host train` (config.json, model.bpk).
    #[arg(long, conflicts_with_all = ["variant", "pretrained", "randomize_bn"])]
    run: Option<PathBuf>,
    /// Without --run: build this variant (random initialisation from --seed).
    #[arg(long, value_enum, required_unless_present = "run")]
    variant: Option<Variant>,
    /// Without --run: number of classes.
    #[arg(long, default_value_t = 5)]
    num_classes: usize,
    /// Without --run: input side in pixels (default: the variant's resolution).
    #[arg(long)]
    img_size: Option<u32>,
    /// Without --run: classifier head.
    #[arg(long, value_enum, default_value = "linear")]
    head: HeadKind,
    /// Without --run: task written into the metadata.
    #[arg(long, default_value = "classes")]
    task: Task,
    /// Without --run: symmetric `k / 2` padding instead of TF "SAME".
    #[arg(long)]
    symmetric_padding: bool,
    /// Without --run: pretrained weights (`.pth`, `.safetensors`) instead of random ones.
    #[arg(long)]
    pretrained: Option<PathBuf>,
    /// Without --run: draw BatchNorm γ, β and running statistics at random too (a fresh
    /// network's are the identity, which would leave the BN folding untested).
    #[arg(long)]
    randomize_bn: bool,
    /// Seed of the random initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file (default: RUN_DIR/model.onnx).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write DIR/reference.json: the --images preprocessed and the host model's logits.
    #[arg(long, requires = "images")]
    reference: Option<PathBuf>,
    /// Images for --reference (decoded and preprocessed with the model's PreprocessConfig).
    #[arg(long, num_args = 1.., requires = "reference")]
    images: Vec<PathBuf>,
}

/// Runs `host export`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let device = Device::flex();
    device.seed(args.seed);
    let (model, meta, out) = match &args.run {
        Some(dir) => {
            let (model, meta) = load_run(dir, &device)?;
            let out = args.out.clone().unwrap_or_else(|| dir.join("model.onnx"));
            (model, meta, out)
        }
        None => {
            let out = args
                .out
                .clone()
                .context("--out FILE.onnx is required without --run")?;
            let (model, meta) = fresh(&args, &device)?;
            (model, meta, out)
        }
    };
    let size = meta.preprocess.size as usize;
    let bytes = export::write(&model, size, &meta, &out)?;
    println!(
        "{}: {} ({} classes, {size} px, {} head) → {} ({bytes} bytes, opset {})",
        meta.variant,
        args.run
            .as_ref()
            .map_or_else(|| "fresh network".to_owned(), |d| d.display().to_string()),
        meta.class_names.len(),
        match meta.head {
            HeadKind::Linear => "linear",
            HeadKind::Mlp => "mlp",
        },
        out.display(),
        export::OPSET
    );
    if let Some(dir) = &args.reference {
        let r = reference::compute(&model, &meta.preprocess, &args.images, &device)?;
        let path = r.write(dir)?;
        println!(
            "reference: {} images and host logits → {}",
            r.images.len(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The best weights of a `host train` run and the metadata from its config.
fn load_run(dir: &Path, device: &Device) -> anyhow::Result<(EfficientNet, Metadata)> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let mut cfg: TrainConfig = serde_json::from_str(&text)
        .with_context(|| format!("parsing {} as a host train config", cfg_path.display()))?;
    cfg.validate()
        .with_context(|| format!("checking {}", cfg_path.display()))?;
    // The weights come from model.bpk: the pretrained file need not exist any more.
    cfg.pretrained = None;
    cfg.freeze_backbone = false;
    let weights = dir.join("model.bpk");
    anyhow::ensure!(
        weights.is_file(),
        "{}: no model.bpk (has `host train` finished an epoch?)",
        dir.display()
    );
    let model = train::build_model(&cfg, device)?
        .try_load_file(&weights)
        .map_err(|e| anyhow::anyhow!("loading {}: {e:?}", weights.display()))?;
    let meta = Metadata {
        variant: cfg.variant,
        head: cfg.head,
        task: cfg.task,
        class_names: cfg.classes.clone(),
        preprocess: cfg.preprocess.clone(),
    };
    Ok((model, meta))
}

/// A network built from the arguments: random, or pretrained, with random BN when asked.
fn fresh(args: &Args, device: &Device) -> anyhow::Result<(EfficientNet, Metadata)> {
    let variant = args.variant.context("--variant or --run is required")?;
    anyhow::ensure!(args.num_classes >= 2, "--num-classes must be at least 2");
    let size = args.img_size.unwrap_or(variant.scaling().resolution);
    let preprocess = PreprocessConfig {
        size,
        ..Default::default()
    };
    preprocess
        .validate()
        .map_err(|e| anyhow::anyhow!("--img-size: {e}"))?;
    let arch = Architecture::new(variant, args.num_classes as u32);
    let head = match args.head {
        HeadKind::Linear => Head::Linear,
        HeadKind::Mlp => Head::Mlp,
    };
    let mut model = EfficientNetConfig::new(&arch, head)
        .with_same_padding(!args.symmetric_padding)
        .init(device);
    if let Some(path) = &args.pretrained {
        model = train::import_pretrained(model, path, variant)?;
    }
    if args.randomize_bn {
        model = randomize_batchnorm(model, device);
    }
    let meta = Metadata {
        variant,
        head: args.head,
        task: args.task,
        class_names: (0..args.num_classes).map(|i| i.to_string()).collect(),
        preprocess,
    };
    Ok((model, meta))
}

/// Every BatchNorm gets γ ~ U(0.5, 1.5), β ~ U(−0.5, 0.5), running mean ~ U(−0.5, 0.5) and
/// running variance ~ U(0.5, 2), from the device's (seeded) generator.
pub fn randomize_batchnorm(mut model: EfficientNet, device: &Device) -> EfficientNet {
    let set = |cb: &mut ConvBn| {
        let n = cb.bn.gamma.dims()[0];
        let u = |lo: f64, hi: f64| Tensor::<1>::random([n], Distribution::Uniform(lo, hi), device);
        cb.bn.gamma = cb.bn.gamma.clone().map(|_| u(0.5, 1.5));
        cb.bn.beta = cb.bn.beta.clone().map(|_| u(-0.5, 0.5));
        cb.bn.running_mean = RunningState::new(u(-0.5, 0.5));
        cb.bn.running_var = RunningState::new(u(0.5, 2.0));
    };
    set(&mut model.stem);
    for b in &mut model.blocks {
        if let Some(e) = b.expand.as_mut() {
            set(e);
        }
        set(&mut b.depthwise);
        set(&mut b.project);
    }
    set(&mut model.head_conv);
    model
}
