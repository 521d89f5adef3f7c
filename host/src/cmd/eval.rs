//! `host eval`: the clinical evaluation report of a trained run (metrics with intervals,
//! operating point pre-set on validation, subgroups, calibration, Grad-CAM, model card).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::ensure;

use crate::eval::{self, EvalConfig};

/// Arguments of `host eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run directory written by `host train` (config.json, split.json, model.bpk), or an ONNX
    /// export of a run (fp32 or `host quantize` int8), then scored with tract as on the device.
    #[arg(long)]
    model: PathBuf,
    /// With an ONNX --model: its run directory (default: the folder the file is in).
    #[arg(long)]
    run: Option<PathBuf>,
    /// CSV manifest or image folder to evaluate; default: the run's own test split.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Report folder.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Sensitivity the operating threshold must reach on the validation split.
    #[arg(long, default_value_t = 0.90)]
    target_sensitivity: f64,
    /// Flag subgroups whose sensitivity trails the overall by more than this (and whose
    /// intervals do not overlap).
    #[arg(long, default_value_t = 0.05)]
    margin: f64,
    /// Images per Grad-CAM montage (true positives, false negatives, false positives).
    #[arg(long, default_value_t = 4)]
    gradcam: usize,
    /// Threads decoding and preparing images.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs `host eval`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure!(
        args.target_sensitivity > 0.0 && args.target_sensitivity <= 1.0,
        "--target-sensitivity must be in (0, 1] (got {})",
        args.target_sensitivity
    );
    ensure!(
        (0.0..1.0).contains(&args.margin),
        "--margin must be in [0, 1) (got {})",
        args.margin
    );
    let is_onnx = args.model.is_file();
    let (run_dir, onnx) = if is_onnx {
        let dir = match args.run {
            Some(d) => d,
            None => args
                .model
                .parent()
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        };
        (dir, Some(args.model))
    } else {
        ensure!(
            args.run.is_none(),
            "--run is for an ONNX --model; {} is a run directory",
            args.model.display()
        );
        (args.model, None)
    };
    let cfg = EvalConfig {
        run_dir,
        onnx,
        data: args.data,
        out: args.out,
        target_sensitivity: args.target_sensitivity,
        margin: args.margin,
        gradcam_per_kind: args.gradcam,
        threads: args.threads.max(1),
    };
    let r = eval::run(&cfg)?;
    let t = &r.operating_point.test;
    let flagged: Vec<String> = r
        .subgroups
        .tables
        .iter()
        .flat_map(|t| {
            t.rows
                .iter()
                .filter(|r| r.flagged)
                .map(move |r| format!("{}={}", t.column, r.value))
        })
        .collect();
    println!(
        "threshold {:.4} (validation, target sensitivity {:.2}): sensitivity {}, specificity {}, AUC {}; {} of {} gradable; flagged subgroups: {}",
        r.operating_point.threshold,
        r.operating_point.target_sensitivity,
        eval::html::ci(&t.sensitivity),
        eval::html::ci(&t.specificity),
        eval::html::ci(&r.roc.auc),
        r.imageability.gradable,
        r.imageability.total,
        if flagged.is_empty() {
            "none".into()
        } else {
            flagged.join(", ")
        }
    );
    println!("report: {}/index.html", cfg.out.display());
    Ok(ExitCode::SUCCESS)
}
