//! `host quantize`: int8 post-training quantization of a `host export` file, refused when the
//! validation headline metric drops by more than `--max-drop`.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, ensure};

use crate::export::reference::{self, Reference};
use crate::quantize::observer::Observer;
use crate::quantize::runner::Runner;
use crate::quantize::{self, Mode, QuantizeConfig};

/// Activation range observer (`--mode compute`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ObserverKind {
    /// Smallest and largest value seen.
    Minmax,
    /// The (100 − p)-th and p-th percentiles (`--percentile`).
    Percentile,
}

/// Arguments of `host quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// fp32 ONNX file written by `host export`.
    #[arg(long)]
    model: PathBuf,
    /// The `host train` run the model was exported from (config.json, split.json): its
    /// training split calibrates, its validation split gates.
    #[arg(long)]
    run: PathBuf,
    /// Output file (default: beside --model, `NAME.int8.onnx`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// `weights`: int8 Conv weights, f32 activations (4× smaller, tract runs it at fp32 speed;
    /// the edge default). `compute`: also uint8 Conv inputs (QDQ), calibrated; the device runs
    /// its 1×1 convs in integers: faster than fp32 with AVX-512 VNNI; on ARM boards by NEON
    /// integer kernels not yet timed on a board; slow on x86 without VNNI and on armv7
    /// (docs/PERFORMANCE.md).
    #[arg(long, value_enum, default_value = "weights")]
    mode: Mode,
    /// Activation ranges for --mode compute.
    #[arg(long, value_enum, default_value = "minmax")]
    observer: ObserverKind,
    /// Percentile for --observer percentile, in (50, 100].
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Training-split images to calibrate on (--mode compute).
    #[arg(long, default_value_t = 64)]
    calibration: usize,
    /// Refuse when the validation headline metric (QWK, AUC or accuracy) drops by more than
    /// this (absolute; 0.01 = one point).
    #[arg(long, default_value_t = 0.01)]
    max_drop: f64,
    /// Threads decoding and preparing images.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also write DIR/reference.json: --images preprocessed and the int8 model's logits (tract).
    #[arg(long, requires = "images")]
    reference: Option<PathBuf>,
    /// Images for --reference.
    #[arg(long, num_args = 1.., requires = "reference")]
    images: Vec<PathBuf>,
}

/// Runs `host quantize`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure!(
        (0.0..=1.0).contains(&args.max_drop),
        "--max-drop must be in [0, 1] (got {})",
        args.max_drop
    );
    ensure!(
        args.percentile > 50.0 && args.percentile <= 100.0,
        "--percentile must be in (50, 100] (got {})",
        args.percentile
    );
    ensure!(args.calibration >= 1, "--calibration must be at least 1");
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .model
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        args.model.with_file_name(format!("{stem}.int8.onnx"))
    });
    let cfg = QuantizeConfig {
        model: args.model.clone(),
        run_dir: args.run.clone(),
        out: out.clone(),
        mode: args.mode,
        observer: match args.observer {
            ObserverKind::Minmax => Observer::MinMax,
            ObserverKind::Percentile => Observer::Percentile(args.percentile),
        },
        calibration: args.calibration,
        max_drop: args.max_drop,
        threads: args.threads.max(1),
    };
    let o = quantize::run(&cfg)?;
    println!(
        "int8 ({} mode): {} convs{} → {} ({} → {} bytes, {:.2}×); max |w − w_int8| {:.2e}",
        o.mode.name(),
        o.convs,
        match &o.observer {
            Some(obs) => format!(
                ", {} activations ({obs}, {} calibration images)",
                o.activations, o.calibration_images
            ),
            None => String::new(),
        },
        out.display(),
        o.bytes_fp32,
        o.bytes_int8,
        o.bytes_fp32 as f64 / o.bytes_int8 as f64,
        o.max_weight_error,
    );
    println!("accuracy gate passed: {}", o.gate.describe());
    if let Some(dir) = &args.reference {
        let bytes = std::fs::read(&out)?;
        let proto = shared::onnx::model::decode(&bytes)?;
        let pre = crate::package::manifest::read_config(&args.run)?.preprocess;
        let side = pre.size as usize;
        let input = reference::inputs(&pre, &args.images)?;
        let output = (proto.graph.as_ref())
            .and_then(|g| g.output.first())
            .map(|o| o.name.clone())
            .context("the int8 model has no output")?;
        let device = Runner::new(&proto, side)?;
        let spec = Runner::tapping(&proto, side, &[output])?;
        let per = 3 * side * side;
        let (mut logits, mut spec_logits) = (Vec::new(), Vec::new());
        for chw in input.chunks(per) {
            logits.extend(device.run(chw)?.swap_remove(0));
            spec_logits.extend(spec.run(chw)?.swap_remove(0));
        }
        let n = args.images.len();
        let r = Reference {
            images: args.images.clone(),
            input_shape: [n, 3, side, side],
            input,
            logits_shape: [n, logits.len() / n],
            logits,
            spec_logits,
        };
        let path = r.write(dir)?;
        println!(
            "reference: {n} images, the device runtime's and tract's (as specified) int8 logits → {}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
